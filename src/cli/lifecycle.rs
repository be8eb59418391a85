//! `mfakey inventory`, `revoke`, `replace`, `resync`, `offboard`, the
//! backup key of `enroll user --backup`, and the lifecycle half of
//! `recover`: parse, confirm, call the job, render.

use super::enroll::{runtime, EnrollUserArgs, RecoverArgs};
use super::render::{Output, Renderer, Report};
use super::session::{self, open_key};
use super::GlobalOpts;
use crate::aws::{self, AwsOptions, Iam};
use crate::bulk::desk::PcscDesk;
use crate::credential::unix_now;
use crate::device::Selector;
use crate::enroll::{EnrollOptions, EnrollReport, KeyTarget};
use crate::error::{Failure, Kind};
use crate::lifecycle::accounts::{self, Account, Via};
use crate::lifecycle::backup::{enroll_backup, Unlocker};
use crate::lifecycle::journal::{self as ljournal, Line};
use crate::lifecycle::{inventory, offboard, recover, replace, resync, revoke, Removal, UserRef};
use crate::oath::OathSession;
use crate::progress::Outcome;
use crate::transport::pcsc::{Access, Pcsc};
use crate::undo::journal::{self, Journal, Lock};
use clap::Args;
use serde_json::json;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(
    after_help = "Devices are found by the tags mfakey writes (mfakey:managed, mfakey:key-serial, mfakey:user). A user is on a single key when all their MFA devices are on one key and they have no other MFA device (FIDO, hardware, another app)."
)]
pub struct InventoryArgs {
    /// Accounts to look in: a CSV with a profile or role_arn column, one account a line (default: the command line's account)
    #[arg(long, value_name = "FILE")]
    pub accounts: Option<PathBuf>,
    /// Also write the devices as CSV (account_id, user, key_serial, device_arn, enable_date, single_key)
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    #[command(flatten)]
    pub aws: AwsOptions,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Only virtual MFA devices that carry mfakey's tags naming that key serial are touched, checked again right before each one goes. The list is shown first; on a terminal you are asked, without one --yes is needed. Each change is journaled: if the run stops part way, `mfakey recover` (or the same revoke again) finishes it. The report names every user left with no MFA device at all."
)]
pub struct RevokeArgs {
    /// Serial number of the lost or stolen key
    #[arg(long, value_name = "N")]
    pub key_serial: u32,
    /// Accounts to revoke in: a CSV with a profile or role_arn column, one account a line (default: the command line's account)
    #[arg(long, value_name = "FILE")]
    pub accounts: Option<PathBuf>,
    /// Show what would be revoked; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask (needed without a terminal)
    #[arg(long)]
    pub yes: bool,
    /// Journal file (default ~/.local/state/mfakey/lifecycle.jsonl)
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    #[command(flatten)]
    pub aws: AwsOptions,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Each user of key OLD is enrolled onto the key in the reader (--reader/--serial) first, exactly as `enroll user` does; only then is OLD's device of that user revoked, so nobody is without MFA at any moment. A user who cannot be moved keeps OLD's device. Run it again to move the rest; `mfakey recover` finishes a run that stopped."
)]
pub struct ReplaceArgs {
    /// Serial number of the key whose users move to the key in the reader
    #[arg(long, value_name = "OLD")]
    pub key_serial: u32,
    /// Accounts to look in: a CSV with a profile or role_arn column, one account a line (default: the command line's account)
    #[arg(long, value_name = "FILE")]
    pub accounts: Option<PathBuf>,
    /// Show who would move; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask (needed without a terminal)
    #[arg(long)]
    pub yes: bool,
    /// Require a touch for every code of the new credentials
    #[arg(long)]
    pub touch: bool,
    /// IAM path for the new devices
    #[arg(long, default_value = "/", value_name = "/P/")]
    pub path: String,
    /// Journal file (default ~/.local/state/mfakey/lifecycle.jsonl; the enrollments go to FILE.enroll)
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    #[command(flatten)]
    pub aws: AwsOptions,
}

