//! A key by hand: its OATH credentials (`mfakey oath …`) and its FIDO2 PIN
//! and passkeys (`mfakey fido2 pin|credentials`).

pub(crate) mod fido2;
pub(crate) mod oath;
