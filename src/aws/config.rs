//! Where the IAM client gets its settings: the AWS SDK's standard chain
//! (environment, shared config and credentials files, SSO, credential_process,
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_IAM`), overridden by flags.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::aws::{AwsError, Cloud, Iam};

/// Attempts per IAM call (the first try and up to four retries), with the
/// SDK's standard exponential backoff and jitter.
pub const MAX_ATTEMPTS: u32 = 5;

/// IAM is a global service signed in us-east-1 in the `aws` partition; used
/// when no region is configured anywhere.
pub const DEFAULT_REGION: &str = "us-east-1";

/// How long to wait for a TCP/TLS connection to IAM.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one attempt (request and answer) may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// AWS connection flags, flattened into the CLI's commands.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct AwsOptions {
    /// AWS profile to use (default: $AWS_PROFILE, else "default").
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// AWS region (default: the profile's or $AWS_REGION, else us-east-1).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// IAM endpoint URL, e.g. a test server (default: $AWS_ENDPOINT_URL_IAM,
    /// $AWS_ENDPOINT_URL, else AWS's endpoint).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// Builds the IAM client from the standard chain and `opts`, with
/// [`MAX_ATTEMPTS`] attempts per call. Credentials are resolved lazily, at
/// the first call; a missing one is reported then as
/// [`AwsError::NoCredentials`].
pub async fn load(opts: &AwsOptions) -> Result<Iam, AwsError> {
    let retry = RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS);
    Ok(Iam::from_sdk_config(&sdk_config(opts, retry).await?))
}

/// Builds the audit's and baseline's clients (IAM, CloudTrail, S3, STS)
/// the same way as [`load`].
pub async fn load_cloud(opts: &AwsOptions) -> Result<Cloud, AwsError> {
    let retry = RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS);
    Ok(Cloud::from_sdk_config(&sdk_config(opts, retry).await?))
}

/// Builds an IAM client whose credentials come from assuming `role_arn`
/// (STS AssumeRole) with the credentials `opts` resolve to. The provider
/// renews the role's credentials before they expire, so a long desk session
/// keeps working. Nothing is called until the first request.
pub async fn load_assumed(
    opts: &AwsOptions,
    role_arn: &str,
    session_name: &str,
) -> Result<Iam, AwsError> {
    let retry = RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS);
    let base = sdk_config(opts, retry).await?;
    let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name(session_name)
        .configure(&base)
        .build()
        .await;
    let config = base
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build();
    Ok(Iam::from_sdk_config(&config))
}

/// The shared SDK configuration for `opts`, with the given retry policy
/// (tests shorten the backoff).
pub async fn sdk_config(opts: &AwsOptions, retry: RetryConfig) -> Result<SdkConfig, AwsError> {
    if let Some(url) = &opts.endpoint_url {
        check_endpoint_url(url)?;
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        );
    if let Some(profile) = &opts.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &opts.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &opts.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    if config.region().is_some() {
        return Ok(config);
    }
    Ok(config
        .into_builder()
        .region(Region::new(DEFAULT_REGION))
        .build())
}

fn check_endpoint_url(url: &str) -> Result<(), AwsError> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
    if ok {
        Ok(())
    } else {
        Err(AwsError::Other {
            code: "InvalidEndpointUrl".to_string(),
            message: format!(
                "--endpoint-url {url:?} is not an http:// or https:// URL; pass one like https://iam.amazonaws.com"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        aws: AwsOptions,
    }

    #[test]
    fn flags_flatten_into_a_cli() {
        let cli = Cli::try_parse_from([
            "x",
            "--profile",
            "p",
            "--region",
            "eu-west-1",
            "--endpoint-url",
            "http://127.0.0.1:5000",
        ])
        .unwrap();
        assert_eq!(
            cli.aws,
            AwsOptions {
                profile: Some("p".into()),
                region: Some("eu-west-1".into()),
                endpoint_url: Some("http://127.0.0.1:5000".into()),
            }
        );
        assert_eq!(
            Cli::try_parse_from(["x"]).unwrap().aws,
            AwsOptions::default()
        );
    }

    #[test]
    fn endpoint_url_must_be_http() {
        assert!(check_endpoint_url("https://iam.amazonaws.com").is_ok());
        assert!(check_endpoint_url("http://127.0.0.1:1").is_ok());
        assert!(check_endpoint_url("iam.amazonaws.com").is_err());
        assert!(check_endpoint_url("http://").is_err());
    }
}
