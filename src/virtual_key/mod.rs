//! A virtual YubiKey 5: the card side of the OATH, Management and (a little
//! of the) PIV applets, for tests. It is a test peer written from Yubico's
//! specification, independent of the crate's own OATH client.
//!
//! In process it is a [`Transport`]; over pcscd it is served by [`vpcd`]
//! (binary `virtual-yubikey`).
//!
//! ```
//! use mfakey::virtual_key::{Config, SharedVirtualKey, VirtualYubiKey};
//!
//! let key = SharedVirtualKey::new(VirtualYubiKey::new(Config::default()));
//! // Inside the crate, a clone is the transport handed to the code under
//! // test (the `Transport` trait is crate-private); the test looks in.
//! let _for_the_code_under_test = key.clone();
//! assert!(key.with(|k| k.oath_credentials().is_empty()));
//! ```

mod command;
pub mod management;
pub mod oath;
pub mod state;
pub mod touch;
pub mod vpcd;

use crate::transport::{Transport, TransportError};
use crate::version::Version;
use command::{status, Incoming, SW_CLA_NOT_SUPPORTED, SW_INS_NOT_SUPPORTED, SW_MEMORY_FAILURE};
use command::{SW_NOT_FOUND, SW_OK, SW_WRONG_LENGTH};
pub use oath::{CredentialInfo, HashAlgo, OathType};
pub use state::StateError;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
pub use touch::TouchPolicy;

/// The ATR of a YubiKey 5 NFC seen through a contactless reader. ykman
/// accepts a reader whose name is not Yubico's only with a contactless ATR.
pub const ATR: &[u8] = &[
    0x3B, 0x8D, 0x80, 0x01, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59, 0x75, 0x62, 0x69, 0x4B, 0x65,
    0x79, 0xF9,
];

const INS_SELECT: u8 = 0xA4;
const P1_SELECT_BY_AID: u8 = 0x04;
const AID_OTP: &[u8] = &[0xA0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01];
/// Most command data accepted through command chaining (CLA 10).
const MAX_CHAINED: usize = 65_535;

pub use crate::management::FormFactor;

/// Whether the usual YubiKey 5 model of this form factor has NFC (the
/// keychains: YubiKey 5 NFC and 5C NFC).
pub fn form_factor_has_nfc(f: FormFactor) -> bool {
    matches!(f, FormFactor::UsbAKeychain | FormFactor::UsbCKeychain)
}

/// What the virtual key is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub serial: u32,
    pub firmware: Version,
    pub form_factor: FormFactor,
    /// Report NFC capabilities in READ CONFIG.
    pub nfc: bool,
    /// FIDO2 enabled (only READ CONFIG's enabled bits; FIDO2 itself is not emulated).
    pub fido2_enabled: bool,
    /// OATH enabled; when off, selecting it answers `6A82`.
    pub oath_enabled: bool,
    pub touch: TouchPolicy,
}

