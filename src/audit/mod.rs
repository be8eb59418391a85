//! The account audit: the five first-day settings of an AWS account (root
//! MFA, IAM users for daily work, no daily use of root, CloudTrail, MFA on
//! every IAM user), each check read-only. A check that cannot run (access
//! denied, throttled) is reported as such and the others go on.
//!
//! Checks say what they found ([`findings::Found`]); the finding table
//! ([`findings::FindingId::spec`]) gives each finding its severity, title
//! and remedy.

pub(crate) mod baseline;
pub(crate) mod error;
pub(crate) mod findings;
pub(crate) mod org;
mod root;
#[cfg(test)]
mod tests;
pub(crate) mod trail;
mod users;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

pub(crate) use self::error::{AuditError, CloudError, Policy};
pub(crate) use self::findings::Finding;
use self::findings::{Found, Rules};
use crate::aws::account::{AccountApi, BucketApi, EventSelectors, TrailApi};
use crate::aws::AwsError;
use crate::progress::{Event, Progress};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        [
            Severity::Info,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .find(|v| v.name().eq_ignore_ascii_case(s))
    }
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CheckStatus {
    /// Ran; nothing found.
    Passed,
    /// Ran; see the findings with this check's ids.
    Failed,
    /// Ran, but the answer cannot be told from what AWS returned.
    Unknown,
    /// Could not run: the credentials lack a permission.
    Denied,
    /// Could not run: another error.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CheckResult {
    pub check: &'static str,
    pub status: CheckStatus,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct AuditReport {
    /// The audited account (STS GetCallerIdentity), when it answered.
    pub account_id: Option<String>,
    pub checks: Vec<CheckResult>,
    /// Most severe first.
    pub findings: Vec<Finding>,
    pub elapsed_ms: f64,
}

impl AuditReport {
    /// Findings at or above `at`.
    pub(crate) fn count_at_or_above(&self, at: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity >= at).count()
    }

    /// True when some check could not tell (denied, error or unknown).
    pub(crate) fn incomplete(&self) -> bool {
        self.checks.iter().any(|c| {
            matches!(
                c.status,
                CheckStatus::Unknown | CheckStatus::Denied | CheckStatus::Error
            )
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct AuditOptions {
    /// Root used within this many days is a finding.
    pub max_root_age_days: u64,
    /// Virtual-only MFA is `high` rather than `low`.
    pub require_hardware_mfa: bool,
    /// "Now", for the root-usage window.
    pub now: SystemTime,
    /// How long to wait for the credential report.
    pub report_wait: Duration,
    /// Pause between GetCredentialReport polls.
    pub report_poll: Duration,
    /// Set when the account is audited as part of its organization.
    pub organization: Option<Arc<OrgContext>>,
}

/// What the audit of one account of an organization knows from the
/// organization's side.
#[derive(Debug, Clone, Default)]
pub(crate) struct OrgContext {
    pub management_account: String,
    /// Whether centralized root access manages member root credentials
    /// (`RootCredentialsManagement`); `None` when it could not be read.
    pub root_credentials_managed: Option<bool>,
    /// The organization's trails as their owner (the management account)
    /// reads them: member accounts see them but cannot read their status.
    pub trails: Vec<OrgTrail>,
}

/// An organization trail's status and selectors, read by its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrgTrail {
    pub arn: String,
    pub logging: bool,
    pub selectors: EventSelectors,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            max_root_age_days: 30,
            require_hardware_mfa: false,
            now: SystemTime::now(),
            report_wait: Duration::from_secs(60),
            report_poll: Duration::from_secs(2),
            organization: None,
        }
    }
}

/// Why one check could not finish.
enum CheckFail {
    Aws(AwsError),
    Unknown(String),
}

impl From<AwsError> for CheckFail {
    fn from(e: AwsError) -> Self {
        CheckFail::Aws(e)
    }
}

impl From<&AwsError> for CheckFail {
    fn from(e: &AwsError) -> Self {
        CheckFail::Aws(e.clone())
    }
}

/// A check's outcome: what it found and a line about what it looked at.
type CheckOut = Result<(Vec<Found>, String), CheckFail>;

/// The report being built.
struct Ctx {
    rules: Rules,
    checks: Vec<CheckResult>,
    findings: Vec<Finding>,
}

impl Ctx {
    /// Records a check's outcome. Credential failures abort the audit.
    fn record(&mut self, check: &'static str, result: CheckOut) -> Result<(), AuditError> {
        let (status, detail) = match result {
            Ok((found, detail)) => {
                let (status, detail) = match found.len() {
                    0 => (CheckStatus::Passed, detail),
                    n if detail.is_empty() => (CheckStatus::Failed, format!("{n} finding(s)")),
                    n => (CheckStatus::Failed, format!("{n} finding(s); {detail}")),
                };
                let rules = self.rules;
                self.findings.extend(found.iter().map(|f| f.render(rules)));
                (status, detail)
            }
            Err(CheckFail::Unknown(why)) => (CheckStatus::Unknown, why),
            Err(CheckFail::Aws(e)) => match e {
                AwsError::NoCredentials { .. } | AwsError::ExpiredCredentials { .. } => {
                    return Err(AuditError::Aws(e))
                }
                e => {
                    let status = match e {
                        AwsError::AccessDenied { .. } => CheckStatus::Denied,
                        _ => CheckStatus::Error,
                    };
                    let why = CloudError::new(e, Policy::Audit);
                    (status, format!("not checked: {why}"))
                }
            },
        };
        self.checks.push(CheckResult {
            check,
            status,
            detail,
        });
        Ok(())
    }

    fn finish(self, account_id: Option<String>, started: Instant) -> AuditReport {
        let mut findings = self.findings;
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.id.cmp(b.id))
                .then(a.subject.cmp(&b.subject))
        });
        AuditReport {
            account_id,
            checks: self.checks,
            findings,
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        }
    }
}

