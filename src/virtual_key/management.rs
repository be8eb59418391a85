//! The Management applet (device info for `ykman info`) and the little of the
//! PIV applet that tools use to read the serial and firmware version.

use super::command::{answer, status, Incoming, SW_INS_NOT_SUPPORTED, SW_OK, SW_WRONG_P1P2};
use super::Config;

/// AID of the Management applet.
pub const AID: &[u8] = &[0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17];
/// AID of the PIV applet as clients select it (a prefix of its full AID).
pub const PIV_AID: &[u8] = &[0xA0, 0x00, 0x00, 0x03, 0x08];
/// Full PIV AID (NIST SP 800-73), also accepted.
pub const PIV_AID_FULL: &[u8] = &[
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];

const INS_READ_CONFIG: u8 = 0x1D;
const INS_PIV_GET_SERIAL: u8 = 0xF8;
const INS_PIV_GET_VERSION: u8 = 0xFD;

const TAG_USB_SUPPORTED: u8 = 0x01;
const TAG_SERIAL: u8 = 0x02;
const TAG_USB_ENABLED: u8 = 0x03;
const TAG_FORM_FACTOR: u8 = 0x04;
const TAG_VERSION: u8 = 0x05;
const TAG_AUTO_EJECT_TIMEOUT: u8 = 0x06;
const TAG_CHALRESP_TIMEOUT: u8 = 0x07;
const TAG_DEVICE_FLAGS: u8 = 0x08;
const TAG_CONFIG_LOCK: u8 = 0x0A;
const TAG_NFC_SUPPORTED: u8 = 0x0D;
const TAG_NFC_ENABLED: u8 = 0x0E;

/// Capability bits of READ CONFIG.
pub mod capability {
    pub const OTP: u16 = 0x0001;
    pub const U2F: u16 = 0x0002;
    pub const OPENPGP: u16 = 0x0008;
    pub const PIV: u16 = 0x0010;
    pub const OATH: u16 = 0x0020;
    pub const HSMAUTH: u16 = 0x0100;
    pub const FIDO2: u16 = 0x0200;
}

/// The instruction's name, for logs.
pub(crate) fn ins_name(ins: u8) -> &'static str {
    match ins {
        INS_READ_CONFIG => "MANAGEMENT READ CONFIG",
        _ => "MANAGEMENT unknown instruction",
    }
}

pub(crate) fn piv_ins_name(ins: u8) -> &'static str {
    match ins {
        INS_PIV_GET_SERIAL => "PIV GET SERIAL",
        INS_PIV_GET_VERSION => "PIV GET VERSION",
        _ => "PIV unsupported instruction",
    }
}

/// What a YubiKey 5 of this firmware supports.
pub fn supported_capabilities(config: &Config) -> u16 {
    use capability::*;
    let mut caps = OTP | U2F | OPENPGP | PIV | OATH | FIDO2;
    if config.firmware >= crate::version::Version(5, 4, 3) {
        caps |= HSMAUTH;
    }
    caps
}

/// Supported minus what the configuration turned off.
pub fn enabled_capabilities(config: &Config) -> u16 {
    let mut caps = supported_capabilities(config);
    if !config.fido2_enabled {
        caps &= !capability::FIDO2;
    }
    if !config.oath_enabled {
        caps &= !capability::OATH;
    }
    caps
}

/// SELECT answers the firmware version as ASCII text.
pub(crate) fn select(config: &Config) -> Vec<u8> {
    answer(config.firmware.to_string().into_bytes(), SW_OK)
}

pub(crate) fn handle(config: &Config, cmd: &Incoming) -> Vec<u8> {
    match cmd.ins {
        INS_READ_CONFIG => read_config(config, cmd.p1),
        _ => status(SW_INS_NOT_SUPPORTED),
    }
}

/// READ CONFIG page `page`: `[len] TLV…`. Everything fits on page 0.
fn read_config(config: &Config, page: u8) -> Vec<u8> {
    let mut tlvs = Vec::new();
    if page == 0 {
        let supported = supported_capabilities(config).to_be_bytes();
        let enabled = enabled_capabilities(config).to_be_bytes();
        crate::tlv::push(&mut tlvs, TAG_USB_SUPPORTED, &supported);
        crate::tlv::push(&mut tlvs, TAG_SERIAL, &config.serial.to_be_bytes());
        crate::tlv::push(&mut tlvs, TAG_USB_ENABLED, &enabled);
        crate::tlv::push(&mut tlvs, TAG_FORM_FACTOR, &[config.form_factor.code()]);
        crate::tlv::push(&mut tlvs, TAG_VERSION, &config.firmware.to_bytes());
        crate::tlv::push(&mut tlvs, TAG_AUTO_EJECT_TIMEOUT, &[0, 0]);
        crate::tlv::push(&mut tlvs, TAG_CHALRESP_TIMEOUT, &[15]);
        crate::tlv::push(&mut tlvs, TAG_DEVICE_FLAGS, &[0]);
        crate::tlv::push(&mut tlvs, TAG_CONFIG_LOCK, &[0]);
        if config.nfc {
            crate::tlv::push(&mut tlvs, TAG_NFC_SUPPORTED, &supported);
            crate::tlv::push(&mut tlvs, TAG_NFC_ENABLED, &enabled);
        }
    }
    let mut out = vec![tlvs.len() as u8];
    out.extend_from_slice(&tlvs);
    answer(out, SW_OK)
}

/// PIV SELECT answers its application property template.
pub(crate) fn piv_select() -> Vec<u8> {
    let mut apt = Vec::new();
    crate::tlv::push(&mut apt, 0x4F, &PIV_AID_FULL[5..]);
    let mut alloc = Vec::new();
    crate::tlv::push(&mut alloc, 0x4F, PIV_AID);
    crate::tlv::push(&mut apt, 0x79, &alloc);
    let mut out = Vec::new();
    crate::tlv::push(&mut out, 0x61, &apt);
    answer(out, SW_OK)
}

/// PIV GET SERIAL (`00 F8`) and GET VERSION (`00 FD`), YubiKey extensions.
pub(crate) fn piv_handle(config: &Config, cmd: &Incoming) -> Vec<u8> {
    if cmd.p1p2() != 0 && matches!(cmd.ins, INS_PIV_GET_SERIAL | INS_PIV_GET_VERSION) {
        return status(SW_WRONG_P1P2);
    }
    match cmd.ins {
        INS_PIV_GET_SERIAL => answer(config.serial.to_be_bytes().to_vec(), SW_OK),
        INS_PIV_GET_VERSION => answer(config.firmware.to_bytes().to_vec(), SW_OK),
        _ => status(SW_INS_NOT_SUPPORTED),
    }
}
