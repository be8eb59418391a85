//! The applet's commands as values, one constructor each, and the parsers
//! of their answers. Wire format: YKOATH Protocol Specification.

use super::session::SelectInfo;
use super::{
    ins, prop, tag, Credential, CredentialData, CredentialId, HashAlgorithm, OathError, OathType,
    OATH_AID,
};
use crate::apdu::Command;
use crate::tlv;
use crate::version::Version;
use zeroize::Zeroizing;

fn command(ins: u8, p1: u8, p2: u8, data: Vec<u8>) -> Result<Command, OathError> {
    Command::new(0x00, ins, p1, p2)
        .with_data(data)
        .map_err(|e| OathError::InvalidCredential(e.to_string()))
}

/// SELECT the OATH applet (`00 A4 04 00 07 A0 00 00 05 27 21 01`).
pub(crate) fn select() -> Result<Command, OathError> {
    command(ins::SELECT, 0x04, 0x00, OATH_AID.to_vec())
}

/// INS 0xA1 LIST.
pub(crate) fn list() -> Command {
    Command::new(0x00, ins::LIST, 0x00, 0x00)
}

/// INS 0x01 PUT: `71 id` `73 [type|algo][digits][key]` `[78 02]` `[7A 04 imf]`.
/// The data holds the key: the command is marked sensitive.
pub(crate) fn put(data: &CredentialData) -> Result<Command, OathError> {
    let key = data.put_key();
    let mut key_value = Zeroizing::new(Vec::with_capacity(key.len() + 2));
    key_value.push(data.id.oath_type.code() | data.algorithm.code());
    key_value.push(data.digits);
    key_value.extend_from_slice(&key);

    // Sized up front so no reallocation leaves a copy of the key behind.
    let mut body = Vec::with_capacity(data.id.to_bytes().len() + key_value.len() + 16);
    tlv::push(&mut body, tag::NAME, &data.id.to_bytes());
    tlv::push(&mut body, tag::KEY, &key_value);
    if data.touch {
        // The property tag carries its value with no length byte.
        body.extend_from_slice(&[tag::PROPERTY, prop::REQUIRE_TOUCH]);
    }
    if data.counter > 0 {
        tlv::push(&mut body, tag::IMF, &data.counter.to_be_bytes());
    }
    Ok(command(ins::PUT, 0x00, 0x00, body)?.sensitive())
}

/// INS 0x02 DELETE: `71 id`.
pub(crate) fn delete(raw_id: &[u8]) -> Result<Command, OathError> {
    let mut body = Vec::new();
    tlv::push(&mut body, tag::NAME, raw_id);
    command(ins::DELETE, 0x00, 0x00, body)
}

/// INS 0x05 RENAME: `71 old` `71 new`.
pub(crate) fn rename(old: &[u8], new: &[u8]) -> Result<Command, OathError> {
    let mut body = Vec::new();
    tlv::push(&mut body, tag::NAME, old);
    tlv::push(&mut body, tag::NAME, new);
    command(ins::RENAME, 0x00, 0x00, body)
}

/// INS 0xA2 CALCULATE, truncated answer (P2 01): `71 id` `74 challenge`.
pub(crate) fn calculate(raw_id: &[u8], challenge: &[u8]) -> Result<Command, OathError> {
    let mut body = Vec::new();
    tlv::push(&mut body, tag::NAME, raw_id);
    tlv::push(&mut body, tag::CHALLENGE, challenge);
    command(ins::CALCULATE, 0x00, 0x01, body)
}

/// INS 0xA2 CALCULATE, full answer (P2 00): `71 id` `74 challenge`.
pub(crate) fn calculate_full(raw_id: &[u8], challenge: &[u8]) -> Result<Command, OathError> {
    let mut body = Vec::new();
    tlv::push(&mut body, tag::NAME, raw_id);
    tlv::push(&mut body, tag::CHALLENGE, challenge);
    command(ins::CALCULATE, 0x00, 0x00, body)
}

