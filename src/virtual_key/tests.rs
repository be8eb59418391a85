//! Tests of the virtual key, driven through raw APDUs. Expected codes come
//! from RFC 4226 / RFC 6238 vectors and `totp-rs`, never from the applet.

use super::*;
use crate::apdu::{transmit_chained, Command};
use crate::tlv;

const SHA1_SEED: &[u8] = b"12345678901234567890";
const SHA256_SEED: &[u8] = b"12345678901234567890123456789012";
const SHA512_SEED: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

fn key() -> VirtualYubiKey {
    VirtualYubiKey::new(Config::default())
}

fn key_fw(fw: Version) -> VirtualYubiKey {
    VirtualYubiKey::new(Config {
        firmware: fw,
        ..Config::default()
    })
}

fn apdu(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut c = Command::new(0, ins, p1, p2);
    if !data.is_empty() {
        c = c.with_data(data.to_vec()).unwrap();
    }
    c.to_bytes()
}

fn tx(k: &mut VirtualYubiKey, raw: &[u8]) -> (Vec<u8>, u16) {
    let mut r = k.process(raw);
    assert!(r.len() >= 2, "answer without status word");
    let sw2 = r.pop().unwrap();
    let sw1 = r.pop().unwrap();
    (r, u16::from_be_bytes([sw1, sw2]))
}

fn sw(k: &mut VirtualYubiKey, raw: &[u8]) -> u16 {
    tx(k, raw).1
}

fn select(k: &mut VirtualYubiKey, aid: &[u8]) -> (Vec<u8>, u16) {
    tx(k, &apdu(0xA4, 4, 0, aid))
}

fn select_oath(k: &mut VirtualYubiKey) -> Vec<(u8, Vec<u8>)> {
    let (data, s) = select(k, oath::AID);
    assert_eq!(s, 0x9000);
    tlv::parse_all(&data)
        .unwrap()
        .into_iter()
        .map(|(t, v)| (t, v.to_vec()))
        .collect()
}

fn tag(tlvs: &[(u8, Vec<u8>)], t: u8) -> Option<Vec<u8>> {
    tlvs.iter().find(|(x, _)| *x == t).map(|(_, v)| v.clone())
}

/// PUT data the way the spec describes it (key already padded by the caller).
fn put_data(id: &[u8], kind: u8, digits: u8, key: &[u8], touch: bool, imf: Option<u32>) -> Vec<u8> {
    let mut d = Vec::new();
    tlv::push(&mut d, 0x71, id);
    let mut k = vec![kind, digits];
    k.extend_from_slice(key);
    tlv::push(&mut d, 0x73, &k);
    if touch {
        d.extend_from_slice(&[0x78, 0x02]);
    }
    if let Some(c) = imf {
        tlv::push(&mut d, 0x7A, &c.to_be_bytes());
    }
    d
}

fn put(k: &mut VirtualYubiKey, id: &[u8], kind: u8, digits: u8, key: &[u8], touch: bool) -> u16 {
    sw(
        k,
        &apdu(0x01, 0, 0, &put_data(id, kind, digits, key, touch, None)),
    )
}

fn calc_data(id: &[u8], challenge: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    tlv::push(&mut d, 0x71, id);
    tlv::push(&mut d, 0x74, challenge);
    d
}

/// Code text from a truncated answer `[digits][4 bytes]`, per the spec.
fn format_code(v: &[u8]) -> String {
    let digits = v[0] as u32;
    let n = u32::from_be_bytes([v[1], v[2], v[3], v[4]]) & 0x7FFF_FFFF;
    format!("{:0width$}", n % 10u32.pow(digits), width = digits as usize)
}

fn calc(k: &mut VirtualYubiKey, id: &[u8], challenge: &[u8]) -> Result<String, u16> {
    let (data, s) = tx(k, &apdu(0xA2, 0, 1, &calc_data(id, challenge)));
    if s != 0x9000 {
        return Err(s);
    }
    let v = tlv::find(&data, 0x76).unwrap().unwrap();
    assert_eq!(v.len(), 5);
    Ok(format_code(v))
}

fn totp_challenge(t: u64, period: u64) -> [u8; 8] {
    (t / period).to_be_bytes()
}

fn totp_rs(algo: totp_rs::Algorithm, digits: u8, secret: &[u8], t: u64) -> String {
    totp_rs::Builder::new()
        .with_algorithm(algo)
        .with_digits(digits)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .build_noncompliant()
        .generate(t)
        .to_string()
}

fn pad14(k: &[u8]) -> Vec<u8> {
    let mut v = k.to_vec();
    if v.len() < 14 {
        v.resize(14, 0);
    }
    v
}

/// PBKDF2-HMAC-SHA1, 1000 rounds, 16 bytes: what a client derives.
fn derive(password: &str, salt: &[u8]) -> [u8; 16] {
    pbkdf2::pbkdf2_hmac_array::<sha1::Sha1, 16>(password.as_bytes(), salt, 1000)
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, KeyInit, Mac};
    let mut m = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn set_code_data(access: &[u8], chal: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    let mut k = vec![0x21];
    k.extend_from_slice(access);
    tlv::push(&mut d, 0x73, &k);
    tlv::push(&mut d, 0x74, chal);
    tlv::push(&mut d, 0x75, &hmac_sha1(access, chal));
    d
}

