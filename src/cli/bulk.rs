//! `mfakey bulk MANIFEST`: enroll a manifest's users one key after another.

use super::enroll::runtime;
use super::error::{exit, CliError};
use super::input::{self, Source};
use super::output::{Output, Report, SCHEMA_VERSION};
use super::GlobalOpts;
use crate::aws::{self, AwsOptions, Iam, IamApi};
use crate::bulk::desk::PcscDesk;
use crate::bulk::manifest::{self, ManifestError, Row};
use crate::bulk::{self, Accounts, BulkError, BulkEvent, BulkOptions, Journals, Line, Status};
use crate::bulk::{dry_run, report};
use crate::undo::journal::{self, Journal};
use crate::undo::recover::Outcome;
use clap::Args;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BulkArgs {
    /// CSV with a header: user (required), device_name, touch, key_serial, profile, role_arn, groups
    pub manifest: PathBuf,
    /// Bulk journal (default MANIFEST.journal.jsonl; the enrollment journal is FILE.enroll)
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Continue the run the journal records: finish or undo a half-done user, then the rest
    #[arg(long)]
    pub resume: bool,
    /// Write a report at the end (and on Ctrl-C): CSV, or JSON if FILE ends in .json
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Check every row against IAM; touch no key, create nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Create users missing from IAM (tagged mfakey:managed) and add them to the row's groups
    #[arg(long)]
    pub create_users: bool,
    /// Require a touch for every code (rows without a touch value)
    #[arg(long, overrides_with = "no_touch")]
    pub touch: bool,
    /// No touch needed for codes (the default)
    #[arg(long, overrides_with = "touch")]
    pub no_touch: bool,
    /// IAM path for the devices
    #[arg(long, default_value = "/", value_name = "/P/")]
    pub path: String,
    #[command(flatten)]
    pub aws: AwsOptions,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
    // A second Ctrl-C ends the process at once (the journals allow --resume).
    // SAFETY: signal() is async-signal-safe.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
}

