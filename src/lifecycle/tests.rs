//! The lifecycle commands against the fake IAM (which checks every code it
//! is given, refuses a code it already accepted, and refuses to delete an
//! enabled device) and in-process virtual keys.

use super::accounts::{Account, Via};
use super::journal::{self as lj, Line, Op, Step};
use super::{inventory, offboard, recover, replace, resync, revoke, Removal, UserRef};
use crate::aws::fake::{Call, FakeIam, Op as IamOp};
use crate::aws::{AwsError, IamApi};
use crate::bulk::desk::{Desk, DeskKey};
use crate::enroll::{enroll, EnrollOptions, EnrollReport, KeyTarget};
use crate::error::{Classify, Failure, Kind};
use crate::lifecycle::backup::{enroll_backup, BackupCause, Unlocker};
use crate::oath::{CredentialData, CredentialId, HashAlgorithm, OathSession, OathType};
use crate::progress::{Event, Outcome, Quiet};
use crate::secret::SecretBytes;
use crate::transport::{Transport, TransportError};
use crate::undo::journal::{self as ej, Journal, Lock};
use crate::virtual_key::{Config, SharedVirtualKey, VirtualYubiKey};
use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ACCOUNT: &str = "123456789012";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn arn(user: &str, key: u32) -> String {
    format!("arn:aws:iam::{ACCOUNT}:mfa/{user}-yk{key}")
}

fn id(user: &str) -> String {
    format!("Amazon Web Services:{user}@{ACCOUNT}")
}

/// A key that stops answering once `pulled` is set.
struct Pullable {
    inner: SharedVirtualKey,
    pulled: Rc<Cell<bool>>,
}

impl Transport for Pullable {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if self.pulled.get() {
            return Err(TransportError::CardRemoved);
        }
        self.inner.transmit(apdu)
    }
}

/// One account (the fake), some users, some keys, two journals.
struct Lab {
    iam: FakeIam,
    keys: Vec<(u32, SharedVirtualKey)>,
    dir: tempfile::TempDir,
    /// The fake's clock, fixed at the start (the codes mfakey reads come
    /// from the host's clock, inside the fake's window of it).
    t0: SystemTime,
}

impl Lab {
    fn new(users: &[&str], keys: &[u32]) -> Lab {
        let iam = FakeIam::new();
        for u in users {
            iam.add_user(u);
        }
        let t0 = SystemTime::now();
        iam.set_now(t0);
        Lab {
            iam,
            keys: keys
                .iter()
                .map(|&serial| {
                    let k = VirtualYubiKey::new(Config {
                        serial,
                        ..Config::default()
                    });
                    (serial, SharedVirtualKey::new(k))
                })
                .collect(),
            dir: tempfile::tempdir().unwrap(),
            t0,
        }
    }

    /// Moves the fake's clock `secs` past its start; the unix time of it.
    fn later(&self, secs: u64) -> u64 {
        let t = self.t0 + Duration::from_secs(secs);
        self.iam.set_now(t);
        t.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    fn key(&self, serial: u32) -> SharedVirtualKey {
        self.keys
            .iter()
            .find(|(s, _)| *s == serial)
            .unwrap()
            .1
            .clone()
    }

    fn ids(&self, serial: u32) -> Vec<String> {
        self.key(serial).with(|k| {
            k.oath_credentials()
                .into_iter()
                .map(|c| String::from_utf8_lossy(&c.id).into_owned())
                .collect()
        })
    }

    fn accounts(&self) -> Vec<Account<'_, FakeIam>> {
        vec![Account {
            via: Via::CommandLine,
            id: ACCOUNT.into(),
            iam: &self.iam,
        }]
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("lifecycle.jsonl")
    }

    fn lines(&self) -> Vec<Line> {
        ej::read_lines(&self.path()).unwrap()
    }

    fn enroll_on(&self, user: &str, serial: u32) -> EnrollReport {
        let mut t = self.key(serial);
        self.enroll_through(&mut t, user, serial).unwrap()
    }