fn validate(k: &mut VirtualYubiKey, access: &[u8], card_chal: &[u8]) -> (Vec<u8>, u16) {
    let host = [7u8; 8];
    let mut d = Vec::new();
    tlv::push(&mut d, 0x75, &hmac_sha1(access, card_chal));
    tlv::push(&mut d, 0x74, &host);
    tx(k, &apdu(0xA3, 0, 0, &d))
}

#[test]
fn pbkdf2_helper_matches_the_spec_check_value() {
    let k = derive("secret", b"saltsalt");
    let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "8b09c61e3ddee1285f60003548fcfb09");
}

#[test]
fn select_oath_answers_version_and_salt_without_challenge() {
    let mut k = key();
    let t = select_oath(&mut k);
    assert_eq!(tag(&t, 0x79), Some(vec![5, 7, 1]));
    assert_eq!(tag(&t, 0x71).map(|s| s.len()), Some(8));
    assert_eq!(tag(&t, 0x74), None);
    assert_eq!(tag(&t, 0x7B), None);
}

#[test]
fn hotp_rfc4226_vectors_and_initial_counter() {
    let expected = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];
    let mut k = key();
    select_oath(&mut k);
    assert_eq!(put(&mut k, b"hotp", 0x11, 6, SHA1_SEED, false), 0x9000);
    for e in expected {
        assert_eq!(calc(&mut k, b"hotp", &[]).unwrap(), e);
    }
    assert_eq!(k.oath_credentials()[0].counter, 10);
    // The imf (7A) sets the starting counter.
    let d = put_data(b"hotp5", 0x11, 6, SHA1_SEED, false, Some(5));
    assert_eq!(sw(&mut k, &apdu(0x01, 0, 0, &d)), 0x9000);
    assert_eq!(calc(&mut k, b"hotp5", &[]).unwrap(), expected[5]);
}

#[test]
fn totp_rfc6238_vectors_for_all_three_hashes() {
    let vectors: [(u64, [&str; 3]); 6] = [
        (59, ["94287082", "46119246", "90693936"]),
        (1111111109, ["07081804", "68084774", "25091201"]),
        (1111111111, ["14050471", "67062674", "99943326"]),
        (1234567890, ["89005924", "91819424", "93441116"]),
        (2000000000, ["69279037", "90698825", "38618901"]),
        (20000000000, ["65353130", "77737706", "47863826"]),
    ];
    let mut k = key();
    select_oath(&mut k);
    assert_eq!(put(&mut k, b"s1", 0x21, 8, SHA1_SEED, false), 0x9000);
    assert_eq!(put(&mut k, b"s256", 0x22, 8, SHA256_SEED, false), 0x9000);
    assert_eq!(put(&mut k, b"s512", 0x23, 8, SHA512_SEED, false), 0x9000);
    for (t, codes) in vectors {
        let c = totp_challenge(t, 30);
        assert_eq!(calc(&mut k, b"s1", &c).unwrap(), codes[0], "t={t}");
        assert_eq!(calc(&mut k, b"s256", &c).unwrap(), codes[1], "t={t}");
        assert_eq!(calc(&mut k, b"s512", &c).unwrap(), codes[2], "t={t}");
    }
}

#[test]
fn full_response_carries_digits_and_the_whole_hmac() {
    let mut k = key();
    select_oath(&mut k);
    assert_eq!(put(&mut k, b"s256", 0x22, 8, SHA256_SEED, false), 0x9000);
    let c = totp_challenge(59, 30);
    let (data, s) = tx(&mut k, &apdu(0xA2, 0, 0, &calc_data(b"s256", &c)));
    assert_eq!(s, 0x9000);
    let v = tlv::find(&data, 0x75).unwrap().unwrap();
    assert_eq!(v.len(), 1 + 32);
    assert_eq!(v[0], 8);
    // RFC 4226 dynamic truncation done here, independently.
    let mac = &v[1..];
    let off = (mac[31] & 0x0F) as usize;
    let trunc = [8, mac[off], mac[off + 1], mac[off + 2], mac[off + 3]];
    assert_eq!(format_code(&trunc), "46119246");
}

#[test]
fn totp_matches_totp_rs_for_a_random_seed_and_default_period() {
    let mut seed = [0u8; 20];
    getrandom::fill(&mut seed).unwrap();
    let t = 1_760_000_000 + (seed[0] as u64) * 1000;
    let mut k = key();
    select_oath(&mut k);
    assert_eq!(
        put(
            &mut k,
            b"Amazon Web Services:alice@123",
            0x21,
            6,
            &seed,
            false
        ),
        0x9000
    );
    let code = calc(
        &mut k,
        b"Amazon Web Services:alice@123",
        &totp_challenge(t, 30),
    )
    .unwrap();
    assert_eq!(code, totp_rs(totp_rs::Algorithm::SHA1, 6, &seed, t));
}

