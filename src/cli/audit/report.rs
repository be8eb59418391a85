//! The audit's report as text and as the JSON document, for one account
//! and for an organization.

use serde_json::{json, Value};

use crate::audit::findings::{Finding, References};
use crate::audit::org::{OrgReport, Outcome, RootAccess};
use crate::audit::{AuditReport, CheckStatus, Severity};
use crate::error::exit;

pub(super) const SEVERITIES: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Info,
];

fn status_name(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Passed => "passed",
        CheckStatus::Failed => "failed",
        CheckStatus::Unknown => "unknown",
        CheckStatus::Denied => "denied",
        CheckStatus::Error => "error",
    }
}

/// The exit status and its word, for one account.
pub(super) fn verdict(r: &AuditReport, fail_on: Severity) -> (u8, &'static str) {
    if r.count_at_or_above(fail_on) > 0 {
        (exit::FINDINGS, "FAIL")
    } else if r.incomplete() {
        (exit::INCOMPLETE, "INCOMPLETE")
    } else {
        (0, "PASS")
    }
}

/// The exit status and its word over every account of an organization.
pub(super) fn org_verdict(o: &OrgReport, fail_on: Severity) -> (u8, &'static str) {
    if o.any_at_or_above(fail_on) {
        (exit::FINDINGS, "FAIL")
    } else if o.incomplete() {
        (exit::INCOMPLETE, "INCOMPLETE")
    } else {
        (0, "PASS")
    }
}

/// "CIS AWS v7.0 2.5, Security Hub IAM.9, Prowler iam_root_mfa_enabled".
pub(super) fn references_text(r: &References) -> String {
    refs_text(r.cis, r.security_hub, r.prowler)
}

/// The cross-references in words, from their three parts.
pub(super) fn refs_text(cis: Option<&str>, hub: Option<&str>, prowler: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(c) = cis {
        parts.push(format!("CIS AWS v7.0 {c}"));
    }
    if let Some(c) = hub {
        parts.push(format!("Security Hub {c}"));
    }
    if let Some(c) = prowler {
        parts.push(format!("Prowler {c}"));
    }
    parts.join(", ")
}

fn finding_text(text: &mut String, f: &Finding) {
    text.push_str(&format!("  {:<30} {}\n", f.id, f.title));
    text.push_str(&format!("  {:<30} evidence: {}\n", "", f.evidence));
    text.push_str(&format!("  {:<30} remedy:   {}\n", "", f.remedy));
    if !f.references.is_empty() {
        let refs = references_text(&f.references);
        text.push_str(&format!("  {:<30} see:      {refs}\n", ""));
    }
}

