//! Cross-checks with Yubico's ykman, an independent OATH client: what mfakey
//! writes ykman reads and computes the same; what ykman writes (touch, SHA256
//! with 8 digits and 60 s, HOTP, a password) mfakey lists and computes right.

mod common;

use common::oath::{add, code_at, code_str, find, ids, list, set_password};
use common::{hotp, now, random_serial, totp, Algo, Scenario, Seed, Slot, VirtualKey};
use serde_json::Value;

const T: u64 = 1_700_000_000;
/// RFC 4226 Appendix D: seed "12345678901234567890", codes for counters 0.. .
const RFC4226: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
    "520489",
];

fn ykman_ids(sc: &Scenario, reader: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["oath", "accounts", "list"];
    args.extend_from_slice(extra);
    let r = sc.ykman(reader, &args);
    r.success();
    let mut ids: Vec<String> = r
        .stdout
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    ids.sort();
    ids
}

fn ykman_code(sc: &Scenario, reader: &str, query: &str) -> String {
    let r = sc.ykman(reader, &["oath", "accounts", "code", "-s", query]);
    r.success();
    r.stdout.trim().to_string()
}

/// ykman's and mfakey's current code for one credential, computed within one
/// period (retried once when the window rolled over in between), and the time.
fn codes_in_one_window(
    sc: &mut Scenario,
    reader: &str,
    query: &str,
    period: u64,
) -> (String, String, u64) {
    for _ in 0..2 {
        let t0 = now();
        let theirs = ykman_code(sc, reader, query);
        let v = sc
            .mfakey(&["--json", "--reader", reader, "oath", "code", query])
            .ok();
        let t1 = now();
        if t0 / period == t1 / period {
            let ts = v["timestamp"].as_u64().expect("timestamp");
            assert!(
                (t0..=t1).contains(&ts),
                "mfakey's timestamp {ts} is not now ({t0}..{t1})"
            );
            let ours = v["codes"][0]["code"].as_str().expect("code").to_string();
            return (theirs, ours, t0);
        }
    }
    panic!("two attempts both crossed a {period} s boundary");
}

#[test]
fn what_mfakey_adds_ykman_lists_and_computes_alike() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let aws = Seed::random(40);
    let long = Seed::random(32);
    add(
        &mut sc,
        slot.reader,
        "alice@123456789012",
        &aws,
        &["--issuer", "Amazon Web Services"],
    );
    add(
        &mut sc,
        slot.reader,
        "sixty",
        &long,
        &[
            "--issuer",
            "Ex",
            "--algorithm",
            "sha256",
            "--digits",
            "8",
            "--period",
            "60",
        ],
    );

    assert_eq!(
        ykman_ids(&sc, slot.reader, &[]),
        // ykman lists the stored id, period prefix included.
        ["60/Ex:sixty", "Amazon Web Services:alice@123456789012"]
    );

    let (theirs, ours, t) = codes_in_one_window(&mut sc, slot.reader, "alice@123456789012", 30);
    assert_eq!(theirs, ours, "ykman and mfakey disagree");
    assert_eq!(ours, totp(&aws, Algo::Sha1, 6, 30, t));

    let (theirs, ours, t) = codes_in_one_window(&mut sc, slot.reader, "sixty", 60);
    assert_eq!(theirs, ours, "ykman and mfakey disagree (sha256/8/60)");
    assert_eq!(ours, totp(&long, Algo::Sha256, 8, 60, t));
    assert_eq!(ours.len(), 8);
    sc.record_key(&key);
    sc.assert_no_secret(&[&aws, &long]);
}

#[test]
fn what_ykman_adds_mfakey_lists_and_computes() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let plain = Seed::random(20);
    let sha256 = Seed::random(32);
    let y = |sc: &Scenario, args: &[&str]| sc.ykman(slot.reader, args).success().clone();
    y(
        &sc,
        &[
            "oath",
            "accounts",
            "add",
            "-f",
            "-i",
            "Ex",
            "plain",
            &plain.base32(),
        ],
    );
    y(
        &sc,
        &[
            "oath",
            "accounts",
            "add",
            "-f",
            "-i",
            "Ex",
            "-a",
            "sha256",
            "-d",
            "8",
            "-P",
            "60",
            "wide",
            &sha256.base32(),
        ],
    );

    let creds = list(&mut sc, slot.reader, &[]);
    assert_eq!(creds.len(), 2, "{creds:?}");
    let p = find(&creds, "Ex:plain");
    assert_eq!(
        (
            p["type"].as_str(),
            p["algorithm"].as_str(),
            p["period"].as_u64()
        ),
        (Some("totp"), Some("sha1"), Some(30))
    );
    let w = creds
        .iter()
        .find(|c| c["name"] == "wide")
        .expect("ykman's 60 s credential listed");
    assert_eq!(w["issuer"], "Ex");
    assert_eq!(
        (
            w["algorithm"].as_str(),
            w["period"].as_u64(),
            w["touch"].as_bool()
        ),
        (Some("sha256"), Some(60), Some(false))
    );

    assert_eq!(
        code_str(&mut sc, slot.reader, "Ex:plain", T, &[]),
        totp(&plain, Algo::Sha1, 6, 30, T)
    );
    let c = code_at(&mut sc, slot.reader, "wide", T, &[]);
    assert_eq!(c["code"], totp(&sha256, Algo::Sha256, 8, 60, T));
    assert_eq!(
        (c["valid_from"].as_u64(), c["valid_to"].as_u64()),
        (Some(T - T % 60), Some(T - T % 60 + 60))
    );
    sc.record_key(&key);
    sc.assert_no_secret(&[&plain, &sha256]);
}

