//! [`Fido2Device`] over USB HID with the `ctap-hid-fido2` crate. Its touch
//! prompts go to stderr and its debug log stays off. It also prints parser
//! notes with `println!` (`- unknown field in pin retries response`, for a
//! key that sends powerCycleState): every call into it runs with file
//! descriptor 1 pointed away from mfakey's stdout, which carries mfakey's
//! JSON ([`LibraryNotes`]). It panics in a few places (HID API
//! initialisation): those are caught and reported as errors.

use super::format::{aaguid_string, firmware_string, to_hex};
use super::{access, ctaphid, Fido2Credential, Fido2Device, Fido2Error, Fido2Info, Fido2Options};
use crate::secret::SecretString;
use ctap_hid_fido2::public_key_credential_descriptor::PublicKeyCredentialDescriptor;
use ctap_hid_fido2::{FidoKeyHid, LibCfg};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

pub(crate) struct HidDevice {
    key: FidoKeyHid,
    /// Its `/dev/hidraw*` node, for what mfakey sends itself (reset).
    path: Option<String>,
    notes: LibraryNotes,
    /// The getInfo read while opening, which the first `info()` returns
    /// instead of asking the key again; later calls ask (a PIN set since
    /// then changes the answer).
    opened_info: Option<RawInfo>,
}

/// Where ctap-hid-fido2's own prints to stdout go: never mfakey's stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum LibraryNotes {
    /// Dropped (the default: they are parser chatter, not news for a user).
    #[default]
    Discard,
    /// To stderr (`-v`).
    Stderr,
}

/// Runs `f` with file descriptor 1 on /dev/null or stderr, then puts it
/// back (also when `f` panics). The CLI calls the library from one thread,
/// so nothing of mfakey's own is written meanwhile; stdout is flushed on
/// both sides. If the descriptors cannot be duplicated, `f` runs as is.
fn with_stdout_aside<T>(notes: LibraryNotes, f: impl FnOnce() -> T) -> T {
    use std::io::Write;
    struct Restore(libc::c_int);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = std::io::stdout().flush();
            // SAFETY: plain descriptor calls on descriptors this function owns.
            unsafe {
                libc::dup2(self.0, 1);
                libc::close(self.0);
            }
        }
    }
    let _ = std::io::stdout().flush();
    // SAFETY: plain descriptor calls; every descriptor opened here is closed.
    let restore = unsafe {
        let aside = match notes {
            LibraryNotes::Discard => {
                libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC)
            }
            LibraryNotes::Stderr => libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3),
        };
        let saved = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if aside >= 0 && saved >= 0 && libc::dup2(aside, 1) == 1 {
            libc::close(aside);
            Some(Restore(saved))
        } else {
            for fd in [aside, saved] {
                if fd >= 0 {
                    libc::close(fd);
                }
            }
            None
        }
    };
    let out = f();
    drop(restore);
    out
}

