//! `mfakey enroll user` end to end: the real binary, `virtual-yubikey`
//! through pcscd, moto behind the code-checking proxy (which refuses any
//! EnableMFADevice whose two codes are not the consecutive TOTP codes of the
//! seed moto issued), and ykman reading the key afterwards. Every fault
//! leaves no unassigned device and no stray credential, and no seed in any
//! output or file.

mod common;
#[path = "support/iam_env.rs"]
mod iam_env;
#[path = "support/moto_iam.rs"]
mod moto_iam;

use common::oath::{add, ids, set_password};
use common::{random_serial, totp, Algo, Scenario, Seed, Slot, VirtualKey};
use iam_env::{enables_for, endpoint, fault_matching, proxy_lock, unique, ClockOffset};
use moto_iam::Iam;
use serde_json::json;
use std::time::Duration;

fn enroll(sc: &mut Scenario, reader: &str, user: &str, extra: &[&str]) -> common::Run {
    let mut args = vec!["--json", "--reader", reader, "enroll", "user", user];
    args.extend_from_slice(extra);
    sc.mfakey(&args)
}

/// The scenario's end: no seed issued for `user`'s devices (deleted ones
/// included), nor any of `extra` (the key's other seeds), in any output or
/// file.
fn assert_no_seed_of(sc: &mut Scenario, user: &str, extra: &[&Seed]) {
    let seeds: Vec<Seed> = iam_env::issued_seeds()
        .into_iter()
        .filter(|(serial, _)| serial.contains(user))
        .map(|(_, b)| Seed::from_bytes(&b))
        .collect();
    let mut all: Vec<&Seed> = seeds.iter().collect();
    all.extend_from_slice(extra);
    sc.assert_no_secret(&all);
}

/// Starts a touch enrollment and returns once mfakey asks for the first touch.
fn enrolling_awaits_first_touch(sc: &Scenario, reader: &str, user: &str) -> common::Running {
    let args = [
        "--json", "--reader", reader, "enroll", "user", user, "--touch",
    ];
    let mut run = sc.spawn_mfakey(&args, b"");
    let asked = run.wait_stderr("Touch your YubiKey (1 of 2)", Duration::from_secs(20));
    assert!(asked, "{}", run.stderr_now());
    run
}

/// Nothing of `user`'s left: no device named after them, none attached, and
/// (when given) no credential on the key.
fn assert_nothing_left(iam: &Iam, sc: &mut Scenario, user: &str, reader: Option<&str>) {
    assert!(
        iam.virtual_devices(user).is_empty(),
        "devices left: {:?}",
        iam.virtual_devices(user)
    );
    assert!(
        iam.user_devices(user).is_empty(),
        "MFA devices attached to {user}"
    );
    if let Some(reader) = reader {
        let left: Vec<String> = ids(sc, reader, &[])
            .into_iter()
            .filter(|i| i.contains(user))
            .collect();
        assert!(left.is_empty(), "credentials left on the key: {left:?}");
    }
}

