//! `mfakey bulk MANIFEST`: enroll a manifest's users one key after another.

use super::enroll::runtime;
use super::input::{self, Source};
use super::render::{Output, Renderer, Report};
use super::GlobalOpts;
use crate::aws::{self, AwsOptions, Iam, IamApi};
use crate::bulk::desk::PcscDesk;
use crate::bulk::journal::{enroll_journal_path, Journals, Line};
use crate::bulk::manifest::{self, Row};
use crate::bulk::{self, Accounts, BulkOptions, Status};
use crate::bulk::{dry_run, report};
use crate::error::{Failure, Kind};
use crate::undo::journal::{self, Journal, Lock};
use clap::Args;
use serde_json::json;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Args, Debug)]
pub struct BulkArgs {
    /// CSV with a header: user (required), device_name, touch, key_serial, profile, role_arn, groups, keys
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
    /// Keys per user (rows without a keys value): 1, or 2 for a backup key each
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub keys: u8,
    /// Tray mode: enroll every key present in every reader at once, one user
    /// per key (--reader then names every reader that contains NAME)
    #[arg(long)]
    pub parallel: bool,
    #[command(flatten)]
    pub aws: AwsOptions,
}

pub(super) static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
    // A second Ctrl-C ends the process at once (the journals allow --resume).
    // SAFETY: signal() is async-signal-safe.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
}

pub(super) fn install_sigint() {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: installs a handler that only stores to an atomic and calls signal().
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

/// The IAM client of every account the manifest names, each checked with
/// one call (which also assumes the role) before anything starts.
async fn load_accounts(a: &BulkArgs, rows: &[Row]) -> Result<(Iam, Vec<(String, Iam)>), Failure> {
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
            let err = Failure::from(e);
            return Err(Failure::new(
                err.kind,
                format!(
                    "account of manifest line {} ({key}): {}",
                    row.line, err.message
                ),
            ));
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

pub(super) fn run(a: &BulkArgs, g: &GlobalOpts, out: Output) -> Result<Report, Failure> {
    let rows = manifest::load(&a.manifest)?;
    if a.dry_run {
        return dry(a, &rows);
    }
    let path = a
        .journal
        .clone()
        .unwrap_or_else(|| default_journal(&a.manifest));
    let (prior, journals) = open_journals(&path, a.resume)?;
    let password = match &g.password_file {
        Some(p) => Some(input::password(Source::File(p))?),
        None => None,
    };
    let opts = BulkOptions {
        touch: a.touch && !a.no_touch,
        path: a.path.clone(),
        password,
        create_users: a.create_users,
        keys: a.keys,
    };
    install_sigint();
    let mut renderer = Renderer::desk(out.json, g.verbose > 0, a.parallel);
    let job = Job {
        a,
        g,
        rows: &rows,
        opts: &opts,
        journals: &journals,
        prior: &prior,
    };
    let summary = if a.parallel {
        job.tray(&mut renderer)
    } else {
        job.one_at_a_time(&mut renderer)
    };
    renderer.end_live();
    let summary = summary?;
    if let Some(rp) = &a.report {
        report::write(rp, &summary.bulk_run, &summary.results).map_err(|e| {
            Failure::new(
                Kind::Report,
                format!("cannot write the report {}: {e}", rp.display()),
            )
        })?;
    }
    summary_report(&summary, &path, out)
}

/// What a bulk run works with.
struct Job<'a> {
    a: &'a BulkArgs,
    g: &'a GlobalOpts,
    rows: &'a [Row],
    opts: &'a BulkOptions,
    journals: &'a Journals,
    prior: &'a [Line],
}

impl Job<'_> {
    fn one_at_a_time(&self, renderer: &mut Renderer) -> Result<bulk::Summary, Failure> {
        runtime()?.block_on(async {
            let (default, others) = load_accounts(self.a, self.rows).await?;
            let accounts = accounts(&default, &others);
            let mut desk = PcscDesk::new(self.g.reader.clone(), &STOP)?;
            let s = bulk::run(
                &accounts,
                &mut desk,
                self.rows,
                self.opts,
                self.journals,
                self.prior,
                renderer,
            )
            .await?;
            Ok::<_, Failure>(s)
        })
    }

    /// Tray mode: the async runtime is driven by a thread of its own, and
    /// the coordinator and each key's worker block on it from theirs.
    fn tray(&self, renderer: &mut Renderer) -> Result<bulk::Summary, Failure> {
        let driver = Driver::start()?;
        let rt = driver.handle();
        let (default, others) = rt.block_on(load_accounts(self.a, self.rows))?;
        let accounts = accounts(&default, &others);
        let desk = PcscDesk::tray(self.g.reader.clone(), &STOP)?;
        let hands = bulk::tray::Hands {
            tray: &desk,
            rt: &rt,
        };
        Ok(bulk::tray::run(
            &accounts,
            hands,
            self.rows,
            self.opts,
            self.journals,
            self.prior,
            renderer,
        )?)
    }
}

