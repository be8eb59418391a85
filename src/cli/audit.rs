//! `mfakey audit` and `mfakey baseline cloudtrail`.

use std::io::{BufRead, IsTerminal, Write};

use clap::{Args, Subcommand};
use serde_json::json;

use super::enroll::runtime;
use super::render::{Output, Renderer, Report};
use crate::audit::baseline::{self, BaselineOptions, Plan};
use crate::audit::{audit, AuditOptions, AuditReport, CheckStatus, Severity};
use crate::aws::{self, AwsOptions};
use crate::error::{exit, Failure, Kind};

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Exit with status 8 when a finding at or above this severity is found
    #[arg(long, value_name = "SEVERITY", default_value = "high", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// Root used within this many days is a finding
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub max_root_age_days: u64,
    /// Report IAM users whose MFA is only virtual as high (default low)
    #[arg(long)]
    pub require_hardware_mfa: bool,
    /// Longest wait for the credential report, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub report_wait: u64,
    #[command(flatten)]
    pub aws: AwsOptions,
}

#[derive(Subcommand, Debug)]
pub enum BaselineCmd {
    /// Create what CloudTrail needs: bucket, multi-region trail, logging
    Cloudtrail(CloudtrailArgs),
}

#[derive(Args, Debug)]
pub struct CloudtrailArgs {
    /// Trail name (default mfakey-account-trail)
    #[arg(long, value_name = "NAME")]
    pub trail_name: Option<String>,
    /// S3 bucket for the logs (default mfakey-cloudtrail-<account>-<region>)
    #[arg(long, value_name = "BUCKET")]
    pub bucket: Option<String>,
    /// KMS key (ARN or alias) to encrypt the logs with
    #[arg(long, value_name = "KEY")]
    pub kms_key: Option<String>,
    /// Create the bucket with S3 Object Lock
    #[arg(long)]
    pub object_lock: bool,
    /// Make the changes without asking
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub aws: AwsOptions,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s).ok_or_else(|| format!("\"{s}\" is not one of critical, high, medium, low"))
}

const SEVERITIES: [Severity; 4] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
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

fn render_text(r: &AuditReport, fail_on: Severity) -> String {
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
            text.push_str(&format!("  {:<30} {}\n", f.id, f.title));
            text.push_str(&format!("  {:<30} evidence: {}\n", "", f.evidence));
            text.push_str(&format!("  {:<30} remedy:   {}\n", "", f.remedy));
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
    let counts: Vec<String> = SEVERITIES
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                r.findings.iter().filter(|f| f.severity == *s).count(),
                s.name()
            )
        })
        .collect();
    let passed = r
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Passed)
        .count();
    text.push_str(&format!(
        "summary: {} findings ({}); {passed} of {} checks passed, {} not checked; fail-on {}: {}\n",
        r.findings.len(),
        counts.join(", "),
        r.checks.len(),
        not_run.len(),
        fail_on.name(),
        verdict(r, fail_on).1
    ));
    text
}

/// The exit status and its word.
fn verdict(r: &AuditReport, fail_on: Severity) -> (u8, &'static str) {
    if r.count_at_or_above(fail_on) > 0 {
        (exit::FINDINGS, "FAIL")
    } else if r.incomplete() {
        (exit::INCOMPLETE, "INCOMPLETE")
    } else {
        (0, "PASS")
    }
}

/// Runs the audit: the report, and the exit status (0, 8 findings, 9 incomplete).
pub(super) fn run_audit(
    a: &AuditArgs,
    verbose: bool,
    _out: Output,
) -> Result<(Report, u8), Failure> {
    let opts = AuditOptions {
        max_root_age_days: a.max_root_age_days,
        require_hardware_mfa: a.require_hardware_mfa,
        report_wait: std::time::Duration::from_secs(a.report_wait),
        ..AuditOptions::default()
    };
    runtime()?.block_on(async {
        let cloud = aws::load_cloud(&a.aws).await?;
        let mut progress = Renderer::notices(verbose);
        let report = audit(&cloud, &opts, &mut progress).await?;
        let (code, word) = verdict(&report, a.fail_on);
        let text = render_text(&report, a.fail_on);
        let json = json!({
            "audit": {
                "fail_on": a.fail_on,
                "result": word.to_lowercase(),
                "exit_code": code,
                "max_root_age_days": a.max_root_age_days,
                "checks": report.checks,
                "findings": report.findings,
                "elapsed_ms": report.elapsed_ms,
            }
        });
        Ok((Report::new(json, text), code))
    })
}

/// Asks "proceed?" on the terminal. Without a terminal: refuses.
fn confirm(out: Output, plan: &Plan) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(Kind::ConfirmationNeeded, format!(
                "{} change(s) planned and no terminal to ask on: nothing was changed; review the plan (mfakey baseline cloudtrail in a terminal) and pass --yes to make them",
                plan.changes.len()
            ),
        ));
    }
    out.notice("Make these changes? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::new(Kind::Other, format!("cannot read the answer: {e}")))?;
    if matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Failure::new(
            Kind::Declined,
            "declined: nothing was changed",
        ))
    }
}

pub(super) fn run_baseline(cmd: &BaselineCmd, out: Output) -> Result<Report, Failure> {
    let BaselineCmd::Cloudtrail(a) = cmd;
    let opts = BaselineOptions {
        trail_name: a.trail_name.clone(),
        bucket: a.bucket.clone(),
        kms_key: a.kms_key.clone(),
        object_lock: a.object_lock,
    };
    runtime()?.block_on(async {
        let cloud = aws::load_cloud(&a.aws).await?;
        let plan = baseline::plan(&cloud, &opts).await?;
        let mut text = String::new();
        for line in &plan.already {
            text.push_str(&format!("already: {line}\n"));
        }
        for line in &plan.notes {
            text.push_str(&format!("note:    {line}\n"));
        }
        if plan.changes.is_empty() {
            text.push_str(&format!(
                "nothing to change: trail {} and bucket {} are already as the baseline wants\n",
                plan.trail, plan.bucket
            ));
            let json = json!({ "baseline": { "plan": plan, "changed": [] , "unchanged": true } });
            return Ok(Report::new(json, text));
        }
        // The plan goes to stderr, also with --json: it is what the
        // question is about.
        let mut shown = text.clone();
        shown.push_str("plan:\n");
        for c in &plan.changes {
            shown.push_str(&format!("  - {}\n", c.describe()));
        }
        out.notice(shown.trim_end());
        if !a.yes {
            confirm(out, &plan)?;
        }
        let mut changed = Vec::new();
        baseline::apply(&cloud, &plan, &mut |c| {
            out.notice(&format!("done: {}", c.describe()));
            changed.push(c.clone());
        })
        .await?;
        text.push_str(&format!(
            "changed {} thing(s); trail {} is logging to bucket {}\n",
            changed.len(),
            plan.trail,
            plan.bucket
        ));
        let json = json!({ "baseline": { "plan": plan, "changed": changed, "unchanged": false } });
        Ok(Report::new(json, text))
    })
}
