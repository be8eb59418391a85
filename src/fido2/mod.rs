//! FIDO2 (CTAP2) behind mfakey's own trait, [`Fido2Device`]: what mfakey
//! asks of a security key (getInfo, PIN, credential management). Two
//! implementations: [`hid::HidDevice`] (the `ctap-hid-fido2` crate over
//! `/dev/hidraw*`) and [`fake::FakeFido2`] (in memory, for tests). The rules
//! (PIN length, retries, blocked PIN, "cannot hold a passkey") live in
//! the `manage::fido2` job, written once against the trait.
//!
//! The JSON shapes of [`Fido2Info`] and [`Fido2Credential`] are part of
//! mfakey's output (`fido2 info`, `fido2 credentials list`): keep them stable.
//!
//! Without the `fido2` cargo feature the HID half is absent (`hid_absent`),
//! so what only it uses (getInfo's formats, the key's own errors) is unused.
#![cfg_attr(not(feature = "fido2"), allow(dead_code))]

#[cfg(feature = "fido2")]
pub(crate) mod access;
pub(crate) mod ctaphid;
#[cfg(test)]
pub mod fake;
pub(crate) mod format;
#[cfg(feature = "fido2")]
pub(crate) mod hid;
/// Without the `fido2` feature: the same names, and every call answers
/// [`Fido2Error::NotBuilt`].
#[cfg(not(feature = "fido2"))]
#[path = "hid_absent.rs"]
pub(crate) mod hid;
pub(crate) mod usb;

use crate::secret::SecretString;
use serde::Serialize;

/// What getInfo says, in mfakey's words.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Fido2Info {
    /// `FIDO_2_0`, `FIDO_2_1`, `U2F_V2`, …
    pub versions: Vec<String>,
    /// The authenticator model's AAGUID, as a UUID string.
    pub aaguid: String,
    pub options: Fido2Options,
    /// PIN/UV auth protocols, in the key's order of preference.
    pub pin_uv_auth_protocols: Vec<u32>,
    /// Minimum PIN length in code points (4 when the key does not say).
    pub min_pin_length: u32,
    /// Discoverable credentials (passkeys) the key can still take, when it says.
    pub remaining_discoverable_credentials: Option<u32>,
    /// Firmware as the key reports it (`5.7.4` for YubiKeys), when it does.
    pub firmware: Option<String>,
    /// PIN retries left (read only when a PIN is set).
    pub pin_retries: Option<u32>,
}

/// getInfo's options that matter here. `None`: the key does not list it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Fido2Options {
    /// `clientPin`: `Some(true)` a PIN is set, `Some(false)` supported but
    /// not set, `None` no PIN support.
    pub client_pin: Option<bool>,
    /// `rk`: discoverable credentials.
    pub rk: bool,
    /// `credMgmt` (or `credentialMgmtPreview`).
    pub cred_mgmt: bool,
    /// `alwaysUv`.
    pub always_uv: Option<bool>,
}

impl Fido2Info {
    /// A CTAP2 authenticator (not U2F only).
    pub(crate) fn is_fido2(&self) -> bool {
        self.versions.iter().any(|v| v.starts_with("FIDO_2"))
    }

    /// The PIN/UV auth protocol to use: the key's first that mfakey (through
    /// ctap-hid-fido2) speaks; 1 for a CTAP 2.0 key that lists none.
    pub(crate) fn pin_protocol(&self) -> u8 {
        self.pin_uv_auth_protocols
            .iter()
            .find(|p| matches!(p, 1 | 2))
            .map_or(1, |p| *p as u8)
    }
}

/// A discoverable credential (passkey) on the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Fido2Credential {
    pub rp_id: String,
    pub user_name: String,
    pub user_display_name: String,
    /// The user handle, hex.
    pub user_id: String,
    /// The credential id, hex (what `fido2 credentials delete` takes).
    pub credential_id: String,
}

