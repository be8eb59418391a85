//! `mfakey enroll root` and `mfakey enroll console`: the operator copies the
//! secret the AWS console shows; mfakey writes it to the key, checks it,
//! shows the two codes to type back, and optionally waits for AWS to show
//! the result.

use super::input::{self, Source};
use super::render::{Output, Renderer, Report};
use super::session::open_key;
use super::GlobalOpts;
use crate::aws::{self, AwsOptions};
use crate::console::{
    self, ConsoleCodes, ConsoleError, ConsoleOutcome, ConsoleRequest, ConsoleTarget, Operator,
    Verification,
};
use crate::credential::unix_now;
use crate::enroll::KeyTarget;
use crate::error::Failure;
use crate::oath::CredentialId;
use crate::progress::{Event, Progress};
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
    #[arg(long, value_name = "ALIAS", alias = "label-account")]
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
    /// Accept a plain http:// endpoint on another machine for --verify
    #[arg(long)]
    pub allow_insecure_endpoint: bool,
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

pub(super) fn run_root(a: &RootArgs, g: &GlobalOpts, out: Output) -> Result<Report, Failure> {
    // Root's MFA guards the whole account: touch is on unless refused.
    let touch = !a.opts.no_touch;
    run(ConsoleTarget::Root, &a.opts, touch, g, out)
}

pub(super) fn run_user(
    a: &ConsoleUserArgs,
    g: &GlobalOpts,
    out: Output,
) -> Result<Report, Failure> {
    let touch = a.opts.touch && !a.opts.no_touch;
    run(ConsoleTarget::User(a.name.clone()), &a.opts, touch, g, out)
}

fn run(
    target: ConsoleTarget,
    o: &ConsoleOpts,
    touch: bool,
    g: &GlobalOpts,
    out: Output,
) -> Result<Report, Failure> {
    if o.account_label.is_none() && !o.verify && o.verify_profile.is_none() {
        return Err(Failure::usage(
            "pass --account-label ALIAS (the name after @ in the key's credential id), \
             or --verify so mfakey reads the account alias from IAM",
        ));
    }
    let interactive = !g.json
        && !o.secret_stdin
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal();
    let req = ConsoleRequest {
        target: target.clone(),
        account_label: o.account_label.clone(),
        touch,
        force: o.force,
        wait: Duration::from_secs(o.wait),
        poll: POLL,
    };
    let mut operator = Desk {
        out,
        interactive,
        secret_stdin: o.secret_stdin,
        lines: None,
        renderer: Renderer::notices(g.verbose > 0),
    };
    operator.renderer.waiting_for =
        Some(format!("Waiting up to {} s for AWS to show it...", o.wait));
    let rt = super::enroll::runtime()?;
    let done = rt.block_on(async {
        let iam = if o.verify || o.verify_profile.is_some() {
            let opts = AwsOptions {
                profile: o.verify_profile.clone(),
                region: o.region.clone(),
                endpoint_url: o.endpoint_url.clone(),
                allow_insecure_endpoint: o.allow_insecure_endpoint,
            };
            Some(aws::load(&opts).await?)
        } else {
            None
        };
        let mut key = open_key(g, Access::Exclusive)?;
        let (serial, capacity) = (key.info.serial, key.info.oath_capacity());
        let mut session = super::session::oath(&mut key, g)?;
        let target = KeyTarget {
            session: &mut session,
            serial,
            capacity,
        };
        Ok::<_, Failure>(console::run(iam.as_ref(), &req, target, &mut operator).await?)
    })?;
    Ok(console_report(&target, &done))
}

