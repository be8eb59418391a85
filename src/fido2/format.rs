//! How FIDO2 values are shown: hex, AAGUIDs, firmware versions.

/// Lower-case hex.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// An AAGUID (16 bytes) as a UUID string; other lengths as plain hex.
pub(crate) fn aaguid_string(bytes: &[u8]) -> String {
    let h = to_hex(bytes);
    if bytes.len() != 16 {
        return h;
    }
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// getInfo's firmwareVersion: YubiKeys put `major << 16 | minor << 8 | patch`.
pub(crate) fn firmware_string(v: u32) -> Option<String> {
    match v {
        0 => None,
        v if v > 0xFFFF => Some(format!("{}.{}.{}", v >> 16, (v >> 8) & 0xFF, v & 0xFF)),
        v => Some(v.to_string()),
    }
}
