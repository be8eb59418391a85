//! `mfakey enroll root` and `mfakey enroll console`: the operator copies the
//! secret the AWS console shows; mfakey writes it to the key, checks it,
//! shows the two codes to type back, and optionally waits for AWS to show
//! the result.

use super::error::{exit, CliError};
use super::input::{self, Source};
use super::output::{Output, Report};
use super::session::{open_key, unlock};
use super::GlobalOpts;
use crate::aws::{self, AwsOptions, IamApi};
use crate::console::{self, ConsoleCodes, ConsoleError, ConsoleTarget, Verification, Written};
use crate::credential::unix_now;
use crate::oath::OathSession;
use crate::secret::SecretBytes;
use crate::transport::pcsc::Access;
use clap::Args;
use serde_json::json;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// How often IAM is asked while waiting.
const POLL: Duration = Duration::from_secs(2);

#[derive(Args, Debug)]
pub struct ConsoleOpts {
    /// Account label after `@` in the credential id (default with --verify:
    /// the account alias, else the account id)
    #[arg(long, value_name = "ALIAS")]
    pub account_label: Option<String>,
    /// Require a touch for every code
    #[arg(long, overrides_with = "no_touch")]
    pub touch: bool,
    /// No touch needed for codes
    #[arg(long, overrides_with = "touch")]
    pub no_touch: bool,
    /// Read the secret from stdin (default: a no-echo prompt)
    #[arg(long)]
    pub secret_stdin: bool,
    /// Overwrite a credential with the same id on the key
    #[arg(long)]
    pub force: bool,
    /// Check in IAM that the console step took (IAM credentials of the same
    /// account, from the SDK's usual chain)
    #[arg(long)]
    pub verify: bool,
    /// Like --verify, with this AWS profile
    #[arg(long, value_name = "P")]
    pub verify_profile: Option<String>,
    /// AWS region for --verify
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// IAM endpoint URL for --verify
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Seconds to wait for AWS to show the new MFA (with --verify)
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub wait: u64,
}

#[derive(Args, Debug)]
pub struct RootArgs {
    #[command(flatten)]
    pub opts: ConsoleOpts,
}

#[derive(Args, Debug)]
pub struct ConsoleUserArgs {
    /// The IAM user enrolling in the console (the name in the credential id)
    #[arg(long, value_name = "LABEL")]
    pub name: String,
    #[command(flatten)]
    pub opts: ConsoleOpts,
}

pub fn run_root(a: &RootArgs, g: &GlobalOpts, out: Output) -> Result<Report, CliError> {
    // Root's MFA guards the whole account: touch is on unless refused.
    let touch = !a.opts.no_touch;
    run(ConsoleTarget::Root, &a.opts, touch, g, out)
}

pub fn run_user(a: &ConsoleUserArgs, g: &GlobalOpts, out: Output) -> Result<Report, CliError> {
    let touch = a.opts.touch && !a.opts.no_touch;
    run(ConsoleTarget::User(a.name.clone()), &a.opts, touch, g, out)
}

