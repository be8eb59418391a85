//! Daily use after enrollment, end to end: `enroll user --configure-profile`
//! writes the profile into the shared config file, and `mfakey code` run
//! the way aws-vault runs an `mfa_process` (`/bin/sh -c LINE`, stdin from
//! /dev/null, stdout read and trimmed, no AWS credentials handed over)
//! prints the code of the seed IAM issued. The real binary, virtual-yubikey
//! through pcscd, moto behind the code-checking proxy.

mod common;
#[path = "support/iam_env.rs"]
mod iam_env;

use common::{random_serial, totp, Algo, Run, Scenario, Seed, Slot, VirtualKey};
use iam_env::{block_on, endpoint, proxy_lock, unique};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn moto() -> aws_sdk_iam::Client {
    let url = std::env::var("MFAKEY_TEST_MOTO_ENDPOINT").expect("run tests/run.sh");
    aws_sdk_iam::Client::new(&block_on(iam_env::test_sdk_config(&url, 1)))
}

fn create_user(prefix: &str) -> String {
    let name = unique(prefix);
    block_on(moto().create_user().user_name(&name).send()).unwrap();
    name
}

/// The seed IAM issued for `device`.
fn seed_of(device: &str) -> Seed {
    let (_, bytes) = iam_env::issued_seeds()
        .into_iter()
        .find(|(serial, _)| serial == device)
        .expect("the proxy saw the seed issued");
    Seed::from_bytes(&bytes)
}

