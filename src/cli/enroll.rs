//! `mfakey enroll user`, `mfakey recover`, `mfakey cleanup`.

use super::render::{outcome_word, Output, Renderer, Report};
use super::session::open_key;
use super::GlobalOpts;
use crate::aws::{self, AwsOptions, IamApi};
use crate::daily::{self, profile};
use crate::device::Selector;
use crate::enroll::{enroll, EnrollOptions, EnrollReport, KeyTarget};
use crate::error::{Failure, Kind};
use crate::progress::Outcome;
use crate::transport::pcsc::{Access, Pcsc};
use crate::undo::journal::{self, Journal, Lock};
use crate::undo::recover::{self, RecoveredRun};
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
    #[arg(long, value_name = "ALIAS", alias = "label-account")]
    pub account_label: Option<String>,
    /// Extra tag on the IAM device (repeatable)
    #[arg(long = "tag", value_name = "K=V", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Overwrite a credential with the same id on the key
    #[arg(long)]
    pub force: bool,
    /// Journal file (default ~/.local/state/mfakey/journal.jsonl)
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Then a second key, a backup, in the same sitting: in another reader, or in this one once the first key is out (exit 10 if only the first is enrolled)
    #[arg(long)]
    pub backup: bool,
    /// The reader the backup key goes into (default: with --reader, that reader; else any)
    #[arg(long, value_name = "NAME", requires = "backup")]
    pub backup_reader: Option<String>,
    /// Afterwards, point this profile of the shared config file
    /// ($AWS_CONFIG_FILE, else ~/.aws/config) at the new device: its
    /// mfa_serial, and a commented mfa_process line (a backup is kept)
    #[arg(long, value_name = "P")]
    pub configure_profile: Option<String>,
    #[command(flatten)]
    pub aws: AwsOptions,
}

#[derive(Args, Debug, Clone)]
pub struct RecoverArgs {
    /// Journal file (default ~/.local/state/mfakey/journal.jsonl)
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Lifecycle journal of revoke, replace and offboard (default ~/.local/state/mfakey/lifecycle.jsonl)
    #[arg(long, value_name = "FILE")]
    pub lifecycle_journal: Option<PathBuf>,
    #[command(flatten)]
    pub aws: AwsOptions,
}

#[derive(Args, Debug)]
pub struct CleanupArgs {
    /// Delete them (without it, only list)
    #[arg(long)]
    pub delete: bool,
    /// Journal whose enrollments must not be in flight while deleting
    /// (default ~/.local/state/mfakey/journal.jsonl)
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
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

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Kind::Other, format!("cannot start the async runtime: {e}")))
}

fn journal_path(p: &Option<PathBuf>) -> PathBuf {
    p.clone().unwrap_or_else(journal::default_path)
}

pub(super) fn run_enroll(cmd: &EnrollCmd, g: &GlobalOpts, out: Output) -> Result<Report, Failure> {
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
        account_label: a.account_label.clone(),
        tags: a.tags.clone(),
        force: a.force,
    };
    // The config file is checked before anything is made, written after.
    let profile_plan = match &a.configure_profile {
        Some(p) => Some(profile::plan(&profile::config_path()?, p)?),
        None => None,
    };
    let mut progress = Renderer::notices(g.verbose > 0);
    runtime()?.block_on(async {
        let iam = aws::load(&a.aws).await?;
        let mut key = open_key(g, Access::Exclusive)?;
        let (serial, capacity) = (key.info.serial, key.info.oath_capacity());
        let mut session = super::session::oath(&mut key, g)?;
        let mut journal = Journal::open(&journal_path(&a.journal), Lock::Shared)?;
        let target = KeyTarget {
            session: &mut session,
            serial,
            capacity,
        };
        let report = enroll(&iam, target, &opts, &journal, &mut progress).await?;
        // The profile points at the first key's device, written before a
        // backup key is waited for (a failed backup leaves the first
        // enrollment, and its profile, standing).
        let applied = match &profile_plan {
            Some(plan) => Some(daily::configure_profile(
                plan,
                &report.user,
                &report.device_serial,
            )?),
            None => None,
        };
        let mut shown = if a.backup {
            // The first key is free again before the backup is waited for.
            drop(session);
            drop(key);
            super::lifecycle::backup(a, &opts, report, &iam, g, &mut journal, &mut progress).await?
        } else {
            Report::new(json!({ "enrolled": report }), enrolled_text(&report))
        };
        if let Some(applied) = applied {
            shown.text = format!("{}\n{}", shown.text, profile_text(&applied));
            shown.json["profile"] = json!(applied);
        }
        Ok(shown)
    })
}