fn run(
    target: ConsoleTarget,
    o: &ConsoleOpts,
    touch: bool,
    g: &GlobalOpts,
    out: Output,
) -> Result<Report, CliError> {
    let interactive = !g.json
        && !o.secret_stdin
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal();
    let rt = super::enroll::runtime()?;
    let verify = o.verify || o.verify_profile.is_some();
    let iam = if verify {
        let opts = AwsOptions {
            profile: o.verify_profile.clone(),
            region: o.region.clone(),
            endpoint_url: o.endpoint_url.clone(),
        };
        Some(rt.block_on(aws::load(&opts))?)
    } else {
        None
    };
    let (label, account_id) = match (&o.account_label, &iam) {
        (Some(l), None) => (l.clone(), None),
        (l, Some(iam)) => rt.block_on(account_label(iam, &target, l.clone()))?,
        (None, None) => {
            return Err(CliError::usage(
                "pass --account-label ALIAS (the name after @ in the key's credential id), \
                 or --verify so mfakey reads the account alias from IAM",
            ))
        }
    };
    let id = target.credential_id(&label, account_id.as_deref())?;
    let baseline = match &iam {
        Some(iam) => Some(rt.block_on(console::baseline(iam, &target))?),
        None => None,
    };

    // The key first: no secret is asked for when it cannot take it.
    let mut key = open_key(g, Access::Exclusive)?;
    let serial = key.info.serial;
    let capacity = key.info.oath_capacity();
    let mut session = OathSession::select(&mut key.transport)?;
    unlock(&mut session, g)?;
    console::check_key(&mut session, capacity, &id, o.force)?;

    out.notice("In the AWS console:");
    for (i, step) in target.console_steps().iter().enumerate() {
        out.notice(&format!("  {}. {step}", i + 1));
    }
    out.notice(&format!(
        "mfakey writes it to the key as \"{}\"{}.",
        id.to_id_string(),
        if touch { " (touch required)" } else { "" }
    ));
    let seed = if o.secret_stdin {
        input::seed(Source::Stdin)?
    } else {
        input::seed(Source::Prompt("Secret key from the console (not shown): "))?
    };

    let mut on_touch = |n, of| out.notice(&format!("Touch your YubiKey ({n} of {of})..."));
    let (written, first) = match console::write(&mut session, &id, &seed, touch, &mut on_touch) {
        Ok(w) => w,
        Err(f) => {
            return Err(fail_before_confirm(
                &mut session,
                f.credential.as_deref(),
                f.error,
                interactive,
                None,
                out,
            ))
        }
    };
    out.notice("Written and checked: the key's codes are the secret's codes.");

    let codes = if interactive {
        let lines = stdin_lines();
        match confirm_loop(&mut session, &written, &seed, first, &lines, out) {
            Ok(c) => c,
            Err(e) => {
                return Err(fail_before_confirm(
                    &mut session,
                    Some(&written.credential.raw_id),
                    e,
                    true,
                    Some(&lines),
                    out,
                ))
            }
        }
    } else {
        out.notice(&codes_line(&first));
        first
    };
    drop(seed);

    let verification = match (&iam, &baseline) {
        (Some(iam), Some(b)) => {
            out.notice(&format!("Waiting up to {} s for AWS to show it...", o.wait));
            let mut on_wait = |el: Duration, to: Duration| {
                out.notice(&format!(
                    "  not yet ({} s of {} s)",
                    el.as_secs(),
                    to.as_secs()
                ))
            };
            let v = rt.block_on(console::wait_verified(
                iam,
                b,
                Duration::from_secs(o.wait),
                POLL,
                &mut on_wait,
            ));
            Some(v.map_err(|e| {
                let mut err = CliError::from(e);
                err.message.push_str(&format!(
                    " (to take it off the key if the console step was abandoned: mfakey oath delete \"{}\")",
                    id.to_id_string()
                ));
                err
            })?)
        }
        _ => None,
    };

    let who = match &target {
        ConsoleTarget::Root => "root".to_string(),
        ConsoleTarget::User(n) => format!("user {n}"),
    };
    let mut text = format!(
        "{who}: \"{}\" on key {}{}\n  codes    {} {} ({} s left when read)",
        id.to_id_string(),
        serial.map_or("(serial unknown)".into(), |s| s.to_string()),
        if touch { " (touch)" } else { "" },
        codes.code1,
        codes.code2,
        codes.seconds_left,
    );
    text.push_str(&match &verification {
        None => {
            "\n  verified not checked (pass --verify with IAM credentials of the account)".into()
        }
        Some(Verification::RootMfaEnabled { .. }) => {
            "\n  verified AccountMFAEnabled is 1".to_string()
        }
        Some(Verification::RootAlreadyEnabled) => {
            "\n  verified cannot tell: root already had MFA before (AccountMFAEnabled was 1)"
                .to_string()
        }
        Some(Verification::UserDevice { serial, .. }) => format!("\n  verified {serial}"),
    });
    let (kind, user) = match &target {
        ConsoleTarget::Root => ("root", None),
        ConsoleTarget::User(n) => ("user", Some(n.clone())),
    };
    Ok(Report::new(
        json!({ "console": {
            "target": kind,
            "user": user,
            "credential_id": id.to_id_string(),
            "key_serial": serial,
            "touch": touch,
            "codes": codes,
            "verification": verification,
        }}),
        text,
    ))
}

/// The label (given, else the alias, else the account id) and the account
/// id when IAM tells it (GetUser fails for roles and SSO: then it is unknown).
async fn account_label<I: IamApi>(
    iam: &I,
    target: &ConsoleTarget,
    given: Option<String>,
) -> Result<(String, Option<String>), CliError> {
    let name = match target {
        ConsoleTarget::Root => "",
        ConsoleTarget::User(n) => n.as_str(),
    };
    let account_id = match iam.get_user(name).await {
        Ok(u) if !u.account_id.is_empty() => Some(u.account_id),
        _ => None,
    };
    let label = match given {
        Some(l) => Some(l),
        None => iam.account_alias().await?,
    };
    match label.or_else(|| account_id.clone()) {
        Some(l) => Ok((l, account_id)),
        None => Err(CliError::usage(
            "the account has no alias and its id could not be read (GetUser): pass --account-label",
        )),
    }
}

