//! The key's whole life end to end: `enroll user --backup`, `inventory`,
//! `revoke`, `replace`, `resync`, `offboard` and `recover`, the real binary
//! against `virtual-yubikey` cards through pcscd and moto behind the
//! code-checking proxy (which, like AWS, refuses codes that are not the
//! seed's, and a code it has already accepted).
//!
//! Each test works in AWS accounts of its own (STS AssumeRole into a fresh
//! account id: moto files what the role's credentials make under it), so an
//! inventory or a revoke sees only that test's devices. Every test ends
//! with a scan for every seed the proxy issued in its accounts.

mod common;
#[path = "support/iam_env.rs"]
mod iam_env;

use aws_sdk_iam::config::{Credentials, SharedCredentialsProvider};
use common::oath::{add, ids};
use common::{random_serial, totp, Algo, Running, Scenario, Seed, Slot, VirtualKey};
use iam_env::{block_on, endpoint, fault_matching, unique};
use serde_json::{json, Value};
use std::time::Duration;

fn moto() -> String {
    std::env::var("MFAKEY_TEST_MOTO_ENDPOINT").expect("MFAKEY_TEST_MOTO_ENDPOINT: run tests/run.sh")
}

/// A fresh AWS account: its id, the role mfakey assumes into it, and the
/// assumed role's credentials.
struct Acct {
    id: String,
    key_id: String,
    secret: String,
    token: String,
    /// Straight to moto: setup and inspection.
    raw: aws_sdk_iam::Client,
    /// Through the proxy (which remembers seeds and tags of what it creates).
    proxied: aws_sdk_iam::Client,
}

impl Acct {
    fn new() -> Acct {
        let n = u64::from(random_serial()) * 13 % 1_000_000_000;
        let id = format!("{:012}", 600_000_000_000u64 + n);
        let role = format!("arn:aws:iam::{id}:role/mfakey-lifecycle");
        let (key_id, secret, token) = block_on(async {
            let config = iam_env::test_sdk_config(&moto(), 1).await;
            let out = aws_sdk_sts::Client::new(&config)
                .assume_role()
                .role_arn(&role)
                .role_session_name("mfakey-lifecycle-test")
                .send()
                .await
                .expect("AssumeRole on moto");
            let c = out.credentials.expect("credentials");
            (c.access_key_id, c.secret_access_key, c.session_token)
        });
        let creds = Credentials::new(&key_id, &secret, Some(token.clone()), None, "assumed");
        let client = |url: String| {
            let creds = creds.clone();
            aws_sdk_iam::Client::new(&block_on(async move {
                iam_env::test_sdk_config(&url, 1)
                    .await
                    .into_builder()
                    .credentials_provider(SharedCredentialsProvider::new(creds))
                    .build()
            }))
        };
        Acct {
            raw: client(moto()),
            proxied: client(endpoint()),
            id,
            key_id,
            secret,
            token,
        }
    }

    fn role(&self) -> String {
        format!("arn:aws:iam::{}:role/mfakey-lifecycle", self.id)
    }

    /// mfakey with this account's credentials.
    fn scenario(&self) -> Scenario {
        let mut sc = Scenario::new();
        sc.set_env("AWS_ACCESS_KEY_ID", &self.key_id);
        sc.set_env("AWS_SECRET_ACCESS_KEY", &self.secret);
        sc.set_env("AWS_SESSION_TOKEN", &self.token);
        sc.set_env("AWS_REGION", "us-east-1");
        sc.set_env("AWS_ENDPOINT_URL", endpoint());
        sc
    }

    fn user(&self, prefix: &str) -> String {
        let name = unique(prefix);
        block_on(self.raw.create_user().user_name(&name).send()).expect("CreateUser");
        name
    }

    fn devices(&self, user: &str) -> Vec<String> {
        let out = block_on(self.raw.list_mfa_devices().user_name(user).send()).unwrap();
        let mut v: Vec<String> = out
            .mfa_devices()
            .iter()
            .map(|d| d.serial_number().to_string())
            .collect();
        v.sort();
        v
    }

    fn exists(&self, serial: &str) -> bool {
        iam_env::all_virtual_devices(&self.raw)
            .iter()
            .any(|d| d.serial_number() == serial)
    }

    fn arn(&self, user: &str, key: u32) -> String {
        format!("arn:aws:iam::{}:mfa/{user}-yk{key}", self.id)
    }

    fn cred_id(&self, user: &str) -> String {
        format!("Amazon Web Services:{user}@{}", self.id)
    }
}

