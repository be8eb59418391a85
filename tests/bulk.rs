//! `mfakey bulk` end to end: the real binary watching a vpcd reader through
//! pcscd, `virtual-yubikey` cards with different serials inserted (started)
//! and removed (stopped) one after another as its `--json` event lines ask,
//! moto behind the code-checking proxy (which refuses any enable whose codes
//! are not the seed's). Every scenario ends with no orphan device, no stray
//! credential, and no seed in any output or file.

mod common;
#[path = "support/desk.rs"]
mod desk;
#[path = "support/iam_env.rs"]
mod iam_env;

use common::oath::ids;
use common::{random_serial, Scenario, Slot, VirtualKey};
use desk::{assert_enrolled_once, assert_no_seeds, id, manifest, Bulk, Iam};
use iam_env::{block_on, enables_for, endpoint, unique};
use serde_json::Value;

#[test]
fn enrolls_every_user_one_key_after_another() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let iam = Iam::new();
    let users: Vec<String> = (0..6)
        .map(|i| iam.create_user(&format!("desk{i}")))
        .collect();
    let m = manifest(&sc, &format!("user\n{}\n", users.join("\n")));
    let report = sc.home.join("report.csv");
    let slot = Slot::acquire();
    let mut bulk = Bulk::start(
        &sc,
        slot.reader,
        &m,
        &["--report", report.to_str().unwrap()],
    );
    let mut serials = Vec::new();
    for (i, user) in users.iter().enumerate() {
        bulk.next_for(user);
        let serial = random_serial();
        serials.push(serial);
        let mut key = VirtualKey::start(&slot, &["--serial", &serial.to_string()]);
        let (inserted, _) = bulk.event("key_inserted");
        assert_eq!(inserted["serial"], serial);
        let (enrolled, _) = bulk.event("enrolled");
        assert_eq!(enrolled["user"], user.as_str());
        assert_eq!(enrolled["key_serial"], serial);
        bulk.event("remove_key");
        // The key holds exactly this user's credential (ykman reads it).
        assert_eq!(ids(&mut sc, slot.reader, &[]), vec![id(user)], "user {i}");
        sc.record_key(&key);
        key.stop();
    }
    let run = sc.record(&bulk.finish());
    let doc: Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(doc["enrolled"], 6, "{doc}");
    for (user, serial) in users.iter().zip(&serials) {
        assert_enrolled_once(&iam, user, *serial);
    }
    let text = std::fs::read_to_string(&report).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("user,account,key_serial,device_arn,credential_id,touch,status,error")
    );
    for (user, serial) in users.iter().zip(&serials) {
        assert_eq!(
            lines.next().unwrap(),
            format!(
                "{user},123456789012,{serial},arn:aws:iam::123456789012:mfa/{user}-yk{serial},Amazon Web Services:{user}@123456789012,false,enrolled,"
            )
        );
    }
    assert_no_seeds(&mut sc, &users);
}

