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

    /// Accept a plain http:// endpoint on another machine (from
    /// --endpoint-url, AWS_ENDPOINT_URL* or the config file); without it
    /// only https:// and http:// to this machine (loopback) are used.
    #[arg(long)]
    pub allow_insecure_endpoint: bool,
}

/// The services whose endpoint settings mfakey's clients read (each has its
/// AWS_ENDPOINT_URL_<SERVICE> and config-file `services` entry).
pub const SERVICES: [&str; 5] = ["IAM", "STS", "S3", "CloudTrail", "Organizations"];

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
    // Before anything is loaded or sent: the flag and the environment.
    for (setting, url) in flag_and_env_endpoints(opts) {
        check_secure(&setting, &url, opts.allow_insecure_endpoint)?;
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
    // What the shared config files add (endpoint_url, `services` sections),
    // before any client is built from it.
    for (setting, url) in configured_endpoints(&config) {
        check_secure(&setting, &url, opts.allow_insecure_endpoint)?;
    }
    if config.region().is_some() {
        return Ok(config);
    }
    Ok(config
        .into_builder()
        .region(Region::new(DEFAULT_REGION))
        .build())
}

/// `--endpoint-url` and every `AWS_ENDPOINT_URL*` variable, as (setting, URL).
fn flag_and_env_endpoints(opts: &AwsOptions) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = opts
        .endpoint_url
        .iter()
        .map(|u| ("--endpoint-url".to_string(), u.clone()))
        .collect();
    for (k, v) in std::env::vars_os() {
        let (Some(k), Some(v)) = (k.to_str(), v.to_str()) else {
            continue;
        };
        if k.starts_with("AWS_ENDPOINT_URL") && !v.is_empty() {
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

/// The endpoint the loaded configuration gives each service mfakey uses
/// (environment and shared config files alike), as (setting, URL).
fn configured_endpoints(config: &SdkConfig) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = config
        .endpoint_url()
        .map(|u| ("endpoint_url".to_string(), u.to_string()))
        .into_iter()
        .collect();
    if let Some(sc) = config.service_config() {
        for service in SERVICES {
            let key = aws_types::service_config::ServiceConfigKey::builder()
                .service_id(service)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build();
            if let Some(url) = key.ok().and_then(|k| sc.load_config(k)) {
                out.push((format!("the {service} endpoint setting"), url));
            }
        }
    }
    out
}

/// Refuses a plain http:// endpoint that is not on this machine unless
/// `allow_insecure` (--allow-insecure-endpoint): requests, the seed IAM
/// sends back and session tokens would cross the network unencrypted.
fn check_secure(setting: &str, url: &str, allow_insecure: bool) -> Result<(), AwsError> {
    if allow_insecure || is_secure_or_local(url) {
        return Ok(());
    }
    Err(AwsError::InsecureEndpoint {
        setting: setting.to_string(),
        url: url.to_string(),
    })
}

/// `https://...`, or `http://` to a loopback address (127.0.0.0/8, ::1,
/// localhost).
pub(crate) fn is_secure_or_local(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("https://") {
        return true;
    }
    let Some(rest) = lower.strip_prefix("http://") else {
        // Neither http nor https: not a URL the SDK would send to in clear.
        return !lower.contains("://");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
        || host
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|a| a.is_loopback())
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
                allow_insecure_endpoint: false,
            }
        );
        assert_eq!(
            Cli::try_parse_from(["x"]).unwrap().aws,
            AwsOptions::default()
        );
    }

    #[test]
    fn only_https_or_loopback_http_is_secure() {
        for ok in [
            "https://iam.amazonaws.com",
            "HTTPS://iam.example:8443/x",
            "http://127.0.0.1:5000",
            "http://127.9.8.7",
            "http://localhost:5000/",
            "http://[::1]:5000",
            "http://user@127.0.0.1:1/",
        ] {
            assert!(is_secure_or_local(ok), "{ok}");
        }
        for bad in [
            "http://iam.example.com",
            "http://10.0.0.5:5000",
            "http://127.1:5000",
            "http://2130706433:5000",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://[::ffff:127.0.0.1]:1",
            "http://127.0.0.1@evil.example/",
        ] {
            assert!(!is_secure_or_local(bad), "{bad}");
        }
        let e = check_secure("AWS_ENDPOINT_URL_IAM", "http://iam.example", false).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("--allow-insecure-endpoint"), "{text}");
        assert!(text.contains("AWS_ENDPOINT_URL_IAM"), "{text}");
        assert!(check_secure("x", "http://iam.example", true).is_ok());
    }

    #[test]
    fn endpoint_url_must_be_http() {
        assert!(check_endpoint_url("https://iam.amazonaws.com").is_ok());
        assert!(check_endpoint_url("http://127.0.0.1:1").is_ok());
        assert!(check_endpoint_url("iam.amazonaws.com").is_err());
        assert!(check_endpoint_url("http://").is_err());
    }
}
