//! The FIDO2 commands' rules around the trait's calls, written once: a key without FIDO2,
//! PIN length, retries after a wrong PIN, a blocked PIN.

use crate::fido2::format::from_hex;
use crate::fido2::{Fido2Credential, Fido2Device, Fido2Error, Fido2Info};
use crate::secret::SecretString;

/// Longest PIN CTAP2 takes, in UTF-8 bytes.
pub(crate) const MAX_PIN_BYTES: usize = 63;

/// Longest credential id WebAuthn allows, in bytes.
pub(crate) const MAX_CREDENTIAL_ID_BYTES: usize = 1023;

/// Whether a PIN may be sent when the key has one try left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LastTry {
    /// Typed at the prompt, or --force: the operator knows.
    Allow,
    /// From a file without --force: nobody looked at it before it went out.
    Refuse,
}

/// A current PIN, checked before anything is sent: not empty, at most 63
/// bytes (CTAP2's limit).
pub(crate) fn check_pin(pin: &SecretString) -> Result<(), Fido2Error> {
    if pin.is_empty() {
        return Err(Fido2Error::PinEmpty);
    }
    if pin.expose().len() > MAX_PIN_BYTES {
        return Err(Fido2Error::PinOverLong);
    }
    Ok(())
}

/// A credential id as `credentials list` shows it (hex, any case): its
/// bytes, checked before the key is touched.
pub(crate) fn credential_id(hex: &str) -> Result<Vec<u8>, Fido2Error> {
    let shown: String = hex.chars().take(40).collect();
    from_hex(&hex.trim().to_ascii_lowercase())
        .filter(|id| (1..=MAX_CREDENTIAL_ID_BYTES).contains(&id.len()))
        .ok_or(Fido2Error::BadCredentialId(shown))
}

/// getInfo, refusing keys without FIDO2, with the PIN retries when a PIN is set.
pub(crate) fn describe(dev: &mut dyn Fido2Device) -> Result<Fido2Info, Fido2Error> {
    let mut info = dev.info()?;
    if !info.is_fido2() {
        return Err(Fido2Error::NotFido2);
    }
    if info.options.client_pin == Some(true) {
        info.pin_retries = Some(dev.pin_retries()?);
    }
    Ok(info)
}

/// Whether `pin` fits the key: at least `min` code points (CTAP2: never
/// below 4), at most 63 bytes.
pub(crate) fn check_new_pin(pin: &SecretString, min: u32) -> Result<(), Fido2Error> {
    let min = min.max(4);
    if (pin.expose().chars().count() as u32) < min {
        return Err(Fido2Error::PinTooShort { min });
    }
    if pin.expose().len() > MAX_PIN_BYTES {
        return Err(Fido2Error::PinTooLong);
    }
    Ok(())
}

/// Sets the first PIN. `info` is what [`describe`] just read of `dev`
/// (callers describe the key once, before asking for a PIN).
pub(crate) fn set_pin(
    dev: &mut dyn Fido2Device,
    info: &Fido2Info,
    new_pin: &SecretString,
) -> Result<(), Fido2Error> {
    match info.options.client_pin {
        None => return Err(Fido2Error::NotFido2),
        Some(true) => return Err(Fido2Error::PinAlreadySet),
        Some(false) => {}
    }
    check_new_pin(new_pin, info.min_pin_length)?;
    dev.set_pin(new_pin)
}

/// Changes the PIN; a wrong current PIN reports the retries left.
pub(crate) fn change_pin(
    dev: &mut dyn Fido2Device,
    info: &Fido2Info,
    current: &SecretString,
    new_pin: &SecretString,
    last_try: LastTry,
) -> Result<(), Fido2Error> {
    check_pin(current)?;
    pin_ready(info, last_try)?;
    check_new_pin(new_pin, info.min_pin_length)?;
    with_retries(dev, |d| d.change_pin(current, new_pin))
}

/// Every passkey on the key.
pub(crate) fn list_credentials(
    dev: &mut dyn Fido2Device,
    info: &Fido2Info,
    pin: &SecretString,
    last_try: LastTry,
) -> Result<Vec<Fido2Credential>, Fido2Error> {
    check_pin(pin)?;
    pin_ready(info, last_try)?;
    if !info.options.cred_mgmt {
        return Err(Fido2Error::NoCredentialManagement);
    }
    with_retries(dev, |d| d.credentials(pin))
}

/// Deletes the passkey with credential id `id` (from [`credential_id`]).
pub(crate) fn delete_credential(
    dev: &mut dyn Fido2Device,
    info: &Fido2Info,
    pin: &SecretString,
    id: &[u8],
    last_try: LastTry,
) -> Result<Fido2Credential, Fido2Error> {
    let wanted = crate::fido2::format::to_hex(id);
    let creds = list_credentials(dev, info, pin, last_try)?;
    let cred = creds
        .into_iter()
        .find(|c| c.credential_id == wanted)
        .ok_or_else(|| Fido2Error::NoSuchCredential(wanted.clone()))?;
    with_retries(dev, |d| d.delete_credential(pin, id))?;
    Ok(cred)
}

/// authenticatorReset of a FIDO2 key: every passkey and the PIN go. `info`
/// is what [`describe`] read of it. The key decides whether it is still
/// within its seconds after insertion, and waits for a touch (`on_touch`).
pub(crate) fn reset(
    dev: &mut dyn Fido2Device,
    info: &Fido2Info,
    on_touch: &mut dyn FnMut(),
) -> Result<(), Fido2Error> {
    if !info.is_fido2() {
        return Err(Fido2Error::NotFido2);
    }
    dev.reset(on_touch)
}

/// A FIDO2 key with a PIN set and not blocked (a blocked PIN is refused
/// here, before it is sent).
fn pin_ready(info: &Fido2Info, last_try: LastTry) -> Result<(), Fido2Error> {
    match info.options.client_pin {
        None => Err(Fido2Error::NotFido2),
        Some(false) => Err(Fido2Error::PinNotSet),
        Some(true) if info.pin_retries == Some(0) => Err(Fido2Error::PinBlocked),
        Some(true) if info.pin_retries == Some(1) && last_try == LastTry::Refuse => {
            Err(Fido2Error::LastTry)
        }
        Some(true) => Ok(()),
    }
}

/// Runs `f`; a wrong PIN is reported with the retries left (0: blocked).
fn with_retries<T>(
    dev: &mut dyn Fido2Device,
    f: impl FnOnce(&mut dyn Fido2Device) -> Result<T, Fido2Error>,
) -> Result<T, Fido2Error> {
    match f(dev) {
        Err(Fido2Error::PinInvalid { .. }) => match dev.pin_retries() {
            Ok(0) => Err(Fido2Error::PinBlocked),
            Ok(n) => Err(Fido2Error::PinInvalid { retries: Some(n) }),
            Err(_) => Err(Fido2Error::PinInvalid { retries: None }),
        },
        other => other,
    }
}

#[cfg(test)]
#[path = "fido2_tests.rs"]
mod tests;
