//! `mfakey fido2 …`: the key's FIDO2 side over USB HID (info, PIN,
//! passkeys), and `register`, which guides the console registration of a
//! security key and waits for AWS to show it.

use super::error::{exit, CliError};
use super::input::{self, Source};
use super::output::{Output, Report};
use super::session::open_key;
use super::GlobalOpts;
use crate::aws::{self, AwsOptions};
use crate::console::security_key::{self, KeyOwner, SecurityKeyError};
use crate::fido2::hid::{HidDevice, LibraryNotes};
use crate::fido2::{ops, Fido2Error};
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
    },
}

#[derive(Subcommand, Debug)]
pub enum CredCmd {
    /// List the passkeys
    List {
        #[arg(long, value_name = "FILE")]
        pin_file: Option<PathBuf>,
    },
    /// Delete one passkey by its credential id (hex, from `list`)
    Delete {
        credential_id: String,
        #[arg(long, value_name = "FILE")]
        pin_file: Option<PathBuf>,
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

pub fn run(cmd: &Fido2Cmd, g: &GlobalOpts, out: Output) -> Result<Report, CliError> {
    match cmd {
        Fido2Cmd::Info => info(g),
        Fido2Cmd::Pin(PinCmd::Set { new_pin_file }) => {
            let mut dev = open_device(g)?;
            let info = ops::describe(&mut dev)?;
            let new_pin = input::new_pin(new_pin_file.as_deref())?;
            ops::set_pin(&mut dev, &info, &new_pin)?;
            Ok(Report::new(json!({ "pin": "set" }), "FIDO2 PIN set"))
        }
        Fido2Cmd::Pin(PinCmd::Change {
            pin_file,
            new_pin_file,
        }) => {
            let mut dev = open_device(g)?;
            let info = ops::describe(&mut dev)?;
            let current = read_pin(pin_file)?;
            let new_pin = input::new_pin(new_pin_file.as_deref())?;
            ops::change_pin(&mut dev, &info, &current, &new_pin)?;
            Ok(Report::new(
                json!({ "pin": "changed" }),
                "FIDO2 PIN changed",
            ))
        }
        Fido2Cmd::Credentials(CredCmd::List { pin_file }) => {
            let mut dev = open_device(g)?;
            let info = ops::describe(&mut dev)?;
            let pin = read_pin(pin_file)?;
            let creds = ops::list_credentials(&mut dev, &info, &pin)?;
            let mut text = String::new();
            for c in &creds {
                text.push_str(&format!(
                    "{}  {}  {}\n",
                    c.rp_id, c.user_name, c.credential_id
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
        }) => {
            let mut dev = open_device(g)?;
            let info = ops::describe(&mut dev)?;
            let pin = read_pin(pin_file)?;
            let gone = ops::delete_credential(&mut dev, &info, &pin, credential_id)?;
            let text = format!(
                "deleted the passkey for {} at {}",
                gone.user_name, gone.rp_id
            );
            Ok(Report::new(json!({ "deleted": gone }), text))
        }
        Fido2Cmd::Register(a) => register(a, g, out),
    }
}

/// The FIDO key over HID. When there is none, a key seen over PC/SC tells
/// more: FIDO2 disabled on it means it cannot hold a passkey.
fn open_device(g: &GlobalOpts) -> Result<HidDevice, CliError> {
    match HidDevice::open(notes(g)) {
        Ok(d) => Ok(d),
        Err(e @ (Fido2Error::NoKey | Fido2Error::NoPermission { .. })) => {
            let Ok(key) = open_key(g, Access::Shared) else {
                return Err(e.into());
            };
            if !key.info.enabled(Capabilities::FIDO2) {
                let mut err = CliError::from(Fido2Error::NotFido2);
                if let Some(s) = key.info.serial {
                    err.message = format!("key {s}: {}", err.message);
                }
                return Err(err);
            }
            let mut err = CliError::from(e);
            err.message.push_str(&format!(
                " (key {} is seen over PC/SC with FIDO2 enabled, but not over HID)",
                key.info
                    .serial
                    .map_or("(serial unknown)".into(), |s| s.to_string())
            ));
            Err(err)
        }
        Err(e) => Err(e.into()),
    }
}

/// The HID library's own prints: to stderr with `-v`, else dropped.
fn notes(g: &GlobalOpts) -> LibraryNotes {
    if g.verbose > 0 {
        LibraryNotes::Stderr
    } else {
        LibraryNotes::Discard
    }
}

fn read_pin(file: &Option<PathBuf>) -> Result<SecretString, CliError> {
    match file {
        Some(p) => input::pin(Source::File(p)),
        None => input::pin(Source::Prompt("FIDO2 PIN: ")),
    }
}

/// The serial of the key, when the same key is seen over PC/SC (one key,
/// or the one `--serial`/`--reader` names).
fn pcsc_serial(g: &GlobalOpts) -> Option<u32> {
    open_key(g, Access::Shared).ok().and_then(|k| k.info.serial)
}

fn info(g: &GlobalOpts) -> Result<Report, CliError> {
    let found = match HidDevice::find_all(notes(g)) {
        Ok(f) => f,
        Err(e) => {
            // Explained with what PC/SC sees (FIDO2 disabled, …).
            open_device(g)?;
            return Err(e.into());
        }
    };
    if found.len() == 1 {
        let mut dev = HidDevice::open_found(&found[0], notes(g))?;
        let info = ops::describe(&mut dev)?;
        let serial = pcsc_serial(g);
        let text = info_text(&found[0].product, &info, serial);
        return Ok(Report::new(
            json!({ "keys": [{ "product": found[0].product, "fido2": info, "key_serial": serial }] }),
            text,
        ));
    }
    // Several keys: each one's answer (a serial cannot be matched to one).
    let mut rows = Vec::new();
    let mut text = String::new();
    for f in &found {
        match HidDevice::open_found(f, notes(g)).and_then(|mut d| ops::describe(&mut d)) {
            Ok(info) => {
                text.push_str(&info_text(&f.product, &info, None));
                text.push_str("\n\n");
                rows.push(json!({ "product": f.product, "fido2": info, "key_serial": null }));
            }
            Err(e) => {
                let err = CliError::from(e);
                text.push_str(&format!("{}: {}\n\n", f.product, err.message));
                rows.push(json!({ "product": f.product, "error": { "kind": err.kind, "message": err.message } }));
            }
        }
    }
    Ok(Report::new(json!({ "keys": rows }), text))
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

fn register(a: &RegisterArgs, g: &GlobalOpts, out: Output) -> Result<Report, CliError> {
    let owner = match &a.user {
        Some(u) => KeyOwner::User(u.clone()),
        None => KeyOwner::Caller,
    };
    // The key first: FIDO2, and a PIN (AWS asks for it when the key has one;
    // keys without a PIN hold no passkey safely).
    let mut dev = open_device(g)?;
    let mut info = ops::describe(&mut dev)?;
    if info.options.client_pin == Some(false) {
        let interactive = !g.json && std::io::stdin().is_terminal();
        if !interactive {
            return Err(Fido2Error::PinNotSet.into());
        }
        out.notice("The key has no FIDO2 PIN yet: set one now.");
        let new_pin = input::new_pin(None)?;
        ops::set_pin(&mut dev, &info, &new_pin)?;
        info = ops::describe(&mut dev)?;
    }
    let serial = pcsc_serial(g);
    let rt = super::enroll::runtime()?;
    rt.block_on(async {
        let iam = aws::load(&a.aws).await?;
        let before = security_key::baseline(&iam, &owner).await?;
        out.notice(&format!("Open {}", owner.console_url()));
        out.notice(
            "  1. Under Multi-factor authentication (MFA) choose Assign MFA device; name it.",
        );
        out.notice("  2. Choose Passkey or security key, then Next.");
        out.notice("  3. Follow the browser: enter the key's PIN and touch the key.");
        out.notice(
            "  (AWS does not accept security keys through virtual machines or remote desktops.)",
        );
        out.notice(&format!(
            "Waiting up to {} s for AWS to show the new security key...",
            a.wait
        ));
        let mut on_wait = |el: Duration, to: Duration| {
            out.notice(&format!(
                "  not yet ({} s of {} s)",
                el.as_secs(),
                to.as_secs()
            ))
        };
        let arn = security_key::wait_for_security_key(
            &iam,
            &owner,
            &before,
            Duration::from_secs(a.wait),
            POLL,
            &mut on_wait,
        )
        .await?;
        let certs = security_key::certifications(&iam, &arn).await;
        let text = format!(
            "registered {arn}\n  key serial {}\n  aaguid     {}\n  certified  {}",
            serial.map_or("(not seen over PC/SC)".into(), |s| s.to_string()),
            info.aaguid,
            match &certs {
                Ok(c) if c.is_empty() => "(none reported)".to_string(),
                Ok(c) => c
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                Err(e) => format!("(GetMFADevice not available: {e})"),
            }
        );
        let certs_json = certs.ok().map(|c| {
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
    })
}

impl From<Fido2Error> for CliError {
    fn from(e: Fido2Error) -> Self {
        let (kind, code) = match &e {
            Fido2Error::NoKey => ("no_fido_key", exit::DEVICE),
            Fido2Error::NoPermission { .. } => ("no_permission", exit::DEVICE),
            Fido2Error::SeveralKeys { .. } => ("several_keys", exit::DEVICE),
            Fido2Error::NotFido2 => ("no_fido2", exit::REFUSED),
            Fido2Error::PinNotSet => ("pin_not_set", exit::REFUSED),
            Fido2Error::PinAlreadySet => ("pin_already_set", exit::REFUSED),
            Fido2Error::PinInvalid { .. } => ("wrong_pin", exit::AUTH),
            Fido2Error::PinAuthBlocked => ("pin_auth_blocked", exit::AUTH),
            Fido2Error::PinBlocked => ("pin_blocked", exit::AUTH),
            Fido2Error::PinTooShort { .. } | Fido2Error::PinTooLong | Fido2Error::PinPolicy => {
                ("invalid_pin", exit::USAGE)
            }
            Fido2Error::NoCredentialManagement => ("unsupported", exit::REFUSED),
            Fido2Error::NoSuchCredential(_) => ("no_such_credential", exit::REFUSED),
            _ => ("device", exit::DEVICE),
        };
        CliError::new(kind, code, e.to_string())
    }
}

impl From<SecurityKeyError> for CliError {
    fn from(e: SecurityKeyError) -> Self {
        match e {
            SecurityKeyError::Aws(a) => a.into(),
            e => CliError::new("not_verified", exit::AWS, e.to_string()),
        }
    }
}
