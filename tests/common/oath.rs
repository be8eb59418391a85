//! Short-hands for the mfakey OATH commands the tests repeat. All use
//! `--json` and a full reader name; they assert success unless named `try_`.

use serde_json::Value;

use super::{Run, Scenario, Seed};

/// `oath add NAME --secret-stdin [extra...]` on `reader`, expecting success;
/// returns the `added` credential.
pub fn add(sc: &mut Scenario, reader: &str, name: &str, seed: &Seed, extra: &[&str]) -> Value {
    try_add(sc, reader, name, seed.base32().as_bytes(), extra).ok()["added"].clone()
}

/// `oath add NAME --secret-stdin [extra...]` with `stdin` as the secret.
pub fn try_add(sc: &mut Scenario, reader: &str, name: &str, stdin: &[u8], extra: &[&str]) -> Run {
    let mut args = vec![
        "--json",
        "--reader",
        reader,
        "oath",
        "add",
        name,
        "--secret-stdin",
    ];
    args.extend_from_slice(extra);
    sc.mfakey_stdin(&args, stdin)
}

/// `oath password set --new-password-file PW_FILE` on `reader`, expecting
/// success; returns the JSON answer.
pub fn set_password(sc: &mut Scenario, reader: &str, pw_file: &str) -> Value {
    sc.mfakey(&[
        "--json",
        "--reader",
        reader,
        "oath",
        "password",
        "set",
        "--new-password-file",
        pw_file,
    ])
    .ok()
}

/// `oath list` (with extra global flags such as --password-file): the
/// credentials array.
pub fn list(sc: &mut Scenario, reader: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--json", "--reader", reader];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["oath", "list"]);
    let v = sc.mfakey(&args).ok();
    assert_eq!(v["reader"], reader, "list names another reader: {v}");
    v["credentials"]
        .as_array()
        .expect("credentials array")
        .clone()
}

/// The credential ids `oath list` shows, sorted.
pub fn ids(sc: &mut Scenario, reader: &str, extra: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = list(sc, reader, extra)
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids
}

/// `oath code NAME --at T`: the one entry of `codes`.
pub fn code_at(sc: &mut Scenario, reader: &str, name: &str, t: u64, extra: &[&str]) -> Value {
    let at = t.to_string();
    let mut args = vec!["--json", "--reader", reader];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["oath", "code", name, "--at", &at]);
    let v = sc.mfakey(&args).ok();
    assert_eq!(v["timestamp"], t, "timestamp is not --at: {v}");
    let codes = v["codes"].as_array().expect("codes array");
    assert_eq!(codes.len(), 1, "one credential asked, not one code: {v}");
    codes[0].clone()
}

/// The `code` string of [`code_at`].
pub fn code_str(sc: &mut Scenario, reader: &str, name: &str, t: u64, extra: &[&str]) -> String {
    code_at(sc, reader, name, t, extra)["code"]
        .as_str()
        .expect("code string")
        .to_string()
}

/// The credential with `id` in a list, or panic.
pub fn find<'a>(creds: &'a [Value], id: &str) -> &'a Value {
    creds
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no credential {id:?} in {creds:?}"))
}

/// `oath code NAME --at t` for a touch credential: mfakey asks for the touch
/// on stderr, and the code is the seed's TOTP (SHA1, 6 digits, 30 s) at `t`.
pub fn assert_touch_code(sc: &mut Scenario, reader: &str, name: &str, t: u64, seed: &super::Seed) {
    let at = t.to_string();
    let r = sc.mfakey(&[
        "--json", "--reader", reader, "oath", "code", name, "--at", &at,
    ]);
    assert!(
        r.stderr.contains("Touch your YubiKey"),
        "no touch prompt: {r:?}"
    );
    assert_eq!(
        r.ok()["codes"][0]["code"],
        super::totp(seed, super::Algo::Sha1, 6, 30, t)
    );
}