#[test]
fn killed_mid_user_then_resumed_loses_and_doubles_nothing() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let iam = Iam::new();
    let users: Vec<String> = (0..3)
        .map(|i| iam.create_user(&format!("kill{i}")))
        .collect();
    let m = manifest(
        &sc,
        &format!(
            "user,touch\n{},no\n{},yes\n{},no\n",
            users[0], users[1], users[2]
        ),
    );
    let journal = sc.home.join("bulk.jsonl");
    let jarg = ["--journal", journal.to_str().unwrap()];
    let slot = Slot::acquire();
    let serials: Vec<u32> = (0..3).map(|_| random_serial()).collect();

    let mut bulk = Bulk::start(&sc, slot.reader, &m, &jarg);
    bulk.next_for(&users[0]);
    let mut k0 = VirtualKey::start(&slot, &["--serial", &serials[0].to_string()]);
    bulk.event("enrolled");
    bulk.event("remove_key");
    sc.record_key(&k0);
    k0.stop();
    bulk.next_for(&users[1]);
    // The second user's key waits 2 s for each touch: SIGKILL mfakey while
    // it waits (device created, credential written, nothing enabled).
    let k1 = VirtualKey::start(
        &slot,
        &[
            "--serial",
            &serials[1].to_string(),
            "--touch",
            "delay-ms=2000",
        ],
    );
    bulk.until("touch 1", |v| v["event"] == "touch" && v["n"] == 1);
    bulk.kill();
    let killed = sc.record(&bulk.finish());
    assert_eq!(killed.code, None, "killed by a signal");
    assert_eq!(
        iam.virtual_devices(&users[1]).len(),
        1,
        "created before the kill"
    );

    // Resume with the key still inserted: the half-done user is undone and
    // enrolled again on it, then the third user.
    let mut args = jarg.to_vec();
    args.push("--resume");
    let mut bulk = Bulk::start(&sc, slot.reader, &m, &args);
    let (rec, _) = bulk.event("recovered");
    assert_eq!(rec["user"], users[1].as_str());
    assert_eq!(rec["outcome"], "rolled_back", "{rec}");
    bulk.next_for(&users[1]);
    let (enrolled, _) = bulk.event("enrolled");
    assert_eq!(enrolled["user"], users[1].as_str());
    bulk.event("remove_key");
    assert_eq!(ids(&mut sc, slot.reader, &[]), vec![id(&users[1])]);
    sc.record_key(&k1);
    drop(k1);
    bulk.next_for(&users[2]);
    let k2 = VirtualKey::start(&slot, &["--serial", &serials[2].to_string()]);
    bulk.event("enrolled");
    bulk.event("remove_key");
    sc.record_key(&k2);
    drop(k2);
    let run = sc.record(&bulk.finish());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let doc: Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(doc["already_enrolled"], 1, "{doc}");
    assert_eq!(doc["enrolled"], 2, "{doc}");
    for (user, serial) in users.iter().zip(&serials) {
        assert_enrolled_once(&iam, user, *serial);
    }
    // Nothing unfinished in the enrollment journal.
    let ej = std::fs::read_to_string(format!("{}.enroll", journal.display())).unwrap();
    let runs: std::collections::BTreeMap<String, Vec<String>> =
        ej.lines().fold(Default::default(), |mut m, l| {
            let v: Value = serde_json::from_str(l).unwrap();
            m.entry(v["run"].as_str().unwrap().to_string())
                .or_default()
                .push(v["event"].as_str().unwrap().to_string());
            m
        });
    for (run, events) in &runs {
        assert!(
            events.iter().any(|e| e == "done" || e == "rolled_back"),
            "run {run} unfinished: {events:?}"
        );
    }
    assert_no_seeds(&mut sc, &users);
}

#[test]
fn a_key_pulled_mid_user_is_cleaned_when_it_comes_back() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let iam = Iam::new();
    let user = iam.create_user("pulled");
    let m = manifest(&sc, &format!("user,touch\n{user},yes\n"));
    let state = sc.dir().join("key-a.json");
    let serial = random_serial();
    let a_args = [
        "--serial".to_string(),
        serial.to_string(),
        "--state".to_string(),
        state.display().to_string(),
    ];
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let slot = Slot::acquire();
    let mut bulk = Bulk::start(&sc, slot.reader, &m, &[]);
    bulk.next_for(&user);
    let mut slow = a_args.clone();
    slow.extend_from_slice(&["--touch", "delay-ms=3000"]);
    let mut a = VirtualKey::start(&slot, &slow);
    bulk.until("touch 1", |v| v["event"] == "touch" && v["n"] == 1);
    sc.record_key(&a);
    a.yank();
    let (failed, _) = bulk.event("failed");
    assert_eq!(failed["retry"], true, "{failed}");
    bulk.event("remove_key");
    // The device is gone from IAM at once; the credential stays on the
    // pulled key until it comes back.
    bulk.next_for(&user);
    assert!(iam.virtual_devices(&user).is_empty());
    let a = VirtualKey::start(&slot, &a_args);
    let (enrolled, skipped) = bulk.event("enrolled");
    assert_eq!(enrolled["key_serial"], serial);
    assert!(
        skipped.iter().any(|v| v["event"] == "recovered"),
        "{skipped:?}"
    );
    bulk.event("remove_key");
    assert_eq!(ids(&mut sc, slot.reader, &[]), vec![id(&user)]);
    sc.record_key(&a);
    drop(a);
    let run = sc.record(&bulk.finish());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_enrolled_once(&iam, &user, serial);
    assert_no_seeds(&mut sc, std::slice::from_ref(&user));
}

