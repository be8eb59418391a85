//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz), built only
//! with the `fuzzing` feature: one function per parser of data that comes
//! from a card, a file or a person, taking arbitrary bytes. Each must never
//! panic, and checks what must hold of what it accepted. Not part of the
//! API: the parsers stay `pub(crate)`.

use crate::apdu::{transmit_chained, Command, Response, StatusWord, MAX_RESPONSE};
use crate::oath::{commands, CredentialId, OathSession, OathType};
use crate::transport::{Transport, TransportError};

/// A card whose answers are read off the fuzz input: each answer is one
/// length byte and that many bytes (the last one cut short where the
/// input ends); once the input is used up it is "removed".
struct Scripted<'a> {
    data: &'a [u8],
}

impl Transport for Scripted<'_> {
    fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let Some((&len, rest)) = self.data.split_first() else {
            return Err(TransportError::CardRemoved);
        };
        let (answer, rest) = rest.split_at(usize::from(len).min(rest.len()));
        self.data = rest;
        Ok(answer.to_vec())
    }
}

/// A response APDU and its status word; chained answers.
pub fn apdu_response(data: &[u8]) {
    match Response::from_bytes(data.to_vec()) {
        Ok(r) => {
            assert!(data.len() >= 2);
            assert_eq!(r.data(), &data[..data.len() - 2]);
            assert_eq!(StatusWord::from(r.sw.decode()), r.sw);
        }
        Err(_) => assert!(data.len() < 2),
    }
    let mut card = Scripted { data };
    if let Ok(r) = transmit_chained(&mut card, &Command::new(0, 0xA1, 0, 0), 0xA5) {
        assert!(r.data().len() <= MAX_RESPONSE);
    }
}

/// BER-TLV with one-byte tags: what parses re-encodes to the same items.
pub fn tlv(data: &[u8]) {
    let _ = crate::tlv::find(data, data.first().copied().unwrap_or(0));
    let Ok(items) = crate::tlv::parse_all(data) else {
        return;
    };
    let mut again = Vec::new();
    for (tag, value) in &items {
        crate::tlv::push(&mut again, *tag, value);
    }
    assert_eq!(crate::tlv::parse_all(&again).as_deref(), Ok(&items[..]));
}

/// OATH SELECT's answer.
pub fn oath_select(data: &[u8]) {
    if let Ok(info) = commands::parse_select(data) {
        assert!(info.version.to_bytes().len() == 3);
    }
}

/// OATH LIST's answer, and every id in it parsed as TOTP and HOTP.
pub fn oath_list(data: &[u8]) {
    if let Ok(creds) = commands::parse_list(data) {
        for c in creds {
            for t in [OathType::Totp, OathType::Hotp] {
                let id = CredentialId::parse(&c.raw_id, t);
                let _ = (id.to_bytes(), id.to_string(), id.check_len());
            }
        }
    }
    let _ = CredentialId::parse(data, OathType::Totp);
}

/// CALCULATE's answers (truncated, full), a truncated value, VALIDATE's.
pub fn oath_calculate(data: &[u8]) {
    if let Ok((digits, _)) = commands::parse_calculate(data) {
        assert!((1..=10).contains(&digits));
    }
    let _ = commands::parse_calculate_full(data);
    let _ = commands::parse_truncated(data);
    let _ = commands::parse_validate(data);
}

/// CALCULATE ALL's answer alone, then a whole session on a card whose
/// answers come from the input: SELECT, LIST, CALCULATE ALL and the
/// CALCULATEs of other periods.
pub fn oath_calculate_all(data: &[u8]) {
    let _ = commands::parse_calculate_all(data);
    let mut card = Scripted { data };
    if let Ok(mut s) = OathSession::select(&mut card) {
        if let Ok(all) = s.calculate_all(1_700_000_000) {
            for (cred, _) in all {
                let _ = cred.id.to_string();
            }
        }
    }
}

/// The Management applet: SELECT's version string, READ CONFIG's pages,
/// PIV's serial, on a card whose answers come from the input.
pub fn management_config(data: &[u8]) {
    let mut card = Scripted { data };
    if let Ok(info) = crate::management::read_device_info(&mut card) {
        assert_ne!(info.serial, Some(0));
        let _ = info.oath_capacity();
    }
}

/// A bulk manifest: accepted rows are valid, unique users.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::bulk::manifest::parse(text) {
        Ok(rows) => {
            assert!(!rows.is_empty());
            for (i, r) in rows.iter().enumerate() {
                assert!(crate::bulk::manifest::valid_user_name(&r.user));
                assert!(!rows[..i]
                    .iter()
                    .any(|o| o.user.eq_ignore_ascii_case(&r.user)));
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// The enrollment journal and the bulk journal, as `recover` and
/// `bulk --resume` read them.
pub fn journal(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("fuzz.jsonl");
    if let Ok(entries) =
        crate::undo::journal::parse_lines::<crate::undo::journal::Entry>(path, text)
    {
        for run in crate::undo::journal::unfinished(&entries) {
            let _ = crate::undo::recover::state(&run);
        }
        for e in &entries {
            let line = serde_json::to_string(e).expect("an entry serializes");
            let back: crate::undo::journal::Entry =
                serde_json::from_str(&line).expect("an entry reads back");
            assert_eq!(&back, e);
        }
    }
    if let Ok(lines) = crate::undo::journal::parse_lines::<crate::bulk::Line>(path, text) {
        let _ = crate::bulk::journal::prior(&lines);
    }
}

/// A base32 seed as typed or pasted (spaces, case, padding, otpauth URIs).
pub fn base32_seed(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(seed) = crate::secret::parse_base32_seed(text) {
        assert!(!seed.is_empty());
        let again = crate::secret::parse_base32_seed(&crate::secret::to_base32(&seed))
            .expect("a seed's own base32 parses");
        assert_eq!(again, seed);
    }
}