#[test]
fn ykman_touch_credential_is_computed_after_a_touch() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = VirtualKey::start(
        &slot,
        &[
            "--serial",
            &random_serial().to_string(),
            "--touch",
            "approve",
        ],
    );
    let seed = Seed::random(20);
    sc.ykman(
        slot.reader,
        &[
            "oath",
            "accounts",
            "add",
            "-f",
            "-t",
            "-i",
            "Ex",
            "touchme",
            &seed.base32(),
        ],
    )
    .success();

    let creds = list(&mut sc, slot.reader, &[]);
    assert_eq!(find(&creds, "Ex:touchme")["touch"], true);
    common::oath::assert_touch_code(&mut sc, slot.reader, "Ex:touchme", T, &seed);
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn ykman_hotp_credentials_follow_rfc_4226_and_share_the_counter() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let rfc = Seed::from_bytes(b"12345678901234567890");
    let other = Seed::random(20);
    sc.ykman(
        slot.reader,
        &[
            "oath",
            "accounts",
            "add",
            "-f",
            "-o",
            "hotp",
            "rfc",
            &rfc.base32(),
        ],
    )
    .success();
    sc.ykman(
        slot.reader,
        &[
            "oath",
            "accounts",
            "add",
            "-f",
            "-o",
            "hotp",
            "-c",
            "5",
            "-d",
            "8",
            "at5",
            &other.base32(),
        ],
    )
    .success();

    let creds = list(&mut sc, slot.reader, &[]);
    for id in ["rfc", "at5"] {
        let c = find(&creds, id);
        assert_eq!(
            (c["type"].clone(), c["touch"].clone()),
            (Value::from("hotp"), Value::Null),
            "{c}"
        );
    }
    // All codes: HOTP is listed without a code (computing would advance it).
    let v = sc
        .mfakey(&["--json", "--reader", slot.reader, "oath", "code"])
        .ok();
    assert_eq!(
        find(v["codes"].as_array().unwrap(), "rfc")["code"],
        Value::Null
    );

    let one = |sc: &mut Scenario, name: &str| -> String {
        let v = sc
            .mfakey(&["--json", "--reader", slot.reader, "oath", "code", name])
            .ok();
        v["codes"][0]["code"]
            .as_str()
            .expect("hotp code")
            .to_string()
    };
    assert_eq!(one(&mut sc, "rfc"), RFC4226[0]);
    assert_eq!(one(&mut sc, "rfc"), RFC4226[1]);
    // The counter lives on the key: ykman continues where mfakey stopped...
    assert_eq!(ykman_code(&sc, slot.reader, "rfc"), RFC4226[2]);
    // ...and mfakey where ykman stopped.
    assert_eq!(one(&mut sc, "rfc"), RFC4226[3]);
    assert_eq!(one(&mut sc, "at5"), hotp(&other, Algo::Sha1, 8, 5));
    assert_eq!(one(&mut sc, "at5"), hotp(&other, Algo::Sha1, 8, 6));
    sc.record_key(&key);
    sc.assert_no_secret(&[&other]); // (the RFC seed is public)
}

#[test]
fn a_password_set_by_ykman_works_in_mfakey_and_back() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let seed = Seed::random(20);
    sc.ykman(
        slot.reader,
        &[
            "oath",
            "accounts",
            "add",
            "-f",
            "-i",
            "Ex",
            "guarded",
            &seed.base32(),
        ],
    )
    .success();
    sc.ykman(slot.reader, &["oath", "access", "change", "-n", "ykman-pw"])
        .success();

    sc.mfakey(&["--json", "--reader", slot.reader, "oath", "list"])
        .err(4, "locked");
    let pw = sc.input_file("pw", b"ykman-pw\n");
    let pw = pw.to_str().unwrap();
    assert_eq!(
        ids(&mut sc, slot.reader, &["--password-file", pw]),
        ["Ex:guarded"]
    );
    assert_eq!(
        code_str(&mut sc, slot.reader, "guarded", T, &["--password-file", pw]),
        totp(&seed, Algo::Sha1, 6, 30, T)
    );

    // mfakey changes it: clear, then set its own; ykman needs the new one.
    sc.mfakey(&[
        "--json",
        "--reader",
        slot.reader,
        "--password-file",
        pw,
        "oath",
        "password",
        "clear",
    ])
    .ok();
    assert_eq!(ykman_ids(&sc, slot.reader, &[]), ["Ex:guarded"]);
    let pw2 = sc.input_file("pw2", b"mfakey-pw\n");
    set_password(&mut sc, slot.reader, pw2.to_str().unwrap());
    let refused = sc.ykman(slot.reader, &["oath", "accounts", "list", "-p", "ykman-pw"]);
    assert_ne!(
        refused.code,
        Some(0),
        "ykman accepted the old password: {refused:?}"
    );
    assert_eq!(
        ykman_ids(&sc, slot.reader, &["-p", "mfakey-pw"]),
        ["Ex:guarded"]
    );
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}
