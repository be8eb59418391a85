//! Which FIDO key over HID a `fido2` command works on, and its serial: the
//! HID node and the PC/SC reader of one YubiKey meet at their USB device in
//! sysfs (`fido2::usb`), so `--serial N` (or `--reader NAME`) picks the
//! FIDO side of the key PC/SC knows by that serial, and `fido2 info` names
//! each FIDO key's serial.

use super::GlobalOpts;
use crate::device::{self, Selector};
use crate::error::{Classify, Failure};
use crate::fido2::hid::{Found, HidDevice, LibraryNotes};
use crate::fido2::usb::{self, UsbAddr};
use crate::fido2::Fido2Error;
use crate::transport::pcsc::Pcsc;
use std::collections::HashMap;
use std::path::Path;

/// Where the kernel shows devices.
pub(super) const SYSFS: &str = "/sys";

/// A FIDO key over HID, and the serial of the same key over PC/SC when
/// the two meet in sysfs.
pub(super) struct FidoKey {
    pub found: Found,
    pub serial: Option<u32>,
}

/// The USB device of a found FIDO key.
fn usb_of(found: &Found, sysfs: &Path) -> Option<UsbAddr> {
    let node = usb::node_name(found.path()?)?;
    usb::usb_of_hidraw(sysfs, node)
}

/// What PC/SC sees: the keys `sel` names on USB readers, by their USB
/// device, and the serial of the one key present when there is only one.
struct PcscSide {
    by_usb: HashMap<UsbAddr, (u32, String)>,
    only: Option<u32>,
}

/// See [`PcscSide`]; nothing when PC/SC is not there.
fn pcsc_side(sel: &Selector) -> PcscSide {
    let none = PcscSide {
        by_usb: HashMap::new(),
        only: None,
    };
    let Ok(pcsc) = Pcsc::establish() else {
        return none;
    };
    let Ok((keys, _)) = device::list_keys(&pcsc, None, None) else {
        return none;
    };
    let only = match keys.as_slice() {
        [one] => one.info.serial,
        _ => None,
    };
    let names: Vec<&str> = keys.iter().map(|k| k.reader.as_str()).collect();
    let wanted = sel
        .reader
        .as_deref()
        .map(|r| device::reader_names_match(&names, r));
    let by_usb = keys
        .iter()
        .filter(|k| sel.serial.is_none_or(|s| k.info.serial == Some(s)))
        .filter(|k| {
            wanted
                .as_ref()
                .is_none_or(|w| w.contains(&k.reader.as_str()))
        })
        .filter_map(|k| {
            let addr = UsbAddr::from_channel_id(k.channel_id.as_deref()?)?;
            Some((addr, (k.info.serial?, k.reader.clone())))
        })
        .collect();
    PcscSide { by_usb, only }
}

/// Every FIDO key over HID, each with its serial where known (sysfs ties
/// them; with one key on each side and no USB path to compare, the one is
/// taken for the other, as a person would).
pub(super) fn all(notes: LibraryNotes) -> Result<Vec<FidoKey>, Fido2Error> {
    let found = HidDevice::find_all(notes)?;
    let pcsc = pcsc_side(&Selector::default());
    let sysfs = Path::new(SYSFS);
    let alone = found.len() == 1;
    Ok(found
        .into_iter()
        .map(|f| {
            let serial = match usb_of(&f, sysfs) {
                Some(a) => pcsc.by_usb.get(&a).map(|(s, _)| *s),
                None if alone => pcsc.only,
                None => None,
            };
            FidoKey { found: f, serial }
        })
        .collect())
}

/// The FIDO key the options name: with `--serial` or `--reader`, the FIDO
/// side of that key; otherwise the one present (several: refused).
pub(super) fn one(g: &GlobalOpts, notes: LibraryNotes) -> Result<FidoKey, Failure> {
    let keys = all(notes)?;
    if g.serial.is_none() && g.reader.is_none() {
        return match keys.len() {
            1 => Ok(keys.into_iter().next().expect("one key")),
            n => Err(Fido2Error::SeveralKeys { count: n }.into()),
        };
    }
    let sel = Selector {
        reader: g.reader.clone(),
        serial: g.serial,
    };
    let named = pcsc_side(&sel).by_usb;
    let sysfs = Path::new(SYSFS);
    let mut hits: Vec<FidoKey> = keys
        .into_iter()
        .filter_map(|k| {
            let (serial, _) = named.get(&usb_of(&k.found, sysfs)?)?;
            Some(FidoKey {
                serial: Some(*serial),
                found: k.found,
            })
        })
        .collect();
    match hits.len() {
        1 => Ok(hits.remove(0)),
        0 => Err(not_matched(&sel, &named)),
        n => Err(Fido2Error::SeveralKeys { count: n }.into()),
    }
}

/// Why no FIDO key is the key the options name.
fn not_matched(sel: &Selector, named: &HashMap<UsbAddr, (u32, String)>) -> Failure {
    let which = match (sel.serial, &sel.reader) {
        (Some(s), _) => format!("key {s}"),
        (None, Some(r)) => format!("the key in reader \"{r}\""),
        (None, None) => "the key".to_string(),
    };
    let why = match named.values().next() {
        Some((serial, reader)) => format!(
            "{which} (serial {serial}, reader \"{reader}\") has no FIDO HID node of its own on this machine"
        ),
        None => format!(
            "{which} is not seen over PC/SC on a USB reader, so its FIDO side cannot be told apart (insert only that key, or give its --serial)"
        ),
    };
    Failure::new(Fido2Error::NoKey.kind(), format!("no FIDO key: {why}"))
}
