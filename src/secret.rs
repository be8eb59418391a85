//! Secrets: seeds, OATH passwords and derived keys. They live in zeroizing
//! types whose Debug prints a redaction, are never `Serialize`, and are never
//! part of an error message.

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Secret bytes (an OATH seed, an access key). Zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

/// A secret text (an OATH password, a FIDO2 PIN). Zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: String) -> Self {
        SecretString(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// Why a base32 seed was refused. The messages never quote the input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeedError {
    #[error("the secret is empty")]
    Empty,
    #[error("the secret is not valid base32: character {position} is not in A-Z, 2-7 (the secret itself is not shown)")]
    InvalidCharacter { position: usize },
    #[error("the secret is not valid base32: its length does not decode to whole bytes")]
    BadLength,
}

/// Parses a base32 seed as authenticator apps accept it: spaces, dashes and
/// line breaks ignored, lower case accepted, `=` padding optional. An
/// `otpauth://` URI is accepted and its `secret` parameter used.
pub fn parse_base32_seed(text: &str) -> Result<SecretBytes, SeedError> {
    let trimmed = text.trim();
    let from_uri;
    // `get`, not slicing: byte 10 may fall inside a character (a pasted
    // non-breaking space), and a slicing panic would print the input.
    let is_uri = trimmed
        .get(..10)
        .is_some_and(|p| p.eq_ignore_ascii_case("otpauth://"));
    let body: &str = if is_uri {
        from_uri = Zeroizing::new(otpauth_secret(trimmed).ok_or(SeedError::Empty)?);
        from_uri.as_str()
    } else {
        trimmed
    };
    let mut clean = Zeroizing::new(String::with_capacity(body.len()));
    for (i, ch) in body.chars().enumerate() {
        match ch {
            ' ' | '\t' | '\r' | '\n' | '-' => continue,
            '=' => continue,
            'a'..='z' => clean.push(ch.to_ascii_uppercase()),
            'A'..='Z' | '2'..='7' => clean.push(ch),
            _ => return Err(SeedError::InvalidCharacter { position: i + 1 }),
        }
    }
    if clean.is_empty() {
        return Err(SeedError::Empty);
    }
    // Lengths 1, 3 and 6 (mod 8) cannot come from whole bytes.
    if matches!(clean.len() % 8, 1 | 3 | 6) {
        return Err(SeedError::BadLength);
    }
    let bytes = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &clean)
        .ok_or(SeedError::BadLength)?;
    if bytes.is_empty() {
        return Err(SeedError::Empty);
    }
    Ok(SecretBytes::new(bytes))
}

/// The `secret=` parameter of an otpauth URI (percent-decoding is not needed
/// for base32).
fn otpauth_secret(uri: &str) -> Option<String> {
    let query = uri.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("secret"))
        .map(|(_, v)| v.to_string())
}

/// Base32 (RFC 4648, no padding) of a seed, for the few places that must hand
/// it on (the host-side TOTP check). The result is zeroized on drop.
pub fn to_base32(seed: &SecretBytes) -> Zeroizing<String> {
    Zeroizing::new(base32::encode(
        base32::Alphabet::Rfc4648 { padding: false },
        seed.expose(),
    ))
}

impl crate::error::Classify for SeedError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::InvalidSecret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_spaces_lower_case_and_padding() {
        let a = parse_base32_seed("JBSW Y3DP EHPK 3PXP").unwrap();
        let b = parse_base32_seed("jbswy3dpehpk3pxp").unwrap();
        let c = parse_base32_seed("JBSWY3DPEHPK3PXP====\n").unwrap();
        assert_eq!(a.expose(), b"Hello!\xde\xad\xbe\xef");
        assert_eq!(a, b);
        assert_eq!(b, c);
    }

    #[test]
    fn accepts_otpauth_uri() {
        let s = parse_base32_seed(
            "otpauth://totp/Amazon%20Web%20Services:alice@123?secret=JBSWY3DPEHPK3PXP&issuer=Amazon%20Web%20Services",
        )
        .unwrap();
        assert_eq!(s.expose(), b"Hello!\xde\xad\xbe\xef");
    }

    #[test]
    fn refuses_bad_input_without_quoting_it() {
        assert_eq!(parse_base32_seed("   ").unwrap_err(), SeedError::Empty);
        let e = parse_base32_seed("JBSWY3DP1HPK").unwrap_err();
        assert_eq!(e, SeedError::InvalidCharacter { position: 9 });
        assert!(!e.to_string().contains("JBSW"));
        assert_eq!(parse_base32_seed("ABC").unwrap_err(), SeedError::BadLength);
    }

    #[test]
    fn a_character_across_byte_ten_is_refused_not_a_panic() {
        // U+00A0 (two bytes) at bytes 9-10: slicing at 10 would panic and
        // quote the whole input.
        let e = parse_base32_seed("JBSWY3DPE\u{a0}HPK3PXP").unwrap_err();
        assert_eq!(e, SeedError::InvalidCharacter { position: 10 });
        assert!(!e.to_string().contains("JBSW"));
        assert_eq!(
            parse_base32_seed("otpauth:/\u{e9}x").unwrap_err(),
            SeedError::InvalidCharacter { position: 8 }
        );
    }

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::new(b"supersecret".to_vec());
        assert_eq!(format!("{s:?}"), "SecretBytes(<redacted>)");
        let p = SecretString::new("hunter2".into());
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
