//! The undo engine on the real stack: `recover`, `bulk --resume` and a
//! failed `enroll --force` touch only what mfakey can prove it made.
//! Journals someone else could have written, journals of another account,
//! and journals of an enrollment still in flight are refused; a credential
//! being replaced keeps working whatever happens to the key mid-way.

mod common;
#[path = "support/iam_env.rs"]
mod iam_env;
#[path = "support/moto_iam.rs"]
mod moto_iam;

use common::oath::{add, code_str, ids};
use common::{now, random_serial, totp, Algo, Scenario, Seed, Slot, VirtualKey};
use iam_env::{endpoint, proxy_lock};
use moto_iam::Iam;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// moto's account: every test credential is in it.
const ACCOUNT: &str = "123456789012";

/// A journal file as mfakey writes them (0600, this user's), holding `lines`.
fn write_journal(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The journal lines of an enrollment killed right after its device was
/// created: the device `serial` of `user` in `account`.
fn planted_run(user: &str, serial: &str, account: &str) -> Vec<Value> {
    let name = serial.rsplit('/').next().unwrap();
    let base = json!({
        "ts": 1, "run": "0123456789abcdef", "user": user, "account_id": account,
        "device_name": name, "key_serial": 1234,
        "credential_id": format!("Amazon Web Services:{user}@{account}"),
    });
    let mut begin = base.clone();
    begin["event"] = json!("begin");
    let mut created = base;
    created["event"] = json!("created");
    created["device_serial"] = json!(serial);
    vec![begin, created]
}

/// A device made with the AWS API directly (no mfakey tags) and enabled for
/// a new user: another administrator's, say.
fn someone_elses_device(iam: &Iam, prefix: &str) -> (String, String) {
    let user = iam.create_user(prefix);
    let serial = iam.create_device(&format!("{user}-phone"), &[]);
    iam.enable(&user, &serial);
    assert_eq!(iam.user_devices(&user), std::slice::from_ref(&serial));
    (user, serial)
}

fn journal_in(sc: &Scenario, name: &str) -> PathBuf {
    sc.home.join(name)
}

#[test]
fn recover_leaves_a_device_mfakey_did_not_make() {
    let _l = proxy_lock();
    let iam = Iam::new();
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let (user, serial) = someone_elses_device(&iam, "planted");
    let journal = journal_in(&sc, "planted.jsonl");
    write_journal(&journal, &planted_run(&user, &serial, ACCOUNT));
    let j = journal.to_str().unwrap();
    let r = sc.mfakey(&["--json", "recover", "--journal", j]);
    let msg = r.err(5, "undo_refused");
    assert!(msg.contains("mfakey:run"), "{msg}");
    assert!(msg.contains(&serial), "{msg}");
    // Still there and still enabled.
    assert_eq!(iam.user_devices(&user), std::slice::from_ref(&serial));
    // Asking again changes nothing either.
    sc.mfakey(&["--json", "recover", "--journal", j])
        .err(5, "undo_refused");
    assert_eq!(iam.user_devices(&user), [serial]);
    sc.assert_no_secret(&[]);
}

#[test]
fn bulk_resume_leaves_a_device_mfakey_did_not_make() {
    let _l = proxy_lock();
    let iam = Iam::new();
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let (user, serial) = someone_elses_device(&iam, "bulkplant");
    let manifest = sc.home.join("staff.csv");
    std::fs::write(&manifest, format!("user\n{user}\n")).unwrap();
    let bulk = sc.home.join("staff.csv.journal.jsonl");
    let start =
        json!({"ts": 1, "bulk_run": "feedfeedfeedfeed", "mark": "start", "detail": "1 users"});
    write_journal(&bulk, &[start]);
    let enroll = sc.home.join("staff.csv.journal.jsonl.enroll");
    write_journal(&enroll, &planted_run(&user, &serial, ACCOUNT));
    let r = sc.mfakey(&["--json", "bulk", manifest.to_str().unwrap(), "--resume"]);
    let msg = r.err(5, "undo_refused");
    assert!(msg.contains(&serial), "{msg}");
    assert!(msg.contains("no key was enrolled"), "{msg}");
    assert_eq!(iam.user_devices(&user), [serial]);
    sc.assert_no_secret(&[]);
}

#[test]
fn a_journal_of_another_account_is_refused() {
    let _l = proxy_lock();
    let iam = Iam::new();
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    // A device this very run tag made, so only the account tells them apart.
    let user = iam.create_user("elsewhere");
    let serial = iam.create_device(
        &format!("{user}-yk1234"),
        &[
            ("mfakey:managed", "true"),
            ("mfakey:run", "0123456789abcdef"),
        ],
    );
    let journal = journal_in(&sc, "other-account.jsonl");
    write_journal(&journal, &planted_run(&user, &serial, "210987654321"));
    let r = sc.mfakey(&["--json", "recover", "--journal", journal.to_str().unwrap()]);
    let msg = r.err(5, "journal_account_mismatch");
    assert!(
        msg.contains("210987654321") && msg.contains(ACCOUNT),
        "{msg}"
    );
    assert_eq!(
        iam.virtual_devices(&user).len(),
        1,
        "the device was touched"
    );
    sc.assert_no_secret(&[]);
}

#[test]
fn journals_others_could_write_are_refused() {
    let _l = proxy_lock();
    let iam = Iam::new();
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let slot = Slot::acquire();
    let key = VirtualKey::start(&slot, &["--serial", &random_serial().to_string()]);
    let user = iam.create_user("unsafe");
    let real = journal_in(&sc, "real.jsonl");
    write_journal(&real, &[]);
    let link = journal_in(&sc, "link.jsonl");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (real_s, link_s) = (real.to_str().unwrap(), link.to_str().unwrap());

    let r = sc.mfakey(&["--json", "recover", "--journal", link_s]);
    assert!(r.err(5, "journal_unsafe").contains("symbolic link"));
    let r = sc.mfakey(&[
        "--json",
        "--reader",
        slot.reader,
        "enroll",
        "user",
        &user,
        "--journal",
        link_s,
    ]);
    assert!(r.err(5, "journal_unsafe").contains("symbolic link"));

    for (mode, who) in [(0o666, "anyone"), (0o620, "its group")] {
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(mode)).unwrap();
        let r = sc.mfakey(&["--json", "recover", "--journal", real_s]);
        assert!(r.err(5, "journal_unsafe").contains(who));
        let r = sc.mfakey(&[
            "--json",
            "--reader",
            slot.reader,
            "enroll",
            "user",
            &user,
            "--journal",
            real_s,
        ]);
        assert!(r.err(5, "journal_unsafe").contains(who));
    }
    // Nothing was made on the way to those refusals.
    assert!(iam.virtual_devices(&user).is_empty());
    assert!(ids(&mut sc, slot.reader, &[]).is_empty());

    // A new bulk run never adopts an enrollment journal it finds.
    let manifest = sc.home.join("m.csv");
    std::fs::write(&manifest, format!("user\n{user}\n")).unwrap();
    let planted = sc.home.join("m.csv.journal.jsonl.enroll");
    write_journal(&planted, &[]);
    let r = sc.mfakey(&["--json", "bulk", manifest.to_str().unwrap()]);
    assert!(r
        .err(5, "journal_exists")
        .contains("m.csv.journal.jsonl.enroll"));
    assert!(iam.virtual_devices(&user).is_empty());
    sc.record_key(&key);
    sc.assert_no_secret(&[]);
}