impl Default for Config {
    /// A YubiKey 5 NFC (USB-A keychain), firmware 5.7.1, serial 12345678.
    fn default() -> Self {
        Config {
            serial: 12_345_678,
            firmware: Version(5, 7, 1),
            form_factor: FormFactor::UsbAKeychain,
            nfc: true,
            fido2_enabled: true,
            oath_enabled: true,
            touch: TouchPolicy::Approve,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Applet {
    Oath,
    Management,
    Piv,
}

/// The virtual key. [`process`](Self::process) takes any bytes and answers
/// data + status word; it never panics.
pub struct VirtualYubiKey {
    config: Config,
    selected: Option<Applet>,
    oath: oath::OathApplet,
    /// Data of a command chain (CLA 10) not yet closed: INS and data so far.
    chain: Option<(u8, zeroize::Zeroizing<Vec<u8>>)>,
    state_file: Option<PathBuf>,
}

impl VirtualYubiKey {
    /// A fresh key (empty OATH applet, new salt), kept in memory only.
    pub fn new(config: Config) -> Self {
        let oath = oath::OathApplet::new(config.firmware, oath::OathData::empty(), config.touch);
        VirtualYubiKey {
            config,
            selected: None,
            oath,
            chain: None,
            state_file: None,
        }
    }

    /// A key whose OATH data lives in `path` (loaded if the file exists,
    /// saved after every change).
    pub fn with_state_file(config: Config, path: impl Into<PathBuf>) -> Result<Self, StateError> {
        let path = path.into();
        let mut key = Self::new(config);
        match state::load(&path)? {
            Some(data) => key.oath.data = data,
            None => state::save(&path, &key.oath.data)?,
        }
        key.state_file = Some(path);
        Ok(key)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The card was powered off and on (or removed and inserted): nothing is
    /// selected and the OATH session is locked again.
    pub fn power_cycle(&mut self) {
        self.selected = None;
        self.chain = None;
        self.oath.end_session();
    }

    pub fn atr(&self) -> &'static [u8] {
        ATR
    }

    pub fn set_touch_policy(&mut self, policy: TouchPolicy) {
        self.config.touch = policy;
        self.oath.touch = policy;
    }

    /// How many touches credentials asked for so far.
    pub fn touch_count(&self) -> u64 {
        self.oath.touches
    }

    /// The stored OATH credentials, in storage order, without their keys.
    pub fn oath_credentials(&self) -> Vec<CredentialInfo> {
        self.oath.credential_infos()
    }

    /// Whether an OATH password (access key) is set.
    pub fn oath_has_password(&self) -> bool {
        self.oath.data.access_key.is_some()
    }

    /// The OATH device salt (SELECT tag 71).
    pub fn oath_salt(&self) -> [u8; 8] {
        self.oath.data.salt
    }

    /// A name for the command, for logs: instruction only, never data.
    pub fn command_name(&self, apdu: &[u8]) -> &'static str {
        let Some(&ins) = apdu.get(1) else {
            return "malformed APDU";
        };
        if ins == INS_SELECT && apdu.get(2) == Some(&P1_SELECT_BY_AID) {
            let aid = Incoming::parse(apdu)
                .map(|c| c.data.clone())
                .unwrap_or_default();
            return match self.applet_for(&aid) {
                Some(Applet::Oath) => "SELECT OATH",
                Some(Applet::Management) => "SELECT MANAGEMENT",
                Some(Applet::Piv) => "SELECT PIV",
                None if aid == AID_OTP => "SELECT OTP",
                None => "SELECT other",
            };
        }
        match self.selected {
            Some(Applet::Oath) => oath::ins_name(ins),
            Some(Applet::Management) => management::ins_name(ins),
            Some(Applet::Piv) => management::piv_ins_name(ins),
            None => "no applet selected",
        }
    }

    fn applet_for(&self, aid: &[u8]) -> Option<Applet> {
        if aid == oath::AID {
            Some(Applet::Oath).filter(|_| self.config.oath_enabled)
        } else if aid == management::AID {
            Some(Applet::Management)
        } else if aid == management::PIV_AID || aid == management::PIV_AID_FULL {
            Some(Applet::Piv)
        } else {
            None
        }
    }

    /// Processes one command APDU and returns the answer (data + SW1 SW2).
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        let mut cmd = match Incoming::parse(apdu) {
            Ok(c) => c,
            Err(sw) => {
                self.chain = None;
                return status(sw);
            }
        };
        match cmd.cla {
            0x00 => {}
            0x10 => return self.chain_part(cmd),
            _ => {
                self.chain = None;
                return status(SW_CLA_NOT_SUPPORTED);
            }
        }
        if let Some((ins, mut data)) = self.chain.take() {
            if ins == cmd.ins {
                data.extend_from_slice(&cmd.data);
                std::mem::swap(&mut cmd.data, &mut data);
            }
        }
        // OATH's CALCULATE ALL shares INS A4 with SELECT; P1 04 tells them apart.
        if cmd.ins == INS_SELECT && cmd.p1 == P1_SELECT_BY_AID {
            return self.select(&cmd);
        }
        let out = match self.selected {
            Some(Applet::Oath) => self.oath.handle(&cmd),
            Some(Applet::Management) => management::handle(&self.config, &cmd),
            Some(Applet::Piv) => management::piv_handle(&self.config, &cmd),
            None => status(SW_INS_NOT_SUPPORTED),
        };
        if self.oath.take_dirty() {
            if let Some(path) = &self.state_file {
                if state::save(path, &self.oath.data).is_err() {
                    return status(SW_MEMORY_FAILURE);
                }
            }
        }
        out
    }

    /// One link of a command chain: keep the data, answer 9000.
    fn chain_part(&mut self, cmd: Incoming) -> Vec<u8> {
        let mut data = match self.chain.take() {
            Some((ins, data)) if ins == cmd.ins => data,
            _ => zeroize::Zeroizing::new(Vec::new()),
        };
        if data.len() + cmd.data.len() > MAX_CHAINED {
            return status(SW_WRONG_LENGTH);
        }
        data.extend_from_slice(&cmd.data);
        self.chain = Some((cmd.ins, data));
        status(SW_OK)
    }

    /// SELECT by AID. A failed SELECT leaves the selection as it was.
    fn select(&mut self, cmd: &Incoming) -> Vec<u8> {
        let Some(applet) = self.applet_for(&cmd.data) else {
            return status(SW_NOT_FOUND);
        };
        self.oath.end_session();
        self.selected = Some(applet);
        match applet {
            Applet::Oath => self.oath.select(),
            Applet::Management => management::select(&self.config),
            Applet::Piv => management::piv_select(),
        }
    }
}

impl Transport for VirtualYubiKey {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(self.process(apdu))
    }
}

/// A virtual key shared between a transport and the test that inspects it.
#[derive(Clone)]
pub struct SharedVirtualKey(Arc<Mutex<VirtualYubiKey>>);

impl SharedVirtualKey {
    pub fn new(key: VirtualYubiKey) -> Self {
        SharedVirtualKey(Arc::new(Mutex::new(key)))
    }

    /// Runs `f` with the key (for inspection or power cycles).
    pub fn with<R>(&self, f: impl FnOnce(&mut VirtualYubiKey) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl Transport for SharedVirtualKey {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(self.with(|k| k.process(apdu)))
    }
}

#[cfg(test)]
mod tests;
