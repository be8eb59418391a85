//! The account audit: the five first-day settings of an AWS account (root
//! MFA, IAM users for daily work, no daily use of root, CloudTrail, MFA on
//! every IAM user), each check read-only. A check that cannot run (access
//! denied, throttled) is reported as such and the others go on.

pub(crate) mod baseline;
#[cfg(test)]
mod tests;
pub(crate) mod trail;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use self::trail as audit_trail;
use crate::aws::account::{parse_credential_report, AccountSummary, ReportState};
use crate::aws::account::{AccountApi, CredentialRow, Principal, TrailApi, ROOT_ROW};
use crate::aws::iam::{MfaDevice, VirtualMfaDevice};
use crate::aws::policy::{grants_everything, ADMINISTRATOR_ACCESS};
use crate::aws::AwsError;
use crate::enroll::TAG_MANAGED;

/// The permissions the audit needs.
pub(crate) const AUDIT_POLICY_DOC: &str = "docs/audit-policy.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .find(|v| v.name().eq_ignore_ascii_case(s))
    }
}

/// One thing found wrong. `id` is stable (scripts match on it); `subject`
/// names the user, device or trail when the finding is about one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub subject: Option<String>,
    pub title: String,
    pub evidence: String,
    pub remedy: String,
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
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            max_root_age_days: 30,
            require_hardware_mfa: false,
            now: SystemTime::now(),
            report_wait: Duration::from_secs(60),
            report_poll: Duration::from_secs(2),
        }
    }
}

/// What the operator should hear while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuditProgress {
    Check(&'static str),
    /// The credential report is being generated: waited so far, bound.
    ReportWaiting {
        waited: Duration,
        limit: Duration,
    },
}

/// Errors that stop the whole audit: without credentials no check can run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum AuditError {
    #[error(transparent)]
    Aws(AwsError),
}

