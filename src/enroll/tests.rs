//! The enrollment against the in-process virtual key and the fake
//! IAM (which, unlike moto, checks the two codes against the seed it issued).

use super::{enroll, EnrollError, EnrollOptions, EnrollReport, KeyTarget};
use crate::aws::fake::{FakeIam, Op};
use crate::aws::{AwsError, IamApi};
use crate::credential::SlotError;
use crate::oath::{CredentialData, CredentialId, HashAlgorithm, OathSession, OathType};
use crate::progress::Outcome;
use crate::progress::{Event as P, Quiet};
use crate::secret::{to_base32, SecretBytes};
use crate::transport::{Transport, TransportError};
use crate::undo::journal::{self, Entry, Event, Journal, Lock};
use crate::undo::recover::recover_run;
use crate::version::Version;
use crate::virtual_key::{Config, SharedVirtualKey, TouchPolicy, VirtualYubiKey};
use std::cell::Cell;
use std::rc::Rc;

const ALICE_ID: &str = "Amazon Web Services:alice@123456789012";
const ACCOUNT: &str = "123456789012";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
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

fn key(config: Config) -> SharedVirtualKey {
    SharedVirtualKey::new(VirtualYubiKey::new(config))
}

/// A transport that stops answering (the key was pulled out) from the
/// `fail_at`-th command on.
struct Pullable {
    inner: SharedVirtualKey,
    sent: usize,
    fail_at: Rc<Cell<usize>>,
}

impl Transport for Pullable {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.sent += 1;
        if self.sent >= self.fail_at.get() {
            return Err(TransportError::CardRemoved);
        }
        self.inner.transmit(apdu)
    }
}

struct World {
    iam: FakeIam,
    key: SharedVirtualKey,
    dir: tempfile::TempDir,
    events: Vec<P>,
}

impl World {
    fn new(config: Config) -> Self {
        let iam = FakeIam::new();
        iam.add_user("alice");
        World {
            iam,
            key: key(config),
            dir: tempfile::tempdir().unwrap(),
            events: vec![],
        }
    }

    fn journal_path(&self) -> std::path::PathBuf {
        self.dir.path().join("journal.jsonl")
    }

    fn run(&mut self, o: &EnrollOptions) -> Result<EnrollReport, EnrollError> {
        let mut t = self.key.clone();
        self.run_on(&mut t, o)
    }

    fn run_on(
        &mut self,
        t: &mut dyn Transport,
        o: &EnrollOptions,
    ) -> Result<EnrollReport, EnrollError> {
        let mut session = OathSession::select(t).unwrap();
        let journal = Journal::open(&self.journal_path(), Lock::Shared).unwrap();
        let events = &mut self.events;
        let target = KeyTarget {
            session: &mut session,
            serial: Some(12_345_678),
            capacity: 64,
        };
        rt().block_on(enroll(&self.iam, target, o, &journal, &mut |p| {
            events.push(p)
        }))
    }

    fn key_ids(&self) -> Vec<String> {
        self.key.with(|k| {
            k.oath_credentials()
                .into_iter()
                .map(|c| String::from_utf8_lossy(&c.id).into_owned())
                .collect()
        })
    }

    fn devices(&self) -> Vec<crate::aws::VirtualMfaDevice> {
        rt().block_on(self.iam.list_virtual_mfa_devices(false))
            .unwrap()
    }

    fn journal_events(&self) -> Vec<Event> {
        journal::read(&self.journal_path())
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect()
    }

    /// Nothing left anywhere: no device in IAM, no credential on the key.
    fn assert_clean(&self) {
        assert!(
            self.devices().is_empty(),
            "devices left: {:?}",
            self.devices().iter().map(|d| &d.serial).collect::<Vec<_>>()
        );
        assert!(
            self.key_ids().is_empty(),
            "credentials left: {:?}",
            self.key_ids()
        );
    }