    fn enroll_through(
        &self,
        t: &mut dyn Transport,
        user: &str,
        serial: u32,
    ) -> Result<EnrollReport, crate::enroll::EnrollError> {
        let mut s = OathSession::select(t).unwrap();
        let j = Journal::open(&self.dir.path().join("journal.jsonl"), Lock::Shared).unwrap();
        let target = KeyTarget {
            session: &mut s,
            serial: Some(serial),
            capacity: 64,
        };
        rt().block_on(enroll(&self.iam, target, &opts(user), &j, &mut Quiet))
    }

    fn user_devices(&self, user: &str) -> Vec<String> {
        rt().block_on(self.iam.list_mfa_devices(user))
            .unwrap()
            .into_iter()
            .map(|d| d.serial)
            .collect()
    }

    fn revoke(&self, key: u32) -> Result<revoke::RevokeReport, super::LifecycleError> {
        let accounts = self.accounts();
        let plan = rt().block_on(revoke::plan(&accounts, key)).unwrap();
        let mut j = Journal::open(&self.path(), Lock::Exclusive).unwrap();
        rt().block_on(revoke::apply(&accounts, &plan, &mut j, &mut Quiet))
    }

    fn recover(&self, key: Option<&mut OathSession<'_>>) -> Vec<recover::RecoveredRun> {
        let accounts = self.accounts();
        let runs = lj::unfinished(&self.lines());
        let mut j = Journal::open(&self.path(), Lock::Exclusive).unwrap();
        let mut key = key;
        runs.iter()
            .map(|run| {
                rt().block_on(recover::recover_run(
                    &accounts,
                    run,
                    key.as_deref_mut(),
                    &mut j,
                    &mut Quiet,
                ))
                .unwrap()
            })
            .collect()
    }
}

fn opts(user: &str) -> EnrollOptions {
    EnrollOptions {
        user: user.into(),
        device_name: None,
        path: "/".into(),
        touch: false,
        account_label: None,
        tags: vec![],
        force: false,
    }
}

fn users(names: &[&str]) -> Vec<UserRef> {
    names
        .iter()
        .map(|u| UserRef {
            account_id: ACCOUNT.into(),
            user: u.to_string(),
        })
        .collect()
}

