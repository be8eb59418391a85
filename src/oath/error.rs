//! Errors of the OATH client. Status words get their meaning at the
//! operation that received them (see `session.rs`); none of these messages
//! carries a secret.

use crate::apdu::StatusWord;
use crate::transport::TransportError;
use crate::version::Version;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum OathError {
    #[error(transparent)]
    Transport(#[from] TransportError),

    #[error("this key has no OATH applet, or it is disabled: enable OATH on the key (for example `ykman config usb --enable OATH`) or use another key")]
    NotAvailable,

    #[error("the key's OATH applet is password-protected: pass --password-file or enter the password at the prompt")]
    Locked,

    #[error("wrong OATH password: check it and try again")]
    WrongPassword,

    #[error("the key did not tell its serial number, and mfakey sends the OATH password (or anything derived from it) only to a key that identified itself: check the key with `mfakey keys`, or use another key")]
    Unidentified,

    #[error("the key's OATH applet is full ({capacity} credentials): delete a credential you no longer need, or use another key")]
    KeyFull { capacity: usize },

    #[error("no credential \"{0}\" on the key: list the key's credentials to check the name")]
    NoSuchCredential(String),

    #[error("the key waited for a touch and timed out: run the command again and touch the key when it blinks")]
    TouchTimeout,

    #[error("the credential id is {len} bytes; the OATH applet takes at most 64 (UTF-8 bytes, including \"issuer:\" and any \"period/\"): shorten the name or the issuer")]
    IdTooLong { len: usize },

    #[error("invalid credential: {0}")]
    InvalidCredential(String),

    #[error("{feature} needs YubiKey firmware {needs} or later; this key has {have}: leave the option out or use a newer key")]
    Unsupported {
        feature: &'static str,
        needs: Version,
        have: Version,
    },

    #[error("the OATH applet refused {op} (status {sw}); run again with --trace-apdu to see the exchange")]
    Status { op: &'static str, sw: StatusWord },

    #[error(
        "the key's OATH answer is malformed ({0}); run again with --trace-apdu to see the exchange"
    )]
    Malformed(String),

    /// The card accepted our password proof but its own proof (HMAC of our
    /// challenge) is wrong: it does not hold the access key we derived.
    #[error("the key's answer to our password challenge is wrong, so it cannot be trusted: check you are talking to the right key")]
    MutualAuthFailed,

    #[error(
        "the new OATH password is empty: give a non-empty password, or clear the password instead"
    )]
    EmptyPassword,

    #[error("the system's random number generator failed ({0}); try again")]
    Random(String),
}

impl From<crate::tlv::TlvError> for OathError {
    fn from(e: crate::tlv::TlvError) -> Self {
        OathError::Malformed(e.to_string())
    }
}

impl crate::error::Classify for OathError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            OathError::Transport(t) => t.kind(),
            OathError::NotAvailable => Kind::OathNotAvailable,
            OathError::Locked => Kind::Locked,
            OathError::WrongPassword => Kind::WrongPassword,
            OathError::Unidentified => Kind::KeyUnidentified,
            OathError::KeyFull { .. } => Kind::KeyFull,
            OathError::NoSuchCredential(_) => Kind::NoSuchCredential,
            OathError::TouchTimeout => Kind::TouchTimeout,
            OathError::IdTooLong { .. } => Kind::IdTooLong,
            OathError::InvalidCredential(_) | OathError::EmptyPassword => Kind::InvalidArgument,
            OathError::Unsupported { .. } => Kind::Unsupported,
            OathError::Status { .. }
            | OathError::Malformed(_)
            | OathError::MutualAuthFailed
            | OathError::Random(_) => Kind::Oath,
        }
    }
}
