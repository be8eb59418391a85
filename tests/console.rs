//! `mfakey enroll root` and `mfakey enroll console` end to end: the real
//! binary, `virtual-yubikey` through pcscd, moto behind the code-checking
//! proxy. The test stands in for the AWS console: it holds the secret the
//! console would show, types it into mfakey, computes the two codes itself
//! from that secret and checks them against the codes mfakey shows (and,
//! for an IAM user, enables the device with them through the proxy, which
//! refuses wrong codes). moto always reports AccountMFAEnabled 0, so root
//! verification is tested for its timeout here and for success against the
//! fake IAM (src/workflow/console_tests.rs).

mod common;
#[path = "support/iam_env.rs"]
mod iam_env;

use common::oath::{add, ids, set_password};
use common::{random_serial, totp, Algo, Scenario, Seed, Slot, VirtualKey};
use iam_env::{block_on, endpoint, unique};
use serde_json::Value;
use std::time::Duration;

const ROOT_ID: &str = "Amazon Web Services:root@acme-prod";

fn root(sc: &mut Scenario, reader: &str, secret: &[u8], extra: &[&str]) -> common::Run {
    let mut args = vec![
        "--json",
        "--reader",
        reader,
        "enroll",
        "root",
        "--account-label",
        "acme-prod",
        "--secret-stdin",
    ];
    args.extend_from_slice(extra);
    sc.mfakey_stdin(&args, secret)
}

/// The console's side: the codes of `seed` for the window mfakey reported
/// must be the codes it shows, and that window must be now (±1 step).
fn assert_codes_of(seed: &Seed, codes: &Value) {
    let step = codes["step"].as_u64().expect("step");
    assert!(
        step.abs_diff(common::now() / 30) <= 1,
        "window {step} is not now: {codes}"
    );
    assert_eq!(
        codes["code1"].as_str().unwrap(),
        totp(seed, Algo::Sha1, 6, 30, (step - 1) * 30),
        "{codes}"
    );
    assert_eq!(
        codes["code2"].as_str().unwrap(),
        totp(seed, Algo::Sha1, 6, 30, step * 30),
        "{codes}"
    );
    let left = codes["seconds_left"].as_u64().unwrap();
    assert!((1..=30).contains(&left), "{codes}");
}

#[test]
fn root_secret_goes_onto_the_key_with_touch_and_the_codes_are_the_consoles() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let serial = random_serial();
    let key = VirtualKey::start(&slot, &["--serial", &serial.to_string()]);
    let seed = Seed::random(40);
    // As the console shows it, pasted in groups and lower case.
    let r = root(
        &mut sc,
        slot.reader,
        seed.base32_grouped_lower().as_bytes(),
        &[],
    );
    let v = r.ok();
    let c = &v["console"];
    assert_eq!(c["target"], "root");
    assert_eq!(c["credential_id"], ROOT_ID);
    assert_eq!(c["key_serial"], serial);
    assert_eq!(c["touch"], true, "touch is on by default for root");
    assert!(c["verification"].is_null());
    assert_codes_of(&seed, &c["codes"]);
    // The console steps and the touches went to stderr.
    assert!(r.stderr.contains("Show secret key"), "{}", r.stderr);
    assert!(
        r.stderr.contains("Touch your YubiKey (1 of 2)"),
        "{}",
        r.stderr
    );

    // ykman sees it, touch-protected, with the secret's code.
    let listed = sc.ykman(slot.reader, &["oath", "accounts", "list", "-H"]);
    assert!(
        listed.success().stdout.contains(ROOT_ID),
        "{}",
        listed.stdout
    );
    for _ in 0..2 {
        let t0 = common::now();
        let code = sc
            .ykman(slot.reader, &["oath", "accounts", "code", "-s", ROOT_ID])
            .success()
            .stdout
            .trim()
            .to_string();
        if t0 / 30 == common::now() / 30 {
            assert_eq!(code, totp(&seed, Algo::Sha1, 6, 30, t0));
            break;
        }
    }
    // The same again is refused without --force, accepted with it (no touch).
    root(&mut sc, slot.reader, seed.base32().as_bytes(), &[]).err(5, "credential_exists");
    let v = root(
        &mut sc,
        slot.reader,
        seed.base32().as_bytes(),
        &["--force", "--no-touch"],
    )
    .ok();
    assert_eq!(v["console"]["touch"], false);
    assert_codes_of(&seed, &v["console"]["codes"]);
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn root_verification_on_moto_times_out_and_says_so() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let seed = Seed::random(40);
    let t0 = std::time::Instant::now();
    let r = root(
        &mut sc,
        slot.reader,
        seed.base32().as_bytes(),
        &["--verify", "--wait", "3"],
    );
    let msg = r.err(6, "not_verified");
    assert!(msg.contains("AccountMFAEnabled 0"), "{msg}");
    assert!(msg.contains("within 3 s"), "{msg}");
    assert!(msg.contains("stays on the key"), "{msg}");
    // The wait was visible and bounded.
    assert!(r.stderr.contains("Waiting up to 3 s"), "{}", r.stderr);
    assert!(r.stderr.contains("not yet ("), "{}", r.stderr);
    assert!(t0.elapsed() < Duration::from_secs(20));
    // The codes were shown before the wait, and the credential stays: the
    // console may have taken them.
    assert!(r.stderr.contains("MFA code 1: "), "{}", r.stderr);
    assert_eq!(ids(&mut sc, slot.reader, &[]), [ROOT_ID]);
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

