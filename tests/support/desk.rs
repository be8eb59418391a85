//! Shared by the desk tests (`bulk` one key at a time, and tray mode): a
//! running `mfakey --json bulk` read event line by event line, moto's view
//! of the users' devices, and the checks every desk scenario ends with.

#![allow(dead_code)]

use crate::common::{Running, Scenario, Seed};
use crate::iam_env::{self, block_on, enables_for, unique};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Iam {
    pub raw: aws_sdk_iam::Client,
}

impl Iam {
    pub fn new() -> Iam {
        let moto = std::env::var("MFAKEY_TEST_MOTO_ENDPOINT")
            .expect("MFAKEY_TEST_MOTO_ENDPOINT: run tests/run.sh");
        Iam {
            raw: aws_sdk_iam::Client::new(&block_on(iam_env::test_sdk_config(&moto, 1))),
        }
    }

    pub fn create_user(&self, prefix: &str) -> String {
        let name = unique(prefix);
        block_on(self.raw.create_user().user_name(&name).send()).unwrap();
        name
    }

    pub fn user_devices(&self, user: &str) -> Vec<String> {
        let out = block_on(self.raw.list_mfa_devices().user_name(user).send()).unwrap();
        out.mfa_devices()
            .iter()
            .map(|d| d.serial_number().to_string())
            .collect()
    }

    /// Every virtual device named after `user`: (serial, assigned user).
    pub fn virtual_devices(&self, user: &str) -> Vec<(String, Option<String>)> {
        let all = iam_env::all_virtual_devices(&self.raw);
        all.iter()
            .filter(|d| {
                d.serial_number()
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .starts_with(&format!("{user}-yk"))
            })
            .map(|d| {
                (
                    d.serial_number().to_string(),
                    d.user().map(|u| u.user_name().to_string()),
                )
            })
            .collect()
    }
}

pub fn id(user: &str) -> String {
    format!("Amazon Web Services:{user}@123456789012")
}

/// A running `mfakey --json bulk` and how far its event lines were read.
pub struct Bulk {
    run: Option<Running>,
    read: usize,
}

impl Bulk {
    pub fn start(sc: &Scenario, reader: &str, manifest: &Path, extra: &[&str]) -> Bulk {
        let m = manifest.to_str().unwrap();
        let mut args = vec!["--json", "--reader", reader, "bulk", m];
        args.extend_from_slice(extra);
        Bulk {
            run: Some(sc.spawn_mfakey(&args, b"")),
            read: 0,
        }
    }

    /// `mfakey --json bulk MANIFEST --parallel EXTRA…`, watching every reader.
    pub fn start_tray(sc: &Scenario, manifest: &Path, extra: &[&str]) -> Bulk {
        let m = manifest.to_str().unwrap();
        let mut args = vec!["--json", "bulk", m, "--parallel"];
        args.extend_from_slice(extra);
        Bulk {
            run: Some(sc.spawn_mfakey(&args, b"")),
            read: 0,
        }
    }

    /// Every event line read so far and up to now (complete lines).
    pub fn events_so_far(&mut self) -> Vec<Value> {
        let out = self.r().stdout_now();
        out.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("event").is_some())
            .collect()
    }

    pub fn r(&mut self) -> &mut Running {
        self.run.as_mut().expect("running")
    }

    pub fn pid(&self) -> u32 {
        self.run.as_ref().expect("running").pid()
    }

    pub fn finish(mut self) -> crate::common::Run {
        self.run.take().expect("running").finish()
    }

    /// The next event line (after those read) for which `want` holds; the
    /// lines skipped on the way are returned too.
    pub fn until(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        let mut skipped = Vec::new();
        loop {
            let out = self.r().stdout_now();
            let lines: Vec<&str> = out.lines().collect();
            // Only complete lines.
            let complete = if out.ends_with('\n') {
                lines.len()
            } else {
                lines.len().saturating_sub(1)
            };
            while self.read < complete {
                let v: Value = serde_json::from_str(lines[self.read])
                    .unwrap_or_else(|e| panic!("not JSON: {:?}: {e}", lines[self.read]));
                self.read += 1;
                if want(&v) {
                    return (v, skipped);
                }
                skipped.push(v);
            }
            assert!(
                !self.r().exited() || self.r().stdout_now().len() != out.len(),
                "mfakey ended before {what}; stdout:\n{out}\nstderr:\n{}",
                self.r().stderr_now()
            );
            assert!(
                Instant::now() < deadline,
                "no {what} within {EVENT_TIMEOUT:?}; stdout:\n{out}\nstderr:\n{}",
                self.r().stderr_now()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn event(&mut self, kind: &str) -> (Value, Vec<Value>) {
        self.until(kind, |v| v["event"] == kind)
    }

    pub fn next_for(&mut self, user: &str) {
        let (v, _) = self.event("next");
        assert_eq!(v["user"], user, "{v}");
    }

    pub fn kill(&self) {
        // SAFETY: SIGKILL to the mfakey process this test started.
        unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGKILL) };
    }
}

pub fn manifest(sc: &Scenario, text: &str) -> PathBuf {
    sc.input_file("manifest.csv", text.as_bytes())
}

/// Every user enrolled exactly once: one device, attached, enabled with
/// codes the proxy accepted; no unassigned device named after them.
pub fn assert_enrolled_once(iam: &Iam, user: &str, serial: u32) {
    let devices = iam.virtual_devices(user);
    assert_eq!(devices.len(), 1, "{user}: {devices:?}");
    let arn = format!("arn:aws:iam::123456789012:mfa/{user}-yk{serial}");
    assert_eq!(devices[0], (arn.clone(), Some(user.to_string())));
    assert_eq!(iam.user_devices(user), vec![arn.clone()]);
    let log = enables_for(&arn);
    assert!(
        !log.is_empty() && log.iter().all(|e| e["accepted"] == true),
        "{log:?}"
    );
}

/// No seed of `users` in any output, or any file mfakey wrote: under HOME
/// (journals and reports the tests place there) and beside the manifest
/// (the default journal).
pub fn assert_no_seeds(sc: &mut Scenario, users: &[String]) {
    let inputs = sc.inputs.clone();
    sc.scan.add_path(inputs);
    let seeds: Vec<Seed> = iam_env::issued_seeds()
        .into_iter()
        .filter(|(serial, _)| users.iter().any(|u| serial.contains(u.as_str())))
        .map(|(_, b)| Seed::from_bytes(&b))
        .collect();
    assert!(!seeds.is_empty());
    sc.assert_no_secret(&seeds.iter().collect::<Vec<_>>());
}
