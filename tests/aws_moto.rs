//! The real `Iam` (aws-sdk-iam over HTTP) against moto's server behind the
//! code-checking proxy (tests/support/iam_proxy.py). Run through
//! tests/run.sh, which starts both and sets MFAKEY_TEST_IAM_ENDPOINT.

#[path = "support/iam_env.rs"]
mod iam_env;

use std::time::{Duration, Instant, SystemTime};

use iam_env::*;
use mfakey::aws::{AwsError, IamApi};
use mfakey::secret::SecretBytes;

/// The TOTP step of `t` (30 s steps).
fn step_at(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 30
}

/// The 6-digit code of `seed` for step `step`, computed with totp-rs
/// (independently of mfakey's own code path).
fn code_for_step(seed: &SecretBytes, step: u64) -> String {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(seed.expose().to_vec())
        .build_noncompliant()
        .generate(step * 30)
        .to_string()
}

fn codes_at(seed: &SecretBytes, now: SystemTime) -> (String, String) {
    let t = step_at(now);
    (
        code_for_step(seed, t - 1).to_string(),
        code_for_step(seed, t).to_string(),
    )
}

async fn new_user(raw: &aws_sdk_iam::Client, prefix: &str) -> String {
    let name = unique(prefix);
    raw.create_user().user_name(&name).send().await.unwrap();
    name
}

#[test]
fn create_enable_verify_deactivate_delete() {
    let _clock = proxy_lock();
    block_on(async {
        let (iam, raw) = test_iam(3).await;
        let user = new_user(&raw, "enroll").await;
        let me = iam.get_user(&user).await.unwrap();
        assert_eq!(me.name, user);
        assert_eq!(me.account_id, "123456789012");
        assert!(me.arn.ends_with(&format!(":user/{user}")));

        let name = unique("yk");
        let tags = vec![("mfakey:serial".to_string(), "12345678".to_string())];
        let dev = iam
            .create_virtual_mfa_device(&name, "/", &tags)
            .await
            .unwrap();
        assert_eq!(dev.serial, format!("arn:aws:iam::123456789012:mfa/{name}"));
        assert_eq!(dev.seed.len(), 40, "IAM seeds are 40 bytes");

        let unassigned = iam.list_virtual_mfa_devices(true).await.unwrap();
        let listed = unassigned.iter().find(|d| d.serial == dev.serial).unwrap();
        assert_eq!(listed.user, None);

        let (c1, c2) = codes_at(&dev.seed, SystemTime::now());
        iam.enable_mfa_device(&user, &dev.serial, &c1, &c2)
            .await
            .unwrap();
        let log = enables_for(&dev.serial);
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0]["accepted"], true);
        assert_eq!(log[0]["user"], user.as_str());
        let step = log[0]["step"].as_u64().unwrap();
        assert!(step.abs_diff(step_at(SystemTime::now())) <= 1);
        let text = serde_json::to_string(&log).unwrap();
        assert!(
            !text.contains(&c1) && !text.contains(&c2),
            "codes leaked into the log"
        );

        let mine = iam.list_mfa_devices(&user).await.unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].serial, dev.serial);
        assert!(mine[0].enable_date.is_some());
        let all = iam.list_virtual_mfa_devices(false).await.unwrap();
        let assigned = all.iter().find(|d| d.serial == dev.serial).unwrap();
        assert_eq!(assigned.user.as_deref(), Some(user.as_str()));
        assert!(!iam
            .list_virtual_mfa_devices(true)
            .await
            .unwrap()
            .iter()
            .any(|d| d.serial == dev.serial));

        iam.deactivate_mfa_device(&user, &dev.serial).await.unwrap();
        assert!(iam.list_mfa_devices(&user).await.unwrap().is_empty());
        iam.delete_virtual_mfa_device(&dev.serial).await.unwrap();
        assert!(!iam
            .list_virtual_mfa_devices(false)
            .await
            .unwrap()
            .iter()
            .any(|d| d.serial == dev.serial));
        assert!(matches!(
            iam.delete_virtual_mfa_device(&dev.serial).await,
            Err(AwsError::NoSuchEntity { .. })
        ));
    });
}