#[test]
fn inventory_by_key_and_the_users_on_a_single_key() {
    let lab = Lab::new(&["alice", "bob", "carol"], &[11, 22]);
    lab.enroll_on("alice", 11);
    lab.enroll_on("alice", 22);
    lab.enroll_on("bob", 11);
    lab.enroll_on("carol", 11);
    // carol also has a FIDO key: not on a single key.
    lab.iam
        .add_other_mfa_device("carol", "arn:aws:iam::123456789012:u2f/user/carol/k-1");
    // A device mfakey did not make is not in the inventory.
    rt().block_on(lab.iam.create_virtual_mfa_device("other", "/", &[]))
        .unwrap();
    let inv = rt()
        .block_on(inventory::inventory(&lab.accounts()))
        .unwrap();
    let keys: Vec<(Option<u32>, Vec<&str>)> = inv
        .keys
        .iter()
        .map(|k| {
            (
                k.key_serial,
                k.devices
                    .iter()
                    .map(|d| d.user.as_deref().unwrap())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            (Some(11), vec!["alice", "bob", "carol"]),
            (Some(22), vec!["alice"])
        ]
    );
    assert!(inv.keys[0].devices[0]
        .enable_date
        .as_deref()
        .is_some_and(|d| d.ends_with('Z')));
    let single: Vec<(&str, Option<u32>)> = inv
        .single_key_users
        .iter()
        .map(|s| (s.user.as_str(), s.key_serial))
        .collect();
    assert_eq!(single, [("bob", Some(11))]);
}

#[test]
fn revoke_removes_only_the_keys_tagged_devices_and_names_who_is_left_without_mfa() {
    let lab = Lab::new(&["alice", "bob", "carol"], &[11, 22]);
    lab.enroll_on("alice", 11);
    lab.enroll_on("alice", 22);
    lab.enroll_on("bob", 11);
    lab.enroll_on("carol", 22);
    let plan = rt().block_on(revoke::plan(&lab.accounts(), 11)).unwrap();
    assert_eq!(plan.devices.len(), 2);
    assert_eq!(plan.left_without_mfa(), users(&["bob"]));
    let r = lab.revoke(11).unwrap();
    assert!(r.devices.iter().all(|d| d.outcome == Removal::Removed));
    assert_eq!(r.without_mfa, users(&["bob"]));
    assert_eq!(lab.user_devices("alice"), [arn("alice", 22)]);
    assert!(lab.user_devices("bob").is_empty());
    assert_eq!(lab.user_devices("carol"), [arn("carol", 22)]);
    for gone in [arn("alice", 11), arn("bob", 11)] {
        assert!(!lab.iam.device_exists(&gone));
    }
    assert!(lj::unfinished(&lab.lines()).is_empty());
    // Again: nothing tagged as on 11 is left.
    let again = rt().block_on(revoke::plan(&lab.accounts(), 11)).unwrap();
    assert!(again.devices.is_empty());
}

#[test]
fn revoke_never_touches_what_mfakey_did_not_tag_even_if_the_plan_says_so() {
    let lab = Lab::new(&["dave"], &[11]);
    // dave's device was made by someone else, with a name mfakey would use.
    let d = rt()
        .block_on(lab.iam.create_virtual_mfa_device("dave-yk11", "/", &[]))
        .unwrap();
    let plan = revoke::RevokePlan {
        key_serial: 11,
        accounts: vec![ACCOUNT.into()],
        devices: vec![revoke::Planned {
            account_id: ACCOUNT.into(),
            via: Via::CommandLine,
            device_arn: d.serial.clone(),
            user: None,
            other_mfa: vec![],
        }],
    };
    let mut j = Journal::open(&lab.path(), Lock::Exclusive).unwrap();
    let r = rt()
        .block_on(revoke::apply(&lab.accounts(), &plan, &mut j, &mut Quiet))
        .unwrap();
    assert!(
        matches!(&r.devices[0].outcome, Removal::Left(why) if why.contains("mfakey did not make it")),
        "{:?}",
        r.devices
    );
    assert!(lab.iam.device_exists(&d.serial));
    assert!(lab.iam.calls_of(IamOp::DeleteVirtualMfaDevice).is_empty());
}

#[test]
fn a_revoke_stopped_by_iam_is_finished_by_recover_and_a_rerun_takes_it_over() {
    let lab = Lab::new(&["alice", "bob", "carol"], &[11]);
    lab.enroll_on("alice", 11);
    lab.enroll_on("bob", 11);
    let gone = AwsError::EndpointUnreachable {
        endpoint: "e".into(),
        detail: "connection refused".into(),
    };
    // The second delete fails: alice's device is gone, bob's deactivated.
    lab.iam
        .fail_nth(IamOp::DeleteVirtualMfaDevice, 2, gone.clone());
    let e = lab.revoke(11).unwrap_err();
    assert_eq!(e.kind(), Kind::EndpointUnreachable);
    let msg = e.to_string();
    assert!(
        msg.contains("1 of 2 device(s) revoked") && msg.contains("mfakey recover"),
        "{msg}"
    );
    assert_eq!(lj::unfinished(&lab.lines()).len(), 1);
    let bobs = arn("bob", 11);
    assert!(lab.iam.device_exists(&bobs));
    assert!(lab.user_devices("bob").is_empty());

    let runs = lab.recover(None);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, Outcome::Finished, "{runs:?}");
    assert!(!lab.iam.device_exists(&bobs));
    assert!(lj::unfinished(&lab.lines()).is_empty());

    // A stop before any change ends its run (nothing to finish); a run
    // stopped after one is taken over by the same revoke run again.
    lab.enroll_on("carol", 11);
    let n = lab.iam.calls_of(IamOp::DeactivateMfaDevice).len();
    lab.iam
        .fail_nth(IamOp::DeactivateMfaDevice, n + 1, gone.clone());
    let e = lab.revoke(11).unwrap_err();
    assert!(!matches!(e, super::LifecycleError::Stopped { .. }), "{e}");
    assert!(lj::unfinished(&lab.lines()).is_empty());
    let r = lab.revoke(11).unwrap();
    assert_eq!(r.devices.len(), 1);
    assert!(lab.user_devices("carol").is_empty());
}

