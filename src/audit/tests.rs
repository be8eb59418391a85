//! The audit's checks and the baseline against an in-memory account: each
//! finding triggered and not triggered, denied checks, the report wait, and
//! the baseline's idempotence.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use super::baseline::{self, BaselineError, BaselineOptions, Change};
use super::root::parse_iso8601;
use super::trail::management_events;
use super::{audit, AuditError, AuditOptions, AuditReport, CheckStatus, Severity};
use crate::aws::account::*;
use crate::aws::iam::{MfaDevice, VirtualMfaDevice};
use crate::aws::policy::ADMINISTRATOR_ACCESS;
use crate::aws::AwsError;
use crate::progress::{Event, Quiet};
use serde_json::json;

#[path = "org_tests.rs"]
mod org_tests;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
        .block_on(f)
}

const ACCOUNT: &str = "123456789012";
const NOW: u64 = 1_795_000_000; // 2026-11-19

fn iso(secs_ago: u64) -> String {
    // Days/seconds back from NOW, written as IAM writes dates.
    let t = (NOW - secs_ago) as i64;
    let days = t.div_euclid(86400);
    let rem = t.rem_euclid(86400);
    // civil from days (Hinnant)
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[derive(Default)]
struct State {
    summary: AccountSummary,
    report_rows: Vec<String>,
    report_polls_before_ready: u32,
    users: Vec<String>,
    roles: Vec<Role>,
    groups: BTreeMap<String, Vec<String>>,
    attached: BTreeMap<Principal, Vec<String>>,
    inline: BTreeMap<Principal, Vec<(String, String)>>,
    managed: BTreeMap<String, String>,
    mfa: BTreeMap<String, Vec<MfaDevice>>,
    /// GetMFADevice certifications by serial.
    certifications: BTreeMap<String, BTreeMap<String, String>>,
    virtuals: Vec<VirtualMfaDevice>,
    tags: BTreeMap<String, Vec<(String, String)>>,
    trails: Vec<Trail>,
    logging: BTreeMap<String, bool>,
    selectors: BTreeMap<String, EventSelectors>,
    buckets: BTreeMap<String, BucketState>,
    /// What bucket_exposure answers, by bucket.
    exposure: BTreeMap<String, BucketExposure>,
    /// Trail names whose per-trail calls answer TrailNotFound unless sent
    /// to their home region (as CloudTrail does).
    strict_regions: bool,
    /// Where each per-trail call was sent: (operation, region).
    trail_calls: Vec<(&'static str, String)>,
    /// Trails whose per-trail calls are refused.
    broken_trails: BTreeSet<String>,
    /// This account's id (default ACCOUNT).
    account: Option<String>,
    /// Operation names that answer AccessDenied.
    denied: BTreeSet<&'static str>,
    no_credentials: bool,
    start_logging_ignored: bool,
    /// Mutating calls, in order.
    writes: Vec<String>,
    /// Calls by operation name (every call passes `gate`).
    calls: BTreeMap<&'static str, usize>,
}

#[derive(Clone)]
struct Fake(Arc<Mutex<State>>);

impl Fake {
    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    fn gate(&self, op: &'static str) -> Result<(), AwsError> {
        let mut st = self.st();
        *st.calls.entry(op).or_default() += 1;
        if st.no_credentials {
            return Err(AwsError::NoCredentials {
                detail: "none".into(),
            });
        }
        if st.denied.contains(op) {
            return Err(AwsError::AccessDenied {
                action: op.to_string(),
                message: "not authorized".into(),
            });
        }
        Ok(())
    }

    /// The trail a per-trail call names, as CloudTrail finds it: with
    /// `strict_regions`, only in the trail's home region.
    fn regional_trail(
        &self,
        op: &'static str,
        region: &str,
        trail: &str,
    ) -> Result<String, AwsError> {
        let key = self.trail_key(trail).unwrap_or_default();
        let mut st = self.st();
        st.trail_calls.push((op, region.to_string()));
        let me = st.account.clone().unwrap_or(ACCOUNT.to_string());
        if trail.starts_with("arn:") && trail.split(':').nth(4) != Some(me.as_str()) {
            // What CloudTrail answers a member about the organization's trail.
            return Err(AwsError::Other {
                code: "CloudTrailARNInvalidException".into(),
                message: format!(
                    "AccountID in ARN is wrong, you can only access resources with AccountID {me}"
                ),
            });
        }
        if st.broken_trails.contains(&key) {
            return Err(AwsError::AccessDenied {
                action: format!("cloudtrail:{op}"),
                message: "not authorized".into(),
            });
        }
        let home = st
            .trails
            .iter()
            .find(|t| t.name == key)
            .map(|t| t.home_region.clone());
        if st.strict_regions && home.as_deref() != Some(region) {
            return Err(AwsError::Other {
                code: "TrailNotFoundException".into(),
                message: format!("Unknown trail: {trail} for the user: {ACCOUNT}"),
            });
        }
        Ok(key)
    }

    fn trail_key(&self, name_or_arn: &str) -> Option<String> {
        self.st()
            .trails
            .iter()
            .find(|t| t.name == name_or_arn || t.arn == name_or_arn)
            .map(|t| t.name.clone())
    }

    /// An account with nothing to report: root MFA on (a security key),
    /// root unused for 100 days, alice an administrator with a security key,
    /// a good trail.
    fn clean() -> Fake {
        let mut st = State {
            summary: AccountSummary {
                root_mfa_enabled: true,
                root_access_keys: false,
                root_password: Some(true),
                root_signing_certificates: false,
            },
            ..State::default()
        };
        st.report_rows = vec![
            format!(
                "<root_account>,arn:aws:iam::{ACCOUNT}:root,not_supported,{},true,false,N/A,false,N/A",
                iso(100 * 86400)
            ),
            format!("alice,arn:aws:iam::{ACCOUNT}:user/alice,true,{},true,true,{},false,N/A", iso(3600), iso(60)),
        ];
        st.users = vec!["alice".into()];
        st.attached.insert(
            Principal::User("alice".into()),
            vec![ADMINISTRATOR_ACCESS.into()],
        );
        // Two certified security keys: hardware, with a backup.
        let keys =
            ["key-ABC", "key-DEF"].map(|k| format!("arn:aws:iam::{ACCOUNT}:u2f/user/alice/{k}"));
        st.mfa.insert(
            "alice".into(),
            keys.iter()
                .map(|serial| MfaDevice {
                    serial: serial.clone(),
                    enable_date: None,
                })
                .collect(),
        );
        for k in keys {
            st.certifications
                .insert(k, [("FIDO".to_string(), "L1".to_string())].into());
        }
        let arn = format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/main");
        st.trails = vec![Trail {
            name: "main".into(),
            arn: arn.clone(),
            home_region: "us-east-1".into(),
            multi_region: true,
            log_file_validation: true,
            kms_key: Some("arn:aws:kms:us-east-1:123456789012:key/k".into()),
            bucket: "logs".into(),
            global_events: true,
            organization: false,
        }];
        st.logging.insert("main".into(), true);
        st.selectors.insert(
            "main".into(),
            EventSelectors {
                basic: vec![EventSelector {
                    read_write: ManagementEvents::All,
                    include_management: true,
                    data_resources: vec![],
                    exclude_sources: vec![],
                }],
                advanced: vec![],
            },
        );
        Fake(Arc::new(Mutex::new(st)))
    }

    fn empty() -> Fake {
        Fake(Arc::new(Mutex::new(State::default())))
    }
}

const HEADER: &str = "user,arn,password_enabled,password_last_used,mfa_active,access_key_1_active,access_key_1_last_used_date,access_key_2_active,access_key_2_last_used_date";

impl AccountApi for Fake {
    async fn account_summary(&self) -> Result<AccountSummary, AwsError> {
        self.gate("iam:GetAccountSummary")?;
        Ok(self.st().summary)
    }
    async fn generate_credential_report(&self) -> Result<ReportState, AwsError> {
        self.gate("iam:GenerateCredentialReport")?;
        Ok(ReportState::Started)
    }
    async fn credential_report(&self) -> Result<Option<Vec<u8>>, AwsError> {
        self.gate("iam:GetCredentialReport")?;
        let mut st = self.st();
        if st.report_polls_before_ready > 0 {
            st.report_polls_before_ready -= 1;
            return Ok(None);
        }
        let mut csv = format!("{HEADER}\n");
        for r in &st.report_rows {
            csv.push_str(r);
            csv.push('\n');
        }
        Ok(Some(csv.into_bytes()))
    }
    async fn list_users(&self) -> Result<Vec<String>, AwsError> {
        self.gate("iam:ListUsers")?;
        Ok(self.st().users.clone())
    }
    async fn list_roles(&self) -> Result<Vec<Role>, AwsError> {
        self.gate("iam:ListRoles")?;
        Ok(self.st().roles.clone())
    }
    async fn groups_for_user(&self, user: &str) -> Result<Vec<String>, AwsError> {
        self.gate("iam:ListGroupsForUser")?;
        Ok(self.st().groups.get(user).cloned().unwrap_or_default())
    }
    async fn attached_policies(&self, who: &Principal) -> Result<Vec<String>, AwsError> {
        self.gate("iam:ListAttachedPolicies")?;
        Ok(self.st().attached.get(who).cloned().unwrap_or_default())
    }
    async fn inline_policies(&self, who: &Principal) -> Result<Vec<(String, String)>, AwsError> {
        self.gate("iam:GetInlinePolicy")?;
        Ok(self.st().inline.get(who).cloned().unwrap_or_default())
    }
    async fn managed_policy_document(&self, arn: &str) -> Result<String, AwsError> {
        self.gate("iam:GetPolicyVersion")?;
        Ok(self.st().managed.get(arn).cloned().unwrap_or_default())
    }
    async fn user_mfa_devices(&self, user: &str) -> Result<Vec<MfaDevice>, AwsError> {
        self.gate("iam:ListMFADevices")?;
        Ok(self.st().mfa.get(user).cloned().unwrap_or_default())
    }
    async fn virtual_mfa_devices(&self) -> Result<Vec<VirtualMfaDevice>, AwsError> {
        self.gate("iam:ListVirtualMFADevices")?;
        Ok(self.st().virtuals.clone())
    }
    async fn device_tags(&self, serial: &str) -> Result<Vec<(String, String)>, AwsError> {
        self.gate("iam:ListMFADeviceTags")?;
        Ok(self.st().tags.get(serial).cloned().unwrap_or_default())
    }
    async fn fido_certifications(
        &self,
        _user: &str,
        serial: &str,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        self.gate("iam:GetMFADevice")?;
        Ok(self
            .st()
            .certifications
            .get(serial)
            .cloned()
            .unwrap_or_default())
    }
}

impl TrailApi for Fake {
    async fn describe_trails(&self) -> Result<Vec<Trail>, AwsError> {
        self.gate("cloudtrail:DescribeTrails")?;
        Ok(self.st().trails.clone())
    }
    async fn is_logging(&self, region: &str, trail: &str) -> Result<bool, AwsError> {
        self.gate("cloudtrail:GetTrailStatus")?;
        let key = self.regional_trail("GetTrailStatus", region, trail)?;
        Ok(self.st().logging.get(&key).copied().unwrap_or(false))
    }
    async fn event_selectors(&self, region: &str, trail: &str) -> Result<EventSelectors, AwsError> {
        self.gate("cloudtrail:GetEventSelectors")?;
        let key = self.regional_trail("GetEventSelectors", region, trail)?;
        Ok(self.st().selectors.get(&key).cloned().unwrap_or_default())
    }
    async fn create_trail(&self, s: &TrailSettings) -> Result<(), AwsError> {
        self.gate("cloudtrail:CreateTrail")?;
        let mut st = self.st();
        st.writes.push(format!("CreateTrail {}", s.name));
        st.trails.push(Trail {
            name: s.name.clone(),
            arn: format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/{}", s.name),
            home_region: "us-east-1".into(),
            multi_region: true,
            log_file_validation: true,
            kms_key: s.kms_key.clone(),
            bucket: s.bucket.clone(),
            global_events: true,
            organization: false,
        });
        Ok(())
    }
    async fn update_trail(&self, s: &TrailSettings) -> Result<(), AwsError> {
        self.gate("cloudtrail:UpdateTrail")?;
        let mut st = self.st();
        st.writes.push(format!("UpdateTrail {}", s.name));
        if let Some(t) = st.trails.iter_mut().find(|t| t.name == s.name) {
            t.multi_region = true;
            t.log_file_validation = true;
            t.global_events = true;
            t.kms_key = s.kms_key.clone();
        }
        Ok(())
    }
    async fn put_event_selectors(
        &self,
        trail: &str,
        selectors: &[EventSelector],
    ) -> Result<(), AwsError> {
        self.gate("cloudtrail:PutEventSelectors")?;
        let key = self.trail_key(trail).unwrap_or_default();
        let mut st = self.st();
        st.writes.push(format!("PutEventSelectors {key}"));
        st.selectors.insert(
            key,
            EventSelectors {
                basic: selectors.to_vec(),
                advanced: vec![],
            },
        );
        Ok(())
    }
    async fn start_logging(&self, trail: &str) -> Result<(), AwsError> {
        self.gate("cloudtrail:StartLogging")?;
        let key = self.trail_key(trail).unwrap_or_default();
        let mut st = self.st();
        st.writes.push(format!("StartLogging {key}"));
        if !st.start_logging_ignored {
            st.logging.insert(key, true);
        }
        Ok(())
    }
}

impl BucketApi for Fake {
    async fn account_id(&self) -> Result<String, AwsError> {
        self.gate("sts:GetCallerIdentity")?;
        Ok(self.st().account.clone().unwrap_or(ACCOUNT.into()))
    }
    fn region(&self) -> String {
        "us-east-1".into()
    }
    async fn bucket_state(&self, bucket: &str) -> Result<Option<BucketState>, AwsError> {
        self.gate("s3:ListBucket")?;
        Ok(self.st().buckets.get(bucket).cloned())
    }
    async fn create_bucket(&self, bucket: &str, object_lock: bool) -> Result<(), AwsError> {
        self.gate("s3:CreateBucket")?;
        let mut st = self.st();
        st.writes
            .push(format!("CreateBucket {bucket} lock={object_lock}"));
        st.buckets.insert(bucket.into(), BucketState::default());
        Ok(())
    }
    async fn block_public_access(&self, bucket: &str) -> Result<(), AwsError> {
        self.gate("s3:PutBucketPublicAccessBlock")?;
        let mut st = self.st();
        st.writes.push(format!("BlockPublicAccess {bucket}"));
        st.buckets.get_mut(bucket).unwrap().public_access_blocked = true;
        Ok(())
    }
    async fn put_bucket_policy(&self, bucket: &str, policy: &str) -> Result<(), AwsError> {
        self.gate("s3:PutBucketPolicy")?;
        let mut st = self.st();
        st.writes.push(format!("PutBucketPolicy {bucket}"));
        st.buckets.get_mut(bucket).unwrap().policy = Some(policy.into());
        Ok(())
    }
    async fn bucket_exposure(
        &self,
        bucket: &str,
        _region: &str,
    ) -> Result<Option<BucketExposure>, AwsError> {
        self.gate("s3:GetBucketPolicyStatus")?;
        Ok(self.st().exposure.get(bucket).cloned())
    }
}

fn opts() -> AuditOptions {
    AuditOptions {
        now: UNIX_EPOCH + Duration::from_secs(NOW),
        report_poll: Duration::from_millis(1),
        report_wait: Duration::from_secs(5),
        ..AuditOptions::default()
    }
}

fn run_with(fake: &Fake, o: &AuditOptions) -> AuditReport {
    block_on(audit(fake, o, &mut Quiet)).expect("audit runs")
}

fn run(fake: &Fake) -> AuditReport {
    run_with(fake, &opts())
}

fn ids(r: &AuditReport) -> Vec<&'static str> {
    r.findings.iter().map(|f| f.id).collect()
}

fn status(r: &AuditReport, check: &str) -> CheckStatus {
    r.checks
        .iter()
        .find(|c| c.check == check)
        .unwrap_or_else(|| panic!("no check {check}"))
        .status
}

#[test]
fn a_clean_account_passes_every_check() {
    let f = Fake::clean();
    let r = run(&f);
    // Two checks need the user list: it is read once.
    assert_eq!(f.st().calls.get("iam:ListUsers"), Some(&1));
    assert_eq!(ids(&r), Vec::<&str>::new(), "{:#?}", r.findings);
    assert_eq!(r.checks.len(), 8);
    for c in &r.checks {
        assert_eq!(c.status, CheckStatus::Passed, "{c:?}");
    }
    assert!(!r.incomplete());
}

#[test]
fn root_mfa_missing_virtual_and_keys() {
    let f = Fake::clean();
    f.st().summary.root_mfa_enabled = false;
    let r = run(&f);
    assert_eq!(ids(&r), ["root-mfa-missing"]);
    assert_eq!(r.findings[0].severity, Severity::Critical);
    assert!(r.findings[0].remedy.contains("mfakey oath add"));

    let f = Fake::clean();
    f.st().virtuals.push(VirtualMfaDevice {
        serial: format!("arn:aws:iam::{ACCOUNT}:mfa/root-account-mfa-device"),
        user: Some(ROOT_ROW.into()),
        tags: vec![],
    });
    assert_eq!(ids(&run(&f)), ["root-mfa-virtual"]);

    let f = Fake::clean();
    f.st().summary.root_access_keys = true;
    let r = run(&f);
    assert_eq!(ids(&r), ["root-access-keys"]);
    assert_eq!(
        r.findings[0].evidence,
        "GetAccountSummary: AccountAccessKeysPresent = 1"
    );
}

#[test]
fn root_recent_use_within_the_window_only() {
    let f = Fake::clean();
    f.st().report_rows[0] = format!(
        "<root_account>,arn:aws:iam::{ACCOUNT}:root,not_supported,{},true,true,{},false,N/A",
        iso(40 * 86400),
        iso(3 * 86400)
    );
    let r = run(&f);
    assert_eq!(ids(&r), ["root-recently-used"]);
    assert!(r.findings[0]
        .evidence
        .contains("access_key_1_last_used_date"));
    assert!(!r.findings[0].evidence.contains("password_last_used"));

    let mut o = opts();
    o.max_root_age_days = 2;
    assert_eq!(ids(&run_with(&f, &o)), Vec::<&str>::new());
    o.max_root_age_days = 45;
    let r = run_with(&f, &o);
    assert!(r.findings[0].evidence.contains("password_last_used"));
}

#[test]
fn no_root_row_is_unknown_not_fine() {
    let f = Fake::clean();
    f.st().report_rows.remove(0);
    let r = run(&f);
    assert_eq!(status(&r, "root-usage"), CheckStatus::Unknown);
    assert!(r.incomplete());
    assert!(ids(&r).is_empty());
}

#[test]
fn admin_besides_root_by_each_route() {
    let f = Fake::clean();
    f.st().attached.clear();
    let r = run(&f);
    assert_eq!(ids(&r), ["no-admin-besides-root"]);
    assert!(r.findings[0].evidence.contains("checked 1 users"));

    // Through a group.
    let f = Fake::clean();
    f.st().attached.clear();
    f.st().groups.insert("alice".into(), vec!["admins".into()]);
    f.st().attached.insert(
        Principal::Group("admins".into()),
        vec![ADMINISTRATOR_ACCESS.into()],
    );
    let r = run(&f);
    assert!(ids(&r).is_empty(), "{:?}", r.findings);

    // A customer-managed policy allowing * on *.
    let f = Fake::clean();
    let arn = format!("arn:aws:iam::{ACCOUNT}:policy/all");
    f.st()
        .attached
        .insert(Principal::User("alice".into()), vec![arn.clone()]);
    f.st().managed.insert(
        arn,
        r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#.into(),
    );
    assert!(ids(&run(&f)).is_empty());

    // An AWS-managed policy other than AdministratorAccess is not enough.
    let f = Fake::clean();
    f.st().attached.insert(
        Principal::User("alice".into()),
        vec!["arn:aws:iam::aws:policy/PowerUserAccess".into()],
    );
    assert_eq!(ids(&run(&f)), ["no-admin-besides-root"]);

    // An inline policy on a role.
    let f = Fake::clean();
    f.st().attached.clear();
    f.st().roles.push(Role {
        name: "ops".into(),
        path: "/".into(),
    });
    f.st().inline.insert(
        Principal::Role("ops".into()),
        vec![(
            "all".into(),
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#.into(),
        )],
    );
    assert!(ids(&run(&f)).is_empty());

    // A service-linked role does not count.
    let f = Fake::clean();
    f.st().attached.clear();
    f.st().roles.push(Role {
        name: "AWSServiceRoleForSupport".into(),
        path: "/aws-service-role/support.amazonaws.com/".into(),
    });
    f.st().attached.insert(
        Principal::Role("AWSServiceRoleForSupport".into()),
        vec![ADMINISTRATOR_ACCESS.into()],
    );
    assert_eq!(ids(&run(&f)), ["no-admin-besides-root"]);
}

#[test]
fn users_without_mfa() {
    let f = Fake::clean();
    {
        let mut st = f.st();
        st.users.push("bob".into());
        st.users.push("carol".into());
        st.users.push("dave".into());
        st.report_rows.push(format!(
            "bob,arn:aws:iam::{ACCOUNT}:user/bob,true,N/A,false,false,N/A,false,N/A"
        ));
        st.report_rows.push(format!(
            "carol,arn:aws:iam::{ACCOUNT}:user/carol,false,N/A,false,false,N/A,true,N/A"
        ));
        // dave: no password, no keys: nothing to protect.
        st.report_rows.push(format!(
            "dave,arn:aws:iam::{ACCOUNT}:user/dave,false,N/A,false,false,N/A,false,N/A"
        ));
    }
    let r = run(&f);
    assert_eq!(
        ids(&r),
        ["user-console-without-mfa", "user-keys-without-mfa"]
    );
    assert_eq!(r.findings[0].subject.as_deref(), Some("bob"));
    assert_eq!(r.findings[0].remedy, "`mfakey enroll user bob`");
    assert_eq!(r.findings[1].subject.as_deref(), Some("carol"));

    // With MFA devices (the report's mfa_active may be stale: ListMFADevices
    // decides): two hardware tokens each, so a backup too.
    for u in ["bob", "carol"] {
        f.st().mfa.insert(
            u.into(),
            ["GAHT12345678", "GAHT87654321"]
                .map(|serial| MfaDevice {
                    serial: serial.into(),
                    enable_date: None,
                })
                .to_vec(),
        );
    }
    assert!(ids(&run(&f)).is_empty());

    // A user newer than the report is named as not checked.
    f.st().users.push("erin".into());
    let r = run(&f);
    let c = r.checks.iter().find(|c| c.check == "user-mfa").unwrap();
    assert!(c.detail.contains("not checked: erin"), "{}", c.detail);
}

#[test]
fn virtual_only_mfa_unless_mfakey_put_it_on_a_key() {
    let f = Fake::clean();
    let serial = format!("arn:aws:iam::{ACCOUNT}:mfa/alice-phone");
    // Two virtual devices (so a backup): the phone and a tablet.
    f.st().mfa.insert(
        "alice".into(),
        [
            serial.clone(),
            format!("arn:aws:iam::{ACCOUNT}:mfa/alice-tablet"),
        ]
        .map(|serial| MfaDevice {
            serial,
            enable_date: None,
        })
        .to_vec(),
    );
    let r = run(&f);
    assert_eq!(ids(&r), ["user-mfa-virtual-only"]);
    assert_eq!(r.findings[0].severity, Severity::Low);
    let mut o = opts();
    o.require_hardware_mfa = true;
    assert_eq!(run_with(&f, &o).findings[0].severity, Severity::High);

    // Tags that cannot be read are not "no tags": the check did not run.
    f.st().denied.insert("iam:ListMFADeviceTags");
    let r = run(&f);
    assert!(ids(&r).is_empty(), "{:?}", ids(&r));
    assert_eq!(status(&r, "mfa-hardware"), CheckStatus::Denied);
    f.st().denied.clear();

    // mfakey's device, known by its tags (read with ListMFADeviceTags).
    f.st().tags.insert(
        serial,
        vec![(crate::enroll::TAG_MANAGED.into(), "true".into())],
    );
    assert!(ids(&run(&f)).is_empty());
}

#[test]
fn unassigned_virtual_devices() {
    let f = Fake::clean();
    let mine = format!("arn:aws:iam::{ACCOUNT}:mfa/alice-yk1");
    let other = format!("arn:aws:iam::{ACCOUNT}:mfa/old");
    {
        let mut st = f.st();
        st.virtuals.push(VirtualMfaDevice {
            serial: mine.clone(),
            user: None,
            tags: vec![],
        });
        st.virtuals.push(VirtualMfaDevice {
            serial: other.clone(),
            user: None,
            tags: vec![],
        });
        st.tags.insert(
            mine.clone(),
            vec![(crate::enroll::TAG_MANAGED.into(), "true".into())],
        );
    }
    let r = run(&f);
    assert_eq!(
        ids(&r),
        ["virtual-mfa-unassigned", "virtual-mfa-unassigned"]
    );
    let by = |s: &str| {
        r.findings
            .iter()
            .find(|x| x.subject.as_deref() == Some(s))
            .unwrap()
    };
    assert_eq!(by(&mine).remedy, "`mfakey cleanup --delete`");
    assert!(by(&other).remedy.contains("delete-virtual-mfa-device"));
}

#[test]
fn cloudtrail_findings_one_by_one() {
    let f = Fake::clean();
    f.st().trails.clear();
    let r = run(&f);
    assert_eq!(ids(&r), ["cloudtrail-missing"]);
    assert_eq!(r.findings[0].remedy, "`mfakey baseline cloudtrail`");

    type Mutation = fn(&mut State);
    let cases: [(Mutation, &str); 5] = [
        (
            |s| s.trails[0].multi_region = false,
            "cloudtrail-not-multi-region",
        ),
        (
            |s| {
                s.logging.insert("main".into(), false);
            },
            "cloudtrail-not-logging",
        ),
        (
            |s| {
                s.selectors.get_mut("main").unwrap().basic[0].read_write =
                    ManagementEvents::ReadOnly
            },
            "cloudtrail-management-events",
        ),
        (
            |s| s.trails[0].log_file_validation = false,
            "cloudtrail-log-validation-off",
        ),
        (|s| s.trails[0].kms_key = None, "cloudtrail-no-kms"),
    ];
    for (mutate, id) in cases {
        let f = Fake::clean();
        mutate(&mut f.st());
        let r = run(&f);
        assert_eq!(ids(&r), [id]);
        assert_eq!(r.findings[0].subject.as_deref(), Some("main"));
        assert_eq!(status(&r, "cloudtrail"), CheckStatus::Failed);
    }

    // A second, good trail is judged the best: no findings.
    let f = Fake::clean();
    {
        let mut st = f.st();
        let mut bad = st.trails[0].clone();
        bad.name = "old".into();
        bad.arn = bad.arn.replace("/main", "/old");
        bad.multi_region = false;
        st.trails.insert(0, bad);
    }
    assert!(ids(&run(&f)).is_empty());
}

#[test]
fn management_events_from_basic_and_advanced_selectors() {
    let sel = |rw, inc| EventSelector {
        read_write: rw,
        include_management: inc,
        data_resources: vec![],
        exclude_sources: vec![],
    };
    let basic = |v: Vec<EventSelector>| EventSelectors {
        basic: v,
        advanced: vec![],
    };
    assert_eq!(management_events(&basic(vec![])), ManagementEvents::None);
    assert_eq!(
        management_events(&basic(vec![sel(ManagementEvents::All, false)])),
        ManagementEvents::None
    );
    assert_eq!(
        management_events(&basic(vec![
            sel(ManagementEvents::ReadOnly, true),
            sel(ManagementEvents::WriteOnly, true)
        ])),
        ManagementEvents::All
    );
    let adv = |fields: Vec<(&str, Vec<&str>)>| EventSelectors {
        basic: vec![],
        advanced: vec![fields
            .into_iter()
            .map(|(f, v)| FieldSelector::equals(f, &v))
            .collect()],
    };
    assert_eq!(
        management_events(&adv(vec![("eventCategory", vec!["Management"])])),
        ManagementEvents::All
    );
    assert_eq!(
        management_events(&adv(vec![
            ("eventCategory", vec!["Management"]),
            ("readOnly", vec!["false"])
        ])),
        ManagementEvents::WriteOnly
    );
    assert_eq!(
        management_events(&adv(vec![("eventCategory", vec!["Data"])])),
        ManagementEvents::None
    );
}

#[test]
fn a_denied_check_is_reported_and_the_others_run() {
    let f = Fake::clean();
    {
        let mut st = f.st();
        st.summary.root_access_keys = true; // would be a finding, but unreadable
        st.trails.clear(); // still found: CloudTrail is readable
        st.denied.insert("iam:GetAccountSummary");
    }
    let r = run(&f);
    assert_eq!(status(&r, "root-mfa"), CheckStatus::Denied);
    assert_eq!(status(&r, "root-access-keys"), CheckStatus::Denied);
    let c = r.checks.iter().find(|c| c.check == "root-mfa").unwrap();
    assert!(
        c.detail.contains("iam:GetAccountSummary") && c.detail.contains("docs/audit-policy.json")
    );
    assert_eq!(ids(&r), ["cloudtrail-missing"]);
    assert_eq!(status(&r, "admin-besides-root"), CheckStatus::Passed);
    assert!(r.incomplete());

    for (op, checks) in [
        (
            "iam:GenerateCredentialReport",
            vec!["root-usage", "user-mfa"],
        ),
        (
            "iam:ListUsers",
            vec!["admin-besides-root", "user-mfa", "mfa-hardware"],
        ),
        (
            "iam:ListVirtualMFADevices",
            vec!["mfa-hardware", "unassigned-mfa"],
        ),
        ("cloudtrail:DescribeTrails", vec!["cloudtrail"]),
        ("cloudtrail:GetTrailStatus", vec!["cloudtrail"]),
    ] {
        let f = Fake::clean();
        f.st().denied.insert(op);
        let r = run(&f);
        for c in &r.checks {
            let want = if checks.contains(&c.check) {
                CheckStatus::Denied
            } else {
                CheckStatus::Passed
            };
            assert_eq!(c.status, want, "{op}: {c:?}");
        }
    }
}

#[test]
fn missing_credentials_stop_the_audit() {
    let f = Fake::clean();
    f.st().no_credentials = true;
    let e = block_on(audit(&f, &opts(), &mut Quiet)).unwrap_err();
    assert!(matches!(e, AuditError::Aws(AwsError::NoCredentials { .. })));
}

#[test]
fn the_credential_report_is_waited_for_with_a_bound() {
    let f = Fake::clean();
    f.st().report_polls_before_ready = 2;
    let mut waits = Vec::new();
    let r = block_on(audit(&f, &opts(), &mut |p: Event| {
        if let Event::ReportWaiting { .. } = p {
            waits.push(p)
        }
    }))
    .unwrap();
    assert_eq!(waits.len(), 2);
    assert_eq!(status(&r, "root-usage"), CheckStatus::Passed);

    let f = Fake::clean();
    f.st().report_polls_before_ready = u32::MAX;
    let mut o = opts();
    o.report_wait = Duration::from_millis(30);
    let r = run_with(&f, &o);
    assert_eq!(status(&r, "root-usage"), CheckStatus::Error);
    let c = r.checks.iter().find(|c| c.check == "root-usage").unwrap();
    assert!(c.detail.contains("not ready"), "{}", c.detail);
}

#[test]
fn iso8601_dates_as_iam_writes_them() {
    assert_eq!(parse_iso8601("1970-01-01T00:00:00+00:00"), Some(0));
    assert_eq!(parse_iso8601("2026-11-28T05:21:47Z"), Some(1_795_843_307));
    assert_eq!(
        parse_iso8601("2026-11-28T06:21:47+01:00"),
        Some(1_795_843_307)
    );
    assert_eq!(
        parse_iso8601("2026-11-28T05:21:47.123Z"),
        Some(1_795_843_307)
    );
    assert_eq!(parse_iso8601("N/A"), None);
    assert_eq!(parse_iso8601("2026-11-28 05:21:47"), None);
    assert_eq!(parse_iso8601(&iso(0)), Some(NOW as i64));
}

// --- baseline ---

fn plan(f: &Fake, o: &BaselineOptions) -> Result<baseline::Plan, BaselineError> {
    block_on(baseline::plan(f, o))
}

fn apply(f: &Fake, p: &baseline::Plan) -> Result<(), BaselineError> {
    block_on(baseline::apply(f, p, &mut |_| {}))
}

#[test]
fn baseline_creates_everything_then_changes_nothing() {
    let f = Fake::empty();
    let o = BaselineOptions {
        object_lock: true,
        ..BaselineOptions::default()
    };
    let p = plan(&f, &o).unwrap();
    let bucket = format!("mfakey-cloudtrail-{ACCOUNT}-us-east-1");
    assert_eq!(p.bucket, bucket);
    assert_eq!(p.trail, baseline::DEFAULT_TRAIL);
    assert_eq!(p.changes.len(), 6, "{:#?}", p.changes);
    apply(&f, &p).unwrap();
    let writes = f.st().writes.clone();
    assert_eq!(
        writes,
        [
            format!("CreateBucket {bucket} lock=true"),
            format!("BlockPublicAccess {bucket}"),
            format!("PutBucketPolicy {bucket}"),
            "CreateTrail mfakey-account-trail".to_string(),
            "PutEventSelectors mfakey-account-trail".to_string(),
            "StartLogging mfakey-account-trail".to_string(),
        ]
    );
    // The policy names this trail and account.
    let policy = f.st().buckets[&bucket].policy.clone().unwrap();
    assert!(policy.contains(&format!(
        "arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/mfakey-account-trail"
    )));
    assert!(policy.contains(&format!("arn:aws:s3:::{bucket}/AWSLogs/{ACCOUNT}/*")));

    // Second run: nothing to do.
    let again = plan(&f, &o).unwrap();
    assert!(again.changes.is_empty(), "{:#?}", again.changes);
    assert!(again.notes.iter().any(|n| n.contains("Object Lock")));
    apply(&f, &again).unwrap();
    assert_eq!(f.st().writes.len(), 6);

    // And the audit finds CloudTrail fine except the KMS key.
    let r = run(&f);
    let trail_ids: Vec<_> = ids(&r)
        .into_iter()
        .filter(|i| i.starts_with("cloudtrail"))
        .collect();
    assert_eq!(trail_ids, ["cloudtrail-no-kms"]);
}

#[test]
fn baseline_fixes_an_existing_trail_in_place() {
    let f = Fake::clean();
    {
        let mut st = f.st();
        st.trails[0].multi_region = false;
        st.trails[0].log_file_validation = false;
        st.logging.insert("main".into(), false);
        st.selectors.get_mut("main").unwrap().basic = vec![EventSelector {
            read_write: ManagementEvents::WriteOnly,
            include_management: true,
            data_resources: vec![("AWS::S3::Object".into(), vec!["arn:aws:s3:::data/".into()])],
            exclude_sources: vec![],
        }];
        st.buckets.insert(
            "logs".into(),
            BucketState {
                public_access_blocked: true,
                policy: Some(r#"{"Version":"2012-10-17","Statement":[{"Sid":"Mine","Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::logs/*"}]}"#.into()),
            },
        );
    }
    let p = plan(
        &f,
        &BaselineOptions {
            trail_name: Some("main".into()),
            ..BaselineOptions::default()
        },
    )
    .unwrap();
    assert_eq!(p.bucket, "logs");
    let kinds: Vec<_> = p
        .changes
        .iter()
        .map(|c| match c {
            Change::PutBucketPolicy { .. } => "policy",
            Change::UpdateTrail { .. } => "update",
            Change::PutEventSelectors { .. } => "selectors",
            Change::StartLogging { .. } => "start",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["policy", "update", "selectors", "start"]);
    apply(&f, &p).unwrap();
    let st = f.st();
    // The owner's statement is kept; the data selector too.
    assert!(st.buckets["logs"]
        .policy
        .as_ref()
        .unwrap()
        .contains("\"Mine\""));
    let sel = &st.selectors["main"].basic[0];
    assert_eq!(sel.read_write, ManagementEvents::All);
    assert_eq!(sel.data_resources.len(), 1);
    assert!(st.trails[0].multi_region && st.trails[0].log_file_validation);
    drop(st);
    assert!(plan(
        &f,
        &BaselineOptions {
            trail_name: Some("main".into()),
            ..BaselineOptions::default()
        }
    )
    .unwrap()
    .changes
    .is_empty());
}

#[test]
fn baseline_refusals() {
    let f = Fake::clean();
    let e = plan(
        &f,
        &BaselineOptions {
            trail_name: Some("main".into()),
            bucket: Some("elsewhere".into()),
            ..BaselineOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, BaselineError::BucketMismatch { .. }), "{e}");

    let f = Fake::empty();
    f.st().buckets.insert(
        "bkt".into(),
        BucketState {
            public_access_blocked: true,
            policy: Some("not json".into()),
        },
    );
    let e = plan(
        &f,
        &BaselineOptions {
            bucket: Some("bkt".into()),
            ..BaselineOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, BaselineError::BadPolicy { .. }), "{e}");

    // A trail of another home region is changed only from there.
    let f = Fake::clean();
    f.st().trails[0].home_region = "eu-west-1".into();
    let e = plan(
        &f,
        &BaselineOptions {
            trail_name: Some("main".into()),
            ..BaselineOptions::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("--region eu-west-1"), "{e}");

    // StartLogging that does not take: reported, not claimed done.
    let f = Fake::empty();
    f.st().start_logging_ignored = true;
    let p = plan(&f, &BaselineOptions::default()).unwrap();
    let e = apply(&f, &p).unwrap_err();
    assert!(matches!(e, BaselineError::NotLogging { .. }), "{e}");

    // A denied write stops the baseline with the permission named.
    let f = Fake::empty();
    f.st().denied.insert("cloudtrail:CreateTrail");
    let p = plan(&f, &BaselineOptions::default()).unwrap();
    let e = apply(&f, &p).unwrap_err();
    assert!(e.to_string().contains("cloudtrail:CreateTrail"), "{e}");
}

#[test]
fn names_are_checked_before_anything_is_made() {
    for ok in ["mfakey-account-trail", "a.b_c-1", "abc"] {
        assert!(baseline::check_trail_name(ok).is_ok(), "{ok}");
    }
    for bad in [
        "t2",
        "-abc",
        "abc-",
        "a..b",
        "a_-b",
        "a b",
        &"x".repeat(129),
    ] {
        assert!(baseline::check_trail_name(bad).is_err(), "{bad}");
    }
    assert!(baseline::check_trail_name("arn:aws:cloudtrail:us-east-1:1:trail/t").is_ok());
    for ok in ["mfakey-cloudtrail-123456789012-us-east-1", "a.b-c", "abc"] {
        assert!(baseline::check_bucket_name(ok).is_ok(), "{ok}");
    }
    for bad in [
        "ab",
        "Abc",
        "a_b",
        "-ab",
        "ab.",
        "a..b",
        "192.168.1.2",
        &"x".repeat(64),
    ] {
        assert!(baseline::check_bucket_name(bad).is_err(), "{bad}");
    }
    let f = Fake::empty();
    let e = plan(
        &f,
        &BaselineOptions {
            trail_name: Some("t2".into()),
            ..BaselineOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, BaselineError::InvalidName { .. }), "{e}");
    assert!(f.st().writes.is_empty());
}

// --- accounts as they really look (issue: organizations) ---

fn check<'a>(r: &'a AuditReport, name: &str) -> &'a super::CheckResult {
    r.checks
        .iter()
        .find(|c| c.check == name)
        .unwrap_or_else(|| panic!("no check {name}"))
}

fn finding<'a>(r: &'a AuditReport, id: &str) -> &'a super::Finding {
    r.findings
        .iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("no {id}: {:?}", ids(r)))
}

