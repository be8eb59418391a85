//! The bulk desk loop against in-process virtual keys (a scripted desk) and
//! the fake IAM, which checks every enable's codes against the seed it issued.

use super::desk::{Desk, DeskKey};
use super::journal::enroll_journal_path;
use super::manifest;
use super::{self as bulk, BulkOptions, Journals, Line, Mark, Status, Summary};
use crate::aws::fake::{FakeIam, Op};
use crate::aws::IamApi;
use crate::progress::{Event as BulkEvent, Outcome};
use crate::transport::{Transport, TransportError};
use crate::undo::journal::{self, Entry, Event, Journal, Lock};
use crate::virtual_key::{Config, SharedVirtualKey, VirtualYubiKey};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn vkey(serial: u32) -> SharedVirtualKey {
    SharedVirtualKey::new(VirtualYubiKey::new(Config {
        serial,
        ..Config::default()
    }))
}

/// A key that stops answering from its `fail_at`-th command (pulled out).
struct Pullable {
    inner: SharedVirtualKey,
    sent: Arc<AtomicUsize>,
    fail_at: usize,
}

impl Transport for Pullable {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if self.sent.fetch_add(1, Ordering::SeqCst) + 1 >= self.fail_at {
            return Err(TransportError::CardRemoved);
        }
        self.inner.transmit(apdu)
    }
}

/// A key whose instructions are written down (by serial), as it got them.
struct Logged {
    inner: Box<dyn Transport + Send>,
    serial: u32,
    log: Arc<std::sync::Mutex<Vec<(u32, u8)>>>,
}

impl Transport for Logged {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if let Some(&ins) = apdu.get(1) {
            self.log.lock().unwrap().push((self.serial, ins));
        }
        self.inner.transmit(apdu)
    }
}

/// One insertion: a key, and whether it is pulled at its n-th command.
struct Arrival {
    key: SharedVirtualKey,
    serial: u32,
    pull_at: Option<usize>,
}

/// Keys arriving one after another; the run is interrupted once the
/// arrivals are used up (or after `stop_after` removals).
struct ScriptedDesk {
    arrivals: VecDeque<Arrival>,
    current: Option<Arrival>,
    /// Keys present for `open_serial` (resume).
    present: Vec<(u32, SharedVirtualKey)>,
    removals: usize,
    stop_after: Option<usize>,
    /// Every instruction each key got: (serial, INS).
    log: Arc<std::sync::Mutex<Vec<(u32, u8)>>>,
}

impl ScriptedDesk {
    fn new(keys: Vec<(SharedVirtualKey, u32, Option<usize>)>) -> Self {
        ScriptedDesk {
            arrivals: keys
                .into_iter()
                .map(|(key, serial, pull_at)| Arrival {
                    key,
                    serial,
                    pull_at,
                })
                .collect(),
            current: None,
            present: vec![],
            removals: 0,
            stop_after: None,
            log: Arc::default(),
        }
    }
}

impl Desk for ScriptedDesk {
    fn wait_for_key(&mut self) -> Result<Option<String>, TransportError> {
        if self.interrupted() {
            return Ok(None);
        }
        self.current = self.arrivals.pop_front();
        Ok(self
            .current
            .as_ref()
            .map(|a| format!("reader-{}", a.serial)))
    }

    fn open(&mut self, _reader: &str) -> Result<DeskKey, String> {
        let a = self.current.as_ref().ok_or("no key")?;
        let transport: Box<dyn Transport + Send> = match a.pull_at {
            Some(n) => Box::new(Pullable {
                inner: a.key.clone(),
                sent: Arc::new(AtomicUsize::new(0)),
                fail_at: n,
            }),
            None => Box::new(a.key.clone()),
        };
        let transport = Box::new(Logged {
            inner: transport,
            serial: a.serial,
            log: self.log.clone(),
        });
        // Serial 0: a key that tells none.
        Ok(DeskKey {
            serial: (a.serial != 0).then_some(a.serial),
            capacity: 64,
            transport,
        })
    }

    fn open_serial(&mut self, serial: u32) -> Option<DeskKey> {
        let (_, k) = self.present.iter().find(|(s, _)| *s == serial)?;
        Some(DeskKey {
            serial: Some(serial),
            capacity: 64,
            transport: Box::new(k.clone()),
        })
    }

    fn wait_for_removal(&mut self, _reader: &str) -> Result<(), TransportError> {
        self.current = None;
        self.removals += 1;
        Ok(())
    }

