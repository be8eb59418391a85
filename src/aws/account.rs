//! What the account audit and the CloudTrail baseline read and change, as
//! traits the jobs are generic over: [`AccountApi`] (IAM reads),
//! [`TrailApi`] (CloudTrail), [`BucketApi`] (S3 and the caller's account),
//! [`OrgApi`] (Organizations, and reaching each member account).
//! Implemented by [`crate::aws::cloud::Cloud`] over the AWS SDK; the
//! jobs' unit tests use fakes.

use std::collections::BTreeMap;
use std::future::Future;

use crate::aws::iam::{MfaDevice, VirtualMfaDevice};
use crate::aws::AwsError;

/// The parts of GetAccountSummary the audit reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountSummary {
    /// `AccountMFAEnabled` = 1.
    pub root_mfa_enabled: bool,
    /// `AccountAccessKeysPresent` = 1.
    pub root_access_keys: bool,
    /// `AccountPasswordPresent` = 1; `None` when the answer lacks the key
    /// (AWS always sends it; moto does not).
    pub root_password: Option<bool>,
    /// `AccountSigningCertificatesPresent` = 1.
    pub root_signing_certificates: bool,
}

/// GenerateCredentialReport's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportState {
    Started,
    InProgress,
    Complete,
}

/// Who a policy is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    User(String),
    Role(String),
    Group(String),
}

/// An IAM role (service-linked roles included: the audit skips them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub path: String,
}

/// The IAM reads of the audit. Every list call reads all pages.
pub trait AccountApi: Sync {
    /// GetAccountSummary.
    fn account_summary(&self) -> impl Future<Output = Result<AccountSummary, AwsError>> + Send;

    /// GenerateCredentialReport.
    fn generate_credential_report(
        &self,
    ) -> impl Future<Output = Result<ReportState, AwsError>> + Send;

    /// GetCredentialReport: the CSV, or `None` while it is not ready
    /// (`ReportInProgress`, `ReportNotPresent`).
    fn credential_report(&self) -> impl Future<Output = Result<Option<Vec<u8>>, AwsError>> + Send;

    /// ListUsers: user names.
    fn list_users(&self) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;

    /// ListRoles.
    fn list_roles(&self) -> impl Future<Output = Result<Vec<Role>, AwsError>> + Send;