#[test]
fn replace_moves_every_user_before_their_old_device_goes() {
    let lab = Lab::new(&["alice", "bob", "carol"], &[11, 22]);
    lab.enroll_on("alice", 11);
    lab.enroll_on("bob", 11);
    lab.enroll_on("carol", 22);
    let r = run_replace(&lab, 11, 22, &mut lab.key(22)).unwrap();
    let moved: Vec<&str> = r.moved.iter().map(|m| m.user.as_str()).collect();
    assert_eq!(moved, ["alice", "bob"]);
    assert!(r.not_moved.is_empty() && r.without_mfa.is_empty());
    for u in ["alice", "bob"] {
        assert_eq!(lab.user_devices(u), [arn(u, 22)]);
    }
    assert_eq!(lab.ids(22), [id("carol"), id("alice"), id("bob")]);
    // Per user: the new device was enabled before the old one was deactivated.
    let calls = lab.iam.calls();
    for u in ["alice", "bob"] {
        let at = |want: &dyn Fn(&Call) -> bool| calls.iter().position(want).unwrap();
        let enabled =
            at(&|c| matches!(c, Call::EnableMfaDevice { serial, .. } if *serial == arn(u, 22)));
        let deactivated =
            at(&|c| matches!(c, Call::DeactivateMfaDevice { serial, .. } if *serial == arn(u, 11)));
        assert!(enabled < deactivated, "{u}");
    }
    let tags = rt()
        .block_on(lab.iam.mfa_device_tags(&arn("alice", 22)))
        .unwrap();
    assert!(tags.contains(&(replace::TAG_REPLACES.into(), "11".into())));
    // The key to replace is refused as its own replacement.
    let e = run_replace(&lab, 22, 22, &mut lab.key(22)).unwrap_err();
    assert!(matches!(e, super::LifecycleError::SameKey(22)));
}

fn run_replace(
    lab: &Lab,
    old: u32,
    new: u32,
    t: &mut dyn Transport,
) -> Result<replace::ReplaceReport, super::LifecycleError> {
    run_replace_seeing(lab, old, new, t, &mut |_| {})
}

fn run_replace_seeing(
    lab: &Lab,
    old: u32,
    new: u32,
    t: &mut dyn Transport,
    seen: &mut dyn FnMut(Event),
) -> Result<replace::ReplaceReport, super::LifecycleError> {
    let accounts = lab.accounts();
    let mut s = OathSession::select(t).unwrap();
    let mut target = KeyTarget {
        session: &mut s,
        serial: Some(new),
        capacity: 64,
    };
    let plan = rt().block_on(replace::plan(&accounts, old, &mut target))?;
    let mut l = Journal::open(&lab.path(), Lock::Exclusive).unwrap();
    let mut e = Journal::open(&lj::enroll_path(&lab.path()), Lock::Shared).unwrap();
    let journals = replace::Journals {
        lifecycle: &mut l,
        enroll: &mut e,
    };
    let o = replace::ReplaceOptions {
        touch: false,
        path: "/".into(),
    };
    let mut seen = |e: Event| seen(e);
    rt().block_on(replace::apply(
        &accounts, &plan, target, &o, journals, &mut seen,
    ))
}

