//! Key identity from the Management applet (serial, firmware, form factor,
//! enabled applications), with the PIV applet's GET SERIAL as a fallback for
//! keys whose Management applet has no READ CONFIG or hides the serial.

use crate::apdu::{transmit_chained, Command, Sw};
use crate::tlv;
use crate::transport::{Transport, TransportError};
use crate::version::Version;
use serde::Serialize;

/// `A0 00 00 05 27 47 11 17`
pub(crate) const MANAGEMENT_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17];
/// `A0 00 00 03 08`
pub(crate) const PIV_AID: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x08];

const INS_SELECT: u8 = 0xA4;
/// INS 0x1D READ CONFIG (P1 = page)
const INS_READ_CONFIG: u8 = 0x1D;
/// INS 0xF8 GET SERIAL (PIV, YubiKey 5)
const INS_PIV_GET_SERIAL: u8 = 0xF8;

const TAG_USB_SUPPORTED: u8 = 0x01;
const TAG_SERIAL: u8 = 0x02;
const TAG_USB_ENABLED: u8 = 0x03;
const TAG_FORM_FACTOR: u8 = 0x04;
const TAG_VERSION: u8 = 0x05;
const TAG_NFC_SUPPORTED: u8 = 0x0D;
const TAG_NFC_ENABLED: u8 = 0x0E;
const TAG_MORE_DATA: u8 = 0x10;

/// Application bits as READ CONFIG reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Capabilities(pub u16);

impl Capabilities {
    pub(crate) const OTP: u16 = 0x01;
    pub(crate) const U2F: u16 = 0x02;
    pub(crate) const OPENPGP: u16 = 0x08;
    pub(crate) const PIV: u16 = 0x10;
    pub(crate) const OATH: u16 = 0x20;
    pub(crate) const HSMAUTH: u16 = 0x100;
    pub(crate) const FIDO2: u16 = 0x200;

    pub(crate) fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }

    /// Names of the set bits, lower case.
    pub(crate) fn names(self) -> Vec<&'static str> {
        [
            (Self::OTP, "otp"),
            (Self::U2F, "u2f"),
            (Self::OPENPGP, "openpgp"),
            (Self::PIV, "piv"),
            (Self::OATH, "oath"),
            (Self::HSMAUTH, "hsmauth"),
            (Self::FIDO2, "fido2"),
        ]
        .into_iter()
        .filter(|(b, _)| self.has(*b))
        .map(|(_, n)| n)
        .collect()
    }
}

impl Serialize for Capabilities {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

/// The physical shape of the key (low nibble of READ CONFIG tag 04).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FormFactor {
    Unknown,
    UsbAKeychain,
    UsbANano,
    UsbCKeychain,
    UsbCNano,
    UsbCLightning,
    UsbABio,
    UsbCBio,
}

impl FormFactor {
    pub(crate) fn from_code(code: u8) -> Self {
        match code & 0x0F {
            0x01 => FormFactor::UsbAKeychain,
            0x02 => FormFactor::UsbANano,
            0x03 => FormFactor::UsbCKeychain,
            0x04 => FormFactor::UsbCNano,
            0x05 => FormFactor::UsbCLightning,
            0x06 => FormFactor::UsbABio,
            0x07 => FormFactor::UsbCBio,
            _ => FormFactor::Unknown,
        }
    }

    #[cfg(any(test, feature = "testing"))]
    pub fn code(self) -> u8 {
        match self {
            FormFactor::Unknown => 0,
            FormFactor::UsbAKeychain => 1,
            FormFactor::UsbANano => 2,
            FormFactor::UsbCKeychain => 3,
            FormFactor::UsbCNano => 4,
            FormFactor::UsbCLightning => 5,
            FormFactor::UsbABio => 6,
            FormFactor::UsbCBio => 7,
        }
    }

    /// The kebab-case name used in output and on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FormFactor::Unknown => "unknown",
            FormFactor::UsbAKeychain => "usb-a-keychain",
            FormFactor::UsbANano => "usb-a-nano",
            FormFactor::UsbCKeychain => "usb-c-keychain",
            FormFactor::UsbCNano => "usb-c-nano",
            FormFactor::UsbCLightning => "usb-c-lightning",
            FormFactor::UsbABio => "usb-a-bio",
            FormFactor::UsbCBio => "usb-c-bio",
        }
    }
}