    /// ListGroupsForUser: group names.
    fn groups_for_user(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;

    /// ListAttached{User,Role,Group}Policies: policy ARNs.
    fn attached_policies(
        &self,
        who: &Principal,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;

    /// List{User,Role,Group}Policies then Get…Policy: (name, JSON document,
    /// already URL-decoded).
    fn inline_policies(
        &self,
        who: &Principal,
    ) -> impl Future<Output = Result<Vec<(String, String)>, AwsError>> + Send;

    /// GetPolicy then GetPolicyVersion of its default version: the JSON document.
    fn managed_policy_document(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;

    /// ListMFADevices of `user`.
    fn user_mfa_devices(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Vec<MfaDevice>, AwsError>> + Send;

    /// ListVirtualMFADevices (Any), with the user name of assigned ones in
    /// [`VirtualMfaDevice::user`] (the root user's is `<root_account>`).
    fn virtual_mfa_devices(
        &self,
    ) -> impl Future<Output = Result<Vec<VirtualMfaDevice>, AwsError>> + Send;

    /// ListMFADeviceTags.
    fn device_tags(
        &self,
        serial: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, AwsError>> + Send;

    /// GetMFADevice of a FIDO device (`u2f/` ARN): its certifications
    /// (FIPS-140-2, FIPS-140-3, FIDO levels from the FIDO Alliance's
    /// metadata service), empty when AWS knows none.
    fn fido_certifications(
        &self,
        user: &str,
        serial: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, AwsError>> + Send;
}

/// A CloudTrail trail as DescribeTrails shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trail {
    pub name: String,
    pub arn: String,
    pub home_region: String,
    pub multi_region: bool,
    pub log_file_validation: bool,
    pub kms_key: Option<String>,
    pub bucket: String,
    /// `IncludeGlobalServiceEvents`: IAM, STS and other global services.
    pub global_events: bool,
    /// `IsOrganizationTrail`: it logs every account of the organization.
    pub organization: bool,
}

impl Trail {
    /// The account that owns the trail (from its ARN).
    pub fn account(&self) -> Option<&str> {
        self.arn.split(':').nth(4).filter(|a| !a.is_empty())
    }
}

/// Which management events a trail records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagementEvents {
    All,
    ReadOnly,
    WriteOnly,
    None,
}

/// One basic event selector (PutEventSelectors shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSelector {
    pub read_write: ManagementEvents,
    pub include_management: bool,
    /// Data resources as (type, values), kept when rewriting selectors.
    pub data_resources: Vec<(String, Vec<String>)>,
    /// `ExcludeManagementEventSources`: event sources left out.
    pub exclude_sources: Vec<String>,
}

/// One condition of an advanced event selector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    pub field: String,
    pub equals: Vec<String>,
    pub not_equals: Vec<String>,
    pub starts_with: Vec<String>,
    pub not_starts_with: Vec<String>,
    pub ends_with: Vec<String>,
    pub not_ends_with: Vec<String>,
}

impl FieldSelector {
    /// A condition `field` equals one of `values`.
    #[cfg(test)]
    pub fn equals(field: &str, values: &[&str]) -> Self {
        FieldSelector {
            field: field.to_string(),
            equals: values.iter().map(|v| v.to_string()).collect(),
            ..FieldSelector::default()
        }
    }
}

/// GetEventSelectors' answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventSelectors {
    pub basic: Vec<EventSelector>,
    /// Advanced selectors, each as its conditions.
    pub advanced: Vec<Vec<FieldSelector>>,
}

/// What a new trail is made with, or an existing one updated to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailSettings {
    pub name: String,
    pub bucket: String,
    pub kms_key: Option<String>,
}

/// CloudTrail: what the audit reads and the baseline changes.
pub trait TrailApi: Sync {
    /// DescribeTrails (shadow trails of other regions included).
    fn describe_trails(&self) -> impl Future<Output = Result<Vec<Trail>, AwsError>> + Send;

    /// GetTrailStatus (`IsLogging`), sent to `region`, the trail's home
    /// region (CloudTrail answers it only there).
    fn is_logging(
        &self,
        region: &str,
        trail: &str,
    ) -> impl Future<Output = Result<bool, AwsError>> + Send;

    /// GetEventSelectors, sent to `region`, the trail's home region.
    fn event_selectors(
        &self,
        region: &str,
        trail: &str,
    ) -> impl Future<Output = Result<EventSelectors, AwsError>> + Send;