#[test]
fn enrolls_a_user_with_codes_the_proxy_accepts_and_ykman_sees() {
    let _l = proxy_lock();
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let iam = Iam::new();
    let user = iam.create_user("alice");
    let slot = Slot::acquire();
    let serial = random_serial();
    let key = VirtualKey::start(&slot, &["--serial", &serial.to_string()]);

    let v = enroll(&mut sc, slot.reader, &user, &["--tag", "team=ops"]).ok();
    let e = &v["enrolled"];
    let device = e["device_serial"].as_str().unwrap().to_string();
    assert_eq!(
        device,
        format!("arn:aws:iam::123456789012:mfa/{user}-yk{serial}")
    );
    assert_eq!(e["key_serial"], json!(serial));
    let id = format!("Amazon Web Services:{user}@123456789012");
    assert_eq!(e["credential_id"], json!(id));
    let steps: Vec<&str> = e["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["preflight", "create", "write", "check", "enable", "verify"]
    );

    // The proxy checked the two codes against moto's seed and accepted them.
    let log = enables_for(&device);
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["accepted"], true, "{log:?}");
    assert_eq!(iam.user_devices(&user), vec![device.clone()]);

    // The key holds the seed AWS issued: ykman lists it and its code is the seed's.
    let (_, assigned, seed) = iam.virtual_devices(&user).remove(0);
    assert_eq!(assigned.as_deref(), Some(user.as_str()));
    let seed = seed.expect("moto lists the seed");
    let listed = sc.ykman(slot.reader, &["oath", "accounts", "list"]);
    assert!(
        listed.success().stdout.lines().any(|l| l.trim() == id),
        "{}",
        listed.stdout
    );
    for _ in 0..2 {
        let t0 = common::now();
        let code = sc
            .ykman(slot.reader, &["oath", "accounts", "code", "-s", &id])
            .success()
            .stdout
            .trim()
            .to_string();
        if t0 / 30 == common::now() / 30 {
            assert_eq!(code, totp(&seed, Algo::Sha1, 6, 30, t0));
            break;
        }
    }
    sc.record_key(&key);
    assert_no_seed_of(&mut sc, &user, &[&seed]);
}

#[test]
fn touch_enrollment_announces_two_touches() {
    let _l = proxy_lock();
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let iam = Iam::new();
    let user = iam.create_user("toucher");
    let slot = Slot::acquire();
    let key = VirtualKey::start(
        &slot,
        &[
            "--serial",
            &random_serial().to_string(),
            "--touch",
            "delay-ms=50",
        ],
    );
    let r = enroll(&mut sc, slot.reader, &user, &["--touch"]);
    let v = r.ok();
    assert_eq!(v["enrolled"]["touch"], true);
    assert!(
        r.stderr.contains("Touch your YubiKey (1 of 2)") && r.stderr.contains("(2 of 2)"),
        "{}",
        r.stderr
    );
    let (device, _, seed) = iam.virtual_devices(&user).remove(0);
    assert_eq!(enables_for(&device)[0]["accepted"], true);
    sc.record_key(&key);
    assert_no_seed_of(&mut sc, &user, &[&seed.unwrap()]);
}

/// The IAM endpoint stops answering at one step (the proxy drops the
/// connection for every attempt the SDK makes).
#[test]
fn iam_going_away_at_each_step_leaves_nothing() {
    let _l = proxy_lock();
    let iam = Iam::new();
    let slot = Slot::acquire();
    let serial = random_serial();
    let key = VirtualKey::start(&slot, &["--serial", &serial.to_string()]);
    // (action, the parameter that picks this test's requests, requests of
    // that kind to let through first). The first ListMFADevices is
    // preflight's; the second is the verify.
    let cases = [
        ("GetUser", "UserName", 0),
        ("CreateVirtualMFADevice", "VirtualMFADeviceName", 0),
        ("EnableMFADevice", "UserName", 0),
        ("ListMFADevices", "UserName", 1),
    ];
    for (action, param, skip) in cases {
        let mut sc = Scenario::new();
        sc.set_aws_env(&endpoint());
        let user = iam.create_user("away");
        let value = match param {
            "UserName" => user.clone(),
            _ => format!("{user}-yk{serial}"),
        };
        fault_matching(action, "drop", 20, json!({ param: value }), skip);
        let r = enroll(&mut sc, slot.reader, &user, &[]);
        let msg = r.err(6, "endpoint_unreachable");
        assert!(!msg.is_empty());
        iam_env::control("POST", "/__proxy__/reset", "{}");
        assert_nothing_left(&iam, &mut sc, &user, Some(slot.reader));
        sc.record_key(&key);
        assert_no_seed_of(&mut sc, &user, &[]);
    }
}

