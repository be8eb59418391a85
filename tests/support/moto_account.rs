//! An AWS account of its own in moto, for the audit's tests: moto keeps
//! one state per account, and STS AssumeRole into
//! `arn:aws:iam::<id>:role/x` hands out credentials that moto files under
//! that account, so no test sees another test's users, devices or trails.

#![allow(dead_code)]

use aws_sdk_iam::config::{Credentials, SharedCredentialsProvider};

use crate::common::{self, Scenario, Seed};
use crate::iam_env::{self, block_on, endpoint};

/// moto itself (the proxy is in front of it for mfakey).
pub fn moto() -> String {
    std::env::var("MFAKEY_TEST_MOTO_ENDPOINT").expect("MFAKEY_TEST_MOTO_ENDPOINT: run tests/run.sh")
}

/// A fresh account: its id and the assumed-role credentials moto files under it.
pub struct Account {
    pub id: String,
    pub key_id: String,
    pub secret: String,
    pub token: String,
    pub iam: aws_sdk_iam::Client,
    pub iam_proxied: aws_sdk_iam::Client,
    pub trail: aws_sdk_cloudtrail::Client,
    pub s3: aws_sdk_s3::Client,
    /// Organizations: straight to moto, and through the proxy (which plays
    /// what moto lacks, such as trusted access for IAM).
    pub orgs: aws_sdk_organizations::Client,
    pub orgs_proxied: aws_sdk_organizations::Client,
    /// The SDK configuration for moto with this account's credentials.
    pub raw: aws_config::SdkConfig,
}

impl Account {
    pub fn new() -> Account {
        let n = common::random_serial() as u64 * 7 % 1_000_000_000;
        let id = format!("{:012}", 400_000_000_000u64 + n);
        Account::assume(&id, "audit")
    }

    /// The account `id`, with the credentials of its role `role` (moto
    /// grants any role straight; the proxy may check it exists).
    pub fn assume(id: &str, role: &str) -> Account {
        let id = id.to_string();
        let (key_id, secret, token) = block_on(async {
            let config = iam_env::test_sdk_config(&moto(), 1).await;
            let out = aws_sdk_sts::Client::new(&config)
                .assume_role()
                .role_arn(format!("arn:aws:iam::{id}:role/{role}"))
                .role_session_name("mfakey-audit-test")
                .send()
                .await
                .expect("AssumeRole on moto");
            let c = out.credentials.expect("credentials");
            (c.access_key_id, c.secret_access_key, c.session_token)
        });
        let creds = Credentials::new(&key_id, &secret, Some(token.clone()), None, "assumed");
        let config = |url: String| {
            let creds = creds.clone();
            block_on(async move {
                iam_env::test_sdk_config(&url, 1)
                    .await
                    .into_builder()
                    .credentials_provider(SharedCredentialsProvider::new(creds))
                    .build()
            })
        };
        let raw = config(moto());
        let proxied = config(endpoint());
        let s3_conf = aws_sdk_s3::config::Builder::from(&raw)
            .force_path_style(true)
            .build();
        Account {
            iam: aws_sdk_iam::Client::new(&raw),
            iam_proxied: aws_sdk_iam::Client::new(&proxied),
            trail: aws_sdk_cloudtrail::Client::new(&raw),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            orgs: aws_sdk_organizations::Client::new(&raw),
            orgs_proxied: aws_sdk_organizations::Client::new(&proxied),
            raw,
            id,
            key_id,
            secret,
            token,
        }
    }

    /// mfakey's environment: this account's credentials, IAM/STS/CloudTrail
    /// through the proxy, S3 straight to moto.
    pub fn scenario(&self) -> Scenario {
        let mut sc = Scenario::new();
        sc.set_env("AWS_ACCESS_KEY_ID", &self.key_id);
        sc.set_env("AWS_SECRET_ACCESS_KEY", &self.secret);
        sc.set_env("AWS_SESSION_TOKEN", &self.token);
        sc.set_env("AWS_REGION", "us-east-1");
        sc.set_env("AWS_ENDPOINT_URL", endpoint());
        sc.set_env("AWS_ENDPOINT_URL_S3", moto());
        sc
    }

    pub fn create_user(&self, name: &str) {
        block_on(self.iam.create_user().user_name(name).send()).expect("CreateUser");
    }