    /// No spelling of `seed` in the journal.
    fn assert_journal_has_no(&self, seed: &SecretBytes) {
        let text = std::fs::read_to_string(self.journal_path()).unwrap_or_default();
        let b32 = to_base32(seed);
        for needle in [b32.to_string(), b32.to_lowercase(), hex(seed.expose())] {
            assert!(!text.contains(&needle), "the journal holds the seed");
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn enrolls_with_codes_aws_accepts() {
    let mut w = World::new(Config::default());
    let r = w.run(&opts("alice")).unwrap();
    assert_eq!(
        r.device_serial,
        "arn:aws:iam::123456789012:mfa/alice-yk12345678"
    );
    assert_eq!(r.credential_id, ALICE_ID);
    assert_eq!(
        w.iam.assigned_user(&r.device_serial).as_deref(),
        Some("alice")
    );
    assert_eq!(w.key_ids(), vec![ALICE_ID.to_string()]);
    // The fake refuses wrong codes: one accepted enable means the codes were right.
    assert_eq!(w.iam.calls_of(Op::EnableMfaDevice).len(), 1);
    assert_eq!(
        w.journal_events(),
        vec![
            Event::Begin,
            Event::Created,
            Event::Writing,
            Event::Written,
            Event::Enabled,
            Event::Done
        ]
    );
    let seed = w.iam.seed_of(&r.device_serial).unwrap();
    w.assert_journal_has_no(&seed);
    // The key holds that seed: its code now equals the host's.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut t = w.key.clone();
    let mut s = OathSession::select(&mut t).unwrap();
    let cred = s.list().unwrap().remove(0);
    assert_eq!(
        s.calculate(&cred, now).unwrap().value,
        crate::oath::otp::totp(&seed, HashAlgorithm::Sha1, 6, 30, now)
    );
    // Tags record the key.
    let dev = w.devices().remove(0);
    let tags = rt().block_on(w.iam.mfa_device_tags(&dev.serial)).unwrap();
    assert!(
        tags.contains(&("mfakey:key-serial".into(), "12345678".into())),
        "{tags:?}"
    );
}

#[test]
fn touch_credentials_announce_each_touch() {
    let mut w = World::new(Config::default());
    let mut o = opts("alice");
    o.touch = true;
    w.run(&o).unwrap();
    let touches: Vec<_> = w
        .events
        .iter()
        .filter(|e| matches!(e, P::Touch { .. }))
        .collect();
    assert_eq!(
        touches,
        vec![
            &P::Touch {
                user: Some("alice".into()),
                n: 1,
                of: 2,
                reader: None,
            },
            &P::Touch {
                user: Some("alice".into()),
                n: 2,
                of: 2,
                reader: None,
            }
        ]
    );
    assert_eq!(w.key.with(|k| k.touch_count()), 2);
}

#[test]
fn refused_codes_are_retried_once_with_a_later_pair() {
    let mut w = World::new(Config::default());
    w.iam
        .fail_nth(Op::EnableMfaDevice, 1, AwsError::InvalidAuthenticationCode);
    let r = w.run(&opts("alice")).unwrap();
    assert!(w.events.contains(&P::RetryCodes {
        user: "alice".into()
    }));
    assert_eq!(w.iam.calls_of(Op::EnableMfaDevice).len(), 2);
    assert_eq!(
        w.iam.assigned_user(&r.device_serial).as_deref(),
        Some("alice")
    );
}

#[test]
fn codes_refused_twice_roll_everything_back() {
    let mut w = World::new(Config::default());
    w.iam
        .fail_from(Op::EnableMfaDevice, 1, AwsError::InvalidAuthenticationCode);
    let e = w.run(&opts("alice")).unwrap_err();
    assert!(matches!(e, EnrollError::RolledBack { .. }), "{e}");
    assert!(matches!(
        e.root(),
        EnrollError::Aws(AwsError::InvalidAuthenticationCode)
    ));
    w.assert_clean();
    assert_eq!(w.journal_events().last(), Some(&Event::RolledBack));
}

#[test]
fn iam_going_away_at_each_step_leaves_nothing_or_says_what_is_left() {
    let unreachable = || AwsError::EndpointUnreachable {
        endpoint: "http://127.0.0.1:1".into(),
        detail: "refused".into(),
    };
    for op in [Op::CreateVirtualMfaDevice, Op::EnableMfaDevice] {
        let mut w = World::new(Config::default());
        w.iam.fail_from(op, 1, unreachable());
        let e = w.run(&opts("alice")).unwrap_err();
        assert!(
            matches!(
                e.root(),
                EnrollError::Aws(AwsError::EndpointUnreachable { .. })
            ),
            "{op:?}: {e}"
        );
        w.assert_clean();
    }
    // Verify fails (the second ListMFADevices; the first is preflight's).
    let mut w = World::new(Config::default());
    w.iam.fail_from(Op::ListMfaDevices, 2, unreachable());
    let e = w.run(&opts("alice")).unwrap_err();
    assert!(matches!(e, EnrollError::RolledBack { .. }), "{e}");
    w.assert_clean();
    assert_eq!(w.iam.calls_of(Op::DeactivateMfaDevice).len(), 1);
    // Everything fails from the enable on: the rollback cannot delete the device.
    let mut w = World::new(Config::default());
    w.iam.fail_from(Op::EnableMfaDevice, 1, unreachable());
    w.iam
        .fail_from(Op::DeleteVirtualMfaDevice, 1, unreachable());
    w.iam.fail_from(Op::DeactivateMfaDevice, 1, unreachable());
    let e = w.run(&opts("alice")).unwrap_err();
    let EnrollError::RollbackIncomplete { left, .. } = &e else {
        panic!("{e}")
    };
    assert!(
        left.iter().any(|l| l.contains("mfa/alice-yk12345678")),
        "{left:?}"
    );
    assert!(w.key_ids().is_empty(), "the key side was still undone");
    assert_eq!(w.journal_events().last(), Some(&Event::RollbackFailed));
}

#[test]
fn lost_answers_are_recognised() {
    // Create acted but its answer was lost; the SDK's retry met our own device.
    let mut w = World::new(Config::default());
    w.iam.lose_answer_nth(
        Op::CreateVirtualMfaDevice,
        1,
        AwsError::EntityAlreadyExists {
            message: "exists".into(),
        },
    );
    let r = w.run(&opts("alice")).unwrap();
    assert_eq!(w.devices().len(), 1);
    assert_eq!(
        w.iam.assigned_user(&r.device_serial).as_deref(),
        Some("alice")
    );
    // Enable acted but its answer was lost: the device is attached, so go on.
    let mut w = World::new(Config::default());
    w.iam.lose_answer_nth(
        Op::EnableMfaDevice,
        1,
        AwsError::Other {
            code: "InternalFailure".into(),
            message: "".into(),
        },
    );
    let r = w.run(&opts("alice")).unwrap();
    assert_eq!(
        w.iam.assigned_user(&r.device_serial).as_deref(),
        Some("alice")
    );
    // Create acted, then IAM went away: the device is removed once IAM answers.
    let mut w = World::new(Config::default());
    w.iam.lose_answer_nth(
        Op::CreateVirtualMfaDevice,
        1,
        AwsError::EndpointUnreachable {
            endpoint: "x".into(),
            detail: "reset".into(),
        },
    );
    assert!(w.run(&opts("alice")).is_err());
    w.assert_clean();
}

#[test]
fn key_pulled_out_at_each_step() {
    // Commands in an enrollment: 1 SELECT, 2 LIST (preflight), 3 PUT, 4 and 5 CALCULATE.
    for fail_at in 2..=5 {
        let mut w = World::new(Config::default());
        let at = Rc::new(Cell::new(usize::MAX));
        let mut t = Pullable {
            inner: w.key.clone(),
            sent: 0,
            fail_at: at.clone(),
        };
        at.set(fail_at);
        let e = w.run_on(&mut t, &opts("alice")).unwrap_err();
        assert!(
            matches!(
                e.root(),
                EnrollError::Oath(crate::oath::OathError::Transport(
                    TransportError::CardRemoved
                ))
            ),
            "at {fail_at}: {e}"
        );
        assert!(w.devices().is_empty(), "at {fail_at}: device left");
        if fail_at >= 3 {
            // The PUT may have landed: the rollback could not reach the key.
            assert!(
                matches!(e, EnrollError::RollbackIncomplete { .. }),
                "at {fail_at}: {e}"
            );
            // Re-inserted, recover removes what is left.
            let entries = journal::read(&w.journal_path()).unwrap();
            let open = journal::unfinished(&entries);
            assert_eq!(open.len(), 1);
            let mut t = w.key.clone();
            let mut s = OathSession::select(&mut t).unwrap();
            let j = Journal::open(&w.journal_path(), Lock::Exclusive).unwrap();
            let r = rt()
                .block_on(recover_run(
                    &w.iam,
                    ACCOUNT,
                    &open[0],
                    Some(&mut s),
                    &j,
                    &mut Quiet,
                ))
                .unwrap();
            assert_eq!(r.outcome, Outcome::RolledBack, "at {fail_at}: {r:?}");
        }
        w.assert_clean();
    }
}

/// The create went out with preflight's reads, and was undone: deleted
/// through the undo engine (which read its run tag first), journaled as
/// begun and rolled back, nothing left in IAM or on the key.
fn assert_taken_back(w: &World) {
    assert_eq!(w.iam.calls_of(Op::CreateVirtualMfaDevice).len(), 1);
    assert_eq!(w.iam.calls_of(Op::DeleteVirtualMfaDevice).len(), 1);
    let tags_read = w
        .iam
        .calls()
        .iter()
        .position(|c| c.op() == Op::MfaDeviceTags);
    let deleted = w
        .iam
        .calls()
        .iter()
        .position(|c| c.op() == Op::DeleteVirtualMfaDevice);
    assert!(
        tags_read < deleted,
        "the run tag is checked before the delete"
    );
    assert_eq!(w.journal_events(), vec![Event::Begin, Event::RolledBack]);
    assert!(journal::unfinished(&journal::read(&w.journal_path()).unwrap()).is_empty());
    w.assert_clean();
}

#[test]
fn preflight_refusals_leave_nothing() {
    // Eight MFA devices already.
    let mut w = World::new(Config::default());
    for i in 0..8 {
        w.iam.add_other_mfa_device(
            "alice",
            &format!("arn:aws:iam::123456789012:u2f/user/alice/k{i}"),
        );
    }
    assert!(matches!(
        w.run(&opts("alice")).unwrap_err(),
        EnrollError::TooManyDevices { count: 8, .. }
    ));
    assert_taken_back(&w);

    // A device of that name exists, left by an earlier mfakey run: the
    // create itself is refused, so nothing was made.
    let w2 = World::new(Config::default());
    let tags = vec![("mfakey:managed".to_string(), "true".to_string())];
    rt().block_on(
        w2.iam
            .create_virtual_mfa_device("alice-yk12345678", "/", &tags),
    )
    .unwrap();
    let mut w2 = w2;
    let e = w2.run(&opts("alice")).unwrap_err();
    assert!(matches!(&e, EnrollError::DeviceNameTaken { .. }), "{e}");
    assert!(e.to_string().contains("mfakey cleanup --delete"), "{e}");
    assert_eq!(w2.devices().len(), 1, "the other run's device stays");
    assert!(w2.iam.calls_of(Op::DeleteVirtualMfaDevice).is_empty());
    assert_eq!(w2.journal_events(), vec![Event::Begin, Event::RolledBack]);

    // No such user: the caller's account comes from STS for the undo.
    let mut w3 = World::new(Config::default());
    let e = w3.run(&opts("bob")).unwrap_err();
    assert!(
        matches!(e, EnrollError::Aws(AwsError::NoSuchEntity { .. })),
        "{e}"
    );
    assert_taken_back(&w3);

    // A skewed clock.
    let mut w4 = World::new(Config::default());
    w4.iam.set_server_skew(40);
    assert!(matches!(
        w4.run(&opts("alice")).unwrap_err(),
        EnrollError::ClockSkew { .. }
    ));
    assert_taken_back(&w4);
    w4.iam.set_server_skew(10);
    w4.run(&opts("alice")).unwrap();
}

#[test]
fn the_create_goes_out_with_the_reads_in_one_round() {
    let mut w = World::new(Config::default());
    w.run(&opts("alice")).unwrap();
    let ops: Vec<Op> = w.iam.calls().iter().map(|c| c.op()).collect();
    // Preflight's reads and the create are sent before any of them is
    // looked at; the enable comes after all of them, then the verify.
    let create = ops
        .iter()
        .position(|o| *o == Op::CreateVirtualMfaDevice)
        .unwrap();
    let enable = ops.iter().position(|o| *o == Op::EnableMfaDevice).unwrap();
    let first_round = &ops[..enable];
    for op in [Op::GetUser, Op::ListMfaDevices, Op::AccountAlias] {
        assert!(first_round.contains(&op), "{op:?} in {ops:?}");
    }
    // The account's devices are not listed: the create itself refuses a
    // taken name (and only then are they listed, to say whose it is).
    assert!(!ops.contains(&Op::ListVirtualMfaDevices), "{ops:?}");
    assert_eq!(create + 1, enable, "{ops:?}");
    assert_eq!(
        &ops[enable..],
        [Op::EnableMfaDevice, Op::ListMfaDevices],
        "{ops:?}"
    );
    // Nothing to undo: the journal reads as before.
    assert_eq!(
        w.journal_events(),
        vec![
            Event::Begin,
            Event::Created,
            Event::Writing,
            Event::Written,
            Event::Enabled,
            Event::Done
        ]
    );
    // The Begin line went out before the create, without what IAM had not
    // said yet; the Created line names the account and the credential.
    let entries = journal::read(&w.journal_path()).unwrap();
    assert_eq!(entries[0].account_id, None);
    assert_eq!(entries[0].device_name.as_deref(), Some("alice-yk12345678"));
    assert_eq!(entries[1].account_id.as_deref(), Some(ACCOUNT));
    assert_eq!(entries[1].credential_id.as_deref(), Some(ALICE_ID));
}

#[test]
fn a_refusal_whose_undo_fails_says_what_is_left_and_recover_removes_it() {
    let mut w = World::new(Config::default());
    w.iam.set_server_skew(40);
    let unreachable = AwsError::EndpointUnreachable {
        endpoint: "http://127.0.0.1:1".into(),
        detail: "refused".into(),
    };
    w.iam.fail_nth(Op::DeleteVirtualMfaDevice, 1, unreachable);
    let e = w.run(&opts("alice")).unwrap_err();
    let EnrollError::RollbackIncomplete { cause, left, .. } = &e else {
        panic!("{e}")
    };
    assert!(matches!(**cause, EnrollError::ClockSkew { .. }), "{e}");
    assert!(
        left.iter().any(|l| l.contains("mfa/alice-yk12345678")),
        "{left:?}"
    );
    assert_eq!(
        w.journal_events(),
        vec![Event::Begin, Event::RollbackFailed]
    );
    // `recover` finds the device by its name and this run's tag.
    let open = journal::unfinished(&journal::read(&w.journal_path()).unwrap());
    assert_eq!(open.len(), 1);
    let j = Journal::open(&w.journal_path(), Lock::Exclusive).unwrap();
    let r = rt()
        .block_on(recover_run(&w.iam, ACCOUNT, &open[0], None, &j, &mut Quiet))
        .unwrap();
    assert_eq!(r.outcome, Outcome::RolledBack, "{r:?}");
    w.assert_clean();
}

#[test]
fn a_key_that_could_refuse_gets_preflight_first() {
    // A credential the new id could turn out to be (any account): the
    // reads come first and nothing is created before the key is checked.
    let mut w = World::new(Config::default());
    {
        let mut t = w.key.clone();
        let mut s = OathSession::select(&mut t).unwrap();
        let data = CredentialData {
            id: CredentialId::new(
                Some("Amazon Web Services"),
                "alice@123456789012",
                OathType::Totp,
                30,
            ),
            algorithm: HashAlgorithm::Sha1,
            digits: 6,
            secret: SecretBytes::new(vec![1; 20]),
            touch: false,
            counter: 0,
        };
        s.put(&data).unwrap();
    }
    assert!(matches!(
        w.run(&opts("alice")).unwrap_err(),
        EnrollError::Slot(SlotError::Exists { .. })
    ));
    assert!(w.iam.calls_of(Op::CreateVirtualMfaDevice).is_empty());
    assert!(w.journal_events().is_empty());
    // Another user's credential does not stop the overlap.
    w.iam.add_user("bob");
    w.run(&opts("bob")).unwrap();
    let ops: Vec<Op> = w.iam.calls().iter().map(|c| c.op()).collect();
    let create = ops
        .iter()
        .position(|o| *o == Op::CreateVirtualMfaDevice)
        .unwrap();
    assert_eq!(ops[create + 1], Op::EnableMfaDevice, "{ops:?}");
}

#[test]
fn key_side_preflight() {
    // A full 5.4.3 key (32 credentials).
    let w = World::new(Config {
        firmware: Version(5, 4, 3),
        ..Config::default()
    });
    {
        let mut t = w.key.clone();
        let mut s = OathSession::select(&mut t).unwrap();
        for i in 0..32 {
            let data = CredentialData {
                id: CredentialId::new(Some("x"), &format!("n{i}"), OathType::Totp, 30),
                algorithm: HashAlgorithm::Sha1,
                digits: 6,
                secret: SecretBytes::new(vec![1; 20]),
                touch: false,
                counter: 0,
            };
            s.put(&data).unwrap();
        }
    }
    let mut t = w.key.clone();
    let mut session = OathSession::select(&mut t).unwrap();
    let journal = Journal::open(&w.journal_path(), Lock::Shared).unwrap();
    let target = KeyTarget {
        session: &mut session,
        serial: Some(1),
        capacity: 32,
    };
    let e = rt()
        .block_on(enroll(&w.iam, target, &opts("alice"), &journal, &mut Quiet))
        .unwrap_err();
    assert!(
        matches!(e, EnrollError::Slot(SlotError::Full { capacity: 32 })),
        "{e}"
    );
    assert!(w.iam.calls_of(Op::CreateVirtualMfaDevice).is_empty());

    // The same id already on the key: refused, then --force overwrites.
    let mut w = World::new(Config::default());
    w.run(&opts("alice")).unwrap();
    let mut o = opts("alice");
    o.device_name = Some("alice-second".into());
    assert!(matches!(
        w.run(&o).unwrap_err(),
        EnrollError::Slot(SlotError::Exists { .. })
    ));
    o.force = true;
    w.run(&o).unwrap();
    assert_eq!(w.key_ids().len(), 1);
}

#[test]
fn recover_finishes_a_run_that_had_completed() {
    let mut w = World::new(Config::default());
    let r = w.run(&opts("alice")).unwrap();
    // Pretend the process died right before writing Done.
    let entries: Vec<Entry> = journal::read(&w.journal_path())
        .unwrap()
        .into_iter()
        .filter(|e| e.event != Event::Done)
        .collect();
    let mut t = w.key.clone();
    let mut s = OathSession::select(&mut t).unwrap();
    let j = Journal::open(&w.dir.path().join("j2"), Lock::Exclusive).unwrap();
    let out = rt()
        .block_on(recover_run(
            &w.iam,
            ACCOUNT,
            &entries,
            Some(&mut s),
            &j,
            &mut Quiet,
        ))
        .unwrap();
    assert_eq!(out.outcome, Outcome::Finished);
    assert_eq!(
        w.iam.assigned_user(&r.device_serial).as_deref(),
        Some("alice")
    );
    assert_eq!(w.key_ids().len(), 1);
}

#[test]
fn recover_without_the_key_says_so() {
    let mut w = World::new(Config::default());
    w.iam
        .fail_from(Op::EnableMfaDevice, 1, AwsError::Throttling { attempts: 5 });
    w.iam.fail_from(
        Op::DeleteVirtualMfaDevice,
        1,
        AwsError::Throttling { attempts: 5 },
    );
    let at = Rc::new(Cell::new(6)); // the rollback's DELETE on the key fails too
    let mut t = Pullable {
        inner: w.key.clone(),
        sent: 0,
        fail_at: at,
    };
    assert!(matches!(
        w.run_on(&mut t, &opts("alice")).unwrap_err(),
        EnrollError::RollbackIncomplete { .. }
    ));
    let open = journal::unfinished(&journal::read(&w.journal_path()).unwrap());
    let j = Journal::open(&w.journal_path(), Lock::Exclusive).unwrap();
    // The key is not here (and IAM still throttles deletes): incomplete, and it says why.
    let out = rt()
        .block_on(recover_run(&w.iam, ACCOUNT, &open[0], None, &j, &mut Quiet))
        .unwrap();
    assert_eq!(out.outcome, Outcome::Incomplete);
    assert!(
        out.remaining.iter().any(|r| r.contains("insert it")),
        "{:?}",
        out.remaining
    );
}

#[test]
fn touch_timeout_during_check_rolls_back() {
    let mut w = World::new(Config {
        touch: TouchPolicy::Timeout,
        ..Config::default()
    });
    let mut o = opts("alice");
    o.touch = true;
    let e = w.run(&o).unwrap_err();
    assert!(
        matches!(
            e.root(),
            EnrollError::Oath(crate::oath::OathError::TouchTimeout)
        ),
        "{e}"
    );
    w.assert_clean();
}

#[test]
fn step_names_are_their_json_names() {
    use crate::progress::Step;
    for s in [
        Step::Preflight,
        Step::Create,
        Step::Write,
        Step::Check,
        Step::Enable,
        Step::Verify,
        Step::Settle,
        Step::Rollback,
    ] {
        assert_eq!(serde_json::to_value(s).unwrap(), s.name());
    }
}

#[test]
fn a_refused_put_wrote_nothing_a_lost_answer_may_have() {
    use crate::credential::{write, Placement};
    let put_aws_credential = |s: &mut OathSession<'_>, id: &CredentialId, seed, touch| {
        write(s, id, &Placement::Direct, seed, touch).map(|w| w.credential)
    };
    let seed = SecretBytes::new(vec![7u8; 20]);
    let id = |n: usize| super::naming::credential_id(&format!("u{n}"), "acct", "123456789012");
    // A full key refuses (6A84): nothing may be on it.
    let mut k = key(Config::default());
    let mut s = OathSession::select(&mut k).unwrap();
    for n in 0..s.capacity() {
        let c = put_aws_credential(&mut s, &id(n), &seed, false).unwrap();
        assert_eq!(c.touch, Some(false));
    }
    let f = put_aws_credential(&mut s, &id(999), &seed, true).unwrap_err();
    assert!(
        matches!(f.error, crate::oath::OathError::KeyFull { .. }),
        "{:?}",
        f.error
    );
    assert_eq!(f.maybe_written, None);
    // The key gone during PUT: the write may have landed.
    let at = Rc::new(Cell::new(usize::MAX));
    let mut t = Pullable {
        inner: key(Config::default()),
        sent: 0,
        fail_at: at.clone(),
    };
    let mut s = OathSession::select(&mut t).unwrap();
    at.set(2);
    let f = put_aws_credential(&mut s, &id(1), &seed, false).unwrap_err();
    assert_eq!(f.maybe_written, Some(id(1).to_bytes()));
}

/// IAM behind a logical clock: every call takes one tick to go out and one
/// to come back, with a yield in between, so calls sent together overlap
/// and calls sent after an answer do not. The sequential rounds are the
/// most calls that do not overlap at all (each round trip is one of them).
struct Rounds<'a> {
    inner: &'a FakeIam,
    clock: std::sync::atomic::AtomicUsize,
    spans: std::sync::Mutex<Vec<(usize, usize)>>,
}

impl<'a> Rounds<'a> {
    fn new(inner: &'a FakeIam) -> Self {
        Rounds {
            inner,
            clock: Default::default(),
            spans: Default::default(),
        }
    }

