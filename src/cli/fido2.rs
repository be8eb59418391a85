//! `mfakey fido2 …`: the key's FIDO2 side over USB HID (info, PIN,
//! passkeys), and `register`, which guides the console registration of a
//! security key and waits for AWS to show it.

use super::fido2_keys::{self, FidoKey};
use super::input::{self, Source};
use super::render::{one_line, Output, Renderer, Report};
use super::session::open_key;
use super::GlobalOpts;
use crate::aws::{self, AwsOptions};
use crate::console::security_key::{self, KeyOwner};
use crate::error::Classify;
use crate::error::{Failure, Kind};
use crate::fido2::hid::{Found, HidDevice, LibraryNotes};
use crate::fido2::{usb, Fido2Error};
use crate::manage::fido2 as ops;
use crate::management::Capabilities;
use crate::secret::SecretString;
use crate::transport::pcsc::Access;
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum Fido2Cmd {
    /// The FIDO key's getInfo: versions, AAGUID, options, PIN retries, room for passkeys
    Info,
    /// Set or change the FIDO2 PIN
    #[command(subcommand)]
    Pin(PinCmd),
    /// List or delete passkeys (discoverable credentials; PIN required)
    #[command(subcommand)]
    Credentials(CredCmd),
    /// Guide the console registration of this key for a user (or root) and
    /// wait for AWS to show it
    Register(RegisterArgs),
    /// Reset the key's FIDO2 side: every passkey and the FIDO2 PIN are deleted
    /// (the OATH codes stay). Asks first; the key must be re-inserted and touched
    Reset(ResetArgs),
}

#[derive(Args, Debug)]
pub struct ResetArgs {
    /// Do not ask (needed without a terminal)
    #[arg(long)]
    pub yes: bool,
    /// Seconds to wait for the key to be removed and inserted again
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub wait: u64,
}

