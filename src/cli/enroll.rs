//! `mfakey enroll user`, `mfakey recover`, `mfakey cleanup`.

use super::error::{exit, CliError};
use super::output::{Output, Report};
use super::session::{open_key, unlock};
use super::GlobalOpts;
use crate::aws::{self, AwsError, AwsOptions, IamApi};
use crate::device::Selector;
use crate::enroll::{enroll, EnrollError, EnrollOptions, KeyTarget, Progress, Step};
use crate::oath::OathSession;
use crate::transport::pcsc::{Access, Pcsc};
use crate::undo::journal::{self, Journal};
use crate::undo::recover::{self, Outcome, RecoverError};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum EnrollCmd {
    /// Create an IAM user's virtual MFA device, put it on the key, enable and verify it
    User(EnrollUserArgs),
    /// Put the root user's MFA on the key: the console shows the secret,
    /// mfakey writes it, checks it and shows the codes to type back
    Root(super::console::RootArgs),
    /// The same for an IAM user who enrolls in the console
    Console(super::console::ConsoleUserArgs),
}

#[derive(Args, Debug)]
pub struct EnrollUserArgs {
    /// IAM user name
    pub user: String,
    /// Virtual MFA device name (default <user>-yk<serial>)
    #[arg(long, value_name = "NAME")]
    pub device_name: Option<String>,
    /// IAM path for the device
    #[arg(long, default_value = "/", value_name = "/P/")]
    pub path: String,
    /// Require a touch for every code
    #[arg(long, overrides_with = "no_touch")]
    pub touch: bool,
    /// No touch needed for codes (the default)
    #[arg(long, overrides_with = "touch")]
    pub no_touch: bool,
    /// Account label after `@` in the credential id (default: the account alias, else its id)
    #[arg(long, value_name = "ALIAS")]
    pub label_account: Option<String>,
    /// Extra tag on the IAM device (repeatable)
    #[arg(long = "tag", value_name = "K=V", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Overwrite a credential with the same id on the key
    #[arg(long)]
    pub force: bool,
    /// Journal file (default ~/.local/state/mfakey/journal.jsonl)
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    #[command(flatten)]
    pub aws: AwsOptions,
}

#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// Journal file (default ~/.local/state/mfakey/journal.jsonl)
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    #[command(flatten)]
    pub aws: AwsOptions,
}

#[derive(Args, Debug)]
pub struct CleanupArgs {
    /// Delete them (without it, only list)
    #[arg(long)]
    pub delete: bool,
    #[command(flatten)]
    pub aws: AwsOptions,
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => {
            if k.starts_with("aws:") || k.starts_with("mfakey:") {
                Err(format!("tag key \"{k}\" is reserved"))
            } else {
                Ok((k.to_string(), v.to_string()))
            }
        }
        _ => Err(format!("\"{s}\" is not K=V")),
    }
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(
                "other",
                exit::OTHER,
                format!("cannot start the async runtime: {e}"),
            )
        })
}

fn journal_path(p: &Option<PathBuf>) -> PathBuf {
    p.clone().unwrap_or_else(journal::default_path)
}