impl crate::error::Classify for AuditError {
    fn kind(&self) -> crate::error::Kind {
        match self {
            AuditError::Aws(a) => a.kind(),
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

struct Ctx {
    checks: Vec<CheckResult>,
    findings: Vec<Finding>,
}

impl Ctx {
    /// Records a check's outcome. Credential failures abort the audit.
    fn record(
        &mut self,
        check: &'static str,
        result: Result<(Vec<Finding>, String), CheckFail>,
    ) -> Result<(), AuditError> {
        let (status, detail) = match result {
            Ok((found, detail)) => {
                let (status, detail) = match found.len() {
                    0 => (CheckStatus::Passed, detail),
                    n if detail.is_empty() => (CheckStatus::Failed, format!("{n} finding(s)")),
                    n => (CheckStatus::Failed, format!("{n} finding(s); {detail}")),
                };
                self.findings.extend(found);
                (status, detail)
            }
            Err(CheckFail::Unknown(why)) => (CheckStatus::Unknown, why),
            Err(CheckFail::Aws(e)) => match e {
                AwsError::NoCredentials { .. } | AwsError::ExpiredCredentials { .. } => {
                    return Err(AuditError::Aws(e))
                }
                AwsError::AccessDenied { action, message } => (
                    CheckStatus::Denied,
                    format!(
                        "not checked: the credentials lack {action} ({message}); attach the policy in {AUDIT_POLICY_DOC}"
                    ),
                ),
                other => (
                    CheckStatus::Error,
                    format!("not checked: {}", describe_aws(&other)),
                ),
            },
        };
        self.checks.push(CheckResult {
            check,
            status,
            detail,
        });
        Ok(())
    }
}

/// An AWS error in words that fit any service: [`AwsError`]'s own text
/// speaks of IAM, the enroller's only service.
pub(crate) fn describe_aws(e: &AwsError) -> String {
    match e {
        AwsError::Other { code, message } => format!("the AWS request failed: {code}: {message}"),
        AwsError::EndpointUnreachable { endpoint, detail } => format!(
            "cannot reach the AWS endpoint {endpoint} ({detail}); check the network and proxy settings, and --endpoint-url / AWS_ENDPOINT_URL* if set"
        ),
        other => other.to_string(),
    }
}

/// Runs every check. Only missing or expired credentials stop it early.
pub(crate) async fn audit<A: AccountApi + TrailApi>(
    api: &A,
    opts: &AuditOptions,
    progress: &mut dyn FnMut(AuditProgress),
) -> Result<AuditReport, AuditError> {
    let started = Instant::now();
    let mut ctx = Ctx {
        checks: Vec::new(),
        findings: Vec::new(),
    };

    progress(AuditProgress::Check("root-mfa"));
    let summary = api.account_summary().await;
    let virtual_devices = api.virtual_mfa_devices().await;
    let r = root_mfa(&summary, &virtual_devices);
    ctx.record("root-mfa", r)?;
    progress(AuditProgress::Check("root-access-keys"));
    let r = root_access_keys(&summary);
    ctx.record("root-access-keys", r)?;

    progress(AuditProgress::Check("root-usage"));
    let report = credential_report(api, opts, progress).await;
    let r = match &report {
        Ok(rows) => root_usage(rows, opts),
        Err(e) => Err(CheckFail::Aws(e.clone())),
    };
    ctx.record("root-usage", r)?;

    progress(AuditProgress::Check("admin-besides-root"));
    // One ListUsers for the two checks that need it.
    let users = api.list_users().await;
    let r = admin_besides_root(api, &users).await;
    ctx.record("admin-besides-root", r)?;

    progress(AuditProgress::Check("user-mfa"));
    let devices = user_devices(api, &users, &report).await;
    let r = match (&report, &devices) {
        (Ok(rows), Ok(devices)) => Ok(user_mfa(rows, devices)),
        (Err(e), _) | (_, Err(e)) => Err(CheckFail::Aws(e.clone())),
    };
    ctx.record("user-mfa", r)?;

    progress(AuditProgress::Check("mfa-hardware"));
    let r = match (&devices, &virtual_devices) {
        (Ok(devices), Ok(virtuals)) => mfa_hardware(api, devices, virtuals, opts).await,
        (Err(e), _) | (_, Err(e)) => Err(CheckFail::Aws(e.clone())),
    };
    ctx.record("mfa-hardware", r)?;

    progress(AuditProgress::Check("unassigned-mfa"));
    let r = match &virtual_devices {
        Ok(v) => unassigned(api, v).await,
        Err(e) => Err(CheckFail::Aws(e.clone())),
    };
    ctx.record("unassigned-mfa", r)?;

    progress(AuditProgress::Check("cloudtrail"));
    let r = audit_trail::check(api).await.map_err(CheckFail::Aws);
    ctx.record("cloudtrail", r)?;

    let mut findings = ctx.findings;
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.id.cmp(b.id))
            .then(a.subject.cmp(&b.subject))
    });
    Ok(AuditReport {
        checks: ctx.checks,
        findings,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

fn finding(
    id: &'static str,
    severity: Severity,
    subject: Option<&str>,
    title: impl Into<String>,
    evidence: impl Into<String>,
    remedy: impl Into<String>,
) -> Finding {
    Finding {
        id,
        severity,
        subject: subject.map(str::to_string),
        title: title.into(),
        evidence: evidence.into(),
        remedy: remedy.into(),
    }
}

type CheckOut = Result<(Vec<Finding>, String), CheckFail>;

fn root_mfa(
    summary: &Result<AccountSummary, AwsError>,
    virtuals: &Result<Vec<VirtualMfaDevice>, AwsError>,
) -> CheckOut {
    let s = summary.as_ref().map_err(|e| CheckFail::Aws(e.clone()))?;
    if !s.root_mfa_enabled {
        return Ok((
            vec![finding(
                "root-mfa-missing",
                Severity::Critical,
                Some(ROOT_ROW),
                "the root user has no MFA",
                "GetAccountSummary: AccountMFAEnabled = 0",
                "AWS lets root MFA be set only in the console: sign in as root, open Security credentials, \
                 Assign MFA device; choose a security key, or Authenticator app, click \"Show secret key\" and store it on a YubiKey with \
                 `mfakey oath add aws-root --secret-stdin` (paste the key), then enter two codes from `mfakey oath code aws-root`",
            )],
            String::new(),
        ));
    }
    // Enabled; is it a virtual device? Only tellable when the list is readable.
    let root_virtual = match virtuals {
        Ok(v) => v
            .iter()
            .find(|d| d.user.as_deref() == Some(ROOT_ROW))
            .map(|d| d.serial.clone()),
        Err(_) => None,
    };
    match root_virtual {
        Some(serial) => Ok((
            vec![finding(
                "root-mfa-virtual",
                Severity::Medium,
                Some(ROOT_ROW),
                "the root user's MFA is a virtual (authenticator app) device, not a security key",
                format!("ListVirtualMFADevices: {serial} is assigned to the root user"),
                "sign in as root, Security credentials, Assign MFA device: add a FIDO2 security key, then remove the virtual device",
            )],
            String::new(),
        )),
        None => Ok((
            Vec::new(),
            if virtuals.is_ok() {
                "root MFA is on and is not a virtual device".to_string()
            } else {
                "root MFA is on (its kind is unknown: ListVirtualMFADevices was refused)".to_string()
            },
        )),
    }
}

fn root_access_keys(summary: &Result<AccountSummary, AwsError>) -> CheckOut {
    let s = summary.as_ref().map_err(|e| CheckFail::Aws(e.clone()))?;
    if !s.root_access_keys {
        return Ok((Vec::new(), "root has no access keys".to_string()));
    }
    Ok((
        vec![finding(
            "root-access-keys",
            Severity::Critical,
            Some(ROOT_ROW),
            "the root user has access keys",
            "GetAccountSummary: AccountAccessKeysPresent = 1",
            "sign in as root, open Security credentials, Access keys: deactivate each key, check nothing breaks, then delete it; \
             use an IAM user or role's keys instead",
        )],
        String::new(),
    ))
}

/// GenerateCredentialReport, then GetCredentialReport until it is ready
/// (at most `opts.report_wait`).
async fn credential_report<A: AccountApi>(
    api: &A,
    opts: &AuditOptions,
    progress: &mut dyn FnMut(AuditProgress),
) -> Result<Vec<CredentialRow>, AwsError> {
    let started = Instant::now();
    let mut state = api.generate_credential_report().await?;
    loop {
        if let Some(csv) = api.credential_report().await? {
            return parse_credential_report(&csv);
        }
        let waited = started.elapsed();
        if waited >= opts.report_wait {
            return Err(AwsError::Other {
                code: "ReportTimeout".to_string(),
                message: format!(
                    "the credential report was not ready after {} s (last state {state:?}); run the audit again in a minute",
                    waited.as_secs()
                ),
            });
        }
        progress(AuditProgress::ReportWaiting {
            waited,
            limit: opts.report_wait,
        });
        tokio::time::sleep(opts.report_poll).await;
        if state != ReportState::Complete {
            state = api.generate_credential_report().await?;
        }
    }
}

/// Seconds since the epoch of an ISO 8601 date as IAM writes them
/// (`2026-11-27T10:00:00+00:00`, `…Z`, fractions ignored).
pub(crate) fn parse_iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        r if r.len() == 6 && (r.starts_with('+') || r.starts_with('-')) => {
            let oh = r.get(1..3)?.parse::<i64>().ok()?;
            let om = r.get(4..6)?.parse::<i64>().ok()?;
            let sign = if r.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + se - offset)
}

fn root_usage(rows: &[CredentialRow], opts: &AuditOptions) -> CheckOut {
    let Some(root) = rows.iter().find(|r| r.is_root()) else {
        return Err(CheckFail::Unknown(format!(
            "the credential report has no {ROOT_ROW} row, so root's last use cannot be told (AWS always writes one; moto writes none)"
        )));
    };
    let now = opts
        .now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let window = opts.max_root_age_days as i64 * 86400;
    let mut recent = Vec::new();
    for (what, when) in [
        ("password_last_used", &root.password_last_used),
        ("access_key_1_last_used_date", &root.access_key_1_last_used),
        ("access_key_2_last_used_date", &root.access_key_2_last_used),
    ] {
        if let Some(date) = when {
            if parse_iso8601(date).is_some_and(|t| now - t <= window) {
                recent.push(format!("{what} = {date}"));
            }
        }
    }
    if recent.is_empty() {
        return Ok((
            Vec::new(),
            format!("root not used in the last {} days", opts.max_root_age_days),
        ));
    }
    Ok((
        vec![finding(
            "root-recently-used",
            Severity::High,
            Some(ROOT_ROW),
            format!(
                "the root user was used in the last {} days",
                opts.max_root_age_days
            ),
            format!("credential report, root row: {}", recent.join(", ")),
            "do daily work as an IAM user or role with MFA (`mfakey enroll user NAME`); \
             look up what root did in CloudTrail (Event history, user name \"root\")",
        )],
        String::new(),
    ))
}

/// Who grants what: the first principal found able to do everything.
async fn admin_besides_root<A: AccountApi>(
    api: &A,
    users: &Result<Vec<String>, AwsError>,
) -> CheckOut {
    let users = users.clone()?;
    let roles = api.list_roles().await?;
    let mut cache: BTreeMap<String, bool> = BTreeMap::new();
    let mut groups_seen: BTreeMap<String, Option<String>> = BTreeMap::new();
    for user in &users {
        let who = Principal::User(user.clone());
        if let Some(why) = grants_admin(api, &who, &mut cache).await? {
            return Ok((Vec::new(), format!("user {user} can administer ({why})")));
        }
        for group in api.groups_for_user(user).await? {
            if !groups_seen.contains_key(&group) {
                let why = grants_admin(api, &Principal::Group(group.clone()), &mut cache).await?;
                groups_seen.insert(group.clone(), why);
            }
            if let Some(Some(why)) = groups_seen.get(&group) {
                return Ok((
                    Vec::new(),
                    format!("user {user} can administer (group {group}: {why})"),
                ));
            }
        }
    }
    let mut checked_roles = 0;
    for role in &roles {
        // Service-linked roles belong to AWS services, not to people.
        if role.path.starts_with("/aws-service-role/") {
            continue;
        }
        checked_roles += 1;
        let who = Principal::Role(role.name.clone());
        if let Some(why) = grants_admin(api, &who, &mut cache).await? {
            return Ok((
                Vec::new(),
                format!("role {} can administer ({why})", role.name),
            ));
        }
    }
    Ok((
        vec![finding(
            "no-admin-besides-root",
            Severity::High,
            None,
            "no IAM user or role besides root can administer the account",
            format!(
                "checked {} users (attached, inline and group policies) and {checked_roles} roles (service-linked ones skipped): \
                 none has {ADMINISTRATOR_ACCESS} or a policy allowing Action \"*\" on Resource \"*\" \
                 (permission boundaries, SCPs and Deny statements are not weighed)",
                users.len()
            ),
            "create an administrator for daily work: `aws iam create-user --user-name admin`, \
             `aws iam attach-user-policy --user-name admin --policy-arn arn:aws:iam::aws:policy/AdministratorAccess`, \
             then `mfakey enroll user admin`",
        )],
        String::new(),
    ))
}

/// Why `who` can do everything, if it can.
async fn grants_admin<A: AccountApi>(
    api: &A,
    who: &Principal,
    cache: &mut BTreeMap<String, bool>,
) -> Result<Option<String>, AwsError> {
    for arn in api.attached_policies(who).await? {
        if arn == ADMINISTRATOR_ACCESS {
            return Ok(Some("AdministratorAccess attached".to_string()));
        }
        // AWS's own other managed policies are not "everything"; the
        // account's own ones are read.
        if arn.starts_with("arn:aws:iam::aws:") || arn.contains(":iam::aws:policy/") {
            continue;
        }
        let admin = match cache.get(&arn) {
            Some(v) => *v,
            None => {
                let v = grants_everything(&api.managed_policy_document(&arn).await?);
                cache.insert(arn.clone(), v);
                v
            }
        };
        if admin {
            return Ok(Some(format!("{arn} allows * on *")));
        }
    }
    for (name, doc) in api.inline_policies(who).await? {
        if grants_everything(&doc) {
            return Ok(Some(format!("inline policy {name} allows * on *")));
        }
    }
    Ok(None)
}

/// ListMFADevices of every user (from ListUsers, and the report's rows).
async fn user_devices<A: AccountApi>(
    api: &A,
    users: &Result<Vec<String>, AwsError>,
    report: &Result<Vec<CredentialRow>, AwsError>,
) -> Result<BTreeMap<String, Vec<MfaDevice>>, AwsError> {
    let mut names: BTreeSet<String> = users.clone()?.into_iter().collect();
    if let Ok(rows) = report {
        names.extend(rows.iter().filter(|r| !r.is_root()).map(|r| r.user.clone()));
    }
    let mut out = BTreeMap::new();
    for user in names {
        match api.user_mfa_devices(&user).await {
            Ok(d) => {
                out.insert(user, d);
            }
            // In the report but deleted since (the report can be 4 h old).
            Err(AwsError::NoSuchEntity { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn user_mfa(
    rows: &[CredentialRow],
    devices: &BTreeMap<String, Vec<MfaDevice>>,
) -> (Vec<Finding>, String) {
    let mut found = Vec::new();
    let mut users = 0;
    for row in rows.iter().filter(|r| !r.is_root()) {
        let Some(d) = devices.get(&row.user) else {
            continue;
        };
        users += 1;
        if !d.is_empty() {
            continue;
        }
        if row.password_enabled {
            found.push(finding(
                "user-console-without-mfa",
                Severity::High,
                Some(&row.user),
                format!("IAM user {} signs in to the console without MFA", row.user),
                "credential report: password_enabled = true; ListMFADevices: none",
                format!("`mfakey enroll user {}`", row.user),
            ));
        }
        if row.has_active_keys() {
            found.push(finding(
                "user-keys-without-mfa",
                Severity::Medium,
                Some(&row.user),
                format!("IAM user {} has active access keys and no MFA", row.user),
                "credential report: an access key is active; ListMFADevices: none",
                format!(
                    "`mfakey enroll user {}`, and require MFA for its sensitive actions (condition aws:MultiFactorAuthPresent)",
                    row.user
                ),
            ));
        }
    }
    let newer: Vec<&str> = devices
        .keys()
        .filter(|u| !rows.iter().any(|r| &r.user == *u))
        .map(String::as_str)
        .collect();
    let mut detail = format!("{users} IAM users checked");
    if !newer.is_empty() {
        // IAM regenerates the report at most every 4 hours.
        detail.push_str(&format!(
            "; not in the credential report yet (newer than it), so not checked: {}",
            newer.join(", ")
        ));
    }
    (found, detail)
}

/// Is this device a security key, a hardware TOTP token, or a seed that
/// mfakey put on a YubiKey?
fn is_hardware(serial: &str, tags: &[(String, String)]) -> bool {
    if serial.contains(":u2f/") {
        return true;
    }
    if serial.contains(":mfa/") {
        return tags.iter().any(|(k, _)| k == TAG_MANAGED);
    }
    // Hardware TOTP tokens have a plain serial, not an ARN.
    !serial.starts_with("arn:")
}

async fn mfa_hardware<A: AccountApi>(
    api: &A,
    devices: &BTreeMap<String, Vec<MfaDevice>>,
    virtuals: &[VirtualMfaDevice],
    opts: &AuditOptions,
) -> CheckOut {
    let severity = if opts.require_hardware_mfa {
        Severity::High
    } else {
        Severity::Low
    };
    let mut found = Vec::new();
    for (user, list) in devices {
        if list.is_empty() {
            continue;
        }
        let mut hardware = false;
        for d in list {
            let mut tags = virtuals
                .iter()
                .find(|v| v.serial == d.serial)
                .map(|v| v.tags.clone())
                .unwrap_or_default();
            if tags.is_empty() && d.serial.contains(":mfa/") {
                // ListVirtualMFADevices carries no tags on AWS. Unread tags
                // are not "no tags": a refusal makes the check not run,
                // rather than call a device mfakey made virtual-only.
                tags = api.device_tags(&d.serial).await?;
            }
            if is_hardware(&d.serial, &tags) {
                hardware = true;
                break;
            }
        }
        if !hardware {
            let serials: Vec<&str> = list.iter().map(|d| d.serial.as_str()).collect();
            found.push(finding(
                "user-mfa-virtual-only",
                severity,
                Some(user),
                format!("IAM user {user}'s MFA is only virtual (a seed on a phone or computer)"),
                format!(
                    "ListMFADevices: {}; none is a security key (u2f/), a hardware token, or a device mfakey enrolled onto a YubiKey (tag {TAG_MANAGED})",
                    serials.join(", ")
                ),
                format!(
                    "`mfakey enroll user {user}`, then `aws iam deactivate-mfa-device --user-name {user} --serial-number {}`",
                    serials[0]
                ),
            ));
        }
    }
    Ok((
        found,
        if opts.require_hardware_mfa {
            "hardware MFA required".to_string()
        } else {
            "virtual-only MFA reported as low (pass --require-hardware-mfa to raise it)".to_string()
        },
    ))
}

async fn unassigned<A: AccountApi>(api: &A, virtuals: &[VirtualMfaDevice]) -> CheckOut {
    let mut found = Vec::new();
    for d in virtuals.iter().filter(|d| d.user.is_none()) {
        let tags = if d.tags.is_empty() {
            api.device_tags(&d.serial).await.unwrap_or_default()
        } else {
            d.tags.clone()
        };
        let ours = tags.iter().any(|(k, _)| k == TAG_MANAGED);
        found.push(finding(
            "virtual-mfa-unassigned",
            Severity::Low,
            Some(&d.serial),
            "an unassigned virtual MFA device is left over",
            format!(
                "ListVirtualMFADevices: {} is assigned to no user{}",
                d.serial,
                if ours { " (created by mfakey)" } else { "" }
            ),
            if ours {
                "`mfakey cleanup --delete`".to_string()
            } else {
                format!(
                    "`aws iam delete-virtual-mfa-device --serial-number {}`",
                    d.serial
                )
            },
        ));
    }
    Ok((found, String::new()))
}
