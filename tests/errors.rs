//! Error paths: exit code and JSON error kind per docs (CLI contract), nothing
//! half-written on the key, and no seed in any output.

mod common;

use std::time::Duration;

use common::oath::{add, code_str, ids, list, set_password, try_add};
use common::{random_serial, totp, Algo, Scenario, Seed, Slot, VirtualKey};

const T: u64 = 1_700_000_000;

fn start<'s>(slot: &'s Slot, extra: &[&str]) -> VirtualKey<'s> {
    let s = random_serial().to_string();
    let mut args = vec!["--serial", &s];
    args.extend_from_slice(extra);
    VirtualKey::start(slot, &args)
}

// ---- device selection -------------------------------------------------------

#[test]
fn pcscd_not_running() {
    // pcsc-lite's client library honours PCSCLITE_CSOCK_NAME: a socket that
    // does not exist looks exactly like a stopped pcscd.
    let mut sc = Scenario::new();
    sc.set_env("PCSCLITE_CSOCK_NAME", sc.dir().join("no-pcscd.comm"));
    sc.mfakey(&["--json", "keys"]).err(3, "pcsc_not_running");
    sc.mfakey(&["--json", "oath", "list"])
        .err(3, "pcsc_not_running");
    sc.assert_no_secret(&[]);
}

#[test]
fn no_key_in_the_chosen_reader() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    sc.mfakey(&["--json", "--reader", slot.reader, "oath", "list"])
        .err(3, "no_key");
    let seed = Seed::random(20);
    try_add(&mut sc, slot.reader, "x", seed.base32().as_bytes(), &[]).err(3, "no_key");
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn unknown_reader_name() {
    let mut sc = Scenario::new();
    sc.mfakey(&["--json", "--reader", "No Such Reader 42", "oath", "list"])
        .err(3, "reader_not_found");
    sc.assert_no_secret(&[]);
}

#[test]
fn ambiguous_reader_substring() {
    let mut sc = Scenario::new();
    // "Virtual PCD" matches every vpcd reader.
    sc.mfakey(&["--json", "--reader", "Virtual PCD", "oath", "list"])
        .err(3, "ambiguous_reader");
    sc.assert_no_secret(&[]);
}

#[test]
fn several_keys_without_a_choice_are_refused() {
    let mut sc = Scenario::new();
    // All slots: mfakey scans every reader, and no other test's key may be
    // in the middle of a command there.
    let slots = Slot::acquire_all();
    let (sa, sb) = (random_serial(), random_serial());
    let _a = VirtualKey::start(&slots[0], &["--serial", &sa.to_string()]);
    let _b = VirtualKey::start(&slots[1], &["--serial", &sb.to_string()]);
    let seed = Seed::random(20);
    let r = sc.mfakey_stdin(
        &["--json", "oath", "add", "x", "--secret-stdin"],
        seed.base32().as_bytes(),
    );
    let msg = r.err(3, "several_keys");
    let shown = format!("{msg}\n{}", r.stderr);
    for (slot, serial) in [(&slots[0], sa), (&slots[1], sb)] {
        assert!(
            shown.contains(&serial.to_string()) || shown.contains(slot.reader),
            "key {serial} not listed: {shown}"
        );
    }
    for slot in &slots[..2] {
        assert!(
            ids(&mut sc, slot.reader, &[]).is_empty(),
            "refused add wrote to {}",
            slot.reader
        );
    }
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn serial_selects_one_of_two_keys() {
    let mut sc = Scenario::new();
    // All slots: no key of another test may be scanned meanwhile.
    let slots = Slot::acquire_all();
    let (sa, sb) = (random_serial(), random_serial());
    let _a = VirtualKey::start(&slots[0], &["--serial", &sa.to_string()]);
    let _b = VirtualKey::start(&slots[1], &["--serial", &sb.to_string()]);
    let seed = Seed::random(20);
    let (flag, value) = ("--serial", sb.to_string());
    let v = sc
        .mfakey_stdin(
            &[
                "--json",
                flag,
                &value,
                "oath",
                "add",
                "on-b",
                "--secret-stdin",
            ],
            seed.base32().as_bytes(),
        )
        .ok();
    assert_eq!(v["added"]["id"], "on-b");
    let v = sc.mfakey(&["--json", flag, &value, "oath", "list"]).ok();
    assert_eq!(
        (v["reader"].as_str(), v["serial"].as_u64()),
        (Some(slots[1].reader), Some(sb as u64))
    );
    assert_eq!(v["credentials"].as_array().unwrap().len(), 1);
    let v = sc
        .mfakey(&["--json", "--serial", &sa.to_string(), "oath", "list"])
        .ok();
    assert_eq!(v["serial"], sa);
    assert!(
        v["credentials"].as_array().unwrap().is_empty(),
        "added to the wrong key: {v}"
    );
    sc.mfakey(&["--json", "--serial", "99999999", "oath", "list"])
        .err(3, "no_key");
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn key_removed_mid_command() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let mut key = start(&slot, &["--touch", "delay-ms=3000"]);
    let seed = Seed::random(20);
    add(&mut sc, slot.reader, "touchy", &seed, &["--touch"]);
    let mut running = sc.spawn_mfakey(
        &["--json", "--reader", slot.reader, "oath", "code", "touchy"],
        b"",
    );
    assert!(
        running.wait_stderr("Touch your YubiKey", Duration::from_secs(10)),
        "mfakey did not wait for a touch: {}",
        running.stderr_now()
    );
    std::thread::sleep(Duration::from_millis(300));
    // SIGKILL: the connection drops mid-APDU, as when a key is pulled out.
    key.yank();
    let r = running.finish();
    sc.record(&r).err(3, "key_removed");
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

// ---- refused input: exit 2, key unchanged ------------------------------------

#[test]
fn invalid_base32_is_refused_without_writing() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, &[]);
    let existing = Seed::random(20);
    add(&mut sc, slot.reader, "existing", &existing, &[]);
    let secret = format!("{}1!", &existing.base32()[..16]);
    let msg = try_add(&mut sc, slot.reader, "new", secret.as_bytes(), &[]).err(2, "invalid_secret");
    assert!(
        !msg.contains(&existing.base32()[..16]),
        "the message quotes the secret: {msg}"
    );
    let file = sc.input_file("bad", b"not base32 at all: 0189\n");
    sc.mfakey(&[
        "--json",
        "--reader",
        slot.reader,
        "oath",
        "add",
        "new",
        "--secret-file",
        file.to_str().unwrap(),
    ])
    .err(2, "invalid_secret");
    assert_eq!(ids(&mut sc, slot.reader, &[]), ["existing"]);
    sc.record_key(&key);
    sc.assert_no_secret(&[&existing]);
}

