//! A Scenario: one test's private HOME, its input files, and the SecretScan
//! that every mfakey run is recorded in.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::process::{mfakey_bin, Run, Running};
use super::scan::{SecretScan, Seed};

pub struct Scenario {
    dir: tempfile::TempDir,
    /// mfakey's HOME (and XDG dirs, TMPDIR): scanned at the end.
    pub home: PathBuf,
    /// Inputs the test hands to mfakey (secret and password files): not scanned.
    pub inputs: PathBuf,
    pub scan: SecretScan,
    env: Vec<(OsString, OsString)>,
}

impl Scenario {
    /// Needs the test stack (panics with how to run the tests otherwise).
    pub fn new() -> Scenario {
        super::require_stack();
        let dir = tempfile::Builder::new()
            .prefix("mfakey-test-")
            .tempdir()
            .expect("tempdir");
        let home = dir.path().join("home");
        let inputs = dir.path().join("inputs");
        for d in [
            "",
            ".config",
            ".local/share",
            ".local/state",
            ".cache",
            "tmp",
        ] {
            std::fs::create_dir_all(home.join(d)).expect("mkdir home");
        }
        std::fs::create_dir_all(&inputs).expect("mkdir inputs");
        let mut scan = SecretScan::new();
        scan.add_path(&home);
        let env = vec![
            ("HOME".into(), home.clone().into()),
            ("XDG_CONFIG_HOME".into(), home.join(".config").into()),
            ("XDG_DATA_HOME".into(), home.join(".local/share").into()),
            ("XDG_STATE_HOME".into(), home.join(".local/state").into()),
            ("XDG_CACHE_HOME".into(), home.join(".cache").into()),
            ("TMPDIR".into(), home.join("tmp").into()),
        ];
        Scenario {
            dir,
            home,
            inputs,
            scan,
            env,
        }
    }

    /// Adds a variable to every later mfakey run's environment.
    pub fn set_env(&mut self, key: &str, value: impl Into<OsString>) {
        self.env.push((key.into(), value.into()));
    }

    /// AWS for mfakey: moto's test credentials, us-east-1, `endpoint` (the
    /// IAM proxy's).
    pub fn set_aws_env(&mut self, endpoint: &str) {
        self.set_env("AWS_ACCESS_KEY_ID", "testing");
        self.set_env("AWS_SECRET_ACCESS_KEY", "testing");
        self.set_env("AWS_REGION", "us-east-1");
        self.set_env("AWS_ENDPOINT_URL", endpoint);
    }

    /// Writes an input file (a secret or password file) outside HOME.
    pub fn input_file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.inputs.join(name);
        std::fs::write(&path, contents).expect("write input file");
        path
    }

    /// Runs mfakey with an empty stdin; output recorded for the scan.
    pub fn mfakey(&mut self, args: &[&str]) -> Run {
        self.mfakey_stdin(args, b"")
    }

    /// Runs mfakey with `stdin` piped in; output recorded for the scan.
    pub fn mfakey_stdin(&mut self, args: &[&str], stdin: &[u8]) -> Run {
        let run = self.spawn_mfakey(args, stdin).finish();
        self.record(&run)
    }

    /// Starts mfakey without waiting; pass its [`Run`] to [`Self::record`].
    pub fn spawn_mfakey(&self, args: &[&str], stdin: &[u8]) -> Running {
        Running::spawn(
            &mfakey_bin(),
            args,
            &self.env,
            &["PCSCLITE_CSOCK_NAME"],
            stdin,
        )
    }

    /// Records a run's output for the scan and hands it back.
    pub fn record(&mut self, run: &Run) -> Run {
        self.scan.add_run(run);
        run.clone()
    }

    /// ykman against `reader`, with HOME inside this scenario (not scanned:
    /// ykman is the independent client, not the code under test).
    pub fn ykman(&self, reader: &str, args: &[&str]) -> Run {
        let home = self.dir.path().join("ykman-home");
        std::fs::create_dir_all(&home).expect("mkdir ykman home");
        super::process::ykman(reader, args, &home)
    }

    /// Adds a card's output to the scan.
    pub fn record_key(&mut self, key: &super::VirtualKey) {
        self.scan.add(
            format!("virtual-yubikey stdout ({})", key.reader()),
            key.stdout(),
        );
        self.scan.add(
            format!("virtual-yubikey stderr ({})", key.reader()),
            key.stderr(),
        );
    }

    /// The end of every scenario: no seed in any output or file under HOME.
    pub fn assert_no_secret(&mut self, seeds: &[&Seed]) {
        self.scan.assert_clean(seeds);
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