#[test]
fn a_key_pulled_during_replace_stops_it_and_nobody_is_without_mfa() {
    let lab = Lab::new(&["alice", "bob"], &[11, 22]);
    lab.enroll_on("alice", 11);
    lab.enroll_on("bob", 11);
    let pulled = Rc::new(Cell::new(false));
    let mut t = Pullable {
        inner: lab.key(22),
        pulled: pulled.clone(),
    };
    // The key is pulled as soon as alice is on it.
    let mut seen = |e: Event| {
        if matches!(e, Event::Changed { .. }) {
            pulled.set(true);
        }
    };
    let r = run_replace_seeing(&lab, 11, 22, &mut t, &mut seen).unwrap();
    assert_eq!(r.moved.len(), 1);
    assert_eq!(r.not_moved[0].user, "bob");
    assert_eq!(r.stopped_kind, Some(Kind::KeyRemoved));
    assert_eq!(lab.user_devices("alice"), [arn("alice", 22)]);
    // bob keeps his old device; his half-made new one was rolled back.
    assert_eq!(lab.user_devices("bob"), [arn("bob", 11)]);
    assert!(!lab.iam.device_exists(&arn("bob", 22)));
    assert!(r.without_mfa.is_empty());
    assert!(lj::unfinished(&lab.lines()).is_empty());
    // Run again with the key back: bob moves, alice is already there.
    let r = run_replace(&lab, 11, 22, &mut lab.key(22)).unwrap();
    let moved: Vec<&str> = r.moved.iter().map(|m| m.user.as_str()).collect();
    assert_eq!(moved, ["bob"]);
    assert_eq!(lab.user_devices("bob"), [arn("bob", 22)]);
}

#[test]
fn recover_finishes_a_killed_replace_only_for_users_on_the_new_key() {
    let lab = Lab::new(&["alice", "bob"], &[11, 22]);
    lab.enroll_on("alice", 11);
    lab.enroll_on("bob", 11);
    // A replace killed after alice's enrollment: its journal has the plan
    // and alice's `enrolled` line, nothing revoked.
    lab.enroll_on("alice", 22);
    let mut j = Journal::open(&lab.path(), Lock::Exclusive).unwrap();
    let mut log = lj::Log::new(&mut j, Op::Replace, "r1", Some(11));
    log.set_new_key(22);
    log.mark(Step::Begin, None).unwrap();
    for u in ["alice", "bob"] {
        let mut l = log.line(Step::Planned);
        l.account_id = Some(ACCOUNT.into());
        l.user = Some(u.into());
        l.device_serial = Some(arn(u, 11));
        log.append(&l).unwrap();
    }
    let mut l = log.line(Step::Enrolled);
    l.account_id = Some(ACCOUNT.into());
    l.user = Some("alice".into());
    l.device_serial = Some(arn("alice", 22));
    log.append(&l).unwrap();
    drop(j);
    let runs = lab.recover(None);
    assert_eq!(runs[0].outcome, Outcome::Finished, "{runs:?}");
    assert!(runs[0]
        .actions
        .iter()
        .any(|a| a.contains("bob is not on key 22")));
    assert_eq!(lab.user_devices("alice"), [arn("alice", 22)]);
    assert_eq!(lab.user_devices("bob"), [arn("bob", 11)]);
}

#[test]
fn resync_sends_a_fresh_pair_and_refuses_reused_codes_plainly() {
    let lab = Lab::new(&["alice"], &[11]);
    lab.enroll_on("alice", 11);
    let run = |now: u64| {
        let mut t = lab.key(11);
        let mut s = OathSession::select(&mut t).unwrap();
        let target = KeyTarget {
            session: &mut s,
            serial: Some(11),
            capacity: 64,
        };
        let req = resync::ResyncRequest {
            user: "alice".into(),
            device: None,
            credential: None,
            now,
        };
        rt().block_on(resync::resync(&lab.iam, target, &req, &mut Quiet))
    };
    // Right after the enable, every pair in AWS's window holds a used code.
    let now = lab.later(0);
    let e = run(now).unwrap_err();
    assert!(matches!(e, resync::ResyncError::Refused { .. }), "{e}");
    assert_eq!(e.kind(), Kind::InvalidAuthenticationCode);
    assert!(e.to_string().contains("run this again in 30 s"), "{e}");
    assert_eq!(lab.iam.calls_of(IamOp::ResyncMfaDevice).len(), 2);
    // A minute on: accepted, with codes after those of the enable.
    let r = run(lab.later(60)).unwrap();
    assert_eq!(r.device_arn, arn("alice", 11));
    assert_eq!(r.credential_id, id("alice"));
    let enabled_step = lab.t0.duration_since(UNIX_EPOCH).unwrap().as_secs() / 30;
    assert!(r.step > enabled_step + 1, "{r:?}");
}

