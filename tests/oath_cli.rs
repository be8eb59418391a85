//! mfakey's OATH commands against a virtual key: keys, add (stdin and file),
//! list, code (checked against totp-rs), delete, rename, password, reset.
//! Every scenario ends with a SecretScan over all it produced.

mod common;

use common::oath::{add, code_at, code_str, find, ids, list, set_password};
use common::{random_serial, totp, Algo, Scenario, Seed, Slot, VirtualKey};
use serde_json::Value;

const AWS: &str = "Amazon Web Services";
const T: u64 = 1_700_000_000;

fn keys_entry(sc: &mut Scenario, reader: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--json", "--reader", reader];
    args.extend_from_slice(extra);
    args.push("keys");
    let v = sc.mfakey(&args).ok();
    let keys = v["keys"].as_array().expect("keys array");
    let mine: Vec<&Value> = keys.iter().filter(|k| k["reader"] == reader).collect();
    assert_eq!(mine.len(), 1, "one key in {reader:?}: {v}");
    mine[0].clone()
}

#[test]
fn keys_shows_a_yubikey_5_4() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let serial = random_serial();
    let key = VirtualKey::start(
        &slot,
        &["--serial", &serial.to_string(), "--firmware", "5.4.3"],
    );
    let k = keys_entry(&mut sc, slot.reader, &[]);
    assert_eq!(k["reader"], slot.reader);
    assert_eq!(k["serial"], serial);
    assert_eq!(k["firmware"], "5.4.3");
    assert_eq!(
        k["form_factor"], "usb-a-keychain",
        "the card's default form factor"
    );
    assert_eq!(k["oath"]["enabled"], true);
    assert_eq!(k["oath"]["capacity"], 32);
    assert_eq!(k["oath"]["credentials"], 0);
    assert_eq!(k["oath"]["password_set"], false);
    assert_eq!(k["fido2_enabled"], true);
    sc.record_key(&key);
    sc.assert_no_secret(&[]);
}

#[test]
fn keys_shows_a_yubikey_5_7_without_fido2_and_counts_credentials() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let serial = random_serial();
    let key = VirtualKey::start(
        &slot,
        &[
            "--serial",
            &serial.to_string(),
            "--firmware",
            "5.7.1",
            "--no-fido2",
            "--form-factor",
            "usb-c-nano",
        ],
    );
    let seed = Seed::random(20);
    add(
        &mut sc,
        slot.reader,
        "bob@111122223333",
        &seed,
        &["--issuer", AWS],
    );
    let k = keys_entry(&mut sc, slot.reader, &[]);
    assert_eq!(k["serial"], serial);
    assert_eq!(k["firmware"], "5.7.1");
    assert_eq!(k["oath"]["capacity"], 64);
    assert_eq!(k["oath"]["credentials"], 1);
    assert_eq!(k["fido2_enabled"], false);
    assert_eq!(k["form_factor"], "usb-c-nano");
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn keys_with_only_empty_readers_is_an_empty_list() {
    let mut sc = Scenario::new();
    // Every reader, all empty: nobody else's key may show up.
    let _slots = Slot::acquire_all();
    let v = sc.mfakey(&["--json", "keys"]).ok();
    assert_eq!(
        v["keys"],
        serde_json::json!([]),
        "readers without keys: {v}"
    );
    sc.assert_no_secret(&[]);
}

#[test]
fn add_from_stdin_then_list_and_code() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let seed = Seed::random(40); // IAM's seed length
    let id = format!("{AWS}:alice@123456789012");
    let added = add(
        &mut sc,
        slot.reader,
        "alice@123456789012",
        &seed,
        &["--issuer", AWS],
    );
    assert_eq!(added["id"], id.as_str());
    assert_eq!(added["issuer"], AWS);
    assert_eq!(added["name"], "alice@123456789012");
    assert_eq!(added["type"], "totp");
    assert_eq!(added["algorithm"], "sha1");
    assert_eq!(added["period"], 30);
    assert_eq!(added["touch"], false);

    let creds = list(&mut sc, slot.reader, &[]);
    assert_eq!(creds.len(), 1);
    assert_eq!(find(&creds, &id), &added, "list and add disagree");

    for t in [T, T + 29, T + 30, 59, 2_000_000_000] {
        let c = code_at(&mut sc, slot.reader, &id, t, &[]);
        assert_eq!(c["id"], id.as_str());
        assert_eq!(c["type"], "totp");
        assert_eq!(c["code"], totp(&seed, Algo::Sha1, 6, 30, t), "code at {t}");
        assert_eq!(c["valid_from"], t - t % 30);
        assert_eq!(c["valid_to"], t - t % 30 + 30);
    }
    // Substring, case-insensitive.
    assert_eq!(
        code_str(&mut sc, slot.reader, "ALICE@", T, &[]),
        totp(&seed, Algo::Sha1, 6, 30, T)
    );
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn add_from_a_file_in_every_accepted_spelling() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let seeds: Vec<Seed> = (0..3).map(|_| Seed::random(20)).collect();
    let spellings = [
        format!("{}\n", seeds[0].base32()),
        format!("{}\n", seeds[1].base32_grouped_lower()),
        format!(
            "otpauth://totp/Example:carol?secret={}&issuer=Example\n",
            seeds[2].base32()
        ),
    ];
    for (i, text) in spellings.iter().enumerate() {
        let file = sc.input_file(&format!("seed{i}"), text.as_bytes());
        let name = format!("user{i}");
        let v = sc
            .mfakey(&[
                "--json",
                "--reader",
                slot.reader,
                "oath",
                "add",
                &name,
                "--secret-file",
                file.to_str().unwrap(),
            ])
            .ok();
        assert_eq!(v["added"]["id"], name.as_str());
        assert_eq!(
            code_str(&mut sc, slot.reader, &name, T, &[]),
            totp(&seeds[i], Algo::Sha1, 6, 30, T),
            "spelling {i}"
        );
    }
    assert_eq!(ids(&mut sc, slot.reader, &[]), ["user0", "user1", "user2"]);
    sc.record_key(&key);
    sc.assert_no_secret(&seeds.iter().collect::<Vec<_>>());
}

