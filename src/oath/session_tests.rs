//! OathSession against a scripted card: exact command bytes, canned answers.

use super::*;
use crate::apdu::hex;
use crate::oath::script::{unhex, Script};
use crate::oath::{ins, OATH_AID};

const SELECT: &str = "00 A4 04 00 07 A0 00 00 05 27 21 01";
const SALT: &str = "01 02 03 04 05 06 07 08";

fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::tlv::push(&mut out, tag, value);
    out
}

fn h(bytes: &[u8]) -> String {
    hex(bytes)
}

fn ok(data: &[u8]) -> String {
    format!("{} 90 00", h(data))
}

fn select_answer(version: &str, salt: &str, challenge: Option<&str>) -> String {
    let mut s = format!("79 03 {version} 71 08 {salt}");
    if let Some(c) = challenge {
        s.push_str(&format!(" 74 08 {c} 7B 01 01"));
    }
    s + " 90 00"
}

fn plain(version: &str) -> Script {
    Script::new().expect(SELECT, &select_answer(version, SALT, None))
}

fn cred(raw: &str, t: OathType, alg: HashAlgorithm) -> Credential {
    Credential {
        id: CredentialId::parse(raw.as_bytes(), t),
        raw_id: raw.as_bytes().to_vec(),
        algorithm: alg,
        touch: None,
    }
}

fn err<T: std::fmt::Debug>(r: Result<T, OathError>) -> OathError {
    r.expect_err("expected an error")
}

#[test]
fn aid_matches_select_bytes() {
    assert_eq!(&unhex(SELECT)[5..], &OATH_AID);
}

#[test]
fn select_without_password() {
    let mut card = plain("05 07 01");
    let s = OathSession::select(&mut card).unwrap();
    assert_eq!(s.version(), Version(5, 7, 1));
    assert!(!s.has_password());
    assert!(!s.is_locked());
    assert_eq!(s.info().salt, unhex(SALT));
    assert_eq!(s.info().challenge, None);
    assert_eq!(s.info().key_algorithm, None);
    // base64(sha256(01..08)[:16]) without padding, checked with Python.
    assert_eq!(s.device_id(), "ZoQN2hVOihE8Md0K0y9/Og");
    assert_eq!(s.capacity(), 64);
}

#[test]
fn select_with_password_challenge() {
    let mut card = Script::new().expect(
        SELECT,
        &select_answer("05 04 03", SALT, Some("11 22 33 44 55 66 77 88")),
    );
    let s = OathSession::select(&mut card).unwrap();
    assert!(s.has_password());
    assert!(s.is_locked());
    assert_eq!(s.info().challenge, Some(unhex("1122334455667788")));
    assert_eq!(s.info().key_algorithm, Some(HashAlgorithm::Sha1));
    assert_eq!(s.capacity(), 32);
}

#[test]
fn select_errors() {
    let mut card = Script::new().expect(SELECT, "6A 82");
    assert!(matches!(
        err(OathSession::select(&mut card)),
        OathError::NotAvailable
    ));
    let mut card = Script::new().expect(SELECT, "79 03 05 07 01 90 00");
    assert!(matches!(
        err(OathSession::select(&mut card)),
        OathError::Malformed(_)
    ));
    let mut card = Script::new().expect(SELECT, "71 08 01 02 03 04 05 06 07 08 90 00");
    assert!(matches!(
        err(OathSession::select(&mut card)),
        OathError::Malformed(_)
    ));
    let mut card = Script::new().expect(SELECT, "79 05 05 07 90 00");
    assert!(matches!(
        err(OathSession::select(&mut card)),
        OathError::Malformed(_)
    ));
    let mut card = Script::new().expect(SELECT, "79 02 05 07 71 00 90 00");
    assert!(matches!(
        err(OathSession::select(&mut card)),
        OathError::Malformed(_)
    ));
    for sw in ["6D 00", "6B 00", "69 99", "6A 86", "6E 00"] {
        let mut card = Script::new().expect(SELECT, sw);
        assert!(matches!(
            err(OathSession::select(&mut card)),
            OathError::NotAvailable
        ));
    }
    let mut card = Script::new().expect(SELECT, "6F 00");
    match err(OathSession::select(&mut card)) {
        OathError::Status { op: "SELECT", sw } => assert_eq!(sw.0, 0x6F00),
        e => panic!("{e:?}"),
    }
}