/// The IAM user's side through moto: the test creates the virtual device as
/// the console would (through the proxy, which keeps its seed), mfakey
/// takes the secret as an otpauth URI, and the test enables the device with
/// the codes mfakey shows. The proxy accepts them only if they are the
/// seed's; mfakey then sees the new device.
#[test]
fn console_user_is_verified_when_the_console_enables_the_device() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let moto = std::env::var("MFAKEY_TEST_MOTO_ENDPOINT").expect("run tests/run.sh");
    let raw = aws_sdk_iam::Client::new(&block_on(iam_env::test_sdk_config(&moto, 1)));
    let proxied = aws_sdk_iam::Client::new(&block_on(iam_env::test_sdk_config(&endpoint(), 1)));
    let user = unique("cu");
    block_on(raw.create_user().user_name(&user).send()).unwrap();
    let created = block_on(
        proxied
            .create_virtual_mfa_device()
            .virtual_mfa_device_name(format!("{user}-console"))
            .send(),
    )
    .unwrap();
    let dev = created.virtual_mfa_device().unwrap();
    let device = dev.serial_number().to_string();
    let b32 = String::from_utf8(dev.base32_string_seed().unwrap().as_ref().to_vec()).unwrap();
    let seed = Seed::from_bytes(
        &base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &b32).unwrap(),
    );

    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let uri = format!(
        "otpauth://totp/Amazon%20Web%20Services:{user}@123456789012?secret={}&issuer=Amazon%20Web%20Services",
        seed.base32()
    );
    let args = [
        "--json",
        "--reader",
        slot.reader,
        "enroll",
        "console",
        "--name",
        &user,
        "--secret-stdin",
        "--verify",
        "--wait",
        "60",
    ];
    let mut running = sc.spawn_mfakey(&args, uri.as_bytes());
    assert!(
        running.wait_stderr("MFA code 1: ", Duration::from_secs(30)),
        "{}",
        running.stderr_now()
    );
    let line = running
        .stderr_now()
        .lines()
        .find(|l| l.contains("MFA code 1: "))
        .unwrap()
        .to_string();
    let words: Vec<&str> = line.split_whitespace().collect();
    let (c1, c2) = (words[3], words[7]);
    // The console's turn: EnableMFADevice with the shown codes, through the
    // proxy that checks them against the seed.
    block_on(
        proxied
            .enable_mfa_device()
            .user_name(&user)
            .serial_number(&device)
            .authentication_code1(c1)
            .authentication_code2(c2)
            .send(),
    )
    .expect("the proxy accepts the codes mfakey showed");
    let r = running.finish();
    let r = sc.record(&r);
    let v = r.ok();
    let c = &v["console"];
    assert_eq!(c["target"], "user");
    // The label: the account alias (another test may have set one in this
    // moto), else the account id.
    let aliases = block_on(raw.list_account_aliases().send()).unwrap();
    let label = aliases
        .account_aliases()
        .first()
        .cloned()
        .unwrap_or_else(|| "123456789012".to_string());
    assert_eq!(
        c["credential_id"],
        format!("Amazon Web Services:{user}@{label}")
    );
    assert_eq!(c["touch"], false);
    assert_eq!(c["verification"]["status"], "user_device");
    assert_eq!(c["verification"]["serial"], device);
    assert_eq!(c["codes"]["code1"], c1);
    assert_eq!(c["codes"]["code2"], c2);
    assert_codes_of(&seed, &c["codes"]);
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn bad_secrets_and_a_locked_or_full_key_are_refused_cleanly() {
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let mut sc = Scenario::new();
    let seed = Seed::random(20);

    // Invalid base32 and an empty secret: nothing written.
    let bad = format!("{}1", &seed.base32()[..31]);
    let msg = root(&mut sc, slot.reader, bad.as_bytes(), &[]).err(2, "invalid_secret");
    assert!(msg.contains("base32"), "{msg}");
    root(&mut sc, slot.reader, b"  \n", &[]).err(2, "invalid_secret");
    assert!(ids(&mut sc, slot.reader, &[]).is_empty());

    // No label and no IAM to read it from.
    let r = sc.mfakey_stdin(
        &[
            "--json",
            "--reader",
            slot.reader,
            "enroll",
            "root",
            "--secret-stdin",
        ],
        seed.base32().as_bytes(),
    );
    assert!(r.err(2, "invalid_argument").contains("--account-label"));

    // A password-protected key: no password, a wrong one, the right one.
    let pw = sc.input_file("pw", b"right horse\n");
    let wrong = sc.input_file("wrong", b"wrong horse\n");
    set_password(&mut sc, slot.reader, pw.to_str().unwrap());
    root(&mut sc, slot.reader, seed.base32().as_bytes(), &[]).err(4, "locked");
    root(
        &mut sc,
        slot.reader,
        seed.base32().as_bytes(),
        &["--password-file", wrong.to_str().unwrap()],
    )
    .err(4, "wrong_password");
    let v = root(
        &mut sc,
        slot.reader,
        seed.base32().as_bytes(),
        &["--password-file", pw.to_str().unwrap()],
    )
    .ok();
    assert_codes_of(&seed, &v["console"]["codes"]);
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn key_full_and_touch_timeout() {
    let slot = Slot::acquire();
    // A full 5.4.3 key (32 credentials): refused before the secret is used.
    let key = VirtualKey::start(
        &slot,
        &[
            "--serial",
            &random_serial().to_string(),
            "--firmware",
            "5.4.3",
        ],
    );
    let mut sc = Scenario::new();
    let seeds: Vec<Seed> = (0..33).map(|_| Seed::random(20)).collect();
    for (i, s) in seeds.iter().take(32).enumerate() {
        add(&mut sc, slot.reader, &format!("c{i:02}"), s, &[]);
    }
    root(&mut sc, slot.reader, seeds[32].base32().as_bytes(), &[]).err(5, "key_full");
    assert!(!ids(&mut sc, slot.reader, &[]).iter().any(|i| i == ROOT_ID));
    sc.record_key(&key);
    drop(key);

    // Nobody touches: the written credential is deleted again, and it says so.
    let key = VirtualKey::start(
        &slot,
        &[
            "--serial",
            &random_serial().to_string(),
            "--touch",
            "timeout",
        ],
    );
    let msg =
        root(&mut sc, slot.reader, seeds[32].base32().as_bytes(), &[]).err(5, "touch_timeout");
    assert!(msg.contains("was deleted from the key"), "{msg}");
    assert!(ids(&mut sc, slot.reader, &[]).is_empty());
    sc.record_key(&key);
    sc.assert_no_secret(&seeds.iter().collect::<Vec<_>>());
}

/// mfakey in a terminal (util-linux `script` gives it a pty): the secret at
/// the no-echo prompt, the codes until Enter; after a failure, the offer to
/// delete the credential, answered no and yes.
#[test]
fn terminal_mode_prompts_confirms_and_offers_to_delete() {
    let slot = Slot::acquire();
    let mut sc = Scenario::new();
    let seed = Seed::random(20);
    let term = |sc: &mut Scenario, extra: &str, input: String| {
        let cmd = format!(
            "{} --reader '{}' enroll root --account-label acme-prod {extra}",
            common::process::mfakey_bin().display(),
            slot.reader
        );
        let env = [
            ("HOME".into(), sc.home.clone().into_os_string()),
            ("TERM".into(), "dumb".into()),
        ];
        // Typed once the prompt is up (typed ahead, the terminal itself
        // would echo it before mfakey turns echo off).
        let input_file = sc.input_file("typed", input.as_bytes());
        let shell = format!(
            "(sleep 3; cat '{}') | script -qec \"{cmd}\" /dev/null",
            input_file.display()
        );
        let run = common::Running::spawn(
            std::path::Path::new("sh"),
            &["-c", &shell],
            &env,
            &["PCSCLITE_CSOCK_NAME"],
            b"",
        )
        .finish();
        sc.record(&run)
    };

    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let r = term(&mut sc, "--no-touch", format!("{}\n\n", seed.base32()));
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    assert!(
        r.stdout.contains("Secret key from the console"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("press Enter"), "{}", r.stdout);
    assert!(r.stdout.contains(" s left)"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("root: \"{ROOT_ID}\"")),
        "{}",
        r.stdout
    );
    assert_eq!(ids(&mut sc, slot.reader, &[]), [ROOT_ID]);
    sc.record_key(&key);
    drop(key);

    // Nobody touches: asked whether to delete; "n" leaves it, Enter deletes.
    let key = VirtualKey::start(
        &slot,
        &[
            "--serial",
            &random_serial().to_string(),
            "--touch",
            "timeout",
        ],
    );
    let r = term(&mut sc, "", format!("{}\nn\n", seed.base32()));
    assert_eq!(r.code, Some(5), "{}", r.stdout);
    assert!(r.stdout.contains("from the key? [Y/n]"), "{}", r.stdout);
    assert!(r.stdout.contains("was left on the key"), "{}", r.stdout);
    assert_eq!(ids(&mut sc, slot.reader, &[]), [ROOT_ID]);
    // --force over it: the replacement is written beside it and deleted
    // again; the credential it was to replace keeps working.
    let r = term(&mut sc, "--force", format!("{}\n\n", seed.base32()));
    assert_eq!(r.code, Some(5), "{}", r.stdout);
    assert!(
        r.stdout.contains("was deleted from the key"),
        "{}",
        r.stdout
    );
    assert_eq!(ids(&mut sc, slot.reader, &[]), [ROOT_ID]);
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}