    fn interrupted(&self) -> bool {
        self.stop_after.is_some_and(|n| self.removals >= n)
    }
}

struct World {
    iam: FakeIam,
    dir: tempfile::TempDir,
    events: Vec<BulkEvent>,
    create_users: bool,
    password: Option<crate::secret::SecretString>,
}

impl World {
    fn new(users: &[&str]) -> Self {
        let iam = FakeIam::new();
        for u in users {
            iam.add_user(u);
        }
        World {
            iam,
            dir: tempfile::tempdir().unwrap(),
            events: vec![],
            create_users: false,
            password: None,
        }
    }

    fn bulk_path(&self) -> std::path::PathBuf {
        self.dir.path().join("bulk.jsonl")
    }

    fn run(&mut self, manifest: &str, desk: &mut ScriptedDesk) -> Summary {
        self.run_with_keys(manifest, desk, 1)
    }

    fn run_with_keys(&mut self, manifest: &str, desk: &mut ScriptedDesk, keys: u8) -> Summary {
        let rows = manifest::parse(manifest).unwrap();
        let resume: Vec<Line> = journal::read_lines(&self.bulk_path()).unwrap();
        let j = Journals {
            bulk: Journal::open(&self.bulk_path(), Lock::Exclusive).unwrap(),
            enroll: Journal::open(&enroll_journal_path(&self.bulk_path()), Lock::Exclusive)
                .unwrap(),
        };
        let opts = BulkOptions {
            touch: false,
            path: "/".into(),
            password: self.password.clone(),
            create_users: self.create_users,
            keys,
        };
        let events = &mut self.events;
        let accounts = bulk::Accounts::single(&self.iam);
        rt().block_on(bulk::run(
            &accounts,
            desk,
            &rows,
            &opts,
            &j,
            &resume,
            &mut |e| events.push(e),
        ))
        .unwrap()
    }

    fn devices(&self) -> Vec<crate::aws::VirtualMfaDevice> {
        rt().block_on(self.iam.list_virtual_mfa_devices(false))
            .unwrap()
    }