/// Several accounts in one scenario: the command line's credentials are
/// moto's default account's (in ~/.aws, so a `--profile` can take over),
/// profile `pN` assumes the role of the Nth account, and `accounts.csv`
/// lists the roles.
fn multi_account(accts: &[&Acct]) -> (Scenario, std::path::PathBuf) {
    let mut sc = Scenario::new();
    sc.set_env("AWS_REGION", "us-east-1");
    sc.set_env("AWS_ENDPOINT_URL", endpoint());
    let aws = sc.home.join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .unwrap();
    let mut config = String::from("[default]\nregion = us-east-1\n");
    let mut csv = String::from("role_arn\n");
    for (i, a) in accts.iter().enumerate() {
        config.push_str(&format!(
            "[profile p{i}]\nrole_arn = {}\nsource_profile = default\nregion = us-east-1\n",
            a.role()
        ));
        csv.push_str(&format!("{}\n", a.role()));
    }
    std::fs::write(aws.join("config"), config).unwrap();
    let file = sc.input_file("accounts.csv", csv.as_bytes());
    (sc, file)
}

/// Every proxy log entry (enables, resyncs, deactivations), in order.
fn proxy_log() -> Vec<Value> {
    let (status, text) = iam_env::control("GET", "/__proxy__/enables", "");
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("JSON array")
}

fn log_of(serial: &str) -> Vec<Value> {
    proxy_log()
        .into_iter()
        .filter(|e| e["serial"] == serial)
        .collect()
}

/// The step the proxy accepted `serial`'s enable at.
fn enabled_step(serial: &str) -> u64 {
    log_of(serial)
        .iter()
        .find(|e| e["action"] == "EnableMFADevice" && e["accepted"] == true)
        .and_then(|e| e["step"].as_u64())
        .unwrap_or_else(|| panic!("no accepted enable of {serial}: {:?}", log_of(serial)))
}