#[derive(Args, Debug)]
#[command(
    after_help = "The two codes are read from the key at once (no 30-second wait). AWS takes a code only once: right after an enable, a sign-in or another resync, the codes of that half-minute are spent, and mfakey says to run it again in 30 s."
)]
pub struct ResyncArgs {
    /// IAM user name
    pub user: String,
    /// The device to resync (default: the user's virtual device tagged as on this key, or their only one)
    #[arg(long, value_name = "ARN")]
    pub device: Option<String>,
    /// The credential on the key (default: the one named for the user)
    #[arg(long, value_name = "ID")]
    pub credential: Option<String>,
    #[command(flatten)]
    pub aws: AwsOptions,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Every MFA device of the user is deactivated (virtual ones also deleted), mfakey's and any other, after you confirm the list (--yes without a terminal). With a key inserted, a credential named for the user is deleted only when AWS accepts its codes for one of the user's devices (ResyncMFADevice, before they go): that proves the key holds that seed. Any other stays on the key, and the report says so."
)]
pub struct OffboardArgs {
    /// IAM user name of the leaver
    pub user: String,
    /// Show what would be removed; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask (needed without a terminal)
    #[arg(long)]
    pub yes: bool,
    /// Journal file (default ~/.local/state/mfakey/lifecycle.jsonl)
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    #[command(flatten)]
    pub aws: AwsOptions,
}

fn lifecycle_path(p: &Option<PathBuf>) -> PathBuf {
    p.clone().unwrap_or_else(ljournal::default_path)
}

/// The IAM client of each account: the command line's, or each one the
/// accounts file lists (a profile, or a role assumed with the command
/// line's credentials).
async fn clients(aws_opts: &AwsOptions, vias: Vec<Via>) -> Result<Vec<(Via, Iam)>, Failure> {
    let mut out = Vec::new();
    for via in vias {
        let iam = match &via {
            Via::CommandLine => aws::load(aws_opts).await?,
            Via::Profile(p) => {
                let opts = AwsOptions {
                    profile: Some(p.clone()),
                    ..aws_opts.clone()
                };
                aws::load(&opts).await?
            }
            Via::Role(arn) => aws::config::load_assumed(aws_opts, arn, "mfakey-lifecycle").await?,
        };
        out.push((via, iam));
    }
    Ok(out)
}

fn vias(file: &Option<PathBuf>) -> Result<Vec<Via>, Failure> {
    Ok(match file {
        Some(f) => accounts::load(f)?,
        None => vec![Via::CommandLine],
    })
}

/// Reaches each account once (its id) before anything else.
async fn reach(iams: &[(Via, Iam)]) -> Result<Vec<Account<'_, Iam>>, Failure> {
    let list = iams.iter().map(|(v, i)| (v.clone(), i)).collect();
    Ok(accounts::reach(list).await?)
}

/// Asks on the terminal; without one, `--yes` is needed.
fn confirm(out: Output, plan_text: &str, question: &str, yes: bool) -> Result<(), Failure> {
    out.notice(plan_text.trim_end());
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            Kind::ConfirmationNeeded,
            "no terminal to ask on: nothing was changed; review the list above and pass --yes",
        ));
    }
    out.notice(&format!("{question} [y/N] "));
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

fn removal_text(r: &Removal) -> String {
    match r {
        Removal::Removed => "removed (deactivated; a virtual device also deleted)".into(),
        Removal::Gone => "was already gone".into(),
        Removal::Left(why) => format!("LEFT: {why}"),
    }
}