    fn skipped(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                BulkEvent::KeySkipped { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }
}

fn ids(k: &SharedVirtualKey) -> Vec<String> {
    k.with(|k| {
        k.oath_credentials()
            .into_iter()
            .map(|c| String::from_utf8_lossy(&c.id).into_owned())
            .collect()
    })
}

/// What a run killed right after CreateVirtualMFADevice leaves: the device
/// `<user>-yk<key>` tagged as mfakey tags it (run "r1"), and the
/// enrollment journal's Begin and Created lines for it. Its ARN.
pub(super) fn plant_killed_after_create(
    iam: &FakeIam,
    bulk_path: &std::path::Path,
    user: &str,
    key_serial: u32,
) -> String {
    let name = format!("{user}-yk{key_serial}");
    let created = rt()
        .block_on(iam.create_virtual_mfa_device(
            &name,
            "/",
            &[
                ("mfakey:managed".into(), "true".into()),
                (crate::undo::TAG_RUN.into(), "r1".into()),
            ],
        ))
        .unwrap();
    let ej = Journal::open(&enroll_journal_path(bulk_path), Lock::Exclusive).unwrap();
    for event in [Event::Begin, Event::Created] {
        ej.append(&Entry {
            ts: 1,
            run: "r1".into(),
            event,
            user: user.into(),
            account_id: Some("123456789012".into()),
            device_name: Some(name.clone()),
            device_serial: (event == Event::Created).then(|| created.serial.clone()),
            key_serial: Some(key_serial),
            credential_id: Some(id(user)),
            written_as: None,
            proof: None,
            detail: None,
        })
        .unwrap();
    }
    created.serial
}

pub(super) fn id(user: &str) -> String {
    format!("Amazon Web Services:{user}@123456789012")
}

#[test]
fn enrolls_every_user_on_the_next_key() {
    let mut w = World::new(&["alice", "bob", "carol"]);
    let (a, b, c) = (vkey(1001), vkey(1002), vkey(1003));
    let mut desk = ScriptedDesk::new(vec![
        (a.clone(), 1001, None),
        (b.clone(), 1002, None),
        (c.clone(), 1003, None),
    ]);
    let s = w.run("user\nalice\nbob\ncarol\n", &mut desk);
    assert!(!s.interrupted);
    assert!(s.results.iter().all(|r| r.status == Status::Enrolled));
    assert_eq!(ids(&a), vec![id("alice")]);
    assert_eq!(ids(&b), vec![id("bob")]);
    assert_eq!(ids(&c), vec![id("carol")]);
    for (u, serial) in [("alice", 1001), ("bob", 1002), ("carol", 1003)] {
        let arn = format!("arn:aws:iam::123456789012:mfa/{u}-yk{serial}");
        assert_eq!(w.iam.assigned_user(&arn).as_deref(), Some(u));
    }
    // The fake refuses wrong codes: three accepted enables, no more.
    assert_eq!(w.iam.calls_of(Op::EnableMfaDevice).len(), 3);
    // A new run looks for no devices tagged with its brand-new id: two
    // ListMFADevices per user (enroll's preflight and verify), no tag reads.
    assert_eq!(w.iam.calls_of(Op::ListMfaDevices).len(), 6);
    assert!(w.iam.calls_of(Op::MfaDeviceTags).is_empty());
    // Each user: next, inserted, steps..., enrolled, remove.
    let kinds: Vec<&str> = w
        .events
        .iter()
        .filter_map(|e| match e {
            BulkEvent::Next { .. } => Some("next"),
            BulkEvent::KeyInserted { .. } => Some("inserted"),
            BulkEvent::Enrolled { .. } => Some("enrolled"),
            BulkEvent::RemoveKey { .. } => Some("remove"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["next", "inserted", "enrolled", "remove"].repeat(3));
    // Every device carries this run's tag.
    for d in w.devices() {
        let tags = rt().block_on(w.iam.mfa_device_tags(&d.serial)).unwrap();
        assert!(tags
            .iter()
            .any(|(k, v)| k == bulk::TAG_BULK_RUN && *v == s.bulk_run));
    }
}

#[test]
fn a_reused_key_is_skipped_and_said_so() {
    let mut w = World::new(&["alice", "bob"]);
    let (a, b) = (vkey(1001), vkey(1002));
    let mut desk = ScriptedDesk::new(vec![
        (a.clone(), 1001, None),
        (a.clone(), 1001, None),
        (b.clone(), 1002, None),
    ]);
    let s = w.run("user\nalice\nbob\n", &mut desk);
    assert_eq!(s.results[1].key_serial, Some(1002));
    assert_eq!(ids(&a), vec![id("alice")]);
    assert_eq!(ids(&b), vec![id("bob")]);
    let skipped = w.skipped();
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0].contains("key 1001 was already used in this run (for alice)"),
        "{skipped:?}"
    );
}

#[test]
fn pinned_serials_are_respected_both_ways() {
    let mut w = World::new(&["alice", "bob"]);
    let (a, b) = (vkey(1001), vkey(1002));
    // alice wants 1002, bob 1001: 1001 first is reserved for bob, then 1002
    // takes alice, then 1001 takes bob.
    let mut desk = ScriptedDesk::new(vec![
        (a.clone(), 1001, None),
        (b.clone(), 1002, None),
        (a.clone(), 1001, None),
    ]);
    let s = w.run("user,key_serial\nalice,1002\nbob,1001\n", &mut desk);
    assert!(s.results.iter().all(|r| r.status == Status::Enrolled));
    assert_eq!(ids(&a), vec![id("bob")]);
    assert_eq!(ids(&b), vec![id("alice")]);
    let skipped = w.skipped();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].contains("reserved for bob"), "{skipped:?}");

    // A key pinned to nobody is refused for a user pinned to another key.
    let mut w = World::new(&["carol"]);
    let c = vkey(2000);
    let mut desk = ScriptedDesk::new(vec![(c.clone(), 2000, None)]);
    let s = w.run("user,key_serial\ncarol,3000\n", &mut desk);
    assert!(s.interrupted);
    assert_eq!(s.results[0].status, Status::Pending);
    assert!(w.skipped()[0].contains("carol must be enrolled on key 3000"));
    assert!(ids(&c).is_empty());
}

