//! The FIDO2 rules against the fake authenticator.

use super::*;
use crate::fido2::fake::FakeFido2;
use crate::fido2::format::{aaguid_string, firmware_string, to_hex};

fn s(v: &str) -> SecretString {
    SecretString::new(v.to_string())
}

// As the CLI calls them: describe the key, then the operation on that answer.

fn set_pin(k: &mut FakeFido2, new_pin: &SecretString) -> Result<(), Fido2Error> {
    let info = describe(k)?;
    super::set_pin(k, &info, new_pin)
}

fn change_pin(
    k: &mut FakeFido2,
    current: &SecretString,
    new_pin: &SecretString,
) -> Result<(), Fido2Error> {
    let info = describe(k)?;
    super::change_pin(k, &info, current, new_pin, LastTry::Allow)
}

fn list_credentials(
    k: &mut FakeFido2,
    pin: &SecretString,
) -> Result<Vec<Fido2Credential>, Fido2Error> {
    let info = describe(k)?;
    super::list_credentials(k, &info, pin, LastTry::Allow)
}

fn delete_credential(
    k: &mut FakeFido2,
    pin: &SecretString,
    id_hex: &str,
) -> Result<Fido2Credential, Fido2Error> {
    let info = describe(k)?;
    super::delete_credential(k, &info, pin, &credential_id(id_hex)?, LastTry::Allow)
}

#[test]
fn describe_reads_retries_only_with_a_pin() {
    let mut k = FakeFido2::yubikey5();
    let i = describe(&mut k).unwrap();
    assert_eq!(i.pin_retries, None);
    assert!(!k.calls.contains(&"pin_retries"));
    let mut k = FakeFido2::yubikey5().with_pin("123456").with_retries(5);
    let i = describe(&mut k).unwrap();
    assert_eq!(i.pin_retries, Some(5));
    assert_eq!(i.options.client_pin, Some(true));
    let json = serde_json::to_value(&i).unwrap();
    for k in [
        "versions",
        "aaguid",
        "options",
        "pin_uv_auth_protocols",
        "min_pin_length",
        "remaining_discoverable_credentials",
        "firmware",
        "pin_retries",
    ] {
        assert!(json.get(k).is_some(), "{k} missing in {json}");
    }
    for k in ["client_pin", "rk", "cred_mgmt", "always_uv"] {
        assert!(json["options"].get(k).is_some(), "{k}");
    }
}

#[test]
fn a_key_without_fido2_cannot_hold_a_passkey() {
    let mut k = FakeFido2::u2f_only();
    let e = describe(&mut k).unwrap_err();
    assert_eq!(e, Fido2Error::NotFido2);
    assert!(e.to_string().contains("cannot hold a passkey"));
    assert_eq!(set_pin(&mut k, &s("123456")), Err(Fido2Error::NotFido2));
    assert_eq!(
        list_credentials(&mut k, &s("123456")).unwrap_err(),
        Fido2Error::NotFido2
    );
    assert_eq!(k.calls, ["info", "info", "info"], "nothing else was sent");
}

#[test]
fn set_pin_enforces_the_minimum_and_refuses_a_second_time() {
    let mut k = FakeFido2::yubikey5();
    k.info.min_pin_length = 6;
    assert_eq!(
        set_pin(&mut k, &s("12345")),
        Err(Fido2Error::PinTooShort { min: 6 })
    );
    // Code points, not bytes: six é are six characters.
    set_pin(&mut k, &s("éééééé")).unwrap();
    assert!(k.pin_is("éééééé"));
    assert_eq!(
        set_pin(&mut k, &s("654321")),
        Err(Fido2Error::PinAlreadySet)
    );
    assert_eq!(
        check_new_pin(&s(&"x".repeat(64)), 4),
        Err(Fido2Error::PinTooLong)
    );
    // CTAP2's floor is 4 even when a key says less.
    assert_eq!(
        check_new_pin(&s("123"), 0),
        Err(Fido2Error::PinTooShort { min: 4 })
    );
    assert_eq!(k.calls.iter().filter(|c| **c == "set_pin").count(), 1);
}