/// A current-thread async runtime driven by a thread of its own until
/// dropped, so that other threads can block on it (`Handle::block_on`).
struct Driver {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Driver {
    fn start() -> Result<Self, Failure> {
        let rt = runtime()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mfakey-async".into())
            .spawn(move || {
                let _ = rt.block_on(stopped);
            })
            .map_err(|e| Failure::new(Kind::Other, format!("cannot start a thread: {e}")))?;
        Ok(Driver {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn handle(&self) -> tokio::runtime::Handle {
        self.handle.clone()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The run a journal holds (none: a new run) and both journals, held
/// alone: a new run starts them afresh (never adopting a file someone else
/// left), a resumed one continues them.
fn open_journals(path: &Path, resume: bool) -> Result<(Vec<Line>, Journals), Failure> {
    let prior: Vec<Line> = journal::read_lines(path)?;
    match (resume, prior.is_empty()) {
        (false, false) => {
            return Err(Failure::new(
                Kind::JournalExists,
                format!(
                    "the journal {} holds an earlier run: pass --resume to continue it, or choose another --journal",
                    path.display()
                ),
            ))
        }
        (true, true) => {
            return Err(Failure::new(
                Kind::NothingToResume,
                format!("no run to resume in {}: run without --resume", path.display()),
            ))
        }
        _ => {}
    }
    let open = |p: &Path| {
        if resume {
            Journal::open(p, Lock::Exclusive)
        } else {
            Journal::create_new(p, Lock::Exclusive)
        }
    };
    let journals = Journals {
        bulk: open(path)?,
        enroll: open(&enroll_journal_path(path))?,
    };
    Ok((prior, journals))
}

/// The run's summary; an error (after printing it) when users failed or
/// the run was interrupted.
fn summary_report(summary: &bulk::Summary, path: &Path, out: Output) -> Result<Report, Failure> {
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
    if !summary.interrupted && failed == 0 {
        return Ok(doc);
    }
    out.report(&doc);
    Err(if summary.interrupted {
        Failure::new(
            Kind::Interrupted,
            format!("interrupted with {pending} user(s) left: run again with --resume"),
        )
    } else {
        Failure::new(
            Kind::BulkFailures,
            format!("{failed} user(s) failed: fix the cause and run again with --resume"),
        )
    })
}

fn dry(a: &BulkArgs, rows: &[Row]) -> Result<Report, Failure> {
    let checks = runtime()?.block_on(async {
        let (default, others) = load_accounts(a, rows).await?;
        let accounts = accounts(&default, &others);
        Ok::<_, Failure>(dry_run::check(&accounts, rows, a.create_users).await?)
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
        return Err(Failure::new(
            Kind::PreflightFailed,
            format!("{bad} row(s) would fail:\n{}", report.text.trim_end()),
        ));
    }
    Ok(report)
}