#[test]
fn wrong_or_stale_codes_are_refused_like_aws() {
    let _clock = proxy_lock();
    block_on(async {
        let (iam, raw) = test_iam(3).await;
        let user = new_user(&raw, "wrong").await;
        let dev = iam
            .create_virtual_mfa_device(&unique("yk"), "/", &[])
            .await
            .unwrap();
        let now = SystemTime::now();
        let (c1, c2) = codes_at(&dev.seed, now);
        let (o1, o2) = codes_at(&dev.seed, now - Duration::from_secs(120));
        for (a, b) in [(c2.as_str(), c1.as_str()), (o1.as_str(), o2.as_str())] {
            assert_eq!(
                iam.enable_mfa_device(&user, &dev.serial, a, b).await,
                Err(AwsError::InvalidAuthenticationCode)
            );
        }
        let log = enables_for(&dev.serial);
        assert_eq!(log.len(), 2);
        assert!(log
            .iter()
            .all(|e| e["accepted"] == false && e["step"].is_null()));
        // Nothing reached moto: the device is still unassigned.
        assert!(iam.list_mfa_devices(&user).await.unwrap().is_empty());
        iam.delete_virtual_mfa_device(&dev.serial).await.unwrap();
    });
}

#[test]
fn account_alias_is_read() {
    block_on(async {
        let (iam, raw) = test_iam(3).await;
        let alias = "mfakey-test-account";
        raw.create_account_alias()
            .account_alias(alias)
            .send()
            .await
            .unwrap();
        assert_eq!(iam.account_alias().await.unwrap().as_deref(), Some(alias));
    });
}

#[test]
fn server_time_is_the_date_header() {
    let _clock = proxy_lock();
    block_on(async {
        let (iam, _) = test_iam(3).await;
        let diff = |t: SystemTime, reference: SystemTime| match t.duration_since(reference) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        let t = iam.server_time().await.unwrap();
        assert!(diff(t, SystemTime::now()).abs() < 3.0, "{t:?}");
        {
            let _offset = ClockOffset::set(-300);
            let t = iam.server_time().await.unwrap();
            let d = diff(t, SystemTime::now());
            assert!((d + 300.0).abs() < 3.0, "skew {d}");
        }
        let t = iam.server_time().await.unwrap();
        assert!(diff(t, SystemTime::now()).abs() < 3.0);
        // The alias and both clocks from one answer: the skew shows through it too.
        {
            let _offset = ClockOffset::set(120);
            let (_, server, host) = iam.account_alias_and_clocks().await.unwrap();
            let d = diff(server, host);
            assert!((d - 120.0).abs() < 3.0, "skew {d}");
        }
    });
}

#[test]
fn codes_are_checked_against_a_skewed_iam_clock() {
    let _clock = proxy_lock();
    block_on(async {
        let (iam, raw) = test_iam(3).await;
        let user = new_user(&raw, "skew").await;
        let dev = iam
            .create_virtual_mfa_device(&unique("yk"), "/", &[])
            .await
            .unwrap();
        let _offset = ClockOffset::set(180);
        let (c1, c2) = codes_at(&dev.seed, SystemTime::now());
        assert_eq!(
            iam.enable_mfa_device(&user, &dev.serial, &c1, &c2).await,
            Err(AwsError::InvalidAuthenticationCode)
        );
        let server = iam.server_time().await.unwrap();
        let (s1, s2) = codes_at(&dev.seed, server);
        iam.enable_mfa_device(&user, &dev.serial, &s1, &s2)
            .await
            .unwrap();
    });
}

#[test]
fn throttling_after_retries() {
    block_on(async {
        let (iam, raw) = test_iam(2).await;
        let user = new_user(&raw, "throttle").await;
        fault("GetUser", "throttle", 2, &user);
        assert_eq!(
            iam.get_user(&user).await,
            Err(AwsError::Throttling { attempts: 2 })
        );
        // One throttle is absorbed by the retry.
        fault("GetUser", "throttle", 1, &user);
        assert_eq!(iam.get_user(&user).await.unwrap().name, user);
    });
}