fn guarded<T, E: std::fmt::Display>(
    notes: LibraryNotes,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, Fido2Error> {
    match with_stdout_aside(notes, || catch_unwind(AssertUnwindSafe(f))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(map_error(&e.to_string())),
        Err(_) => Err(Fido2Error::Device(
            "the HID library failed (panicked); check /dev/hidraw* and libudev".into(),
        )),
    }
}

/// CTAP status names in ctap-hid-fido2's messages, to mfakey's errors.
pub(crate) fn map_error(msg: &str) -> Fido2Error {
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

/// CTAP2_ERR_NO_CREDENTIALS (0x2E) in ctap-hid-fido2's message.
fn is_no_credentials(msg: &str) -> bool {
    msg.contains("NO_CREDENTIALS")
}

/// The getInfo fields mfakey reads (ctap-hid-fido2's own type cannot be
/// named outside the crate).
#[derive(Debug, Default, Clone)]
pub(crate) struct RawInfo {
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
pub(crate) struct Found {
    /// The USB product string (`YubiKey OTP+FIDO+CCID`, …).
    pub product: String,
    param: ctap_hid_fido2::HidParam,
}

impl Found {
    /// Its `/dev/hidraw*` node, when hidapi names it by path (Linux).
    pub(crate) fn path(&self) -> Option<&str> {
        match &self.param {
            ctap_hid_fido2::HidParam::Path(p) => Some(p),
            ctap_hid_fido2::HidParam::VidPid { .. } => None,
        }
    }
}

impl HidDevice {
    /// Every FIDO HID device this user can open; none → why (no key, or
    /// no permission on `/dev/hidraw*`). hidapi lists devices from sysfs,
    /// whether or not this user may open their nodes: a device whose node
    /// refused us is left out here, and when that leaves none, the answer
    /// is "no permission", not "no key".
    pub(crate) fn find_all(notes: LibraryNotes) -> Result<Vec<Found>, Fido2Error> {
        let seen = access::probe(Path::new("/dev"));
        if seen == access::HidrawAccess::NoDevices {
            return Err(Fido2Error::NoKey);
        }
        let devs = guarded(notes, || {
            Ok::<_, String>(ctap_hid_fido2::get_fidokey_devices())
        })?;
        let usable: Vec<Found> = devs
            .into_iter()
            .filter(|d| match &d.param {
                ctap_hid_fido2::HidParam::Path(p) => !seen.refused(Path::new(p)),
                ctap_hid_fido2::HidParam::VidPid { .. } => true,
            })
            .map(|d| Found {
                product: d.product_string,
                param: d.param,
            })
            .collect();
        if usable.is_empty() {
            return Err(access::why_none(&seen));
        }
        Ok(usable)
    }

    /// Opens a found key, set up from its getInfo: the PIN/UV auth protocol
    /// it prefers, and the credential management command it lists.
    pub(crate) fn open_found(found: &Found, notes: LibraryNotes) -> Result<HidDevice, Fido2Error> {
        let mut cfg = LibCfg::init()
            .with_enable_log(false)
            .with_keep_alive_msg_to_stderr(true);
        cfg.keep_alive_msg = "Touch your security key...".into();
        let params = [found.param.clone()];
        let key = guarded(notes, || FidoKeyHid::new(&params, &cfg))?;
        let info = guarded(notes, || key.get_info().map(|i| raw_info!(i)))?;
        let protocol = convert_info(&info).pin_protocol();
        let mut key = key.with_pin_protocol_version(protocol);
        key.use_pre_credential_management = uses_preview_cred_mgmt(&info);
        Ok(HidDevice {
            key,
            path: found.path().map(str::to_string),
            notes,
            opened_info: Some(info),
        })
    }
}

/// Whether credential management must use the CTAP 2.1 prototype command
/// (0x41, `credentialMgmtPreview`, YubiKey 5.2 to 5.6) rather than the
/// standard one (0x0A, `credMgmt`). ctap-hid-fido2 sends the prototype
/// unless told otherwise; a key that lists `credMgmt` gets the standard
/// command (a CTAP 2.1 key need not know the prototype).
pub(crate) fn uses_preview_cred_mgmt(i: &RawInfo) -> bool {
    let listed = |name: &str| i.options.iter().any(|(k, v)| k == name && *v);
    !listed("credMgmt") && listed("credentialMgmtPreview")
}

/// getInfo in mfakey's shape.
pub(crate) fn convert_info(i: &RawInfo) -> Fido2Info {
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
        if let Some(i) = self.opened_info.take() {
            return Ok(convert_info(&i));
        }
        guarded(self.notes, || self.key.get_info().map(|i| raw_info!(i))).map(|i| convert_info(&i))
    }

    fn pin_retries(&mut self) -> Result<u32, Fido2Error> {
        guarded(self.notes, || self.key.get_pin_retries()).map(|n| n.max(0) as u32)
    }

    fn set_pin(&mut self, new_pin: &SecretString) -> Result<(), Fido2Error> {
        guarded(self.notes, || self.key.set_new_pin(new_pin.expose()))
    }

    fn change_pin(
        &mut self,
        current: &SecretString,
        new_pin: &SecretString,
    ) -> Result<(), Fido2Error> {
        guarded(self.notes, || {
            self.key.change_pin(current.expose(), new_pin.expose())
        })
    }

    fn credentials(&mut self, pin: &SecretString) -> Result<Vec<Fido2Credential>, Fido2Error> {
        let pin = Some(pin.expose());
        // A key with no passkeys answers enumerateRPsBegin with
        // CTAP2_ERR_NO_CREDENTIALS (CTAP 2.1 §6.8.3): that is an empty list.
        let rps = match guarded(self.notes, || {
            self.key.credential_management_enumerate_rps(pin)
        }) {
            Err(Fido2Error::Device(m)) if is_no_credentials(&m) => return Ok(Vec::new()),
            r => r?,
        };
        let mut out = Vec::new();
        for rp in rps {
            let creds = match guarded(self.notes, || {
                self.key
                    .credential_management_enumerate_credentials(pin, &rp.rpid_hash)
            }) {
                Err(Fido2Error::Device(m)) if is_no_credentials(&m) => continue,
                r => r?,
            };
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
        guarded(self.notes, || {
            self.key
                .credential_management_delete_credential(Some(pin.expose()), pkcd)
        })
    }

    /// Sent by mfakey itself (ctap-hid-fido2 has no reset), on a channel of
    /// its own on the same node.
    fn reset(&mut self, on_touch: &mut dyn FnMut()) -> Result<(), Fido2Error> {
        let path = self.path.as_deref().ok_or_else(|| {
            Fido2Error::Device("the key's HID node has no path to send the reset on".into())
        })?;
        let mut node =
            ctaphid::Hidraw::open(path).map_err(|e| Fido2Error::Device(format!("{path}: {e}")))?;
        ctaphid::reset(&mut node, on_touch)
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
        let empty =
            "response_status err = 0x2E CTAP2_ERR_NO_CREDENTIALS    No valid credentials provided.";
        assert!(matches!(map_error(empty), Fido2Error::Device(_)));
        assert!(is_no_credentials(empty));
        assert!(!is_no_credentials("0x31 CTAP2_ERR_PIN_INVALID"));
        // PIN_AUTH_INVALID (wrong protocol) is not a wrong PIN.
        assert!(matches!(
            map_error("0x33 CTAP2_ERR_PIN_AUTH_INVALID"),
            Fido2Error::Device(_)
        ));
    }

    #[test]
    fn credential_management_command_follows_get_info() {
        let with = |opts: &[(&str, bool)]| RawInfo {
            options: opts.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..RawInfo::default()
        };
        // CTAP 2.1 (YubiKey 5.7, soft authenticators): the standard 0x0A.
        assert!(!uses_preview_cred_mgmt(&with(&[("credMgmt", true)])));
        assert!(!uses_preview_cred_mgmt(&with(&[
            ("credMgmt", true),
            ("credentialMgmtPreview", true)
        ])));
        // FIDO_2_1_PRE (YubiKey 5.2 to 5.6): only the prototype 0x41.
        assert!(uses_preview_cred_mgmt(&with(&[(
            "credentialMgmtPreview",
            true
        )])));
        assert!(uses_preview_cred_mgmt(&with(&[
            ("credMgmt", false),
            ("credentialMgmtPreview", true)
        ])));
        // Neither: nothing to choose (ops refuses before any call).
        assert!(!uses_preview_cred_mgmt(&with(&[])));
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
