//! [`Fido2Device`] over USB HID with the `ctap-hid-fido2` crate. Its own
//! messages (touch prompts) go to stderr, its debug log stays off, so
//! mfakey's stdout carries only mfakey's output. It panics in a few places
//! (HID API initialisation): those are caught and reported as errors.

use super::ops::{aaguid_string, firmware_string, to_hex};
use super::{access, Fido2Credential, Fido2Device, Fido2Error, Fido2Info, Fido2Options};
use crate::secret::SecretString;
use ctap_hid_fido2::public_key_credential_descriptor::PublicKeyCredentialDescriptor;
use ctap_hid_fido2::{FidoKeyHid, LibCfg};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

pub struct HidDevice {
    key: FidoKeyHid,
}

fn guarded<T, E: std::fmt::Display>(f: impl FnOnce() -> Result<T, E>) -> Result<T, Fido2Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(map_error(&e.to_string())),
        Err(_) => Err(Fido2Error::Device(
            "the HID library failed (panicked); check /dev/hidraw* and libudev".into(),
        )),
    }
}

/// CTAP status names in ctap-hid-fido2's messages, to mfakey's errors.
pub fn map_error(msg: &str) -> Fido2Error {
    if msg.contains("PIN_AUTH_BLOCKED") {
        Fido2Error::PinAuthBlocked
    } else if msg.contains("PIN_BLOCKED") {
        Fido2Error::PinBlocked
    } else if msg.contains("_PIN_INVALID") {
        Fido2Error::PinInvalid { retries: None }
    } else if msg.contains("PIN_NOT_SET") {
        Fido2Error::PinNotSet
    } else if msg.contains("PIN_POLICY_VIOLATION") {
        Fido2Error::PinPolicy
    } else {
        Fido2Error::Device(msg.to_string())
    }
}

/// The getInfo fields mfakey reads (ctap-hid-fido2's own type cannot be
/// named outside the crate).
#[derive(Debug, Default, Clone)]
pub struct RawInfo {
    pub versions: Vec<String>,
    pub aaguid: Vec<u8>,
    pub options: Vec<(String, bool)>,
    pub pin_uv_auth_protocols: Vec<u32>,
    pub min_pin_length: u32,
    pub firmware_version: u32,
    pub remaining_discoverable_credentials: u32,
}

macro_rules! raw_info {
    ($i:expr) => {
        RawInfo {
            versions: $i.versions,
            aaguid: $i.aaguid,
            options: $i.options,
            pin_uv_auth_protocols: $i.pin_uv_auth_protocols,
            min_pin_length: $i.min_pin_length,
            firmware_version: $i.firmware_version,
            remaining_discoverable_credentials: $i.remaining_discoverable_credentials,
        }
    };
}

/// A FIDO HID device found (not opened yet).
#[derive(Clone)]
pub struct Found {
    /// The USB product string (`YubiKey OTP+FIDO+CCID`, …).
    pub product: String,
    param: ctap_hid_fido2::HidParam,
}

impl HidDevice {
    /// Every FIDO HID device this user can open; none → why (no key, or
    /// no permission on `/dev/hidraw*`).
    pub fn find_all() -> Result<Vec<Found>, Fido2Error> {
        let seen = access::probe(Path::new("/dev"));
        if seen == access::HidrawAccess::NoDevices {
            return Err(Fido2Error::NoKey);
        }
        let devs = guarded(|| Ok::<_, String>(ctap_hid_fido2::get_fidokey_devices()))?;
        if devs.is_empty() {
            return Err(access::why_none(&seen));
        }
        Ok(devs
            .into_iter()
            .map(|d| Found {
                product: d.product_string,
                param: d.param,
            })
            .collect())
    }

    /// The one FIDO key present.
    pub fn open() -> Result<HidDevice, Fido2Error> {
        let mut all = Self::find_all()?;
        match all.len() {
            1 => Self::open_found(&all.remove(0)),
            n => Err(Fido2Error::SeveralKeys { count: n }),
        }
    }

    /// Opens a found key, with the PIN protocol getInfo prefers.
    pub fn open_found(found: &Found) -> Result<HidDevice, Fido2Error> {
        let mut cfg = LibCfg::init()
            .with_enable_log(false)
            .with_keep_alive_msg_to_stderr(true);
        cfg.keep_alive_msg = "Touch your security key...".into();
        let params = [found.param.clone()];
        let key = guarded(|| FidoKeyHid::new(&params, &cfg))?;
        let info = guarded(|| key.get_info().map(|i| raw_info!(i)))?;
        let protocol = convert_info(&info).pin_protocol();
        Ok(HidDevice {
            key: key.with_pin_protocol_version(protocol),
        })
    }
}

/// getInfo in mfakey's shape.
pub fn convert_info(i: &RawInfo) -> Fido2Info {
    let opt = |name: &str| i.options.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    Fido2Info {
        versions: i.versions.clone(),
        aaguid: aaguid_string(&i.aaguid),
        options: Fido2Options {
            client_pin: opt("clientPin"),
            rk: opt("rk").unwrap_or(false),
            cred_mgmt: opt("credMgmt")
                .or(opt("credentialMgmtPreview"))
                .unwrap_or(false),
            always_uv: opt("alwaysUv"),
        },
        pin_uv_auth_protocols: i.pin_uv_auth_protocols.clone(),
        min_pin_length: i.min_pin_length.max(4),
        remaining_discoverable_credentials: i
            .versions
            .iter()
            .any(|v| v == "FIDO_2_1")
            .then_some(i.remaining_discoverable_credentials),
        firmware: firmware_string(i.firmware_version),
        pin_retries: None,
    }
}