#[test]
fn list_parses_entries_across_send_remaining() {
    let mut body = Vec::new();
    body.extend(tlv(0x72, &[&[0x21][..], b"Example:bob"].concat()));
    body.extend(tlv(0x72, &[&[0x12][..], b"hotp:x"].concat()));
    body.extend(tlv(0x72, &[&[0x23][..], b"60/I:n"].concat()));
    let (a, b) = body.split_at(10);
    let mut card = plain("05 07 01")
        .expect("00 A1 00 00", &format!("{} 61 {:02X}", h(a), b.len()))
        .expect("00 A5 00 00", &ok(b));
    let mut s = OathSession::select(&mut card).unwrap();
    let creds = s.list().unwrap();
    assert_eq!(creds.len(), 3);
    assert_eq!(
        creds[0],
        cred("Example:bob", OathType::Totp, HashAlgorithm::Sha1)
    );
    assert_eq!(creds[1].id.oath_type, OathType::Hotp);
    assert_eq!(creds[1].algorithm, HashAlgorithm::Sha256);
    assert_eq!(creds[1].id.issuer.as_deref(), Some("hotp"));
    assert_eq!(creds[1].id.period, 0);
    assert_eq!(creds[2].id.period, 60);
    assert_eq!(creds[2].algorithm, HashAlgorithm::Sha512);
    assert_eq!(creds[2].raw_id, b"60/I:n");
    assert_eq!(creds[2].touch, None);
}

#[test]
fn list_refuses_malformed_answers() {
    for bad in [
        "72 05 21 41 90 00",
        "72 00 90 00",
        "71 02 21 41 90 00",
        "72 02 41 41 90 00",
        "72 02 24 41 90 00",
    ] {
        let mut card = plain("05 07 01").expect("00 A1 00 00", bad);
        let mut s = OathSession::select(&mut card).unwrap();
        assert!(matches!(err(s.list()), OathError::Malformed(_)), "{bad}");
    }
}

#[test]
fn list_status_words() {
    let mut card = plain("05 07 01").expect("00 A1 00 00", "69 82");
    let mut s = OathSession::select(&mut card).unwrap();
    assert!(matches!(err(s.list()), OathError::Locked));
    let mut card = plain("05 07 01").expect("00 A1 00 00", "6F 00");
    let mut s = OathSession::select(&mut card).unwrap();
    let e = err(s.list());
    assert!(matches!(e, OathError::Status { op: "LIST", .. }));
    assert!(e.to_string().contains("6F00"), "{e}");
}

fn aws_totp(touch: bool) -> CredentialData {
    CredentialData {
        id: CredentialId::new(Some("Amazon Web Services"), "alice@123", OathType::Totp, 30),
        algorithm: HashAlgorithm::Sha1,
        digits: 6,
        secret: SecretBytes::new(b"Hello!\xde\xad\xbe\xef".to_vec()),
        touch,
        counter: 0,
    }
}

#[test]
fn put_totp_with_touch_pads_key_and_writes_property_without_length() {
    let cmd = "00 01 00 00 33 \
               71 1D 416d617a6f6e205765622053657276696365733a616c69636540313233 \
               73 10 21 06 48 65 6C 6C 6F 21 DE AD BE EF 00 00 00 00 \
               78 02";
    let mut card = plain("05 07 01").expect(cmd, "90 00");
    let mut s = OathSession::select(&mut card).unwrap();
    let c = s.put(&aws_totp(true)).unwrap();
    assert_eq!(c.raw_id, b"Amazon Web Services:alice@123");
    assert_eq!(c.touch, Some(true));
    assert_eq!(c.algorithm, HashAlgorithm::Sha1);
    drop(s);
    assert_eq!(card.sensitive_ins(), vec![ins::PUT]);
}

#[test]
fn put_hotp_hashes_long_key_and_writes_imf() {
    let data = CredentialData {
        id: CredentialId::new(None, "n", OathType::Hotp, 0),
        algorithm: HashAlgorithm::Sha256,
        digits: 8,
        secret: SecretBytes::new(vec![0x42; 70]),
        touch: false,
        counter: 7,
    };
    // SHA-256 of 70 x 0x42, checked with Python.
    let digest = "b63ec286a8d0a4e90158007c673ed0beb763e6cac8ac4a59843213ee6bf04220";
    let cmd = format!("00 01 00 00 2D 71 01 6E 73 22 12 08 {digest} 7A 04 00 00 00 07");
    let mut card = plain("05 07 01").expect(&cmd, "90 00");
    let mut s = OathSession::select(&mut card).unwrap();
    s.put(&data).unwrap();
}