    async fn call<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        use std::sync::atomic::Ordering::SeqCst;
        let start = self.clock.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        let out = f.await;
        tokio::task::yield_now().await;
        let end = self.clock.fetch_add(1, SeqCst);
        self.spans.lock().unwrap().push((start, end));
        out
    }

    /// The largest set of calls no two of which overlap.
    fn sequential_rounds(&self) -> usize {
        let mut spans = self.spans.lock().unwrap().clone();
        spans.sort_by_key(|s| s.1);
        let mut rounds = 0;
        let mut free_from = 0;
        for (start, end) in spans {
            if rounds == 0 || start > free_from {
                rounds += 1;
                free_from = end;
            }
        }
        rounds
    }
}

impl IamApi for Rounds<'_> {
    async fn get_user(&self, name: &str) -> Result<crate::aws::User, AwsError> {
        self.call(self.inner.get_user(name)).await
    }
    async fn list_mfa_devices(&self, user: &str) -> Result<Vec<crate::aws::MfaDevice>, AwsError> {
        self.call(self.inner.list_mfa_devices(user)).await
    }
    async fn list_virtual_mfa_devices(
        &self,
        unassigned_only: bool,
    ) -> Result<Vec<crate::aws::VirtualMfaDevice>, AwsError> {
        self.call(self.inner.list_virtual_mfa_devices(unassigned_only))
            .await
    }
    async fn create_virtual_mfa_device(
        &self,
        name: &str,
        path: &str,
        tags: &[(String, String)],
    ) -> Result<crate::aws::CreatedDevice, AwsError> {
        self.call(self.inner.create_virtual_mfa_device(name, path, tags))
            .await
    }
    async fn enable_mfa_device(
        &self,
        user: &str,
        serial: &str,
        code1: &str,
        code2: &str,
    ) -> Result<(), AwsError> {
        self.call(self.inner.enable_mfa_device(user, serial, code1, code2))
            .await
    }
    async fn resync_mfa_device(
        &self,
        user: &str,
        serial: &str,
        code1: &str,
        code2: &str,
    ) -> Result<(), AwsError> {
        self.call(self.inner.resync_mfa_device(user, serial, code1, code2))
            .await
    }
    async fn deactivate_mfa_device(&self, user: &str, serial: &str) -> Result<(), AwsError> {
        self.call(self.inner.deactivate_mfa_device(user, serial))
            .await
    }
    async fn delete_virtual_mfa_device(&self, serial: &str) -> Result<(), AwsError> {
        self.call(self.inner.delete_virtual_mfa_device(serial))
            .await
    }
    async fn mfa_device_tags(&self, serial: &str) -> Result<Vec<(String, String)>, AwsError> {
        self.call(self.inner.mfa_device_tags(serial)).await
    }
    async fn create_user(
        &self,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<crate::aws::User, AwsError> {
        self.call(self.inner.create_user(name, tags)).await
    }
    async fn add_user_to_group(&self, user: &str, group: &str) -> Result<(), AwsError> {
        self.call(self.inner.add_user_to_group(user, group)).await
    }
    async fn account_id(&self) -> Result<String, AwsError> {
        self.call(self.inner.account_id()).await
    }
    async fn account_alias(&self) -> Result<Option<String>, AwsError> {
        self.call(self.inner.account_alias()).await
    }
    async fn mfa_device_certifications(
        &self,
        serial: &str,
    ) -> Result<Vec<(String, String)>, AwsError> {
        self.call(self.inner.mfa_device_certifications(serial))
            .await
    }
    async fn account_mfa_enabled(&self) -> Result<bool, AwsError> {
        self.call(self.inner.account_mfa_enabled()).await
    }
    async fn server_time(&self) -> Result<std::time::SystemTime, AwsError> {
        self.call(self.inner.server_time()).await
    }
}