    /// CreateTrail: multi-region, log file validation on.
    fn create_trail(
        &self,
        settings: &TrailSettings,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// UpdateTrail: multi-region, log file validation on, KMS key if given.
    fn update_trail(
        &self,
        settings: &TrailSettings,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// PutEventSelectors (basic selectors).
    fn put_event_selectors(
        &self,
        trail: &str,
        selectors: &[EventSelector],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// StartLogging.
    fn start_logging(&self, trail: &str) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// An S3 bucket's settings the baseline cares about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BucketState {
    /// All four public access block settings on.
    pub public_access_blocked: bool,
    /// The bucket policy (JSON), if any.
    pub policy: Option<String>,
}

/// How public a bucket is, from what S3 says of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BucketExposure {
    /// GetPublicAccessBlock's four settings (BlockPublicAcls,
    /// IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets); all off
    /// when the bucket has none.
    pub block: [bool; 4],
    /// GetBucketPolicyStatus: `IsPublic` (false without a policy).
    pub policy_public: bool,
    /// GetBucketAcl: the grantee groups everyone is in (AllUsers,
    /// AuthenticatedUsers) and what they are granted.
    pub public_grants: Vec<String>,
}

impl BucketExposure {
    /// Public through its policy or its ACL, after the bucket's block.
    pub fn is_public(&self) -> bool {
        let [_, ignore_acls, _, restrict] = self.block;
        (self.policy_public && !restrict) || (!self.public_grants.is_empty() && !ignore_acls)
    }
}

/// S3 and the caller's identity, for the baseline and the audit.
pub trait BucketApi: Sync {
    /// STS GetCallerIdentity: the account id.
    fn account_id(&self) -> impl Future<Output = Result<String, AwsError>> + Send;

    /// The region requests are sent to (the trail's home region).
    fn region(&self) -> String;

    /// HeadBucket, GetPublicAccessBlock, GetBucketPolicy: `None` when the
    /// bucket does not exist.
    fn bucket_state(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<Option<BucketState>, AwsError>> + Send;

    /// CreateBucket in [`Self::region`], with Object Lock if asked.
    fn create_bucket(
        &self,
        bucket: &str,
        object_lock: bool,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// PutPublicAccessBlock with all four settings on.
    fn block_public_access(
        &self,
        bucket: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// PutBucketPolicy.
    fn put_bucket_policy(
        &self,
        bucket: &str,
        policy: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// HeadBucket (for the bucket's region, from `region` first), then
    /// GetPublicAccessBlock, GetBucketPolicyStatus and GetBucketAcl: `None`
    /// when the bucket does not exist.
    fn bucket_exposure(
        &self,
        bucket: &str,
        region: &str,
    ) -> impl Future<Output = Result<Option<BucketExposure>, AwsError>> + Send;
}

/// An AWS Organization as DescribeOrganization shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub management_account: String,
}

/// A member account as ListAccounts shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: String,
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE` (the newer `State` when
    /// AWS sends it).
    pub status: String,
}

/// Organizations, and the clients of each member account.
pub trait OrgApi: Sync {
    /// What the audit of one account needs.
    type Member: AccountApi + TrailApi + BucketApi;

    /// DescribeOrganization.
    fn organization(&self) -> impl Future<Output = Result<Organization, AwsError>> + Send;

    /// ListAccounts, every page.
    fn accounts(&self) -> impl Future<Output = Result<Vec<OrgAccount>, AwsError>> + Send;

    /// IAM ListOrganizationsFeatures: the centralized root access features
    /// enabled (`RootCredentialsManagement`, `RootSessions`).
    fn root_access_features(&self) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;

    /// STS GetCallerIdentity: the caller's account.
    fn caller_account(&self) -> impl Future<Output = Result<String, AwsError>> + Send;

    /// The caller's own clients (for its own account).
    fn own(&self) -> Self::Member;

    /// Clients in `account` with the credentials of its role `role_name`,
    /// assumed now (STS AssumeRole), so a role that cannot be assumed is
    /// told here.
    fn member(
        &self,
        account: &str,
        role_name: &str,
    ) -> impl Future<Output = Result<Self::Member, AwsError>>;
}

/// One row of the credential report. Dates are kept as IAM wrote them
/// (ISO 8601), with `N/A`, `no_information` and `not_supported` as `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CredentialRow {
    pub user: String,
    pub arn: String,
    pub password_enabled: bool,
    pub password_last_used: Option<String>,
    pub mfa_active: bool,
    pub access_key_1_active: bool,
    pub access_key_1_last_used: Option<String>,
    pub access_key_2_active: bool,
    pub access_key_2_last_used: Option<String>,
}

/// The root user's name in the credential report.
pub const ROOT_ROW: &str = "<root_account>";

impl CredentialRow {
    pub fn is_root(&self) -> bool {
        self.user == ROOT_ROW
    }

    pub fn has_active_keys(&self) -> bool {
        self.access_key_1_active || self.access_key_2_active
    }
}

/// Parses the credential report's CSV by its header names. Rows shorter
/// than the header (moto writes some) leave the missing columns empty.
pub fn parse_credential_report(csv_bytes: &[u8]) -> Result<Vec<CredentialRow>, AwsError> {
    let bad = |e: csv::Error| AwsError::Other {
        code: "InvalidCredentialReport".to_string(),
        message: format!("the credential report is not valid CSV ({e}); generate it again"),
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(csv_bytes);
    let headers = reader.headers().map_err(bad)?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let user_col = col("user").ok_or_else(|| AwsError::Other {
        code: "InvalidCredentialReport".to_string(),
        message: "the credential report has no `user` column; generate it again".to_string(),
    })?;
    let cols = [
        col("arn"),
        col("password_enabled"),
        col("password_last_used"),
        col("mfa_active"),
        col("access_key_1_active"),
        col("access_key_1_last_used_date"),
        col("access_key_2_active"),
        col("access_key_2_last_used_date"),
    ];
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(bad)?;
        let get = |c: Option<usize>| c.and_then(|i| record.get(i)).unwrap_or("").trim();
        let flag = |c: Option<usize>| get(c).eq_ignore_ascii_case("true");
        let date = |c: Option<usize>| {
            let v = get(c);
            let none = v.is_empty()
                || ["N/A", "no_information", "not_supported"]
                    .iter()
                    .any(|n| v.eq_ignore_ascii_case(n));
            (!none).then(|| v.to_string())
        };
        rows.push(CredentialRow {
            user: record.get(user_col).unwrap_or("").trim().to_string(),
            arn: get(cols[0]).to_string(),
            password_enabled: flag(cols[1]),
            password_last_used: date(cols[2]),
            mfa_active: flag(cols[3]),
            access_key_1_active: flag(cols[4]),
            access_key_1_last_used: date(cols[5]),
            access_key_2_active: flag(cols[6]),
            access_key_2_last_used: date(cols[7]),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS_REPORT: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n\
<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,2026-11-27T10:00:00+00:00,not_supported,not_supported,false,true,2020-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
alice,arn:aws:iam::123456789012:user/alice,2020-01-01T00:00:00+00:00,true,no_information,2020-01-01T00:00:00+00:00,N/A,true,false,N/A,N/A,N/A,N/A,true,2021-01-01T00:00:00+00:00,2026-11-01T00:00:00+00:00,us-east-1,iam,false,N/A,false,N/A\n";

    #[test]
    fn parses_rows_by_header_name() {
        let rows = parse_credential_report(AWS_REPORT.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        let root = &rows[0];
        assert!(root.is_root());
        assert!(!root.password_enabled, "not_supported is not true");
        assert_eq!(
            root.password_last_used.as_deref(),
            Some("2026-11-27T10:00:00+00:00")
        );
        assert!(root.access_key_1_active && root.has_active_keys());
        assert_eq!(root.access_key_1_last_used, None);
        let alice = &rows[1];
        assert_eq!(alice.user, "alice");
        assert!(alice.password_enabled && alice.mfa_active);
        assert_eq!(alice.password_last_used, None, "no_information");
        assert!(!alice.access_key_1_active && alice.access_key_2_active);
        assert_eq!(
            alice.access_key_2_last_used.as_deref(),
            Some("2026-11-01T00:00:00+00:00")
        );
    }

    #[test]
    fn short_rows_as_moto_writes_them_are_accepted() {
        let moto = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region\n\
u1,arn:aws:iam::210987654321:user/u1,2026-11-28T05:21:47+00:00,false,not_supported,2026-11-28T05:21:47+00:00,not_supported,false,false,N/A,N/A\n";
        let rows = parse_credential_report(moto.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].password_enabled && !rows[0].has_active_keys());
        assert!(!rows.iter().any(CredentialRow::is_root));
    }

    #[test]
    fn a_report_without_user_column_is_refused() {
        let e = parse_credential_report(b"name,arn\nx,y\n").unwrap_err();
        assert!(e.to_string().contains("user"), "{e}");
    }
}