#[test]
fn recover_waits_for_an_enrollment_in_flight() {
    let _l = proxy_lock();
    let iam = Iam::new();
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let slot = Slot::acquire();
    let key = VirtualKey::start(
        &slot,
        &[
            "--serial",
            &random_serial().to_string(),
            "--touch",
            "delay-ms=3000",
        ],
    );
    let user = iam.create_user("inflight");
    let journal = journal_in(&sc, "shared.jsonl");
    let j = journal.to_str().unwrap();
    let args = [
        "--json",
        "--reader",
        slot.reader,
        "enroll",
        "user",
        &user,
        "--touch",
        "--journal",
        j,
    ];
    let mut run = sc.spawn_mfakey(&args, b"");
    assert!(
        run.wait_stderr("Touch your YubiKey (1 of 2)", Duration::from_secs(20)),
        "{}",
        run.stderr_now()
    );
    // The device exists and the credential is written: exactly what recover
    // would undo if it did not know the run is still going.
    let r = sc.mfakey(&["--json", "recover", "--journal", j]);
    assert!(r.err(5, "journal_in_use").contains("in use"));
    let r = sc.mfakey(&["--json", "cleanup", "--delete", "--journal", j]);
    r.err(5, "journal_in_use");
    let done = sc.record(&run.finish()).ok();
    assert_eq!(done["enrolled"]["user"], user.as_str());
    assert_eq!(iam.user_devices(&user).len(), 1);
    // Afterwards recover has nothing to do.
    let v = sc.mfakey(&["--json", "recover", "--journal", j]).ok();
    assert_eq!(v["runs"], json!([]));
    sc.record_key(&key);
    let seeds: Vec<Seed> = iam
        .virtual_devices(&user)
        .into_iter()
        .filter_map(|d| d.2)
        .collect();
    sc.assert_no_secret(&seeds.iter().collect::<Vec<_>>());
}

/// What a `--force` enrollment pulled at one APDU, then recovered, left.
enum Ending {
    /// Enrolled: the key gives the new device's codes under the id.
    New,
    /// Nothing new in AWS: the key still gives the old seed's codes.
    Old,
}

