//! `mfakey::aws::load`: the SDK's standard chain (environment, shared files,
//! AWS_ENDPOINT_URL_IAM) and the flags, against moto behind the proxy.
//!
//! One test only, in its own binary: it rewrites the process environment,
//! which must not race with other threads. Run through tests/run.sh.

#[path = "support/iam_env.rs"]
mod iam_env;

use std::time::{Duration, Instant};

use iam_env::*;
use mfakey::aws::{load, AwsError, AwsOptions, IamApi};

const CLEARED: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_IAM",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

#[test]
fn load_follows_the_standard_chain_and_flags() {
    let proxy = endpoint();
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("config");
    let credentials_file = dir.path().join("credentials");
    for var in CLEARED {
        std::env::remove_var(var);
    }
    std::env::set_var("AWS_CONFIG_FILE", &config_file);
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &credentials_file);
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");

    block_on(async {
        // Nothing configured: the first call says so.
        let opts = AwsOptions {
            endpoint_url: Some(proxy.clone()),
            ..AwsOptions::default()
        };
        let iam = load(&opts).await.unwrap();
        assert_eq!(iam.region().as_deref(), Some("us-east-1"));
        let started = Instant::now();
        match iam.account_alias().await {
            Err(AwsError::NoCredentials { detail }) => assert!(!detail.is_empty()),
            other => panic!("expected NoCredentials, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));

        // A named profile from the shared files, with its region.
        std::fs::write(&config_file, "[profile mfakey]\nregion = eu-west-2\n").unwrap();
        std::fs::write(
            &credentials_file,
            "[mfakey]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
        )
        .unwrap();
        let iam = load(&AwsOptions {
            profile: Some("mfakey".into()),
            ..opts.clone()
        })
        .await
        .unwrap();
        assert_eq!(iam.region().as_deref(), Some("eu-west-2"));
        iam.account_alias().await.unwrap();

        // Environment credentials and AWS_ENDPOINT_URL_IAM (which beats
        // AWS_ENDPOINT_URL), no region anywhere.
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
        std::env::set_var("AWS_ENDPOINT_URL_IAM", &proxy);
        let iam = load(&AwsOptions::default()).await.unwrap();
        assert_eq!(iam.region().as_deref(), Some("us-east-1"));
        iam.account_alias().await.unwrap();
        assert_eq!(iam.endpoint(), proxy);

        // AWS_ENDPOINT_URL alone is honoured too.
        std::env::remove_var("AWS_ENDPOINT_URL_IAM");
        std::env::set_var("AWS_ENDPOINT_URL", &proxy);
        let iam = load(&AwsOptions::default()).await.unwrap();
        iam.account_alias().await.unwrap();
        assert_eq!(iam.endpoint(), proxy);

        // --region wins.
        let iam = load(&AwsOptions {
            region: Some("eu-central-1".into()),
            ..AwsOptions::default()
        })
        .await
        .unwrap();
        assert_eq!(iam.region().as_deref(), Some("eu-central-1"));

        // Throttling is retried with backoff, 5 attempts a call (two
        // throttles here keep the test short: backoff ceilings 1 s + 2 s).
        assert_eq!(iam.max_attempts(), mfakey::aws::config::MAX_ATTEMPTS);
        assert_eq!(mfakey::aws::config::MAX_ATTEMPTS, 5);
        fault("ListAccountAliases", "throttle", 2, "");
        let started = Instant::now();
        iam.account_alias().await.unwrap();
        eprintln!("2 throttles absorbed in {:?}", started.elapsed());

        // --endpoint-url must be a URL.
        assert!(matches!(
            load(&AwsOptions {
                endpoint_url: Some("iam.example".into()),
                ..AwsOptions::default()
            })
            .await,
            Err(AwsError::Other { .. })
        ));
    });
}
