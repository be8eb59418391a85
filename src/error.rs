//! One error model. Lower layers state facts in their own error types; each
//! use case adds what to do about them; every error says which [`Kind`] it
//! is ([`Classify`]); and one table, [`Kind::spec`], gives each kind its
//! JSON name and exit code (documented in README.md).

use std::fmt;

/// Exit codes (README.md, "Exit codes").
pub(crate) mod exit {
    pub(crate) const OTHER: u8 = 1;
    pub(crate) const USAGE: u8 = 2;
    pub(crate) const DEVICE: u8 = 3;
    pub(crate) const AUTH: u8 = 4;
    pub(crate) const REFUSED: u8 = 5;
    pub(crate) const AWS: u8 = 6;
    pub(crate) const ROLLBACK: u8 = 7;
    /// `audit`: a finding at or above `--fail-on`.
    pub(crate) const FINDINGS: u8 = 8;
    /// `audit`: nothing at or above `--fail-on`, but some checks could not tell.
    pub(crate) const INCOMPLETE: u8 = 9;
    /// `enroll user --backup`: the first key is enrolled, the backup key is not.
    pub(crate) const BACKUP: u8 = 10;
}

/// The one table: every kind of failure a command can end with, its JSON
/// name (`error.kind`) and its exit code.
macro_rules! kinds {
    ($($(#[$doc:meta])* $kind:ident => ($name:literal, $code:ident),)*) => {
        /// What kind of failure a command ended with.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub(crate) enum Kind {
            $($(#[$doc])* $kind,)*
        }

        impl Kind {
            /// Every kind, in the table's order.
            #[cfg(test)]
            pub(crate) const ALL: &'static [Kind] = &[$(Kind::$kind,)*];

            /// The kind's JSON name and exit code.
            pub(crate) const fn spec(self) -> (&'static str, u8) {
                match self {
                    $(Kind::$kind => ($name, exit::$code),)*
                }
            }
        }
    };
}

kinds! {
    // Usage and input.
    InvalidArgument => ("invalid_argument", USAGE),
    InvalidSecret => ("invalid_secret", USAGE),
    InvalidManifest => ("invalid_manifest", USAGE),
    InvalidPin => ("invalid_pin", USAGE),
    IdTooLong => ("id_too_long", USAGE),
    NothingToResume => ("nothing_to_resume", USAGE),
    InsecureEndpoint => ("insecure_endpoint", USAGE),
    /// A command of a cargo feature this build left out (`fido2`).
    #[cfg_attr(feature = "fido2", allow(dead_code))]
    NotBuilt => ("not_built", USAGE),
    /// The shared config file's profile or its `mfa_serial` is missing,
    /// or the file cannot be edited safely.
    AwsConfig => ("aws_config", USAGE),
    // The device: PC/SC, readers, keys, FIDO over HID.
    PcscNotRunning => ("pcsc_not_running", DEVICE),
    NoReader => ("no_reader", DEVICE),
    ReaderNotFound => ("reader_not_found", DEVICE),
    AmbiguousReader => ("ambiguous_reader", DEVICE),
    NoKey => ("no_key", DEVICE),
    SeveralKeys => ("several_keys", DEVICE),
    KeyRemoved => ("key_removed", DEVICE),
    KeyReset => ("key_reset", DEVICE),
    KeyInUse => ("key_in_use", DEVICE),
    NotAYubikey => ("not_a_yubikey", DEVICE),
    VirtualReader => ("virtual_reader", DEVICE),
    KeyUnidentified => ("key_unidentified", DEVICE),
    OathNotAvailable => ("oath_not_available", DEVICE),
    NoFidoKey => ("no_fido_key", DEVICE),
    NoPermission => ("no_permission", DEVICE),
    Device => ("device", DEVICE),
    // Authentication to the key.
    Locked => ("locked", AUTH),
    WrongPassword => ("wrong_password", AUTH),
    WrongPin => ("wrong_pin", AUTH),
    PinAuthBlocked => ("pin_auth_blocked", AUTH),
    PinBlocked => ("pin_blocked", AUTH),
    // Refused: a precondition does not hold; nothing was changed.
    KeyFull => ("key_full", REFUSED),
    NoSuchCredential => ("no_such_credential", REFUSED),
    AmbiguousCredential => ("ambiguous_credential", REFUSED),
    CredentialExists => ("credential_exists", REFUSED),
    TouchTimeout => ("touch_timeout", REFUSED),
    Unsupported => ("unsupported", REFUSED),
    TooManyDevices => ("too_many_devices", REFUSED),
    DeviceNameTaken => ("device_name_taken", REFUSED),
    ClockSkew => ("clock_skew", REFUSED),
    PreflightFailed => ("preflight_failed", REFUSED),
    JournalExists => ("journal_exists", REFUSED),
    JournalInUse => ("journal_in_use", REFUSED),
    JournalUnsafe => ("journal_unsafe", REFUSED),
    JournalAccountMismatch => ("journal_account_mismatch", REFUSED),
    UndoRefused => ("undo_refused", REFUSED),
    NoFido2 => ("no_fido2", REFUSED),
    PinNotSet => ("pin_not_set", REFUSED),
    PinAlreadySet => ("pin_already_set", REFUSED),
    LastPinTry => ("last_pin_try", REFUSED),
    ConfirmationNeeded => ("confirmation_needed", REFUSED),
    ResetNotAllowed => ("reset_not_allowed", REFUSED),
    Declined => ("declined", REFUSED),
    Refused => ("refused", REFUSED),
    // AWS.
    AccessDenied => ("access_denied", AWS),
    NoSuchEntity => ("no_such_entity", AWS),
    LimitExceeded => ("limit_exceeded", AWS),
    EntityAlreadyExists => ("entity_already_exists", AWS),
    Throttling => ("throttling", AWS),
    InvalidAuthenticationCode => ("invalid_authentication_code", AWS),
    EndpointUnreachable => ("endpoint_unreachable", AWS),
    ExpiredCredentials => ("expired_credentials", AWS),
    NoCredentials => ("no_credentials", AWS),
    Aws => ("aws", AWS),
    NotVerified => ("not_verified", AWS),
    NotLogging => ("not_logging", AWS),
    // Something made could not be undone.
    RollbackIncomplete => ("rollback_incomplete", ROLLBACK),
    // The first key enrolled, the backup key not.
    BackupNotEnrolled => ("backup_not_enrolled", BACKUP),
    // Other.
    CheckFailed => ("check_failed", OTHER),
    Journal => ("journal", OTHER),
    Interrupted => ("interrupted", OTHER),
    BulkFailures => ("bulk_failures", OTHER),
    SomeFailed => ("some_failed", OTHER),
    Report => ("report", OTHER),
    Oath => ("oath", OTHER),
    /// Enrolled, but `--configure-profile` could not write the config file.
    ConfigNotWritten => ("config_not_written", OTHER),
    Other => ("other", OTHER),
}

impl Kind {
    /// The name in JSON error documents (`error.kind`).
    pub(crate) const fn name(self) -> &'static str {
        self.spec().0
    }

    /// The process's exit code.
    pub(crate) const fn exit_code(self) -> u8 {
        self.spec().1
    }
}

/// An error that knows its [`Kind`].
pub(crate) trait Classify {
    fn kind(&self) -> Kind;
}

/// A lower layer's own account of a failure (the AWS SDK's error chain):
/// kept out of the message, which says what failed, why and what to do in
/// one line, and shown only with `-v`. Errors carry it as their `source`.
#[derive(Clone, PartialEq, Eq)]
pub struct Detail(String);

impl std::ops::Deref for Detail {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for Detail {
    fn from(s: String) -> Self {
        Detail(s)
    }
}

impl From<&str> for Detail {
    fn from(s: &str) -> Self {
        Detail(s.to_string())
    }
}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Detail {}

/// What a command ended with, as it reaches the user: a kind, a message,
/// and (for `-v`) the lower layers' detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub kind: Kind,
    pub message: String,
    pub detail: Option<String>,
}

impl Failure {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            detail: None,
        }
    }

    /// Bad usage or input (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure::new(Kind::InvalidArgument, message)
    }

    pub(crate) fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl<E: Classify + std::error::Error + 'static> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            kind: e.kind(),
            message: e.to_string(),
            detail: detail_of(&e),
        }
    }
}

/// The first [`Detail`] among `e`'s sources.
fn detail_of(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = e.source();
    while let Some(s) = cur {
        if let Some(d) = s.downcast_ref::<Detail>() {
            return Some(d.0.clone());
        }
        cur = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_codes_documented() {
        let mut seen = std::collections::HashSet::new();
        for k in Kind::ALL {
            let (name, code) = k.spec();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
            assert!(matches!(code, 1..=7 | 10), "{name}: {code}");
        }
    }

    #[test]
    fn every_kind_is_in_the_readme_with_its_exit_code() {
        let readme = include_str!("../README.md");
        let row = |code: u8| {
            readme
                .lines()
                .find(|l| l.starts_with(&format!("| {code} | `")))
                .unwrap_or_else(|| panic!("README has no kinds row for exit code {code}"))
        };
        for k in Kind::ALL {
            let code = k.exit_code();
            assert!(
                row(code).contains(&format!("`{}`", k.name())),
                "{} (exit {code}) is not in README's kinds table",
                k.name()
            );
        }
    }
}