#[test]
fn a_key_pulled_mid_user_is_undone_and_the_user_waits_for_a_key_again() {
    let mut w = World::new(&["alice"]);
    let a = vkey(1001);
    // Commands: SELECT, LIST, PUT, then CALCULATE fails: the key is gone with
    // the credential on it, the device is deleted from IAM.
    let mut desk = ScriptedDesk::new(vec![(a.clone(), 1001, Some(4)), (a.clone(), 1001, None)]);
    let s = w.run("user\nalice\n", &mut desk);
    assert_eq!(s.results[0].status, Status::Enrolled);
    assert!(w
        .events
        .iter()
        .any(|e| matches!(e, BulkEvent::Failed { retry: true, .. })));
    // Reinserted: the stale credential was recovered away, then enrolled once.
    assert_eq!(ids(&a), vec![id("alice")]);
    let devices = w.devices();
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert_eq!(devices[0].user.as_deref(), Some("alice"));
    let entries = journal::read(&enroll_journal_path(&w.bulk_path())).unwrap();
    assert!(journal::unfinished(&entries).is_empty());
}

#[test]
fn a_failure_for_good_is_reported_and_the_run_goes_on() {
    let mut w = World::new(&["alice", "carol"]);
    let (a, b) = (vkey(1001), vkey(1002));
    let mut desk = ScriptedDesk::new(vec![(a.clone(), 1001, None), (b.clone(), 1002, None)]);
    // bob does not exist in IAM.
    let s = w.run("user\nbob\ncarol\n", &mut desk);
    assert_eq!(s.results[0].status, Status::Failed);
    assert!(s.results[0].error.as_deref().unwrap().contains("bob"));
    assert_eq!(s.results[1].status, Status::Enrolled);
    // bob's attempt left nothing on key 1001; carol got the next key.
    assert!(ids(&a).is_empty());
    assert_eq!(ids(&b), vec![id("carol")]);
}

#[test]
fn resume_continues_without_enrolling_anyone_twice() {
    let mut w = World::new(&["alice", "bob", "carol"]);
    let (a, b, c) = (vkey(1001), vkey(1002), vkey(1003));
    let manifest = "user\nalice\nbob\ncarol\n";
    let mut desk = ScriptedDesk::new(vec![(a.clone(), 1001, None), (b.clone(), 1002, None)]);
    desk.stop_after = Some(1);
    let s = w.run(manifest, &mut desk);
    assert!(s.interrupted);
    assert_eq!(s.results[0].status, Status::Enrolled);
    assert_eq!(s.results[1].status, Status::Pending);

    // Resume: alice's key comes again (skipped), then two fresh keys.
    w.events.clear();
    let mut desk = ScriptedDesk::new(vec![
        (a.clone(), 1001, None),
        (b.clone(), 1002, None),
        (c.clone(), 1003, None),
    ]);
    let s2 = w.run(manifest, &mut desk);
    assert_eq!(s2.bulk_run, s.bulk_run);
    let st: Vec<Status> = s2.results.iter().map(|r| r.status).collect();
    assert_eq!(
        st,
        [Status::AlreadyEnrolled, Status::Enrolled, Status::Enrolled]
    );
    assert_eq!(ids(&a), vec![id("alice")]);
    assert_eq!(ids(&b), vec![id("bob")]);
    assert_eq!(ids(&c), vec![id("carol")]);
    assert_eq!(w.iam.calls_of(Op::EnableMfaDevice).len(), 3);
    assert!(w.skipped()[0].contains("already used"));
}

#[test]
fn resume_counts_a_device_tagged_for_this_run_as_done() {
    let mut w = World::new(&["alice", "bob"]);
    let (a, b) = (vkey(1001), vkey(1002));
    let manifest = "user\nalice\nbob\n";
    let mut desk = ScriptedDesk::new(vec![(a.clone(), 1001, None)]);
    desk.stop_after = Some(1);
    w.run(manifest, &mut desk);
    // The process died after the enrollment but before its bulk line: drop
    // every line but the first (Start).
    let text = std::fs::read_to_string(w.bulk_path()).unwrap();
    let first = text.lines().next().unwrap().to_string();
    std::fs::write(w.bulk_path(), format!("{first}\n")).unwrap();

    let mut desk = ScriptedDesk::new(vec![(b.clone(), 1002, None)]);
    let s = w.run(manifest, &mut desk);
    assert_eq!(s.results[0].status, Status::AlreadyEnrolled);
    assert_eq!(s.results[1].status, Status::Enrolled);
    assert_eq!(ids(&b), vec![id("bob")]);
    assert_eq!(w.iam.calls_of(Op::EnableMfaDevice).len(), 2);
    let lines: Vec<Line> = journal::read_lines(&w.bulk_path()).unwrap();
    assert!(lines
        .iter()
        .any(|l| l.mark == Mark::AlreadyDone && l.user.as_deref() == Some("alice")));
}

