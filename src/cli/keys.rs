//! `mfakey keys`: every key present, without unlocking anything.

use super::render::{Output, Report};
use super::session::trace_sink;
use super::GlobalOpts;
use crate::device;
use crate::error::Failure;
use crate::management::Capabilities;
use crate::oath::{OathError, OathSession};
use crate::transport::pcsc::Pcsc;
use serde_json::{json, Value};

pub(super) fn run(g: &GlobalOpts, _out: Output) -> Result<Report, Failure> {
    let pcsc = Pcsc::establish()?;
    let wanted_reader = match &g.reader {
        Some(name) => Some(device::match_reader(&pcsc.readers()?, name)?.name.clone()),
        None => None,
    };
    let (keys, unavailable) =
        device::list_keys(&pcsc, wanted_reader.as_deref(), trace_sink(g).as_ref())?;
    let mut rows = Vec::new();
    let mut text = String::new();
    for mut key in keys {
        if g.serial.is_some() && key.info.serial != g.serial {
            continue;
        }
        let info = &key.info;
        let capacity = info.oath_capacity();
        let oath = if info.enabled(Capabilities::OATH) || info.usb_enabled.0 == 0 {
            match OathSession::select(&mut key.transport) {
                Ok(mut s) => {
                    // Unlock only when a password file was given: `keys` never prompts.
                    if s.is_locked() && g.password_file.is_some() {
                        super::session::unlock(&mut s, info.serial, g)?;
                    }
                    let password_set = s.has_password();
                    let credentials = if s.is_locked() {
                        None
                    } else {
                        Some(s.list()?.len())
                    };
                    json!({ "enabled": true, "credentials": credentials, "capacity": capacity, "password_set": password_set })
                }
                Err(OathError::NotAvailable) => json!({ "enabled": false }),
                Err(e) => return Err(e.into()),
            }
        } else {
            json!({ "enabled": false })
        };
        let fido2 = info.enabled(Capabilities::FIDO2);
        text.push_str(&key_line(
            &key.reader,
            info.serial,
            &info.version.to_string(),
            info.form_factor.name(),
            &oath,
            fido2,
        ));
        rows.push(json!({
            "reader": key.reader,
            "serial": info.serial,
            "firmware": info.version.to_string(),
            "form_factor": info.form_factor.name(),
            "oath": oath,
            "fido2_enabled": fido2,
        }));
    }
    for u in &unavailable {
        text.push_str(&format!(
            "[{}] cannot be read now: {}\n",
            u.reader, u.reason
        ));
    }
    if rows.is_empty() && unavailable.is_empty() {
        text.push_str("no YubiKey present\n");
    }
    Ok(Report::new(
        json!({ "keys": rows, "unavailable": unavailable }),
        text,
    ))
}

fn key_line(
    reader: &str,
    serial: Option<u32>,
    fw: &str,
    ff: &str,
    oath: &Value,
    fido2: bool,
) -> String {
    let serial = serial.map_or("unknown".to_string(), |s| s.to_string());
    let oath = if oath["enabled"] == json!(false) {
        "OATH disabled".to_string()
    } else {
        let used = oath["credentials"]
            .as_u64()
            .map_or("?".to_string(), |n| n.to_string());
        let pw = if oath["password_set"] == json!(true) {
            ", password set"
        } else {
            ""
        };
        let locked = if oath["credentials"].is_null() {
            " (locked)"
        } else {
            ""
        };
        format!("OATH {used}/{}{locked}{pw}", oath["capacity"])
    };
    let fido = if fido2 { "FIDO2 on" } else { "FIDO2 off" };
    format!("serial {serial}  firmware {fw}  {ff}  {oath}  {fido}  [{reader}]\n")
}