#[test]
fn add_with_algorithm_digits_and_period() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let cases = [
        (Algo::Sha256, "sha256", 8u8, 60u64),
        (Algo::Sha512, "sha512", 7, 30),
        (Algo::Sha1, "sha1", 8, 15),
    ];
    let mut seeds = Vec::new();
    for (i, (algo, algo_name, digits, period)) in cases.iter().enumerate() {
        let seed = Seed::random(32);
        let name = format!("acct{i}");
        let (d, p) = (digits.to_string(), period.to_string());
        let added = add(
            &mut sc,
            slot.reader,
            &name,
            &seed,
            &[
                "--issuer",
                "Ex",
                "--algorithm",
                algo_name,
                "--digits",
                &d,
                "--period",
                &p,
            ],
        );
        assert_eq!(added["algorithm"], *algo_name);
        assert_eq!(added["period"], *period);
        assert_eq!(added["name"], name.as_str());
        let c = code_at(&mut sc, slot.reader, &format!("Ex:{name}"), T, &[]);
        assert_eq!(
            c["code"],
            totp(&seed, *algo, *digits, *period, T),
            "{algo_name}/{digits}/{period}"
        );
        assert_eq!(c["valid_from"], T - T % period);
        assert_eq!(c["valid_to"], T - T % period + period);
        seeds.push(seed);
    }
    sc.record_key(&key);
    sc.assert_no_secret(&seeds.iter().collect::<Vec<_>>());
}

#[test]
fn code_without_name_lists_all_codes() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let a = Seed::random(20);
    let b = Seed::random(20);
    add(&mut sc, slot.reader, "a", &a, &[]);
    add(&mut sc, slot.reader, "b", &b, &[]);
    let v = sc
        .mfakey(&[
            "--json",
            "--reader",
            slot.reader,
            "oath",
            "code",
            "--at",
            &T.to_string(),
        ])
        .ok();
    assert_eq!(v["timestamp"], T);
    let codes = v["codes"].as_array().expect("codes");
    assert_eq!(codes.len(), 2, "{v}");
    assert_eq!(find(codes, "a")["code"], totp(&a, Algo::Sha1, 6, 30, T));
    assert_eq!(find(codes, "b")["code"], totp(&b, Algo::Sha1, 6, 30, T));
    sc.record_key(&key);
    sc.assert_no_secret(&[&a, &b]);
}

#[test]
fn delete_and_rename() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = VirtualKey::start(
        &slot,
        &[
            "--serial",
            &random_serial().to_string(),
            "--firmware",
            "5.7.1",
        ],
    );
    let keep = Seed::random(20);
    let gone = Seed::random(20);
    add(&mut sc, slot.reader, "keep", &keep, &["--issuer", "Old"]);
    add(&mut sc, slot.reader, "gone", &gone, &[]);

    let v = sc
        .mfakey(&[
            "--json",
            "--reader",
            slot.reader,
            "oath",
            "delete",
            "gone",
            "--force",
        ])
        .ok();
    assert_eq!(v["deleted"], "gone");
    assert_eq!(ids(&mut sc, slot.reader, &[]), ["Old:keep"]);

    let v = sc
        .mfakey(&[
            "--json",
            "--reader",
            slot.reader,
            "oath",
            "rename",
            "Old:keep",
            "New:kept",
        ])
        .ok();
    assert_eq!(v["renamed"]["from"], "Old:keep");
    assert_eq!(v["renamed"]["to"], "New:kept");
    let creds = list(&mut sc, slot.reader, &[]);
    let c = find(&creds, "New:kept");
    assert_eq!(
        (c["issuer"].as_str(), c["name"].as_str()),
        (Some("New"), Some("kept"))
    );
    assert_eq!(creds.len(), 1);
    // The seed moved with the name.
    assert_eq!(
        code_str(&mut sc, slot.reader, "New:kept", T, &[]),
        totp(&keep, Algo::Sha1, 6, 30, T)
    );
    sc.record_key(&key);
    sc.assert_no_secret(&[&keep, &gone]);
}