pub fn run_enroll(cmd: &EnrollCmd, g: &GlobalOpts, out: Output) -> Result<Report, CliError> {
    let a = match cmd {
        EnrollCmd::User(a) => a,
        EnrollCmd::Root(a) => return super::console::run_root(a, g, out),
        EnrollCmd::Console(a) => return super::console::run_user(a, g, out),
    };
    let opts = EnrollOptions {
        user: a.user.clone(),
        device_name: a.device_name.clone(),
        path: a.path.clone(),
        touch: a.touch && !a.no_touch,
        account_label: a.label_account.clone(),
        tags: a.tags.clone(),
        force: a.force,
    };
    let verbose = g.verbose > 0;
    runtime()?.block_on(async {
        let iam = aws::load(&a.aws).await?;
        let mut key = open_key(g, Access::Exclusive)?;
        let serial = key.info.serial;
        let capacity = key.info.oath_capacity();
        let mut session = OathSession::select(&mut key.transport)?;
        unlock(&mut session, g)?;
        let mut journal = Journal::open(&journal_path(&a.journal)).map_err(EnrollError::from)?;
        let target = KeyTarget {
            session: &mut session,
            serial,
            capacity,
        };
        let mut on_progress = |p: Progress| match p {
            Progress::Touch { n, of } => {
                out.notice(&format!("Touch your YubiKey ({n} of {of})..."))
            }
            Progress::RetryCodes => {
                out.notice("AWS refused the codes; trying once more with a later pair")
            }
            Progress::Undo(what) => out.notice(&format!("undoing: {what}")),
            Progress::Step(Step::Rollback) => out.notice("a step failed: rolling back"),
            Progress::Step(s) if verbose => out.notice(&format!("step: {}", s.name())),
            Progress::Step(_) => {}
        };
        let report = enroll(&iam, target, &opts, &mut journal, &mut on_progress).await?;
        let mut text = format!(
            "enrolled {} on key {}\n  device   {}\n  on key   {}{}\n  steps   ",
            report.user,
            report
                .key_serial
                .map_or("(serial unknown)".into(), |s| s.to_string()),
            report.device_serial,
            report.credential_id,
            if report.touch { " (touch)" } else { "" },
        );
        for s in &report.steps {
            text.push_str(&format!(" {} {:.0} ms,", s.step.name(), s.ms));
        }
        text.pop();
        text.push_str(&format!("\n  total    {:.0} ms", report.total_ms));
        Ok(Report::new(json!({ "enrolled": report }), text))
    })
}

pub fn run_recover(a: &RecoverArgs, g: &GlobalOpts, _out: Output) -> Result<Report, CliError> {
    let path = journal_path(&a.journal);
    let entries = journal::read(&path).map_err(EnrollError::from)?;
    let open_runs = journal::unfinished(&entries);
    if open_runs.is_empty() {
        return Ok(Report::new(
            json!({ "journal": path.display().to_string(), "runs": [] }),
            format!("nothing to recover in {}", path.display()),
        ));
    }
    runtime()?.block_on(async {
        let iam = aws::load(&a.aws).await?;
        let mut journal = Journal::open(&path).map_err(EnrollError::from)?;
        let mut results = Vec::new();
        let pcsc = Pcsc::establish();
        for run in &open_runs {
            let st = recover::state(run).expect("unfinished runs have lines");
            // The run's key, if it is present (by serial).
            let mut key = match (&pcsc, st.written) {
                (Ok(pcsc), true) => {
                    let sel = Selector {
                        reader: g.reader.clone(),
                        serial: st.last.key_serial.or(g.serial),
                    };
                    crate::device::open(pcsc, &sel, Access::Exclusive, None).ok()
                }
                _ => None,
            };
            let mut session = match key.as_mut() {
                Some(k) => match OathSession::select(&mut k.transport) {
                    Ok(mut s) => {
                        unlock(&mut s, g)?;
                        Some(s)
                    }
                    Err(_) => None,
                },
                None => None,
            };
            let r = recover::recover_run(&iam, run, session.as_mut(), &mut journal)
                .await
                .map_err(|e| match e {
                    // AWS's answer keeps its kind and exit code (6).
                    RecoverError::Aws(a) => CliError::from(a),
                    e => CliError::new("recover", exit::OTHER, e.to_string()),
                })?;
            results.push(r);
        }
        let mut text = String::new();
        for r in &results {
            text.push_str(&format!(
                "{} ({}): {}\n",
                r.user,
                r.device_serial.as_deref().unwrap_or("no device"),
                match r.outcome {
                    Outcome::Finished => "was complete",
                    Outcome::RolledBack => "undone",
                    Outcome::Incomplete => "INCOMPLETE",
                }
            ));
            for a in &r.actions {
                text.push_str(&format!("  done: {a}\n"));
            }
            for a in &r.remaining {
                text.push_str(&format!("  left: {a}\n"));
            }
        }
        let incomplete = results.iter().any(|r| r.outcome == Outcome::Incomplete);
        let report = Report::new(
            json!({ "journal": path.display().to_string(), "runs": results }),
            text,
        );
        if incomplete {
            let msg = format!(
                "some runs could not be recovered yet:\n{}",
                report.text.trim_end()
            );
            return Err(CliError::new("rollback_incomplete", exit::ROLLBACK, msg));
        }
        Ok(report)
    })
}