#[test]
fn wrong_pin_reports_retries_then_blocks() {
    let mut k = FakeFido2::yubikey5().with_pin("123456").with_retries(4);
    let e = change_pin(&mut k, &s("000000"), &s("654321")).unwrap_err();
    assert_eq!(e, Fido2Error::PinInvalid { retries: Some(3) });
    assert!(e.to_string().contains("3 tries left"), "{e}");
    assert!(
        Fido2Error::PinInvalid { retries: Some(1) }
            .to_string()
            .contains(": 1 try left before"),
        "one try is singular"
    );
    // The right PIN resets the counter.
    change_pin(&mut k, &s("123456"), &s("654321")).unwrap();
    assert!(k.pin_is("654321"));
    assert_eq!(describe(&mut k).unwrap().pin_retries, Some(8));

    // Three wrong in a row: re-insert needed.
    for _ in 0..2 {
        list_credentials(&mut k, &s("bad")).unwrap_err();
    }
    let e = list_credentials(&mut k, &s("bad")).unwrap_err();
    assert_eq!(e, Fido2Error::PinAuthBlocked);
    assert!(e.to_string().contains("re-insert"));
    k.reinsert();
    // Down to none left: blocked, and explained.
    let mut k = FakeFido2::yubikey5().with_pin("123456").with_retries(1);
    let e = change_pin(&mut k, &s("bad0"), &s("654321")).unwrap_err();
    assert_eq!(e, Fido2Error::PinBlocked);
    assert!(e.to_string().contains("mfakey fido2 reset"));
    // Blocked keys are refused before any PIN is sent.
    k.calls.clear();
    assert_eq!(
        change_pin(&mut k, &s("123456"), &s("654321")),
        Err(Fido2Error::PinBlocked)
    );
    assert!(!k.calls.contains(&"change_pin"));
}

#[test]
fn change_pin_needs_a_pin_and_checks_the_new_one() {
    let mut k = FakeFido2::yubikey5();
    assert_eq!(
        change_pin(&mut k, &s("123456"), &s("654321")),
        Err(Fido2Error::PinNotSet)
    );
    let mut k = FakeFido2::yubikey5().with_pin("123456");
    assert_eq!(
        change_pin(&mut k, &s("123456"), &s("12")),
        Err(Fido2Error::PinTooShort { min: 4 })
    );
    assert!(k.pin_is("123456"));
}

#[test]
fn credentials_list_and_delete_with_the_pin() {
    let mut k = FakeFido2::yubikey5().with_pin("123456");
    k.add_passkey("aws.amazon.com", "alice", &[1, 2, 3]);
    k.add_passkey("example.com", "bob", &[0xAB, 0xCD]);
    let list = list_credentials(&mut k, &s("123456")).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].rp_id, "aws.amazon.com");
    assert_eq!(list[0].credential_id, "010203");
    assert_eq!(list[1].credential_id, "abcd");
    let gone = delete_credential(&mut k, &s("123456"), "ABCD").unwrap();
    assert_eq!(gone.user_name, "bob");
    assert_eq!(list_credentials(&mut k, &s("123456")).unwrap().len(), 1);
    assert_eq!(
        delete_credential(&mut k, &s("123456"), "abcd"),
        Err(Fido2Error::NoSuchCredential("abcd".into()))
    );
    assert_eq!(
        delete_credential(&mut k, &s("000000"), "010203"),
        Err(Fido2Error::PinInvalid { retries: Some(7) })
    );
    // Without credential management.
    let mut k = FakeFido2::yubikey5().with_pin("123456");
    k.info.options.cred_mgmt = false;
    assert_eq!(
        list_credentials(&mut k, &s("123456")),
        Err(Fido2Error::NoCredentialManagement)
    );
    // Without a PIN.
    let mut k = FakeFido2::yubikey5();
    assert_eq!(
        list_credentials(&mut k, &s("123456")),
        Err(Fido2Error::PinNotSet)
    );
}

#[test]
fn hex_aaguid_and_firmware_forms() {
    assert_eq!(to_hex(&[0, 0xff]), "00ff");
    assert_eq!(from_hex("00ff"), Some(vec![0, 0xff]));
    assert_eq!(from_hex("0"), None);
    assert_eq!(from_hex("zz"), None);
    assert_eq!(aaguid_string(&[1, 2]), "0102");
    assert_eq!(firmware_string(0x050203).as_deref(), Some("5.2.3"));
    assert_eq!(firmware_string(7).as_deref(), Some("7"));
    assert_eq!(firmware_string(0), None);
}

/// An empty or over-long PIN is refused before anything is sent: a usage
/// error (exit 2), never the key's "pin not set" blamed on the key.
#[test]
fn an_empty_or_overlong_pin_is_a_usage_error_before_the_key_is_touched() {
    use crate::error::{Classify, Kind};
    for bad in ["", &"9".repeat(64), &"é".repeat(32)] {
        let e = check_pin(&s(bad)).unwrap_err();
        assert_eq!(e.kind(), Kind::InvalidPin, "{bad:?}");
        assert_eq!(e.kind().exit_code(), 2);
    }
    check_pin(&s("1234")).unwrap();
    check_pin(&s(&"9".repeat(63))).unwrap();
    let mut k = FakeFido2::yubikey5().with_pin("123456");
    let info = describe(&mut k).unwrap();
    k.calls.clear();
    let e = super::list_credentials(&mut k, &info, &s(""), LastTry::Allow).unwrap_err();
    assert_eq!(e.kind(), Kind::InvalidPin);
    let e = super::change_pin(&mut k, &info, &s(""), &s("654321"), LastTry::Allow).unwrap_err();
    assert_eq!(e.kind(), Kind::InvalidPin);
    assert!(k.calls.is_empty(), "the key was sent {:?}", k.calls);
    assert!(k.pin_is("123456"));
}

