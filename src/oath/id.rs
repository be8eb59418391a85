//! Credential ids: `[period/][issuer:]name`, UTF-8, at most 64 bytes, as
//! Yubico's tools format and parse them.

use super::{OathError, OathType, DEFAULT_PERIOD};
use serde::Serialize;

/// Longest credential id the applet stores, in bytes.
pub(crate) const MAX_ID_LEN: usize = 64;

/// The parts of a credential id. `period` is 0 for HOTP, as yubikit has it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub(crate) struct CredentialId {
    pub issuer: Option<String>,
    pub name: String,
    pub period: u32,
    #[serde(rename = "type")]
    pub oath_type: OathType,
}

impl CredentialId {
    /// An id from its parts. An empty issuer counts as none (Yubico's
    /// formatter skips it too); a HOTP id has period 0.
    pub(crate) fn new(issuer: Option<&str>, name: &str, oath_type: OathType, period: u32) -> Self {
        CredentialId {
            issuer: issuer.filter(|i| !i.is_empty()).map(str::to_string),
            name: name.to_string(),
            period: match oath_type {
                OathType::Totp => period,
                OathType::Hotp => 0,
            },
            oath_type,
        }
    }

    /// The id as stored on the key: `period/` only for TOTP with a period
    /// other than 30, `issuer:` only with a non-empty issuer.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::new();
        if self.oath_type == OathType::Totp && self.period != DEFAULT_PERIOD {
            s.push_str(&format!("{}/", self.period));
        }
        if let Some(issuer) = self.issuer.as_deref().filter(|i| !i.is_empty()) {
            s.push_str(issuer);
            s.push(':');
        }
        s.push_str(&self.name);
        s.into_bytes()
    }

    /// The stored id as text: what `ykman oath accounts list` prints.
    pub(crate) fn to_id_string(&self) -> String {
        String::from_utf8_lossy(&self.to_bytes()).into_owned()
    }

    /// Parses a stored id as yubikit does. TOTP ids follow the pattern
    /// `^((\d+)/)?(([^:]+):)?(.+)$` (issuer split at the first colon, which
    /// must not be the first character); an id the pattern refuses is all
    /// name with period 30. HOTP ids split at the first colon unless the id
    /// starts with one, and have period 0. Bytes that are not UTF-8 are
    /// replaced (U+FFFD); keep the raw id for talking to the key.
    pub(crate) fn parse(raw: &[u8], oath_type: OathType) -> Self {
        let text = String::from_utf8_lossy(raw);
        let (issuer, name, period) = match oath_type {
            OathType::Totp => {
                parse_totp(&text).unwrap_or_else(|| (None, text.to_string(), DEFAULT_PERIOD))
            }
            OathType::Hotp => match text.split_once(':') {
                Some((i, n)) if !i.is_empty() => (Some(i.to_string()), n.to_string(), 0),
                _ => (None, text.to_string(), 0),
            },
        };
        CredentialId {
            issuer,
            name,
            period,
            oath_type,
        }
    }

    /// Refuses ids longer than the applet's 64 bytes.
    pub(crate) fn check_len(&self) -> Result<(), OathError> {
        let len = self.to_bytes().len();
        if len > MAX_ID_LEN {
            return Err(OathError::IdTooLong { len });
        }
        Ok(())
    }

    /// The same credential under a new issuer and name, keeping type and
    /// period (what RENAME should be given).
    #[cfg(test)]
    pub fn renamed(&self, issuer: Option<&str>, name: &str) -> Self {
        CredentialId::new(issuer, name, self.oath_type, self.period)
    }
}

