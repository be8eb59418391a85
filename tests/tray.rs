//! `mfakey bulk --parallel` (tray mode) end to end: the real binary watching
//! every vpcd reader through pcscd, a `virtual-yubikey` in each reader at
//! once, moto behind the code-checking proxy. Each test holds every reader
//! (mfakey watches them all). Every scenario ends as one at a time does: each
//! user enrolled once (one device, enabled with codes the proxy accepted),
//! each key holding exactly its user's credential (ykman reads it), nothing
//! unfinished in the enrollment journal, and no seed in any output or file.

mod common;
#[path = "support/desk.rs"]
mod desk;
#[path = "support/iam_env.rs"]
mod iam_env;

use common::oath::ids;
use common::{random_serial, Scenario, Slot, VirtualKey};
use desk::{assert_enrolled_once, assert_no_seeds, manifest, Bulk, Iam};
use iam_env::endpoint;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Four readers' worth of keys: (slot index, serial) per key.
fn serials(n: usize) -> Vec<u32> {
    (0..n).map(|_| random_serial()).collect()
}

/// An `enrolled` event: where, on which key, under which credential id.
#[derive(Debug)]
struct Done {
    reader: String,
    serial: u32,
    credential_id: String,
}

/// The enrolled events by user.
fn enrolled(events: &[Value]) -> BTreeMap<String, Done> {
    events
        .iter()
        .filter(|v| v["event"] == "enrolled")
        .map(|v| {
            let user = v["user"].as_str().unwrap().to_string();
            let credential_id = v["credential_id"].as_str().unwrap().to_string();
            // AWS's label: the account alias (another test may have set
            // one in this account), else the account id.
            assert!(
                credential_id.starts_with(&format!("Amazon Web Services:{user}@")),
                "{v}"
            );
            let done = Done {
                reader: v["reader"]
                    .as_str()
                    .expect("enrolled names its reader")
                    .to_string(),
                serial: v["key_serial"].as_u64().unwrap() as u32,
                credential_id,
            };
            (user, done)
        })
        .collect()
}

/// Each user enrolled once, on the key that holds exactly its credential.
fn assert_each_key_holds_its_user(sc: &mut Scenario, iam: &Iam, done: &BTreeMap<String, Done>) {
    for (user, d) in done {
        assert_eq!(
            ids(sc, &d.reader, &[]),
            vec![d.credential_id.clone()],
            "{user}"
        );
        assert_enrolled_once(iam, user, d.serial);
    }
}

/// Every event line of a finished run.
fn bulk_events(run: &common::Run) -> Vec<Value> {
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("event").is_some())
        .collect()
}

/// Waits until `n` events of `kind` were printed in all; every event so far.
fn until_count(bulk: &mut Bulk, kind: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + desk::EVENT_TIMEOUT;
    loop {
        let events = bulk.events_so_far();
        if events.iter().filter(|v| v["event"] == kind).count() >= n {
            return events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not {n} {kind} events within {:?}: {events:?}\nstderr:\n{}",
            desk::EVENT_TIMEOUT,
            bulk.r().stderr_now()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The run ended with exit `code` and, as its last line, the error
/// document of `kind` (event lines and the summary come before it).
fn assert_error(run: &common::Run, code: i32, kind: &str) {
    assert_eq!(run.code, Some(code), "{}", run.stderr);
    let last: Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["error"]["kind"], kind, "{last}");
}

/// The enrollment journal beside a bulk journal has no run without an end.
fn assert_enroll_journal_finished(bulk_journal: &Path) {
    let text = std::fs::read_to_string(format!("{}.enroll", bulk_journal.display())).unwrap();
    let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).expect("whole journal lines");
        runs.entry(v["run"].as_str().unwrap().to_string())
            .or_default()
            .push(v["event"].as_str().unwrap().to_string());
    }
    for (run, events) in &runs {
        assert!(
            events.iter().any(|e| e == "done" || e == "rolled_back"),
            "run {run} unfinished: {events:?}"
        );
    }
}

/// The bulk journal: whole lines, one `enrolled` per user in `users`.
fn assert_bulk_journal(path: &Path, users: &[&String]) {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("whole journal lines"))
        .collect();
    for u in users {
        let n = lines
            .iter()
            .filter(|l| l["mark"] == "enrolled" && l["user"] == u.as_str())
            .count();
        assert_eq!(n, 1, "{u}: {text}");
    }
}