#[test]
fn reused_and_pinned_keys_are_skipped_with_a_reason() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let iam = Iam::new();
    let alice = iam.create_user("pinned");
    let bob = iam.create_user("free");
    let (sa, sb) = (random_serial(), random_serial());
    // alice must go on key B.
    let m = manifest(&sc, &format!("user,key_serial\n{alice},{sb}\n{bob},\n"));
    let slot = Slot::acquire();
    let mut bulk = Bulk::start(&sc, slot.reader, &m, &[]);
    bulk.next_for(&alice);
    let a = VirtualKey::start(&slot, &["--serial", &sa.to_string()]);
    let (skip, _) = bulk.event("key_skipped");
    assert!(
        skip["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("must be enrolled on key {sb}")),
        "{skip}"
    );
    bulk.event("remove_key");
    sc.record_key(&a);
    drop(a);
    bulk.next_for(&alice);
    let b = VirtualKey::start(&slot, &["--serial", &sb.to_string()]);
    bulk.event("enrolled");
    bulk.event("remove_key");
    sc.record_key(&b);
    drop(b);
    bulk.next_for(&bob);
    // Key B again: already used in this run.
    let b = VirtualKey::start(&slot, &["--serial", &sb.to_string()]);
    let (skip, _) = bulk.event("key_skipped");
    assert!(
        skip["reason"].as_str().unwrap().contains(&format!(
            "key {sb} was already used in this run (for {alice})"
        )),
        "{skip}"
    );
    bulk.event("remove_key");
    drop(b);
    bulk.next_for(&bob);
    let a = VirtualKey::start(&slot, &["--serial", &sa.to_string()]);
    let (enrolled, _) = bulk.event("enrolled");
    assert_eq!(enrolled["user"], bob.as_str());
    bulk.event("remove_key");
    sc.record_key(&a);
    drop(a);
    let run = sc.record(&bulk.finish());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_enrolled_once(&iam, &alice, sb);
    assert_enrolled_once(&iam, &bob, sa);
    assert_no_seeds(&mut sc, &[alice, bob]);
}

#[test]
fn a_manifest_with_every_kind_of_bad_row_is_refused_at_once() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let m = manifest(
        &sc,
        "user,touch,key_serial,role_arn,colour\n\
         ,yes,,,\n\
         alice,perhaps,,,\n\
         alice,,12x,,\n\
         bob,,,arn:aws:iam::1:role/x,\n",
    );
    let run = sc.mfakey(&["--json", "bulk", m.to_str().unwrap()]);
    let msg = run.err(2, "invalid_manifest");
    for needle in [
        "line 1: unknown column \"colour\"",
        "line 2: empty user",
        "line 3: touch \"perhaps\"",
        "line 4: duplicate user \"alice\"",
        "line 4: key_serial \"12x\"",
        "line 5: role_arn",
    ] {
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
    sc.assert_no_secret(&[]);
}