#[test]
fn padded_and_hashed_keys_give_the_codes_of_the_original_secret() {
    let mut k = key();
    select_oath(&mut k);
    let short = b"0123456789";
    // Zero-padded to 14 (as clients send it) or not, the code is the secret's.
    assert_eq!(
        put(&mut k, b"padded", 0x21, 6, &pad14(short), false),
        0x9000
    );
    assert_eq!(put(&mut k, b"short", 0x21, 6, short, false), 0x9000);
    let t = 1_700_000_000;
    let want = totp_rs(totp_rs::Algorithm::SHA1, 6, short, t);
    assert_eq!(
        calc(&mut k, b"padded", &totp_challenge(t, 30)).unwrap(),
        want
    );
    assert_eq!(
        calc(&mut k, b"short", &totp_challenge(t, 30)).unwrap(),
        want
    );
    // Longer than the block: refused; hashed first (as clients do) it works.
    let long = [0x5Au8; 100];
    assert_eq!(put(&mut k, b"long", 0x21, 6, &long, false), 0x6A80);
    use sha1::Digest;
    let hashed = sha1::Sha1::digest(long).to_vec();
    assert_eq!(put(&mut k, b"long", 0x21, 6, &hashed, false), 0x9000);
    assert_eq!(
        calc(&mut k, b"long", &totp_challenge(t, 30)).unwrap(),
        totp_rs(totp_rs::Algorithm::SHA1, 6, &long, t)
    );
}

#[test]
fn put_refuses_malformed_credentials() {
    let mut k = key();
    select_oath(&mut k);
    let seed = SHA1_SEED;
    assert_eq!(put(&mut k, b"d5", 0x21, 5, seed, false), 0x6A80);
    assert_eq!(put(&mut k, b"d9", 0x21, 9, seed, false), 0x6A80);
    assert_eq!(put(&mut k, b"type", 0x31, 6, seed, false), 0x6A80);
    assert_eq!(put(&mut k, b"algo", 0x24, 6, seed, false), 0x6A80);
    assert_eq!(put(&mut k, &[b'x'; 65], 0x21, 6, seed, false), 0x6A80);
    assert_eq!(put(&mut k, &[b'x'; 64], 0x21, 6, seed, false), 0x9000);
    assert_eq!(put(&mut k, b"", 0x21, 6, seed, false), 0x6A80);
    let mut only_name = Vec::new();
    tlv::push(&mut only_name, 0x71, b"n");
    assert_eq!(sw(&mut k, &apdu(0x01, 0, 0, &only_name)), 0x6A80);
    // A property byte at the very end without its value.
    let mut d = put_data(b"p", 0x21, 6, seed, false, None);
    d.push(0x78);
    assert_eq!(sw(&mut k, &apdu(0x01, 0, 0, &d)), 0x6A80);
    // A wrong-sized imf.
    let mut d = put_data(b"p", 0x11, 6, seed, false, None);
    tlv::push(&mut d, 0x7A, &[1, 2]);
    assert_eq!(sw(&mut k, &apdu(0x01, 0, 0, &d)), 0x6A80);
    // SHA-512 needs firmware 4.3.1.
    let mut old = key_fw(Version(4, 2, 7));
    select_oath(&mut old);
    assert_eq!(put(&mut old, b"s512", 0x23, 8, SHA512_SEED, false), 0x6A80);
    assert_eq!(k.oath_credentials().len(), 1);
}

#[test]
fn touch_property_without_length_and_calculate_all_tags() {
    let mut k = key();
    select_oath(&mut k);
    assert_eq!(put(&mut k, b"totp", 0x21, 8, SHA1_SEED, false), 0x9000);
    assert_eq!(put(&mut k, b"touch", 0x21, 6, SHA1_SEED, true), 0x9000);
    assert_eq!(put(&mut k, b"hotp", 0x11, 6, SHA1_SEED, false), 0x9000);
    assert_eq!(put(&mut k, b"60/long", 0x22, 8, SHA256_SEED, false), 0x9000);
    let infos = k.oath_credentials();
    assert!(infos[1].touch && !infos[0].touch);
    let mut d = Vec::new();
    tlv::push(&mut d, 0x74, &totp_challenge(59, 30));
    let (data, s) = tx(&mut k, &apdu(0xA4, 0, 1, &d));
    assert_eq!(s, 0x9000);
    let items = tlv::parse_all(&data).unwrap();
    let tags: Vec<u8> = items.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, [0x71, 0x76, 0x71, 0x7C, 0x71, 0x77, 0x71, 0x76]);
    assert_eq!(items[0].1, b"totp");
    assert_eq!(format_code(items[1].1), "94287082");
    assert_eq!(items[3].1, [6]);
    assert_eq!(items[5].1, [6]);
    // Non-30 s periods are computed with the given challenge; the client recomputes.
    assert_eq!(format_code(items[7].1), "46119246");
    // No touch was asked for, and HOTP's counter did not move.
    assert_eq!(k.touch_count(), 0);
    assert_eq!(k.oath_credentials()[2].counter, 0);
    // Full (P2 00) answers carry 75.
    let (data, _) = tx(&mut k, &apdu(0xA4, 0, 0, &d));
    assert_eq!(tlv::parse_all(&data).unwrap()[1].0, 0x75);
    // Missing challenge.
    assert_eq!(sw(&mut k, &apdu(0xA4, 0, 1, &[])), 0x6A80);
}