/// ykman's display form: `issuer:name`, or `name` alone.
impl std::fmt::Display for CredentialId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.issuer.as_deref().filter(|i| !i.is_empty()) {
            Some(issuer) => write!(f, "{issuer}:{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The TOTP id pattern, tried in the order a backtracking regex engine
/// tries it: with a period prefix first, then with an issuer, then without.
fn parse_totp(text: &str) -> Option<(Option<String>, String, u32)> {
    if let Some((period, rest)) = period_prefix(text) {
        if let Some((issuer, name)) = issuer_and_name(rest) {
            return Some((issuer, name, period));
        }
    }
    issuer_and_name(text).map(|(issuer, name)| (issuer, name, DEFAULT_PERIOD))
}

/// `(\d+)/` at the start. Periods that do not fit a u32 are not taken as
/// periods (yubikit would read them as huge integers).
fn period_prefix(text: &str) -> Option<(u32, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || text.as_bytes().get(digits) != Some(&b'/') {
        return None;
    }
    let period = text[..digits].parse::<u32>().ok()?;
    Some((period, &text[digits + 1..]))
}

/// `(([^:]+):)?(.+)$` on what follows the period.
fn issuer_and_name(text: &str) -> Option<(Option<String>, String)> {
    if let Some((issuer, rest)) = text.split_once(':') {
        if !issuer.is_empty() {
            if let Some(name) = dot_plus_end(rest) {
                return Some((Some(issuer.to_string()), name.to_string()));
            }
        }
    }
    dot_plus_end(text).map(|name| (None, name.to_string()))
}

/// Python's `(.+)$` without flags: one or more characters other than `\n`,
/// then the end or a single final `\n` (which the group leaves out).
fn dot_plus_end(text: &str) -> Option<&str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() || body.contains('\n') {
        return None;
    }
    Some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totp(raw: &str) -> (Option<String>, String, u32) {
        let id = CredentialId::parse(raw.as_bytes(), OathType::Totp);
        (id.issuer, id.name, id.period)
    }

    fn s(x: &str) -> Option<String> {
        Some(x.to_string())
    }

    #[test]
    fn formats_like_yubikit() {
        let id = CredentialId::new(Some("Amazon Web Services"), "alice@123", OathType::Totp, 30);
        assert_eq!(id.to_bytes(), b"Amazon Web Services:alice@123");
        let id = CredentialId::new(Some("Example"), "bob", OathType::Totp, 60);
        assert_eq!(id.to_bytes(), b"60/Example:bob");
        assert_eq!(id.to_string(), "Example:bob");
        assert_eq!(id.to_id_string(), "60/Example:bob");
        let id = CredentialId::new(None, "bob", OathType::Totp, 15);
        assert_eq!(id.to_bytes(), b"15/bob");
        // No period prefix for HOTP, whatever period was given.
        let id = CredentialId::new(Some("Example"), "bob", OathType::Hotp, 60);
        assert_eq!(id.to_bytes(), b"Example:bob");
        assert_eq!(id.period, 0);
        // An empty issuer is no issuer.
        let id = CredentialId::new(Some(""), "bob", OathType::Totp, 30);
        assert_eq!(id.to_bytes(), b"bob");
        assert_eq!(id.issuer, None);
    }

    #[test]
    fn parses_totp_like_yubikit() {
        assert_eq!(totp("Example:bob"), (s("Example"), "bob".into(), 30));
        assert_eq!(totp("60/Example:bob"), (s("Example"), "bob".into(), 60));
        assert_eq!(totp("15/bob"), (None, "bob".into(), 15));
        assert_eq!(totp("bob"), (None, "bob".into(), 30));
        // Issuer split at the first colon: a bare ARN reads as issuer "arn".
        assert_eq!(
            totp("arn:aws:iam::123456789012:mfa/alice"),
            (s("arn"), "aws:iam::123456789012:mfa/alice".into(), 30)
        );
        // A leading colon is no issuer.
        assert_eq!(totp(":bob"), (None, ":bob".into(), 30));
        assert_eq!(totp("30/:bob"), (None, ":bob".into(), 30));
        // A slash without digits is not a period; the issuer may hold it.
        assert_eq!(totp("a/b:c"), (s("a/b"), "c".into(), 30));
        assert_eq!(totp("007/x"), (None, "x".into(), 7));
        // "(.+)" needs a character: "123/" alone is all name.
        assert_eq!(totp("123/"), (None, "123/".into(), 30));
        // Nothing after the colon: the colon belongs to the name.
        assert_eq!(totp("Example:"), (None, "Example:".into(), 30));
        assert_eq!(totp("60/Example:"), (None, "Example:".into(), 60));
        // A period too big for u32 is not taken as a period.
        assert_eq!(totp("99999999999/x"), (None, "99999999999/x".into(), 30));
        // Python's "." stops at a newline; "$" allows one final newline.
        assert_eq!(totp("a:b\n"), (s("a"), "b".into(), 30));
        assert_eq!(totp("a:b\nc"), (None, "a:b\nc".into(), 30));
        assert_eq!(totp(""), (None, "".into(), 30));
    }

    #[test]
    fn parses_hotp_like_yubikit() {
        let id = CredentialId::parse(b"Example:bob:x", OathType::Hotp);
        assert_eq!(
            (id.issuer.as_deref(), id.name.as_str(), id.period),
            (Some("Example"), "bob:x", 0)
        );
        // HOTP ids have no period prefix.
        let id = CredentialId::parse(b"60/bob", OathType::Hotp);
        assert_eq!((id.issuer, id.name.as_str()), (None, "60/bob"));
        let id = CredentialId::parse(b":bob", OathType::Hotp);
        assert_eq!((id.issuer, id.name.as_str()), (None, ":bob"));
    }

    #[test]
    fn round_trips() {
        for (issuer, name, t, p) in [
            (Some("Amazon Web Services"), "alice@123", OathType::Totp, 30),
            (Some("x"), "y", OathType::Totp, 45),
            (None, "plain", OathType::Totp, 60),
            (Some("i"), "n", OathType::Hotp, 0),
            (Some("Zürich Bank"), "größe", OathType::Totp, 30),
        ] {
            let id = CredentialId::new(issuer, name, t, p);
            assert_eq!(CredentialId::parse(&id.to_bytes(), t), id);
        }
    }

    #[test]
    fn length_budget_counts_bytes_at_the_exact_boundary() {
        // "Amazon Web Services:" is 20 bytes; 44 more make 64.
        let name = "a".repeat(44);
        let id = CredentialId::new(Some("Amazon Web Services"), &name, OathType::Totp, 30);
        assert_eq!(id.to_bytes().len(), 64);
        id.check_len().unwrap();
        let id = CredentialId::new(
            Some("Amazon Web Services"),
            &format!("{name}b"),
            OathType::Totp,
            30,
        );
        match id.check_len() {
            Err(OathError::IdTooLong { len: 65 }) => {}
            other => panic!("{other:?}"),
        }
        // The period prefix counts: "60/" is 3 more bytes.
        let id = CredentialId::new(Some("Amazon Web Services"), &name, OathType::Totp, 60);
        assert!(matches!(
            id.check_len(),
            Err(OathError::IdTooLong { len: 67 })
        ));
        // "é" is 2 bytes: 32 of them are 64 bytes (32 chars), 33 are too many.
        let id = CredentialId::new(None, &"é".repeat(32), OathType::Totp, 30);
        id.check_len().unwrap();
        let id = CredentialId::new(None, &"é".repeat(33), OathType::Totp, 30);
        assert!(matches!(
            id.check_len(),
            Err(OathError::IdTooLong { len: 66 })
        ));
        // "€" is 3 bytes: 21 make 63, plus "x" is 64.
        let id = CredentialId::new(None, &format!("{}x", "€".repeat(21)), OathType::Totp, 30);
        assert_eq!(id.to_bytes().len(), 64);
        id.check_len().unwrap();
        let msg = OathError::IdTooLong { len: 66 }.to_string();
        assert!(msg.contains("66 bytes"), "{msg}");
    }

    #[test]
    fn serializes_parts_with_type_field() {
        let id = CredentialId::new(Some("I"), "n", OathType::Totp, 30);
        assert_eq!(
            serde_json::to_value(&id).unwrap(),
            serde_json::json!({"issuer": "I", "name": "n", "period": 30, "type": "totp"})
        );
    }
}
