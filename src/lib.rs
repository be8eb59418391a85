//! mfakey: AWS MFA onto YubiKeys.
//!
//! The jobs an administrator does each have a folder (see
//! docs/ARCHITECTURE.md): `enroll`, `console`, `bulk`, `audit`, `manage`,
//! with `undo` (the one undo engine and its journal) and `credential` (AWS's
//! TOTP credential on a key) shared by them. Below them, the protocol
//! layers: `oath`, `management`, `device`, `fido2`, `aws`, then `apdu`,
//! `tlv` and `transport`. `cli` parses, calls one job, and renders.
//!
//! The public API is deliberately small: the command line's entry point,
//! the AWS client surface the integration tests drive against a local IAM
//! server, the secret types, and (for tests only, behind the `testing`
//! feature) the virtual YubiKey.

pub(crate) mod apdu;
pub(crate) mod audit;
pub mod aws;
pub(crate) mod bulk;
pub mod cli;
pub(crate) mod console;
pub(crate) mod credential;
pub(crate) mod device;
pub(crate) mod enroll;
pub(crate) mod error;
pub(crate) mod fido2;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod lifecycle;
pub(crate) mod manage;
pub(crate) mod management;
pub(crate) mod oath;
pub(crate) mod progress;
pub mod secret;
pub(crate) mod tlv;
pub(crate) mod transport;
pub(crate) mod undo;
pub mod version;
#[cfg(any(test, feature = "testing"))]
pub mod virtual_key;