#[test]
fn touch_policies() {
    let mut k = key();
    select_oath(&mut k);
    assert_eq!(put(&mut k, b"t", 0x21, 6, SHA1_SEED, true), 0x9000);
    let c = totp_challenge(59, 30);
    assert_eq!(calc(&mut k, b"t", &c).unwrap(), "287082");
    assert_eq!(k.touch_count(), 1);
    k.set_touch_policy(TouchPolicy::Timeout);
    assert_eq!(calc(&mut k, b"t", &c), Err(0x6982));
    assert_eq!(k.touch_count(), 2);
    k.set_touch_policy(TouchPolicy::DelayMs(40));
    let t = std::time::Instant::now();
    assert_eq!(calc(&mut k, b"t", &c).unwrap(), "287082");
    assert!(t.elapsed() >= std::time::Duration::from_millis(40));
}

#[test]
fn list_shows_type_algorithm_and_id() {
    let mut k = key();
    select_oath(&mut k);
    put(&mut k, b"a", 0x21, 6, SHA1_SEED, false);
    put(&mut k, b"b", 0x13, 6, SHA512_SEED, false);
    let (data, s) = tx(&mut k, &apdu(0xA1, 0, 0, &[]));
    assert_eq!(s, 0x9000);
    assert_eq!(data, [0x72, 2, 0x21, b'a', 0x72, 2, 0x13, b'b']);
}

#[test]
fn put_with_an_existing_id_overwrites() {
    let mut k = key();
    select_oath(&mut k);
    put(&mut k, b"x", 0x21, 6, SHA1_SEED, false);
    put(&mut k, b"x", 0x22, 8, SHA256_SEED, true);
    let infos = k.oath_credentials();
    assert_eq!(infos.len(), 1);
    assert_eq!(
        (infos[0].algorithm, infos[0].digits, infos[0].touch),
        (HashAlgo::Sha256, 8, true)
    );
    assert_eq!(
        calc(&mut k, b"x", &totp_challenge(59, 30)).unwrap(),
        "46119246"
    );
}

fn fill(k: &mut VirtualYubiKey, n: usize) {
    for i in 0..n {
        let id = format!("Issuer {i:02}:user{i:02}@example.com with a longish name");
        assert_eq!(
            put(k, id.as_bytes(), 0x21, 6, SHA1_SEED, false),
            0x9000,
            "{i}"
        );
    }
}

#[test]
fn capacity_is_32_before_5_7_and_64_from_it() {
    for (fw, cap) in [
        (Version(5, 4, 3), 32),
        (Version(5, 7, 0), 64),
        (Version(5, 7, 1), 64),
    ] {
        let mut k = key_fw(fw);
        select_oath(&mut k);
        fill(&mut k, cap);
        assert_eq!(
            put(&mut k, b"one more", 0x21, 6, SHA1_SEED, false),
            0x6A84,
            "{fw}"
        );
        // Overwriting an existing id still works when full.
        let id = b"Issuer 00:user00@example.com with a longish name";
        assert_eq!(put(&mut k, id, 0x21, 8, SHA1_SEED, false), 0x9000);
        assert_eq!(k.oath_credentials().len(), cap);
    }
}

#[test]
fn long_answers_chain_with_61xx_and_send_remaining() {
    let mut k = key();
    select_oath(&mut k);
    fill(&mut k, 40);
    let (first, s) = tx(&mut k, &apdu(0xA1, 0, 0, &[]));
    assert_eq!(s >> 8, 0x61);
    assert_eq!(first.len(), 255);
    // The crate's own chaining helper, with A5, reassembles the whole list.
    let list = transmit_chained(&mut k, &Command::new(0, 0xA1, 0, 0), 0xA5).unwrap();
    assert!(list.sw.is_ok());
    let items = tlv::parse_all(list.data()).unwrap();
    assert_eq!(items.len(), 40);
    assert_eq!(
        &items[39].1[1..],
        b"Issuer 39:user39@example.com with a longish name"
    );
    // CALCULATE ALL too.
    let mut d = Vec::new();
    tlv::push(&mut d, 0x74, &totp_challenge(59, 30));
    let cmd = Command::new(0, 0xA4, 0, 1).with_data(d).unwrap();
    let all = transmit_chained(&mut k, &cmd, 0xA5).unwrap();
    let items = tlv::parse_all(all.data()).unwrap();
    assert_eq!(items.len(), 80);
    assert!(items
        .iter()
        .skip(1)
        .step_by(2)
        .all(|(_, v)| format_code(v) == "287082"));
    // Another command drops what was pending.
    let (_, s) = tx(&mut k, &apdu(0xA1, 0, 0, &[]));
    assert_eq!(s >> 8, 0x61);
    select_oath(&mut k);
    assert_eq!(sw(&mut k, &apdu(0xA5, 0, 0, &[])), 0x6985);
}