#[test]
fn a_tray_with_a_pulled_key_and_a_failed_user_is_done_in_one_pass() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let iam = Iam::new();
    let (slow, a, b) = (
        iam.create_user("ts"),
        iam.create_user("ta"),
        iam.create_user("tb"),
    );
    let ghost = iam_env::unique("tg");
    // slow's credential wants a touch: its key is pulled while it waits.
    let m = manifest(
        &sc,
        &format!("user,touch\n{slow},yes\n{ghost},no\n{a},no\n{b},no\n"),
    );
    let journal = sc.home.join("tray.jsonl");
    let report = sc.home.join("report.json");
    let slots = Slot::acquire_all();
    assert!(slots.len() >= 4, "tray tests need the stack's four readers");
    let serials = serials(4);
    let states: Vec<String> = (0..4)
        .map(|i| sc.dir().join(format!("key-{i}.json")).display().to_string())
        .collect();
    let args = |i: usize, touch: &'static str| -> Vec<String> {
        let mut v = vec![
            "--serial".to_string(),
            serials[i].to_string(),
            "--state".to_string(),
            states[i].clone(),
        ];
        v.extend(["--touch".to_string(), touch.to_string()]);
        v
    };
    let mut bulk = Bulk::start_tray(
        &sc,
        &m,
        &[
            "--journal",
            journal.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    // The whole tray at once.
    let mut keys: Vec<Option<VirtualKey>> = (0..4)
        .map(|i| {
            let a = args(i, "delay-ms=4000");
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            Some(VirtualKey::start(&slots[i], &a))
        })
        .collect();
    let (touch, _) = bulk.until("slow's touch", |v| v["event"] == "touch" && v["n"] == 1);
    assert_eq!(touch["user"], slow.as_str(), "{touch}");
    let pulled_reader = touch["reader"]
        .as_str()
        .expect("touch names its reader")
        .to_string();
    let pulled = slots
        .iter()
        .position(|s| s.reader == pulled_reader)
        .unwrap();
    let key = keys[pulled].as_mut().unwrap();
    sc.record_key(key);
    key.yank();
    // slow waits for a key again; the others go on, ghost fails for good.
    let (failed, _) = bulk.until("slow failed", |v| {
        v["event"] == "failed" && v["user"] == slow.as_str()
    });
    assert_eq!(failed["retry"], true, "{failed}");
    assert_eq!(failed["reader"], pulled_reader.as_str());
    // Every key: enrolled or failed, then "remove the key".
    let events = until_count(&mut bulk, "remove_key", 4);
    let done = enrolled(&events);
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(events
        .iter()
        .any(|v| v["event"] == "failed" && v["user"] == ghost.as_str() && v["retry"] == false));
    // Each reader's events name it: every key's steps carry their reader.
    assert!(events
        .iter()
        .filter(|v| v["event"] == "step")
        .all(|v| v["reader"].is_string()));
    for (i, k) in keys.iter_mut().enumerate() {
        if let Some(k) = k.as_mut() {
            if i != pulled {
                sc.record_key(k);
            }
        }
    }
    // The pulled key comes back in its reader (touch now at once): its stale
    // credential is recovered away, then slow is enrolled on it.
    keys[pulled] = None;
    let back = args(pulled, "approve");
    let back: Vec<&str> = back.iter().map(String::as_str).collect();
    let k = VirtualKey::start(&slots[pulled], &back);
    let (rec, _) = bulk.event("recovered");
    assert_eq!(rec["outcome"], "rolled_back", "{rec}");
    assert_eq!(rec["reader"], pulled_reader.as_str());
    let (en, _) = bulk.event("enrolled");
    assert_eq!(en["user"], slow.as_str());
    assert_eq!(en["key_serial"], serials[pulled]);
    bulk.event("remove_key");
    sc.record_key(&k);
    let run = sc.record(&bulk.finish());
    let summary: Value = serde_json::from_str(
        run.stdout
            .lines()
            .find(|l| l.contains("\"bulk_run\""))
            .expect("summary document"),
    )
    .unwrap();
    assert_eq!(summary["enrolled"], 3, "{summary}");
    assert_eq!(summary["failed"], 1, "{summary}");
    assert_error(&run, 1, "bulk_failures");
    // Each key holds exactly its user's credential; each user is enrolled once.
    let all = enrolled(&bulk_events(&run));
    assert_eq!(all.len(), 3);
    assert_eq!(all[&slow].reader, pulled_reader);
    assert_eq!(all[&slow].serial, serials[pulled]);
    assert_each_key_holds_its_user(&mut sc, &iam, &all);
    assert!(iam.virtual_devices(&ghost).is_empty());
    drop(k);
    drop(keys);
    assert_bulk_journal(&journal, &[&slow, &a, &b]);
    assert_enroll_journal_finished(&journal);
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(rep["users"][1]["status"], "failed", "{rep}");
    assert_no_seeds(&mut sc, &[slow, a, b]);
}

#[test]
fn a_tray_killed_mid_flight_resumes_without_losing_or_doubling_anyone() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let iam = Iam::new();
    let users: Vec<String> = (0..4).map(|i| iam.create_user(&format!("tk{i}"))).collect();
    // Every user's credential wants a touch: all four wait at once.
    let rows: Vec<String> = users.iter().map(|u| format!("{u},yes")).collect();
    let m = manifest(&sc, &format!("user,touch\n{}\n", rows.join("\n")));
    let journal = sc.home.join("tray.jsonl");
    let jarg = journal.to_str().unwrap();
    let slots = Slot::acquire_all();
    let serials = serials(4);
    let keys: Vec<VirtualKey> = (0..4)
        .map(|i| {
            let s = serials[i].to_string();
            VirtualKey::start(&slots[i], &["--serial", &s, "--touch", "delay-ms=3000"])
        })
        .collect();
    let mut bulk = Bulk::start_tray(&sc, &m, &["--journal", jarg]);
    for _ in 0..4 {
        bulk.until("a first touch", |v| v["event"] == "touch" && v["n"] == 1);
    }
    // Four enrollments in flight: devices made, credentials written.
    bulk.kill();
    let killed = sc.record(&bulk.finish());
    assert_eq!(killed.code, None, "killed by a signal");
    for u in &users {
        assert_eq!(
            iam.virtual_devices(u).len(),
            1,
            "{u}: created before the kill"
        );
    }
    // Resume with the tray still in: each half-done user is undone with its
    // key, then all four are enrolled again, once.
    let mut bulk = Bulk::start_tray(&sc, &m, &["--journal", jarg, "--resume"]);
    for _ in 0..4 {
        let (rec, _) = bulk.event("recovered");
        assert_eq!(rec["outcome"], "rolled_back", "{rec}");
    }
    let events = until_count(&mut bulk, "remove_key", 4);
    let run = sc.record(&bulk.finish());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let done = enrolled(&events);
    assert_eq!(done.len(), 4);
    assert_each_key_holds_its_user(&mut sc, &iam, &done);
    for k in &keys {
        sc.record_key(k);
    }
    drop(keys);
    assert_bulk_journal(&journal, &users.iter().collect::<Vec<_>>());
    assert_enroll_journal_finished(&journal);
    assert_no_seeds(&mut sc, &users);
}