fn codes_line(c: &ConsoleCodes) -> String {
    format!(
        "MFA code 1: {}   MFA code 2: {}   ({} s left)",
        c.code1, c.code2, c.seconds_left
    )
}

/// Lines typed on stdin, read by a thread so the codes can refresh meanwhile.
fn stdin_lines() -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    rx
}

/// Shows the codes with the seconds left, refreshing them as the window
/// rolls (a touch credential refreshes on `r`, since each read needs
/// touches), until the operator presses Enter.
fn confirm_loop(
    session: &mut OathSession<'_>,
    written: &Written,
    seed: &SecretBytes,
    first: ConsoleCodes,
    lines: &Receiver<String>,
    out: Output,
) -> Result<ConsoleCodes, ConsoleError> {
    let mut codes = first;
    out.notice(if written.touch {
        "Type both codes into the console, then press Enter here (r + Enter: new codes, two touches)."
    } else {
        "Type both codes into the console, then press Enter here (the codes refresh as the window rolls)."
    });
    loop {
        let now = unix_now();
        let left = console::seconds_left(codes.step, now);
        let expired = left == 0;
        let status = if expired {
            "expired: r + Enter for new ones".to_string()
        } else {
            format!("{left:2} s left")
        };
        eprint!(
            "\r  MFA code 1: {}   MFA code 2: {}   ({status})   ",
            codes.code1, codes.code2
        );
        let _ = std::io::stderr().flush();
        let refresh = match lines.recv_timeout(Duration::from_millis(500)) {
            Ok(l) if l.trim().eq_ignore_ascii_case("r") => true,
            Ok(_) => {
                eprintln!();
                return Ok(codes);
            }
            Err(RecvTimeoutError::Timeout) => expired && !written.touch,
            Err(RecvTimeoutError::Disconnected) => {
                eprintln!();
                return Ok(codes);
            }
        };
        if refresh {
            eprintln!();
            let mut on_touch = |n, of| out.notice(&format!("Touch your YubiKey ({n} of {of})..."));
            codes = console::codes_now(session, written, seed, &mut on_touch)?;
        }
    }
}

/// A failure before the operator confirmed: in a terminal, offer to delete
/// the credential; otherwise delete it. The error says what became of it.
fn fail_before_confirm(
    session: &mut OathSession<'_>,
    credential: Option<&[u8]>,
    error: ConsoleError,
    interactive: bool,
    lines: Option<&Receiver<String>>,
    out: Output,
) -> CliError {
    let mut err = CliError::from(error);
    let Some(raw) = credential else {
        return err;
    };
    let id = String::from_utf8_lossy(raw).into_owned();
    let delete = if interactive {
        out.notice(&format!("Delete \"{id}\" from the key? [Y/n]"));
        let answer = match lines {
            Some(rx) => rx.recv().unwrap_or_default(),
            None => {
                let mut l = String::new();
                let _ = std::io::stdin().lock().read_line(&mut l);
                l
            }
        };
        !answer.trim().to_ascii_lowercase().starts_with('n')
    } else {
        true
    };
    let note = if !delete {
        format!("; \"{id}\" was left on the key (mfakey oath delete \"{id}\" removes it)")
    } else {
        match crate::credential::remove_credential(session, raw) {
            Ok(_) => format!("; \"{id}\" was deleted from the key"),
            Err(e) => format!(
                "; \"{id}\" may be left on the key, deleting it failed ({e}): mfakey oath delete \"{id}\""
            ),
        }
    };
    err.message.push_str(&note);
    err
}

impl From<ConsoleError> for CliError {
    fn from(e: ConsoleError) -> Self {
        let message = e.to_string();
        let (kind, code) = match &e {
            ConsoleError::Invalid { .. } => ("invalid_argument", exit::USAGE),
            ConsoleError::CredentialExists { .. } => ("credential_exists", exit::REFUSED),
            ConsoleError::KeyFull { .. } => ("key_full", exit::REFUSED),
            ConsoleError::CheckFailed => ("check_failed", exit::OTHER),
            ConsoleError::NotVerified { .. } => ("not_verified", exit::AWS),
            ConsoleError::Oath(o) => super::error::oath_kind(o),
            ConsoleError::Aws(a) => (super::enroll::aws_kind(a), exit::AWS),
        };
        CliError::new(kind, code, message)
    }
}