#[test]
fn root_without_credentials_needs_no_mfa() {
    // A member account under centralized root access: no password, no
    // keys, no certificates, and so no MFA either.
    let f = Fake::clean();
    {
        let mut st = f.st();
        st.summary.root_mfa_enabled = false;
        st.summary.root_password = Some(false);
    }
    let r = run(&f);
    assert!(ids(&r).is_empty(), "{:?}", r.findings);
    let c = check(&r, "root-mfa");
    assert_eq!(c.status, CheckStatus::Passed);
    assert!(
        c.detail.contains("not applicable") && c.detail.contains("AccountPasswordPresent = 0"),
        "{}",
        c.detail
    );

    // With a password and no MFA it is critical, as before; without the
    // key in the answer (moto), judged as before too.
    for password in [Some(true), None] {
        f.st().summary.root_password = password;
        assert_eq!(ids(&run(&f)), ["root-mfa-missing"]);
    }
}

#[test]
fn root_signing_certificates_are_their_own_finding() {
    let f = Fake::clean();
    f.st().summary.root_signing_certificates = true;
    let r = run(&f);
    assert_eq!(ids(&r), ["root-signing-certificates"]);
    assert_eq!(r.findings[0].severity, Severity::High);
    assert_eq!(
        r.findings[0].evidence,
        "GetAccountSummary: AccountSigningCertificatesPresent = 1"
    );
}