#[test]
fn pinned_serials_bind_users_to_their_keys_in_a_tray() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let iam = Iam::new();
    let (alice, bob, carol, dave) = (
        iam.create_user("pa"),
        iam.create_user("pb"),
        iam.create_user("pc"),
        iam.create_user("pd"),
    );
    let s = serials(4);
    let never = random_serial();
    // alice on key 1, bob on key 0, carol on any; dave's key never comes.
    let m = manifest(
        &sc,
        &format!(
            "user,key_serial\n{alice},{}\n{bob},{}\n{carol},\n{dave},{never}\n",
            s[1], s[0]
        ),
    );
    let slots = Slot::acquire_all();
    let mut bulk = Bulk::start_tray(&sc, &m, &[]);
    let keys: Vec<VirtualKey> = (0..4)
        .map(|i| VirtualKey::start(&slots[i], &["--serial", &s[i].to_string()]))
        .collect();
    // Three enrolled, and the fourth key is not dave's.
    let events = until_count(&mut bulk, "remove_key", 4);
    let skips: Vec<&Value> = events
        .iter()
        .filter(|v| v["event"] == "key_skipped")
        .collect();
    assert_eq!(skips.len(), 1, "{skips:?}");
    assert!(
        skips[0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("{dave} must be enrolled on key {never}")),
        "{skips:?}"
    );
    let done = enrolled(&events);
    assert_eq!(done[&alice].serial, s[1]);
    assert_eq!(done[&bob].serial, s[0]);
    assert!(done[&carol].serial == s[2] || done[&carol].serial == s[3]);
    assert!(!done.contains_key(&dave));
    // dave waits: Ctrl-C ends the run with dave pending.
    // (The first was said before the tray went in.)
    until_count(&mut bulk, "insert_keys", 2);
    // SAFETY: SIGINT to the mfakey process this test started.
    unsafe { libc::kill(bulk.pid() as libc::pid_t, libc::SIGINT) };
    bulk.event("interrupted");
    let run = sc.record(&bulk.finish());
    assert_error(&run, 1, "interrupted");
    assert_each_key_holds_its_user(&mut sc, &iam, &done);
    for k in &keys {
        sc.record_key(k);
    }
    drop(keys);
    assert!(iam.virtual_devices(&dave).is_empty());
    assert_no_seeds(&mut sc, &[alice, bob, carol]);
}
