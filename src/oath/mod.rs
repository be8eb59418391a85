//! Client for Yubico's OATH applet (YKOATH), written against [`Transport`].
//!
//! Wire format as in Yubico's "YKOATH Protocol Specification" and its
//! reference client (yubikit `oath.py`): [`OathSession`] drives the applet,
//! [`CredentialId`] formats and parses the `[period/][issuer:]name` ids,
//! [`derive_key`] turns a password into the access key, and [`otp`] computes
//! the same codes on the host for cross-checks.
//!
//! [`Transport`]: crate::transport::Transport

pub(crate) mod commands;
mod credential;
mod error;
mod id;
pub(crate) mod otp;
mod password;
mod session;

#[cfg(test)]
mod script;
#[cfg(test)]
mod yubikit_tests;

use serde::Serialize;

pub(crate) use credential::{Code, CodeResult, Credential, CredentialData};
pub(crate) use error::OathError;
pub(crate) use id::{CredentialId, MAX_ID_LEN};
pub(crate) use session::OathSession;

/// AID of the OATH applet.
pub(crate) const OATH_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01];

/// TOTP period used when the id carries no `period/` prefix.
pub(crate) const DEFAULT_PERIOD: u32 = 30;

/// Keys shorter than this are zero-padded before PUT (the applet's HMAC
/// minimum).
pub(crate) const HMAC_MINIMUM_KEY_SIZE: usize = 14;

/// Length of the challenges exchanged by VALIDATE and SET CODE.
pub(crate) const CHALLENGE_LEN: usize = 8;

/// Instruction bytes (YKOATH "Instructions" table).
pub(crate) mod ins {
    pub(crate) const PUT: u8 = 0x01;
    pub(crate) const DELETE: u8 = 0x02;
    pub(crate) const SET_CODE: u8 = 0x03;
    pub(crate) const RESET: u8 = 0x04;
    pub(crate) const RENAME: u8 = 0x05;
    pub(crate) const SELECT: u8 = 0xA4;
    pub(crate) const LIST: u8 = 0xA1;
    pub(crate) const CALCULATE: u8 = 0xA2;
    pub(crate) const VALIDATE: u8 = 0xA3;
    pub(crate) const CALCULATE_ALL: u8 = 0xA4;
    pub(crate) const SEND_REMAINING: u8 = 0xA5;
}

/// TLV tags.
pub(crate) mod tag {
    pub(crate) const NAME: u8 = 0x71;
    pub(crate) const NAME_LIST: u8 = 0x72;
    pub(crate) const KEY: u8 = 0x73;
    pub(crate) const CHALLENGE: u8 = 0x74;
    pub(crate) const RESPONSE: u8 = 0x75;
    pub(crate) const TRUNCATED: u8 = 0x76;
    pub(crate) const HOTP: u8 = 0x77;
    pub(crate) const PROPERTY: u8 = 0x78;
    pub(crate) const VERSION: u8 = 0x79;
    pub(crate) const IMF: u8 = 0x7A;
    pub(crate) const ALGORITHM: u8 = 0x7B;
    pub(crate) const TOUCH: u8 = 0x7C;
}

/// Credential properties (tag `78`, written without a length byte).
pub(crate) mod prop {
    /// Codes need a touch (firmware 4.2.4+).
    pub(crate) const REQUIRE_TOUCH: u8 = 0x02;
}

const MASK_TYPE: u8 = 0xF0;
const MASK_ALGO: u8 = 0x0F;

/// Counter-based or time-based credential; high nibble of the type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OathType {
    Hotp,
    Totp,
}

impl OathType {
    /// The high-nibble value (`0x10` HOTP, `0x20` TOTP).
    pub(crate) fn code(self) -> u8 {
        match self {
            OathType::Hotp => 0x10,
            OathType::Totp => 0x20,
        }
    }

    /// From a type|algorithm byte.
    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        match b & MASK_TYPE {
            0x10 => Some(OathType::Hotp),
            0x20 => Some(OathType::Totp),
            _ => None,
        }
    }
}

impl std::fmt::Display for OathType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OathType::Hotp => "HOTP",
            OathType::Totp => "TOTP",
        })
    }
}

impl std::str::FromStr for OathType {
    type Err = OathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "totp" => Ok(OathType::Totp),
            "hotp" => Ok(OathType::Hotp),
            _ => Err(OathError::InvalidCredential(format!(
                "type \"{s}\": must be TOTP or HOTP"
            ))),
        }
    }
}

/// HMAC hash of a credential; low nibble of the type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HashAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlgorithm {
    /// The low-nibble value (`1`, `2`, `3`).
    pub(crate) fn code(self) -> u8 {
        match self {
            HashAlgorithm::Sha1 => 0x01,
            HashAlgorithm::Sha256 => 0x02,
            HashAlgorithm::Sha512 => 0x03,
        }
    }

    /// From a type|algorithm byte (only the low nibble is read).
    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        match b & MASK_ALGO {
            0x01 => Some(HashAlgorithm::Sha1),
            0x02 => Some(HashAlgorithm::Sha256),
            0x03 => Some(HashAlgorithm::Sha512),
            _ => None,
        }
    }

    /// The hash's block size: keys longer than this are hashed before PUT.
    pub(crate) fn block_size(self) -> usize {
        match self {
            HashAlgorithm::Sha1 | HashAlgorithm::Sha256 => 64,
            HashAlgorithm::Sha512 => 128,
        }
    }
}

impl std::fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HashAlgorithm::Sha1 => "SHA1",
            HashAlgorithm::Sha256 => "SHA256",
            HashAlgorithm::Sha512 => "SHA512",
        })
    }
}

impl std::str::FromStr for HashAlgorithm {
    type Err = OathError;

    /// `sha1`, `SHA256`, `sha-512`: case and one dash are ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "").as_str() {
            "sha1" => Ok(HashAlgorithm::Sha1),
            "sha256" => Ok(HashAlgorithm::Sha256),
            "sha512" => Ok(HashAlgorithm::Sha512),
            _ => Err(OathError::InvalidCredential(format!(
                "algorithm \"{s}\": must be SHA1, SHA256 or SHA512"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_and_algorithm_bytes() {
        assert_eq!(OathType::Totp.code() | HashAlgorithm::Sha1.code(), 0x21);
        assert_eq!(OathType::from_byte(0x12), Some(OathType::Hotp));
        assert_eq!(OathType::from_byte(0x31), None);
        assert_eq!(HashAlgorithm::from_byte(0x23), Some(HashAlgorithm::Sha512));
        assert_eq!(HashAlgorithm::from_byte(0x24), None);
        assert_eq!(HashAlgorithm::Sha512.block_size(), 128);
    }

    #[test]
    fn names_parse_and_serialize() {
        for (s, a) in [
            ("sha1", HashAlgorithm::Sha1),
            ("SHA1", HashAlgorithm::Sha1),
            ("Sha-256", HashAlgorithm::Sha256),
            ("sha512", HashAlgorithm::Sha512),
        ] {
            assert_eq!(s.parse::<HashAlgorithm>().unwrap(), a);
        }
        assert!("md5".parse::<HashAlgorithm>().is_err());
        assert_eq!("TOTP".parse::<OathType>().unwrap(), OathType::Totp);
        assert_eq!(
            serde_json::to_string(&HashAlgorithm::Sha256).unwrap(),
            "\"sha256\""
        );
        assert_eq!(serde_json::to_string(&OathType::Hotp).unwrap(), "\"hotp\"");
    }
}
