//! Credentials: what PUT writes ([`CredentialData`]), what the key lists
//! ([`Credential`]) and what it computes ([`Code`]).

use super::{CredentialId, HashAlgorithm, OathError, OathType, HMAC_MINIMUM_KEY_SIZE};
use crate::secret::SecretBytes;
use serde::Serialize;
use sha2::Digest;
use zeroize::Zeroizing;

/// Everything PUT needs. The secret is never printed or serialized.
#[derive(Clone, Debug)]
pub(crate) struct CredentialData {
    pub id: CredentialId,
    pub algorithm: HashAlgorithm,
    pub digits: u8,
    pub secret: SecretBytes,
    pub touch: bool,
    /// Initial moving factor (HOTP only; 0 writes no `7A` tag).
    pub counter: u32,
}

impl CredentialData {
    /// Refuses what the applet would refuse or mis-store: digits outside
    /// 6..=8, a TOTP period of 0, an empty secret or name, a counter on a
    /// TOTP credential, an id over 64 bytes.
    pub(crate) fn validate(&self) -> Result<(), OathError> {
        if !(6..=8).contains(&self.digits) {
            return Err(OathError::InvalidCredential(format!(
                "--digits {}: must be 6, 7 or 8",
                self.digits
            )));
        }
        if self.id.oath_type == OathType::Totp && self.id.period == 0 {
            return Err(OathError::InvalidCredential(
                "--period 0: a TOTP period must be at least 1 second".into(),
            ));
        }
        if self.id.oath_type == OathType::Totp && self.counter != 0 {
            return Err(OathError::InvalidCredential(
                "--counter only applies to HOTP credentials".into(),
            ));
        }
        if self.secret.is_empty() {
            return Err(OathError::InvalidCredential(
                "the secret is empty: give the base32 seed".into(),
            ));
        }
        if self.id.name.is_empty() {
            return Err(OathError::InvalidCredential(
                "the account name is empty: give a name".into(),
            ));
        }
        self.id.check_len()
    }

    /// The key as PUT sends it: hashed when longer than the hash's block
    /// size (as HMAC itself would do), then zero-padded to 14 bytes. Both
    /// steps leave the HMAC, and so the codes, unchanged.
    pub(crate) fn put_key(&self) -> Zeroizing<Vec<u8>> {
        let secret = self.secret.expose();
        let mut key = Zeroizing::new(if secret.len() > self.algorithm.block_size() {
            match self.algorithm {
                HashAlgorithm::Sha1 => sha1::Sha1::digest(secret).to_vec(),
                HashAlgorithm::Sha256 => sha2::Sha256::digest(secret).to_vec(),
                HashAlgorithm::Sha512 => sha2::Sha512::digest(secret).to_vec(),
            }
        } else {
            secret.to_vec()
        });
        if key.len() < HMAC_MINIMUM_KEY_SIZE {
            key.resize(HMAC_MINIMUM_KEY_SIZE, 0);
        }
        key
    }
}

/// A credential on the key. `raw_id` is the id exactly as stored (use it to
/// address the credential); `id` is its parsed form. `touch` is known from
/// PUT and CALCULATE ALL, not from LIST.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Credential {
    #[serde(flatten)]
    pub id: CredentialId,
    #[serde(skip)]
    pub raw_id: Vec<u8>,
    pub algorithm: HashAlgorithm,
    pub touch: Option<bool>,
}

impl std::fmt::Display for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.id.fmt(f)
    }
}

/// A computed code and the time span it is valid for (unix seconds; for
/// HOTP `valid_from` is the request time and `valid_to` is `i64::MAX`, as
/// yubikit has it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Code {
    pub value: String,
    pub valid_from: u64,
    pub valid_to: u64,
}

/// One CALCULATE ALL entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CodeResult {
    Code(Code),
    /// The credential needs a touch: compute it alone with CALCULATE.
    TouchRequired,
    /// HOTP: computing advances the counter, so CALCULATE ALL does not.
    Hotp,
    /// A code that cannot be computed for this id (a period of 0, or the
    /// key refused computing it alone): why, in words.
    Unavailable(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(digits: u8, period: u32, secret: &[u8]) -> CredentialData {
        CredentialData {
            id: CredentialId::new(Some("I"), "n", OathType::Totp, period),
            algorithm: HashAlgorithm::Sha1,
            digits,
            secret: SecretBytes::new(secret.to_vec()),
            touch: false,
            counter: 0,
        }
    }

    #[test]
    fn validate_names_the_problem() {
        data(6, 30, b"k").validate().unwrap();
        data(8, 1, b"k").validate().unwrap();
        let e = data(9, 30, b"k").validate().unwrap_err().to_string();
        assert!(e.contains("--digits 9: must be 6, 7 or 8"), "{e}");
        assert!(data(5, 30, b"k").validate().is_err());
        assert!(data(6, 0, b"k").validate().is_err());
        assert!(data(6, 30, b"").validate().is_err());
        let mut d = data(6, 30, b"k");
        d.counter = 5;
        assert!(d.validate().is_err());
        d.id = CredentialId::new(None, "n", OathType::Hotp, 0);
        d.validate().unwrap();
        d.id.name.clear();
        assert!(d.validate().is_err());
        let mut d = data(6, 30, b"k");
        d.id.name = "x".repeat(63);
        assert!(matches!(
            d.validate(),
            Err(OathError::IdTooLong { len: 65 })
        ));
    }

    #[test]
    fn put_key_pads_and_hashes() {
        assert_eq!(
            &*data(6, 30, b"abc").put_key(),
            b"abc\0\0\0\0\0\0\0\0\0\0\0"
        );
        let exact = [7u8; 64];
        assert_eq!(&*data(6, 30, &exact).put_key(), &exact[..]);
        let long = [7u8; 65];
        let k = data(6, 30, &long).put_key();
        assert_eq!(&*k, sha1::Sha1::digest(long).as_slice());
        // SHA1 digest (20 bytes) needs no padding; SHA512 keeps up to 128.
        let mut d = data(6, 30, &[1u8; 128]);
        d.algorithm = HashAlgorithm::Sha512;
        assert_eq!(d.put_key().len(), 128);
        d.secret = SecretBytes::new(vec![1u8; 129]);
        assert_eq!(&*d.put_key(), sha2::Sha512::digest([1u8; 129]).as_slice());
    }

    #[test]
    fn credential_serializes_without_raw_id() {
        let c = Credential {
            id: CredentialId::new(Some("I"), "n", OathType::Totp, 60),
            raw_id: b"60/I:n".to_vec(),
            algorithm: HashAlgorithm::Sha256,
            touch: Some(true),
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"issuer": "I", "name": "n", "period": 60, "type": "totp",
                               "algorithm": "sha256", "touch": true})
        );
        assert_eq!(c.to_string(), "I:n");
    }

    #[test]
    fn debug_hides_the_secret() {
        let d = data(6, 30, b"supersecretseed");
        assert!(!format!("{d:?}").contains("supersecret"));
    }
}