#[test]
fn two_keys_a_user_the_backup_on_any_other_key_and_resumed_between_them() {
    let mut w = World::new(&["alice", "bob"]);
    let (a, b, c) = (vkey(1001), vkey(1002), vkey(1003));
    // alice wants two keys (pinned first key 1001), bob one. alice's first
    // key comes back for her backup: refused; 1002 becomes her backup; then
    // the run is stopped before bob.
    let manifest = "user,keys,key_serial\nalice,2,1001\nbob,,\n";
    let mut desk = ScriptedDesk::new(vec![
        (a.clone(), 1001, None),
        (a.clone(), 1001, None),
        (b.clone(), 1002, None),
    ]);
    desk.stop_after = Some(3);
    let s = w.run(manifest, &mut desk);
    assert!(s.interrupted);
    let st: Vec<(&str, Status, Option<u32>)> = s
        .results
        .iter()
        .map(|r| (r.user.as_str(), r.status, r.key_serial))
        .collect();
    assert_eq!(
        st,
        [
            ("alice", Status::Enrolled, Some(1001)),
            ("alice", Status::Enrolled, Some(1002)),
            ("bob", Status::Pending, None),
        ]
    );
    assert_eq!(ids(&a), vec![id("alice")]);
    assert_eq!(ids(&b), vec![id("alice")]);
    assert!(w.skipped()[0].contains("key 1001 was already used in this run (for alice)"));
    let backups: Vec<bool> = w
        .events
        .iter()
        .filter_map(|e| match e {
            BulkEvent::Next { backup, .. } => Some(*backup),
            _ => None,
        })
        .collect();
    assert_eq!(backups, [false, true, true]);
    for serial in [1001, 1002] {
        let arn = format!("arn:aws:iam::123456789012:mfa/alice-yk{serial}");
        assert_eq!(w.iam.assigned_user(&arn).as_deref(), Some("alice"));
    }

    // Resumed with `--keys 2` for rows without a value: alice is done (both
    // keys, from the journal), bob now wants two.
    w.events.clear();
    let mut desk = ScriptedDesk::new(vec![(c.clone(), 1003, None), (a.clone(), 1001, None)]);
    let s = w.run_with_keys(manifest, &mut desk, 2);
    let st: Vec<(&str, Status)> = s
        .results
        .iter()
        .map(|r| (r.user.as_str(), r.status))
        .collect();
    assert_eq!(
        st,
        [
            ("alice", Status::AlreadyEnrolled),
            ("alice", Status::AlreadyEnrolled),
            ("bob", Status::Enrolled),
            ("bob", Status::Pending),
        ]
    );
    assert_eq!(ids(&c), vec![id("bob")]);
    // 1001 holds alice's enrollment of this run: not bob's backup.
    assert_eq!(ids(&a), vec![id("alice")]);
    assert_eq!(w.iam.calls_of(Op::EnableMfaDevice).len(), 3);
}

#[test]
fn resume_undoes_a_half_done_enrollment_first() {
    let mut w = World::new(&["alice"]);
    let a = vkey(1001);
    let manifest = "user\nalice\n";
    // A run killed right after CreateVirtualMFADevice: the bulk journal has
    // its Start and Begin lines, the enrollment journal Begin + Created.
    let mut desk = ScriptedDesk::new(vec![]);
    let s = w.run(manifest, &mut desk);
    plant_killed_after_create(&w.iam, &w.bulk_path(), "alice", 1001);
    assert!(s.interrupted);

    let mut desk = ScriptedDesk::new(vec![(a.clone(), 1001, None)]);
    let s = w.run(manifest, &mut desk);
    assert_eq!(s.results[0].status, Status::Enrolled);
    assert!(w.events.iter().any(|e| matches!(
        e,
        BulkEvent::Recovered {
            outcome: Outcome::RolledBack,
            actions,
            ..
        } if actions.iter().any(|a| a.contains("deleted virtual MFA device"))
    )));
    // The device of the same name now is the new, enabled one.
    assert_eq!(w.iam.calls_of(Op::DeleteVirtualMfaDevice).len(), 1);
    let devices = w.devices();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].user.as_deref(), Some("alice"));
    assert_eq!(ids(&a), vec![id("alice")]);
}