#[test]
fn resync_picks_the_device_of_this_key_and_asks_when_it_cannot_tell() {
    let lab = Lab::new(&["alice"], &[11, 22]);
    lab.enroll_on("alice", 11);
    lab.enroll_on("alice", 22);
    let now = lab.later(60);
    let mut t = lab.key(22);
    let mut s = OathSession::select(&mut t).unwrap();
    let mut req = resync::ResyncRequest {
        user: "alice".into(),
        device: None,
        credential: None,
        now,
    };
    // A key without a serial cannot be told apart: the user must say.
    let target = KeyTarget {
        session: &mut s,
        serial: None,
        capacity: 64,
    };
    let e = rt()
        .block_on(resync::resync(&lab.iam, target, &req, &mut Quiet))
        .unwrap_err();
    assert!(matches!(e, resync::ResyncError::WhichDevice { .. }), "{e}");
    req.device = Some(arn("alice", 22));
    let target = KeyTarget {
        session: &mut s,
        serial: None,
        capacity: 64,
    };
    let r = rt()
        .block_on(resync::resync(&lab.iam, target, &req, &mut Quiet))
        .unwrap();
    assert_eq!(r.device_arn, arn("alice", 22));
    // Another user's device is refused.
    req.device = Some("arn:aws:iam::123456789012:mfa/mallory".into());
    let target = KeyTarget {
        session: &mut s,
        serial: Some(22),
        capacity: 64,
    };
    let e = rt()
        .block_on(resync::resync(&lab.iam, target, &req, &mut Quiet))
        .unwrap_err();
    assert!(matches!(e, resync::ResyncError::NotUsers { .. }), "{e}");
}

/// Puts a TOTP credential for `name` with `seed` on the key.
fn put(key: &SharedVirtualKey, name: &str, seed: &SecretBytes) {
    let mut t = key.clone();
    let mut s = OathSession::select(&mut t).unwrap();
    s.put(&CredentialData {
        id: CredentialId::new(Some("Amazon Web Services"), name, OathType::Totp, 30),
        algorithm: HashAlgorithm::Sha1,
        digits: 6,
        secret: seed.clone(),
        touch: false,
        counter: 0,
    })
    .unwrap();
}

fn offboard_with(
    lab: &Lab,
    user: &str,
    t: Option<&mut dyn Transport>,
    now: u64,
) -> (
    offboard::OffboardPlan,
    Result<offboard::OffboardReport, super::LifecycleError>,
) {
    let mut s = t.map(|t| OathSession::select(t).unwrap());
    let mut target = s.as_mut().map(|s| KeyTarget {
        session: s,
        serial: Some(11),
        capacity: 64,
    });
    let plan = rt()
        .block_on(offboard::plan(&lab.iam, user, target.as_mut()))
        .unwrap();
    let mut j = Journal::open(&lab.path(), Lock::Exclusive).unwrap();
    let r = rt().block_on(offboard::apply(
        &lab.iam, &plan, target, &mut j, now, &mut Quiet,
    ));
    (plan, r)
}