impl Fido2Device for HidDevice {
    fn info(&mut self) -> Result<Fido2Info, Fido2Error> {
        guarded(|| self.key.get_info().map(|i| raw_info!(i))).map(|i| convert_info(&i))
    }

    fn pin_retries(&mut self) -> Result<u32, Fido2Error> {
        guarded(|| self.key.get_pin_retries()).map(|n| n.max(0) as u32)
    }

    fn set_pin(&mut self, new_pin: &SecretString) -> Result<(), Fido2Error> {
        guarded(|| self.key.set_new_pin(new_pin.expose()))
    }

    fn change_pin(
        &mut self,
        current: &SecretString,
        new_pin: &SecretString,
    ) -> Result<(), Fido2Error> {
        guarded(|| self.key.change_pin(current.expose(), new_pin.expose()))
    }

    fn credentials(&mut self, pin: &SecretString) -> Result<Vec<Fido2Credential>, Fido2Error> {
        let pin = Some(pin.expose());
        let rps = guarded(|| self.key.credential_management_enumerate_rps(pin))?;
        let mut out = Vec::new();
        for rp in rps {
            let creds = guarded(|| {
                self.key
                    .credential_management_enumerate_credentials(pin, &rp.rpid_hash)
            })?;
            for c in creds {
                let u = &c.public_key_credential_user_entity;
                out.push(Fido2Credential {
                    rp_id: rp.public_key_credential_rp_entity.id.clone(),
                    user_name: u.name.clone(),
                    user_display_name: u.display_name.clone(),
                    user_id: to_hex(&u.id),
                    credential_id: to_hex(&c.public_key_credential_descriptor.id),
                });
            }
        }
        Ok(out)
    }

    fn delete_credential(
        &mut self,
        pin: &SecretString,
        credential_id: &[u8],
    ) -> Result<(), Fido2Error> {
        let pkcd = PublicKeyCredentialDescriptor {
            id: credential_id.to_vec(),
            ctype: "public-key".into(),
        };
        guarded(|| {
            self.key
                .credential_management_delete_credential(Some(pin.expose()), pkcd)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctap_status_messages_map_to_pin_errors() {
        assert_eq!(
            map_error("0x31 CTAP2_ERR_PIN_INVALID   PIN Invalid."),
            Fido2Error::PinInvalid { retries: None }
        );
        assert_eq!(
            map_error("0x32 CTAP2_ERR_PIN_BLOCKED"),
            Fido2Error::PinBlocked
        );
        assert_eq!(
            map_error("0x34 CTAP2_ERR_PIN_AUTH_BLOCKED"),
            Fido2Error::PinAuthBlocked
        );
        assert_eq!(
            map_error("0x35 CTAP2_ERR_PIN_NOT_SET"),
            Fido2Error::PinNotSet
        );
        assert_eq!(
            map_error("0x37 CTAP2_ERR_PIN_POLICY_VIOLATION"),
            Fido2Error::PinPolicy
        );
        // PIN_AUTH_INVALID (wrong protocol) is not a wrong PIN.
        assert!(matches!(
            map_error("0x33 CTAP2_ERR_PIN_AUTH_INVALID"),
            Fido2Error::Device(_)
        ));
    }

    #[test]
    fn get_info_converts_and_picks_the_protocol() {
        let i = RawInfo {
            versions: vec!["FIDO_2_0".into(), "FIDO_2_1".into()],
            aaguid: (0u8..16).collect(),
            options: vec![
                ("rk".into(), true),
                ("clientPin".into(), false),
                ("credMgmt".into(), true),
            ],
            pin_uv_auth_protocols: vec![2],
            min_pin_length: 6,
            firmware_version: 0x050704,
            remaining_discoverable_credentials: 97,
        };
        let f = convert_info(&i);
        assert_eq!(f.aaguid, "00010203-0405-0607-0809-0a0b0c0d0e0f");
        assert_eq!(f.options.client_pin, Some(false));
        assert!(f.options.rk && f.options.cred_mgmt);
        assert_eq!(f.options.always_uv, None);
        assert_eq!(f.min_pin_length, 6);
        assert_eq!(f.firmware.as_deref(), Some("5.7.4"));
        assert_eq!(f.remaining_discoverable_credentials, Some(97));
        // Only protocol 2 listed (a soft authenticator): 2, not the crate's default 1.
        assert_eq!(f.pin_protocol(), 2);
        let mut both = f.clone();
        both.pin_uv_auth_protocols = vec![1, 2];
        assert_eq!(both.pin_protocol(), 1);
        both.pin_uv_auth_protocols = vec![];
        assert_eq!(both.pin_protocol(), 1);
        // CTAP 2.0 only: no remaining count, no cred management preview.
        let old = RawInfo {
            versions: vec!["U2F_V2".into(), "FIDO_2_0".into()],
            options: vec![("credentialMgmtPreview".into(), true)],
            ..RawInfo::default()
        };
        let f = convert_info(&old);
        assert_eq!(f.remaining_discoverable_credentials, None);
        assert!(f.options.cred_mgmt);
        assert_eq!(f.firmware, None);
        assert_eq!(f.min_pin_length, 4);
    }
}