/// Waits (at most a step) until the host clock is past TOTP step `step`:
/// AWS takes no code of that step or before again.
fn wait_past(step: u64) {
    while common::now() / 30 <= step {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The scenario's end: no seed the proxy issued in these accounts, nor
/// any of `extra`, in any output or file.
fn assert_no_seeds(sc: &mut Scenario, accts: &[&Acct], extra: &[&Seed]) {
    let seeds: Vec<Seed> = iam_env::issued_seeds()
        .into_iter()
        .filter(|(serial, _)| accts.iter().any(|a| serial.contains(&a.id)))
        .map(|(_, b)| Seed::from_bytes(&b))
        .collect();
    assert!(!seeds.is_empty());
    let mut all: Vec<&Seed> = seeds.iter().collect();
    all.extend_from_slice(extra);
    sc.assert_no_secret(&all);
}

/// The seed the proxy issued for `serial`.
fn seed_of(serial: &str) -> Seed {
    let (_, b) = iam_env::issued_seeds()
        .into_iter()
        .find(|(s, _)| s == serial)
        .unwrap_or_else(|| panic!("no seed issued for {serial}"));
    Seed::from_bytes(&b)
}

/// ykman's code for `id` on `reader` equals the TOTP code of `seed`.
fn key_gives_codes_of(sc: &Scenario, reader: &str, id: &str, seed: &Seed) {
    for attempt in 0..3 {
        let t0 = common::now();
        let r = sc.ykman(reader, &["oath", "accounts", "code", "-s", id]);
        let code = r.success().stdout.trim().to_string();
        if t0 / 30 == common::now() / 30 {
            assert_eq!(code, totp(seed, Algo::Sha1, 6, 30, t0), "{id} on {reader}");
            return;
        }
        assert!(attempt < 2, "the clock kept crossing a step");
    }
}

fn enroll(sc: &mut Scenario, reader: &str, user: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--json", "--reader", reader, "enroll", "user", user];
    args.extend_from_slice(extra);
    sc.mfakey(&args).ok()
}

fn serials(v: &Value) -> Vec<(Option<u64>, Vec<String>)> {
    v["inventory"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let users = k["devices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["user"].as_str().unwrap_or("-").to_string())
                .collect();
            (k["key_serial"].as_u64(), users)
        })
        .collect()
}

#[test]
fn alice_gets_a_backup_then_inventory_revoke_and_resync_follow_the_keys() {
    let acct = Acct::new();
    let mut sc = acct.scenario();
    let alice = acct.user("alice");
    let slots = Slot::acquire_many(2);
    let (s1, s2) = (random_serial(), random_serial());
    let k1 = VirtualKey::start(&slots[0], &["--serial", &s1.to_string()]);
    let k2 = VirtualKey::start(&slots[1], &["--serial", &s2.to_string()]);
    let (r1, r2) = (slots[0].reader, slots[1].reader);

    // A primary and a backup in one sitting.
    let v = enroll(&mut sc, r1, &alice, &["--backup", "--backup-reader", r2]);
    assert_eq!(v["enrolled"]["key_serial"], json!(s1), "{v}");
    assert_eq!(v["backup"]["key_serial"], json!(s2), "{v}");
    let (d1, d2) = (acct.arn(&alice, s1), acct.arn(&alice, s2));
    assert_eq!(acct.devices(&alice), {
        let mut v = vec![d1.clone(), d2.clone()];
        v.sort();
        v
    });
    for d in [&d1, &d2] {
        assert!(
            log_of(d).iter().all(|e| e["accepted"] == true),
            "{:?}",
            log_of(d)
        );
    }
    // Each key gives its own device's codes (ykman reads them).
    let id = acct.cred_id(&alice);
    key_gives_codes_of(&sc, r1, &id, &seed_of(&d1));
    key_gives_codes_of(&sc, r2, &id, &seed_of(&d2));

    // The inventory shows both keys, and nobody on a single key.
    let inv = sc.mfakey(&["--json", "inventory"]).ok();
    let mut want = vec![
        (Some(u64::from(s1)), vec![alice.clone()]),
        (Some(u64::from(s2)), vec![alice.clone()]),
    ];
    want.sort();
    assert_eq!(serials(&inv), want, "{inv}");
    assert_eq!(inv["inventory"]["single_key_users"], json!([]), "{inv}");
    assert!(inv["inventory"]["keys"][0]["devices"][0]["enable_date"].is_string());

    // The primary is lost: revoked; alice keeps the backup, nobody is named.
    let v = sc
        .mfakey(&["--json", "revoke", "--key-serial", &s1.to_string(), "--yes"])
        .ok();
    assert_eq!(v["revoke"]["devices"][0]["device_arn"], d1.as_str(), "{v}");
    assert_eq!(v["revoke"]["without_mfa"], json!([]), "{v}");
    assert_eq!(acct.devices(&alice), std::slice::from_ref(&d2));
    assert!(!acct.exists(&d1));
    let inv = sc.mfakey(&["--json", "inventory"]).ok();
    assert_eq!(
        inv["inventory"]["single_key_users"],
        json!([{ "account_id": acct.id, "user": alice, "key_serial": s2 }])
    );

    // Resync the backup: two codes at once, through the code-checking proxy
    // (once the step of its enable is over: AWS takes a code only once).
    wait_past(enabled_step(&d2));
    let v = sc
        .mfakey(&["--json", "--reader", r2, "resync", &alice])
        .ok();
    assert_eq!(v["resynced"]["device_arn"], d2.as_str(), "{v}");
    let resyncs: Vec<Value> = log_of(&d2)
        .into_iter()
        .filter(|e| e["action"] == "ResyncMFADevice")
        .collect();
    assert_eq!(resyncs.last().unwrap()["accepted"], true, "{resyncs:?}");

    // Revoking the only key alice has left names her.
    let v = sc
        .mfakey(&["--json", "revoke", "--key-serial", &s2.to_string(), "--yes"])
        .ok();
    assert_eq!(
        v["revoke"]["without_mfa"],
        json!([{ "account_id": acct.id, "user": alice }]),
        "{v}"
    );
    assert!(acct.devices(&alice).is_empty());
    sc.record_key(&k1);
    sc.record_key(&k2);
    assert_no_seeds(&mut sc, &[&acct], &[]);
}

#[test]
fn a_backup_by_swapping_keys_and_a_backup_not_made_says_the_first_stands() {
    let acct = Acct::new();
    let mut sc = acct.scenario();
    let (carol, dave) = (acct.user("carol"), acct.user("dave"));
    let slot = Slot::acquire();
    let (s1, s2, s3) = (random_serial(), random_serial(), random_serial());
    let mut k1 = VirtualKey::start(&slot, &["--serial", &s1.to_string()]);
    let args = [
        "--json",
        "--reader",
        slot.reader,
        "enroll",
        "user",
        &carol,
        "--backup",
    ];
    let mut run = sc.spawn_mfakey(&args, b"");
    assert!(
        run.wait_stderr("Insert a backup key", Duration::from_secs(30)),
        "{}",
        run.stderr_now()
    );
    // The first key goes out, the backup comes into the same reader.
    sc.record_key(&k1);
    k1.stop();
    let k2 = VirtualKey::start(&slot, &["--serial", &s2.to_string()]);
    let r = sc.record(&run.finish());
    let v = r.ok();
    assert_eq!(v["backup"]["key_serial"], json!(s2), "{v}");
    assert_eq!(acct.devices(&carol).len(), 2);
    sc.record_key(&k2);
    drop(k2);

    // Ctrl-C while mfakey waits for dave's backup: exit 10, and it says
    // plainly that the first key is enrolled.
    let k3 = VirtualKey::start(&slot, &["--serial", &s3.to_string()]);
    let args = [
        "--json",
        "--reader",
        slot.reader,
        "enroll",
        "user",
        &dave,
        "--backup",
    ];
    let mut run = sc.spawn_mfakey(&args, b"");
    assert!(
        run.wait_stderr("Insert a backup key", Duration::from_secs(30)),
        "{}",
        run.stderr_now()
    );
    // SAFETY: SIGINT to the mfakey this test started.
    unsafe { libc::kill(run.pid() as libc::pid_t, libc::SIGINT) };
    let r = sc.record(&run.finish());
    let msg = r.err(10, "backup_not_enrolled");
    assert!(
        msg.contains(&format!("IS enrolled on the first key {s3}")),
        "{msg}"
    );
    assert_eq!(acct.devices(&dave), [acct.arn(&dave, s3)]);
    sc.record_key(&k3);
    assert_no_seeds(&mut sc, &[&acct], &[]);
}

/// Waits until `run`'s stderr holds `text` `n` times.
fn wait_stderr_count(run: &mut Running, text: &str, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while run.stderr_now().matches(text).count() < n {
        assert!(
            std::time::Instant::now() < deadline && !run.exited(),
            "{text} x{n}: {}",
            run.stderr_now()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_backup_key_pulled_mid_enrollment_leaves_the_first_and_recover_cleans_up() {
    let acct = Acct::new();
    let mut sc = acct.scenario();
    let erin = acct.user("erin");
    let slots = Slot::acquire_many(2);
    let (s1, s2) = (random_serial(), random_serial());
    let state = sc.dir().join("backup-card.json");
    let state = state.to_str().unwrap().to_string();
    let k1 = VirtualKey::start(&slots[0], &["--serial", &s1.to_string()]);
    let s2t = s2.to_string();
    let delayed = [
        "--serial",
        &s2t,
        "--state",
        &state,
        "--touch",
        "delay-ms=5000",
    ];
    let mut k2 = VirtualKey::start(&slots[1], &delayed);
    let (r1, r2) = (slots[0].reader, slots[1].reader);
    let args = [
        "--json",
        "--reader",
        r1,
        "enroll",
        "user",
        &erin,
        "--touch",
        "--backup",
        "--backup-reader",
        r2,
    ];
    let mut run = sc.spawn_mfakey(&args, b"");
    // The first key's two touches, then the backup's first.
    wait_stderr_count(&mut run, "Touch your YubiKey (1 of 2)", 2);
    sc.record_key(&k2);
    k2.yank();
    let r = sc.record(&run.finish());
    let msg = r.err(7, "rollback_incomplete");
    assert!(
        msg.contains(&format!("IS enrolled on the first key {s1}")),
        "{msg}"
    );
    assert!(msg.contains("mfakey recover"), "{msg}");
    assert_eq!(acct.devices(&erin), [acct.arn(&erin, s1)]);
    assert!(!acct.exists(&acct.arn(&erin, s2)));

    // The backup key back: recover takes its stale credential off.
    let k2 = VirtualKey::start(&slots[1], &["--serial", &s2t, "--state", &state]);
    assert_eq!(ids(&mut sc, r2, &[]), [acct.cred_id(&erin)]);
    let v = sc.mfakey(&["--json", "--reader", r2, "recover"]).ok();
    assert_eq!(v["runs"][0]["outcome"], "rolled_back", "{v}");
    assert!(ids(&mut sc, r2, &[]).is_empty());
    assert_eq!(acct.devices(&erin), [acct.arn(&erin, s1)]);
    sc.record_key(&k1);
    sc.record_key(&k2);
    assert_no_seeds(&mut sc, &[&acct], &[]);
}

/// Enrolls `user` of account `n` (profile `pN`) on the key in `reader`.
fn enroll_in(sc: &mut Scenario, reader: &str, user: &str, n: usize) {
    enroll(sc, reader, user, &["--profile", &format!("p{n}")]);
}

#[test]
fn replace_moves_every_user_of_a_key_in_two_accounts_with_no_moment_without_mfa() {
    let (a, b) = (Acct::new(), Acct::new());
    let (mut sc, accounts) = multi_account(&[&a, &b]);
    let accounts = accounts.to_str().unwrap();
    let (ann, ben, cal) = (a.user("ann"), a.user("ben"), b.user("cal"));
    let slots = Slot::acquire_many(2);
    let (old, new) = (random_serial(), random_serial());
    let k_old = VirtualKey::start(&slots[0], &["--serial", &old.to_string()]);
    let k_new = VirtualKey::start(&slots[1], &["--serial", &new.to_string()]);
    let (r_old, r_new) = (slots[0].reader, slots[1].reader);
    enroll_in(&mut sc, r_old, &ann, 0);
    enroll_in(&mut sc, r_old, &ben, 0);
    enroll_in(&mut sc, r_old, &cal, 1);

    // The inventory spans both accounts; all three are on a single key.
    let csv = sc.home.join("inventory.csv");
    let csv_arg = csv.to_str().unwrap();
    let inv = sc
        .mfakey(&[
            "--json",
            "inventory",
            "--accounts",
            accounts,
            "--csv",
            csv_arg,
        ])
        .ok();
    assert_eq!(inv["inventory"]["accounts"], json!([a.id, b.id]), "{inv}");
    assert_eq!(
        inv["inventory"]["single_key_users"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(rows.lines().count(), 4, "{rows}");
    assert!(
        rows.lines()
            .any(|l| l.starts_with(&format!("{},{cal},{old},", b.id))),
        "{rows}"
    );

    // A dry run changes nothing.
    let old_s = old.to_string();
    let args = [
        "--json",
        "--reader",
        r_new,
        "replace",
        "--key-serial",
        &old_s,
        "--accounts",
        accounts,
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let v = sc.mfakey(&dry).ok();
    assert_eq!(
        v["replace"]["plan"]["moves"].as_array().unwrap().len(),
        3,
        "{v}"
    );
    assert_eq!(a.devices(&ann), [a.arn(&ann, old)]);
    // Without a terminal, --yes is needed.
    sc.mfakey(&args).err(5, "confirmation_needed");

    let mut go = args.to_vec();
    go.push("--yes");
    let v = sc.mfakey(&go).ok();
    let mut moved: Vec<&str> = v["replace"]["moved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"].as_str().unwrap())
        .collect();
    moved.sort();
    let mut want = [ann.as_str(), ben.as_str(), cal.as_str()];
    want.sort();
    assert_eq!(moved, want, "{v}");
    assert_eq!(v["replace"]["without_mfa"], json!([]));
    for (acct, u) in [(&a, &ann), (&a, &ben), (&b, &cal)] {
        assert_eq!(acct.devices(u), [acct.arn(u, new)]);
        assert!(!acct.exists(&acct.arn(u, old)));
        // The proxy saw the new device enabled before the old one went.
        let log = proxy_log();
        let at = |action: &str, serial: &str| {
            log.iter()
                .position(|e| {
                    e["action"] == action && e["serial"] == serial && e["accepted"] == true
                })
                .unwrap_or_else(|| panic!("no {action} of {serial}"))
        };
        assert!(
            at("EnableMFADevice", &acct.arn(u, new)) < at("DeactivateMFADevice", &acct.arn(u, old)),
            "{u}"
        );
        key_gives_codes_of(&sc, r_new, &acct.cred_id(u), &seed_of(&acct.arn(u, new)));
    }
    sc.record_key(&k_old);
    sc.record_key(&k_new);
    assert_no_seeds(&mut sc, &[&a, &b], &[]);
}

#[test]
fn a_replace_stopped_by_a_pulled_key_is_recovered_then_run_again() {
    let acct = Acct::new();
    let mut sc = acct.scenario();
    let (fay, gus) = (acct.user("fay"), acct.user("gus"));
    let slots = Slot::acquire_many(2);
    let (old, new) = (random_serial(), random_serial());
    let k_old = VirtualKey::start(&slots[0], &["--serial", &old.to_string()]);
    let (r_old, r_new) = (slots[0].reader, slots[1].reader);
    enroll(&mut sc, r_old, &fay, &[]);
    enroll(&mut sc, r_old, &gus, &[]);
    let state = sc.dir().join("new-card.json");
    let state = state.to_str().unwrap().to_string();
    let new_s = new.to_string();
    let delayed = [
        "--serial",
        &new_s,
        "--state",
        &state,
        "--touch",
        "delay-ms=4000",
    ];
    let mut k_new = VirtualKey::start(&slots[1], &delayed);
    let old_s = old.to_string();
    let args = [
        "--json",
        "--reader",
        r_new,
        "replace",
        "--key-serial",
        &old_s,
        "--touch",
        "--yes",
    ];
    let mut run = sc.spawn_mfakey(&args, b"");
    // fay's two touches, then gus's first: the key is pulled.
    wait_stderr_count(&mut run, "Touch your YubiKey (1 of 2)", 2);
    sc.record_key(&k_new);
    k_new.yank();
    let r = sc.record(&run.finish());
    // The report is printed first (who moved), then the error.
    assert_eq!(r.code, Some(7), "{}", r.stderr);
    let mut docs = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap());
    let report = docs.next().unwrap();
    let error = docs.next().unwrap();
    assert_eq!(
        report["replace"]["moved"][0]["user"],
        fay.as_str(),
        "{report}"
    );
    assert_eq!(
        report["replace"]["not_moved"][0]["user"],
        gus.as_str(),
        "{report}"
    );
    assert_eq!(error["error"]["kind"], "rollback_incomplete", "{error}");
    let msg = error["error"]["message"].as_str().unwrap();
    assert!(msg.contains("1 user(s) were not moved"), "{msg}");
    // fay moved (old device gone); gus still on the old key, and only there.
    assert_eq!(acct.devices(&fay), [acct.arn(&fay, new)]);
    assert_eq!(acct.devices(&gus), [acct.arn(&gus, old)]);
    assert!(!acct.exists(&acct.arn(&gus, new)));

    // The key back: recover takes gus's half-made credential off it.
    let k_new = VirtualKey::start(&slots[1], &["--serial", &new_s, "--state", &state]);
    let v = sc.mfakey(&["--json", "--reader", r_new, "recover"]).ok();
    assert_eq!(
        v["lifecycle_enrollments"]["runs"][0]["outcome"], "rolled_back",
        "{v}"
    );
    assert_eq!(ids(&mut sc, r_new, &[]), [acct.cred_id(&fay)]);
    // Run again: gus moves; fay is already on the new key.
    let args = [
        "--json",
        "--reader",
        r_new,
        "replace",
        "--key-serial",
        &old_s,
        "--yes",
    ];
    let v = sc.mfakey(&args).ok();
    assert_eq!(v["replace"]["moved"][0]["user"], gus.as_str(), "{v}");
    assert_eq!(acct.devices(&gus), [acct.arn(&gus, new)]);
    assert_eq!(
        sc.mfakey(&["--json", "recover"]).ok()["runs"],
        json!([]),
        "nothing left to recover"
    );
    sc.record_key(&k_old);
    sc.record_key(&k_new);
    assert_no_seeds(&mut sc, &[&acct], &[]);
}

#[test]
fn revoke_refused_by_aws_or_cut_off_mid_way_is_finished_by_recover() {
    let acct = Acct::new();
    let mut sc = acct.scenario();
    let (hal, ida) = (acct.user("hal"), acct.user("ida"));
    let slot = Slot::acquire();
    let s = random_serial();
    let k = VirtualKey::start(&slot, &["--serial", &s.to_string()]);
    enroll(&mut sc, slot.reader, &hal, &[]);
    let (dh, di) = (acct.arn(&hal, s), acct.arn(&ida, s));
    let s_text = s.to_string();
    let revoke = ["--json", "revoke", "--key-serial", &s_text, "--yes"];

    // Access denied on the deactivation: nothing changed, nothing to recover.
    fault_matching(
        "DeactivateMFADevice",
        "access_denied",
        1,
        json!({ "SerialNumber": dh }),
        0,
    );
    let msg = sc.mfakey(&revoke).err(6, "access_denied");
    assert!(msg.contains("iam:DeactivateMFADevice"), "{msg}");
    assert_eq!(acct.devices(&hal), std::slice::from_ref(&dh));
    assert_eq!(sc.mfakey(&["--json", "recover"]).ok()["runs"], json!([]));

    // The dry run names both as left without MFA and changes nothing.
    enroll(&mut sc, slot.reader, &ida, &[]);
    let v = sc
        .mfakey(&["--json", "revoke", "--key-serial", &s_text, "--dry-run"])
        .ok();
    assert_eq!(
        v["revoke"]["left_without_mfa"].as_array().unwrap().len(),
        2,
        "{v}"
    );
    assert_eq!(acct.devices(&hal), std::slice::from_ref(&dh));

    // IAM gone while deleting ida's device (every retry dropped): ida's is
    // deactivated but not deleted; the journal keeps the run.
    fault_matching(
        "DeleteVirtualMFADevice",
        "drop",
        5,
        json!({ "SerialNumber": di }),
        0,
    );
    let msg = sc.mfakey(&revoke).err(6, "endpoint_unreachable");
    assert!(msg.contains("mfakey recover"), "{msg}");
    assert!(acct.devices(&ida).is_empty() && acct.exists(&di));

    let v = sc.mfakey(&["--json", "recover"]).ok();
    assert_eq!(v["lifecycle"]["runs"][0]["outcome"], "finished", "{v}");
    assert!(!acct.exists(&di) && !acct.exists(&dh));
    assert!(acct.devices(&hal).is_empty());
    assert_eq!(sc.mfakey(&["--json", "recover"]).ok()["runs"], json!([]));
    sc.record_key(&k);
    assert_no_seeds(&mut sc, &[&acct], &[]);
}

#[test]
fn resync_needs_fresh_codes_the_key_present_and_iam_reachable() {
    let acct = Acct::new();
    let mut sc = acct.scenario();
    let jo = acct.user("jo");
    let slot = Slot::acquire();
    let s = random_serial();
    let state = sc.dir().join("card.json");
    let state = state.to_str().unwrap().to_string();
    let st = s.to_string();
    let mut k = VirtualKey::start(&slot, &["--serial", &st, "--state", &state]);
    enroll(&mut sc, slot.reader, &jo, &["--touch"]);
    let d = acct.arn(&jo, s);
    let resync = ["--json", "--reader", slot.reader, "resync", &jo];

    // Right after the enable: every pair holds a code AWS took already.
    // (Within the enable's step; otherwise the first pair is fresh.)
    let step = enabled_step(&d);
    if common::now() / 30 == step {
        let msg = sc.mfakey(&resync).err(6, "invalid_authentication_code");
        assert!(msg.contains("run this again in 30 s"), "{msg}");
        let refused: Vec<Value> = log_of(&d)
            .into_iter()
            .filter(|e| e["action"] == "ResyncMFADevice")
            .collect();
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused
            .iter()
            .all(|e| e["accepted"] == false
                && e["reason"].as_str().unwrap().contains("already used")));
    }
    wait_past(step);
    // AWS unreachable, then refusing: AWS's kind each time.
    fault_matching("ResyncMFADevice", "drop", 5, json!({ "UserName": jo }), 0);
    sc.mfakey(&resync).err(6, "endpoint_unreachable");
    fault_matching(
        "ResyncMFADevice",
        "access_denied",
        1,
        json!({ "UserName": jo }),
        0,
    );
    let msg = sc.mfakey(&resync).err(6, "access_denied");
    assert!(msg.contains("iam:ResyncMFADevice"), "{msg}");
    // The key pulled while it waits for a touch.
    k.stop();
    let delayed = [
        "--serial",
        &st,
        "--state",
        &state,
        "--touch",
        "delay-ms=5000",
    ];
    let mut k = VirtualKey::start(&slot, &delayed);
    let mut run = sc.spawn_mfakey(&resync, b"");
    assert!(run.wait_stderr("Touch your YubiKey (1 of 2)", Duration::from_secs(20)));
    sc.record_key(&k);
    k.yank();
    sc.record(&run.finish()).err(3, "key_removed");
    // Back, and fresh codes: accepted.
    let k = VirtualKey::start(&slot, &["--serial", &st, "--state", &state]);
    let v = sc.mfakey(&resync).ok();
    assert_eq!(v["resynced"]["device_arn"], d.as_str(), "{v}");
    assert_eq!(acct.devices(&jo), std::slice::from_ref(&d));
    sc.record_key(&k);
    assert_no_seeds(&mut sc, &[&acct], &[]);
}

#[test]
fn offboard_removes_every_device_and_only_the_credential_aws_vouches_for() {
    let acct = Acct::new();
    let mut sc = acct.scenario();
    let olga = acct.user("olga");
    let slot = Slot::acquire();
    let s = random_serial();
    let k = VirtualKey::start(&slot, &["--serial", &s.to_string()]);
    enroll(&mut sc, slot.reader, &olga, &[]);
    let ours = acct.arn(&olga, s);
    // A device mfakey did not make, enabled in moto directly.
    let theirs = block_on(
        acct.raw
            .create_virtual_mfa_device()
            .virtual_mfa_device_name(unique("olga-phone"))
            .send(),
    )
    .unwrap()
    .virtual_mfa_device()
    .unwrap()
    .serial_number()
    .to_string();
    block_on(
        acct.raw
            .enable_mfa_device()
            .user_name(&olga)
            .serial_number(&theirs)
            .authentication_code1("123456")
            .authentication_code2("654321")
            .send(),
    )
    .unwrap();
    // A credential named for olga whose seed is no device of hers.
    let stranger = Seed::random(20);
    let other_id = format!("Amazon Web Services:{olga}@elsewhere");
    let other_id = other_id.as_str();
    add(&mut sc, slot.reader, other_id, &stranger, &[]);
    let offboard = ["--json", "--reader", slot.reader, "offboard", &olga];

    // Without a terminal, --yes is needed; AWS refusing the listing: its
    // kind, nothing changed.
    sc.mfakey(&offboard).err(5, "confirmation_needed");
    fault_matching(
        "ListMFADevices",
        "access_denied",
        1,
        json!({ "UserName": olga }),
        0,
    );
    let mut yes = offboard.to_vec();
    yes.push("--yes");
    sc.mfakey(&yes).err(6, "access_denied");
    assert_eq!(acct.devices(&olga).len(), 2);

    wait_past(enabled_step(&ours));
    let v = sc.mfakey(&yes).ok();
    let r = &v["offboard"];
    assert_eq!(r["remaining"], json!([]), "{v}");
    assert_eq!(r["devices"].as_array().unwrap().len(), 2, "{v}");
    assert!(acct.devices(&olga).is_empty());
    assert!(!acct.exists(&ours) && !acct.exists(&theirs));
    let creds = r["credentials"].as_array().unwrap();
    let find = |id: &str| {
        creds
            .iter()
            .find(|c| c["credential_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(find(&acct.cred_id(&olga))["deleted"], true, "{v}");
    assert_eq!(find(other_id)["deleted"], false, "{v}");
    assert_eq!(ids(&mut sc, slot.reader, &[]), [other_id]);
    sc.record_key(&k);
    assert_no_seeds(&mut sc, &[&acct], &[&stranger]);
}

#[test]
fn the_proxy_resyncs_as_aws_does() {
    let acct = Acct::new();
    let pat = acct.user("pat");
    let dev = block_on(
        acct.proxied
            .create_virtual_mfa_device()
            .virtual_mfa_device_name(unique("pat"))
            .send(),
    )
    .unwrap();
    let d = dev
        .virtual_mfa_device()
        .unwrap()
        .serial_number()
        .to_string();
    let seed = seed_of(&d);
    let code = |step: u64| totp(&seed, Algo::Sha1, 6, 30, step * 30);
    let call = |user: &str, api: &str, s: u64| {
        let c1 = code(s - 1);
        let c2 = code(s);
        block_on(async {
            let r = if api == "enable" {
                acct.proxied
                    .enable_mfa_device()
                    .user_name(user)
                    .serial_number(&d)
                    .authentication_code1(c1)
                    .authentication_code2(c2)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        aws_sdk_iam::error::ProvideErrorMetadata::code(&e).map(str::to_string)
                    })
            } else {
                acct.proxied
                    .resync_mfa_device()
                    .user_name(user)
                    .serial_number(&d)
                    .authentication_code1(c1)
                    .authentication_code2(c2)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        aws_sdk_iam::error::ProvideErrorMetadata::code(&e).map(str::to_string)
                    })
            };
            r
        })
    };
    let s = common::now() / 30;
    let refused = Err(Some("InvalidAuthenticationCode".to_string()));
    // Not enabled yet: no such device for the user.
    assert_eq!(call(&pat, "resync", s), Err(Some("NoSuchEntity".into())));
    call(&pat, "enable", s).unwrap();
    let s = enabled_step(&d);
    // Wrong codes, and codes already used, are refused.
    assert_eq!(call(&pat, "resync", s + 40), refused);
    assert_eq!(call(&pat, "resync", s), refused);
    assert_eq!(call(&pat, "resync", s + 1), refused);
    // Another user's: no such device for them.
    let other = acct.user("other");
    wait_past(s);
    assert_eq!(
        call(&other, "resync", s + 2),
        Err(Some("NoSuchEntity".into()))
    );
    // The next fresh pair goes through once.
    call(&pat, "resync", s + 2).unwrap();
    assert_eq!(call(&pat, "resync", s + 2), refused);
    let reasons: Vec<String> = log_of(&d)
        .iter()
        .filter(|e| e["accepted"] == false)
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reasons
            .iter()
            .filter(|r| r.contains("already used"))
            .count()
            >= 3,
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("not enabled for the user")),
        "{reasons:?}"
    );
}

/// The next `--json` event line of `run` after `seen` lines for which
/// `want` holds (the lines passed on the way are skipped).
fn next_event(run: &mut Running, seen: &mut usize, want: &dyn Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = run.stdout_now();
        let complete: Vec<&str> = out
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .collect();
        while *seen < complete.len() {
            let v: Value = serde_json::from_str(complete[*seen]).expect("a JSON line");
            *seen += 1;
            if want(&v) {
                return v;
            }
        }
        assert!(
            std::time::Instant::now() < deadline && !run.exited(),
            "no such event; stdout:\n{out}\nstderr:\n{}",
            run.stderr_now()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn bulk_with_two_keys_a_user_asks_for_the_backup_and_refuses_the_first_key_again() {
    let acct = Acct::new();
    let mut sc = acct.scenario();
    let (uma, vic) = (acct.user("uma"), acct.user("vic"));
    let m = sc.input_file(
        "manifest.csv",
        format!("user,keys\n{uma},2\n{vic},1\n").as_bytes(),
    );
    let journal = sc.home.join("bulk.jsonl");
    let slot = Slot::acquire();
    let (s1, s2, s3) = (random_serial(), random_serial(), random_serial());
    let args = [
        "--json",
        "--reader",
        slot.reader,
        "bulk",
        m.to_str().unwrap(),
        "--journal",
        journal.to_str().unwrap(),
    ];
    let mut run = sc.spawn_mfakey(&args, b"");
    let mut seen = 0;
    // uma's first key, then her backup: the first key again is refused.
    let keys = [
        (s1, "enrolled"),
        (s1, "key_skipped"),
        (s2, "enrolled"),
        (s3, "enrolled"),
    ];
    for (serial, outcome) in keys {
        let mut k = VirtualKey::start(&slot, &["--serial", &serial.to_string()]);
        let v = next_event(&mut run, &mut seen, &|v| v["event"] == outcome);
        if outcome == "key_skipped" {
            let reason = v["reason"].as_str().unwrap();
            assert!(
                reason.contains(&format!("already used in this run (for {uma})")),
                "{v}"
            );
        } else {
            assert_eq!(v["key_serial"], json!(serial), "{v}");
        }
        next_event(&mut run, &mut seen, &|v| v["event"] == "remove_key");
        sc.record_key(&k);
        k.stop();
    }
    let r = sc.record(&run.finish());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let events: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let nexts: Vec<(&str, bool)> = events
        .iter()
        .filter(|e| e["event"] == "next")
        .map(|e| (e["user"].as_str().unwrap(), e["backup"] == true))
        .collect();
    assert_eq!(
        nexts,
        [
            (uma.as_str(), false),
            (uma.as_str(), true),
            (uma.as_str(), true),
            (vic.as_str(), false)
        ]
    );
    let summary = events.last().unwrap();
    let lines: Vec<(String, u64)> = summary["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["user"].as_str().unwrap().to_string(),
                u["key_serial"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (uma.clone(), u64::from(s1)),
            (uma.clone(), u64::from(s2)),
            (vic.clone(), u64::from(s3))
        ]
    );
    let mut want = vec![acct.arn(&uma, s1), acct.arn(&uma, s2)];
    want.sort();
    assert_eq!(acct.devices(&uma), want);
    assert_eq!(acct.devices(&vic), [acct.arn(&vic, s3)]);
    assert_no_seeds(&mut sc, &[&acct], &[]);
}
