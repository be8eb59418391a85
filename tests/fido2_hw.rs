//! A real FIDO2 key, read only: runs only when MFAKEY_HW_FIDO2_SERIAL names
//! the key's serial, and refuses any other key (it never writes: no PIN
//! change, no deletion). `MFAKEY_HW_FIDO2_PIN_FILE` (optional) adds a
//! passkey listing.
//!
//! MFAKEY_HW_FIDO2_SERIAL=12345678 cargo test --test fido2_hw -- --nocapture

use serde_json::Value;
use std::process::Command;

fn mfakey(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mfakey"))
        .args(args)
        .output()
        .expect("run mfakey");
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn real_key_info_and_passkeys() {
    let Ok(serial) = std::env::var("MFAKEY_HW_FIDO2_SERIAL") else {
        eprintln!("MFAKEY_HW_FIDO2_SERIAL is not set: hardware test skipped");
        return;
    };
    let serial: u32 = serial.parse().expect("MFAKEY_HW_FIDO2_SERIAL is a number");
    // Exactly one key, and it is the named one: a FIDO HID device cannot be
    // chosen by serial, so any other key present would be the one used.
    let (code, keys, err) = mfakey(&["--json", "keys"]);
    assert_eq!(code, 0, "{err}");
    let keys = keys["keys"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        keys.len(),
        1,
        "refusing: exactly one key must be present, found {keys:?}"
    );
    assert_eq!(
        keys[0]["serial"].as_u64(),
        Some(serial as u64),
        "refusing: the key present is not {serial}"
    );
    let s = serial.to_string();
    let (code, info, err) = mfakey(&["--json", "--serial", &s, "fido2", "info"]);
    assert_eq!(code, 0, "{err}");
    let k = &info["keys"][0];
    assert_eq!(k["key_serial"].as_u64(), Some(serial as u64));
    let f = &k["fido2"];
    assert!(f["versions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v.as_str().unwrap_or("").starts_with("FIDO_2")));
    assert_eq!(f["aaguid"].as_str().unwrap().len(), 36);
    if let Ok(pin_file) = std::env::var("MFAKEY_HW_FIDO2_PIN_FILE") {
        let (code, v, err) = mfakey(&[
            "--json",
            "fido2",
            "credentials",
            "list",
            "--pin-file",
            &pin_file,
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(v["credentials"].is_array());
    }
}