#[test]
fn put_status_words_and_firmware_checks() {
    let mut card = plain("05 04 03").expect_fn(|_| unhex("6A 84"));
    let mut s = OathSession::select(&mut card).unwrap();
    let e = err(s.put(&aws_totp(false)));
    assert!(matches!(e, OathError::KeyFull { capacity: 32 }), "{e:?}");

    let mut card = plain("05 07 01").expect_fn(|_| unhex("69 82"));
    let mut s = OathSession::select(&mut card).unwrap();
    assert!(matches!(err(s.put(&aws_totp(false))), OathError::Locked));

    // Refused before any PUT is sent.
    let mut card = plain("04 02 03");
    let mut s = OathSession::select(&mut card).unwrap();
    match err(s.put(&aws_totp(true))) {
        OathError::Unsupported { needs, have, .. } => {
            assert_eq!((needs, have), (Version(4, 2, 4), Version(4, 2, 3)))
        }
        e => panic!("{e:?}"),
    }
    let mut card = plain("04 03 00");
    let mut s = OathSession::select(&mut card).unwrap();
    let mut d = aws_totp(false);
    d.algorithm = HashAlgorithm::Sha512;
    assert!(matches!(
        err(s.put(&d)),
        OathError::Unsupported {
            needs: Version(4, 3, 1),
            ..
        }
    ));
    d.digits = 9;
    let e = err(s.put(&d));
    assert!(
        e.to_string().contains("--digits 9: must be 6, 7 or 8"),
        "{e}"
    );
}

#[test]
fn put_refuses_prefix_of_existing_id_on_affected_yubikey_4() {
    let listed = tlv(
        0x72,
        &[&[0x21][..], b"Amazon Web Services:alice@1234"].concat(),
    );
    let mut card = plain("04 03 04").expect("00 A1 00 00", &ok(&listed));
    let mut s = OathSession::select(&mut card).unwrap();
    assert!(matches!(
        err(s.put(&aws_totp(false))),
        OathError::InvalidCredential(_)
    ));
}

#[test]
fn put_error_messages_hold_no_secret() {
    let mut card = plain("05 07 01").expect_fn(|_| unhex("6A 80"));
    let mut s = OathSession::select(&mut card).unwrap();
    let e = err(s.put(&aws_totp(false)));
    let text = format!("{e} {e:?}");
    assert!(!text.contains("Hello") && !text.contains("DE AD"), "{text}");
}

#[test]
fn calculate_totp_sends_time_step_and_formats_code() {
    let id = b"Example:bob";
    let cmd = format!(
        "00 A2 00 01 17 {} 74 08 00 00 00 00 00 00 00 01",
        h(&tlv(0x71, id))
    );
    let mut card = plain("05 07 01").expect(&cmd, "76 05 06 4C 93 CF 18 90 00");
    let mut s = OathSession::select(&mut card).unwrap();
    let c = s
        .calculate(
            &cred("Example:bob", OathType::Totp, HashAlgorithm::Sha1),
            59,
        )
        .unwrap();
    assert_eq!(
        c,
        Code {
            value: "755224".into(),
            valid_from: 30,
            valid_to: 60
        }
    );
}

#[test]
fn calculate_uses_the_credentials_period() {
    let cmd = format!(
        "00 A2 00 01 12 {} 74 08 00 00 00 00 01 1A 91 F6",
        h(&tlv(0x71, b"60/I:n"))
    );
    let mut card = plain("05 07 01").expect(&cmd, "76 05 08 80 00 00 07 90 00");
    let mut s = OathSession::select(&mut card).unwrap();
    let c = s
        .calculate(
            &cred("60/I:n", OathType::Totp, HashAlgorithm::Sha1),
            1111111109,
        )
        .unwrap();
    assert_eq!(c.value, "00000007");
    assert_eq!((c.valid_from, c.valid_to), (1111111080, 1111111140));
}