/// INS 0xA4 CALCULATE ALL, truncated answers (P2 01): `74 08 challenge`.
pub(crate) fn calculate_all(challenge: &[u8]) -> Result<Command, OathError> {
    let mut body = Vec::new();
    tlv::push(&mut body, tag::CHALLENGE, challenge);
    command(ins::CALCULATE_ALL, 0x00, 0x01, body)
}

/// INS 0xA3 VALIDATE: `75 hmac(key, card challenge)` `74 host challenge`.
pub(crate) fn validate(response: &[u8], host_challenge: &[u8]) -> Result<Command, OathError> {
    let mut body = Vec::new();
    tlv::push(&mut body, tag::RESPONSE, response);
    tlv::push(&mut body, tag::CHALLENGE, host_challenge);
    Ok(command(ins::VALIDATE, 0x00, 0x00, body)?.sensitive())
}

/// INS 0x03 SET CODE: `73 [TOTP|SHA1] key` `74 challenge` `75 hmac(key,
/// challenge)`. Holds the access key: marked sensitive.
pub(crate) fn set_code(
    key: &[u8],
    challenge: &[u8],
    response: &[u8],
) -> Result<Command, OathError> {
    let mut key_value = Zeroizing::new(Vec::with_capacity(key.len() + 1));
    key_value.push(OathType::Totp.code() | HashAlgorithm::Sha1.code());
    key_value.extend_from_slice(key);
    // Sized up front so no reallocation leaves a copy of the key behind.
    let mut body = Vec::with_capacity(key_value.len() + challenge.len() + response.len() + 12);
    tlv::push(&mut body, tag::KEY, &key_value);
    tlv::push(&mut body, tag::CHALLENGE, challenge);
    tlv::push(&mut body, tag::RESPONSE, response);
    Ok(command(ins::SET_CODE, 0x00, 0x00, body)?.sensitive())
}

/// INS 0x03 SET CODE with an empty key (`73 00`): removes the password.
pub(crate) fn clear_code() -> Result<Command, OathError> {
    command(ins::SET_CODE, 0x00, 0x00, vec![tag::KEY, 0x00])
}

/// INS 0x04 RESET, P1 P2 = DE AD.
pub(crate) fn reset() -> Command {
    Command::new(0x00, ins::RESET, 0xDE, 0xAD)
}

/// SELECT's answer: `79` version and `71` salt (both required, as ykman
/// needs them), `74` challenge and `7B` key algorithm when a password is set.
pub(crate) fn parse_select(data: &[u8]) -> Result<SelectInfo, OathError> {
    let mut version = None;
    let mut salt = None;
    let mut challenge = None;
    let mut key_algorithm = None;
    for item in tlv::parse(data) {
        let (t, v) = item?;
        match t {
            tag::VERSION => version = Some(v),
            tag::NAME => salt = Some(v.to_vec()),
            tag::CHALLENGE => challenge = Some(v.to_vec()),
            tag::ALGORITHM => key_algorithm = v.first().and_then(|b| HashAlgorithm::from_byte(*b)),
            _ => {}
        }
    }
    let version = version.ok_or_else(|| malformed("SELECT answer has no version (tag 79)"))?;
    let version = Version::from_bytes(version)
        .ok_or_else(|| malformed(format!("SELECT version is {} bytes, not 3", version.len())))?;
    let salt = salt.ok_or_else(|| malformed("SELECT answer has no salt (tag 71)"))?;
    Ok(SelectInfo {
        version,
        salt,
        challenge,
        key_algorithm,
    })
}