/// A FIDO2 authenticator, as mfakey uses it. PINs travel as
/// [`SecretString`]; implementations never log them.
pub(crate) trait Fido2Device {
    /// getInfo.
    fn info(&mut self) -> Result<Fido2Info, Fido2Error>;
    /// clientPin getPINRetries.
    fn pin_retries(&mut self) -> Result<u32, Fido2Error>;
    /// clientPin setPIN (no PIN set yet).
    fn set_pin(&mut self, new_pin: &SecretString) -> Result<(), Fido2Error>;
    /// clientPin changePIN.
    fn change_pin(
        &mut self,
        current: &SecretString,
        new_pin: &SecretString,
    ) -> Result<(), Fido2Error>;
    /// credentialManagement: every discoverable credential.
    fn credentials(&mut self, pin: &SecretString) -> Result<Vec<Fido2Credential>, Fido2Error>;
    /// credentialManagement deleteCredential, by credential id.
    fn delete_credential(
        &mut self,
        pin: &SecretString,
        credential_id: &[u8],
    ) -> Result<(), Fido2Error>;
    /// authenticatorReset: every passkey and the PIN go. Keys take it only
    /// within seconds of their insertion, and with a touch (`on_touch` is
    /// called when the key waits for it).
    fn reset(&mut self, on_touch: &mut dyn FnMut()) -> Result<(), Fido2Error>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum Fido2Error {
    #[error(
        "no FIDO security key found: insert the key (FIDO2 is reached over USB HID, /dev/hidraw*)"
    )]
    NoKey,
    #[error("a FIDO key is present but this user may not open it ({paths}): no permission; install the udev rule (udev/README.md), then re-insert the key")]
    NoPermission { paths: String },
    #[error("{count} FIDO keys are present: leave only the one to use inserted")]
    SeveralKeys { count: usize },
    #[error("this key cannot hold a passkey: it has no FIDO2 (or FIDO2 is disabled; `ykman config usb --enable FIDO2` turns it on)")]
    NotFido2,
    #[error("the key has no PIN yet: set one with `mfakey fido2 pin set`")]
    PinNotSet,
    #[error("the key already has a PIN: change it with `mfakey fido2 pin change`")]
    PinAlreadySet,
    #[error("wrong PIN{}", match retries { Some(1) => ": 1 try left before the PIN is blocked".to_string(), Some(n) => format!(": {n} tries left before the PIN is blocked"), None => String::new() })]
    PinInvalid { retries: Option<u32> },
    #[error("three wrong PINs in a row: remove and re-insert the key, then try again (the retry counter is not reset)")]
    PinAuthBlocked,
    #[error("the PIN is blocked (no tries left): only a FIDO reset (`mfakey fido2 reset`) unblocks it, and it deletes every passkey on the key")]
    PinBlocked,
    #[error("the new PIN is too short: this key wants at least {min} characters")]
    PinTooShort { min: u32 },
    #[error("the new PIN is too long: at most 63 bytes")]
    PinTooLong,
    #[error("the PIN is empty: give the key's PIN (a file's first line, or typed at the prompt)")]
    PinEmpty,
    #[error("the PIN is longer than any FIDO2 PIN (63 bytes): check the PIN file")]
    PinOverLong,
    #[error(
        "\"{0}\" is not a credential id: give the hex id `mfakey fido2 credentials list` shows"
    )]
    BadCredentialId(String),
    #[error("the key has 1 PIN try left: a wrong PIN from a file would block its FIDO2 PIN (only a FIDO reset, which erases every passkey, unblocks it), so mfakey did not send it; check the file and pass --force, or leave out --pin-file and type the PIN")]
    LastTry,
    #[error(
        "the key refused the new PIN under its PIN policy (too simple, or reused): choose another"
    )]
    PinPolicy,
    #[error("this key does not support credential management (CTAP 2.1 credMgmt): it cannot list or delete passkeys")]
    NoCredentialManagement,
    #[error("no passkey with credential id {0} on the key: list them with `mfakey fido2 credentials list`")]
    NoSuchCredential(String),
    #[error("the key refused the reset: a key takes it only within a few seconds of being inserted; run `mfakey fido2 reset` again and re-insert the key as soon as it asks")]
    ResetNotAllowed,
    #[error("the key was not touched in time: nothing was reset")]
    ResetNotConfirmed,
    #[error("the FIDO key answered with an error: {0}")]
    Device(String),
    #[cfg(not(feature = "fido2"))]
    #[error("this mfakey was built without FIDO2 (the `fido2` cargo feature, on by default): install the Debian package, or build it with the default features (`cargo install --path .`), to get `mfakey fido2`")]
    NotBuilt,
}

impl crate::error::Classify for Fido2Error {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            Fido2Error::NoKey => Kind::NoFidoKey,
            Fido2Error::NoPermission { .. } => Kind::NoPermission,
            Fido2Error::SeveralKeys { .. } => Kind::SeveralKeys,
            Fido2Error::NotFido2 => Kind::NoFido2,
            Fido2Error::PinNotSet => Kind::PinNotSet,
            Fido2Error::PinAlreadySet => Kind::PinAlreadySet,
            Fido2Error::PinInvalid { .. } => Kind::WrongPin,
            Fido2Error::PinAuthBlocked => Kind::PinAuthBlocked,
            Fido2Error::PinBlocked => Kind::PinBlocked,
            Fido2Error::PinTooShort { .. }
            | Fido2Error::PinTooLong
            | Fido2Error::PinEmpty
            | Fido2Error::PinOverLong
            | Fido2Error::PinPolicy => Kind::InvalidPin,
            Fido2Error::BadCredentialId(_) => Kind::InvalidArgument,
            Fido2Error::LastTry => Kind::LastPinTry,
            Fido2Error::NoCredentialManagement => Kind::Unsupported,
            Fido2Error::NoSuchCredential(_) => Kind::NoSuchCredential,
            Fido2Error::ResetNotAllowed => Kind::ResetNotAllowed,
            Fido2Error::ResetNotConfirmed => Kind::TouchTimeout,
            Fido2Error::Device(_) => Kind::Device,
            #[cfg(not(feature = "fido2"))]
            Fido2Error::NotBuilt => Kind::NotBuilt,
        }
    }
}