pub fn run_cleanup(a: &CleanupArgs, _g: &GlobalOpts, _out: Output) -> Result<Report, CliError> {
    runtime()?.block_on(async {
        let iam = aws::load(&a.aws).await?;
        let found = recover::leftovers(&iam).await?;
        let mut deleted = Vec::new();
        if a.delete {
            for d in &found {
                iam.delete_virtual_mfa_device(&d.serial).await?;
                deleted.push(d.serial.clone());
            }
        }
        let mut text = String::new();
        for d in &found {
            let verb = if a.delete { "deleted" } else { "unassigned" };
            text.push_str(&format!("{verb} {}\n", d.serial));
        }
        if found.is_empty() {
            text.push_str("no unassigned virtual MFA devices made by mfakey\n");
        } else if !a.delete {
            text.push_str("run again with --delete to remove them\n");
        }
        let serials: Vec<&str> = found.iter().map(|d| d.serial.as_str()).collect();
        Ok(Report::new(
            json!({ "unassigned": serials, "deleted": deleted }),
            text,
        ))
    })
}

impl From<AwsError> for CliError {
    fn from(e: AwsError) -> Self {
        CliError::new(aws_kind(&e), exit::AWS, e.to_string())
    }
}

pub(super) fn aws_kind(e: &AwsError) -> &'static str {
    match e {
        AwsError::AccessDenied { .. } => "access_denied",
        AwsError::NoSuchEntity { .. } => "no_such_entity",
        AwsError::LimitExceeded { .. } => "limit_exceeded",
        AwsError::EntityAlreadyExists { .. } => "entity_already_exists",
        AwsError::Throttling { .. } => "throttling",
        AwsError::InvalidAuthenticationCode => "invalid_authentication_code",
        AwsError::EndpointUnreachable { .. } => "endpoint_unreachable",
        AwsError::ExpiredCredentials { .. } => "expired_credentials",
        AwsError::NoCredentials { .. } => "no_credentials",
        _ => "aws",
    }
}

impl From<EnrollError> for CliError {
    fn from(e: EnrollError) -> Self {
        let message = e.to_string();
        let (kind, code) = match e.root() {
            EnrollError::Invalid { .. } => ("invalid_argument", exit::USAGE),
            EnrollError::TooManyDevices { .. } => ("too_many_devices", exit::REFUSED),
            EnrollError::DeviceNameTaken { .. } => ("device_name_taken", exit::REFUSED),
            EnrollError::ClockSkew { .. } => ("clock_skew", exit::REFUSED),
            EnrollError::KeyFull { .. } => ("key_full", exit::REFUSED),
            EnrollError::CredentialExists { .. } => ("credential_exists", exit::REFUSED),
            EnrollError::CheckFailed => ("check_failed", exit::OTHER),
            EnrollError::NotVerified { .. } => ("not_verified", exit::AWS),
            EnrollError::Journal(_) => ("journal", exit::OTHER),
            EnrollError::Aws(a) => (aws_kind(a), exit::AWS),
            EnrollError::Oath(o) => super::error::oath_kind(o),
            _ => ("other", exit::OTHER),
        };
        if matches!(e, EnrollError::RollbackIncomplete { .. }) {
            return CliError::new("rollback_incomplete", exit::ROLLBACK, message);
        }
        CliError::new(kind, code, message)
    }
}
