//! The audit's checks and the baseline against an in-memory account: each
//! finding triggered and not triggered, denied checks, the report wait, and
//! the baseline's idempotence.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
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
    virtuals: Vec<VirtualMfaDevice>,
    tags: BTreeMap<String, Vec<(String, String)>>,
    trails: Vec<Trail>,
    logging: BTreeMap<String, bool>,
    selectors: BTreeMap<String, EventSelectors>,
    buckets: BTreeMap<String, BucketState>,
    /// Operation names that answer AccessDenied.
    denied: BTreeSet<&'static str>,
    no_credentials: bool,
    start_logging_ignored: bool,
    /// Mutating calls, in order.
    writes: Vec<String>,
    /// Calls by operation name (every call passes `gate`).
    calls: BTreeMap<&'static str, usize>,
}

struct Fake(Mutex<State>);

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
        st.mfa.insert(
            "alice".into(),
            vec![MfaDevice {
                serial: format!("arn:aws:iam::{ACCOUNT}:u2f/user/alice/key-ABC"),
                enable_date: None,
            }],
        );
        let arn = format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/main");
        st.trails = vec![Trail {
            name: "main".into(),
            arn: arn.clone(),
            home_region: "us-east-1".into(),
            multi_region: true,
            log_file_validation: true,
            kms_key: Some("arn:aws:kms:us-east-1:123456789012:key/k".into()),
            bucket: "logs".into(),
        }];
        st.logging.insert("main".into(), true);
        st.selectors.insert(
            "main".into(),
            EventSelectors {
                basic: vec![EventSelector {
                    read_write: ManagementEvents::All,
                    include_management: true,
                    data_resources: vec![],
                }],
                advanced: vec![],
            },
        );
        Fake(Mutex::new(st))
    }

    fn empty() -> Fake {
        Fake(Mutex::new(State::default()))
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
}

impl TrailApi for Fake {
    async fn describe_trails(&self) -> Result<Vec<Trail>, AwsError> {
        self.gate("cloudtrail:DescribeTrails")?;
        Ok(self.st().trails.clone())
    }
    async fn is_logging(&self, trail: &str) -> Result<bool, AwsError> {
        self.gate("cloudtrail:GetTrailStatus")?;
        let key = self.trail_key(trail).unwrap_or_default();
        Ok(self.st().logging.get(&key).copied().unwrap_or(false))
    }
    async fn event_selectors(&self, trail: &str) -> Result<EventSelectors, AwsError> {
        self.gate("cloudtrail:GetEventSelectors")?;
        let key = self.trail_key(trail).unwrap_or_default();
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
        Ok(ACCOUNT.into())
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

    // With an MFA device (the report's mfa_active may be stale: ListMFADevices decides).
    for u in ["bob", "carol"] {
        f.st().mfa.insert(
            u.into(),
            vec![MfaDevice {
                serial: "GAHT12345678".into(),
                enable_date: None,
            }],
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
    f.st().mfa.insert(
        "alice".into(),
        vec![MfaDevice {
            serial: serial.clone(),
            enable_date: None,
        }],
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
            .map(|(f, v)| (f.to_string(), v.into_iter().map(String::from).collect()))
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
