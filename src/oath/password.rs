//! The OATH password: PBKDF2 access key, and the HMAC proofs VALIDATE and
//! SET CODE exchange.

use super::HashAlgorithm;
use crate::secret::{SecretBytes, SecretString};
use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// PBKDF2 rounds and key length of the access key (YKOATH, yubikit).
const PBKDF2_ROUNDS: u32 = 1000;
const ACCESS_KEY_LEN: usize = 16;

/// The access key: PBKDF2-HMAC-SHA1(password as UTF-8, salt = the SELECT
/// salt, 1000 rounds, 16 bytes).
pub(super) fn derive_key(password: &SecretString, salt: &[u8]) -> SecretBytes {
    let mut key = vec![0u8; ACCESS_KEY_LEN];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password.expose().as_bytes(), salt, PBKDF2_ROUNDS, &mut key);
    SecretBytes::new(key)
}

/// HMAC of `message` under `key` with `alg`.
pub(crate) fn hmac(alg: HashAlgorithm, key: &[u8], message: &[u8]) -> Zeroizing<Vec<u8>> {
    fn run<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length; new_from_slice cannot fail here.
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }
    Zeroizing::new(match alg {
        HashAlgorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, message),
        HashAlgorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, message),
        HashAlgorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, message),
    })
}

/// Constant-time comparison of the card's proof with the expected one
/// (lengths are public).
pub(crate) fn proof_matches(expected: &[u8], got: &[u8]) -> bool {
    expected.len() == got.len() && bool::from(expected.ct_eq(got))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn pbkdf2_check_value() {
        let key = derive_key(&SecretString::new("secret".into()), b"saltsalt");
        assert_eq!(hex(key.expose()), "8b09c61e3ddee1285f60003548fcfb09");
    }

    #[test]
    fn hmac_rfc2202_and_rfc4231() {
        // RFC 2202 test case 2.
        let m = hmac(
            HashAlgorithm::Sha1,
            b"Jefe",
            b"what do ya want for nothing?",
        );
        assert_eq!(hex(&m), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        // RFC 4231 test case 2.
        let m = hmac(
            HashAlgorithm::Sha256,
            b"Jefe",
            b"what do ya want for nothing?",
        );
        assert_eq!(
            hex(&m),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let m = hmac(
            HashAlgorithm::Sha512,
            b"Jefe",
            b"what do ya want for nothing?",
        );
        assert!(hex(&m).starts_with("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd6"));
    }

    #[test]
    fn proof_comparison() {
        assert!(proof_matches(&[1, 2, 3], &[1, 2, 3]));
        assert!(!proof_matches(&[1, 2, 3], &[1, 2, 4]));
        assert!(!proof_matches(&[1, 2, 3], &[1, 2]));
    }
}
