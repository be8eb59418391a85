//! Running `mfakey` and `ykman` as child processes, with a bounded wait.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::vkey::terminate;

const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// A finished command: what it printed and how it ended.
#[derive(Debug, Clone)]
pub struct Run {
    pub program: String,
    pub args: Vec<String>,
    /// Exit code; None when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "{} {:?} exited {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.program, self.args, self.code, self.stdout, self.stderr
        )
    }

    /// stdout as one JSON object (with `--json`, mfakey prints exactly one).
    pub fn json(&self) -> Value {
        let v: Value = serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}",
                self.describe()
            )
        });
        assert!(
            v.is_object(),
            "stdout JSON is not an object:\n{}",
            self.describe()
        );
        assert_eq!(
            v["schema_version"],
            1,
            "schema_version is not 1:\n{}",
            self.describe()
        );
        v
    }

    /// Asserts exit 0 and returns the success JSON (which has no `error`).
    pub fn ok(&self) -> Value {
        assert_eq!(self.code, Some(0), "expected success:\n{}", self.describe());
        let v = self.json();
        assert!(
            v.get("error").is_none(),
            "success with an error object:\n{}",
            self.describe()
        );
        v
    }

    /// Asserts exit `code`, the JSON error `kind`, and `error: ` on stderr;
    /// returns the error's message.
    pub fn err(&self, code: i32, kind: &str) -> String {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code} ({kind}):\n{}",
            self.describe()
        );
        let v = self.json();
        assert_eq!(
            v["error"]["kind"],
            kind,
            "wrong error kind:\n{}",
            self.describe()
        );
        let message = v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            !message.is_empty(),
            "error without a message:\n{}",
            self.describe()
        );
        assert!(
            self.stderr.lines().any(|l| l.starts_with("error: ")),
            "no `error: ` line on stderr:\n{}",
            self.describe()
        );
        message
    }

    /// Asserts exit 0 (for tools without JSON, such as ykman).
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success:\n{}", self.describe());
        self
    }
}

/// A command still running (e.g. mfakey waiting for a touch).
pub struct Running {
    program: String,
    args: Vec<String>,
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Spawns `program args` with `env` added, `stdin` written then closed.
    pub fn spawn(
        program: &std::path::Path,
        args: &[&str],
        env: &[(OsString, OsString)],
        remove_env: &[&str],
        stdin: &[u8],
    ) -> Running {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for k in remove_env {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let mut input = child.stdin.take().expect("stdin");
        let data = stdin.to_vec();
        // A writer thread: a child that never reads stdin must not block us.
        std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            drain(child.stdout.take().expect("stdout"), stdout.clone()),
            drain(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        Running {
            program: program.display().to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
            child,
            stdout,
            stderr,
            readers,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// stdout so far.
    pub fn stdout_now(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().expect("stdout lock")).into_owned()
    }

    /// Whether the process has ended.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// stderr so far.
    pub fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }

    /// Waits until stderr contains `text`; false if the process ended or
    /// `timeout` passed first.
    pub fn wait_stderr(&mut self, text: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stderr_now().contains(text) {
                return true;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.stderr_now().contains(text);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits for the end (killing it after the run timeout, which fails the test).
    pub fn finish(mut self) -> Run {
        let deadline = Instant::now() + RUN_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                terminate(&mut self.child);
                panic!(
                    "{} {:?} still ran after {RUN_TIMEOUT:?}: killed",
                    self.program, self.args
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let out = |b: &Arc<Mutex<Vec<u8>>>| {
            String::from_utf8_lossy(&b.lock().expect("lock")).into_owned()
        };
        Run {
            program: self.program.clone(),
            args: self.args.clone(),
            code: status.code(),
            stdout: out(&self.stdout),
            stderr: out(&self.stderr),
        }
    }
}

impl Drop for Running {
    /// A test that fails (panics) while its command still runs must not
    /// leave it behind: a mfakey enrolling or watching a reader would act on
    /// the next test's keys. SIGKILL and reap; a finished run is left alone.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn drain<R: Read + Send + 'static>(
    mut r: R,
    buf: Arc<Mutex<Vec<u8>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.lock().expect("lock").extend_from_slice(&chunk[..n]),
            }
        }
    })
}

/// The mfakey binary of this build.
pub fn mfakey_bin() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_mfakey").into()
}

/// Runs mfakey with `stdin` piped in (for --secret-stdin); `env` is added
/// to the test's environment. Prefer [`super::Scenario::mfakey`], which also
/// gives mfakey a private HOME and records the output for the SecretScan.
pub fn mfakey(args: &[&str], stdin: &[u8], env: &[(OsString, OsString)]) -> Run {
    Running::spawn(&mfakey_bin(), args, env, &["PCSCLITE_CSOCK_NAME"], stdin).finish()
}

/// Runs `$MFAKEY_VENV/bin/ykman --reader READER ARGS...` (ykman needs the
/// full reader name). `home` keeps ykman's own files out of the real HOME.
pub fn ykman(reader: &str, args: &[&str], home: &std::path::Path) -> Run {
    let bin = super::venv().join("bin/ykman");
    let mut all = vec!["--reader", reader];
    all.extend_from_slice(args);
    let env = [(OsString::from("HOME"), home.as_os_str().to_owned())];
    Running::spawn(&bin, &all, &env, &["PCSCLITE_CSOCK_NAME"], b"").finish()
}