#[test]
fn dry_run_checks_every_row_and_creates_nothing() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let iam = Iam::new();
    let ok = iam.create_user("dry");
    let missing = unique("ghost");
    let m = manifest(&sc, &format!("user\n{ok}\n{missing}\n"));
    let run = sc.mfakey(&["--json", "bulk", m.to_str().unwrap(), "--dry-run"]);
    let msg = run.err(5, "preflight_failed");
    assert!(msg.contains(&format!("line 2: {ok} ok")), "{msg}");
    assert!(
        msg.contains(&format!("line 3: {missing}: no IAM user")),
        "{msg}"
    );
    assert!(iam.virtual_devices(&ok).is_empty());
    let m = manifest(&sc, &format!("user\n{ok}\n"));
    let v = sc
        .mfakey(&["--json", "bulk", m.to_str().unwrap(), "--dry-run"])
        .ok();
    assert_eq!(v["problems"], 0, "{v}");
    assert_eq!(v["rows"][0]["mfa_devices"], 0, "{v}");
    sc.assert_no_secret(&[]);
}

#[test]
fn ctrl_c_while_waiting_for_a_key_writes_the_report_and_resume_goes_on() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let iam = Iam::new();
    let users: Vec<String> = (0..2)
        .map(|i| iam.create_user(&format!("intr{i}")))
        .collect();
    let m = manifest(&sc, &format!("user\n{}\n{}\n", users[0], users[1]));
    let report = sc.home.join("report.json");
    let journal = sc.home.join("j.jsonl");
    let (r, j) = (report.to_str().unwrap(), journal.to_str().unwrap());
    let slot = Slot::acquire();
    let mut bulk = Bulk::start(&sc, slot.reader, &m, &["--report", r, "--journal", j]);
    bulk.next_for(&users[0]);
    let serial = random_serial();
    let k = VirtualKey::start(&slot, &["--serial", &serial.to_string()]);
    bulk.event("remove_key");
    sc.record_key(&k);
    drop(k);
    bulk.next_for(&users[1]);
    // SAFETY: SIGINT to the mfakey process this test started.
    unsafe { libc::kill(bulk.pid() as libc::pid_t, libc::SIGINT) };
    bulk.event("interrupted");
    let run = sc.record(&bulk.finish());
    // Event lines, the summary document, then the error document.
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let last: Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["error"]["kind"], "interrupted", "{last}");
    let msg = last["error"]["message"].as_str().unwrap();
    assert!(msg.contains("--resume"), "{msg}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["users"][0]["status"], "enrolled", "{v}");
    assert_eq!(v["users"][0]["key_serial"], serial, "{v}");
    assert_eq!(v["users"][1]["status"], "pending", "{v}");

    // Without --resume the journal is refused; with it, only the second user is left.
    let again = sc.mfakey(&["--json", "bulk", m.to_str().unwrap(), "--journal", j]);
    again.err(5, "journal_exists");
    let mut bulk = Bulk::start(&sc, slot.reader, &m, &["--journal", j, "--resume"]);
    bulk.next_for(&users[1]);
    let serial2 = random_serial();
    let k = VirtualKey::start(&slot, &["--serial", &serial2.to_string()]);
    bulk.event("remove_key");
    sc.record_key(&k);
    drop(k);
    let run = sc.record(&bulk.finish());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_enrolled_once(&iam, &users[0], serial);
    assert_enrolled_once(&iam, &users[1], serial2);
    assert_no_seeds(&mut sc, &users);
}