#[test]
fn calculate_hotp_sends_empty_challenge() {
    let cmd = format!("00 A2 00 01 0A {} 74 00", h(&tlv(0x71, b"hotp:x")));
    let mut card = plain("05 07 01").expect(&cmd, "76 05 06 4C 93 CF 18 90 00");
    let mut s = OathSession::select(&mut card).unwrap();
    let c = s
        .calculate(&cred("hotp:x", OathType::Hotp, HashAlgorithm::Sha1), 1000)
        .unwrap();
    assert_eq!(c.value, "755224");
    assert_eq!((c.valid_from, c.valid_to), (1000, i64::MAX as u64));
}

#[test]
fn calculate_status_words() {
    let c = cred("Example:bob", OathType::Totp, HashAlgorithm::Sha1);
    // No password: 6982 means the touch timed out.
    let mut card = plain("05 07 01").expect_fn(|_| unhex("69 82"));
    let mut s = OathSession::select(&mut card).unwrap();
    assert!(matches!(err(s.calculate(&c, 0)), OathError::TouchTimeout));
    // Locked session: 6982 means the password is missing.
    let mut card = Script::new()
        .expect(
            SELECT,
            &select_answer("05 07 01", SALT, Some("11 22 33 44 55 66 77 88")),
        )
        .expect_fn(|_| unhex("69 82"));
    let mut s = OathSession::select(&mut card).unwrap();
    assert!(matches!(err(s.calculate(&c, 0)), OathError::Locked));
    let mut card = plain("05 07 01").expect_fn(|_| unhex("69 84"));
    let mut s = OathSession::select(&mut card).unwrap();
    match err(s.calculate(&c, 0)) {
        OathError::NoSuchCredential(name) => assert_eq!(name, "Example:bob"),
        e => panic!("{e:?}"),
    }
}

#[test]
fn calculate_refuses_malformed_answers() {
    let c = cred("x", OathType::Totp, HashAlgorithm::Sha1);
    for bad in [
        "90 00",
        "76 90 00",
        "76 05 00 00 00 00 01 90 00",
        "76 04 06 00 00 01 90 00",
        "75 05 06 00 00 00 01 90 00",
        "76 05 06 00 00 00 01 76 05 06 00 00 00 01 90 00",
    ] {
        let mut card = plain("05 07 01").expect_fn(move |_| unhex(bad));
        let mut s = OathSession::select(&mut card).unwrap();
        assert!(
            matches!(err(s.calculate(&c, 0)), OathError::Malformed(_)),
            "{bad}"
        );
    }
}

