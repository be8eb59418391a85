//! One error type for the command line: a kind for JSON, a message for
//! people, and an exit code (documented in README.md).

use crate::device::DeviceError;
use crate::management::ManagementError;
use crate::oath::OathError;
use crate::secret::SeedError;
use crate::transport::TransportError;

/// Exit codes.
pub mod exit {
    pub const OTHER: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const DEVICE: u8 = 3;
    pub const AUTH: u8 = 4;
    pub const REFUSED: u8 = 5;
    pub const AWS: u8 = 6;
    pub const ROLLBACK: u8 = 7;
    /// `audit`: a finding at or above `--fail-on`.
    pub const FINDINGS: u8 = 8;
    /// `audit`: nothing at or above `--fail-on`, but some checks could not tell.
    pub const INCOMPLETE: u8 = 9;
}

#[derive(Debug)]
pub struct CliError {
    pub kind: &'static str,
    pub message: String,
    pub exit: u8,
}

impl CliError {
    pub fn new(kind: &'static str, exit: u8, message: impl Into<String>) -> Self {
        CliError {
            kind,
            message: message.into(),
            exit,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        CliError::new("invalid_argument", exit::USAGE, message)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn transport_kind(e: &TransportError) -> &'static str {
    match e {
        TransportError::NoService => "pcsc_not_running",
        TransportError::NoReaders => "no_reader",
        TransportError::NoCard(_) => "no_key",
        TransportError::CardRemoved => "key_removed",
        TransportError::CardReset => "key_reset",
        TransportError::InUse(_) => "key_in_use",
        _ => "device",
    }
}

impl From<TransportError> for CliError {
    fn from(e: TransportError) -> Self {
        CliError::new(transport_kind(&e), exit::DEVICE, e.to_string())
    }
}

impl From<DeviceError> for CliError {
    fn from(e: DeviceError) -> Self {
        let kind = match &e {
            DeviceError::Transport(t) => transport_kind(t),
            DeviceError::NoReaders => "no_reader",
            DeviceError::ReaderNotFound { .. } => "reader_not_found",
            DeviceError::AmbiguousReader { .. } => "ambiguous_reader",
            DeviceError::NoKey { .. } | DeviceError::SerialNotFound { .. } => "no_key",
            DeviceError::SeveralKeys { .. } => "several_keys",
            DeviceError::Management {
                source: ManagementError::Transport(t),
                ..
            } => transport_kind(t),
            DeviceError::Management { .. } => "not_a_yubikey",
        };
        CliError::new(kind, exit::DEVICE, e.to_string())
    }
}

/// The JSON kind and exit code of an OATH error.
pub fn oath_kind(e: &OathError) -> (&'static str, u8) {
    match e {
        OathError::Transport(t) => (transport_kind(t), exit::DEVICE),
        OathError::NotAvailable => ("oath_not_available", exit::DEVICE),
        OathError::Locked => ("locked", exit::AUTH),
        OathError::WrongPassword => ("wrong_password", exit::AUTH),
        OathError::KeyFull { .. } => ("key_full", exit::REFUSED),
        OathError::NoSuchCredential(_) => ("no_such_credential", exit::REFUSED),
        OathError::TouchTimeout => ("touch_timeout", exit::REFUSED),
        OathError::IdTooLong { .. } => ("id_too_long", exit::USAGE),
        OathError::InvalidCredential(_) | OathError::EmptyPassword => {
            ("invalid_argument", exit::USAGE)
        }
        OathError::Unsupported { .. } => ("unsupported", exit::REFUSED),
        _ => ("oath", exit::OTHER),
    }
}

impl From<OathError> for CliError {
    fn from(e: OathError) -> Self {
        let (kind, code) = oath_kind(&e);
        CliError::new(kind, code, e.to_string())
    }
}

impl From<SeedError> for CliError {
    fn from(e: SeedError) -> Self {
        CliError::new("invalid_secret", exit::USAGE, e.to_string())
    }
}