#[test]
fn create_users_creates_tagged_users_in_their_groups_then_enrolls_them() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let iam = Iam::new();
    let group = unique("desk-staff");
    block_on(iam.raw.create_group().group_name(&group).send()).unwrap();
    let newbie = unique("newbie");
    let m = manifest(&sc, &format!("user,groups\n{newbie},{group}\n"));
    // The dry run says it would create the user, and creates nothing.
    let v = sc
        .mfakey(&[
            "--json",
            "bulk",
            m.to_str().unwrap(),
            "--dry-run",
            "--create-users",
        ])
        .ok();
    assert_eq!(v["rows"][0]["create"], true, "{v}");
    assert!(block_on(iam.raw.get_user().user_name(&newbie).send()).is_err());

    let slot = Slot::acquire();
    let mut bulk = Bulk::start(&sc, slot.reader, &m, &["--create-users"]);
    let (created, _) = bulk.event("user_created");
    assert_eq!(created["user"], newbie.as_str());
    bulk.next_for(&newbie);
    let serial = random_serial();
    let k = VirtualKey::start(&slot, &["--serial", &serial.to_string()]);
    bulk.event("remove_key");
    sc.record_key(&k);
    drop(k);
    let run = sc.record(&bulk.finish());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_enrolled_once(&iam, &newbie, serial);
    let tags = block_on(iam.raw.list_user_tags().user_name(&newbie).send()).unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "mfakey:managed" && t.value() == "true"),
        "{tags:?}"
    );
    let groups = block_on(iam.raw.list_groups_for_user().user_name(&newbie).send()).unwrap();
    let names: Vec<&str> = groups.groups().iter().map(|g| g.group_name()).collect();
    assert_eq!(names, [group.as_str()]);
    assert_no_seeds(&mut sc, &[newbie]);
}

/// An IAM client in another (moto) account: credentials from assuming a
/// role there (moto puts what they create in the role's account).
fn other_account(role_arn: &str) -> aws_sdk_iam::Client {
    let moto = std::env::var("MFAKEY_TEST_MOTO_ENDPOINT").unwrap();
    let base = block_on(iam_env::test_sdk_config(&moto, 1));
    let provider = block_on(
        aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name("mfakey-tests")
            .configure(&base)
            .build(),
    );
    let config = base
        .into_builder()
        .credentials_provider(aws_sdk_iam::config::SharedCredentialsProvider::new(
            provider,
        ))
        .build();
    aws_sdk_iam::Client::new(&config)
}

#[test]
fn two_accounts_in_one_run_through_role_arn() {
    let mut sc = Scenario::new();
    sc.set_aws_env(&endpoint());
    let iam = Iam::new();
    let here = iam.create_user("acct-a");
    let role = "arn:aws:iam::111122223333:role/mfakey-enroller";
    let there_iam = other_account(role);
    let there = unique("acct-b");
    block_on(there_iam.create_user().user_name(&there).send()).unwrap();
    // The user is not in the default account.
    assert!(block_on(iam.raw.get_user().user_name(&there).send()).is_err());
    let m = manifest(&sc, &format!("user,role_arn\n{here},\n{there},{role}\n"));
    let slot = Slot::acquire();
    let mut bulk = Bulk::start(&sc, slot.reader, &m, &[]);
    let mut serials = vec![];
    for user in [&here, &there] {
        bulk.next_for(user);
        let serial = random_serial();
        serials.push(serial);
        let k = VirtualKey::start(&slot, &["--serial", &serial.to_string()]);
        let (enrolled, _) = bulk.event("enrolled");
        assert_eq!(enrolled["user"], user.as_str());
        bulk.event("remove_key");
        sc.record_key(&k);
        drop(k);
    }
    let run = sc.record(&bulk.finish());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let doc: Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(doc["users"][0]["account"], "123456789012", "{doc}");
    assert_eq!(doc["users"][1]["account"], "111122223333", "{doc}");
    assert_eq!(
        doc["users"][1]["credential_id"],
        format!("Amazon Web Services:{there}@111122223333")
    );
    assert_enrolled_once(&iam, &here, serials[0]);
    // The second user's device is in the other account, enabled with codes
    // the proxy accepted.
    let arn = format!("arn:aws:iam::111122223333:mfa/{there}-yk{}", serials[1]);
    let devices = block_on(there_iam.list_mfa_devices().user_name(&there).send()).unwrap();
    let listed: Vec<&str> = devices
        .mfa_devices()
        .iter()
        .map(|d| d.serial_number())
        .collect();
    assert_eq!(listed, [arn.as_str()]);
    let log = enables_for(&arn);
    assert!(
        !log.is_empty() && log.iter().all(|e| e["accepted"] == true),
        "{log:?}"
    );
    assert_no_seeds(&mut sc, &[here, there]);
}