fn users_text(users: &[UserRef]) -> String {
    users
        .iter()
        .map(|u| format!("{} (account {})", u.user, u.account_id))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---- inventory --------------------------------------------------------

pub(super) fn run_inventory(
    a: &InventoryArgs,
    _g: &GlobalOpts,
    _out: Output,
) -> Result<Report, Failure> {
    let vias = vias(&a.accounts)?;
    let inv = runtime()?.block_on(async {
        let iams = clients(&a.aws, vias).await?;
        let accounts = reach(&iams).await?;
        Ok::<_, Failure>(inventory::inventory(&accounts).await?)
    })?;
    if let Some(path) = &a.csv {
        write_inventory_csv(path, &inv).map_err(|e| {
            Failure::new(
                Kind::Report,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    }
    Ok(Report::new(
        json!({ "inventory": inv }),
        inventory_text(&inv),
    ))
}

fn is_single(inv: &inventory::Inventory, account: &str, user: Option<&str>) -> bool {
    inv.single_key_users
        .iter()
        .any(|s| s.account_id == account && Some(s.user.as_str()) == user)
}

fn inventory_text(inv: &inventory::Inventory) -> String {
    let mut t = String::new();
    for k in &inv.keys {
        let key = k
            .key_serial
            .map_or("no key serial".into(), |s| format!("key {s}"));
        t.push_str(&format!("{key}: {} device(s)\n", k.devices.len()));
        for d in &k.devices {
            t.push_str(&format!(
                "  {:<12} {:<24} {} {}\n",
                d.account_id,
                d.user.as_deref().unwrap_or("(unassigned)"),
                d.enable_date.as_deref().unwrap_or("-"),
                d.device_arn
            ));
        }
    }
    if inv.keys.is_empty() {
        t.push_str("no virtual MFA device made by mfakey in these accounts\n");
    }
    if inv.single_key_users.is_empty() {
        t.push_str("every user has a second key or another MFA device\n");
    } else {
        t.push_str("on a single key (no backup):\n");
        for s in &inv.single_key_users {
            let key = s.key_serial.map_or("?".into(), |k| k.to_string());
            t.push_str(&format!(
                "  {} (account {}): key {key}\n",
                s.user, s.account_id
            ));
        }
    }
    t
}

fn write_inventory_csv(path: &Path, inv: &inventory::Inventory) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record([
        "account_id",
        "user",
        "key_serial",
        "device_arn",
        "enable_date",
        "single_key",
    ])?;
    for k in &inv.keys {
        for d in &k.devices {
            let single = is_single(inv, &d.account_id, d.user.as_deref());
            w.write_record([
                d.account_id.as_str(),
                d.user.as_deref().unwrap_or(""),
                &k.key_serial.map_or(String::new(), |s| s.to_string()),
                &d.device_arn,
                d.enable_date.as_deref().unwrap_or(""),
                if single { "yes" } else { "no" },
            ])?;
        }
    }
    w.flush()
}

// ---- revoke -----------------------------------------------------------

pub(super) fn run_revoke(a: &RevokeArgs, g: &GlobalOpts, out: Output) -> Result<Report, Failure> {
    let vias = vias(&a.accounts)?;
    let path = lifecycle_path(&a.journal);
    let mut progress = Renderer::notices(g.verbose > 0);
    runtime()?.block_on(async {
        let iams = clients(&a.aws, vias).await?;
        let accounts = reach(&iams).await?;
        let plan = revoke::plan(&accounts, a.key_serial).await?;
        let text = revoke_plan_text(&plan);
        if a.dry_run || plan.devices.is_empty() {
            let v = json!({ "revoke": { "plan": plan, "dry_run": a.dry_run,
                "left_without_mfa": plan.left_without_mfa() } });
            return Ok(Report::new(v, text));
        }
        confirm(out, &text, "Revoke these devices?", a.yes)?;
        let mut journal = Journal::open(&path, Lock::Exclusive)?;
        let r = revoke::apply(&accounts, &plan, &mut journal, &mut progress).await?;
        Ok(Report::new(json!({ "revoke": r }), revoke_text(&r)))
    })
}

fn revoke_plan_text(plan: &revoke::RevokePlan) -> String {
    if plan.devices.is_empty() {
        return format!(
            "no device is tagged as on key {} in account(s) {}: nothing to revoke",
            plan.key_serial,
            plan.accounts.join(", ")
        );
    }
    let mut t = format!(
        "key {}: {} device(s) to deactivate and delete\n",
        plan.key_serial,
        plan.devices.len()
    );
    for p in &plan.devices {
        let user = p.user.as_deref().unwrap_or("(unassigned)");
        let keeps = if p.user.is_none() {
            String::new()
        } else if p.other_mfa.is_empty() {
            " — LEFT WITH NO MFA".into()
        } else {
            format!(" — keeps {} other MFA device(s)", p.other_mfa.len())
        };
        t.push_str(&format!(
            "  {} {user}: {}{keeps}\n",
            p.account_id, p.device_arn
        ));
    }
    t
}

fn revoke_text(r: &revoke::RevokeReport) -> String {
    let mut t = format!("key {}: revoked\n", r.key_serial);
    for d in &r.devices {
        let what = removal_text(&d.outcome);
        t.push_str(&format!("  {} {}: {what}\n", d.account_id, d.device_arn));
    }
    if r.without_mfa.is_empty() {
        t.push_str("nobody is left without MFA\n");
    } else {
        t.push_str(&format!(
            "left with NO MFA at all: {}\n",
            users_text(&r.without_mfa)
        ));
    }
    t
}

// ---- replace ----------------------------------------------------------

pub(super) fn run_replace(a: &ReplaceArgs, g: &GlobalOpts, out: Output) -> Result<Report, Failure> {
    let vias = vias(&a.accounts)?;
    let path = lifecycle_path(&a.journal);
    let mut progress = Renderer::notices(g.verbose > 0);
    let report = runtime()?.block_on(async {
        let iams = clients(&a.aws, vias).await?;
        let accounts = reach(&iams).await?;
        let mut key = open_key(g, Access::Exclusive)?;
        let (serial, capacity) = (key.info.serial, key.info.oath_capacity());
        let mut session = session::oath(&mut key, g)?;
        let mut target = KeyTarget {
            session: &mut session,
            serial,
            capacity,
        };
        let plan = replace::plan(&accounts, a.key_serial, &mut target).await?;
        let text = replace_plan_text(&plan);
        if a.dry_run || (plan.moves.is_empty() && plan.unassigned.is_empty()) {
            return Ok(Report::new(
                json!({ "replace": { "plan": plan, "dry_run": a.dry_run } }),
                text,
            ));
        }
        confirm(
            out,
            &text,
            "Move these users and revoke the old key's devices?",
            a.yes,
        )?;
        let mut lj = Journal::open(&path, Lock::Exclusive)?;
        let mut ej = Journal::open(&ljournal::enroll_path(&path), Lock::Shared)?;
        let journals = replace::Journals {
            lifecycle: &mut lj,
            enroll: &mut ej,
        };
        let opts = replace::ReplaceOptions {
            touch: a.touch,
            path: a.path.clone(),
        };
        let r = replace::apply(&accounts, &plan, target, &opts, journals, &mut progress).await?;
        replace_outcome(r, out)
    })?;
    Ok(report)
}

fn replace_plan_text(plan: &replace::ReplacePlan) -> String {
    let mut t = format!(
        "key {} → key {}: {} user(s) to move, then key {}'s devices revoked\n",
        plan.old_key,
        plan.new_key,
        plan.moves.len(),
        plan.old_key
    );
    for m in &plan.moves {
        let note = m
            .on_new
            .as_ref()
            .map_or(String::new(), |d| format!(" (already on the new key: {d})"));
        t.push_str(&format!(
            "  {} {}: {}{note}\n",
            m.account_id,
            m.user,
            m.old_devices.join(", ")
        ));
    }
    for p in &plan.unassigned {
        t.push_str(&format!(
            "  {} (unassigned): {}\n",
            p.account_id, p.device_arn
        ));
    }
    if plan.moves.is_empty() && plan.unassigned.is_empty() {
        t.push_str(&format!(
            "no device is tagged as on key {}: nothing to do\n",
            plan.old_key
        ));
    }
    t
}

/// The report; an error (after printing it) when some users were not moved.
fn replace_outcome(r: replace::ReplaceReport, out: Output) -> Result<Report, Failure> {
    let mut t = format!("key {} → key {}\n", r.old_key, r.new_key);
    for m in &r.moved {
        t.push_str(&format!(
            "  moved {} (account {}): now {}\n",
            m.user, m.account_id, m.new_device
        ));
    }
    for n in &r.not_moved {
        t.push_str(&format!(
            "  NOT moved {} (account {}), keeps key {}: {}\n",
            n.user, n.account_id, r.old_key, n.error
        ));
    }
    if !r.without_mfa.is_empty() {
        t.push_str(&format!(
            "left with NO MFA at all: {}\n",
            users_text(&r.without_mfa)
        ));
    }
    let doc = Report::new(json!({ "replace": r }), t);
    if r.not_moved.is_empty() {
        return Ok(doc);
    }
    out.report(&doc);
    let kind = r.stopped_kind.unwrap_or(Kind::SomeFailed);
    Err(Failure::new(
        kind,
        format!(
            "{} user(s) were not moved and keep key {}'s device{}: fix the cause and run `mfakey replace --key-serial {}` again",
            r.not_moved.len(),
            r.old_key,
            r.stopped.as_ref().map_or(String::new(), |s| format!(" (stopped: {s})")),
            r.old_key
        ),
    ))
}

// ---- resync -----------------------------------------------------------

pub(super) fn run_resync(a: &ResyncArgs, g: &GlobalOpts, _out: Output) -> Result<Report, Failure> {
    let mut progress = Renderer::notices(g.verbose > 0);
    let req = resync::ResyncRequest {
        user: a.user.clone(),
        device: a.device.clone(),
        credential: a.credential.clone(),
        now: unix_now(),
    };
    runtime()?.block_on(async {
        let iam = aws::load(&a.aws).await?;
        let mut key = open_key(g, Access::Exclusive)?;
        let (serial, capacity) = (key.info.serial, key.info.oath_capacity());
        let mut session = session::oath(&mut key, g)?;
        let target = KeyTarget {
            session: &mut session,
            serial,
            capacity,
        };
        let r = resync::resync(&iam, target, &req, &mut progress).await?;
        let text = format!(
            "resynced {} ({}) with \"{}\" from key {}",
            r.user,
            r.device_arn,
            r.credential_id,
            r.key_serial
                .map_or("(serial unknown)".into(), |s| s.to_string())
        );
        Ok(Report::new(json!({ "resynced": r }), text))
    })
}

// ---- offboard ---------------------------------------------------------

pub(super) fn run_offboard(
    a: &OffboardArgs,
    g: &GlobalOpts,
    out: Output,
) -> Result<Report, Failure> {
    let path = lifecycle_path(&a.journal);
    let mut progress = Renderer::notices(g.verbose > 0);
    runtime()?.block_on(async {
        let iam = aws::load(&a.aws).await?;
        // The key is optional: without one (or without PC/SC at all), only
        // IAM is changed.
        let mut key = match open_key(g, Access::Exclusive) {
            Ok(k) => Some(k),
            Err(f) if matches!(f.kind, Kind::NoKey | Kind::NoReader | Kind::PcscNotRunning) => None,
            Err(f) => return Err(f),
        };
        let info = key
            .as_ref()
            .map(|k| (k.info.serial, k.info.oath_capacity()));
        let mut session = match key.as_mut() {
            Some(k) => Some(session::oath(k, g)?),
            None => None,
        };
        let mut target = match (session.as_mut(), info) {
            (Some(s), Some((serial, capacity))) => Some(KeyTarget {
                session: s,
                serial,
                capacity,
            }),
            _ => None,
        };
        let plan = offboard::plan(&iam, &a.user, target.as_mut()).await?;
        let text = offboard_plan_text(&plan);
        if a.dry_run || (plan.devices.is_empty() && plan.credentials.is_empty()) {
            let v = json!({ "offboard": { "plan": plan, "dry_run": a.dry_run } });
            return Ok(Report::new(v, text));
        }
        confirm(out, &text, &format!("Remove {}'s MFA?", a.user), a.yes)?;
        let mut journal = Journal::open(&path, Lock::Exclusive)?;
        let r =
            offboard::apply(&iam, &plan, target, &mut journal, unix_now(), &mut progress).await?;
        Ok(Report::new(json!({ "offboard": r }), offboard_text(&r)))
    })
}

fn offboard_plan_text(plan: &offboard::OffboardPlan) -> String {
    let mut t = format!(
        "{} (account {}): {} MFA device(s) to remove\n",
        plan.user,
        plan.account_id,
        plan.devices.len()
    );
    for d in &plan.devices {
        let by = if d.mfakey {
            format!(
                ", mfakey's, key {}",
                d.key_serial.map_or("?".into(), |s| s.to_string())
            )
        } else {
            String::new()
        };
        t.push_str(&format!("  {} ({}{by})\n", d.device_arn, d.kind));
    }
    for c in &plan.credentials {
        t.push_str(&format!(
            "  \"{c}\" on key {}: deleted if AWS accepts its codes for one of these devices\n",
            plan.key_serial.map_or("?".into(), |s| s.to_string())
        ));
    }
    t
}

fn offboard_text(r: &offboard::OffboardReport) -> String {
    let mut t = format!("{} (account {}):\n", r.user, r.account_id);
    for d in &r.devices {
        t.push_str(&format!(
            "  {}: {}\n",
            d.device_arn,
            removal_text(&d.outcome)
        ));
    }
    for c in &r.credentials {
        t.push_str(&format!("  \"{}\": {}\n", c.credential_id, c.outcome));
    }
    if r.remaining.is_empty() {
        t.push_str(&format!("{} has no MFA device left\n", r.user));
    } else {
        t.push_str(&format!("still listed: {}\n", r.remaining.join(", ")));
    }
    t
}

// ---- enroll user --backup ---------------------------------------------

/// The operator's password for a backup key: `--password-file`, else a
/// prompt on the terminal.
struct Password<'g>(&'g GlobalOpts);

impl Unlocker for Password<'_> {
    fn unlock(&mut self, s: &mut OathSession<'_>, serial: Option<u32>) -> Result<(), Failure> {
        session::unlock(s, serial, self.0)
    }
}

/// After the first key: the backup key, then both reports (or an error
/// that says the first key is enrolled).
pub(super) async fn backup(
    a: &EnrollUserArgs,
    opts: &EnrollOptions,
    first: EnrollReport,
    iam: &Iam,
    g: &GlobalOpts,
    journal: &mut Journal,
    progress: &mut Renderer,
) -> Result<Report, Failure> {
    super::bulk::install_sigint();
    let only = a.backup_reader.clone().or_else(|| g.reader.clone());
    let mut desk = PcscDesk::new(only, &super::bulk::STOP)?;
    let mut pw = Password(g);
    let b = enroll_backup(iam, &mut desk, &first, opts, &mut pw, journal, progress).await?;
    let text = format!(
        "{}\n{}",
        super::enroll::enrolled_text(&first),
        super::enroll::enrolled_text(&b).replacen("enrolled", "backup:", 1)
    );
    Ok(Report::new(json!({ "enrolled": first, "backup": b }), text))
}

// ---- recover ----------------------------------------------------------

/// `mfakey recover`: the enrollment journal as ever, then the lifecycle
/// journal's enrollments (`FILE.enroll`) and its unfinished runs.
pub(super) fn run_recover(a: &RecoverArgs, g: &GlobalOpts, out: Output) -> Result<Report, Failure> {
    let lpath = lifecycle_path(&a.lifecycle_journal);
    let mut parts = vec![super::enroll::run_recover(a, g, out)];
    let epath = ljournal::enroll_path(&lpath);
    if epath.exists() {
        let sub = RecoverArgs {
            journal: Some(epath),
            ..a.clone()
        };
        let r = super::enroll::run_recover(&sub, g, out);
        parts.push(r.map(|r| Report::new(json!({ "lifecycle_enrollments": r.json }), r.text)));
    }
    let lines: Vec<Line> = journal::read_lines(&lpath)?;
    let runs = ljournal::unfinished(&lines);
    if !runs.is_empty() {
        parts.push(recover_lifecycle(a, g, &lpath, runs));
    }
    merge(parts)
}

fn recover_lifecycle(
    a: &RecoverArgs,
    g: &GlobalOpts,
    path: &Path,
    runs: Vec<Vec<Line>>,
) -> Result<Report, Failure> {
    let mut journal = Journal::open(path, Lock::Exclusive)?;
    let mut progress = Renderer::notices(g.verbose > 0);
    let results = runtime()?.block_on(async {
        let mut results = Vec::new();
        for run in &runs {
            let (vias, key_serial) = recover::needs(run);
            let iams = clients(&a.aws, vias).await?;
            let accounts = reach(&iams).await?;
            let mut key = key_serial.and_then(|s| {
                let pcsc = Pcsc::establish().ok()?;
                let sel = Selector {
                    reader: g.reader.clone(),
                    serial: Some(s),
                };
                session::open_with(&pcsc, g, &sel, Access::Exclusive).ok()
            });
            let mut s = match key.as_mut() {
                Some(k) => Some(session::oath(k, g)?),
                None => None,
            };
            results.push(
                recover::recover_run(&accounts, run, s.as_mut(), &mut journal, &mut progress)
                    .await?,
            );
        }
        Ok::<_, Failure>(results)
    })?;
    let mut text = String::new();
    for r in &results {
        let how = match r.outcome {
            Outcome::Finished => "finished",
            _ => "INCOMPLETE",
        };
        text.push_str(&format!("{} run {}: {how}\n", r.op.name(), r.run));
        for x in &r.actions {
            text.push_str(&format!("  done: {x}\n"));
        }
        for x in &r.remaining {
            text.push_str(&format!("  left: {x}\n"));
        }
    }
    let report = Report::new(
        json!({ "lifecycle": { "journal": path.display().to_string(), "runs": results } }),
        text,
    );
    if results.iter().any(|r| r.outcome != Outcome::Finished) {
        return Err(Failure::new(
            Kind::RollbackIncomplete,
            format!(
                "some lifecycle runs could not be finished yet:\n{}",
                report.text.trim_end()
            ),
        ));
    }
    Ok(report)
}

/// One report of several: their JSON merged, their texts one after the
/// other; the first failure's kind when any failed.
fn merge(parts: Vec<Result<Report, Failure>>) -> Result<Report, Failure> {
    let mut json = serde_json::Map::new();
    let mut text = String::new();
    let mut failure: Option<Failure> = None;
    for p in parts {
        match p {
            Ok(r) => {
                if let Some(o) = r.json.as_object() {
                    for (k, v) in o {
                        json.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                text.push_str(r.text.trim_end());
                text.push('\n');
            }
            Err(f) => match &mut failure {
                None => failure = Some(f),
                Some(first) => first.message = format!("{}\n{}", first.message, f.message),
            },
        }
    }
    match failure {
        None => Ok(Report::new(serde_json::Value::Object(json), text)),
        Some(mut f) => {
            if !text.trim().is_empty() {
                f.message = format!("{}\n{}", f.message, text.trim_end());
            }
            Err(f)
        }
    }
}