#[test]
fn delete_and_unknown_credentials() {
    let mut k = key();
    select_oath(&mut k);
    put(&mut k, b"x", 0x21, 6, SHA1_SEED, false);
    let mut d = Vec::new();
    tlv::push(&mut d, 0x71, b"x");
    assert_eq!(sw(&mut k, &apdu(0x02, 0, 0, &d)), 0x9000);
    assert_eq!(sw(&mut k, &apdu(0x02, 0, 0, &d)), 0x6984);
    assert_eq!(calc(&mut k, b"x", &[0; 8]), Err(0x6984));
    assert!(k.oath_credentials().is_empty());
    assert_eq!(sw(&mut k, &apdu(0x02, 0, 0, &[])), 0x6A80);
}

#[test]
fn rename_needs_5_3_1() {
    let mut d = Vec::new();
    tlv::push(&mut d, 0x71, b"old");
    tlv::push(&mut d, 0x71, b"new");
    let mut old = key_fw(Version(5, 2, 7));
    select_oath(&mut old);
    put(&mut old, b"old", 0x21, 6, SHA1_SEED, false);
    assert_eq!(sw(&mut old, &apdu(0x05, 0, 0, &d)), 0x6D00);

    let mut k = key();
    select_oath(&mut k);
    assert_eq!(sw(&mut k, &apdu(0x05, 0, 0, &d)), 0x6984);
    put(&mut k, b"old", 0x21, 6, SHA1_SEED, false);
    put(&mut k, b"other", 0x21, 6, SHA1_SEED, false);
    assert_eq!(sw(&mut k, &apdu(0x05, 0, 0, &d)), 0x9000);
    assert_eq!(k.oath_credentials()[0].id, b"new");
    assert_eq!(
        calc(&mut k, b"new", &totp_challenge(59, 30)).unwrap(),
        "287082"
    );
    let mut clash = Vec::new();
    tlv::push(&mut clash, 0x71, b"new");
    tlv::push(&mut clash, 0x71, b"other");
    assert_eq!(sw(&mut k, &apdu(0x05, 0, 0, &clash)), 0x6A80);
    assert_eq!(sw(&mut k, &apdu(0x05, 0, 0, &d[..5])), 0x6A80);
}

/// As Yubico's device tests require of firmware 5.3 and later
/// (yubikit `test_oath.py`, `test_rename_to_existing`): renaming a
/// credential onto the id it already has is an error, not a no-op, and
/// nothing changes.
#[test]
fn rename_onto_its_own_id_is_refused() {
    let mut k = key();
    select_oath(&mut k);
    put(&mut k, b"newissuer:newname", 0x21, 6, SHA1_SEED, false);
    let mut same = Vec::new();
    tlv::push(&mut same, 0x71, b"newissuer:newname");
    tlv::push(&mut same, 0x71, b"newissuer:newname");
    assert_eq!(sw(&mut k, &apdu(0x05, 0, 0, &same)), 0x6A80);
    let creds = k.oath_credentials();
    assert_eq!(creds.len(), 1);
    assert_eq!(creds[0].id, b"newissuer:newname");
    assert_eq!(
        calc(&mut k, b"newissuer:newname", &totp_challenge(59, 30)).unwrap(),
        "287082"
    );
}

#[test]
fn password_set_validate_and_clear() {
    let mut k = key();
    let salt = tag(&select_oath(&mut k), 0x71).unwrap();
    put(&mut k, b"x", 0x21, 6, SHA1_SEED, false);
    let access = derive("hunter2", &salt);
    // A response that does not match the key is refused.
    let mut bad = set_code_data(&access, &[1; 8]);
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert_eq!(sw(&mut k, &apdu(0x03, 0, 0, &bad)), 0x6984);
    assert!(!k.oath_has_password());
    assert_eq!(
        sw(&mut k, &apdu(0x03, 0, 0, &set_code_data(&access, &[1; 8]))),
        0x9000
    );
    assert!(k.oath_has_password());
    // The session that set it stays open.
    assert_eq!(sw(&mut k, &apdu(0xA1, 0, 0, &[])), 0x9000);

    // A new session is locked.
    let t = select_oath(&mut k);
    let chal = tag(&t, 0x74).unwrap();
    assert_eq!(chal.len(), 8);
    assert_eq!(tag(&t, 0x7B), Some(vec![1]));
    for ins in [0x01u8, 0x02, 0x03, 0x05, 0xA1, 0xA2, 0xA4, 0xA5] {
        assert_eq!(
            sw(&mut k, &apdu(ins, 0, 0, &[0x71, 1, b'x'])),
            0x6982,
            "{ins:02X}"
        );
    }
    // Wrong password: 6A80, still locked, and the same challenge still works.
    let wrong = derive("wrong", &salt);
    assert_eq!(validate(&mut k, &wrong, &chal).1, 0x6A80);
    assert_eq!(sw(&mut k, &apdu(0xA1, 0, 0, &[])), 0x6982);
    let (resp, s) = validate(&mut k, &access, &chal);
    assert_eq!(s, 0x9000);
    assert_eq!(
        tlv::find(&resp, 0x75).unwrap().unwrap(),
        hmac_sha1(&access, &[7; 8])
    );
    assert_eq!(sw(&mut k, &apdu(0xA1, 0, 0, &[])), 0x9000);
    // The challenge is used up.
    assert_eq!(validate(&mut k, &access, &chal).1, 0x6984);

    // Power cycle and re-SELECT lock again.
    k.power_cycle();
    assert_eq!(sw(&mut k, &apdu(0xA1, 0, 0, &[])), 0x6D00);
    let chal = tag(&select_oath(&mut k), 0x74).unwrap();
    assert_eq!(sw(&mut k, &apdu(0xA1, 0, 0, &[])), 0x6982);
    assert_eq!(validate(&mut k, &access, &chal).1, 0x9000);
    select(&mut k, management::AID);
    let chal = tag(&select_oath(&mut k), 0x74).unwrap();
    assert_eq!(sw(&mut k, &apdu(0xA1, 0, 0, &[])), 0x6982);
    assert_eq!(validate(&mut k, &access, &chal).1, 0x9000);

    // Clearing: an empty 73.
    assert_eq!(sw(&mut k, &apdu(0x03, 0, 0, &[0x73, 0x00])), 0x9000);
    assert!(!k.oath_has_password());
    let t = select_oath(&mut k);
    assert_eq!(tag(&t, 0x74), None);
    assert_eq!(sw(&mut k, &apdu(0xA1, 0, 0, &[])), 0x9000);
    // VALIDATE with no password set.
    assert_eq!(validate(&mut k, &access, &[0; 8]).1, 0x6984);
}