fn member_of(management: &str, managed: Option<bool>) -> AuditOptions {
    AuditOptions {
        organization: Some(Arc::new(super::OrgContext {
            management_account: management.into(),
            root_credentials_managed: managed,
            trails: vec![],
        })),
        ..opts()
    }
}

#[test]
fn root_credentials_in_a_member_under_central_management() {
    let f = Fake::clean();
    let r = run_with(&f, &member_of("999999999999", Some(true)));
    assert_eq!(ids(&r), ["root-credentials-present"]);
    let x = &r.findings[0];
    assert!(
        x.evidence.contains("AccountPasswordPresent = 1"),
        "{}",
        x.evidence
    );
    assert_eq!(x.references.cis, Some("2.1.1"));
    // Not managed centrally, or unknown, or the management account itself:
    // root credentials are expected there.
    for o in [
        member_of("999999999999", Some(false)),
        member_of("999999999999", None),
        member_of(ACCOUNT, Some(true)),
        opts(),
    ] {
        assert!(ids(&run_with(&f, &o)).is_empty());
    }
    // No credentials left: nothing to say.
    f.st().summary.root_password = Some(false);
    assert!(ids(&run_with(&f, &member_of("999999999999", Some(true)))).is_empty());
}

#[test]
fn a_trail_is_read_in_its_home_region() {
    let f = Fake::clean();
    {
        let mut st = f.st();
        st.strict_regions = true;
        st.trails[0].home_region = "eu-west-1".into();
        st.trails[0].arn = st.trails[0].arn.replace("us-east-1", "eu-west-1");
    }
    let r = run(&f);
    assert_eq!(
        check(&r, "cloudtrail").status,
        CheckStatus::Passed,
        "{:?}",
        r.checks
    );
    let calls = f.st().trail_calls.clone();
    assert!(
        !calls.is_empty() && calls.iter().all(|(_, region)| region == "eu-west-1"),
        "{calls:?}"
    );
}