impl std::str::FromStr for FormFactor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        (0..=7)
            .map(FormFactor::from_code)
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown form factor \"{s}\""))
    }
}

/// What the key says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct DeviceInfo {
    pub serial: Option<u32>,
    pub version: Version,
    pub form_factor: FormFactor,
    pub usb_supported: Capabilities,
    pub usb_enabled: Capabilities,
    pub nfc_supported: Option<Capabilities>,
    pub nfc_enabled: Option<Capabilities>,
}

impl DeviceInfo {
    /// OATH credential slots: 32 before firmware 5.7.0, 64 from it.
    pub(crate) fn oath_capacity(&self) -> usize {
        self.version.oath_capacity()
    }

    /// Whether an application is enabled over USB (or, lacking that, NFC).
    pub(crate) fn enabled(&self, bit: u16) -> bool {
        self.usb_enabled.has(bit) || self.nfc_enabled.is_some_and(|c| c.has(bit))
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ManagementError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("this card has no YubiKey Management applet (is it a YubiKey?)")]
    NotAYubiKey,
    #[error("the key's Management applet answered {op} with status {sw:04X}")]
    Status { op: &'static str, sw: u16 },
    #[error("the key's Management answer is malformed: {0}")]
    Malformed(String),
}

fn select(t: &mut dyn Transport, aid: &[u8]) -> Result<Option<Vec<u8>>, ManagementError> {
    let cmd = Command::new(0x00, INS_SELECT, 0x04, 0x00)
        .with_data(aid.to_vec())
        .expect("short AID");
    let resp = transmit_chained(t, &cmd, 0xC0)?;
    match resp.sw.decode() {
        Sw::Ok => Ok(Some(resp.into_data())),
        sw if sw.means_no_applet() => Ok(None),
        _ => Err(ManagementError::Status {
            op: "SELECT",
            sw: resp.sw.0,
        }),
    }
}

/// Reads serial, firmware, form factor and enabled applications. Selects the
/// Management applet (and the PIV applet if the serial is missing), so the
/// caller must SELECT its own applet afterwards.
pub(crate) fn read_device_info(t: &mut dyn Transport) -> Result<DeviceInfo, ManagementError> {
    let select_answer = select(t, &MANAGEMENT_AID)?.ok_or(ManagementError::NotAYubiKey)?;
    let default_version = version_from_select(&select_answer);
    let config = if default_version.is_none_or(|v| v >= Version(4, 1, 0)) {
        read_config(t, default_version)?
    } else {
        None
    };
    let mut info = match config {
        Some(info) => info,
        None => DeviceInfo {
            serial: None,
            version: default_version.ok_or_else(|| {
                ManagementError::Malformed("no firmware version in the SELECT answer".into())
            })?,
            form_factor: FormFactor::Unknown,
            usb_supported: Capabilities(0),
            usb_enabled: Capabilities(0),
            nfc_supported: None,
            nfc_enabled: None,
        },
    };
    if info.serial.is_none() {
        info.serial = piv_serial(t)?;
    }
    Ok(info)
}

/// The Management SELECT answer is an ASCII string ending in `X.Y.Z`.
fn version_from_select(answer: &[u8]) -> Option<Version> {
    let text = String::from_utf8_lossy(answer);
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let tail: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    tail.parse().ok()
}

/// READ CONFIG, all pages. `Ok(None)` when the applet does not know it.
fn read_config(
    t: &mut dyn Transport,
    default_version: Option<Version>,
) -> Result<Option<DeviceInfo>, ManagementError> {
    let mut tags: Vec<(u8, Vec<u8>)> = Vec::new();
    for page in 0u8..16 {
        let cmd = Command::new(0x00, INS_READ_CONFIG, page, 0x00);
        let resp = transmit_chained(t, &cmd, 0xC0)?;
        match resp.sw.decode() {
            Sw::Ok => {}
            Sw::InsNotSupported | Sw::ClaNotSupported if page == 0 => return Ok(None),
            _ => {
                return Err(ManagementError::Status {
                    op: "READ CONFIG",
                    sw: resp.sw.0,
                })
            }
        }
        let data = resp.data();
        let Some((&len, body)) = data.split_first() else {
            return Err(ManagementError::Malformed(
                "empty READ CONFIG answer".into(),
            ));
        };
        if len as usize != body.len() {
            return Err(ManagementError::Malformed(format!(
                "READ CONFIG says {len} bytes but carries {}",
                body.len()
            )));
        }
        let mut more = false;
        for item in tlv::parse(body) {
            let (tag, value) = item.map_err(|e| ManagementError::Malformed(e.to_string()))?;
            if tag == TAG_MORE_DATA {
                more = value == [1];
            } else {
                tags.push((tag, value.to_vec()));
            }
        }
        if !more {
            break;
        }
    }
    let get = |tag: u8| {
        tags.iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.as_slice())
    };
    let uint = |v: &[u8]| v.iter().fold(0u32, |acc, b| (acc << 8) | *b as u32);
    let version = get(TAG_VERSION)
        .and_then(Version::from_bytes)
        .or(default_version)
        .ok_or_else(|| ManagementError::Malformed("no firmware version".into()))?;
    let serial = get(TAG_SERIAL).map(uint).filter(|s| *s != 0);
    let caps = |tag| get(tag).map(|v| Capabilities(uint(v) as u16));
    Ok(Some(DeviceInfo {
        serial,
        version,
        form_factor: FormFactor::from_code(get(TAG_FORM_FACTOR).map(uint).unwrap_or(0) as u8),
        usb_supported: caps(TAG_USB_SUPPORTED).unwrap_or_default(),
        // YubiKey 4 reports no (or a broken) enabled set: take the supported one.
        usb_enabled: caps(TAG_USB_ENABLED)
            .filter(|_| version >= Version(5, 0, 0))
            .or(caps(TAG_USB_SUPPORTED))
            .unwrap_or_default(),
        nfc_supported: caps(TAG_NFC_SUPPORTED),
        nfc_enabled: caps(TAG_NFC_ENABLED),
    }))
}