#[test]
fn offboard_removes_every_device_and_only_the_credential_aws_vouches_for() {
    let lab = Lab::new(&["alice"], &[11]);
    lab.enroll_on("alice", 11);
    lab.iam
        .add_other_mfa_device("alice", "arn:aws:iam::123456789012:u2f/user/alice/k-1");
    // A credential named for alice that is not her device's seed.
    put(
        &lab.key(11),
        "alice@elsewhere",
        &SecretBytes::new(vec![9; 20]),
    );
    let now = lab.later(60);
    let (plan, r) = offboard_with(&lab, "alice", Some(&mut lab.key(11)), now);
    assert_eq!(plan.devices.len(), 2);
    assert_eq!(plan.credentials.len(), 2);
    let r = r.unwrap();
    assert!(r.remaining.is_empty());
    assert!(lab.user_devices("alice").is_empty());
    assert!(!lab.iam.device_exists(&arn("alice", 11)));
    let outcome = |c: &str| {
        r.credentials
            .iter()
            .find(|x| x.credential_id == c)
            .unwrap()
            .clone()
    };
    assert!(outcome(&id("alice")).deleted);
    let other = outcome("Amazon Web Services:alice@elsewhere");
    assert!(
        !other.deleted && other.outcome.contains("nothing proves"),
        "{other:?}"
    );
    assert_eq!(lab.ids(11), ["Amazon Web Services:alice@elsewhere"]);
    // The journal holds the proof, never a seed or a code.
    let proven: Vec<Line> = lab
        .lines()
        .into_iter()
        .filter(|l| l.step == Step::Proven)
        .collect();
    assert_eq!(proven.len(), 1);
    assert!(proven[0]
        .proof
        .as_ref()
        .unwrap()
        .challenge
        .starts_with("ff"));
}

#[test]
fn offboard_without_the_key_leaves_the_credential_and_a_key_pulled_is_finished_by_recover() {
    let lab = Lab::new(&["alice", "bob"], &[11]);
    lab.enroll_on("alice", 11);
    let (_, r) = offboard_with(&lab, "alice", None, lab.later(60));
    let r = r.unwrap();
    assert!(r.credentials.is_empty());
    assert!(lab.user_devices("alice").is_empty());
    assert_eq!(lab.ids(11), [id("alice")]);

    // bob: the key goes between the proof and the credential's deletion.
    lab.later(0);
    lab.enroll_on("bob", 11);
    let pulled = Rc::new(Cell::new(false));
    let mut t = Pullable {
        inner: lab.key(11),
        pulled: pulled.clone(),
    };
    let now = lab.later(120);
    let mut s = OathSession::select(&mut t).unwrap();
    let mut target = Some(KeyTarget {
        session: &mut s,
        serial: Some(11),
        capacity: 64,
    });
    let plan = rt()
        .block_on(offboard::plan(&lab.iam, "bob", target.as_mut()))
        .unwrap();
    let mut j = Journal::open(&lab.path(), Lock::Exclusive).unwrap();
    let mut pull_on_change = |e: Event| {
        if matches!(e, Event::Changed { .. }) {
            pulled.set(true);
        }
    };
    let e = rt()
        .block_on(offboard::apply(
            &lab.iam,
            &plan,
            target,
            &mut j,
            now,
            &mut pull_on_change,
        ))
        .unwrap_err();
    drop(j);
    assert_eq!(e.kind(), Kind::KeyRemoved, "{e}");
    assert!(e.to_string().contains("mfakey recover"), "{e}");
    assert!(lab.user_devices("bob").is_empty());
    assert!(lab.ids(11).contains(&id("bob")));
    // recover without the key: says to insert it; with it: deletes by proof.
    let runs = lab.recover(None);
    assert_eq!(runs[0].outcome, Outcome::Incomplete);
    assert!(runs[0].remaining[0].contains("insert the key"), "{runs:?}");
    let mut k = lab.key(11);
    let mut s = OathSession::select(&mut k).unwrap();
    let runs = lab.recover(Some(&mut s));
    assert_eq!(runs[0].outcome, Outcome::Finished, "{runs:?}");
    assert!(!lab.ids(11).contains(&id("bob")));
    assert!(lj::unfinished(&lab.lines()).is_empty());
}

/// Keys offered one after another, as at a desk.
struct Arrivals(
    VecDeque<(u32, SharedVirtualKey)>,
    Option<(u32, SharedVirtualKey)>,
);

