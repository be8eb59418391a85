//! An in-memory FIDO2 authenticator behind [`Fido2Device`], behaving like a
//! YubiKey 5 where it matters: 8 PIN retries, three wrong PINs in a row
//! block PIN use until re-inserted, 0 retries blocks the PIN for good, and
//! a wrong PIN costs a retry.

use super::format::to_hex;
use super::{Fido2Credential, Fido2Device, Fido2Error, Fido2Info, Fido2Options};
use crate::secret::SecretString;

/// A YubiKey 5's PIN retries.
pub const MAX_RETRIES: u32 = 8;

#[derive(Debug, Clone)]
pub struct FakeFido2 {
    pub info: Fido2Info,
    pin: Option<String>,
    retries: u32,
    wrong_in_a_row: u32,
    creds: Vec<(Vec<u8>, Fido2Credential)>,
    /// Calls made, by name (PINs never recorded).
    pub calls: Vec<&'static str>,
    /// Whether a reset would come within the key's seconds after insertion.
    pub just_inserted: bool,
    /// Whether the key is touched when it asks.
    pub touched: bool,
}

impl FakeFido2 {
    /// A YubiKey 5-like key (FIDO 2.1, protocols [2, 1], min PIN 4), no PIN.
    pub fn yubikey5() -> Self {
        FakeFido2 {
            info: Fido2Info {
                versions: vec!["U2F_V2".into(), "FIDO_2_0".into(), "FIDO_2_1".into()],
                aaguid: "a25342c0-3cdc-4414-8e46-f4807fca511c".into(),
                options: Fido2Options {
                    client_pin: Some(false),
                    rk: true,
                    cred_mgmt: true,
                    always_uv: Some(false),
                },
                pin_uv_auth_protocols: vec![2, 1],
                min_pin_length: 4,
                remaining_discoverable_credentials: Some(100),
                firmware: Some("5.7.4".into()),
                pin_retries: None,
            },
            pin: None,
            retries: MAX_RETRIES,
            wrong_in_a_row: 0,
            creds: Vec::new(),
            calls: Vec::new(),
            just_inserted: true,
            touched: true,
        }
    }

    /// A key speaking U2F only (FIDO2 absent or disabled).
    pub fn u2f_only() -> Self {
        let mut k = Self::yubikey5();
        k.info.versions = vec!["U2F_V2".into()];
        k.info.options = Fido2Options::default();
        k
    }

    pub fn with_pin(mut self, pin: &str) -> Self {
        self.pin = Some(pin.to_string());
        self.info.options.client_pin = Some(true);
        self
    }

    pub fn with_retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Adds a passkey for `rp_id`/`user`.
    pub fn add_passkey(&mut self, rp_id: &str, user: &str, id: &[u8]) {
        self.creds.push((
            id.to_vec(),
            Fido2Credential {
                rp_id: rp_id.into(),
                user_name: user.into(),
                user_display_name: user.into(),
                user_id: to_hex(user.as_bytes()),
                credential_id: to_hex(id),
            },
        ));
        if let Some(r) = self.info.remaining_discoverable_credentials.as_mut() {
            *r = r.saturating_sub(1);
        }
    }

    /// Re-insertion: PIN use is possible again after three wrong in a row.
    pub fn reinsert(&mut self) {
        self.wrong_in_a_row = 0;
        self.just_inserted = true;
    }

    pub fn passkeys(&self) -> usize {
        self.creds.len()
    }

    pub fn pin_is(&self, pin: &str) -> bool {
        self.pin.as_deref() == Some(pin)
    }

    fn check_pin(&mut self, pin: &SecretString) -> Result<(), Fido2Error> {
        let Some(set) = &self.pin else {
            return Err(Fido2Error::PinNotSet);
        };
        if self.retries == 0 {
            return Err(Fido2Error::PinBlocked);
        }
        if self.wrong_in_a_row >= 3 {
            return Err(Fido2Error::PinAuthBlocked);
        }
        if set.as_str() == pin.expose() {
            self.retries = MAX_RETRIES;
            self.wrong_in_a_row = 0;
            return Ok(());
        }
        self.retries -= 1;
        self.wrong_in_a_row += 1;
        if self.retries == 0 {
            Err(Fido2Error::PinBlocked)
        } else if self.wrong_in_a_row >= 3 {
            Err(Fido2Error::PinAuthBlocked)
        } else {
            Err(Fido2Error::PinInvalid { retries: None })
        }
    }

    fn fido2(&self) -> Result<(), Fido2Error> {
        if self.info.is_fido2() {
            Ok(())
        } else {
            Err(Fido2Error::Device("0x01 CTAP1_ERR_INVALID_COMMAND".into()))
        }
    }
}

impl Fido2Device for FakeFido2 {
    fn info(&mut self) -> Result<Fido2Info, Fido2Error> {
        self.calls.push("info");
        let mut i = self.info.clone();
        i.pin_retries = None;
        Ok(i)
    }

    fn pin_retries(&mut self) -> Result<u32, Fido2Error> {
        self.calls.push("pin_retries");
        self.fido2()?;
        Ok(self.retries)
    }

    fn set_pin(&mut self, new_pin: &SecretString) -> Result<(), Fido2Error> {
        self.calls.push("set_pin");
        self.fido2()?;
        if self.pin.is_some() {
            return Err(Fido2Error::Device("0x01 CTAP1_ERR_INVALID_COMMAND".into()));
        }
        if (new_pin.expose().chars().count() as u32) < self.info.min_pin_length {
            return Err(Fido2Error::PinPolicy);
        }
        self.pin = Some(new_pin.expose().to_string());
        self.info.options.client_pin = Some(true);
        Ok(())
    }

    fn change_pin(
        &mut self,
        current: &SecretString,
        new_pin: &SecretString,
    ) -> Result<(), Fido2Error> {
        self.calls.push("change_pin");
        self.fido2()?;
        self.check_pin(current)?;
        self.pin = Some(new_pin.expose().to_string());
        Ok(())
    }

    fn credentials(&mut self, pin: &SecretString) -> Result<Vec<Fido2Credential>, Fido2Error> {
        self.calls.push("credentials");
        self.fido2()?;
        self.check_pin(pin)?;
        Ok(self.creds.iter().map(|(_, c)| c.clone()).collect())
    }

    fn delete_credential(
        &mut self,
        pin: &SecretString,
        credential_id: &[u8],
    ) -> Result<(), Fido2Error> {
        self.calls.push("delete_credential");
        self.fido2()?;
        self.check_pin(pin)?;
        let before = self.creds.len();
        self.creds.retain(|(id, _)| id != credential_id);
        if self.creds.len() == before {
            return Err(Fido2Error::Device("0x2E CTAP2_ERR_NO_CREDENTIALS".into()));
        }
        if let Some(r) = self.info.remaining_discoverable_credentials.as_mut() {
            *r += 1;
        }
        Ok(())
    }

    fn reset(&mut self, on_touch: &mut dyn FnMut()) -> Result<(), Fido2Error> {
        self.calls.push("reset");
        self.fido2()?;
        if !self.just_inserted {
            return Err(Fido2Error::ResetNotAllowed);
        }
        on_touch();
        if !self.touched {
            return Err(Fido2Error::ResetNotConfirmed);
        }
        self.pin = None;
        self.info.options.client_pin = Some(false);
        self.retries = MAX_RETRIES;
        self.wrong_in_a_row = 0;
        let n = self.creds.len() as u32;
        self.creds.clear();
        if let Some(r) = self.info.remaining_discoverable_credentials.as_mut() {
            *r += n;
        }
        Ok(())
    }
}