#[test]
fn three_sequential_iam_rounds_when_the_key_has_room() {
    let w = World::new(Config::default());
    let iam = Rounds::new(&w.iam);
    let mut t = w.key.clone();
    let mut session = OathSession::select(&mut t).unwrap();
    let journal = Journal::open(&w.journal_path(), Lock::Shared).unwrap();
    let target = KeyTarget {
        session: &mut session,
        serial: Some(12_345_678),
        capacity: 64,
    };
    rt().block_on(enroll(&iam, target, &opts("alice"), &journal, &mut Quiet))
        .unwrap();
    // Reads and create, enable, verify.
    assert_eq!(
        iam.sequential_rounds(),
        3,
        "{:?}",
        iam.spans.lock().unwrap()
    );
    // The harness can tell: a key that might refuse takes preflight first.
    let w = World::new(Config::default());
    let iam = Rounds::new(&w.iam);
    let mut t = w.key.clone();
    let mut session = OathSession::select(&mut t).unwrap();
    let target = KeyTarget {
        session: &mut session,
        serial: Some(12_345_678),
        capacity: 0,
    };
    let _ = rt().block_on(enroll(&iam, target, &opts("alice"), &journal, &mut Quiet));
    assert_eq!(
        iam.sequential_rounds(),
        1,
        "preflight only: the key is full"
    );
}