impl Desk for Arrivals {
    fn wait_for_key(&mut self) -> Result<Option<String>, TransportError> {
        self.1 = self.0.pop_front();
        Ok(self.1.as_ref().map(|(s, _)| format!("reader-{s}")))
    }
    fn open(&mut self, _reader: &str) -> Result<DeskKey, String> {
        let (serial, key) = self.1.clone().ok_or("no key")?;
        Ok(DeskKey {
            serial: Some(serial),
            capacity: 64,
            transport: Box::new(key),
        })
    }
    fn open_serial(&mut self, _serial: u32) -> Option<DeskKey> {
        None
    }
    fn wait_for_removal(&mut self, _reader: &str) -> Result<(), TransportError> {
        Ok(())
    }
    fn interrupted(&self) -> bool {
        false
    }
}

struct NoPassword;

impl Unlocker for NoPassword {
    fn unlock(&mut self, _s: &mut OathSession<'_>, _serial: Option<u32>) -> Result<(), Failure> {
        Ok(())
    }
}

#[test]
fn a_backup_key_in_the_same_sitting_and_a_failed_backup_says_the_first_stands() {
    let lab = Lab::new(&["alice"], &[11, 22]);
    let first = lab.enroll_on("alice", 11);
    let mut desk = Arrivals(
        [(11, lab.key(11)), (11, lab.key(11)), (22, lab.key(22))].into(),
        None,
    );
    let mut j = Journal::open(&lab.dir.path().join("journal.jsonl"), Lock::Shared).unwrap();
    let mut events = vec![];
    let b = rt()
        .block_on(enroll_backup(
            &lab.iam,
            &mut desk,
            &first,
            &opts("alice"),
            &mut NoPassword,
            &mut j,
            &mut |e| events.push(e),
        ))
        .unwrap();
    assert_eq!(b.device_serial, arn("alice", 22));
    assert_eq!(
        lab.user_devices("alice"),
        [arn("alice", 11), arn("alice", 22)]
    );
    assert_eq!(lab.ids(22), [id("alice")]);
    // The first key still in: skipped silently once, then said.
    let skipped: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::KeySkipped { .. }))
        .collect();
    assert_eq!(skipped.len(), 1, "{events:?}");
    assert!(matches!(events[0], Event::Next { backup: true, .. }));

    // No key comes: the run ends, the first enrollment stands, kind and
    // exit code say so.
    let mut none = Arrivals(VecDeque::new(), None);
    let e = rt()
        .block_on(enroll_backup(
            &lab.iam,
            &mut none,
            &first,
            &opts("alice"),
            &mut NoPassword,
            &mut j,
            &mut Quiet,
        ))
        .unwrap_err();
    assert!(matches!(e.cause, BackupCause::Interrupted));
    assert_eq!(e.kind(), Kind::BackupNotEnrolled);
    assert_eq!(e.kind().exit_code(), 10);
    assert!(
        e.to_string().contains("IS enrolled on the first key 11"),
        "{e}"
    );
}

#[test]
fn a_user_whose_credential_id_is_taken_on_the_new_key_is_not_moved_the_others_are() {
    let lab = Lab::new(&["alice", "bob", "carol"], &[11, 22]);
    for u in ["alice", "bob", "carol"] {
        lab.enroll_on(u, 11);
    }
    // The new key already holds a credential under bob's id.
    put(
        &lab.key(22),
        &format!("bob@{ACCOUNT}"),
        &SecretBytes::new(vec![5; 20]),
    );
    let r = run_replace(&lab, 11, 22, &mut lab.key(22)).unwrap();
    let moved: Vec<&str> = r.moved.iter().map(|m| m.user.as_str()).collect();
    assert_eq!(moved, ["alice", "carol"]);
    assert_eq!(r.not_moved[0].user, "bob");
    assert!(
        r.not_moved[0].error.contains("--force"),
        "{:?}",
        r.not_moved
    );
    assert_eq!(r.stopped, None);
    assert_eq!(lab.user_devices("bob"), [arn("bob", 11)]);
    assert_eq!(lab.user_devices("carol"), [arn("carol", 22)]);
}