#[derive(Subcommand, Debug)]
pub enum PinCmd {
    /// Set the first PIN
    Set {
        /// File holding the new PIN (first line); default: asked twice
        #[arg(long, value_name = "FILE")]
        new_pin_file: Option<PathBuf>,
    },
    /// Change the PIN
    Change {
        /// File holding the current PIN (first line); default: asked
        #[arg(long, value_name = "FILE")]
        pin_file: Option<PathBuf>,
        /// File holding the new PIN (first line); default: asked twice
        #[arg(long, value_name = "FILE")]
        new_pin_file: Option<PathBuf>,
        /// Send the PIN from --pin-file even when the key has one try left
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CredCmd {
    /// List the passkeys
    List {
        /// File holding the PIN (first line); default: asked
        #[arg(long, value_name = "FILE")]
        pin_file: Option<PathBuf>,
        /// Send the PIN from --pin-file even when the key has one try left
        #[arg(long)]
        force: bool,
    },
    /// Delete one passkey by its credential id (hex, from `list`)
    Delete {
        /// The passkey's credential id: hex, as `credentials list` shows it (any case)
        #[arg(value_name = "CREDENTIAL_ID")]
        credential_id: String,
        /// File holding the PIN (first line); default: asked
        #[arg(long, value_name = "FILE")]
        pin_file: Option<PathBuf>,
        /// Send the PIN from --pin-file even when the key has one try left
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args, Debug)]
#[group(id = "owner", required = true, multiple = false)]
pub struct RegisterArgs {
    /// The IAM user who registers the key in the console
    #[arg(long, value_name = "NAME", group = "owner")]
    pub user: Option<String>,
    /// The root user (the credentials used must be root's own)
    #[arg(long, group = "owner")]
    pub root: bool,
    /// Seconds to wait for AWS to show the new security key
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub wait: u64,
    #[command(flatten)]
    pub aws: AwsOptions,
}

const POLL: Duration = Duration::from_secs(3);

pub(super) fn run(cmd: &Fido2Cmd, g: &GlobalOpts, out: Output) -> Result<Report, Failure> {
    match cmd {
        Fido2Cmd::Info => info(g),
        Fido2Cmd::Pin(PinCmd::Set { new_pin_file }) => {
            let (mut dev, _) = open_device(g)?;
            let info = ops::describe(&mut dev)?;
            let new_pin = input::new_pin(new_pin_file.as_deref())?;
            ops::set_pin(&mut dev, &info, &new_pin)?;
            Ok(Report::new(json!({ "pin": "set" }), "FIDO2 PIN set"))
        }
        Fido2Cmd::Pin(PinCmd::Change {
            pin_file,
            new_pin_file,
            force,
        }) => {
            // What files hold is checked before the key is touched.
            let from_file = file_pin(pin_file)?;
            let (mut dev, _) = open_device(g)?;
            let info = ops::describe(&mut dev)?;
            let current = prompted_pin(from_file)?;
            let new_pin = input::new_pin(new_pin_file.as_deref())?;
            let last_try = last_try(pin_file, *force);
            ops::change_pin(&mut dev, &info, &current, &new_pin, last_try)?;
            Ok(Report::new(
                json!({ "pin": "changed" }),
                "FIDO2 PIN changed",
            ))
        }
        Fido2Cmd::Credentials(CredCmd::List { pin_file, force }) => {
            let from_file = file_pin(pin_file)?;
            let (mut dev, _) = open_device(g)?;
            let info = ops::describe(&mut dev)?;
            let pin = prompted_pin(from_file)?;
            let creds = ops::list_credentials(&mut dev, &info, &pin, last_try(pin_file, *force))?;
            let mut text = String::new();
            for c in &creds {
                text.push_str(&format!(
                    "{}  {}  {}\n",
                    one_line(&c.rp_id),
                    one_line(&c.user_name),
                    c.credential_id
                ));
            }
            if creds.is_empty() {
                text.push_str("no passkeys on the key\n");
            }
            Ok(Report::new(json!({ "credentials": creds }), text))
        }
        Fido2Cmd::Credentials(CredCmd::Delete {
            credential_id,
            pin_file,
            force,
        }) => {
            let id = ops::credential_id(credential_id)?;
            let from_file = file_pin(pin_file)?;
            let (mut dev, _) = open_device(g)?;
            let info = ops::describe(&mut dev)?;
            let pin = prompted_pin(from_file)?;
            let last_try = last_try(pin_file, *force);
            let gone = ops::delete_credential(&mut dev, &info, &pin, &id, last_try)?;
            let text = format!(
                "deleted the passkey for {} at {}",
                one_line(&gone.user_name),
                one_line(&gone.rp_id)
            );
            Ok(Report::new(json!({ "deleted": gone }), text))
        }
        Fido2Cmd::Register(a) => register(a, g, out),
        Fido2Cmd::Reset(a) => reset(a, g, out),
    }
}

/// The FIDO key over HID the options name (`--serial`, `--reader`, or the
/// only one), opened, with its serial. When there is none, a key seen over
/// PC/SC tells more: FIDO2 disabled on it means it cannot hold a passkey.
fn open_device(g: &GlobalOpts) -> Result<(HidDevice, FidoKey), Failure> {
    match fido2_keys::one(g, notes(g)) {
        Ok(k) => Ok((HidDevice::open_found(&k.found, notes(g))?, k)),
        Err(f) => Err(explain_missing(g, f)),
    }
}

/// No FIDO key (or no permission on any): what PC/SC sees of the key tells
/// why. Other failures are said as they are.
fn explain_missing(g: &GlobalOpts, f: Failure) -> Failure {
    let e = match HidDevice::find_all(notes(g)) {
        Err(e @ (Fido2Error::NoKey | Fido2Error::NoPermission { .. })) => e,
        _ => return f,
    };
    let Ok(key) = open_key(g, Access::Shared) else {
        return e.into();
    };
    let serial = key
        .info
        .serial
        .map_or("(serial unknown)".into(), |s| s.to_string());
    if !key.info.enabled(Capabilities::FIDO2) {
        let e = Fido2Error::NotFido2;
        return Failure::new(e.kind(), format!("key {serial}: {e}"));
    }
    let why = format!("key {serial} is seen over PC/SC with FIDO2 enabled, but not over HID");
    Failure::new(e.kind(), format!("{e} ({why})"))
}

/// The HID library's own prints: to stderr with `-v`, else dropped.
fn notes(g: &GlobalOpts) -> LibraryNotes {
    if g.verbose > 0 {
        LibraryNotes::Stderr
    } else {
        LibraryNotes::Discard
    }
}

/// The PIN from `--pin-file`, checked (not empty, at most 63 bytes)
/// before the key is touched; `None` without the flag.
fn file_pin(file: &Option<PathBuf>) -> Result<Option<SecretString>, Failure> {
    let Some(p) = file else {
        return Ok(None);
    };
    let pin = input::pin(Source::File(p))?;
    ops::check_pin(&pin)?;
    Ok(Some(pin))
}

/// The PIN read from the file, else asked now (once the key is known to
/// want one), checked before it is sent.
fn prompted_pin(from_file: Option<SecretString>) -> Result<SecretString, Failure> {
    if let Some(pin) = from_file {
        return Ok(pin);
    }
    let pin = input::pin(Source::Prompt("FIDO2 PIN: "))?;
    ops::check_pin(&pin)?;
    Ok(pin)
}

/// A PIN from a file goes out on the key's last try only with --force.
fn last_try(file: &Option<PathBuf>, force: bool) -> ops::LastTry {
    if file.is_some() && !force {
        ops::LastTry::Refuse
    } else {
        ops::LastTry::Allow
    }
}

fn info(g: &GlobalOpts) -> Result<Report, Failure> {
    let keys = match fido2_keys::all(notes(g)) {
        Ok(k) => k,
        // Explained with what PC/SC sees (FIDO2 disabled, …).
        Err(e) => return Err(explain_missing(g, e.into())),
    };
    let mut rows = Vec::new();
    let mut text = Vec::new();
    for k in &keys {
        let product = &k.found.product;
        match HidDevice::open_found(&k.found, notes(g)).and_then(|mut d| ops::describe(&mut d)) {
            Ok(info) => {
                text.push(info_text(product, &info, k.serial));
                rows.push(json!({ "product": product, "fido2": info, "key_serial": k.serial }));
            }
            // One key's failure is said alone, unless it is the only key.
            Err(e) if keys.len() == 1 => return Err(e.into()),
            Err(e) => {
                let err = Failure::from(e);
                text.push(format!("{product}: {}", err.message));
                rows.push(json!({ "product": product, "key_serial": k.serial, "error": { "kind": err.kind.name(), "message": err.message } }));
            }
        }
    }
    Ok(Report::new(json!({ "keys": rows }), text.join("\n\n")))
}

fn info_text(product: &str, info: &crate::fido2::Fido2Info, serial: Option<u32>) -> String {
    format!(
        "{product}\nversions   {}\naaguid     {}\nfirmware   {}\nserial     {}\nPIN        {}\nrk {}  credMgmt {}  alwaysUv {}\npasskeys   {} more\nprotocols  {:?}",
        info.versions.join(" "),
        info.aaguid,
        info.firmware.as_deref().unwrap_or("(not reported)"),
        serial.map_or("(not seen over PC/SC)".into(), |s| s.to_string()),
        match (info.options.client_pin, info.pin_retries) {
            (Some(true), Some(n)) => format!("set, {n} retries left (min length {})", info.min_pin_length),
            (Some(true), None) => "set".to_string(),
            (Some(false), _) => format!("not set (min length {})", info.min_pin_length),
            (None, _) => "not supported".to_string(),
        },
        info.options.rk,
        info.options.cred_mgmt,
        info.options.always_uv.map_or("-".into(), |b| b.to_string()),
        info.remaining_discoverable_credentials
            .map_or("(not reported)".into(), |n| n.to_string()),
        info.pin_uv_auth_protocols,
    )
}

fn register(a: &RegisterArgs, g: &GlobalOpts, out: Output) -> Result<Report, Failure> {
    let owner = match &a.user {
        Some(u) => KeyOwner::User(u.clone()),
        None => KeyOwner::Caller,
    };
    // The key first: FIDO2, and a PIN (AWS asks for it when the key has one;
    // keys without a PIN hold no passkey safely).
    let (mut dev, key) = open_device(g)?;
    let info = ops::describe(&mut dev)?;
    let interactive = !g.json && std::io::stdin().is_terminal();
    let mut ask = || {
        if !interactive {
            return Err(Fido2Error::PinNotSet.into());
        }
        out.notice("The key has no FIDO2 PIN yet: set one now.");
        input::new_pin(None)
    };
    let info = security_key::ensure_pin(&mut dev, info, &mut ask)?;
    let serial = key.serial;
    let mut progress = Renderer::notices(g.verbose > 0);
    let wait = Duration::from_secs(a.wait);
    let mut show = |steps: &[String]| {
        for s in steps {
            out.notice(s);
        }
        out.notice(&format!(
            "Waiting up to {} s for AWS to show the new security key...",
            a.wait
        ));
    };
    let done = super::enroll::runtime()?.block_on(async {
        let iam = aws::load(&a.aws).await?;
        Ok::<_, Failure>(
            security_key::register(&iam, &owner, wait, POLL, &mut show, &mut progress).await?,
        )
    })?;
    let arn = &done.device_serial;
    let text = format!(
        "registered {arn}\n  key serial {}\n  aaguid     {}\n  certified  {}",
        serial.map_or("(not seen over PC/SC)".into(), |s| s.to_string()),
        info.aaguid,
        match &done.certifications {
            Ok(c) if c.is_empty() => "(none reported)".to_string(),
            Ok(c) => c
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("(GetMFADevice not available: {e})"),
        }
    );
    let certs_json = done.certifications.clone().ok().map(|c| {
        c.into_iter()
            .collect::<std::collections::BTreeMap<String, String>>()
    });
    Ok(Report::new(
        json!({ "registered": {
            "device_serial": arn,
            "user": a.user,
            "root": a.root,
            "key_serial": serial,
            "aaguid": info.aaguid,
            "certifications": certs_json,
        }}),
        text,
    ))
}

/// `fido2 reset`: asks, waits for the key to be re-inserted (a key takes a
/// reset only within seconds of its insertion), then resets it at once.
fn reset(a: &ResetArgs, g: &GlobalOpts, out: Output) -> Result<Report, Failure> {
    let (mut dev, key) = open_device(g)?;
    let info = ops::describe(&mut dev)?;
    drop(dev);
    let serial = key
        .serial
        .map_or("(serial unknown)".into(), |s| s.to_string());
    let what = format!(
        "the FIDO2 side of key {serial} ({}): every passkey on it and its FIDO2 PIN are deleted (its OATH codes stay)",
        key.found.product
    );
    if !a.yes {
        confirm_reset(out, &what)?;
    }
    out.notice("Remove the key and insert it again now (a key takes a reset only within seconds of being inserted)...");
    let again = reinserted(&key.found, g, Duration::from_secs(a.wait))?;
    let mut dev = HidDevice::open_found(&again, notes(g))?;
    let mut touch = || out.notice("Touch your security key to confirm the reset...");
    ops::reset(&mut dev, &info, &mut touch)?;
    Ok(Report::new(
        json!({ "reset": { "product": again.product, "key_serial": key.serial } }),
        format!("reset {what}"),
    ))
}

/// "Reset?" on the terminal; without one, `--yes` is needed.
fn confirm_reset(out: Output, what: &str) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            Kind::ConfirmationNeeded,
            format!(
                "resetting {what}; no terminal to ask on: nothing was reset; pass --yes to reset"
            ),
        ));
    }
    out.notice(&format!("Reset {what}? [y/N] "));
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    if matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Failure::new(Kind::Declined, "declined: nothing was reset"))
    }
}

