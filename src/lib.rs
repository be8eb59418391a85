//! mfakey: AWS MFA onto YubiKeys.
//!
//! Layers, each depending only on those below it (see docs/ARCHITECTURE.md):
//! `cli → workflow → {oath, management, device, aws} → apdu, tlv → transport`.
//! `virtual_key` is a card, not a client: it sits beside the stack and is
//! reached through a transport.

pub mod apdu;
pub mod audit;
pub mod aws;
pub mod bulk;
pub mod cli;
pub mod console;
pub mod credential;
pub mod device;
pub mod enroll;
pub mod error;
pub mod fido2;
pub mod manage;
pub mod management;
pub mod oath;
pub mod progress;
pub mod secret;
pub mod tlv;
pub mod transport;
pub mod undo;
pub mod version;
#[cfg(any(test, feature = "testing"))]
pub mod virtual_key;