#[test]
fn an_unreadable_trail_does_not_sink_a_check_another_satisfies() {
    let f = Fake::clean();
    {
        let mut st = f.st();
        let mut other = st.trails[0].clone();
        other.name = "elsewhere".into();
        other.arn = other.arn.replace("/main", "/elsewhere");
        st.trails.insert(0, other);
        st.broken_trails.insert("elsewhere".into());
    }
    let r = run(&f);
    let c = check(&r, "cloudtrail");
    assert_eq!(c.status, CheckStatus::Passed, "{c:?}");
    assert!(
        c.detail.contains("trail elsewhere not read"),
        "{}",
        c.detail
    );

    // When the readable trail falls short, the unreadable one might not:
    // the check cannot tell.
    f.st().trails[1].log_file_validation = false;
    let r = run(&f);
    assert_eq!(check(&r, "cloudtrail").status, CheckStatus::Denied);
    assert!(ids(&r).is_empty(), "{:?}", ids(&r));
}

#[test]
fn management_event_exclusions_are_not_all_events() {
    let f = Fake::clean();
    f.st().selectors.get_mut("main").unwrap().basic[0].exclude_sources =
        vec!["kms.amazonaws.com".into()];
    let r = run(&f);
    assert_eq!(ids(&r), ["cloudtrail-management-events"]);
    assert!(
        r.findings[0].evidence.contains("kms.amazonaws.com"),
        "{}",
        r.findings[0].evidence
    );

    // Advanced selectors: an eventSource condition narrows them.
    let f = Fake::clean();
    f.st().selectors.insert(
        "main".into(),
        EventSelectors {
            basic: vec![],
            advanced: vec![vec![
                FieldSelector::equals("eventCategory", &["Management"]),
                FieldSelector {
                    field: "eventSource".into(),
                    not_equals: vec!["rdsdata.amazonaws.com".into()],
                    ..FieldSelector::default()
                },
            ]],
        },
    );
    let r = run(&f);
    assert_eq!(ids(&r), ["cloudtrail-management-events"]);
    assert!(r.findings[0]
        .evidence
        .contains("eventSource NotEquals rdsdata.amazonaws.com"));
    // A second, unnarrowed management selector records everything.
    f.st()
        .selectors
        .get_mut("main")
        .unwrap()
        .advanced
        .push(vec![FieldSelector::equals(
            "eventCategory",
            &["Management"],
        )]);
    assert!(ids(&run(&f)).is_empty());
}

