//! `fido2 register`: the console registers the security key (AWS has no API
//! for it); mfakey waits, bounded, for the new `u2f/` device to show in
//! ListMFADevices for that user (or the caller, for root) and names it.

use crate::aws::{AwsError, IamApi};
use std::time::{Duration, Instant};

/// Whose security key: an IAM user, or the caller itself (root signs in
/// with its own credentials; ListMFADevices without a user name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOwner {
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
    pub fn console_url(&self) -> String {
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
pub enum SecurityKeyError {
    #[error("no new security key (u2f/ device) showed for {who} within {waited_secs} s: check the console finished (the key was touched and the device named), then look with `aws iam list-mfa-devices`")]
    NotSeen { who: String, waited_secs: u64 },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// The owner's MFA device serials before the console step.
pub async fn baseline<I: IamApi>(iam: &I, owner: &KeyOwner) -> Result<Vec<String>, AwsError> {
    Ok(iam
        .list_mfa_devices(owner.iam_name())
        .await?
        .into_iter()
        .map(|d| d.serial)
        .collect())
}

/// Whether an MFA device serial is a FIDO security key's.
pub fn is_security_key(serial: &str) -> bool {
    serial.contains(":u2f/")
}

/// GetMFADevice's certifications of the key, where IAM answers (moto
/// does not implement it; a policy may not allow it): `Err` says why not.
pub async fn certifications<I: IamApi>(
    iam: &I,
    serial: &str,
) -> Result<Vec<(String, String)>, AwsError> {
    iam.mfa_device_certifications(serial).await
}

/// Polls until a security key not in `before` shows for `owner`; virtual
/// and hardware TOTP devices that appear meanwhile are not it.
pub async fn wait_for_security_key<I: IamApi>(
    iam: &I,
    owner: &KeyOwner,
    before: &[String],
    timeout: Duration,
    poll: Duration,
    on_wait: &mut dyn FnMut(Duration, Duration),
) -> Result<String, SecurityKeyError> {
    let started = Instant::now();
    loop {
        let now = iam.list_mfa_devices(owner.iam_name()).await?;
        if let Some(d) = now
            .into_iter()
            .find(|d| is_security_key(&d.serial) && !before.contains(&d.serial))
        {
            return Ok(d.serial);
        }
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            return Err(SecurityKeyError::NotSeen {
                who: owner.describe(),
                waited_secs: timeout.as_secs(),
            });
        }
        on_wait(elapsed, timeout);
        tokio::time::sleep(poll.min(timeout - elapsed)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeIam;

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
            let mut on_wait = |_, _| waits += 1;
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
                &mut |_, _| {},
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