#[test]
fn create_users_creates_the_missing_ones_tagged_and_in_their_groups() {
    let mut w = World::new(&["alice"]);
    w.create_users = true;
    w.iam.add_group("staff");
    w.iam.add_group("ops");
    let (a, b, c) = (vkey(1001), vkey(1002), vkey(1003));
    let mut desk = ScriptedDesk::new(vec![
        (a.clone(), 1001, None),
        (b.clone(), 1002, None),
        (c, 1003, None),
    ]);
    let s = w.run(
        "user,groups\nalice,staff\nnewbie,staff;ops\nlost,nosuchgroup\n",
        &mut desk,
    );
    let st: Vec<Status> = s.results.iter().map(|r| r.status).collect();
    assert_eq!(st, [Status::Enrolled, Status::Enrolled, Status::Failed]);
    assert_eq!(ids(&b), vec![id("newbie")]);
    // Only the missing users were created, tagged with this run.
    let created: Vec<String> = w
        .iam
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            crate::aws::fake::Call::CreateUser { name, .. } => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(created, ["newbie", "lost"]);
    let tags = w.iam.user_tags("newbie");
    assert!(tags.contains(&("mfakey:managed".to_string(), "true".to_string())));
    assert!(tags.contains(&(bulk::TAG_BULK_RUN.to_string(), s.bulk_run.clone())));
    assert_eq!(w.iam.groups_of("newbie"), ["ops", "staff"]);
    assert_eq!(w.iam.groups_of("alice"), ["staff"]);
    assert!(s.results[2]
        .error
        .as_deref()
        .unwrap()
        .contains("nosuchgroup"));
    // The failed user's row took no key: the third key was never asked for.
    assert!(w
        .events
        .iter()
        .any(|e| matches!(e, BulkEvent::UserCreated { user, .. } if user == "newbie")));
}

#[test]
fn without_create_users_nobody_is_created() {
    let mut w = World::new(&["alice"]);
    let a = vkey(1001);
    let mut desk = ScriptedDesk::new(vec![(a, 1001, None)]);
    let s = w.run("user\nghost\n", &mut desk);
    assert_eq!(s.results[0].status, Status::Failed);
    assert!(w.iam.calls_of(Op::CreateUser).is_empty());
}

/// Sets `password` on a virtual key, as `mfakey oath password set` does.
fn with_password(k: &SharedVirtualKey, password: &str) {
    let mut t = k.clone();
    let mut s = crate::oath::OathSession::select(&mut t).unwrap();
    s.set_password(&crate::secret::SecretString::new(password.into()))
        .unwrap();
}

/// The OATH password's proof (VALIDATE, INS A3) goes to a key only once it
/// told its serial and that serial may take the user: a key that tells no
/// serial, and a key pinned to someone else, get none.
#[test]
fn the_password_goes_only_to_a_key_that_identified_itself() {
    const VALIDATE: u8 = 0xA3;
    let mut w = World::new(&["alice", "bob"]);
    w.password = Some(crate::secret::SecretString::new("pw of the desk".into()));
    let (anon, other, good, good2) = (vkey(0), vkey(2002), vkey(1001), vkey(1003));
    for k in [&anon, &other, &good, &good2] {
        with_password(k, "pw of the desk");
    }
    let mut desk = ScriptedDesk::new(vec![
        (anon.clone(), 0, None),
        (other.clone(), 2002, None),
        (good.clone(), 1001, None),
        (good2.clone(), 1003, None),
    ]);
    let s = w.run("user,key_serial\nalice,\nbob,1003\ncarol,2002\n", &mut desk);
    let log = desk.log.lock().unwrap().clone();
    let validates = |serial| {
        log.iter()
            .filter(|(s, i)| *s == serial && *i == VALIDATE)
            .count()
    };
    assert_eq!(
        validates(0),
        0,
        "the anonymous key got the password's proof"
    );
    assert_eq!(
        validates(2002),
        0,
        "a key pinned to carol got the proof for alice"
    );
    assert_eq!(validates(1001), 1);
    assert_eq!(validates(1003), 1);
    assert!(ids(&anon).is_empty() && ids(&other).is_empty());
    assert_eq!(ids(&good), vec![id("alice")]);
    assert_eq!(ids(&good2), vec![id("bob")]);
    assert_eq!(s.results[0].status, Status::Enrolled);
    assert!(
        w.events.iter().any(|e| matches!(e,
        BulkEvent::Failed { error, retry: true, .. } if error.contains("did not tell its serial")))
    );
}