/// Runs `line` as aws-vault runs `mfa_process`: `/bin/sh -c LINE`, stdin
/// /dev/null, stderr apart, and only PATH (with mfakey's folder), HOME and
/// `env` in the environment: no AWS credentials, as aws-vault hands none.
fn as_aws_vault(line: &str, home: &Path, env: &[(&str, &str)]) -> Run {
    let bin = common::process::mfakey_bin();
    let path = format!(
        "{}:/usr/local/bin:/usr/bin:/bin",
        bin.parent().unwrap().display()
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(line)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        // The stack's readers are vpcd's: the test's opt-in, not an AWS
        // setting (aws-vault would pass it on from the user's environment).
        .env("MFAKEY_ALLOW_VIRTUAL_READERS", "1")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("/bin/sh");
    Run {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), line.into()],
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The code `run` prints is the seed's at the time it ran (retried once
/// when a 30 s window rolled over meanwhile).
fn assert_code_of(seed: &Seed, mut run: impl FnMut() -> Run) -> Run {
    for _ in 0..2 {
        let t0 = common::now();
        let r = run();
        if t0 / 30 != common::now() / 30 {
            continue;
        }
        assert_eq!(r.code, Some(0), "{r:?}");
        assert!(
            r.stdout.len() == 7 && r.stdout.ends_with('\n'),
            "stdout is not one code and a newline: {:?}",
            r.stdout
        );
        assert_eq!(r.stdout.trim(), totp(seed, Algo::Sha1, 6, 30, t0), "{r:?}");
        return r;
    }
    panic!("two window roll-overs in a row");
}

fn config_path(sc: &Scenario) -> PathBuf {
    // Not ~/.aws/config: AWS_CONFIG_FILE must be what mfakey reads and writes.
    sc.home.join("dotfiles/aws-config")
}

#[test]
fn configure_profile_then_aws_vault_style_mfa_process_prints_the_seeds_code() {
    let _l = proxy_lock();
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let config = config_path(&sc);
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let before = "# team settings\n[default]\nregion = us-east-1\n\n[profile work]\nregion = eu-west-1\n\n[profile other]\nregion = us-west-2\n";
    std::fs::write(&config, before).unwrap();
    sc.set_env("AWS_CONFIG_FILE", &config);
    let user = create_user("daily");
    let slot = Slot::acquire();
    let serial = random_serial();
    let key = VirtualKey::start(&slot, &["--serial", &serial.to_string()]);

    let args = [
        "--json",
        "--reader",
        slot.reader,
        "enroll",
        "user",
        &user,
        "--configure-profile",
        "work",
    ];
    let v = sc.mfakey(&args).ok();
    let device = v["enrolled"]["device_serial"].as_str().unwrap().to_string();
    let p = &v["profile"];
    assert_eq!(p["changed"], true, "{v}");
    assert_eq!(p["path"], config.display().to_string());
    let after = std::fs::read_to_string(&config).unwrap();
    assert_eq!(
        after,
        before.replace(
            "region = eu-west-1\n",
            &format!("region = eu-west-1\nmfa_serial = {device}\n# mfa_process = mfakey code --profile work\n")
        )
    );
    let backup = p["backup"].as_str().expect("a backup");
    assert_eq!(std::fs::read_to_string(backup).unwrap(), before);
    assert!(
        !sc.home.join(".aws").exists(),
        "wrote ~/.aws despite AWS_CONFIG_FILE"
    );

    // The user uncomments the line aws-vault reads; aws-vault runs it.
    let line = after
        .lines()
        .find_map(|l| l.strip_prefix("# mfa_process = "))
        .expect("the commented mfa_process line")
        .to_string();
    let seed = seed_of(&device);
    let config_s = config.display().to_string();
    let home = sc.home.clone();
    let r = assert_code_of(&seed, || {
        as_aws_vault(&line, &home, &[("AWS_CONFIG_FILE", &config_s)])
    });
    sc.record(&r);

    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn a_device_with_its_own_name_is_found_through_its_tags() {
    let _l = proxy_lock();
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let user = create_user("tagged");
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let name = unique("laptop");
    let args = [
        "--json",
        "--reader",
        slot.reader,
        "enroll",
        "user",
        &user,
        "--device-name",
        &name,
    ];
    let v = sc.mfakey(&args).ok();
    let device = v["enrolled"]["device_serial"].as_str().unwrap().to_string();
    assert!(device.ends_with(&format!("mfa/{name}")), "{device}");
    let seed = seed_of(&device);

    let r = assert_code_of(&seed, || sc.mfakey(&["code", "--device", &device]));
    sc.record(&r);
    let v = sc.mfakey(&["--json", "code", "--device", &device]).ok();
    assert_eq!(v["code"]["found_by"], "tags", "{v}");
    assert_eq!(v["code"]["user"], user.as_str());
    assert_eq!(
        v["code"]["credential_id"],
        format!("Amazon Web Services:{user}@123456789012")
    );

    // A device mfakey did not make (no tags): said, not guessed.
    let bare = block_on(
        moto()
            .create_virtual_mfa_device()
            .virtual_mfa_device_name(unique("bare"))
            .send(),
    )
    .unwrap()
    .virtual_mfa_device()
    .unwrap()
    .serial_number()
    .to_string();
    let msg = sc
        .mfakey(&["--json", "code", "--device", &bare])
        .err(5, "no_such_credential");
    assert!(msg.contains("mfakey:user"), "{msg}");
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn a_config_mfakey_cannot_edit_safely_stops_enrollment_before_anything_is_made() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let config = config_path(&sc);
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let twice = "[profile work]\nregion = a\n\n[profile work]\nregion = b\n";
    std::fs::write(&config, twice).unwrap();
    sc.set_env("AWS_CONFIG_FILE", &config);
    let user = create_user("twice");
    let slot = Slot::acquire();
    let _key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let args = [
        "--json",
        "--reader",
        slot.reader,
        "enroll",
        "user",
        &user,
        "--configure-profile",
        "work",
    ];
    let msg = sc.mfakey(&args).err(2, "aws_config");
    assert!(msg.contains("2 times"), "{msg}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), twice);
    assert_eq!(
        std::fs::read_dir(config.parent().unwrap()).unwrap().count(),
        1
    );
    let devices = block_on(moto().list_mfa_devices().user_name(&user).send()).unwrap();
    assert!(devices.mfa_devices().is_empty());
    assert!(iam_env::issued_seeds()
        .iter()
        .all(|(s, _)| !s.contains(&user)));

    // A profile without mfa_serial: `code` says how to get one.
    let msg = sc
        .mfakey(&["--json", "code", "--profile", "work"])
        .err(2, "aws_config");
    assert!(msg.contains("2 times"), "{msg}");
    std::fs::write(&config, "[profile work]\nregion = a\n").unwrap();
    let msg = sc
        .mfakey(&["--json", "code", "--profile", "work"])
        .err(2, "aws_config");
    assert!(msg.contains("--configure-profile work"), "{msg}");
    sc.assert_no_secret(&[]);
}
