//! Console enrollment against the in-process key and the fake IAM.

use super::*;
use crate::aws::fake::{FakeIam, Op};
use crate::credential::{Placement, Removal};
use crate::oath::otp;
use crate::oath::HashAlgorithm;
use crate::progress::{Event, Quiet};
use crate::virtual_key::{Config, SharedVirtualKey, TouchPolicy, VirtualYubiKey};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn key(touch: TouchPolicy) -> SharedVirtualKey {
    SharedVirtualKey::new(VirtualYubiKey::new(Config {
        touch,
        ..Config::default()
    }))
}

fn seed() -> SecretBytes {
    SecretBytes::new((1..=20).collect())
}

const MS: Duration = Duration::from_millis(5);

/// A failed write, and what may be on the key.
type Failed = (ConsoleError, Option<Vec<u8>>);

/// The console flow's write: the secret onto the key, then its codes checked.
fn write(
    s: &mut OathSession<'_>,
    id: &CredentialId,
    seed: &SecretBytes,
    touch: bool,
    on_touch: &mut dyn FnMut(u8, u8),
) -> Result<(Written, ConsoleCodes), Failed> {
    let w = credential::write(s, id, &Placement::Direct, seed, touch)
        .map_err(|f| (f.error.into(), f.maybe_written))?;
    match codes_now(s, &w, seed, on_touch) {
        Ok(c) => Ok((w, c)),
        Err(e) => Err((e, Some(w.credential.raw_id.clone()))),
    }
}

fn check_key(
    s: &mut OathSession<'_>,
    capacity: usize,
    id: &CredentialId,
    force: bool,
) -> Result<Placement, SlotError> {
    credential::placement(s, capacity, id, force, "0123456789abcdef")
}

fn remove(s: &mut OathSession<'_>, raw: &[u8]) -> bool {
    credential::delete_proven_in_session(s, raw).unwrap() == Removal::Deleted
}

#[test]
fn ids_follow_aws_labels_and_fit() {
    let root = ConsoleTarget::Root
        .credential_id("acme-prod", None)
        .unwrap();
    assert_eq!(root.to_string(), "Amazon Web Services:root@acme-prod");
    let u = ConsoleTarget::User("bob".into())
        .credential_id("123456789012", None)
        .unwrap();
    assert_eq!(u.to_string(), "Amazon Web Services:bob@123456789012");
    // Too long: the account id replaces the alias, then the name stands alone.
    let long = ConsoleTarget::Root
        .credential_id(&"x".repeat(60), Some("123456789012"))
        .unwrap();
    assert_eq!(long.to_string(), "Amazon Web Services:root@123456789012");
    let name = "a.very.long.firstname.lastname.contractor";
    let u = ConsoleTarget::User(name.into())
        .credential_id("acme", Some("123456789012"))
        .unwrap();
    assert_eq!(u.name, name);
    let u = ConsoleTarget::User("u".repeat(80))
        .credential_id("acme", None)
        .unwrap();
    assert!(u.to_bytes().len() <= 64 && u.name.ends_with('~'));
    assert!(matches!(
        ConsoleTarget::Root.credential_id("", None),
        Err(ConsoleError::Invalid { .. })
    ));
    assert!(matches!(
        ConsoleTarget::User(String::new()).credential_id("a", None),
        Err(ConsoleError::Invalid { .. })
    ));
    assert_eq!(ConsoleTarget::Root.console_steps().len(), 6);
    assert!(ConsoleTarget::Root.console_steps()[0].contains("root user"));
}

#[test]
fn write_checks_codes_and_hands_out_the_current_pair() {
    let mut t = key(TouchPolicy::Approve);
    let mut s = OathSession::select(&mut t).unwrap();
    let id = ConsoleTarget::Root.credential_id("acme", None).unwrap();
    check_key(&mut s, 64, &id, false).unwrap();
    let mut touches = vec![];
    let (w, c) = write(&mut s, &id, &seed(), true, &mut |n, of| {
        touches.push((n, of))
    })
    .unwrap();
    assert_eq!(touches, [(1, 2), (2, 2)]);
    let at = |step: u64| otp::totp(&seed(), HashAlgorithm::Sha1, 6, 30, step * 30);
    assert_eq!(c.code1, at(c.step - 1));
    assert_eq!(c.code2, at(c.step));
    assert!(c.seconds_left >= 1 && c.seconds_left <= 30);
    assert!(c.step.abs_diff(unix_now() / 30) <= 1);
    // A later read gives the same kind of pair.
    let again = codes_now(&mut s, &w, &seed(), &mut |_, _| {}).unwrap();
    assert_eq!(again.code2, at(again.step));
    // The id is now taken; --force lets it through.
    assert!(matches!(
        check_key(&mut s, 64, &id, false),
        Err(SlotError::Exists { .. })
    ));
    // With --force the new one goes beside it until it is proven.
    assert!(matches!(
        check_key(&mut s, 64, &id, true).unwrap(),
        Placement::Beside { .. }
    ));
    // Capacity reached for another id.
    let other = ConsoleTarget::User("bob".into())
        .credential_id("acme", None)
        .unwrap();
    assert!(matches!(
        check_key(&mut s, 1, &other, false),
        Err(SlotError::Full { capacity: 1 })
    ));
    assert!(remove(&mut s, &w.credential.raw_id));
    assert!(s.list().unwrap().is_empty());
    // Removing again is fine: it was not there.
    assert!(!remove(&mut s, &w.credential.raw_id));
}