#[test]
fn global_service_events_off_is_reported() {
    let f = Fake::clean();
    f.st().trails[0].global_events = false;
    let r = run(&f);
    assert_eq!(ids(&r), ["cloudtrail-global-events-off"]);
    assert_eq!(
        r.findings[0].evidence,
        "DescribeTrails: IncludeGlobalServiceEvents = false"
    );
}

#[test]
fn an_organization_trail_is_credited_in_a_member_account() {
    // The trail belongs to the management account 999999999999; CloudTrail
    // refuses this account its status and selectors.
    let f = Fake::clean();
    {
        let mut st = f.st();
        let t = &mut st.trails[0];
        t.organization = true;
        t.arn = "arn:aws:cloudtrail:us-east-1:999999999999:trail/org".into();
        t.name = "org".into();
    }
    let r = run(&f);
    let c = check(&r, "cloudtrail");
    assert_eq!(c.status, CheckStatus::Passed, "{c:?}");
    assert!(
        c.detail
            .contains("organization trail org of account 999999999999"),
        "{}",
        c.detail
    );
    assert!(
        f.st().trail_calls.is_empty(),
        "no call CloudTrail would refuse"
    );

    // What the organization run read in the management account counts.
    let mut o = member_of("999999999999", Some(true));
    f.st().summary.root_password = Some(false);
    let arn = f.st().trails[0].arn.clone();
    Arc::get_mut(o.organization.as_mut().unwrap())
        .unwrap()
        .trails = vec![super::OrgTrail {
        arn,
        logging: false,
        selectors: EventSelectors::default(),
    }];
    let r = run_with(&f, &o);
    assert_eq!(
        ids(&r),
        ["cloudtrail-not-logging", "cloudtrail-management-events"]
    );
    assert!(
        r.findings[0].remedy.contains("management account"),
        "{}",
        r.findings[0].remedy
    );
}