/// A credential id that is not hex (or empty, odd, over 1023 bytes) is a
/// usage error found before the PIN is used or the key listed.
#[test]
fn a_malformed_credential_id_is_a_usage_error() {
    use crate::error::{Classify, Kind};
    for bad in ["not-a-hex-id", "", "abc", "zz", " ", &"ab".repeat(1024)] {
        let e = credential_id(bad).unwrap_err();
        assert_eq!(e.kind(), Kind::InvalidArgument, "{bad:?}");
        assert!(e.to_string().contains("credential id"), "{e}");
    }
    assert_eq!(credential_id(" ABcd ").unwrap(), vec![0xAB, 0xCD]);
}

/// A PIN read from a file is not sent when the key has one try left (a
/// wrong file would block the PIN); typed, or with --force, it is.
#[test]
fn a_pin_from_a_file_is_not_sent_on_the_last_try() {
    use crate::error::{Classify, Kind};
    let mut k = FakeFido2::yubikey5().with_pin("123456").with_retries(1);
    k.add_passkey("aws.amazon.com", "alice", &[1, 2, 3]);
    let info = describe(&mut k).unwrap();
    k.calls.clear();
    let e = super::list_credentials(&mut k, &info, &s("123456"), LastTry::Refuse).unwrap_err();
    assert_eq!(e.kind(), Kind::LastPinTry);
    let text = e.to_string();
    assert!(
        text.contains("1 PIN try left") && text.contains("--force"),
        "{text}"
    );
    let e =
        super::change_pin(&mut k, &info, &s("123456"), &s("654321"), LastTry::Refuse).unwrap_err();
    assert_eq!(e.kind(), Kind::LastPinTry);
    let e = super::delete_credential(&mut k, &info, &s("123456"), &[1, 2, 3], LastTry::Refuse)
        .unwrap_err();
    assert_eq!(e.kind(), Kind::LastPinTry);
    assert!(k.calls.is_empty(), "the key was sent {:?}", k.calls);
    // Two tries left: a file's PIN goes; the last try: typed, or --force.
    assert_eq!(
        super::list_credentials(&mut k, &info, &s("123456"), LastTry::Allow)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn reset_deletes_passkeys_and_pin_only_when_the_key_allows_it() {
    let mut k = FakeFido2::yubikey5().with_pin("123456");
    k.add_passkey("example.com", "alice", &[1, 2, 3]);
    // Too long after insertion: the key refuses, nothing changes.
    k.just_inserted = false;
    let info = describe(&mut k).unwrap();
    let e = super::reset(&mut k, &info, &mut || {}).unwrap_err();
    assert_eq!(e, Fido2Error::ResetNotAllowed);
    assert!(e.to_string().contains("re-insert"), "{e}");
    assert!(k.pin_is("123456"));
    assert_eq!(k.passkeys(), 1);
    // Re-inserted but not touched: nothing changes either.
    k.reinsert();
    k.touched = false;
    let mut asked = 0;
    let e = super::reset(&mut k, &info, &mut || asked += 1).unwrap_err();
    assert_eq!(e, Fido2Error::ResetNotConfirmed);
    assert_eq!(asked, 1);
    assert_eq!(k.passkeys(), 1);
    // Re-inserted and touched: the PIN and the passkeys are gone.
    k.touched = true;
    super::reset(&mut k, &info, &mut || {}).unwrap();
    assert_eq!(k.passkeys(), 0);
    let after = describe(&mut k).unwrap();
    assert_eq!(after.options.client_pin, Some(false));
    assert_eq!(after.pin_retries, None);
    // A key without FIDO2 is refused before anything is sent.
    let mut u = FakeFido2::u2f_only();
    let info = u.info.clone();
    assert_eq!(
        super::reset(&mut u, &info, &mut || {}).unwrap_err(),
        Fido2Error::NotFido2
    );
    assert!(!u.calls.contains(&"reset"));
}

#[test]
fn a_blocked_pin_points_at_mfakeys_own_reset() {
    let e = Fido2Error::PinBlocked.to_string();
    assert!(e.contains("mfakey fido2 reset"), "{e}");
    assert!(e.contains("FIDO reset"), "{e}");
}
