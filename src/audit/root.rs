//! The root user's checks: MFA (and whether it is only virtual), access
//! keys, and recent use (from the credential report).

use std::time::{Instant, UNIX_EPOCH};

use super::findings::{FindingId, Found};
use super::{AuditOptions, CheckFail, CheckOut, OrgContext};
use crate::aws::account::{
    parse_credential_report, AccountApi, AccountSummary, CredentialRow, ReportState, ROOT_ROW,
};
use crate::aws::iam::VirtualMfaDevice;
use crate::aws::AwsError;
use crate::progress::{Event, Progress};

/// Whether the audited account is a member account whose root credentials
/// the organization manages centrally (only known in an organization run:
/// ListOrganizationsFeatures answers the management account alone).
pub(super) struct Membership {
    managed_member: bool,
}

impl Membership {
    pub(super) fn of(account: Option<&str>, org: Option<&OrgContext>) -> Self {
        let managed_member = match (account, org) {
            (Some(a), Some(o)) => {
                a != o.management_account && o.root_credentials_managed == Some(true)
            }
            _ => false,
        };
        Membership { managed_member }
    }
}

/// GetAccountSummary's words about the root user's credentials.
fn credentials_evidence(s: &AccountSummary) -> String {
    let bit = |b: bool| u8::from(b);
    let password = match s.root_password {
        Some(p) => format!("AccountPasswordPresent = {}, ", bit(p)),
        None => String::new(),
    };
    format!(
        "{password}AccountAccessKeysPresent = {}, AccountSigningCertificatesPresent = {}",
        bit(s.root_access_keys),
        bit(s.root_signing_certificates)
    )
}

pub(super) fn root_mfa(
    summary: &Result<AccountSummary, AwsError>,
    virtuals: &Result<Vec<VirtualMfaDevice>, AwsError>,
    member: &Membership,
) -> CheckOut {
    let s = summary.as_ref().map_err(CheckFail::from)?;
    let mut found = Vec::new();
    let has_credentials =
        s.root_password != Some(false) || s.root_access_keys || s.root_signing_certificates;
    if member.managed_member && has_credentials {
        found.push(Found::new(
            FindingId::RootCredentialsPresent,
            Some(ROOT_ROW),
            format!(
                "GetAccountSummary: {}; ListOrganizationsFeatures (management account): RootCredentialsManagement enabled",
                credentials_evidence(s)
            ),
        ));
    }
    if s.root_password == Some(false) {
        // Nothing to sign in with: CIS 2.5 and AWS Config's
        // root-account-mfa-enabled count this as compliant / not applicable.
        let detail = format!(
            "root MFA not applicable: the root user has no password (GetAccountSummary: {})",
            credentials_evidence(s)
        );
        return Ok((found, detail));
    }
    if !s.root_mfa_enabled {
        let password = if s.root_password == Some(true) {
            ", AccountPasswordPresent = 1"
        } else {
            ""
        };
        found.push(Found::new(
            FindingId::RootMfaMissing,
            Some(ROOT_ROW),
            format!("GetAccountSummary: AccountMFAEnabled = 0{password}"),
        ));
        return Ok((found, String::new()));
    }
    // Enabled; is it a virtual device? Only tellable when the list is readable.
    let root_virtual = match virtuals {
        Ok(v) => v
            .iter()
            .find(|d| d.user.as_deref() == Some(ROOT_ROW))
            .map(|d| d.serial.clone()),
        Err(_) => None,
    };
    let detail = match (&root_virtual, virtuals.is_ok()) {
        (Some(serial), _) => {
            found.push(Found::new(
                FindingId::RootMfaVirtual,
                Some(ROOT_ROW),
                format!("ListVirtualMFADevices: {serial} is assigned to the root user"),
            ));
            String::new()
        }
        (None, true) => "root MFA is on and is not a virtual device".to_string(),
        (None, false) => {
            "root MFA is on (its kind is unknown: ListVirtualMFADevices was refused)".to_string()
        }
    };
    Ok((found, detail))
}

/// The root user's credentials for API calls: access keys and signing
/// certificates.
pub(super) fn root_access_keys(summary: &Result<AccountSummary, AwsError>) -> CheckOut {
    let s = summary.as_ref().map_err(CheckFail::from)?;
    let mut found = Vec::new();
    if s.root_access_keys {
        found.push(Found::new(
            FindingId::RootAccessKeys,
            Some(ROOT_ROW),
            "GetAccountSummary: AccountAccessKeysPresent = 1",
        ));
    }
    if s.root_signing_certificates {
        found.push(Found::new(
            FindingId::RootSigningCertificates,
            Some(ROOT_ROW),
            "GetAccountSummary: AccountSigningCertificatesPresent = 1",
        ));
    }
    let detail = if found.is_empty() {
        "root has no access keys and no signing certificates".to_string()
    } else {
        String::new()
    };
    Ok((found, detail))
}

/// GenerateCredentialReport, then GetCredentialReport until it is ready
/// (at most `opts.report_wait`).
pub(super) async fn credential_report<A: AccountApi>(
    api: &A,
    opts: &AuditOptions,
    progress: &mut dyn Progress,
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
        progress.event(Event::ReportWaiting {
            waited_ms: waited.as_millis() as u64,
            limit_ms: opts.report_wait.as_millis() as u64,
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

pub(super) fn root_usage(rows: &[CredentialRow], opts: &AuditOptions) -> CheckOut {
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
        vec![Found::new(
            FindingId::RootRecentlyUsed,
            Some(ROOT_ROW),
            format!("credential report, root row: {}", recent.join(", ")),
        )
        .with("days", opts.max_root_age_days.to_string())],
        String::new(),
    ))
}