#[test]
fn empty_secret_is_refused() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, &[]);
    try_add(&mut sc, slot.reader, "empty", b"", &[]).err(2, "invalid_secret");
    try_add(&mut sc, slot.reader, "blank", b"   \n", &[]).err(2, "invalid_secret");
    let file = sc.input_file("empty", b"");
    sc.mfakey(&[
        "--json",
        "--reader",
        slot.reader,
        "oath",
        "add",
        "f",
        "--secret-file",
        file.to_str().unwrap(),
    ])
    .err(2, "invalid_secret");
    assert!(ids(&mut sc, slot.reader, &[]).is_empty());
    sc.record_key(&key);
    sc.assert_no_secret(&[]);
}

#[test]
fn no_secret_source_and_no_terminal_is_a_usage_error() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, &[]);
    let msg = sc
        .mfakey(&["--json", "--reader", slot.reader, "oath", "add", "nosecret"])
        .err(2, "invalid_argument");
    assert!(msg.contains("not a terminal"), "{msg}");
    assert!(ids(&mut sc, slot.reader, &[]).is_empty());
    sc.record_key(&key);
    sc.assert_no_secret(&[]);
}

#[test]
fn id_of_64_bytes_is_accepted_and_65_refused() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, &[]);
    let seed = Seed::random(20);
    let issuer = "Amazon Web Services"; // id = issuer + ":" + name
    let name64 = "n".repeat(64 - issuer.len() - 1);
    let added = add(&mut sc, slot.reader, &name64, &seed, &["--issuer", issuer]);
    assert_eq!(added["id"].as_str().map(str::len), Some(64));

    let name65 = "m".repeat(65 - issuer.len() - 1);
    try_add(
        &mut sc,
        slot.reader,
        &name65,
        seed.base32().as_bytes(),
        &["--issuer", issuer],
    )
    .err(2, "id_too_long");
    // 64 characters but 65 bytes: the limit is in bytes.
    let wide = format!("{}é", "w".repeat(63));
    assert_eq!((wide.chars().count(), wide.len()), (64, 65));
    try_add(&mut sc, slot.reader, &wide, seed.base32().as_bytes(), &[]).err(2, "id_too_long");
    assert_eq!(
        ids(&mut sc, slot.reader, &[]),
        [format!("{issuer}:{name64}")]
    );
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn nine_digits_is_refused() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, &[]);
    let seed = Seed::random(20);
    try_add(
        &mut sc,
        slot.reader,
        "nine",
        seed.base32().as_bytes(),
        &["--digits", "9"],
    )
    .err(2, "invalid_argument");
    assert!(ids(&mut sc, slot.reader, &[]).is_empty());
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

// ---- refused operations: exit 5 ----------------------------------------------

#[test]
fn existing_id_without_force_keeps_the_old_seed() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, &[]);
    let old = Seed::random(20);
    let new = Seed::random(20);
    add(&mut sc, slot.reader, "dup", &old, &["--issuer", "Ex"]);
    try_add(
        &mut sc,
        slot.reader,
        "dup",
        new.base32().as_bytes(),
        &["--issuer", "Ex"],
    )
    .err(5, "credential_exists");
    assert_eq!(ids(&mut sc, slot.reader, &[]), ["Ex:dup"]);
    assert_eq!(
        code_str(&mut sc, slot.reader, "Ex:dup", T, &[]),
        totp(&old, Algo::Sha1, 6, 30, T),
        "overwritten"
    );
    sc.record_key(&key);
    sc.assert_no_secret(&[&old, &new]);
}