#[test]
fn touch_timeout_reports_the_credential_that_was_written() {
    let mut t = key(TouchPolicy::Timeout);
    let mut s = OathSession::select(&mut t).unwrap();
    let id = ConsoleTarget::Root.credential_id("acme", None).unwrap();
    let (error, credential) = write(&mut s, &id, &seed(), true, &mut |_, _| {}).unwrap_err();
    assert!(matches!(error, ConsoleError::Oath(OathError::TouchTimeout)));
    assert_eq!(credential.as_deref(), Some(id.to_bytes().as_slice()));
    assert!(remove(&mut s, &id.to_bytes()));
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn root_verification_waits_until_account_mfa_enabled() {
    let iam = FakeIam::new();
    // Baseline (call 1) and two polls see 0; the fourth call sees 1.
    iam.set_root_mfa_from_call(Some(4));
    rt().block_on(async {
        let b = baseline(&iam, &ConsoleTarget::Root).await.unwrap();
        assert_eq!(
            b,
            Baseline::Root {
                already_enabled: false
            }
        );
        let mut waits = 0;
        let mut count = |e: Event| {
            if matches!(e, Event::Waiting { .. }) {
                waits += 1
            }
        };
        let v = wait_verified(&iam, &b, Duration::from_secs(5), MS, "id", &mut count)
            .await
            .unwrap();
        assert!(matches!(v, Verification::RootMfaEnabled { .. }), "{v:?}");
        assert_eq!(waits, 2);
        assert_eq!(iam.calls_of(Op::AccountSummary).len(), 4);
    });
}

#[test]
fn root_verification_times_out_and_says_so() {
    let iam = FakeIam::new();
    rt().block_on(async {
        let b = baseline(&iam, &ConsoleTarget::Root).await.unwrap();
        let mut last = None;
        let mut note = |e: Event| {
            if let Event::Waiting {
                elapsed_ms,
                timeout_ms,
            } = e
            {
                last = Some((elapsed_ms, timeout_ms))
            }
        };
        let e = wait_verified(&iam, &b, Duration::from_millis(60), MS, "the-id", &mut note)
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ConsoleError::NotVerified { .. }));
        assert!(msg.contains("AccountMFAEnabled 0"), "{msg}");
        assert!(msg.contains("stays on the key"), "{msg}");
        assert!(msg.contains("mfakey oath delete \"the-id\""), "{msg}");
        let (el, to) = last.expect("progress reported");
        assert!(el < to);
    });
}

#[test]
fn root_already_enabled_cannot_be_told_apart() {
    let iam = FakeIam::new();
    iam.set_root_mfa_from_call(Some(1));
    rt().block_on(async {
        let b = baseline(&iam, &ConsoleTarget::Root).await.unwrap();
        let v = wait_verified(&iam, &b, Duration::from_secs(1), MS, "id", &mut Quiet)
            .await
            .unwrap();
        assert_eq!(v, Verification::RootAlreadyEnabled);
    });
}

#[test]
fn user_device_appears_never_appears_or_appears_for_another_user() {
    let iam = FakeIam::new();
    iam.add_user("bob");
    iam.add_user("carol");
    iam.add_other_mfa_device("bob", "arn:aws:iam::123456789012:mfa/old");
    let bob = ConsoleTarget::User("bob".into());
    rt().block_on(async {
        // Appears while waiting (the console step done meanwhile).
        let b = baseline(&iam, &bob).await.unwrap();
        let added = async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            iam.add_other_mfa_device("bob", "arn:aws:iam::123456789012:mfa/bob-console");
        };
        let mut quiet = Quiet;
        let wait = wait_verified(&iam, &b, Duration::from_secs(5), MS, "id", &mut quiet);
        let (v, ()) = tokio::join!(wait, added);
        match v.unwrap() {
            Verification::UserDevice { serial, .. } => {
                assert_eq!(serial, "arn:aws:iam::123456789012:mfa/bob-console")
            }
            v => panic!("{v:?}"),
        }

        // Never appears: the old device does not count.
        let b = baseline(&iam, &bob).await.unwrap();
        let e = wait_verified(&iam, &b, Duration::from_millis(50), MS, "id", &mut Quiet)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no new device for bob"), "{e}");

        // Appears for another user: still not bob's.
        let b = baseline(&iam, &bob).await.unwrap();
        iam.add_other_mfa_device("carol", "arn:aws:iam::123456789012:mfa/carol");
        let e = wait_verified(&iam, &b, Duration::from_millis(50), MS, "id", &mut Quiet)
            .await
            .unwrap_err();
        assert!(matches!(e, ConsoleError::NotVerified { .. }));
    });
}

#[test]
fn iam_errors_while_waiting_are_reported() {
    let iam = FakeIam::new();
    iam.fail_nth(
        Op::AccountSummary,
        2,
        AwsError::AccessDenied {
            action: "iam:GetAccountSummary".into(),
            message: "no".into(),
        },
    );
    rt().block_on(async {
        let b = baseline(&iam, &ConsoleTarget::Root).await.unwrap();
        let e = wait_verified(&iam, &b, Duration::from_secs(1), MS, "id", &mut Quiet)
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            ConsoleError::Aws(AwsError::AccessDenied { .. })
        ));
    });
}

#[test]
fn seconds_left_counts_down_the_window() {
    assert_eq!(seconds_left(10, 300), 30);
    assert_eq!(seconds_left(10, 329), 1);
    assert_eq!(seconds_left(10, 340), 0);
}