#[test]
fn password_set_use_and_clear() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let seed = Seed::random(20);
    add(&mut sc, slot.reader, "locked-acct", &seed, &[]);
    let pw = sc.input_file("pw", b"correct horse battery\n");
    let pw = pw.to_str().unwrap();

    let v = set_password(&mut sc, slot.reader, pw);
    assert_eq!(v["password_set"], true);

    let k = keys_entry(&mut sc, slot.reader, &[]);
    assert_eq!(k["oath"]["password_set"], true);
    assert_eq!(
        k["oath"]["credentials"],
        Value::Null,
        "locked and no password: count unknown"
    );
    let k = keys_entry(&mut sc, slot.reader, &["--password-file", pw]);
    assert_eq!(k["oath"]["credentials"], 1);

    sc.mfakey(&["--json", "--reader", slot.reader, "oath", "list"])
        .err(4, "locked");
    assert_eq!(
        ids(&mut sc, slot.reader, &["--password-file", pw]),
        ["locked-acct"]
    );
    assert_eq!(
        code_str(
            &mut sc,
            slot.reader,
            "locked-acct",
            T,
            &["--password-file", pw]
        ),
        totp(&seed, Algo::Sha1, 6, 30, T)
    );

    let v = sc
        .mfakey(&[
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
    assert_eq!(v["password_set"], false);
    assert_eq!(ids(&mut sc, slot.reader, &[]), ["locked-acct"]);
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn reset_needs_force_and_wipes_credentials_and_password() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let seed = Seed::random(20);
    add(&mut sc, slot.reader, "x", &seed, &[]);
    let pw = sc.input_file("pw", b"pw\n");
    let pw = pw.to_str().unwrap();
    set_password(&mut sc, slot.reader, pw);

    // Reset without --force and no terminal to ask on: refused, naming the flag.
    let msg = sc
        .mfakey(&["--json", "--reader", slot.reader, "oath", "reset"])
        .err(5, "confirmation_needed");
    assert!(msg.contains("--force"), "{msg}");
    assert_eq!(
        ids(&mut sc, slot.reader, &["--password-file", pw]),
        ["x"],
        "refused reset changed the key"
    );

    let v = sc
        .mfakey(&[
            "--json",
            "--reader",
            slot.reader,
            "oath",
            "reset",
            "--force",
        ])
        .ok();
    assert_eq!(v["reset"], true);
    assert!(
        list(&mut sc, slot.reader, &[]).is_empty(),
        "reset left credentials (or a password)"
    );
    let k = keys_entry(&mut sc, slot.reader, &[]);
    assert_eq!(k["oath"]["password_set"], false);
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn force_overwrites_an_existing_credential() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let old = Seed::random(20);
    let new = Seed::random(20);
    add(&mut sc, slot.reader, "same", &old, &[]);
    add(&mut sc, slot.reader, "same", &new, &["--force"]);
    assert_eq!(ids(&mut sc, slot.reader, &[]), ["same"]);
    assert_eq!(
        code_str(&mut sc, slot.reader, "same", T, &[]),
        totp(&new, Algo::Sha1, 6, 30, T)
    );
    sc.record_key(&key);
    sc.assert_no_secret(&[&old, &new]);
}

#[test]
fn touch_credential_added_by_mfakey() {
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
    let added = add(&mut sc, slot.reader, "touchy", &seed, &["--touch"]);
    assert_eq!(added["touch"], true);
    // All codes: the touch credential is listed without a code.
    let v = sc
        .mfakey(&[
            "--json",
            "--reader",
            slot.reader,
            "oath",
            "code",
            "--at",
            &T.to_string(),
        ])
        .ok();
    let c = find(v["codes"].as_array().unwrap(), "touchy");
    assert_eq!(
        (c["touch"].clone(), c["code"].clone()),
        (Value::Bool(true), Value::Null)
    );
    // By name: computed after a touch.
    common::oath::assert_touch_code(&mut sc, slot.reader, "touchy", T, &seed);
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

#[test]
fn text_output_never_shows_the_seed_either() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let seed = Seed::random(20);
    let r = sc.mfakey_stdin(
        &[
            "-v",
            "-v",
            "--trace-apdu",
            "--reader",
            slot.reader,
            "oath",
            "add",
            "traced",
            "--secret-stdin",
        ],
        seed.base32().as_bytes(),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    for args in [
        &["oath", "list"][..],
        &["oath", "code", "traced"][..],
        &["keys"][..],
    ] {
        let mut all = vec!["-v", "--trace-apdu", "--reader", slot.reader];
        all.extend_from_slice(args);
        let r = sc.mfakey(&all);
        assert_eq!(r.code, Some(0), "{r:?}");
    }
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}