#[test]
fn key_full_at_32_on_firmware_5_4() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, &["--firmware", "5.4.3"]);
    let seeds: Vec<Seed> = (0..33).map(|_| Seed::random(20)).collect();
    for (i, seed) in seeds.iter().take(32).enumerate() {
        add(&mut sc, slot.reader, &format!("c{i:02}"), seed, &[]);
    }
    try_add(
        &mut sc,
        slot.reader,
        "c32",
        seeds[32].base32().as_bytes(),
        &[],
    )
    .err(5, "key_full");
    let now = ids(&mut sc, slot.reader, &[]);
    assert_eq!(now.len(), 32);
    assert!(!now.iter().any(|id| id == "c32"));
    sc.record_key(&key);
    sc.assert_no_secret(&seeds.iter().collect::<Vec<_>>());
}

#[test]
fn unknown_credential() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, &[]);
    let seed = Seed::random(20);
    add(&mut sc, slot.reader, "present", &seed, &[]);
    let r = |sc: &mut Scenario, args: &[&str]| {
        let mut all = vec!["--json", "--reader", slot.reader, "oath"];
        all.extend_from_slice(args);
        sc.mfakey(&all)
    };
    r(&mut sc, &["code", "absent"]).err(5, "no_such_credential");
    r(&mut sc, &["delete", "absent"]).err(5, "no_such_credential");
    r(&mut sc, &["rename", "absent", "other"]).err(5, "no_such_credential");
    assert_eq!(ids(&mut sc, slot.reader, &[]), ["present"]);
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn ambiguous_credential_name() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, &[]);
    let (a, b) = (Seed::random(20), Seed::random(20));
    add(&mut sc, slot.reader, "alice@1111", &a, &[]);
    add(&mut sc, slot.reader, "alice@2222", &b, &[]);
    // Not an id: refused, pointing at --match.
    let msg = sc
        .mfakey(&["--json", "--reader", slot.reader, "oath", "delete", "alice"])
        .err(5, "no_such_credential");
    assert!(msg.contains("--match"), "{msg}");
    let msg = sc
        .mfakey(&[
            "--json",
            "--reader",
            slot.reader,
            "oath",
            "delete",
            "alice",
            "--match",
            "--force",
        ])
        .err(5, "ambiguous_credential");
    assert!(
        msg.contains("alice@1111") && msg.contains("alice@2222"),
        "matches not listed: {msg}"
    );
    assert_eq!(
        ids(&mut sc, slot.reader, &[]).len(),
        2,
        "an ambiguous delete deleted something"
    );
    sc.record_key(&key);
    sc.assert_no_secret(&[&a, &b]);
}

#[test]
fn touch_timeout() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, &["--touch", "timeout"]);
    let seed = Seed::random(20);
    add(&mut sc, slot.reader, "untouched", &seed, &["--touch"]);
    sc.mfakey(&[
        "--json",
        "--reader",
        slot.reader,
        "oath",
        "code",
        "untouched",
    ])
    .err(5, "touch_timeout");
    assert_eq!(ids(&mut sc, slot.reader, &[]), ["untouched"]);
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

// ---- authentication: exit 4 ----------------------------------------------------

#[test]
fn locked_key_without_or_with_a_wrong_password() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, &[]);
    let seed = Seed::random(20);
    add(&mut sc, slot.reader, "guarded", &seed, &[]);
    let good = sc.input_file("good", b"right password\n");
    let bad = sc.input_file("bad", b"wrong password\n");
    let (good, bad) = (good.to_str().unwrap(), bad.to_str().unwrap());
    set_password(&mut sc, slot.reader, good);

    sc.mfakey(&["--json", "--reader", slot.reader, "oath", "code", "guarded"])
        .err(4, "locked");
    sc.mfakey(&[
        "--json",
        "--reader",
        slot.reader,
        "--password-file",
        bad,
        "oath",
        "list",
    ])
    .err(4, "wrong_password");
    let other = Seed::random(20);
    let r = sc.mfakey_stdin(
        &[
            "--json",
            "--reader",
            slot.reader,
            "--password-file",
            bad,
            "oath",
            "add",
            "sneaky",
            "--secret-stdin",
        ],
        other.base32().as_bytes(),
    );
    r.err(4, "wrong_password");
    sc.mfakey(&[
        "--json",
        "--reader",
        slot.reader,
        "--password-file",
        bad,
        "oath",
        "delete",
        "guarded",
    ])
    .err(4, "wrong_password");
    assert_eq!(
        list(&mut sc, slot.reader, &["--password-file", good]).len(),
        1,
        "a refused command changed the key"
    );
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed, &other]);
}