/// Waits (bounded) for `key` to leave and a FIDO key to come (back); the
/// key that came. An insertion is told by its kernel HID device (a node
/// name may come back the same).
fn reinserted(key: &Found, g: &GlobalOpts, wait: Duration) -> Result<Found, Failure> {
    let deadline = std::time::Instant::now() + wait;
    let sysfs = std::path::Path::new(fido2_keys::SYSFS);
    let insertion = |f: &Found| {
        let node = f.path().and_then(usb::node_name)?;
        usb::insertion_of(sysfs, node)
    };
    let before: Vec<_> = HidDevice::find_all(notes(g))
        .unwrap_or_default()
        .iter()
        .map(insertion)
        .collect();
    let this = insertion(key);
    loop {
        let now = HidDevice::find_all(notes(g)).unwrap_or_default();
        let here: Vec<_> = now.iter().map(insertion).collect();
        let mut new: Vec<Found> = now
            .into_iter()
            .zip(&here)
            .filter(|(_, i)| i.is_some() && !before.contains(i))
            .map(|(f, _)| f)
            .collect();
        match (here.contains(&this), new.len()) {
            (false, 1) => return Ok(new.remove(0)),
            (false, n) if n > 1 => return Err(Fido2Error::SeveralKeys { count: n }.into()),
            _ => waited(
                deadline,
                a_while(),
                "was not removed and inserted again",
                wait,
            )?,
        }
    }
}

fn a_while() -> Duration {
    Duration::from_millis(50)
}

/// Sleeps `step`, or says the wait for the key is over.
fn waited(
    deadline: std::time::Instant,
    step: Duration,
    what: &str,
    wait: Duration,
) -> Result<(), Failure> {
    if std::time::Instant::now() >= deadline {
        return Err(Failure::new(
            Kind::NoFidoKey,
            format!(
                "the key {what} within {} s: nothing was reset",
                wait.as_secs()
            ),
        ));
    }
    std::thread::sleep(step);
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Every argument of every command says what it is in `--help`.
    #[test]
    fn every_argument_has_help_text() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if a.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::super::Cli::command(), "mfakey", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:#?}");
    }
}
