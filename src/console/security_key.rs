//! `fido2 register`: the console registers the security key (AWS has no API
//! for it); mfakey waits, bounded, for the new `u2f/` device to show in
//! ListMFADevices for that user (or the caller, for root) and names it.

use crate::aws::{AwsError, IamApi};
use crate::progress::Progress;
use std::time::Duration;

/// Whose security key: an IAM user, or the caller itself (root signs in
/// with its own credentials; ListMFADevices without a user name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyOwner {
    User(String),
    Caller,
}

impl KeyOwner {
    fn iam_name(&self) -> &str {
        match self {
            KeyOwner::User(u) => u,
            KeyOwner::Caller => "",
        }
    }

    fn describe(&self) -> String {
        match self {
            KeyOwner::User(u) => format!("user {u}"),
            KeyOwner::Caller => "the signed-in principal (root)".into(),
        }
    }

    /// The console page where the security key is assigned.
    pub(crate) fn console_url(&self) -> String {
        match self {
            KeyOwner::User(u) => format!(
                "https://console.aws.amazon.com/iam/home#/users/details/{u}?section=security_credentials"
            ),
            KeyOwner::Caller => "https://console.aws.amazon.com/iam/home#/security_credentials".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SecurityKeyError {
    #[error("no new security key (u2f/ device) showed for {who} within {waited_secs} s: check the console finished (the key was touched and the device named), then look with `aws iam list-mfa-devices`")]
    NotSeen { who: String, waited_secs: u64 },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// The owner's MFA device serials before the console step.
pub(crate) async fn baseline<I: IamApi>(
    iam: &I,
    owner: &KeyOwner,
) -> Result<Vec<String>, AwsError> {
    Ok(iam
        .list_mfa_devices(owner.iam_name())
        .await?
        .into_iter()
        .map(|d| d.serial)
        .collect())
}

/// What the operator does in the console to register the key.
pub(crate) fn console_steps(owner: &KeyOwner) -> Vec<String> {
    vec![
        format!("Open {}", owner.console_url()),
        "  1. Under Multi-factor authentication (MFA) choose Assign MFA device; name it.".into(),
        "  2. Choose Passkey or security key, then Next.".into(),
        "  3. Follow the browser: enter the key's PIN and touch the key.".into(),
        "  (AWS does not accept security keys through virtual machines or remote desktops.)".into(),
    ]
}

/// A key AWS now shows, and what AWS says it is certified as (GetMFADevice;
/// `Err`: why that could not be read).
#[derive(Clone, Debug)]
pub(crate) struct Registered {
    pub device_serial: String,
    pub certifications: Result<Vec<(String, String)>, String>,
}

/// `fido2 register`: reads what the owner has, lets the operator act in the
/// console (`show_steps`), and waits for the new security key.
pub(crate) async fn register<I: IamApi>(
    iam: &I,
    owner: &KeyOwner,
    timeout: Duration,
    poll: Duration,
    show_steps: &mut dyn FnMut(&[String]),
    progress: &mut dyn Progress,
) -> Result<Registered, SecurityKeyError> {
    let before = baseline(iam, owner).await?;
    show_steps(&console_steps(owner));
    let device_serial = wait_for_security_key(iam, owner, &before, timeout, poll, progress).await?;
    let certifications = certifications(iam, &device_serial)
        .await
        .map_err(|e| e.to_string());
    Ok(Registered {
        device_serial,
        certifications,
    })
}

/// A key about to be registered must have a FIDO2 PIN (AWS asks for it;
/// a key without one holds no passkey safely): sets one from `ask` when
/// there is none. What the key says of itself afterwards.
pub(crate) fn ensure_pin(
    dev: &mut dyn crate::fido2::Fido2Device,
    info: crate::fido2::Fido2Info,
    ask: &mut dyn FnMut() -> Result<crate::secret::SecretString, crate::error::Failure>,
) -> Result<crate::fido2::Fido2Info, crate::error::Failure> {
    if info.options.client_pin != Some(false) {
        return Ok(info);
    }
    let new_pin = ask()?;
    crate::manage::fido2::set_pin(dev, &info, &new_pin)?;
    Ok(crate::manage::fido2::describe(dev)?)
}

/// Whether an MFA device serial is a FIDO security key's.
pub(crate) fn is_security_key(serial: &str) -> bool {
    serial.contains(":u2f/")
}

/// GetMFADevice's certifications of the key, where IAM answers (moto
/// does not implement it; a policy may not allow it): `Err` says why not.
pub(crate) async fn certifications<I: IamApi>(
    iam: &I,
    serial: &str,
) -> Result<Vec<(String, String)>, AwsError> {
    iam.mfa_device_certifications(serial).await
}

/// Polls until a security key not in `before` shows for `owner`; virtual
/// and hardware TOTP devices that appear meanwhile are not it.
pub(crate) async fn wait_for_security_key<I: IamApi>(
    iam: &I,
    owner: &KeyOwner,
    before: &[String],
    timeout: Duration,
    poll: Duration,
    progress: &mut dyn Progress,
) -> Result<String, SecurityKeyError> {
    let found = super::wait::poll(timeout, poll, progress, || async {
        let now = iam.list_mfa_devices(owner.iam_name()).await?;
        Ok::<_, SecurityKeyError>(
            now.into_iter()
                .find(|d| is_security_key(&d.serial) && !before.contains(&d.serial))
                .map(|d| d.serial),
        )
    })
    .await?;
    match found {
        Some((serial, _)) => Ok(serial),
        None => Err(SecurityKeyError::NotSeen {
            who: owner.describe(),
            waited_secs: timeout.as_secs(),
        }),
    }
}

impl crate::error::Classify for SecurityKeyError {
    fn kind(&self) -> crate::error::Kind {
        match self {
            SecurityKeyError::Aws(a) => a.kind(),
            SecurityKeyError::NotSeen { .. } => crate::error::Kind::NotVerified,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeIam;
    use crate::progress::Event;

    const MS: Duration = Duration::from_millis(5);
    const U2F: &str = "arn:aws:iam::123456789012:u2f/user/bob/yubikey-ABCDEF";

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn appears_while_waiting() {
        let iam = FakeIam::new();
        iam.add_user("bob");
        iam.add_other_mfa_device("bob", "arn:aws:iam::123456789012:u2f/user/bob/old-1");
        let bob = KeyOwner::User("bob".into());
        rt().block_on(async {
            let before = baseline(&iam, &bob).await.unwrap();
            let later = async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                // A virtual device first: not a security key.
                iam.add_other_mfa_device("bob", "arn:aws:iam::123456789012:mfa/bob-phone");
                tokio::time::sleep(Duration::from_millis(20)).await;
                iam.add_other_mfa_device("bob", U2F);
            };
            let mut waits = 0;
            let mut on_wait = |e: Event| {
                if matches!(e, Event::Waiting { .. }) {
                    waits += 1
                }
            };
            let wait = wait_for_security_key(
                &iam,
                &bob,
                &before,
                Duration::from_secs(5),
                MS,
                &mut on_wait,
            );
            let (got, ()) = tokio::join!(wait, later);
            assert_eq!(got.unwrap(), U2F);
            assert!(waits > 0);
            iam.set_certifications(U2F, &[("FIPS", "L1"), ("FIDO", "L1")]);
            assert_eq!(
                certifications(&iam, U2F).await.unwrap(),
                [("FIDO".into(), "L1".into()), ("FIPS".into(), "L1".into())]
            );
        });
    }

    #[test]
    fn never_appears_or_appears_for_another_user() {
        let iam = FakeIam::new();
        iam.add_user("bob");
        iam.add_user("carol");
        let bob = KeyOwner::User("bob".into());
        rt().block_on(async {
            let before = baseline(&iam, &bob).await.unwrap();
            iam.add_other_mfa_device("carol", "arn:aws:iam::123456789012:u2f/user/carol/k-1");
            let e = wait_for_security_key(
                &iam,
                &bob,
                &before,
                Duration::from_millis(50),
                MS,
                &mut crate::progress::Quiet,
            )
            .await
            .unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, SecurityKeyError::NotSeen { .. }));
            assert!(msg.contains("user bob") && msg.contains("u2f/"), "{msg}");
        });
    }

    #[test]
    fn an_unknown_user_is_an_aws_error_and_urls_name_the_page() {
        let iam = FakeIam::new();
        rt().block_on(async {
            let e = baseline(&iam, &KeyOwner::User("nobody".into()))
                .await
                .unwrap_err();
            assert!(matches!(e, AwsError::NoSuchEntity { .. }));
        });
        assert!(KeyOwner::User("bob".into())
            .console_url()
            .contains("/users/details/bob"));
        assert!(is_security_key(U2F));
        assert!(!is_security_key("arn:aws:iam::1:mfa/x"));
    }
}
