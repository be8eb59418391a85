//! `mfakey audit` (one account, or `--organization`) and `mfakey baseline
//! cloudtrail`.

mod html;
mod report;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;

use super::enroll::runtime;
use super::render::{Output, Renderer, Report};
use crate::audit::baseline::{self, BaselineOptions, Plan};
use crate::audit::org::{self, OrgOptions};
use crate::audit::{audit, AuditOptions, Severity};
use crate::aws::{self, AwsOptions};
use crate::error::{Failure, Kind};

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Exit with status 8 when a finding at or above this severity is found
    /// (critical, high, medium, low, info)
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
    /// Audit every account of the AWS Organization (from its management
    /// account or a delegated administrator)
    #[arg(long)]
    pub organization: bool,
    /// Role assumed in each member account (default OrganizationAccountAccessRole)
    #[arg(long, value_name = "NAME", requires = "organization", value_parser = parse_role_name)]
    pub role_name: Option<String>,
    /// Accounts audited at once (default 8)
    #[arg(long, value_name = "N", requires = "organization",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: Option<u16>,
    /// Only these accounts of the organization (comma-separated ids)
    #[arg(long, value_name = "ID,...", requires = "organization", value_delimiter = ',',
          value_parser = parse_account_id)]
    pub accounts: Option<Vec<String>>,
    /// Also write the report as a self-contained HTML page to FILE
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
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
    Severity::parse(s)
        .ok_or_else(|| format!("\"{s}\" is not one of critical, high, medium, low, info"))
}

fn parse_account_id(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err(format!("\"{s}\" is not an AWS account id (12 digits)"))
    }
}

fn parse_role_name(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "\"{s}\" is not an IAM role name (1 to 64 letters, digits and +=,.@_-)"
        ))
    }
}

fn audit_options(a: &AuditArgs) -> AuditOptions {
    AuditOptions {
        max_root_age_days: a.max_root_age_days,
        require_hardware_mfa: a.require_hardware_mfa,
        report_wait: std::time::Duration::from_secs(a.report_wait),
        ..AuditOptions::default()
    }
}

/// Runs the audit: the report, and the exit status (0, 8 findings, 9 incomplete).
pub(super) fn run_audit(
    a: &AuditArgs,
    verbose: bool,
    out: Output,
) -> Result<(Report, u8), Failure> {
    if let Some(path) = &a.html {
        check_page_path(path)?;
    }
    let (report, code) = if a.organization {
        runtime()?.block_on(audit_org(a, verbose))?
    } else {
        runtime()?.block_on(audit_one(a, verbose))?
    };
    if let Some(path) = &a.html {
        write_page(path, &html::page(&report.json))?;
        out.notice(&format!("report page written to {}", path.display()));
    }
    Ok((report, code))
}

async fn audit_one(a: &AuditArgs, verbose: bool) -> Result<(Report, u8), Failure> {
    let cloud = aws::load_cloud(&a.aws).await?;
    let mut progress = Renderer::notices(verbose);
    let r = audit(&cloud, &audit_options(a), &mut progress).await?;
    let (code, _) = report::verdict(&r, a.fail_on);
    let json = json!({ "audit": report::audit_json(&r, a.fail_on, a.max_root_age_days) });
    Ok((Report::new(json, report::audit_text(&r, a.fail_on)), code))
}

async fn audit_org(a: &AuditArgs, verbose: bool) -> Result<(Report, u8), Failure> {
    let opts = OrgOptions {
        role_name: a
            .role_name
            .clone()
            .unwrap_or_else(|| org::DEFAULT_ROLE.to_string()),
        concurrency: a.concurrency.map_or(org::DEFAULT_CONCURRENCY, usize::from),
        accounts: a.accounts.clone(),
        audit: audit_options(a),
    };
    let cloud = aws::load_cloud(&a.aws).await?;
    let mut progress = Renderer::org(verbose);
    let result = org::audit_organization(&cloud, &opts, &mut progress).await;
    progress.end_live();
    let o = result?;
    let (code, _) = report::org_verdict(&o, a.fail_on);
    let json = json!({ "organization": report::org_json(&o, a.fail_on, a.max_root_age_days) });
    Ok((Report::new(json, report::org_text(&o, a.fail_on)), code))
}

/// Refuses, before anything runs, a page path whose folder does not exist.
fn check_page_path(path: &Path) -> Result<(), Failure> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.file_name().is_none() || !folder.is_dir() {
        return Err(Failure::usage(format!(
            "--html {}: {} is not a folder to write the page in",
            path.display(),
            folder.display()
        )));
    }
    Ok(())
}

/// Writes the page whole or not at all: a new file beside it, renamed.
fn write_page(path: &Path, page: &str) -> Result<(), Failure> {
    let fail = |e: std::io::Error| {
        Failure::new(
            Kind::Report,
            format!("cannot write the report page {}: {e}", path.display()),
        )
    };
    let name = path
        .file_name()
        .ok_or_else(|| Failure::usage(format!("--html {}: not a file name", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(page.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
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