#[test]
fn a_public_trail_bucket_is_critical() {
    let f = Fake::clean();
    f.st().exposure.insert(
        "logs".into(),
        BucketExposure {
            block: [false; 4],
            policy_public: false,
            public_grants: vec!["AllUsers: READ".into()],
        },
    );
    let r = run(&f);
    assert_eq!(ids(&r), ["cloudtrail-bucket-public"]);
    let x = &r.findings[0];
    assert_eq!(x.severity, Severity::Critical);
    assert!(
        x.title.contains("logs") && x.evidence.contains("AllUsers: READ"),
        "{x:?}"
    );
    assert_eq!(x.references.security_hub, Some("CloudTrail.6"));
    // IgnorePublicAcls makes the grant moot; a public policy is public
    // unless RestrictPublicBuckets.
    f.st().exposure.get_mut("logs").unwrap().block = [false, true, false, false];
    assert!(ids(&run(&f)).is_empty());
    f.st().exposure.get_mut("logs").unwrap().policy_public = true;
    assert_eq!(ids(&run(&f)), ["cloudtrail-bucket-public"]);
    f.st().exposure.get_mut("logs").unwrap().block = [true; 4];
    assert!(ids(&run(&f)).is_empty());
    // A bucket that cannot be read is not judged, and says so.
    f.st().denied.insert("s3:GetBucketPolicyStatus");
    let r = run(&f);
    assert_eq!(check(&r, "cloudtrail").status, CheckStatus::Passed);
    assert!(check(&r, "cloudtrail")
        .detail
        .contains("bucket logs of trail main not judged"));
}