fn profile_text(a: &profile::Applied) -> String {
    if !a.changed {
        return format!(
            "  profile  {} in {} already points at it",
            a.profile, a.path
        );
    }
    let mut text = format!("  profile  {} in {}: mfa_serial written", a.profile, a.path);
    if let Some(old) = &a.replaced {
        text.push_str(&format!(" (was {old})"));
    }
    if let Some(b) = &a.backup {
        text.push_str(&format!("\n  backup   {b}"));
    }
    text
}

pub(super) fn enrolled_text(report: &EnrollReport) -> String {
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
    text
}

pub(super) fn run_recover(
    a: &RecoverArgs,
    g: &GlobalOpts,
    _out: Output,
) -> Result<Report, Failure> {
    let path = journal_path(&a.journal);
    // Alone on the journal: no enrollment of it may be in flight.
    let journal = Journal::open(&path, Lock::Exclusive)?;
    let open_runs = journal::unfinished(&journal.entries()?);
    if open_runs.is_empty() {
        return Ok(Report::new(
            json!({ "journal": path.display().to_string(), "runs": [] }),
            format!("nothing to recover in {}", path.display()),
        ));
    }
    let mut progress = Renderer::notices(g.verbose > 0);
    let results = runtime()?.block_on(async {
        let iam = aws::load(&a.aws).await?;
        let caller = iam.account_id().await?;
        let pcsc = Pcsc::establish();
        let mut results = Vec::new();
        for run in &open_runs {
            let st = recover::state(run).expect("unfinished runs have lines");
            // The run's key, if it is present (by serial).
            let mut key = match (&pcsc, st.written()) {
                (Ok(pcsc), true) => {
                    let sel = Selector {
                        reader: g.reader.clone(),
                        serial: st.made.key_serial.or(g.serial),
                    };
                    super::session::open_with(pcsc, g, &sel, Access::Exclusive).ok()
                }
                _ => None,
            };
            let mut session = match key.as_mut() {
                Some(k) => Some(super::session::oath(k, g)?),
                None => None,
            };
            let r = recover::recover_run(
                &iam,
                &caller,
                run,
                session.as_mut(),
                &journal,
                &mut progress,
            )
            .await?;
            results.push(r);
        }
        Ok::<_, Failure>(results)
    })?;
    recover_report(&path, results)
}

/// The runs recovered; an error when some are not settled (refused runs
/// first: they need a person to look).
fn recover_report(path: &std::path::Path, results: Vec<RecoveredRun>) -> Result<Report, Failure> {
    let mut text = String::new();
    for r in &results {
        text.push_str(&format!(
            "{} ({}): {}\n",
            r.user,
            r.device_serial.as_deref().unwrap_or("no device"),
            outcome_word(r.outcome)
        ));
        for a in &r.actions {
            text.push_str(&format!("  done: {a}\n"));
        }
        for a in &r.remaining {
            text.push_str(&format!("  left: {a}\n"));
        }
    }
    let report = Report::new(
        json!({ "journal": path.display().to_string(), "runs": results }),
        text,
    );
    let refused = results.iter().filter(|r| r.outcome == Outcome::Refused);
    if refused.clone().count() > 0 {
        let mismatch = refused.clone().all(|r| {
            r.remaining
                .iter()
                .any(|m| m.contains("these credentials are of account"))
        });
        let kind = if mismatch {
            Kind::JournalAccountMismatch
        } else {
            Kind::UndoRefused
        };
        return Err(Failure::new(
            kind,
            format!(
                "the journal names what mfakey cannot prove it made, and that was left as it is:\n{}",
                report.text.trim_end()
            ),
        ));
    }
    if results.iter().any(|r| r.outcome == Outcome::Incomplete) {
        return Err(Failure::new(
            Kind::RollbackIncomplete,
            format!(
                "some runs could not be recovered yet:\n{}",
                report.text.trim_end()
            ),
        ));
    }
    Ok(report)
}

pub(super) fn run_cleanup(
    a: &CleanupArgs,
    _g: &GlobalOpts,
    _out: Output,
) -> Result<Report, Failure> {
    // Deleting: alone on the journal, so no enrollment's fresh device goes.
    let _lock = if a.delete {
        Some(Journal::open(&journal_path(&a.journal), Lock::Exclusive)?)
    } else {
        None
    };
    runtime()?.block_on(async {
        let iam = aws::load(&a.aws).await?;
        let found = recover::leftovers(&iam).await?;
        let deleted = if a.delete {
            recover::delete_leftovers(&iam, &found).await?
        } else {
            Vec::new()
        };
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