/// PIV GET SERIAL (`00 F8 00 00`), YubiKey 5: the serial when READ CONFIG
/// has none. `Ok(None)` when PIV is absent or does not know the command.
pub(crate) fn piv_serial(t: &mut dyn Transport) -> Result<Option<u32>, ManagementError> {
    if select(t, &PIV_AID)?.is_none() {
        return Ok(None);
    }
    let resp = crate::apdu::send(t, &Command::new(0x00, INS_PIV_GET_SERIAL, 0x00, 0x00))?;
    match (resp.sw.decode(), resp.data()) {
        // Serial 0 is no serial, as in READ CONFIG.
        (Sw::Ok, [a, b, c, d]) => {
            Ok(Some(u32::from_be_bytes([*a, *b, *c, *d])).filter(|s| *s != 0))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transcript: each expected command and its answer, all used.
    struct Script(Vec<(Vec<u8>, Vec<u8>)>);
    impl Transport for Script {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            assert!(!self.0.is_empty(), "unexpected command {apdu:02X?}");
            let (cmd, answer) = self.0.remove(0);
            assert_eq!(apdu, cmd.as_slice());
            Ok(answer)
        }
    }
    impl Drop for Script {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                assert!(self.0.is_empty(), "unused exchanges: {}", self.0.len());
            }
        }
    }

    fn select_mgmt() -> Vec<u8> {
        let mut c = vec![0x00, 0xA4, 0x04, 0x00, 0x08];
        c.extend_from_slice(&MANAGEMENT_AID);
        c
    }

    #[test]
    fn reads_a_yubikey_5_nfc() {
        // usb supported/enabled, serial, form factor, version, nfc supported/enabled,
        // config lock, auto-eject, chal-resp timeout, device flags.
        let body = [
            0x01, 0x02, 0x02, 0x3F, 0x03, 0x02, 0x02, 0x3B, 0x02, 0x04, 0x01, 0x2C, 0x5F, 0x6E,
            0x04, 0x01, 0x01, 0x05, 0x03, 0x05, 0x07, 0x01, 0x0D, 0x02, 0x02, 0x3F, 0x0E, 0x02,
            0x02, 0x3B, 0x0A, 0x01, 0x00, 0x06, 0x02, 0x00, 0x00, 0x07, 0x01, 0x0F, 0x08, 0x01,
            0x80,
        ];
        let mut answer = vec![body.len() as u8];
        answer.extend_from_slice(&body);
        answer.extend_from_slice(&[0x90, 0x00]);
        let mut t = Script(vec![
            (
                select_mgmt(),
                b"Virtual mgr - FW version 5.7.1\x90\x00".to_vec(),
            ),
            (vec![0x00, 0x1D, 0x00, 0x00], answer),
        ]);
        let info = read_device_info(&mut t).unwrap();
        assert_eq!(info.serial, Some(0x012C5F6E));
        assert_eq!(info.version, Version(5, 7, 1));
        assert_eq!(info.form_factor, FormFactor::UsbAKeychain);
        assert!(info.enabled(Capabilities::FIDO2));
        assert!(info.enabled(Capabilities::OATH));
        assert_eq!(info.oath_capacity(), 64);
        assert_eq!(info.nfc_enabled, Some(Capabilities(0x023B)));
    }

    #[test]
    fn falls_back_to_piv_for_the_serial() {
        let mut sel_piv = vec![0x00, 0xA4, 0x04, 0x00, 0x05];
        sel_piv.extend_from_slice(&PIV_AID);
        let mut t = Script(vec![
            (select_mgmt(), b"5.4.3\x90\x00".to_vec()),
            (
                vec![0x00, 0x1D, 0x00, 0x00],
                vec![
                    0x09, 0x01, 0x02, 0x02, 0x3F, 0x05, 0x03, 5, 4, 3, 0x90, 0x00,
                ],
            ),
            (sel_piv, vec![0x90, 0x00]),
            (
                vec![0x00, 0xF8, 0x00, 0x00],
                vec![0x00, 0xBC, 0x61, 0x4E, 0x90, 0x00],
            ),
        ]);
        let info = read_device_info(&mut t).unwrap();
        assert_eq!(info.serial, Some(12345678));
        assert_eq!(info.oath_capacity(), 32);
    }

    #[test]
    fn follows_more_data_pages() {
        let mut t = Script(vec![
            (select_mgmt(), b"5.7.2\x90\x00".to_vec()),
            (
                vec![0x00, 0x1D, 0x00, 0x00],
                vec![0x07, 0x02, 0x02, 0x01, 0x02, 0x10, 0x01, 0x01, 0x90, 0x00],
            ),
            (
                vec![0x00, 0x1D, 0x01, 0x00],
                vec![0x05, 0x05, 0x03, 5, 7, 2, 0x90, 0x00],
            ),
        ]);
        let info = read_device_info(&mut t).unwrap();
        assert_eq!(info.serial, Some(0x0102));
        assert_eq!(info.version, Version(5, 7, 2));
    }

    #[test]
    fn refuses_cards_without_management() {
        for sw in [
            [0x6A, 0x82],
            [0x6A, 0x86],
            [0x6B, 0x00],
            [0x6D, 0x00],
            [0x69, 0x99],
        ] {
            let mut t = Script(vec![(select_mgmt(), sw.to_vec())]);
            assert!(
                matches!(read_device_info(&mut t), Err(ManagementError::NotAYubiKey)),
                "{sw:02X?}"
            );
        }
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        for bad in [
            vec![0x90, 0x00],
            vec![0x05, 0x02, 0x90, 0x00],
            vec![0x03, 0x02, 0x05, 0x01, 0x90, 0x00],
        ] {
            let mut t = Script(vec![
                (select_mgmt(), b"5.7.1\x90\x00".to_vec()),
                (vec![0x00, 0x1D, 0x00, 0x00], bad),
            ]);
            assert!(matches!(
                read_device_info(&mut t),
                Err(ManagementError::Malformed(_))
            ));
        }
    }

    #[test]
    fn form_factor_names_round_trip() {
        for code in 0..=7 {
            let f = FormFactor::from_code(code);
            assert_eq!(f.name().parse::<FormFactor>().unwrap(), f);
            assert_eq!(f.code(), code);
        }
    }
}