#[test]
fn an_administrator_without_mfa_is_critical() {
    let f = Fake::clean();
    {
        let mut st = f.st();
        st.users.push("root2".into());
        st.report_rows.push(format!(
            "root2,arn:aws:iam::{ACCOUNT}:user/root2,true,N/A,false,false,N/A,false,N/A"
        ));
        st.groups.insert("root2".into(), vec!["admins".into()]);
        st.attached.insert(
            Principal::Group("admins".into()),
            vec![ADMINISTRATOR_ACCESS.into()],
        );
    }
    let r = run(&f);
    assert_eq!(
        ids(&r),
        ["user-admin-without-mfa", "user-console-without-mfa"]
    );
    let x = &r.findings[0];
    assert_eq!(
        (x.severity, x.subject.as_deref()),
        (Severity::Critical, Some("root2"))
    );
    assert!(x.evidence.contains("group admins"), "{}", x.evidence);
}

#[test]
fn a_single_device_has_no_backup() {
    let f = Fake::clean();
    f.st().mfa.get_mut("alice").unwrap().truncate(1);
    let r = run(&f);
    assert_eq!(ids(&r), ["user-mfa-no-backup"]);
    assert_eq!(r.findings[0].severity, Severity::Info);
    // Info fails nothing unless asked.
    assert_eq!(r.count_at_or_above(Severity::Low), 0);
}

