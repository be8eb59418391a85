//! Reader slots: the four vpcd readers, each guarded by a cross-process
//! `flock` on `$TMPDIR/mfakey-vpcd-<port>.lock`, so that two tests (threads
//! of one test binary, or separate processes) never share a reader.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Every vpcd TCP port the stack may have and the reader name pcscd gives
/// it (tests/stack/vpcd.conf.in: two per entry, up to 8 entries; the
/// default stack has the first four).
pub fn slots() -> &'static [(u16, &'static str)] {
    static SLOTS: std::sync::OnceLock<Vec<(u16, &'static str)>> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let mut v = Vec::new();
        for (i, letter) in ["", " B", " C", " D", " E", " F", " G", " H"]
            .iter()
            .enumerate()
        {
            for slot in 0..2u16 {
                let name: &'static str =
                    Box::leak(format!("Virtual PCD{letter} 00 0{slot}").into_boxed_str());
                v.push((35963 + 2 * i as u16 + slot, name));
            }
        }
        v
    })
}

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(600);

/// One reader, held exclusively until dropped.
#[derive(Debug)]
pub struct Slot {
    pub port: u16,
    pub reader: &'static str,
    _lock: File,
}

impl Slot {
    /// One free slot (waits while all are taken).
    pub fn acquire() -> Slot {
        Self::acquire_many(1).pop().expect("one slot")
    }

    /// `n` slots at once. Takes all of them or none and retries, so that two
    /// tests each holding one slot never wait on each other.
    pub fn acquire_many(n: usize) -> Vec<Slot> {
        let present = present_slots();
        assert!(
            present.len() >= n,
            "this test needs {n} vpcd readers but pcscd has only {}: let tests/stack/stack.sh start pcscd (see tests/stack/vpcd.conf.in)",
            present.len()
        );
        let deadline = Instant::now() + ACQUIRE_TIMEOUT;
        loop {
            let mut held = Vec::new();
            for &(port, reader) in &present {
                if let Some(lock) = try_lock(port) {
                    held.push(Slot {
                        port,
                        reader,
                        _lock: lock,
                    });
                    if held.len() == n {
                        for slot in &held {
                            slot.wait_empty();
                        }
                        return held;
                    }
                }
            }
            drop(held);
            assert!(
                Instant::now() < deadline,
                "no {n} free vpcd slots after {ACQUIRE_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every reader pcscd has: for tests that must see no foreign key
    /// (key selection across readers).
    pub fn acquire_all() -> Vec<Slot> {
        Self::acquire_many(present_slots().len())
    }

    /// `127.0.0.1:PORT`, for `virtual-yubikey --vpcd`.
    pub fn vpcd_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits until pcscd reports no card in this reader (a card left by a
    /// previous user of the slot is being removed).
    pub fn wait_empty(&self) {
        if !wait_card(self.reader, false, Duration::from_secs(10)) {
            panic!(
                "reader {:?} still has a card although its slot lock is ours: something that does not take \
                 the slot locks uses port {}",
                self.reader, self.port
            );
        }
    }
}

/// The lock file of a vpcd port.
pub fn lock_path(port: u16) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mfakey-vpcd-{port}.lock"))
}

fn try_lock(port: u16) -> Option<File> {
    try_lock_at(&lock_path(port))
}

/// A non-blocking exclusive `flock` on `path`, held while the File lives.
pub fn try_lock_at(path: &std::path::Path) -> Option<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    // SAFETY: flock on a file descriptor we own; the lock lives as long as the File.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    (rc == 0).then_some(file)
}

/// The known slots whose reader pcscd currently lists.
pub fn present_slots() -> Vec<(u16, &'static str)> {
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap_or_else(|e| {
        panic!("pcscd does not answer ({e}): run the tests through tests/run.sh")
    });
    let readers = ctx.list_readers_owned().unwrap_or_default();
    slots()
        .iter()
        .copied()
        .filter(|(_, name)| readers.iter().any(|r| r.to_bytes() == name.as_bytes()))
        .collect()
}

/// Waits until the reader has (`present`) or has no card; false on timeout.
/// PC/SC errors (pcscd busy with other tests' clients) are retried until then.
pub fn wait_card(reader: &str, present: bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let name = std::ffi::CString::new(reader).expect("reader name");
    let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
    let mut ctx: Option<pcsc::Context> = None;
    loop {
        if Instant::now() >= deadline {
            return false;
        }
        if ctx.is_none() {
            match pcsc::Context::establish(pcsc::Scope::User) {
                Ok(c) => ctx = Some(c),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
        }
        let Some(c) = ctx.as_ref() else { continue };
        let left = deadline.saturating_duration_since(Instant::now());
        match c.get_status_change(left.min(Duration::from_millis(500)), &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(_) => {
                ctx = None;
                states[0] = pcsc::ReaderState::new(
                    std::ffi::CString::new(reader).expect("reader name"),
                    pcsc::State::UNAWARE,
                );
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        let state = states[0].event_state();
        if state.contains(pcsc::State::PRESENT) == present
            && !state.contains(pcsc::State::UNAVAILABLE)
        {
            return true;
        }
        states[0].sync_current_state();
        if Instant::now() >= deadline {
            return false;
        }
    }
}