/// Runs every check. Only missing or expired credentials stop it early.
pub(crate) async fn audit<A: AccountApi + TrailApi + BucketApi>(
    api: &A,
    opts: &AuditOptions,
    progress: &mut dyn Progress,
) -> Result<AuditReport, AuditError> {
    let started = Instant::now();
    let mut ctx = Ctx {
        rules: Rules {
            require_hardware_mfa: opts.require_hardware_mfa,
        },
        checks: Vec::new(),
        findings: Vec::new(),
    };
    // Which account this is (STS; no permission needed): tells the
    // organization's trails from the account's own.
    let account = api.account_id().await.ok();
    begin(progress, "root-mfa");
    let summary = api.account_summary().await;
    let virtual_devices = api.virtual_mfa_devices().await;
    let member = root::Membership::of(account.as_deref(), opts.organization.as_deref());
    ctx.record(
        "root-mfa",
        root::root_mfa(&summary, &virtual_devices, &member),
    )?;
    begin(progress, "root-access-keys");
    ctx.record("root-access-keys", root::root_access_keys(&summary))?;

    begin(progress, "root-usage");
    let report = root::credential_report(api, opts, progress).await;
    let r = match &report {
        Ok(rows) => root::root_usage(rows, opts),
        Err(e) => Err(e.into()),
    };
    ctx.record("root-usage", r)?;

    users::audit_users(api, &mut ctx, &report, &virtual_devices, opts, progress).await?;

    begin(progress, "cloudtrail");
    let org = opts.organization.as_deref();
    let r = trail::check(api, account.as_deref(), org)
        .await
        .map_err(CheckFail::Aws);
    ctx.record("cloudtrail", r)?;
    Ok(ctx.finish(account, started))
}

/// Says which check begins.
fn begin(progress: &mut dyn Progress, check: &'static str) {
    progress.event(Event::AuditCheck { check });
}