#[test]
fn a_fido_device_is_hardware_only_when_aws_certifies_it() {
    // alice's keys without certifications: a security key or a synced
    // passkey, AWS cannot say which.
    let f = Fake::clean();
    f.st().certifications.clear();
    let r = run(&f);
    assert_eq!(ids(&r), ["user-mfa-hardware-unverified"]);
    let x = &r.findings[0];
    assert_eq!(x.severity, Severity::Info);
    assert!(
        x.evidence.contains("GetMFADevice gives no certification"),
        "{}",
        x.evidence
    );
    let mut o = opts();
    o.require_hardware_mfa = true;
    assert_eq!(run_with(&f, &o).findings[0].severity, Severity::Medium);
    assert_eq!(f.st().calls.get("iam:GetMFADevice"), Some(&4));
}

#[test]
fn the_administrator_remedy_uses_a_group_never_a_user_policy() {
    let f = Fake::clean();
    f.st().attached.clear();
    let r = run(&f);
    let x = finding(&r, "no-admin-besides-root");
    assert!(!x.remedy.contains("attach-user-policy"), "{}", x.remedy);
    assert!(x.remedy.contains("attach-group-policy") && x.remedy.contains("Identity Center"));
}

#[test]
fn every_finding_in_the_report_carries_the_table_references() {
    let f = Fake::clean();
    f.st().summary.root_mfa_enabled = false;
    let r = run(&f);
    let x = finding(&r, "root-mfa-missing");
    assert_eq!(
        (
            x.references.cis,
            x.references.security_hub,
            x.references.prowler
        ),
        (Some("2.5"), Some("IAM.9"), Some("iam_root_mfa_enabled"))
    );
    let v = serde_json::to_value(x).unwrap();
    assert_eq!(v["references"]["security_hub"], "IAM.9", "{v}");
}

#[test]
fn the_baseline_keeps_other_trails_statements_in_its_bucket() {
    // A shared bucket: another trail's statements under the Sids AWS's
    // console gives every trail.
    let f = Fake::empty();
    let other = format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/security");
    let theirs = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": "arn:aws:s3:::shared",
         "Condition": {"StringEquals": {"aws:SourceArn": other}}},
        {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::shared/AWSLogs/{ACCOUNT}/*"),
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": other}}}
    ]});
    f.st().buckets.insert(
        "shared".into(),
        BucketState {
            public_access_blocked: true,
            policy: Some(theirs.to_string()),
        },
    );
    let o = BaselineOptions {
        bucket: Some("shared".into()),
        ..BaselineOptions::default()
    };
    let p = plan(&f, &o).unwrap();
    let change = p
        .changes
        .iter()
        .find(|c| matches!(c, Change::PutBucketPolicy { .. }))
        .expect("a policy change");
    let Change::PutBucketPolicy {
        added,
        replaced,
        kept,
        ..
    } = change
    else {
        unreachable!()
    };
    assert_eq!(
        (added.len(), replaced.len(), *kept),
        (2, 0, 2),
        "{change:?}"
    );
    assert!(change
        .describe()
        .contains("the 2 statement(s) already there are kept"));
    apply(&f, &p).unwrap();
    let after: serde_json::Value =
        serde_json::from_str(f.st().buckets["shared"].policy.as_deref().unwrap()).unwrap();
    let statements = after["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 4, "{after:#}");
    for s in theirs["Statement"].as_array().unwrap() {
        assert!(statements.contains(s), "{s} was removed");
    }
    // Run again: nothing to change.
    assert!(plan(&f, &o).unwrap().changes.is_empty());
}

#[test]
fn the_baseline_clears_management_event_exclusions() {
    let f = Fake::clean();
    f.st().buckets.insert(
        "logs".into(),
        BucketState {
            public_access_blocked: true,
            policy: None,
        },
    );
    f.st().selectors.get_mut("main").unwrap().basic[0].exclude_sources =
        vec!["kms.amazonaws.com".into()];
    let o = BaselineOptions {
        trail_name: Some("main".into()),
        ..BaselineOptions::default()
    };
    let p = plan(&f, &o).unwrap();
    assert!(
        p.changes
            .iter()
            .any(|c| matches!(c, Change::PutEventSelectors { .. })),
        "{:?}",
        p.changes
    );
    apply(&f, &p).unwrap();
    assert!(f.st().selectors["main"].basic[0].exclude_sources.is_empty());
    assert!(ids(&run(&f)).is_empty());
}
