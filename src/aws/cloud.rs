//! [`AccountApi`], [`TrailApi`] and [`BucketApi`] over the AWS SDK: IAM,
//! CloudTrail, S3 and STS clients built from one shared configuration
//! (Organizations and member accounts: [`crate::aws::org`]).

use std::collections::BTreeMap;

use aws_config::{Region, SdkConfig};
use aws_sdk_cloudtrail::types as ct;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::SummaryKeyType;
use aws_sdk_s3::types as s3t;

use crate::aws::account::{
    AccountApi, AccountSummary, BucketApi, BucketExposure, BucketState, EventSelector,
    EventSelectors, FieldSelector, ManagementEvents, Principal, ReportState, Role, Trail, TrailApi,
    TrailSettings,
};
use crate::aws::iam::{IamApi, MfaDevice, VirtualMfaDevice};
use crate::aws::policy::url_decode;
use crate::aws::{AwsError, Iam};

/// The AWS clients of the audit and the baseline.
#[derive(Debug, Clone)]
pub struct Cloud {
    config: SdkConfig,
    iam: Iam,
    pub(super) iam_raw: aws_sdk_iam::Client,
    trail: aws_sdk_cloudtrail::Client,
    s3: aws_sdk_s3::Client,
    pub(super) sts: aws_sdk_sts::Client,
    pub(super) orgs: aws_sdk_organizations::Client,
    region: String,
    pub(super) attempts: u32,
    endpoint: Option<String>,
}

fn env_endpoint(service: &str) -> Option<String> {
    std::env::var(format!("AWS_ENDPOINT_URL_{service}"))
        .ok()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|v| !v.is_empty())
}