#[test]
fn reset_wipes_everything_even_when_locked() {
    let mut k = key();
    let salt = tag(&select_oath(&mut k), 0x71).unwrap();
    put(&mut k, b"x", 0x21, 6, SHA1_SEED, false);
    let access = derive("pw", &salt);
    sw(&mut k, &apdu(0x03, 0, 0, &set_code_data(&access, &[1; 8])));
    select_oath(&mut k);
    assert_eq!(sw(&mut k, &apdu(0x04, 0xDE, 0xAE, &[])), 0x6B00);
    assert_eq!(sw(&mut k, &apdu(0x04, 0xDE, 0xAD, &[])), 0x9000);
    assert!(k.oath_credentials().is_empty());
    assert!(!k.oath_has_password());
    let t = select_oath(&mut k);
    assert_ne!(tag(&t, 0x71).unwrap(), salt);
    assert_eq!(tag(&t, 0x74), None);
}

#[test]
fn management_read_config_as_ykman_reads_it() {
    let mut k = key();
    let (v, s) = select(&mut k, management::AID);
    assert_eq!((v.as_slice(), s), (&b"5.7.1"[..], 0x9000));
    let (data, s) = tx(&mut k, &[0, 0x1D, 0, 0, 0]);
    assert_eq!(s, 0x9000);
    assert_eq!(data[0] as usize, data.len() - 1);
    let items = tlv::parse_all(&data[1..]).unwrap();
    let get = |t: u8| items.iter().find(|(x, _)| *x == t).map(|(_, v)| v.to_vec());
    assert_eq!(get(0x02), Some(12_345_678u32.to_be_bytes().to_vec()));
    assert_eq!(get(0x05), Some(vec![5, 7, 1]));
    assert_eq!(get(0x04), Some(vec![1]));
    assert_eq!(get(0x01), Some(vec![0x03, 0x3B]));
    assert_eq!(get(0x03), Some(vec![0x03, 0x3B]));
    assert_eq!(get(0x0D), Some(vec![0x03, 0x3B]));
    assert_eq!(get(0x0E), Some(vec![0x03, 0x3B]));
    assert_eq!(get(0x10), None);
    // Other pages are empty.
    assert_eq!(tx(&mut k, &[0, 0x1D, 1, 0, 0]).0, [0]);

    let mut k = VirtualYubiKey::new(Config {
        serial: 7,
        firmware: Version(5, 2, 7),
        form_factor: FormFactor::UsbCNano,
        nfc: false,
        fido2_enabled: false,
        oath_enabled: false,
        touch: TouchPolicy::Approve,
    });
    assert_eq!(select(&mut k, oath::AID).1, 0x6A82);
    select(&mut k, management::AID);
    let (data, _) = tx(&mut k, &[0, 0x1D, 0, 0, 0]);
    let items = tlv::parse_all(&data[1..]).unwrap();
    let get = |t: u8| items.iter().find(|(x, _)| *x == t).map(|(_, v)| v.to_vec());
    assert_eq!(get(0x01), Some(vec![0x02, 0x3B]), "no HSMAUTH before 5.4.3");
    assert_eq!(get(0x03), Some(vec![0x00, 0x1B]), "FIDO2 and OATH off");
    assert_eq!(get(0x04), Some(vec![4]));
    assert_eq!(get(0x0D), None);
}

