//! A key by hand: its OATH credentials (`mfakey oath …`) and its FIDO2 PIN
//! and passkeys (`mfakey fido2 pin|credentials`).

pub mod fido2;
pub mod oath;
