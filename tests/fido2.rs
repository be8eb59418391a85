//! `mfakey fido2` on this machine, which has no HID at all: the answers for
//! a key without FIDO2 and for a key seen only over PC/SC. The FIDO2 logic
//! itself (PIN set/wrong/blocked, passkeys, getInfo) is tested against the
//! fake authenticator (src/fido2/ops_tests.rs); a real key is exercised by
//! tests/fido2_hw.rs when MFAKEY_HW_FIDO2_SERIAL names it.

mod common;

use common::{random_serial, Scenario, Slot, VirtualKey};

#[test]
fn a_key_with_fido2_disabled_cannot_hold_a_passkey() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let serial = random_serial();
    let key = VirtualKey::start(&slot, &["--serial", &serial.to_string(), "--no-fido2"]);
    let msg = sc
        .mfakey(&["--json", "--reader", slot.reader, "fido2", "info"])
        .err(5, "no_fido2");
    assert!(msg.contains("cannot hold a passkey"), "{msg}");
    assert!(msg.contains(&serial.to_string()), "{msg}");
    sc.record_key(&key);
    sc.assert_no_secret(&[]);
}

#[test]
fn no_hid_key_is_told_apart_from_the_pcsc_key() {
    if std::path::Path::new("/dev/hidraw0").exists() {
        eprintln!("this machine has HID devices: the no-HID answer cannot be checked here");
        return;
    }
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let serial = random_serial();
    let key = VirtualKey::start(&slot, &["--serial", &serial.to_string()]);
    // The PIN file is read (and checked) before the key is looked for.
    let pin = sc.input_file("pin", b"123456\n");
    let pin = pin.to_str().unwrap();
    for cmd in [
        vec!["fido2", "info"],
        vec!["fido2", "credentials", "list", "--pin-file", pin],
        vec!["fido2", "register", "--user", "bob"],
    ] {
        let mut args = vec!["--json", "--reader", slot.reader];
        args.extend_from_slice(&cmd);
        let msg = sc.mfakey(&args).err(3, "no_fido_key");
        assert!(msg.contains("no FIDO security key found"), "{msg}");
        assert!(
            msg.contains(&format!("key {serial} is seen over PC/SC")),
            "{cmd:?} in {}: {msg}",
            slot.reader
        );
    }
    // Without any PC/SC key in the chosen reader: plain "no key".
    drop(key);
    let msg = sc
        .mfakey(&["--json", "--reader", slot.reader, "fido2", "info"])
        .err(3, "no_fido_key");
    assert!(!msg.contains("PC/SC"), "{msg}");
    sc.assert_no_secret(&[]);
}

#[test]
fn register_needs_a_user_or_root() {
    let mut sc = Scenario::new();
    sc.mfakey(&["--json", "fido2", "register"])
        .err(2, "invalid_argument");
    sc.mfakey(&["--json", "fido2", "register", "--user", "a", "--root"])
        .err(2, "invalid_argument");
    sc.assert_no_secret(&[]);
}