#[test]
fn piv_serial_and_version_otp_absent() {
    let mut k = key();
    assert_eq!(select(&mut k, &[0xA0, 0, 0, 5, 0x27, 0x20, 1]).1, 0x6A82);
    let (apt, s) = select(&mut k, &[0xA0, 0, 0, 3, 8]);
    assert_eq!(s, 0x9000);
    assert_eq!(apt[0], 0x61);
    assert_eq!(
        tx(&mut k, &[0, 0xF8, 0, 0, 0]),
        (12_345_678u32.to_be_bytes().to_vec(), 0x9000)
    );
    assert_eq!(tx(&mut k, &[0, 0xFD, 0, 0, 0]), (vec![5, 7, 1], 0x9000));
    assert_eq!(sw(&mut k, &[0, 0xF8, 1, 0, 0]), 0x6B00);
    // A failed SELECT keeps PIV selected.
    assert_eq!(select(&mut k, &[1, 2, 3, 4, 5]).1, 0x6A82);
    assert_eq!(tx(&mut k, &[0, 0xFD, 0, 0]).1, 0x9000);
}

#[test]
fn header_errors() {
    let mut k = key();
    assert_eq!(sw(&mut k, &[0, 0xA1, 0, 0]), 0x6D00, "nothing selected");
    select_oath(&mut k);
    assert_eq!(sw(&mut k, &[0x80, 0xA1, 0, 0]), 0x6E00);
    assert_eq!(
        sw(&mut k, &[0, 0x00, 0, 0, 0]),
        0x6D00,
        "ykman's touch workaround APDU"
    );
    assert_eq!(sw(&mut k, &[0, 0xA1, 0]), 0x6700);
    assert_eq!(sw(&mut k, &[0, 0xA2, 0, 0, 9, 1]), 0x6700);
    // A4 without P1 04 is OATH's CALCULATE ALL, not a SELECT.
    assert_eq!(sw(&mut k, &[0, 0xA4, 0, 1, 1, 1]), 0x6A80);
    assert_eq!(
        sw(&mut k, &apdu(0xA2, 0, 7, &calc_data(b"x", &[0; 8]))),
        0x6B00
    );
    select(&mut k, management::AID);
    assert_eq!(sw(&mut k, &[0, 0xA4, 0, 1, 1, 1]), 0x6D00);
}

#[test]
fn command_chaining_with_cla_10() {
    let mut k = key();
    select_oath(&mut k);
    let d = put_data(b"chained", 0x23, 8, SHA512_SEED, false, None);
    let (a, b) = d.split_at(20);
    let mut first = vec![0x10, 0x01, 0, 0, a.len() as u8];
    first.extend_from_slice(a);
    assert_eq!(sw(&mut k, &first), 0x9000);
    assert!(k.oath_credentials().is_empty());
    assert_eq!(sw(&mut k, &apdu(0x01, 0, 0, b)), 0x9000);
    assert_eq!(
        calc(&mut k, b"chained", &totp_challenge(59, 30)).unwrap(),
        "90693936"
    );
}

#[test]
fn works_as_a_transport() {
    let mut k = key();
    let t: &mut dyn Transport = &mut k;
    let r = crate::apdu::send(
        t,
        &Command::new(0, 0xA4, 4, 0)
            .with_data(oath::AID.to_vec())
            .unwrap(),
    )
    .unwrap();
    assert!(r.sw.is_ok());
    let shared = SharedVirtualKey::new(key());
    let mut t2 = shared.clone();
    let r = crate::apdu::send(
        &mut t2,
        &Command::new(0, 0xA4, 4, 0)
            .with_data(management::AID.to_vec())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r.data(), b"5.7.1");
    assert_eq!(
        shared.with(|k| k.command_name(&[0, 0x1D, 0, 0])),
        "MANAGEMENT READ CONFIG"
    );
}

#[test]
fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vk.json");
    let mut k = VirtualYubiKey::with_state_file(Config::default(), &path).unwrap();
    let salt = tag(&select_oath(&mut k), 0x71).unwrap();
    put(&mut k, b"h", 0x11, 6, SHA1_SEED, false);
    calc(&mut k, b"h", &[]).unwrap();
    let access = derive("pw", &salt);
    sw(&mut k, &apdu(0x03, 0, 0, &set_code_data(&access, &[1; 8])));
    drop(k);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let mut k = VirtualYubiKey::with_state_file(Config::default(), &path).unwrap();
    assert!(k.oath_has_password());
    assert_eq!(k.oath_salt().to_vec(), salt);
    let chal = tag(&select_oath(&mut k), 0x74).unwrap();
    assert_eq!(validate(&mut k, &access, &chal).1, 0x9000);
    // The HOTP counter moved on before the restart.
    assert_eq!(calc(&mut k, b"h", &[]).unwrap(), "287082");
    sw(&mut k, &apdu(0x04, 0xDE, 0xAD, &[]));
    drop(k);
    let k = VirtualYubiKey::with_state_file(Config::default(), &path).unwrap();
    assert!(k.oath_credentials().is_empty() && !k.oath_has_password());
}