/// `enroll user --force` over a credential with the same id, the key pulled
/// at APDU `at` (before the card acts, or after it acted with the answer
/// lost), then re-inserted and `recover` run. `None`: the enrollment got
/// through before APDU `at` (the pull came too late to matter).
fn pulled_force_enrollment(
    iam: &Iam,
    sc: &mut Scenario,
    slot: &Slot,
    at: u32,
    after: bool,
) -> Option<Ending> {
    let serial = random_serial().to_string();
    let state = sc.inputs.join(format!("card-{at}-{after}.json"));
    let state = state.to_str().unwrap();
    let user = iam.create_user("force");
    let id = format!("Amazon Web Services:{user}@acme");
    let old = Seed::random(20);
    {
        let key = VirtualKey::start(slot, &["--serial", &serial, "--state", state]);
        let name = format!("{user}@acme");
        add(
            sc,
            slot.reader,
            &name,
            &old,
            &["--issuer", "Amazon Web Services"],
        );
        sc.record_key(&key);
    }
    let pull = at.to_string();
    let flag = if after { "--pull-after" } else { "--pull-at" };
    let key = VirtualKey::start(slot, &["--serial", &serial, "--state", state, flag, &pull]);
    let journal = sc.home.join(format!("j-{at}-{after}.jsonl"));
    let j = journal.to_str().unwrap();
    let r = sc.mfakey(&[
        "--json",
        "--reader",
        slot.reader,
        "enroll",
        "user",
        &user,
        "--force",
        "--label-account",
        "acme",
        "--journal",
        j,
    ]);
    sc.record_key(&key);
    drop(key);
    if r.code == Some(0) {
        let seeds: Vec<Seed> = iam
            .virtual_devices(&user)
            .into_iter()
            .filter_map(|d| d.2)
            .collect();
        let mut all: Vec<&Seed> = seeds.iter().collect();
        all.push(&old);
        sc.assert_no_secret(&all);
        return None;
    }
    let key = VirtualKey::start(slot, &["--serial", &serial, "--state", state]);
    let rec = sc.mfakey(&["--json", "--reader", slot.reader, "recover", "--journal", j]);
    assert_eq!(
        rec.code,
        Some(0),
        "at {at} (after: {after}): {rec:?}\nenroll: {r:?}"
    );
    let t = now();
    let on_key = code_str(sc, slot.reader, &id, t, &[]);
    let left: Vec<String> = ids(sc, slot.reader, &[]);
    assert!(
        !left.iter().any(|i| i.starts_with("mfakey-pending-")),
        "at {at} (after: {after}): a temporary copy is left: {left:?}"
    );
    let devices = iam.virtual_devices(&user);
    let enabled = iam.user_devices(&user);
    sc.record_key(&key);
    let ending = match enabled.as_slice() {
        [] => {
            assert!(
                devices.is_empty(),
                "at {at}: unassigned device left: {devices:?}"
            );
            assert_eq!(
                on_key,
                totp(&old, Algo::Sha1, 6, 30, t),
                "at {at} (after: {after}): the old seed is gone"
            );
            Ending::Old
        }
        [dev] => {
            let new = devices
                .iter()
                .find(|d| &d.0 == dev)
                .and_then(|d| d.2.clone())
                .expect("moto lists the seed");
            assert_eq!(on_key, totp(&new, Algo::Sha1, 6, 30, t), "at {at} (after: {after}): enrolled, but the key does not give the new seed's codes");
            Ending::New
        }
        more => panic!("at {at}: several devices enabled: {more:?}"),
    };
    let mut seeds: Vec<Seed> = devices.into_iter().filter_map(|d| d.2).collect();
    seeds.push(old);
    sc.assert_no_secret(&seeds.iter().collect::<Vec<_>>());
    Some(ending)
}

#[test]
fn force_replacement_pulled_at_every_apdu_never_costs_the_old_credential() {
    let _l = proxy_lock();
    let iam = Iam::new();
    let slot = Slot::acquire();
    for after in [false, true] {
        let (mut new, mut old) = (0, 0);
        for at in 1..=40 {
            let mut sc = Scenario::new();
            sc.set_aws_env(&endpoint());
            match pulled_force_enrollment(&iam, &mut sc, &slot, at, after) {
                Some(Ending::New) => new += 1,
                Some(Ending::Old) => old += 1,
                None => {
                    // Every APDU of the enrollment was pulled at once: both
                    // endings were met on the way.
                    assert!(at > 5, "the enrollment took only {at} APDUs?");
                    assert!(new > 0 && old > 0, "after: {after}: new {new}, old {old}");
                    break;
                }
            }
            assert!(at < 40, "the enrollment never got through");
        }
    }
}