/// LIST's answer: repeated `72 len [type|algo] id`.
pub(crate) fn parse_list(data: &[u8]) -> Result<Vec<Credential>, OathError> {
    let mut out = Vec::new();
    for item in tlv::parse(data) {
        let (t, v) = item?;
        if t != tag::NAME_LIST {
            return Err(malformed(format!("LIST answer has tag {t:02X}, not 72")));
        }
        let Some((&type_byte, raw_id)) = v.split_first() else {
            return Err(malformed("LIST entry is empty"));
        };
        let (oath_type, algorithm) = type_and_algorithm(type_byte)?;
        out.push(Credential {
            id: CredentialId::parse(raw_id, oath_type),
            raw_id: raw_id.to_vec(),
            algorithm,
            touch: None,
        });
    }
    Ok(out)
}

/// One entry of CALCULATE ALL's answer: the raw id, then `76` truncated
/// code, `77` HOTP (not computed), `7C` touch required (not computed).
pub(crate) struct CalculateAllEntry {
    pub raw_id: Vec<u8>,
    pub tag: u8,
    pub value: Vec<u8>,
}

pub(crate) fn parse_calculate_all(data: &[u8]) -> Result<Vec<CalculateAllEntry>, OathError> {
    let items = tlv::parse_all(data)?;
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let Some((t, raw_id)) = it.next() {
        if t != tag::NAME {
            return Err(malformed(format!(
                "CALCULATE ALL answer has tag {t:02X} where a name (71) belongs"
            )));
        }
        let Some((rt, value)) = it.next() else {
            return Err(malformed("CALCULATE ALL answer ends after a name"));
        };
        if !matches!(rt, tag::TRUNCATED | tag::HOTP | tag::TOUCH) {
            return Err(malformed(format!(
                "CALCULATE ALL answer has tag {rt:02X} after a name, not 76, 77 or 7C"
            )));
        }
        out.push(CalculateAllEntry {
            raw_id: raw_id.to_vec(),
            tag: rt,
            value: value.to_vec(),
        });
    }
    Ok(out)
}

/// A truncated answer's value: `[digits][4 bytes]`.
pub(crate) fn parse_truncated(value: &[u8]) -> Result<(u8, u32), OathError> {
    match value {
        [digits @ 1..=10, a, b, c, d] => Ok((*digits, u32::from_be_bytes([*a, *b, *c, *d]))),
        [digits, _, _, _, _] => Err(malformed(format!("truncated code with {digits} digits"))),
        _ => Err(malformed(format!(
            "truncated code is {} bytes, not 5",
            value.len()
        ))),
    }
}

/// CALCULATE's answer: exactly one `76` TLV.
pub(crate) fn parse_calculate(data: &[u8]) -> Result<(u8, u32), OathError> {
    let items = tlv::parse_all(data)?;
    match items.as_slice() {
        [(tag::TRUNCATED, v)] => parse_truncated(v),
        _ => Err(malformed("CALCULATE answer is not one truncated code (76)")),
    }
}

/// A full CALCULATE's answer: exactly one `75 [digits][hmac]`; the HMAC.
pub(crate) fn parse_calculate_full(data: &[u8]) -> Result<Vec<u8>, OathError> {
    let items = tlv::parse_all(data)?;
    match items.as_slice() {
        [(tag::RESPONSE, v)] if v.len() > 1 => Ok(v[1..].to_vec()),
        _ => Err(malformed("full CALCULATE answer is not one response (75)")),
    }
}

/// VALIDATE's answer: the card's `75` proof.
pub(crate) fn parse_validate(data: &[u8]) -> Result<Vec<u8>, OathError> {
    tlv::find(data, tag::RESPONSE)?
        .map(<[u8]>::to_vec)
        .ok_or_else(|| malformed("VALIDATE answer has no response (75)"))
}

fn type_and_algorithm(b: u8) -> Result<(OathType, HashAlgorithm), OathError> {
    match (OathType::from_byte(b), HashAlgorithm::from_byte(b)) {
        (Some(t), Some(a)) => Ok((t, a)),
        _ => Err(malformed(format!(
            "unknown credential type/algorithm {b:02X}"
        ))),
    }
}

fn malformed(what: impl Into<String>) -> OathError {
    OathError::Malformed(what.into())
}
