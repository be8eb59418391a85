//! Tray mode against in-process virtual keys in a scripted tray (an
//! operator who removes each key when told and inserts the next tray when
//! every reader is empty) and the fake IAM, which checks every enable's
//! codes. The workers run on threads of their own, as with PC/SC.

use super::desk::DeskKey;
use super::journal::enroll_journal_path;
use super::tests::{id, plant_killed_after_create};
use super::tray::{self, Hands, Tray};
use super::{manifest, Accounts, BulkOptions, Journals, Line, Mark, Status, Summary};
use crate::aws::fake::{FakeIam, Op};
use crate::aws::IamApi;
use crate::progress::{Event, Outcome};
use crate::transport::pcsc::Seen;
use crate::transport::{Transport, TransportError};
use crate::undo::journal::{self, Event as JEvent, Journal, Lock};
use crate::virtual_key::{Config, SharedVirtualKey, VirtualYubiKey};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

fn vkey(serial: u32) -> SharedVirtualKey {
    SharedVirtualKey::new(VirtualYubiKey::new(Config {
        serial,
        ..Config::default()
    }))
}

#[derive(Clone)]
struct Key {
    key: SharedVirtualKey,
    serial: u32,
    /// Pulled out at its n-th command after insertion.
    pull_at: Option<usize>,
}

fn key(k: &SharedVirtualKey, serial: u32) -> Key {
    Key {
        key: k.clone(),
        serial,
        pull_at: None,
    }
}

#[derive(Default)]
struct Readers {
    keys: BTreeMap<String, Option<Key>>,
    events: BTreeMap<String, u32>,
    trays: VecDeque<Vec<(usize, Key)>>,
    version: u64,
    stop: bool,
}

impl Readers {
    fn set(&mut self, reader: &str, k: Option<Key>) {
        self.keys.insert(reader.to_string(), k);
        *self.events.entry(reader.to_string()).or_default() += 1;
        self.version += 1;
    }

    /// Every reader empty: the next tray goes in; none left: the operator
    /// stops (Ctrl-C), which ends a run whose users are not all enrolled.
    fn next_tray(&mut self) {
        if self.keys.values().any(Option::is_some) {
            return;
        }
        match self.trays.pop_front() {
            Some(t) => {
                for (i, k) in t {
                    self.set(&reader(i), Some(k));
                }
            }
            None => self.stop = true,
        }
    }
}

fn reader(i: usize) -> String {
    format!("Tray Reader {i:02}")
}

/// A tray of `n` readers and the trays of keys the operator will insert.
#[derive(Clone)]
struct ScriptedTray {
    inner: Arc<(Mutex<Readers>, Condvar)>,
}

impl ScriptedTray {
    fn new(n: usize, trays: Vec<Vec<(usize, Key)>>) -> Self {
        let mut r = Readers {
            trays: trays.into(),
            ..Readers::default()
        };
        for i in 0..n {
            r.keys.insert(reader(i), None);
            r.events.insert(reader(i), 0);
        }
        r.next_tray();
        ScriptedTray {
            inner: Arc::new((Mutex::new(r), Condvar::new())),
        }
    }

    fn change(&self, f: impl FnOnce(&mut Readers)) {
        let (m, cv) = &*self.inner;
        f(&mut m.lock().unwrap());
        cv.notify_all();
    }

    /// The operator, told to remove a key.
    fn remove(&self, reader: &str) {
        self.change(|r| {
            if r.keys.get(reader).is_some_and(Option::is_some) {
                r.set(reader, None);
            }
            r.next_tray();
        });
    }
}

/// A key that stops answering from its `fail_at`-th command: the tray
/// sees its reader empty from then on.
struct Pullable {
    inner: SharedVirtualKey,
    sent: AtomicUsize,
    fail_at: usize,
    tray: ScriptedTray,
    reader: String,
}

impl Transport for Pullable {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if self.sent.fetch_add(1, Ordering::SeqCst) + 1 >= self.fail_at {
            let reader = self.reader.clone();
            self.tray.change(|r| {
                if r.keys.get(&reader).is_some_and(Option::is_some) {
                    r.set(&reader, None)
                }
            });
            return Err(TransportError::CardRemoved);
        }
        self.inner.transmit(apdu)
    }
}

impl Tray for ScriptedTray {
    fn watch(&self, timeout: Duration) -> Result<Vec<Seen>, TransportError> {
        let (m, cv) = &*self.inner;
        let r = m.lock().unwrap();
        let seen = r.version;
        let (r, _) = cv
            .wait_timeout_while(r, timeout, |r| r.version == seen && !r.stop)
            .unwrap();
        Ok(r.keys
            .iter()
            .map(|(name, k)| Seen {
                name: name.clone(),
                card_present: k.is_some(),
                events: r.events[name],
            })
            .collect())
    }

