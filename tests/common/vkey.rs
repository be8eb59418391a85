//! `virtual-yubikey` cards: one process per inserted key. Starting it
//! inserts the card into a slot's reader; stopping it (SIGTERM to its own
//! pid) removes the card.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::slot::{wait_card, Slot};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running virtual key in a slot the test holds.
pub struct VirtualKey<'s> {
    slot: &'s Slot,
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    status: Option<ExitStatus>,
}

impl<'s> VirtualKey<'s> {
    /// Starts `virtual-yubikey --vpcd 127.0.0.1:PORT ARGS...`, waits for its
    /// `ready` line and for pcscd to see the card. Under load pcscd's vpcd
    /// driver has been seen (rarely) not to pick up a card that connected
    /// right after the previous one went: the card is then taken out and
    /// inserted again, as a person would re-plug a key (at most three tries,
    /// each said on stderr).
    pub fn start(slot: &'s Slot, args: &[&str]) -> VirtualKey<'s> {
        for attempt in 1..=3 {
            let mut key = Self::spawn(slot, args);
            if wait_card(slot.reader, true, Duration::from_secs(10)) {
                return key;
            }
            key.stop();
            eprintln!(
                "harness: pcscd did not see the virtual key in {:?} (try {attempt} of 3); inserting it again",
                slot.reader
            );
        }
        panic!("pcscd does not see the virtual key in {:?}", slot.reader);
    }

    /// Spawns the card and waits for its `ready` line.
    fn spawn(slot: &'s Slot, args: &[&str]) -> VirtualKey<'s> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_virtual-yubikey"))
            .arg("--vpcd")
            .arg(slot.vpcd_addr())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn virtual-yubikey");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        collect_lines(
            child.stdout.take().expect("stdout"),
            stdout.clone(),
            Some(ready_tx),
        );
        collect_lines(child.stderr.take().expect("stderr"), stderr.clone(), None);
        let mut key = VirtualKey {
            slot,
            child,
            stdout,
            stderr,
            status: None,
        };
        if let Err(e) = ready_rx.recv_timeout(READY_TIMEOUT) {
            let why = match e {
                mpsc::RecvTimeoutError::Timeout => {
                    format!("no `ready` line within {READY_TIMEOUT:?}")
                }
                mpsc::RecvTimeoutError::Disconnected => {
                    "closed stdout without a `ready` line".to_string()
                }
            };
            let status = key.stop();
            panic!(
                "virtual-yubikey {args:?} on {}: {why} (status {status}); stdout:\n{}stderr:\n{}",
                slot.reader,
                key.stdout(),
                key.stderr()
            );
        }
        key
    }

    pub fn reader(&self) -> &'static str {
        self.slot.reader
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the card printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("stdout lock").clone()
    }

    /// Everything the card printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// Removes the key: SIGTERM to its pid, wait (SIGKILL after 5 s), then
    /// wait until pcscd sees the reader empty. Idempotent.
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let status = terminate(&mut self.child);
        self.status = Some(status);
        wait_card(self.slot.reader, false, Duration::from_secs(10));
        status
    }
}

impl VirtualKey<'_> {
    /// Pulls the key out at once: SIGKILL to its own pid, so the kernel closes
    /// its vpcd connection whatever the card was doing (e.g. waiting for a
    /// touch), then waits until pcscd sees the reader empty.
    pub fn yank(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for virtual-yubikey");
        self.status = Some(status);
        wait_card(self.slot.reader, false, Duration::from_secs(10));
        status
    }
}

impl Drop for VirtualKey<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGTERM to the child's own pid, bounded wait, SIGKILL as a last resort.
pub fn terminate(child: &mut Child) -> ExitStatus {
    if let Ok(Some(status)) = child.try_wait() {
        return status;
    }
    let pid = child.id() as libc::pid_t;
    // SAFETY: signalling our own child, which has not been reaped yet.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    child.wait().expect("wait for child")
}

/// Reads lines into `buf`; signals `ready` on the first line starting with it.
fn collect_lines<R: std::io::Read + Send + 'static>(
    reader: R,
    buf: Arc<Mutex<String>>,
    ready: Option<mpsc::Sender<()>>,
) {
    std::thread::spawn(move || {
        let mut ready = ready;
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("ready") {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
            }
            let mut b = buf.lock().expect("buffer lock");
            b.push_str(&line);
            b.push('\n');
        }
    });
}