impl Cloud {
    /// Builds every client from one SDK configuration. S3 uses path-style
    /// addressing when an endpoint override is in force (test servers).
    pub fn from_sdk_config(config: &SdkConfig) -> Self {
        Cloud {
            config: config.clone(),
            iam: Iam::from_sdk_config(config),
            iam_raw: aws_sdk_iam::Client::new(config),
            trail: aws_sdk_cloudtrail::Client::new(config),
            s3: s3_client(config, None),
            sts: aws_sdk_sts::Client::new(config),
            orgs: aws_sdk_organizations::Client::new(config),
            region: config
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| crate::aws::config::DEFAULT_REGION.to_string()),
            attempts: config.retry_config().map_or(1, |r| r.max_attempts()),
            endpoint: config.endpoint_url().map(str::to_string),
        }
    }

    /// The SDK configuration the clients were built from.
    pub(super) fn sdk_config(&self) -> &SdkConfig {
        &self.config
    }

    /// CloudTrail in `region` (a trail's home region); the configured one
    /// when `region` is empty or the same.
    fn trail_in(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        if region.is_empty() || region == self.region {
            return self.trail.clone();
        }
        let conf = aws_sdk_cloudtrail::config::Builder::from(&self.config)
            .region(Region::new(region.to_string()))
            .build();
        aws_sdk_cloudtrail::Client::from_conf(conf)
    }

    pub(super) fn endpoint_of(&self, service: &str, default: &str) -> String {
        self.endpoint
            .clone()
            .or_else(|| env_endpoint(service))
            .unwrap_or_else(|| default.to_string())
    }

    pub(super) fn iam_err<E, R>(&self, action: &str, e: SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + 'static,
    {
        AwsError::from_sdk(action, &self.iam.endpoint(), self.attempts, e)
    }

    fn ct_err<E, R>(&self, action: &str, e: SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + 'static,
    {
        self.ct_err_in(&self.region, action, e)
    }

    fn ct_err_in<E, R>(&self, region: &str, action: &str, e: SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + 'static,
    {
        let endpoint = self.endpoint_of(
            "CLOUDTRAIL",
            &format!("https://cloudtrail.{region}.amazonaws.com"),
        );
        AwsError::from_sdk(action, &endpoint, self.attempts, e)
    }

    fn s3_err<E, R>(&self, action: &str, e: SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + 'static,
    {
        let endpoint = self.endpoint_of("S3", "https://s3.amazonaws.com");
        AwsError::from_sdk(action, &endpoint, self.attempts, e)
    }
}

/// S3 from `config` (in `region` when given), path-style when an endpoint
/// override is in force (test servers).
fn s3_client(config: &SdkConfig, region: Option<&str>) -> aws_sdk_s3::Client {
    let override_s3 = config.endpoint_url().is_some() || env_endpoint("S3").is_some();
    let mut b = aws_sdk_s3::config::Builder::from(config).force_path_style(override_s3);
    if let Some(r) = region {
        b = b.region(Region::new(r.to_string()));
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

fn service_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<String> {
    e.as_service_error()
        .and_then(|s| s.code())
        .map(str::to_string)
}

impl AccountApi for Cloud {
    async fn account_summary(&self) -> Result<AccountSummary, AwsError> {
        let out = self
            .iam_raw
            .get_account_summary()
            .send()
            .await
            .map_err(|e| self.iam_err("iam:GetAccountSummary", e))?;
        let map = out.summary_map.unwrap_or_default();
        let one = |k: SummaryKeyType| map.get(&k).copied().unwrap_or(0) > 0;
        Ok(AccountSummary {
            root_mfa_enabled: one(SummaryKeyType::AccountMfaEnabled),
            root_access_keys: one(SummaryKeyType::AccountAccessKeysPresent),
            root_password: map
                .get(&SummaryKeyType::AccountPasswordPresent)
                .map(|v| *v > 0),
            root_signing_certificates: one(SummaryKeyType::AccountSigningCertificatesPresent),
        })
    }

    async fn generate_credential_report(&self) -> Result<ReportState, AwsError> {
        let out = self
            .iam_raw
            .generate_credential_report()
            .send()
            .await
            .map_err(|e| self.iam_err("iam:GenerateCredentialReport", e))?;
        Ok(match out.state {
            Some(aws_sdk_iam::types::ReportStateType::Complete) => ReportState::Complete,
            Some(aws_sdk_iam::types::ReportStateType::Started) => ReportState::Started,
            _ => ReportState::InProgress,
        })
    }

    async fn credential_report(&self) -> Result<Option<Vec<u8>>, AwsError> {
        match self.iam_raw.get_credential_report().send().await {
            Ok(out) => Ok(out.content.map(|b| b.into_inner())),
            Err(e) => match service_code(&e).as_deref() {
                Some("ReportInProgress" | "ReportNotPresent" | "ReportExpired") => Ok(None),
                _ => Err(self.iam_err("iam:GetCredentialReport", e)),
            },
        }
    }

    async fn list_users(&self) -> Result<Vec<String>, AwsError> {
        let mut pages = self.iam_raw.list_users().into_paginator().items().send();
        let mut users = Vec::new();
        while let Some(u) = pages.next().await {
            users.push(u.map_err(|e| self.iam_err("iam:ListUsers", e))?.user_name);
        }
        Ok(users)
    }

    async fn list_roles(&self) -> Result<Vec<Role>, AwsError> {
        let mut pages = self.iam_raw.list_roles().into_paginator().items().send();
        let mut roles = Vec::new();
        while let Some(r) = pages.next().await {
            let r = r.map_err(|e| self.iam_err("iam:ListRoles", e))?;
            roles.push(Role {
                name: r.role_name,
                path: r.path,
            });
        }
        Ok(roles)
    }

    async fn groups_for_user(&self, user: &str) -> Result<Vec<String>, AwsError> {
        let mut pages = self
            .iam_raw
            .list_groups_for_user()
            .user_name(user)
            .into_paginator()
            .items()
            .send();
        let mut groups = Vec::new();
        while let Some(g) = pages.next().await {
            groups.push(
                g.map_err(|e| self.iam_err("iam:ListGroupsForUser", e))?
                    .group_name,
            );
        }
        Ok(groups)
    }

    async fn attached_policies(&self, who: &Principal) -> Result<Vec<String>, AwsError> {
        let mut arns = Vec::new();
        macro_rules! collect {
            ($call:ident, $setter:ident, $name:expr, $action:expr) => {{
                let mut pages = self
                    .iam_raw
                    .$call()
                    .$setter($name)
                    .into_paginator()
                    .items()
                    .send();
                while let Some(p) = pages.next().await {
                    let p = p.map_err(|e| self.iam_err($action, e))?;
                    arns.extend(p.policy_arn);
                }
            }};
        }
        match who {
            Principal::User(n) => collect!(
                list_attached_user_policies,
                user_name,
                n,
                "iam:ListAttachedUserPolicies"
            ),
            Principal::Role(n) => collect!(
                list_attached_role_policies,
                role_name,
                n,
                "iam:ListAttachedRolePolicies"
            ),
            Principal::Group(n) => collect!(
                list_attached_group_policies,
                group_name,
                n,
                "iam:ListAttachedGroupPolicies"
            ),
        }
        Ok(arns)
    }

    async fn inline_policies(&self, who: &Principal) -> Result<Vec<(String, String)>, AwsError> {
        let mut docs = Vec::new();
        macro_rules! collect {
            ($list:ident, $get:ident, $setter:ident, $name:expr, $la:expr, $ga:expr) => {{
                let mut pages = self
                    .iam_raw
                    .$list()
                    .$setter($name)
                    .into_paginator()
                    .items()
                    .send();
                let mut names = Vec::new();
                while let Some(p) = pages.next().await {
                    names.push(p.map_err(|e| self.iam_err($la, e))?);
                }
                for policy in names {
                    let out = self
                        .iam_raw
                        .$get()
                        .$setter($name)
                        .policy_name(&policy)
                        .send()
                        .await
                        .map_err(|e| self.iam_err($ga, e))?;
                    docs.push((policy, url_decode(&out.policy_document)));
                }
            }};
        }
        match who {
            Principal::User(n) => collect!(
                list_user_policies,
                get_user_policy,
                user_name,
                n,
                "iam:ListUserPolicies",
                "iam:GetUserPolicy"
            ),
            Principal::Role(n) => collect!(
                list_role_policies,
                get_role_policy,
                role_name,
                n,
                "iam:ListRolePolicies",
                "iam:GetRolePolicy"
            ),
            Principal::Group(n) => collect!(
                list_group_policies,
                get_group_policy,
                group_name,
                n,
                "iam:ListGroupPolicies",
                "iam:GetGroupPolicy"
            ),
        }
        Ok(docs)
    }

    async fn managed_policy_document(&self, arn: &str) -> Result<String, AwsError> {
        let policy = self
            .iam_raw
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| self.iam_err("iam:GetPolicy", e))?;
        let version = policy
            .policy
            .and_then(|p| p.default_version_id)
            .unwrap_or_else(|| "v1".to_string());
        let out = self
            .iam_raw
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| self.iam_err("iam:GetPolicyVersion", e))?;
        Ok(out
            .policy_version
            .and_then(|v| v.document)
            .map(|d| url_decode(&d))
            .unwrap_or_default())
    }

    async fn user_mfa_devices(&self, user: &str) -> Result<Vec<MfaDevice>, AwsError> {
        self.iam.list_mfa_devices(user).await
    }

    async fn virtual_mfa_devices(&self) -> Result<Vec<VirtualMfaDevice>, AwsError> {
        self.iam.list_virtual_mfa_devices(false).await
    }

    async fn device_tags(&self, serial: &str) -> Result<Vec<(String, String)>, AwsError> {
        self.iam.mfa_device_tags(serial).await
    }

    async fn fido_certifications(
        &self,
        user: &str,
        serial: &str,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        let out = self
            .iam_raw
            .get_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .send()
            .await
            .map_err(|e| self.iam_err("iam:GetMFADevice", e))?;
        Ok(out.certifications.unwrap_or_default().into_iter().collect())
    }
}

fn read_write(t: Option<&ct::ReadWriteType>) -> ManagementEvents {
    match t {
        Some(ct::ReadWriteType::ReadOnly) => ManagementEvents::ReadOnly,
        Some(ct::ReadWriteType::WriteOnly) => ManagementEvents::WriteOnly,
        // The API's default is All.
        _ => ManagementEvents::All,
    }
}

impl TrailApi for Cloud {
    async fn describe_trails(&self) -> Result<Vec<Trail>, AwsError> {
        let out = self
            .trail
            .describe_trails()
            .include_shadow_trails(true)
            .send()
            .await
            .map_err(|e| self.ct_err("cloudtrail:DescribeTrails", e))?;
        Ok(out
            .trail_list
            .unwrap_or_default()
            .into_iter()
            .map(|t| Trail {
                name: t.name.unwrap_or_default(),
                arn: t.trail_arn.unwrap_or_default(),
                home_region: t.home_region.unwrap_or_default(),
                multi_region: t.is_multi_region_trail.unwrap_or(false),
                log_file_validation: t.log_file_validation_enabled.unwrap_or(false),
                kms_key: t.kms_key_id.filter(|k| !k.is_empty()),
                bucket: t.s3_bucket_name.unwrap_or_default(),
                global_events: t.include_global_service_events.unwrap_or(false),
                organization: t.is_organization_trail.unwrap_or(false),
            })
            .collect())
    }

    async fn is_logging(&self, region: &str, trail: &str) -> Result<bool, AwsError> {
        let out = self
            .trail_in(region)
            .get_trail_status()
            .name(trail)
            .send()
            .await
            .map_err(|e| self.ct_err_in(region, "cloudtrail:GetTrailStatus", e))?;
        Ok(out.is_logging.unwrap_or(false))
    }

    async fn event_selectors(&self, region: &str, trail: &str) -> Result<EventSelectors, AwsError> {
        let out = self
            .trail_in(region)
            .get_event_selectors()
            .trail_name(trail)
            .send()
            .await
            .map_err(|e| self.ct_err_in(region, "cloudtrail:GetEventSelectors", e))?;
        let basic = out
            .event_selectors
            .unwrap_or_default()
            .into_iter()
            .map(|s| EventSelector {
                read_write: read_write(s.read_write_type.as_ref()),
                include_management: s.include_management_events.unwrap_or(true),
                data_resources: s
                    .data_resources
                    .unwrap_or_default()
                    .into_iter()
                    .map(|d| (d.r#type.unwrap_or_default(), d.values.unwrap_or_default()))
                    .collect(),
                exclude_sources: s.exclude_management_event_sources.unwrap_or_default(),
            })
            .collect();
        let advanced = out
            .advanced_event_selectors
            .unwrap_or_default()
            .into_iter()
            .map(|a| {
                a.field_selectors
                    .into_iter()
                    .map(|f| FieldSelector {
                        field: f.field,
                        equals: f.equals.unwrap_or_default(),
                        not_equals: f.not_equals.unwrap_or_default(),
                        starts_with: f.starts_with.unwrap_or_default(),
                        not_starts_with: f.not_starts_with.unwrap_or_default(),
                        ends_with: f.ends_with.unwrap_or_default(),
                        not_ends_with: f.not_ends_with.unwrap_or_default(),
                    })
                    .collect()
            })
            .collect();
        Ok(EventSelectors { basic, advanced })
    }

    async fn create_trail(&self, s: &TrailSettings) -> Result<(), AwsError> {
        self.trail
            .create_trail()
            .name(&s.name)
            .s3_bucket_name(&s.bucket)
            .is_multi_region_trail(true)
            .include_global_service_events(true)
            .enable_log_file_validation(true)
            .set_kms_key_id(s.kms_key.clone())
            .send()
            .await
            .map_err(|e| self.ct_err("cloudtrail:CreateTrail", e))?;
        Ok(())
    }

    async fn update_trail(&self, s: &TrailSettings) -> Result<(), AwsError> {
        self.trail
            .update_trail()
            .name(&s.name)
            .is_multi_region_trail(true)
            .include_global_service_events(true)
            .enable_log_file_validation(true)
            .set_kms_key_id(s.kms_key.clone())
            .send()
            .await
            .map_err(|e| self.ct_err("cloudtrail:UpdateTrail", e))?;
        Ok(())
    }

    async fn put_event_selectors(
        &self,
        trail: &str,
        selectors: &[EventSelector],
    ) -> Result<(), AwsError> {
        let mut req = self.trail.put_event_selectors().trail_name(trail);
        for s in selectors {
            let rw = match s.read_write {
                ManagementEvents::ReadOnly => ct::ReadWriteType::ReadOnly,
                ManagementEvents::WriteOnly => ct::ReadWriteType::WriteOnly,
                _ => ct::ReadWriteType::All,
            };
            let mut b = ct::EventSelector::builder()
                .read_write_type(rw)
                .include_management_events(s.include_management)
                .set_exclude_management_event_sources(Some(s.exclude_sources.clone()));
            for (t, values) in &s.data_resources {
                b = b.data_resources(
                    ct::DataResource::builder()
                        .r#type(t)
                        .set_values(Some(values.clone()))
                        .build(),
                );
            }
            req = req.event_selectors(b.build());
        }
        req.send()
            .await
            .map_err(|e| self.ct_err("cloudtrail:PutEventSelectors", e))?;
        Ok(())
    }

    async fn start_logging(&self, trail: &str) -> Result<(), AwsError> {
        self.trail
            .start_logging()
            .name(trail)
            .send()
            .await
            .map_err(|e| self.ct_err("cloudtrail:StartLogging", e))?;
        Ok(())
    }
}

impl BucketApi for Cloud {
    async fn account_id(&self) -> Result<String, AwsError> {
        let out = self.sts.get_caller_identity().send().await.map_err(|e| {
            let endpoint = self.endpoint_of("STS", "https://sts.amazonaws.com");
            AwsError::from_sdk("sts:GetCallerIdentity", &endpoint, self.attempts, e)
        })?;
        out.account.ok_or_else(|| AwsError::Other {
            code: "IncompleteResponse".to_string(),
            message: "STS's GetCallerIdentity answer has no Account; check the endpoint"
                .to_string(),
        })
    }

    fn region(&self) -> String {
        self.region.clone()
    }

    async fn bucket_state(&self, bucket: &str) -> Result<Option<BucketState>, AwsError> {
        if let Err(e) = self.s3.head_bucket().bucket(bucket).send().await {
            if e.as_service_error().is_some_and(|s| s.is_not_found()) {
                return Ok(None);
            }
            let status = e.raw_response().map(|r| r.status().as_u16());
            if status == Some(403) {
                return Err(AwsError::AccessDenied {
                    action: "s3:ListBucket".to_string(),
                    message: format!(
                        "bucket {bucket} exists but is not readable with these credentials (another account's, or s3:ListBucket is missing); choose another name with --bucket"
                    ),
                });
            }
            if status == Some(404) {
                return Ok(None);
            }
            return Err(self.s3_err("s3:ListBucket", e));
        }
        let blocked = match self
            .s3
            .get_public_access_block()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(out) => out.public_access_block_configuration.is_some_and(|c| {
                c.block_public_acls == Some(true)
                    && c.ignore_public_acls == Some(true)
                    && c.block_public_policy == Some(true)
                    && c.restrict_public_buckets == Some(true)
            }),
            Err(e)
                if service_code(&e).as_deref() == Some("NoSuchPublicAccessBlockConfiguration") =>
            {
                false
            }
            Err(e) => return Err(self.s3_err("s3:GetBucketPublicAccessBlock", e)),
        };
        let policy = match self.s3.get_bucket_policy().bucket(bucket).send().await {
            Ok(out) => out.policy,
            Err(e) if service_code(&e).as_deref() == Some("NoSuchBucketPolicy") => None,
            Err(e) => return Err(self.s3_err("s3:GetBucketPolicy", e)),
        };
        Ok(Some(BucketState {
            public_access_blocked: blocked,
            policy,
        }))
    }

    async fn create_bucket(&self, bucket: &str, object_lock: bool) -> Result<(), AwsError> {
        let mut req = self.s3.create_bucket().bucket(bucket);
        if object_lock {
            req = req.object_lock_enabled_for_bucket(true);
        }
        if self.region != "us-east-1" {
            req = req.create_bucket_configuration(
                s3t::CreateBucketConfiguration::builder()
                    .location_constraint(s3t::BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        req.send()
            .await
            .map_err(|e| self.s3_err("s3:CreateBucket", e))?;
        Ok(())
    }

    async fn block_public_access(&self, bucket: &str) -> Result<(), AwsError> {
        self.s3
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(
                s3t::PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.s3_err("s3:PutBucketPublicAccessBlock", e))?;
        Ok(())
    }

    async fn put_bucket_policy(&self, bucket: &str, policy: &str) -> Result<(), AwsError> {
        self.s3
            .put_bucket_policy()
            .bucket(bucket)
            .policy(policy)
            .send()
            .await
            .map_err(|e| self.s3_err("s3:PutBucketPolicy", e))?;
        Ok(())
    }

    async fn bucket_exposure(
        &self,
        bucket: &str,
        region: &str,
    ) -> Result<Option<BucketExposure>, AwsError> {
        let Some(home) = self.bucket_region(bucket, region).await? else {
            return Ok(None);
        };
        let s3 = s3_client(&self.config, Some(&home));
        let block = match s3.get_public_access_block().bucket(bucket).send().await {
            Ok(out) => out
                .public_access_block_configuration
                .map(|c| {
                    [
                        c.block_public_acls == Some(true),
                        c.ignore_public_acls == Some(true),
                        c.block_public_policy == Some(true),
                        c.restrict_public_buckets == Some(true),
                    ]
                })
                .unwrap_or_default(),
            Err(e)
                if service_code(&e).as_deref() == Some("NoSuchPublicAccessBlockConfiguration") =>
            {
                [false; 4]
            }
            Err(e) => return Err(self.s3_err("s3:GetBucketPublicAccessBlock", e)),
        };
        let policy_public = match s3.get_bucket_policy_status().bucket(bucket).send().await {
            Ok(out) => out.policy_status.and_then(|p| p.is_public).unwrap_or(false),
            Err(e) if service_code(&e).as_deref() == Some("NoSuchBucketPolicy") => false,
            Err(e) => return Err(self.s3_err("s3:GetBucketPolicyStatus", e)),
        };
        let acl = s3
            .get_bucket_acl()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| self.s3_err("s3:GetBucketAcl", e))?;
        let public_grants = acl
            .grants
            .unwrap_or_default()
            .into_iter()
            .filter_map(|g| {
                let uri = g.grantee?.uri?;
                let group = uri.rsplit('/').next()?.to_string();
                let everyone = group == "AllUsers" || group == "AuthenticatedUsers";
                everyone.then(|| {
                    let what = g.permission.map(|p| p.as_str().to_string());
                    format!("{group}: {}", what.unwrap_or_default())
                })
            })
            .collect();
        Ok(Some(BucketExposure {
            block,
            policy_public,
            public_grants,
        }))
    }
}

impl Cloud {
    /// The region of `bucket` (HeadBucket, asked in `region` first; S3
    /// answers 301 with the bucket's region when asked elsewhere), or
    /// `None` when it does not exist.
    async fn bucket_region(&self, bucket: &str, region: &str) -> Result<Option<String>, AwsError> {
        let asked = if region.is_empty() {
            &self.region
        } else {
            region
        };
        let s3 = s3_client(&self.config, Some(asked));
        let e = match s3.head_bucket().bucket(bucket).send().await {
            Ok(out) => return Ok(Some(out.bucket_region.unwrap_or_else(|| asked.to_string()))),
            Err(e) => e,
        };
        let raw = e.raw_response();
        let status = raw.map(|r| r.status().as_u16());
        let elsewhere = raw
            .and_then(|r| r.headers().get("x-amz-bucket-region"))
            .map(str::to_string);
        match (status, elsewhere) {
            (Some(301), Some(r)) => Ok(Some(r)),
            (Some(404), _) => Ok(None),
            _ if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            (Some(403), _) => Err(AwsError::AccessDenied {
                action: "s3:ListBucket".to_string(),
                message: format!(
                    "bucket {bucket} is not readable with these credentials (another account's, or s3:ListBucket is missing)"
                ),
            }),
            _ => Err(self.s3_err("s3:ListBucket", e)),
        }
    }
}