#[test]
fn refusals_before_anything_is_created() {
    let _l = proxy_lock();
    let iam = Iam::new();
    let slot = Slot::acquire();
    let serial = random_serial();
    let key = VirtualKey::start(&slot, &["--serial", &serial.to_string()]);

    // A user with 8 MFA devices.
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let full = iam.create_user("eight");
    for i in 0..8 {
        let d = iam.create_device(&format!("{full}-other{i}"), &[]);
        iam.enable(&full, &d);
    }
    let msg = enroll(&mut sc, slot.reader, &full, &[]).err(5, "too_many_devices");
    assert!(msg.contains("already has 8 MFA devices"), "{msg}");
    assert_eq!(iam.user_devices(&full).len(), 8);
    assert!(iam.virtual_devices(&format!("{full}-yk")).is_empty());

    // A device of that name left by an earlier mfakey run.
    let taken = iam.create_user("taken");
    iam.create_device(
        &format!("{taken}-yk{serial}"),
        &[("mfakey:managed", "true")],
    );
    let msg = enroll(&mut sc, slot.reader, &taken, &[]).err(5, "device_name_taken");
    assert!(msg.contains("mfakey cleanup --delete"), "{msg}");

    // An unknown user.
    enroll(&mut sc, slot.reader, &unique("nobody"), &[]).err(6, "no_such_entity");

    // AWS's clock two minutes away from the host's.
    let skewed = iam.create_user("skew");
    {
        let _offset = ClockOffset::set(120);
        let msg = enroll(&mut sc, slot.reader, &skewed, &[]).err(5, "clock_skew");
        assert!(
            msg.contains("120") || msg.contains("119") || msg.contains("121"),
            "{msg}"
        );
    }
    assert_nothing_left(&iam, &mut sc, &skewed, Some(slot.reader));
    assert!(ids(&mut sc, slot.reader, &[]).is_empty());
    sc.record_key(&key);
    for u in [&full, &taken, &skewed] {
        assert_no_seed_of(&mut sc, u, &[]);
    }
}

#[test]
fn key_side_refusals() {
    let _l = proxy_lock();
    let iam = Iam::new();
    let slot = Slot::acquire();
    // A full 5.4.3 key.
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
    sc.set_aws_env(&endpoint());
    let seeds: Vec<Seed> = (0..32).map(|_| Seed::random(20)).collect();
    for (i, s) in seeds.iter().enumerate() {
        add(&mut sc, slot.reader, &format!("c{i:02}"), s, &[]);
    }
    let user = iam.create_user("fullkey");
    enroll(&mut sc, slot.reader, &user, &[]).err(5, "key_full");
    assert_nothing_left(&iam, &mut sc, &user, None);
    sc.record_key(&key);
    assert_no_seed_of(&mut sc, &user, &seeds.iter().collect::<Vec<_>>());
    drop(key);

    // A password-protected key and a wrong password.
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let pw = sc.input_file("pw", b"right horse\n");
    let wrong = sc.input_file("wrong", b"wrong horse\n");
    set_password(&mut sc, slot.reader, pw.to_str().unwrap());
    let user = iam.create_user("locked");
    enroll(&mut sc, slot.reader, &user, &[]).err(4, "locked");
    enroll(
        &mut sc,
        slot.reader,
        &user,
        &["--password-file", wrong.to_str().unwrap()],
    )
    .err(4, "wrong_password");
    assert_nothing_left(&iam, &mut sc, &user, None);
    // The right password enrolls.
    enroll(
        &mut sc,
        slot.reader,
        &user,
        &["--password-file", pw.to_str().unwrap()],
    )
    .ok();
    let (_, _, seed) = iam.virtual_devices(&user).remove(0);
    sc.record_key(&key);
    assert_no_seed_of(&mut sc, &user, &[&seed.unwrap()]);
}