#[test]
fn state_write_failure_answers_6581() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("d");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("vk.json");
    let mut k = VirtualYubiKey::with_state_file(Config::default(), &path).unwrap();
    select_oath(&mut k);
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_dir(&sub).unwrap();
    assert_eq!(put(&mut k, b"x", 0x21, 6, SHA1_SEED, false), 0x6581);
}

/// A tiny deterministic generator, so failures reproduce.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u8
    }
}

#[test]
fn garbage_and_truncated_input_never_panics() {
    let mut rng = Lcg(0x5EED);
    let mut k = key();
    select_oath(&mut k);
    fill(&mut k, 3);
    put(&mut k, b"t", 0x21, 6, SHA1_SEED, true);
    let aids: [&[u8]; 3] = [oath::AID, management::AID, management::PIV_AID];
    for round in 0..30_000usize {
        if round.is_multiple_of(500) {
            select(&mut k, aids[(round / 500) % 3]);
        }
        let len = (rng.next() as usize) % 80;
        let mut raw: Vec<u8> = (0..len).map(|_| rng.next()).collect();
        // Mostly well-formed headers with random bodies, to reach the applets.
        if raw.len() >= 5 && !rng.next().is_multiple_of(4) {
            raw[0] = if rng.next().is_multiple_of(8) {
                0x10
            } else {
                0
            };
            let ins = [
                0x01, 0x02, 0x03, 0x04, 0x05, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0x1D, 0xF8,
            ];
            raw[1] = ins[rng.next() as usize % ins.len()];
            raw[4] = (raw.len() - 5) as u8;
        }
        let r = k.process(&raw);
        assert!(r.len() >= 2);
    }
    // Every prefix of valid commands.
    select_oath(&mut k);
    for full in [
        apdu(
            0x01,
            0,
            0,
            &put_data(b"p", 0x21, 6, SHA1_SEED, true, Some(3)),
        ),
        apdu(0x05, 0, 0, &[0x71, 1, b'p', 0x71, 1, b'q']),
        apdu(0xA2, 0, 1, &calc_data(b"p", &[0; 8])),
        apdu(0xA3, 0, 0, &[0x75, 20, 0, 0x74, 8, 0]),
        apdu(0x03, 0, 0, &set_code_data(&[1; 16], &[2; 8])),
    ] {
        for n in 0..full.len() {
            assert!(k.process(&full[..n]).len() >= 2);
            // Same bytes with a corrected Lc: truncated TLVs inside.
            if n > 5 {
                let mut t = full[..n].to_vec();
                t[4] = (n - 5) as u8;
                assert!(k.process(&t).len() >= 2);
            }
        }
    }
}

#[test]
fn parameters_and_challenges_are_checked_as_yubicos_applet_does() {
    let mut k = key();
    select_oath(&mut k);
    put(&mut k, b"t", 0x21, 6, SHA1_SEED, false);
    put(&mut k, b"h", 0x11, 6, SHA1_SEED, false);
    // P1 P2 must be 00 00 (CALCULATE: P2 00 or 01).
    let d = put_data(b"x", 0x21, 6, SHA1_SEED, false, None);
    assert_eq!(sw(&mut k, &apdu(0x01, 0, 1, &d)), 0x6B00);
    assert_eq!(sw(&mut k, &apdu(0xA1, 1, 0, &[])), 0x6B00);
    assert_eq!(
        sw(&mut k, &apdu(0xA2, 1, 1, &calc_data(b"t", &[0; 8]))),
        0x6B00
    );
    let mut c = Vec::new();
    tlv::push(&mut c, 0x74, &[0; 8]);
    assert_eq!(sw(&mut k, &apdu(0xA4, 0, 2, &c)), 0x6B00);
    // TOTP challenges of 1 to 64 bytes.
    assert_eq!(calc(&mut k, b"t", &[]), Err(0x6A80));
    assert_eq!(calc(&mut k, b"t", &[0; 65]), Err(0x6A80));
    assert!(calc(&mut k, b"t", &[0; 64]).is_ok());
    assert_eq!(sw(&mut k, &apdu(0xA4, 0, 1, &[0x74, 0])), 0x6A80);
    // HOTP still wants the (empty) challenge tag, as ykman sends it.
    let mut only_name = Vec::new();
    tlv::push(&mut only_name, 0x71, b"h");
    assert_eq!(sw(&mut k, &apdu(0xA2, 0, 1, &only_name)), 0x6A80);
    assert_eq!(k.oath_credentials()[1].counter, 0);
    // VALIDATE wants a host challenge of at least 8 bytes.
    let salt = k.oath_salt();
    let access = derive("pw", &salt);
    sw(&mut k, &apdu(0x03, 0, 0, &set_code_data(&access, &[1; 8])));
    let chal = tag(&select_oath(&mut k), 0x74).unwrap();
    let mut v = Vec::new();
    tlv::push(&mut v, 0x75, &hmac_sha1(&access, &chal));
    tlv::push(&mut v, 0x74, &[7; 4]);
    assert_eq!(sw(&mut k, &apdu(0xA3, 0, 0, &v)), 0x6A80);
    assert_eq!(validate(&mut k, &access, &chal).1, 0x9000);
}