#[test]
fn calculate_all_handles_76_77_7c_and_recalculates_other_periods() {
    let ts = 1111111109u64;
    let mut listed = Vec::new();
    for (t, id) in [
        (0x21u8, "Example:bob"),
        (0x11, "hotp:x"),
        (0x22, "touch:y"),
        (0x21, "60/I:n"),
    ] {
        listed.extend(tlv(0x72, &[&[t][..], id.as_bytes()].concat()));
    }
    let mut all = Vec::new();
    all.extend(tlv(0x71, b"Example:bob"));
    all.extend(tlv(0x76, &unhex("06 4C 93 CF 18")));
    all.extend(tlv(0x71, b"hotp:x"));
    all.extend(tlv(0x77, &[0x06]));
    all.extend(tlv(0x71, b"touch:y"));
    all.extend(tlv(0x7C, &[0x06]));
    all.extend(tlv(0x71, b"60/I:n"));
    all.extend(tlv(0x76, &unhex("06 00 00 00 01")));
    let (a, b) = all.split_at(20);
    let recalc = format!(
        "00 A2 00 01 12 {} 74 08 00 00 00 00 01 1A 91 F6",
        h(&tlv(0x71, b"60/I:n"))
    );
    let mut card = plain("05 07 01")
        .expect("00 A1 00 00", &ok(&listed))
        .expect(
            "00 A4 00 01 0A 74 08 00 00 00 00 02 35 23 EC",
            &format!("{} 61 00", h(a)),
        )
        .expect("00 A5 00 00", &ok(b))
        .expect(&recalc, "76 05 06 00 00 30 39 90 00");
    let mut s = OathSession::select(&mut card).unwrap();
    let got = s.calculate_all(ts).unwrap();
    assert_eq!(got.len(), 4);

    assert_eq!(got[0].0.raw_id, b"Example:bob");
    assert_eq!(got[0].0.touch, Some(false));
    assert_eq!(
        got[0].1,
        CodeResult::Code(Code {
            value: "755224".into(),
            valid_from: 1111111080,
            valid_to: 1111111110
        })
    );
    assert_eq!(got[1].0.id.oath_type, OathType::Hotp);
    assert_eq!(got[1].1, CodeResult::Hotp);
    assert_eq!(got[2].0.algorithm, HashAlgorithm::Sha256);
    assert_eq!(got[2].0.touch, Some(true));
    assert_eq!(got[2].1, CodeResult::TouchRequired);
    assert_eq!(got[3].0.id.period, 60);
    match &got[3].1 {
        CodeResult::Code(c) => {
            assert_eq!(c.value, "012345");
            assert_eq!((c.valid_from, c.valid_to), (1111111080, 1111111140));
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn calculate_all_refuses_inconsistent_answers() {
    for all in [
        "71 01 41 90 00",
        "76 05 06 00 00 00 01 90 00",
        "71 01 41 75 01 00 90 00",
        "71 01 42 77 01 06 90 00",
    ] {
        let listed = tlv(0x72, &[0x21, b'A']);
        let mut card = plain("05 07 01")
            .expect("00 A1 00 00", &ok(&listed))
            .expect_fn(move |_| unhex(all));
        let mut s = OathSession::select(&mut card).unwrap();
        assert!(
            matches!(err(s.calculate_all(0)), OathError::Malformed(_)),
            "{all}"
        );
    }
    let mut card = plain("05 07 01").expect("00 A1 00 00", "69 82");
    let mut s = OathSession::select(&mut card).unwrap();
    assert!(matches!(err(s.calculate_all(0)), OathError::Locked));
}

/// A card with password "secret" on salt "saltsalt" and challenge 11..88.
fn locked_card() -> Script {
    Script::new().expect(
        SELECT,
        &select_answer(
            "05 07 01",
            "73 61 6C 74 73 61 6C 74",
            Some("11 22 33 44 55 66 77 88"),
        ),
    )
}

const KEY: &str = "8b09c61e3ddee1285f60003548fcfb09";
/// HMAC-SHA1(KEY, 1122334455667788), checked with Python.
const CARD_PROOF: &str = "304ad473e7b8b14af9c3b297c2333ccb83b9b2a2";

/// Checks a VALIDATE command and answers with `answer(host_challenge)`.
fn validate_step(answer: impl Fn(&[u8]) -> Vec<u8> + 'static) -> impl FnMut(&[u8]) -> Vec<u8> {
    move |apdu: &[u8]| {
        assert_eq!(&apdu[..5], &unhex("00 A3 00 00 20")[..]);
        assert_eq!(h(&apdu[5..27]), h(&unhex(&format!("75 14 {CARD_PROOF}"))));
        assert_eq!(&apdu[27..29], &[0x74, 0x08]);
        assert_eq!(apdu.len(), 37);
        answer(&apdu[29..37])
    }
}

#[test]
fn unlock_checks_the_cards_proof() {
    let mut card = locked_card().expect_fn(validate_step(|host| {
        let proof = password::hmac(HashAlgorithm::Sha1, &unhex(KEY), host);
        [tlv(0x75, &proof), vec![0x90, 0x00]].concat()
    }));
    let mut s = OathSession::select(&mut card).unwrap();
    assert_eq!(
        h(s.derive_key(&SecretString::new("secret".into())).expose()),
        h(&unhex(KEY))
    );
    s.unlock(&SecretString::new("secret".into())).unwrap();
    assert!(!s.is_locked());
    assert!(s.has_password());
    // Unlocked: a second unlock sends nothing.
    s.unlock(&SecretString::new("whatever".into())).unwrap();
    drop(s);
    assert_eq!(card.sensitive_ins(), vec![ins::VALIDATE]);
}

#[test]
fn unlock_refuses_a_wrong_card_proof() {
    let mut card = locked_card().expect_fn(validate_step(|_| {
        [tlv(0x75, &[0u8; 20]), vec![0x90, 0x00]].concat()
    }));
    let mut s = OathSession::select(&mut card).unwrap();
    let e = err(s.unlock(&SecretString::new("secret".into())));
    assert!(matches!(e, OathError::MutualAuthFailed), "{e:?}");
    assert!(s.is_locked());

    let mut card = locked_card().expect_fn(validate_step(|_| unhex("90 00")));
    let mut s = OathSession::select(&mut card).unwrap();
    assert!(matches!(
        err(s.unlock(&SecretString::new("secret".into()))),
        OathError::Malformed(_)
    ));
}

#[test]
fn unlock_wrong_password() {
    let mut card = locked_card().expect_fn(|_| unhex("6A 80"));
    let mut s = OathSession::select(&mut card).unwrap();
    let e = err(s.unlock(&SecretString::new("hunter2".into())));
    assert!(matches!(e, OathError::WrongPassword));
    assert!(!format!("{e} {e:?}").contains("hunter2"));
    assert!(s.is_locked());
}

#[test]
fn unlock_without_password_sends_nothing() {
    let mut card = plain("05 07 01");
    let mut s = OathSession::select(&mut card).unwrap();
    s.unlock(&SecretString::new("x".into())).unwrap();
}

#[test]
fn set_password_sends_key_challenge_and_proof() {
    let mut card = Script::new()
        .expect(
            SELECT,
            &select_answer("05 07 01", "73 61 6C 74 73 61 6C 74", None),
        )
        .expect_fn(|apdu| {
            assert_eq!(h(&apdu[..5]), "00 03 00 00 33");
            assert_eq!(h(&apdu[5..24]), h(&unhex(&format!("73 11 21 {KEY}"))));
            assert_eq!(&apdu[24..26], &[0x74, 0x08]);
            let chal = &apdu[26..34];
            assert_eq!(&apdu[34..36], &[0x75, 0x14]);
            let proof = password::hmac(HashAlgorithm::Sha1, &unhex(KEY), chal);
            assert_eq!(&apdu[36..], &proof[..]);
            unhex("90 00")
        });
    let mut s = OathSession::select(&mut card).unwrap();
    assert!(matches!(
        err(s.set_password(&SecretString::new(String::new()))),
        OathError::EmptyPassword
    ));
    s.set_password(&SecretString::new("secret".into())).unwrap();
    assert!(s.has_password());
    assert!(!s.is_locked());
    drop(s);
    assert_eq!(card.sensitive_ins(), vec![ins::SET_CODE]);
}

#[test]
fn set_and_clear_password_when_locked() {
    let mut card = locked_card()
        .expect_fn(|_| unhex("69 82"))
        .expect("00 03 00 00 02 73 00", "69 82");
    let mut s = OathSession::select(&mut card).unwrap();
    assert!(matches!(
        err(s.set_password(&SecretString::new("x".into()))),
        OathError::Locked
    ));
    assert!(matches!(err(s.clear_password()), OathError::Locked));
}

#[test]
fn clear_password() {
    let mut card = plain("05 07 01").expect("00 03 00 00 02 73 00", "90 00");
    let mut s = OathSession::select(&mut card).unwrap();
    s.clear_password().unwrap();
    assert!(!s.has_password());
}

#[test]
fn reset_selects_again_for_the_new_salt() {
    let mut card = locked_card()
        .expect("00 04 DE AD", "90 00")
        .expect(SELECT, &select_answer("05 07 01", SALT, None));
    let mut s = OathSession::select(&mut card).unwrap();
    assert_eq!(s.device_id(), "dm7c2HK8BhUWriyM0ndz5A");
    s.reset().unwrap();
    assert_eq!(s.device_id(), "ZoQN2hVOihE8Md0K0y9/Og");
    assert!(!s.has_password());
    assert!(!s.is_locked());
}

#[test]
fn delete_and_its_status_words() {
    let cmd = "00 02 00 00 0D 71 0B 45 78 61 6D 70 6C 65 3A 62 6F 62";
    let mut card = plain("05 07 01")
        .expect(cmd, "90 00")
        .expect(cmd, "69 84")
        .expect(cmd, "69 82");
    let mut s = OathSession::select(&mut card).unwrap();
    s.delete(b"Example:bob").unwrap();
    assert!(
        matches!(err(s.delete(b"Example:bob")), OathError::NoSuchCredential(n) if n == "Example:bob")
    );
    assert!(matches!(err(s.delete(b"Example:bob")), OathError::Locked));
}

#[test]
fn rename_encodes_old_and_new() {
    let new_id = CredentialId::parse(b"60/I:n", OathType::Totp).renamed(Some("J"), "m");
    let cmd = format!(
        "00 05 00 00 10 {} {}",
        h(&tlv(0x71, b"60/I:n")),
        h(&tlv(0x71, b"60/J:m"))
    );
    let mut card = plain("05 03 01")
        .expect(&cmd, "90 00")
        .expect(&cmd, "69 84");
    let mut s = OathSession::select(&mut card).unwrap();
    assert_eq!(s.rename(b"60/I:n", &new_id).unwrap(), b"60/J:m");
    assert!(matches!(
        err(s.rename(b"60/I:n", &new_id)),
        OathError::NoSuchCredential(_)
    ));
    let long = CredentialId::new(None, &"x".repeat(65), OathType::Totp, 30);
    assert!(matches!(
        err(s.rename(b"60/I:n", &long)),
        OathError::IdTooLong { len: 65 }
    ));
}

#[test]
fn rename_needs_5_3_1() {
    let mut card = plain("05 03 00");
    let mut s = OathSession::select(&mut card).unwrap();
    let new_id = CredentialId::new(None, "m", OathType::Totp, 30);
    assert!(matches!(
        err(s.rename(b"n", &new_id)),
        OathError::Unsupported {
            needs: Version(5, 3, 1),
            have: Version(5, 3, 0),
            ..
        }
    ));
}

#[test]
fn base64_matches_rfc4648() {
    for (i, o) in [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64_no_pad(i.as_bytes()), o);
    }
}

/// Credentials with ids no well-behaved client writes: a period of 0, a
/// period too big for the id parser, bytes that are not UTF-8, a bare
/// period prefix, a leading dot, a newline. Written raw (PUT as the wire
/// allows), then listed and computed: every one is listed, none is fatal.
#[test]
fn odd_credential_ids_are_listed_never_fatal() {
    use crate::virtual_key::{Config, SharedVirtualKey, VirtualYubiKey};
    let key = SharedVirtualKey::new(VirtualYubiKey::new(Config::default()));
    let mut t = key.clone();
    let odd: [(&[u8], u8); 9] = [
        (b"0/x", 0x21),
        (b"0/hotp", 0x11),
        (b"\xff\xfe not utf-8", 0x21),
        (b"15/fifteen", 0x21),
        (b"99999999999/huge", 0x21),
        (b"123/", 0x21),
        (b".hidden", 0x21),
        (b"a:b\nc", 0x21),
        (b"plain", 0x21),
    ];
    t.transmit(&unhex(SELECT)).unwrap();
    for (id, kind) in odd {
        let mut body = tlv(0x71, id);
        body.extend(tlv(0x73, &[&[kind, 6][..], &[7u8; 14]].concat()));
        let put = Command::new(0, ins::PUT, 0, 0).with_data(body).unwrap();
        let answer = t.transmit(&put.to_bytes()).unwrap();
        assert_eq!(answer, [0x90, 0x00], "PUT {id:?}");
    }
    let mut s = OathSession::select(&mut t).unwrap();
    let all = s
        .calculate_all(1_700_000_000)
        .expect("odd ids are never fatal");
    assert_eq!(all.len(), odd.len());
    for ((id, _), (cred, result)) in odd.iter().zip(&all) {
        assert_eq!(&cred.raw_id[..], *id);
        match (&cred.raw_id[..], result) {
            (b"0/x", CodeResult::Unavailable(why)) => {
                assert!(why.contains("period 0"), "{why}")
            }
            (b"0/hotp", CodeResult::Hotp) => {}
            (b"0/x", r) | (b"0/hotp", r) => panic!("{id:?}: {r:?}"),
            (_, CodeResult::Code(c)) => assert_eq!(c.value.len(), 6, "{id:?}"),
            (_, r) => panic!("{id:?}: {r:?}"),
        }
    }
    // Invalid UTF-8 is shown replaced; the raw id still addresses it.
    assert!(all[2].0.id.name.contains('\u{fffd}'));
    assert_eq!(all[3].0.id.period, 15);
    assert_eq!(all[4].0.id.period, 30);
}