fn install_sigint() {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: installs a handler that only stores to an atomic and calls signal().
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

impl From<ManifestError> for CliError {
    fn from(e: ManifestError) -> Self {
        CliError::new("invalid_manifest", exit::USAGE, e.to_string())
    }
}

impl From<BulkError> for CliError {
    fn from(e: BulkError) -> Self {
        match e {
            BulkError::Aws(a) => a.into(),
            other => CliError::new("bulk", exit::OTHER, other.to_string()),
        }
    }
}

/// The IAM client of every account the manifest names, each checked with
/// one call (which also assumes the role) before anything starts.
async fn load_accounts(a: &BulkArgs, rows: &[Row]) -> Result<(Iam, Vec<(String, Iam)>), CliError> {
    let default = aws::load(&a.aws).await?;
    let mut others: Vec<(String, Iam)> = Vec::new();
    for row in rows {
        let Some(key) = bulk::account_key(row) else {
            continue;
        };
        if others.iter().any(|(k, _)| *k == key) {
            continue;
        }
        let iam = match (&row.profile, &row.role_arn) {
            (Some(p), _) => {
                let opts = AwsOptions {
                    profile: Some(p.clone()),
                    ..a.aws.clone()
                };
                aws::load(&opts).await?
            }
            (None, Some(arn)) => aws::config::load_assumed(&a.aws, arn, "mfakey-bulk").await?,
            (None, None) => continue,
        };
        if let Err(e) = iam.account_alias().await {
            let mut err = CliError::from(e);
            err.message = format!(
                "account of manifest line {} ({key}): {}",
                row.line, err.message
            );
            return Err(err);
        }
        others.push((key, iam));
    }
    Ok((default, others))
}

fn accounts<'a>(default: &'a Iam, others: &'a [(String, Iam)]) -> Accounts<'a, Iam> {
    Accounts {
        default,
        by_key: others.iter().map(|(k, i)| (k.clone(), i)).collect(),
    }
}

fn default_journal(manifest: &Path) -> PathBuf {
    let mut s = manifest.as_os_str().to_owned();
    s.push(".journal.jsonl");
    s.into()
}

pub fn run(a: &BulkArgs, g: &GlobalOpts, out: Output) -> Result<Report, CliError> {
    let rows = manifest::load(&a.manifest)?;
    if a.dry_run {
        return dry(a, &rows);
    }
    let path = a
        .journal
        .clone()
        .unwrap_or_else(|| default_journal(&a.manifest));
    let prior: Vec<Line> = journal::read_lines(&path).map_err(BulkError::from)?;
    match (a.resume, prior.is_empty()) {
        (false, false) => {
            return Err(CliError::new(
                "journal_exists",
                exit::REFUSED,
                format!(
                    "the journal {} holds an earlier run: pass --resume to continue it, or choose another --journal",
                    path.display()
                ),
            ))
        }
        (true, true) => {
            return Err(CliError::new(
                "nothing_to_resume",
                exit::USAGE,
                format!("no run to resume in {}: run without --resume", path.display()),
            ))
        }
        _ => {}
    }
    let password = match &g.password_file {
        Some(p) => Some(input::password(Source::File(p))?),
        None => None,
    };
    let opts = BulkOptions {
        touch: a.touch && !a.no_touch,
        path: a.path.clone(),
        password,
        create_users: a.create_users,
    };
    install_sigint();
    let mut printer = Printer::new(out.json, g.verbose > 0);
    let summary = runtime()?.block_on(async {
        let (default, others) = load_accounts(a, &rows).await?;
        let accounts = accounts(&default, &others);
        let mut desk = PcscDesk::new(g.reader.clone(), &STOP)?;
        let mut journals = Journals {
            bulk: Journal::open(&path).map_err(BulkError::from)?,
            enroll: Journal::open(&bulk::enroll_journal_path(&path)).map_err(BulkError::from)?,
        };
        let s = bulk::run(
            &accounts,
            &mut desk,
            &rows,
            &opts,
            &mut journals,
            &prior,
            &mut |e| printer.event(e),
        )
        .await?;
        Ok::<_, CliError>(s)
    })?;
    printer.end_live();
    if let Some(rp) = &a.report {
        report::write(rp, &summary.bulk_run, &summary.results).map_err(|e| {
            CliError::new(
                "report",
                exit::OTHER,
                format!("cannot write the report {}: {e}", rp.display()),
            )
        })?;
    }
    let count = |s: Status| summary.results.iter().filter(|r| r.status == s).count();
    let (enrolled, before, failed, pending) = (
        count(Status::Enrolled),
        count(Status::AlreadyEnrolled),
        count(Status::Failed),
        count(Status::Pending),
    );
    let mut text = format!(
        "{enrolled} enrolled, {before} enrolled before, {failed} failed, {pending} not reached (journal {})",
        path.display()
    );
    for r in summary
        .results
        .iter()
        .filter(|r| r.status == Status::Failed)
    {
        text.push_str(&format!(
            "\n  {}: {}",
            r.user,
            r.error.as_deref().unwrap_or("")
        ));
    }
    let doc = Report::new(
        json!({
            "bulk_run": summary.bulk_run,
            "journal": path.display().to_string(),
            "enrolled": enrolled,
            "already_enrolled": before,
            "failed": failed,
            "pending": pending,
            "interrupted": summary.interrupted,
            "users": summary.results,
        }),
        text,
    );
    if summary.interrupted || failed > 0 {
        out.report(&doc);
        let msg = if summary.interrupted {
            format!("interrupted with {pending} user(s) left: run again with --resume")
        } else {
            format!("{failed} user(s) failed: fix the cause and run again with --resume")
        };
        return Err(CliError::new(
            if summary.interrupted {
                "interrupted"
            } else {
                "bulk_failures"
            },
            exit::OTHER,
            msg,
        ));
    }
    Ok(doc)
}

fn dry(a: &BulkArgs, rows: &[Row]) -> Result<Report, CliError> {
    let checks = runtime()?.block_on(async {
        let (default, others) = load_accounts(a, rows).await?;
        let accounts = accounts(&default, &others);
        Ok::<_, CliError>(dry_run::check(&accounts, rows, a.create_users).await?)
    })?;
    let mut text = String::new();
    for c in &checks {
        if c.problems.is_empty() {
            let will = if c.create { " (will be created)" } else { "" };
            text.push_str(&format!("line {}: {} ok{will}\n", c.line, c.user));
        }
        for p in &c.problems {
            text.push_str(&format!("line {}: {}: {p}\n", c.line, c.user));
        }
    }
    let bad = checks.iter().filter(|c| !c.problems.is_empty()).count();
    let report = Report::new(
        json!({ "dry_run": true, "rows": checks, "problems": bad }),
        text,
    );
    if bad > 0 {
        return Err(CliError::new(
            "preflight_failed",
            exit::REFUSED,
            format!("{bad} row(s) would fail:\n{}", report.text.trim_end()),
        ));
    }
    Ok(report)
}

/// Progress: one JSON line per event (`--json`), a live line on a terminal,
/// plain lines otherwise.
struct Printer {
    json: bool,
    live: bool,
    verbose: bool,
    line_open: bool,
    user_started: Instant,
    n: String,
}

impl Printer {
    fn new(json: bool, verbose: bool) -> Self {
        Printer {
            json,
            live: !json && std::io::stdout().is_terminal(),
            verbose,
            line_open: false,
            user_started: Instant::now(),
            n: String::new(),
        }
    }

    fn say(&mut self, line: &str) {
        let mut o = std::io::stdout().lock();
        if self.line_open {
            let _ = write!(o, "\r\x1b[2K");
            self.line_open = false;
        }
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    }

    fn status(&mut self, line: &str) {
        if self.live {
            let mut o = std::io::stdout().lock();
            let _ = write!(o, "\r\x1b[2K{line}");
            let _ = o.flush();
            self.line_open = true;
        } else if self.verbose {
            self.say(line);
        }
    }

    fn end_live(&mut self) {
        if self.line_open {
            self.say("");
        }
    }

    fn event(&mut self, e: &BulkEvent) {
        if self.json {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("schema_version".into(), json!(SCHEMA_VERSION));
            }
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{v}");
            let _ = o.flush();
            return;
        }
        let secs = self.user_started.elapsed().as_secs();
        match e {
            BulkEvent::Recovered {
                user,
                outcome,
                actions,
                remaining,
            } => {
                let what = match outcome {
                    Outcome::Finished => "was complete",
                    Outcome::RolledBack => "undone",
                    Outcome::Incomplete => "INCOMPLETE",
                };
                self.say(&format!("earlier enrollment of {user}: {what}"));
                for a in actions {
                    self.say(&format!("  done: {a}"));
                }
                for a in remaining {
                    self.say(&format!("  left: {a}"));
                }
            }
            BulkEvent::UserCreated { user, groups } => {
                let g = if groups.is_empty() {
                    String::new()
                } else {
                    format!(", added to {}", groups.join(", "))
                };
                self.say(&format!("created IAM user {user}{g}"))
            }
            BulkEvent::AlreadyEnrolled { user, .. } => {
                self.say(&format!("{user}: already enrolled by this run"))
            }
            BulkEvent::Next {
                user,
                n,
                of,
                key_serial,
            } => {
                self.user_started = Instant::now();
                self.n = format!("[{n}/{of}]");
                let pin = key_serial.map_or(String::new(), |s| format!(" {s}"));
                self.say(&format!("{} next: {user} — insert key{pin}", self.n));
            }
            BulkEvent::KeyInserted { reader, serial } => {
                self.user_started = Instant::now();
                let line = format!(
                    "{} key {} in \"{reader}\"",
                    self.n,
                    serial.map_or("(serial unknown)".into(), |s| s.to_string())
                );
                if self.live {
                    self.status(&line)
                } else {
                    self.say(&format!(
                        "  {}",
                        line.trim_start_matches(&self.n).trim_start()
                    ))
                }
            }
            BulkEvent::KeySkipped { reason, .. } => self.say(&format!("  skipped: {reason}")),
            BulkEvent::Step { user, step } => {
                let n = self.n.clone();
                self.status(&format!("{n} {user}: {} ({secs} s)", step.name()))
            }
            BulkEvent::Touch { user, n, of } => {
                self.say(&format!("  {user}: touch the key ({n} of {of})"))
            }
            BulkEvent::Enrolled {
                user,
                key_serial,
                device_arn,
                ms,
                ..
            } => self.say(&format!(
                "  enrolled {user} on key {}: {device_arn} ({ms:.0} ms)",
                key_serial.map_or("?".into(), |s| s.to_string())
            )),
            BulkEvent::Failed { user, error, retry } => {
                self.say(&format!("  FAILED {user}: {error}"));
                if *retry {
                    self.say(&format!("  {user} waits for a key again"));
                }
            }
            BulkEvent::RemoveKey { .. } => self.say("  remove the key"),
            BulkEvent::Interrupted => self.say("interrupted"),
        }
    }
}