    /// A virtual MFA device; through the proxy when `tags` are given (the
    /// proxy answers ListMFADeviceTags, moto does not). Returns (serial, seed).
    pub fn create_device(&self, name: &str, tags: &[(&str, &str)]) -> (String, Seed) {
        let client = if tags.is_empty() {
            &self.iam
        } else {
            &self.iam_proxied
        };
        let mut req = client
            .create_virtual_mfa_device()
            .virtual_mfa_device_name(name);
        for (k, v) in tags {
            req = req.tags(
                aws_sdk_iam::types::Tag::builder()
                    .key(*k)
                    .value(*v)
                    .build()
                    .unwrap(),
            );
        }
        let out = block_on(req.send()).expect("CreateVirtualMFADevice");
        let d = out.virtual_mfa_device.expect("device");
        let b32 = String::from_utf8(d.base32_string_seed.expect("seed").into_inner()).unwrap();
        let bytes = base32::decode(
            base32::Alphabet::Rfc4648 { padding: false },
            b32.trim_end_matches('='),
        )
        .expect("base32 seed");
        (d.serial_number, Seed::from_bytes(&bytes))
    }

    /// A user with a customer-managed policy allowing * on * (moto does not
    /// load AWS's managed policies, so AdministratorAccess cannot be attached).
    pub fn make_admin(&self, name: &str) {
        self.create_user(name);
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let policy = block_on(
            self.iam
                .create_policy()
                .policy_name(format!("{name}-everything"))
                .policy_document(doc)
                .send(),
        )
        .expect("CreatePolicy")
        .policy
        .expect("policy");
        block_on(
            self.iam
                .attach_user_policy()
                .user_name(name)
                .policy_arn(policy.arn.expect("policy arn"))
                .send(),
        )
        .expect("AttachUserPolicy");
    }

    /// Straight to moto, which accepts any codes (the proxy would check them).
    pub fn enable(&self, user: &str, serial: &str) {
        block_on(
            self.iam
                .enable_mfa_device()
                .user_name(user)
                .serial_number(serial)
                .authentication_code1("123456")
                .authentication_code2("654321")
                .send(),
        )
        .expect("EnableMFADevice");
    }

    /// CloudTrail in `region` (straight to moto).
    pub fn trail_in(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        let conf = aws_sdk_cloudtrail::config::Builder::from(&self.raw)
            .region(aws_config::Region::new(region.to_string()))
            .build();
        aws_sdk_cloudtrail::Client::from_conf(conf)
    }

    /// S3 in `region` (straight to moto).
    pub fn s3_in(&self, region: &str) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.raw)
            .region(aws_config::Region::new(region.to_string()))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// A bucket and a trail that satisfies every CloudTrail check, homed in
    /// `region`: multi-region, log file validation, a KMS key, logging.
    pub fn good_trail(&self, name: &str, region: &str, organization: bool) -> String {
        let bucket = format!("{name}-{}", self.id);
        let mut req = self.s3_in(region).create_bucket().bucket(&bucket);
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        block_on(req.send()).expect("CreateBucket");
        let ct = self.trail_in(region);
        let kms = format!(
            "arn:aws:kms:{region}:{}:key/00000000-0000-0000-0000-000000000002",
            self.id
        );
        let out = block_on(
            ct.create_trail()
                .name(name)
                .s3_bucket_name(&bucket)
                .is_multi_region_trail(true)
                .include_global_service_events(true)
                .enable_log_file_validation(true)
                .is_organization_trail(organization)
                .kms_key_id(kms)
                .send(),
        )
        .expect("CreateTrail");
        let _ = out;
        // AWS gives a new trail a selector of every management event; moto
        // gives it none.
        block_on(
            ct.put_event_selectors()
                .trail_name(name)
                .event_selectors(
                    aws_sdk_cloudtrail::types::EventSelector::builder()
                        .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::All)
                        .include_management_events(true)
                        .build(),
                )
                .send(),
        )
        .expect("PutEventSelectors");
        block_on(ct.start_logging().name(name).send()).expect("StartLogging");
        bucket
    }

    pub fn trail_named(&self, name: &str) -> Option<aws_sdk_cloudtrail::types::Trail> {
        block_on(self.trail.describe_trails().send())
            .expect("DescribeTrails")
            .trail_list
            .unwrap_or_default()
            .into_iter()
            .find(|t| t.name.as_deref() == Some(name))
    }
}