    fn wake(&self) {
        self.change(|r| r.version += 1);
    }

    fn open(&self, at: &str) -> Result<DeskKey, String> {
        let (m, _) = &*self.inner;
        let k = m.lock().unwrap().keys.get(at).cloned().flatten();
        let k = k.ok_or("no key")?;
        let transport: Box<dyn Transport + Send> = match k.pull_at {
            Some(n) => Box::new(Pullable {
                inner: k.key.clone(),
                sent: AtomicUsize::new(0),
                fail_at: n,
                tray: self.clone(),
                reader: at.to_string(),
            }),
            None => Box::new(k.key.clone()),
        };
        Ok(DeskKey {
            serial: Some(k.serial),
            capacity: 64,
            transport,
        })
    }

    fn open_serial(&self, serial: u32) -> Option<DeskKey> {
        let (m, _) = &*self.inner;
        let r = m.lock().unwrap();
        let k = r.keys.values().flatten().find(|k| k.serial == serial)?;
        Some(DeskKey {
            serial: Some(serial),
            capacity: 64,
            transport: Box::new(k.key.clone()),
        })
    }

    fn interrupted(&self) -> bool {
        self.inner.0.lock().unwrap().stop
    }
}

struct World {
    iam: FakeIam,
    dir: tempfile::TempDir,
    events: Vec<Event>,
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
        }
    }

    fn bulk_path(&self) -> std::path::PathBuf {
        self.dir.path().join("bulk.jsonl")
    }

    fn run(&mut self, manifest: &str, tray: &ScriptedTray) -> Summary {
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
            password: None,
            create_users: false,
            keys: 1,
        };
        let accounts = Accounts::single(&self.iam);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let events = &mut self.events;
        // The operator removes each key when told to.
        let mut progress = |e: Event| {
            if let Event::RemoveKey { reader, .. } = &e {
                tray.remove(reader);
            }
            events.push(e);
        };
        let hands = Hands {
            tray,
            rt: rt.handle(),
        };
        tray::run(&accounts, hands, &rows, &opts, &j, &resume, &mut progress).unwrap()
    }

    fn enrolled_at(&self) -> BTreeMap<String, String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Enrolled {
                    user,
                    reader: Some(r),
                    ..
                } => Some((user.clone(), r.clone())),
                _ => None,
            })
            .collect()
    }

    fn enroll_journal_is_finished(&self) {
        let entries = journal::read(&enroll_journal_path(&self.bulk_path())).unwrap();
        assert!(journal::unfinished(&entries).is_empty(), "{entries:?}");
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

fn statuses(s: &Summary) -> Vec<Status> {
    s.results.iter().map(|r| r.status).collect()
}

#[test]
fn a_tray_of_keys_is_enrolled_in_one_pass() {
    let users = ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"];
    let mut w = World::new(&users);
    let keys: Vec<SharedVirtualKey> = (0..8).map(|i| vkey(3000 + i)).collect();
    let one_tray = (0..8)
        .map(|i| (i, key(&keys[i], 3000 + i as u32)))
        .collect();
    let t = ScriptedTray::new(8, vec![one_tray]);
    let s = w.run(&format!("user\n{}\n", users.join("\n")), &t);
    assert!(!s.interrupted);
    assert_eq!(statuses(&s), vec![Status::Enrolled; 8]);
    // Every key holds exactly the credential of the user it was given, and
    // IAM has that user's device, enabled with codes the fake checked.
    let at = w.enrolled_at();
    assert_eq!(at.len(), 8, "every enrolled event names its reader");
    for r in &s.results {
        let i = (r.key_serial.unwrap() - 3000) as usize;
        assert_eq!(ids(&keys[i]), vec![id(&r.user)]);
        assert_eq!(at[&r.user], reader(i));
        let arn = r.device_arn.as_deref().unwrap();
        assert_eq!(w.iam.assigned_user(arn).as_deref(), Some(r.user.as_str()));
    }
    assert_eq!(w.iam.calls_of(Op::EnableMfaDevice).len(), 8);
    // Steps and touches of each key carry its reader.
    assert!(w
        .events
        .iter()
        .filter(|e| matches!(e, Event::Step { .. }))
        .all(|e| e.reader().is_some()));
    // The journals: one begin and one enrolled line per user, whole lines;
    // every enrollment run finished, each run's lines in order.
    let lines: Vec<Line> = journal::read_lines(&w.bulk_path()).unwrap();
    for mark in [Mark::Begin, Mark::Enrolled] {
        assert_eq!(lines.iter().filter(|l| l.mark == mark).count(), 8);
    }
    w.enroll_journal_is_finished();
    let entries = journal::read(&enroll_journal_path(&w.bulk_path())).unwrap();
    let mut by_run: BTreeMap<String, Vec<JEvent>> = BTreeMap::new();
    for e in &entries {
        by_run.entry(e.run.clone()).or_default().push(e.event);
    }
    for events in by_run.values() {
        assert_eq!(
            events,
            &[
                JEvent::Begin,
                JEvent::Created,
                JEvent::Writing,
                JEvent::Written,
                JEvent::Enabled,
                JEvent::Done
            ]
        );
    }
}

#[test]
fn trays_follow_one_another_and_a_failed_user_does_not_stop_the_others() {
    // ghost is not in IAM: it fails for good, the others are enrolled.
    let mut w = World::new(&["a", "b", "c", "d"]);
    let keys: Vec<SharedVirtualKey> = (0..5).map(|i| vkey(4000 + i)).collect();
    let t = ScriptedTray::new(
        3,
        vec![
            (0..3)
                .map(|i| (i, key(&keys[i], 4000 + i as u32)))
                .collect(),
            vec![(0, key(&keys[3], 4003)), (2, key(&keys[4], 4004))],
        ],
    );
    let s = w.run("user\na\nghost\nb\nc\nd\n", &t);
    assert!(!s.interrupted);
    let st = statuses(&s);
    assert_eq!(
        st,
        [
            Status::Enrolled,
            Status::Failed,
            Status::Enrolled,
            Status::Enrolled,
            Status::Enrolled
        ]
    );
    assert!(s.results[1].error.as_deref().unwrap().contains("ghost"));
    // ghost's key holds nothing; the rest hold their user's credential.
    let ghost_key = s.results[1].key_serial.unwrap();
    assert!(ids(&keys[(ghost_key - 4000) as usize]).is_empty());
    for r in s.results.iter().filter(|r| r.status == Status::Enrolled) {
        assert_eq!(
            ids(&keys[(r.key_serial.unwrap() - 4000) as usize]),
            vec![id(&r.user)]
        );
    }
    assert!(w.iam.calls_of(Op::CreateVirtualMfaDevice).len() >= 4);
    assert_eq!(w.iam.calls_of(Op::EnableMfaDevice).len(), 4);
    w.enroll_journal_is_finished();
}

#[test]
fn a_key_pulled_mid_tray_undoes_only_its_own_user() {
    let mut w = World::new(&["a", "b", "c"]);
    let (ka, kb, kc) = (vkey(5001), vkey(5002), vkey(5003));
    // Key 5001 goes at its 4th command (SELECT, LIST, PUT, then the first
    // CALCULATE): its credential is on it, its device in IAM.
    let pulled = Key {
        pull_at: Some(4),
        ..key(&ka, 5001)
    };
    let t = ScriptedTray::new(
        3,
        vec![
            vec![(0, pulled), (1, key(&kb, 5002)), (2, key(&kc, 5003))],
            // It comes back, alone.
            vec![(1, key(&ka, 5001))],
        ],
    );
    let s = w.run("user\na\nb\nc\n", &t);
    assert_eq!(statuses(&s), vec![Status::Enrolled; 3]);
    let failed: Vec<&Event> = w
        .events
        .iter()
        .filter(|e| matches!(e, Event::Failed { .. }))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let Event::Failed {
        user,
        retry,
        reader: at,
        ..
    } = failed[0]
    else {
        unreachable!()
    };
    assert!(*retry);
    assert_eq!(at.as_deref(), Some(reader(0).as_str()));
    // The stale credential was recovered away when the key came back, then
    // the same user enrolled on it once; the others were not touched.
    assert!(w.events.iter().any(|e| matches!(
        e,
        Event::Recovered { outcome: Outcome::RolledBack, reader: Some(r), .. } if *r == reader(1)
    )));
    assert_eq!(ids(&ka), vec![id(user)]);
    let others: Vec<Vec<String>> = [&kb, &kc].iter().map(|k| ids(k)).collect();
    assert_eq!(others.iter().filter(|v| v.len() == 1).count(), 2);
    let devices = rt_block(w.iam.list_virtual_mfa_devices(false)).unwrap();
    assert_eq!(devices.len(), 3, "one device per user: {devices:?}");
    assert!(devices.iter().all(|d| d.user.is_some()));
    w.enroll_journal_is_finished();
}

#[test]
fn pinned_serials_bind_users_to_keys_in_a_tray() {
    // alice wants key 6002; carol wants 6009, which never comes.
    let mut w = World::new(&["alice", "bob", "carol"]);
    let (k1, k2, k3) = (vkey(6001), vkey(6002), vkey(6003));
    let t = ScriptedTray::new(
        2,
        vec![
            vec![(0, key(&k1, 6001)), (1, key(&k2, 6002))],
            // Only carol is left, and this is not her key.
            vec![(0, key(&k3, 6003))],
        ],
    );
    let s = w.run("user,key_serial\nalice,6002\nbob,\ncarol,6009\n", &t);
    assert!(s.interrupted, "carol's key never came");
    assert_eq!(
        statuses(&s),
        [Status::Enrolled, Status::Enrolled, Status::Pending]
    );
    assert_eq!(ids(&k2), vec![id("alice")]);
    assert_eq!(ids(&k1), vec![id("bob")]);
    assert!(ids(&k3).is_empty());
    let skipped: Vec<&String> = w
        .events
        .iter()
        .filter_map(|e| match e {
            Event::KeySkipped { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].contains("carol must be enrolled on key 6009"));
}

#[test]
fn resume_in_tray_mode_recovers_each_key_then_goes_on() {
    let mut w = World::new(&["alice", "bob"]);
    let (ka, kb) = (vkey(7001), vkey(7002));
    let manifest = "user\nalice\nbob\n";
    // A first run that stopped at once (no keys), then a run killed right
    // after alice's device was created on key 7001.
    let t = ScriptedTray::new(2, vec![]);
    let s = w.run(manifest, &t);
    assert!(s.interrupted);
    plant_killed_after_create(&w.iam, &w.bulk_path(), "alice", 7001);
    let t = ScriptedTray::new(2, vec![vec![(0, key(&ka, 7001)), (1, key(&kb, 7002))]]);
    let s = w.run(manifest, &t);
    assert_eq!(statuses(&s), vec![Status::Enrolled; 2]);
    assert!(w.events.iter().any(|e| matches!(
        e,
        Event::Recovered {
            outcome: Outcome::RolledBack,
            ..
        }
    )));
    let devices = rt_block(w.iam.list_virtual_mfa_devices(false)).unwrap();
    assert_eq!(devices.len(), 2, "{devices:?}");
    assert!(devices.iter().all(|d| d.user.is_some()));
    w.enroll_journal_is_finished();
}

fn rt_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn a_users_backup_key_goes_on_another_key_once_the_first_is_in() {
    // alice wants two keys (the `keys` column), bob one: three keys in one
    // tray hold alice, alice's backup and bob, each key one user.
    let mut w = World::new(&["alice", "bob"]);
    let keys: Vec<SharedVirtualKey> = (0..3).map(|i| vkey(8000 + i)).collect();
    let one_tray = (0..3)
        .map(|i| (i, key(&keys[i], 8000 + i as u32)))
        .collect();
    let t = ScriptedTray::new(3, vec![one_tray]);
    let s = w.run("user,keys\nalice,2\nbob,\n", &t);
    assert!(!s.interrupted);
    let users: Vec<&str> = s.results.iter().map(|r| r.user.as_str()).collect();
    assert_eq!(users, ["alice", "alice", "bob"]);
    assert_eq!(statuses(&s), vec![Status::Enrolled; 3]);
    // Three different keys, each holding exactly its user's credential.
    let mut serials: Vec<u32> = s.results.iter().map(|r| r.key_serial.unwrap()).collect();
    for r in &s.results {
        let i = (r.key_serial.unwrap() - 8000) as usize;
        assert_eq!(ids(&keys[i]), vec![id(&r.user)]);
    }
    serials.sort_unstable();
    serials.dedup();
    assert_eq!(serials.len(), 3, "{s:?}", s = s.results);
    // alice has two devices, both enabled; the second `next` said backup.
    let alice: Vec<&str> = s.results[..2]
        .iter()
        .map(|r| r.device_arn.as_deref().unwrap())
        .collect();
    assert_ne!(alice[0], alice[1]);
    for arn in &alice {
        assert_eq!(w.iam.assigned_user(arn).as_deref(), Some("alice"));
    }
    let backups: Vec<(String, bool)> = w
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Next { user, backup, .. } => Some((user.clone(), *backup)),
            _ => None,
        })
        .collect();
    assert_eq!(backups.iter().filter(|(_, b)| *b).count(), 1, "{backups:?}");
    assert!(backups.contains(&("alice".into(), true)), "{backups:?}");
    assert_eq!(w.iam.calls_of(Op::EnableMfaDevice).len(), 3);
    w.enroll_journal_is_finished();
}