/// "1 critical, 3 high, 1 medium, 2 low" (and info when there is some).
fn counts(findings: &[Finding]) -> String {
    SEVERITIES
        .iter()
        .map(|s| (s, findings.iter().filter(|f| f.severity == *s).count()))
        .filter(|(s, n)| **s != Severity::Info || *n > 0)
        .map(|(s, n)| format!("{n} {}", s.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One account's findings by severity, and the checks that could not run.
fn findings_and_not_run(r: &AuditReport) -> String {
    let mut text = String::new();
    for sev in SEVERITIES {
        let group: Vec<_> = r.findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        text.push_str(&format!(
            "{} ({})\n",
            sev.name().to_uppercase(),
            group.len()
        ));
        for f in group {
            finding_text(&mut text, f);
        }
    }
    let not_run: Vec<_> = r
        .checks
        .iter()
        .filter(|c| !matches!(c.status, CheckStatus::Passed | CheckStatus::Failed))
        .collect();
    if !not_run.is_empty() {
        text.push_str("NOT CHECKED\n");
        for c in &not_run {
            text.push_str(&format!(
                "  {:<30} {}: {}\n",
                c.check,
                status_name(c.status),
                c.detail
            ));
        }
    }
    text
}

/// One account's report, with its summary line.
pub(super) fn audit_text(r: &AuditReport, fail_on: Severity) -> String {
    let mut text = findings_and_not_run(r);
    let passed = r
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Passed)
        .count();
    let not_run = r
        .checks
        .iter()
        .filter(|c| !matches!(c.status, CheckStatus::Passed | CheckStatus::Failed))
        .count();
    text.push_str(&format!(
        "summary: {} findings ({}); {passed} of {} checks passed, {not_run} not checked; fail-on {}: {}\n",
        r.findings.len(),
        counts(&r.findings),
        r.checks.len(),
        fail_on.name(),
        verdict(r, fail_on).1
    ));
    text
}

/// One account's audit as JSON (the single-account document's `audit`).
pub(super) fn audit_json(r: &AuditReport, fail_on: Severity, max_root_age_days: u64) -> Value {
    let (code, word) = verdict(r, fail_on);
    let mut v = json!({
        "fail_on": fail_on,
        "result": word.to_lowercase(),
        "exit_code": code,
        "max_root_age_days": max_root_age_days,
        "checks": r.checks,
        "findings": r.findings,
        "elapsed_ms": r.elapsed_ms,
    });
    if let (Some(o), Some(id)) = (v.as_object_mut(), &r.account_id) {
        o.insert("account_id".into(), json!(id));
    }
    v
}

fn root_access_json(r: &RootAccess) -> Value {
    match r {
        RootAccess::Features(f) => json!({ "enabled_features": f }),
        RootAccess::Unknown(why) => json!({ "enabled_features": null, "unknown": why }),
    }
}

/// The organization's document (`organization`).
pub(super) fn org_json(o: &OrgReport, fail_on: Severity, max_root_age_days: u64) -> Value {
    let (code, word) = org_verdict(o, fail_on);
    let (audited, not_checked, skipped) = o.tally();
    let accounts: Vec<Value> = o
        .accounts
        .iter()
        .map(|a| {
            let mut v = json!({
                "account_id": a.account.id,
                "name": a.account.name,
                "account_status": a.account.status,
            });
            let extra = match &a.outcome {
                Outcome::Audited { audit } => json!({
                    "status": "audited",
                    "audit": audit_json(audit, fail_on, max_root_age_days),
                }),
                Outcome::NotChecked { reason } => {
                    json!({"status": "not_checked", "reason": reason})
                }
                Outcome::Skipped { reason } => json!({"status": "skipped", "reason": reason}),
            };
            if let (Some(v), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                v.extend(e.clone());
            }
            v
        })
        .collect();
    json!({
        "fail_on": fail_on,
        "result": word.to_lowercase(),
        "exit_code": code,
        "max_root_age_days": max_root_age_days,
        "organization_id": o.organization.id,
        "management_account": o.organization.management_account,
        "caller_account": o.caller,
        "root_access": root_access_json(&o.root_access),
        "summary": {
            "accounts": o.accounts.len(),
            "audited": audited,
            "not_checked": not_checked,
            "skipped": skipped,
            "findings": o.finding_counts(),
        },
        "accounts": accounts,
        "elapsed_ms": o.elapsed_ms,
    })
}

/// "5 critical" style counts of one account, in a table cell.
fn count_cells(r: &AuditReport) -> String {
    SEVERITIES
        .iter()
        .map(|s| {
            format!(
                "{:>4}",
                r.findings.iter().filter(|f| f.severity == *s).count()
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The organization's summary: the account table and the findings across
/// accounts.
fn org_summary_text(o: &OrgReport, fail_on: Severity) -> String {
    let (audited, not_checked, skipped) = o.tally();
    let mut text = format!(
        "ORGANIZATION {} (management account {}): {} accounts: {audited} audited, {not_checked} not checked, {skipped} skipped\n",
        o.organization.id,
        o.organization.management_account,
        o.accounts.len()
    );
    text.push_str(&match &o.root_access {
        RootAccess::Features(f) if f.is_empty() => {
            "centralized root access: not enabled\n".to_string()
        }
        RootAccess::Features(f) => format!("centralized root access: {} enabled\n", f.join(", ")),
        RootAccess::Unknown(why) => format!("centralized root access: unknown ({why})\n"),
    });
    text.push_str(&format!(
        "ACCOUNTS\n  {:<14} {:<24} {:<12} crit high  med  low info\n",
        "account", "name", "result"
    ));
    for a in &o.accounts {
        let (word, cells) = match &a.outcome {
            Outcome::Audited { audit } => (verdict(audit, fail_on).1, count_cells(audit)),
            Outcome::NotChecked { reason } => ("NOT CHECKED", reason.clone()),
            Outcome::Skipped { reason } => ("SKIPPED", reason.clone()),
        };
        text.push_str(&format!(
            "  {:<14} {:<24} {word:<12} {cells}\n",
            a.account.id, a.account.name
        ));
    }
    let counts = o.finding_counts();
    if !counts.is_empty() {
        text.push_str("FINDINGS ACROSS ACCOUNTS\n");
        for c in counts {
            text.push_str(&format!(
                "  {:<9} {:<30} {} account(s): {}\n",
                c.severity.name(),
                c.id,
                c.accounts,
                c.account_ids.join(", ")
            ));
        }
    }
    text
}

/// The organization's report: summary, then each audited account.
pub(super) fn org_text(o: &OrgReport, fail_on: Severity) -> String {
    let mut text = org_summary_text(o, fail_on);
    for a in &o.accounts {
        if let Outcome::Audited { audit } = &a.outcome {
            text.push_str(&format!(
                "\n== account {} ({})\n",
                a.account.id, a.account.name
            ));
            text.push_str(&findings_and_not_run(audit));
        }
    }
    let (audited, not_checked, skipped) = o.tally();
    let all: Vec<Finding> = o
        .accounts
        .iter()
        .filter_map(|a| match &a.outcome {
            Outcome::Audited { audit } => Some(audit.findings.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    text.push_str(&format!(
        "\nsummary: {} accounts ({audited} audited, {not_checked} not checked, {skipped} skipped); {} findings ({}); fail-on {}: {}\n",
        o.accounts.len(),
        all.len(),
        counts(&all),
        fail_on.name(),
        org_verdict(o, fail_on).1
    ));
    text
}