#[test]
fn key_removed_mid_enrollment_then_recover() {
    let _l = proxy_lock();
    let iam = Iam::new();
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let slot = Slot::acquire();
    let serial = random_serial().to_string();
    // The card keeps its credentials in a state file (outside HOME: it is the
    // card's memory, not something mfakey wrote), so it can be re-inserted.
    let state = sc.dir().join("card-state.json");
    let state = state.to_str().unwrap();
    let mut key = VirtualKey::start(
        &slot,
        &[
            "--serial",
            &serial,
            "--state",
            state,
            "--touch",
            "delay-ms=5000",
        ],
    );
    let user = iam.create_user("pulled");
    let run = enrolling_awaits_first_touch(&sc, slot.reader, &user);
    key.yank();
    let r = sc.record(&run.finish());
    // The credential was written before the key went: the rollback could not
    // reach it, and says so; the IAM device is gone.
    let msg = r.err(7, "rollback_incomplete");
    assert!(msg.contains("mfakey recover"), "{msg}");
    assert!(
        iam.virtual_devices(&user).is_empty(),
        "{:?}",
        iam.virtual_devices(&user)
    );

    // Re-insert the key: recover removes the credential.
    let key = VirtualKey::start(&slot, &["--serial", &serial, "--state", state]);
    assert_eq!(ids(&mut sc, slot.reader, &[]).len(), 1);
    let v = sc
        .mfakey(&["--json", "--reader", slot.reader, "recover"])
        .ok();
    assert_eq!(v["runs"][0]["outcome"], "rolled_back", "{v}");
    assert_nothing_left(&iam, &mut sc, &user, Some(slot.reader));
    let again = sc
        .mfakey(&["--json", "--reader", slot.reader, "recover"])
        .ok();
    assert_eq!(again["runs"], json!([]));
    sc.record_key(&key);
    assert_no_seed_of(&mut sc, &user, &[]);
}

#[test]
fn killed_mid_enrollment_then_recover() {
    let _l = proxy_lock();
    let iam = Iam::new();
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let slot = Slot::acquire();
    let key = VirtualKey::start(
        &slot,
        &[
            "--serial",
            &random_serial().to_string(),
            "--touch",
            "delay-ms=3000",
        ],
    );
    let user = iam.create_user("killed");
    let run = enrolling_awaits_first_touch(&sc, slot.reader, &user);
    // SIGKILL: no rollback runs. The device and the credential are left.
    unsafe { libc::kill(run.pid() as i32, libc::SIGKILL) };
    let r = sc.record(&run.finish());
    assert_ne!(r.code, Some(0));
    let left = iam.virtual_devices(&user);
    assert_eq!(left.len(), 1);
    let seed = left[0].2.clone().unwrap();
    // Wait for the card to finish the touch it was waiting for.
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(ids(&mut sc, slot.reader, &[]).len(), 1);

    // AWS refusing recover's first read: AWS's kind and exit code, nothing
    // undone, the run still open for the next try.
    iam_env::fault("ListMFADevices", "access_denied", 1, &user);
    let r = sc.mfakey(&["--json", "--reader", slot.reader, "recover"]);
    r.err(6, "access_denied");
    assert_eq!(iam.virtual_devices(&user).len(), 1);

    let v = sc
        .mfakey(&["--json", "--reader", slot.reader, "recover"])
        .ok();
    assert_eq!(v["runs"][0]["outcome"], "rolled_back", "{v}");
    assert_nothing_left(&iam, &mut sc, &user, Some(slot.reader));
    sc.record_key(&key);
    assert_no_seed_of(&mut sc, &user, &[&seed]);
}

#[test]
fn cleanup_lists_and_deletes_only_mfakeys_leftovers() {
    let _l = proxy_lock();
    let iam = Iam::new();
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let ours = iam.create_device(&unique("leftover"), &[("mfakey:managed", "true")]);
    let theirs = iam.create_device(&unique("foreign"), &[]);
    let v = sc.mfakey(&["--json", "cleanup"]).ok();
    let listed: Vec<&str> = v["unassigned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(listed.contains(&ours.as_str()), "{v}");
    assert!(!listed.contains(&theirs.as_str()), "{v}");
    assert_eq!(v["deleted"], json!([]));
    let v = sc.mfakey(&["--json", "cleanup", "--delete"]).ok();
    assert!(
        v["deleted"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == ours.as_str()),
        "{v}"
    );
    assert!(iam.virtual_devices("leftover").iter().all(|d| d.0 != ours));
    assert_eq!(
        iam.virtual_devices("foreign")
            .iter()
            .filter(|d| d.0 == theirs)
            .count(),
        1
    );
    assert_no_seed_of(&mut sc, "leftover", &[]);
}