fn console_report(target: &ConsoleTarget, done: &ConsoleOutcome) -> Report {
    let who = match target {
        ConsoleTarget::Root => "root".to_string(),
        ConsoleTarget::User(n) => format!("user {n}"),
    };
    let codes = &done.codes;
    let mut text = format!(
        "{who}: \"{}\" on key {}{}\n  codes    {} {} ({} s left when read)",
        done.credential_id,
        done.key_serial
            .map_or("(serial unknown)".into(), |s| s.to_string()),
        if done.touch { " (touch)" } else { "" },
        codes.code1,
        codes.code2,
        codes.seconds_left,
    );
    text.push_str(&match &done.verification {
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
    let (kind, user) = match target {
        ConsoleTarget::Root => ("root", None),
        ConsoleTarget::User(n) => ("user", Some(n.clone())),
    };
    Report::new(
        json!({ "console": {
            "target": kind,
            "user": user,
            "credential_id": done.credential_id,
            "key_serial": done.key_serial,
            "touch": done.touch,
            "codes": done.codes,
            "verification": done.verification,
        }}),
        text,
    )
}

fn codes_line(c: &ConsoleCodes) -> String {
    format!(
        "MFA code 1: {}   MFA code 2: {}   ({} s left)",
        c.code1, c.code2, c.seconds_left
    )
}

/// The operator at the terminal (or a script on stdin).
struct Desk {
    out: Output,
    interactive: bool,
    secret_stdin: bool,
    /// Lines typed on stdin, read by a thread so the codes can refresh meanwhile.
    lines: Option<Receiver<String>>,
    renderer: Renderer,
}

impl Progress for Desk {
    fn event(&mut self, e: Event) {
        self.renderer.event(e)
    }
}

impl Operator for Desk {
    fn secret(
        &mut self,
        steps: &[String],
        id: &CredentialId,
        touch: bool,
    ) -> Result<SecretBytes, Failure> {
        self.out.notice("In the AWS console:");
        for (i, step) in steps.iter().enumerate() {
            self.out.notice(&format!("  {}. {step}", i + 1));
        }
        self.out.notice(&format!(
            "mfakey writes it to the key as \"{}\"{}.",
            id.to_id_string(),
            if touch { " (touch required)" } else { "" }
        ));
        if self.secret_stdin {
            input::seed(Source::Stdin)
        } else {
            input::seed(Source::Prompt("Secret key from the console (not shown): "))
        }
    }

    fn confirm(
        &mut self,
        first: ConsoleCodes,
        touch: bool,
        fresh: &mut dyn FnMut(&mut dyn Progress) -> Result<ConsoleCodes, ConsoleError>,
    ) -> Result<ConsoleCodes, ConsoleError> {
        self.out
            .notice("Written and checked: the key's codes are the secret's codes.");
        if !self.interactive {
            self.out.notice(&codes_line(&first));
            return Ok(first);
        }
        let lines = self.lines.get_or_insert_with(stdin_lines);
        confirm_loop(first, touch, lines, &mut self.renderer, fresh, self.out)
    }

    fn delete_after_failure(&mut self, id: &str) -> bool {
        if !self.interactive {
            return true;
        }
        self.out
            .notice(&format!("Delete \"{id}\" from the key? [Y/n]"));
        let answer = match &self.lines {
            Some(rx) => rx.recv().unwrap_or_default(),
            None => {
                let mut l = String::new();
                let _ = std::io::stdin().lock().read_line(&mut l);
                l
            }
        };
        !answer.trim().to_ascii_lowercase().starts_with('n')
    }
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
    first: ConsoleCodes,
    touch: bool,
    lines: &Receiver<String>,
    progress: &mut dyn Progress,
    fresh: &mut dyn FnMut(&mut dyn Progress) -> Result<ConsoleCodes, ConsoleError>,
    out: Output,
) -> Result<ConsoleCodes, ConsoleError> {
    let mut codes = first;
    out.notice(if touch {
        "Type both codes into the console, then press Enter here (r + Enter: new codes, two touches)."
    } else {
        "Type both codes into the console, then press Enter here (the codes refresh as the window rolls)."
    });
    loop {
        let left = console::seconds_left(codes.step, unix_now());
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
            Ok(_) | Err(RecvTimeoutError::Disconnected) => {
                eprintln!();
                return Ok(codes);
            }
            Err(RecvTimeoutError::Timeout) => expired && !touch,
        };
        if refresh {
            eprintln!();
            codes = fresh(progress)?;
        }
    }
}