#[test]
fn server_errors_after_retries_are_other() {
    block_on(async {
        let (iam, raw) = test_iam(2).await;
        let user = new_user(&raw, "e500").await;
        fault("ListMFADevices", "error500", 2, &user);
        match iam.list_mfa_devices(&user).await {
            Err(AwsError::Other { code, .. }) => assert_eq!(code, "ServiceFailure"),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn access_denied_names_the_permission() {
    block_on(async {
        let (iam, raw) = test_iam(2).await;
        let user = new_user(&raw, "denied").await;
        fault("ListMFADevices", "access_denied", 1, &user);
        let err = iam.list_mfa_devices(&user).await.unwrap_err();
        match &err {
            AwsError::AccessDenied { action, message } => {
                assert_eq!(action, "iam:ListMFADevices");
                assert!(message.contains("not authorized"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("docs/iam-policy.json"));
    });
}

#[test]
fn dropped_connection_is_an_unreachable_endpoint() {
    let _clock = proxy_lock();
    block_on(async {
        let (iam, raw) = test_iam(2).await;
        let user = new_user(&raw, "drop").await;
        let dev = iam
            .create_virtual_mfa_device(&unique("yk"), "/", &[])
            .await
            .unwrap();
        fault("EnableMFADevice", "drop", 2, &user);
        let (c1, c2) = codes_at(&dev.seed, SystemTime::now());
        match iam.enable_mfa_device(&user, &dev.serial, &c1, &c2).await {
            Err(AwsError::EndpointUnreachable { endpoint: e, .. }) => assert_eq!(e, endpoint()),
            other => panic!("{other:?}"),
        }
        // The drops happened before the code check: nothing was logged or enabled.
        assert!(enables_for(&dev.serial).is_empty());
        assert!(iam.list_mfa_devices(&user).await.unwrap().is_empty());
        iam.delete_virtual_mfa_device(&dev.serial).await.unwrap();
    });
}

#[test]
fn a_single_dropped_connection_is_retried() {
    block_on(async {
        let (iam, raw) = test_iam(2).await;
        let user = new_user(&raw, "drop1").await;
        fault("GetUser", "drop", 1, &user);
        assert_eq!(iam.get_user(&user).await.unwrap().name, user);
    });
}

#[test]
fn expired_session_credentials() {
    block_on(async {
        let (iam, raw) = test_iam(2).await;
        let user = new_user(&raw, "expired").await;
        fault("ListMFADevices", "expired_token", 1, &user);
        match iam.list_mfa_devices(&user).await {
            Err(AwsError::ExpiredCredentials { code, .. }) => assert_eq!(code, "ExpiredToken"),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn moto_errors_map_to_variants() {
    block_on(async {
        let (iam, _) = test_iam(2).await;
        assert!(matches!(
            iam.get_user(&unique("nobody")).await,
            Err(AwsError::NoSuchEntity { .. })
        ));
        let name = unique("dup");
        let dev = iam
            .create_virtual_mfa_device(&name, "/", &[])
            .await
            .unwrap();
        assert!(matches!(
            iam.create_virtual_mfa_device(&name, "/", &[]).await,
            Err(AwsError::EntityAlreadyExists { .. })
        ));
        iam.delete_virtual_mfa_device(&dev.serial).await.unwrap();
    });
}

#[test]
fn unreachable_endpoint() {
    block_on(async {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}");
        let iam = mfakey::aws::Iam::from_sdk_config(&test_sdk_config(&url, 2).await);
        let started = Instant::now();
        match iam.account_alias().await {
            Err(AwsError::EndpointUnreachable { endpoint, detail }) => {
                assert_eq!(endpoint, url);
                assert!(!detail.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    });
}

#[test]
fn call_latency_against_local_moto() {
    let _clock = proxy_lock();
    block_on(async {
        let (iam, raw) = test_iam(3).await;
        let user = new_user(&raw, "latency").await;
        iam.get_user(&user).await.unwrap(); // warm the connection pool
        let n = 20u32;
        let started = Instant::now();
        for _ in 0..n {
            iam.list_mfa_devices(&user).await.unwrap();
        }
        let per_call = started.elapsed() / n;
        eprintln!("ListMFADevices through proxy+moto: {per_call:?} per call");
        let started = Instant::now();
        let dev = iam
            .create_virtual_mfa_device(&unique("yk"), "/", &[])
            .await
            .unwrap();
        let (c1, c2) = codes_at(&dev.seed, SystemTime::now());
        iam.enable_mfa_device(&user, &dev.serial, &c1, &c2)
            .await
            .unwrap();
        iam.list_mfa_devices(&user).await.unwrap();
        iam.deactivate_mfa_device(&user, &dev.serial).await.unwrap();
        iam.delete_virtual_mfa_device(&dev.serial).await.unwrap();
        eprintln!(
            "create+enable+list+deactivate+delete: {:?}",
            started.elapsed()
        );
        assert!(per_call < Duration::from_secs(2));
    });
}
