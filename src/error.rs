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
}

/// What kind of failure a command ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub(crate) enum Kind {
    // Usage and input.
    InvalidArgument,
    InvalidSecret,
    InvalidManifest,
    InvalidPin,
    IdTooLong,
    NothingToResume,
    // The device: PC/SC, readers, keys, FIDO over HID.
    PcscNotRunning,
    NoReader,
    ReaderNotFound,
    AmbiguousReader,
    NoKey,
    SeveralKeys,
    KeyRemoved,
    KeyReset,
    KeyInUse,
    NotAYubikey,
    OathNotAvailable,
    NoFidoKey,
    NoPermission,
    Device,
    // Authentication to the key.
    Locked,
    WrongPassword,
    WrongPin,
    PinAuthBlocked,
    PinBlocked,
    // Refused: a precondition does not hold; nothing was changed.
    KeyFull,
    NoSuchCredential,
    AmbiguousCredential,
    CredentialExists,
    TouchTimeout,
    Unsupported,
    TooManyDevices,
    DeviceNameTaken,
    ClockSkew,
    PreflightFailed,
    JournalExists,
    JournalInUse,
    JournalUnsafe,
    JournalAccountMismatch,
    UndoRefused,
    NoFido2,
    PinNotSet,
    PinAlreadySet,
    ConfirmationNeeded,
    ResetNotAllowed,
    Declined,
    Refused,
    // AWS.
    AccessDenied,
    NoSuchEntity,
    LimitExceeded,
    EntityAlreadyExists,
    Throttling,
    InvalidAuthenticationCode,
    EndpointUnreachable,
    ExpiredCredentials,
    NoCredentials,
    Aws,
    NotVerified,
    NotLogging,
    // Something made could not be undone.
    RollbackIncomplete,
    // Other.
    CheckFailed,
    Journal,
    Interrupted,
    BulkFailures,
    Report,
    Oath,
    Other,
}

impl Kind {
    /// The one table: each kind's JSON name and exit code.
    pub(crate) const fn spec(self) -> (&'static str, u8) {
        use exit::*;
        use Kind::*;
        match self {
            InvalidArgument => ("invalid_argument", USAGE),
            InvalidSecret => ("invalid_secret", USAGE),
            InvalidManifest => ("invalid_manifest", USAGE),
            InvalidPin => ("invalid_pin", USAGE),
            IdTooLong => ("id_too_long", USAGE),
            NothingToResume => ("nothing_to_resume", USAGE),

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
            OathNotAvailable => ("oath_not_available", DEVICE),
            NoFidoKey => ("no_fido_key", DEVICE),
            NoPermission => ("no_permission", DEVICE),
            Device => ("device", DEVICE),

            Locked => ("locked", AUTH),
            WrongPassword => ("wrong_password", AUTH),
            WrongPin => ("wrong_pin", AUTH),
            PinAuthBlocked => ("pin_auth_blocked", AUTH),
            PinBlocked => ("pin_blocked", AUTH),

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
            ConfirmationNeeded => ("confirmation_needed", REFUSED),
            ResetNotAllowed => ("reset_not_allowed", REFUSED),
            Declined => ("declined", REFUSED),
            Refused => ("refused", REFUSED),

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

            RollbackIncomplete => ("rollback_incomplete", ROLLBACK),

            CheckFailed => ("check_failed", OTHER),
            Journal => ("journal", OTHER),
            Interrupted => ("interrupted", OTHER),
            BulkFailures => ("bulk_failures", OTHER),
            Report => ("report", OTHER),
            Oath => ("oath", OTHER),
            Other => ("other", OTHER),
        }
    }

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

/// What a command ended with, as it reaches the user: a kind and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub kind: Kind,
    pub message: String,
}

impl Failure {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
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

impl<E: Classify + fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::new(e.kind(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind, for the table's own checks.
    const ALL: &[Kind] = {
        use Kind::*;
        &[
            InvalidArgument,
            InvalidSecret,
            InvalidManifest,
            InvalidPin,
            IdTooLong,
            NothingToResume,
            PcscNotRunning,
            NoReader,
            ReaderNotFound,
            AmbiguousReader,
            NoKey,
            SeveralKeys,
            KeyRemoved,
            KeyReset,
            KeyInUse,
            NotAYubikey,
            OathNotAvailable,
            NoFidoKey,
            NoPermission,
            Device,
            Locked,
            WrongPassword,
            WrongPin,
            PinAuthBlocked,
            PinBlocked,
            KeyFull,
            NoSuchCredential,
            AmbiguousCredential,
            CredentialExists,
            TouchTimeout,
            Unsupported,
            TooManyDevices,
            DeviceNameTaken,
            ClockSkew,
            PreflightFailed,
            JournalExists,
            JournalInUse,
            JournalUnsafe,
            JournalAccountMismatch,
            UndoRefused,
            NoFido2,
            PinNotSet,
            PinAlreadySet,
            ConfirmationNeeded,
            ResetNotAllowed,
            Declined,
            Refused,
            AccessDenied,
            NoSuchEntity,
            LimitExceeded,
            EntityAlreadyExists,
            Throttling,
            InvalidAuthenticationCode,
            EndpointUnreachable,
            ExpiredCredentials,
            NoCredentials,
            Aws,
            NotVerified,
            NotLogging,
            RollbackIncomplete,
            CheckFailed,
            Journal,
            Interrupted,
            BulkFailures,
            Report,
            Oath,
            Other,
        ]
    };

    #[test]
    fn names_are_unique_snake_case_and_codes_documented() {
        let mut seen = std::collections::HashSet::new();
        for k in ALL {
            let (name, code) = k.spec();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
            assert!((1..=7).contains(&code), "{name}: {code}");
        }
    }

    #[test]
    fn every_json_kind_is_in_the_readme() {
        let readme = include_str!("../README.md");
        for k in ALL {
            let code = k.exit_code();
            assert!(
                readme.contains(&format!("| {code} |")),
                "exit code {code} of {} is not in README's table",
                k.name()
            );
        }
    }
}
