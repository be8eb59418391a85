//! `mfakey oath ...`: the OATH applet by hand.

use super::input::{self, Source};
use super::render::{one_line, Output, Report};
use super::session::OpenKeyInfo;
use super::GlobalOpts;
use crate::credential::unix_now;
use crate::error::Failure;
use crate::manage::oath as manage;
use crate::oath::{
    Code, CodeResult, Credential, CredentialData, CredentialId, HashAlgorithm, OathSession,
    OathType,
};
use crate::transport::pcsc::Access;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum OathCmd {
    /// List the credentials on the key
    List,
    /// Add a credential (the secret comes from a file, stdin or a prompt; never from the command line)
    Add(AddArgs),
    /// Show codes: all of them, or one credential's (touch and HOTP included)
    Code {
        /// Credential: its full id, or a part matching exactly one
        name: Option<String>,
        /// Compute for this time (unix seconds) instead of now
        #[arg(long, value_name = "UNIX_SECONDS")]
        at: Option<u64>,
    },
    /// Delete a credential, named by its exact id (asks first on a terminal)
    Delete {
        /// The credential's id exactly, as `oath list` shows it (`issuer:name`)
        /// or as stored (`60/issuer:name`); with --match, a part of it
        name: String,
        /// NAME may be a part of the id (any case) that matches exactly one
        /// credential; the question names the credential it matched
        #[arg(long = "match")]
        partial: bool,
        /// Delete without asking (needed when there is no terminal to ask on)
        #[arg(long)]
        force: bool,
    },
    /// Rename a credential (firmware 5.3.1 or later)
    Rename {
        /// Credential: its full id, or a part matching exactly one
        old: String,
        /// New id: `[issuer:]name`
        new: String,
    },
    /// Set or clear the OATH password
    #[command(subcommand)]
    Password(PasswordCmd),
    /// Erase every OATH credential and the password (asks first on a terminal)
    Reset {
        /// Erase without asking (needed when there is no terminal to ask on)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PasswordCmd {
    /// Set or change the password (the old one from --password-file or the prompt)
    Set {
        /// File holding the new password (first line); else asked twice
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
    },
    /// Remove the password
    Clear,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Account name
    pub name: String,
    /// Issuer (shown before the name: `issuer:name`)
    #[arg(long)]
    pub issuer: Option<String>,
    /// File holding the base32 secret
    #[arg(long, value_name = "FILE", conflicts_with = "secret_stdin")]
    pub secret_file: Option<PathBuf>,
    /// Read the base32 secret from stdin
    #[arg(long)]
    pub secret_stdin: bool,
    /// Require a touch for every code
    #[arg(long)]
    pub touch: bool,
    /// HMAC algorithm of the codes
    #[arg(long, value_enum, default_value = "sha1")]
    pub algorithm: AlgorithmArg,
    /// Digits in a code: 6, 7 or 8
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u8).range(6..=8))]
    pub digits: u8,
    /// TOTP period in seconds
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub period: u32,
    /// HOTP (counter-based) instead of TOTP
    #[arg(long)]
    pub hotp: bool,
    /// Initial HOTP counter
    #[arg(long, requires = "hotp", default_value_t = 0)]
    pub counter: u32,
    /// Overwrite a credential with the same id
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum AlgorithmArg {
    Sha1,
    Sha256,
    Sha512,
}

impl From<AlgorithmArg> for HashAlgorithm {
    fn from(a: AlgorithmArg) -> Self {
        match a {
            AlgorithmArg::Sha1 => HashAlgorithm::Sha1,
            AlgorithmArg::Sha256 => HashAlgorithm::Sha256,
            AlgorithmArg::Sha512 => HashAlgorithm::Sha512,
        }
    }
}

pub(super) fn run(cmd: &OathCmd, g: &GlobalOpts, out: Output) -> Result<Report, Failure> {
    match cmd {
        OathCmd::List => with_oath(g, Access::Shared, list),
        OathCmd::Add(a) => add(a, g),
        OathCmd::Code { name, at } => {
            let now = at.unwrap_or_else(unix_now);
            with_oath(g, Access::Shared, |_, s| code(s, name.as_deref(), now, out))
        }
        OathCmd::Delete {
            name,
            partial,
            force,
        } => {
            if name.trim().is_empty() {
                return Err(Failure::usage(
                    "the credential id is empty: name the credential to delete (see `mfakey oath list`)",
                ));
            }
            let how = if *partial {
                manage::Match::Partial
            } else {
                manage::Match::Exact
            };
            with_oath(g, Access::Exclusive, |key, s| {
                let mut ask = |what: &str| confirm(out, key, what, *force);
                let id = manage::delete(s, name, how, &mut ask)?.to_id_string();
                Ok(Report::new(
                    json!({ "deleted": id }),
                    format!("deleted {}", one_line(&id)),
                ))
            })
        }
        OathCmd::Rename { old, new } => with_oath(g, Access::Exclusive, |_, s| {
            let (from, to) = manage::rename(s, old, new)?;
            let (from, to) = (from.to_id_string(), to.to_id_string());
            Ok(Report::new(
                json!({ "renamed": { "from": from, "to": to } }),
                format!("renamed {} to {}", one_line(&from), one_line(&to)),
            ))
        }),
        OathCmd::Password(PasswordCmd::Set { new_password_file }) => {
            let new = input::new_password(new_password_file.as_deref())?;
            with_oath(g, Access::Exclusive, |key, s| {
                manage::set_password(s, key.serial, &new)?;
                Ok(Report::new(
                    json!({ "password_set": true }),
                    "OATH password set",
                ))
            })
        }
        OathCmd::Password(PasswordCmd::Clear) => with_oath(g, Access::Exclusive, |_, s| {
            manage::clear_password(s)?;
            Ok(Report::new(
                json!({ "password_set": false }),
                "OATH password removed",
            ))
        }),
        OathCmd::Reset { force } => {
            let mut key = super::session::open_key(g, Access::Exclusive)?;
            let info = OpenKeyInfo::of(&key);
            let mut s = OathSession::select(&mut key.transport)?;
            let mut ask = |what: &str| confirm(out, &info, what, *force);
            manage::reset(&mut s, &key_name(&info), &mut ask)?;
            Ok(Report::new(
                json!({ "reset": true }),
                "OATH applet reset: every credential and the password are gone",
            ))
        }
    }
}

/// "key 12345678 in "Yubico YubiKey ..."", for questions.
fn key_name(key: &OpenKeyInfo) -> String {
    match key.serial {
        Some(s) => format!("key {s} in \"{}\"", key.reader),
        None => format!("the key in \"{}\"", key.reader),
    }
}

/// Yes to `what` with --force; else the operator's answer on a terminal;
/// with neither, [`manage::ManageError::ConfirmationNeeded`].
fn confirm(
    out: Output,
    key: &OpenKeyInfo,
    what: &str,
    force: bool,
) -> Result<bool, manage::ManageError> {
    if force {
        return Ok(true);
    }
    let on = format!("{what} on {}", key_name(key));
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(manage::ManageError::ConfirmationNeeded { what: on });
    }
    out.notice(&format!("Go ahead with {on}? [y/N] "));
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|_| manage::ManageError::ConfirmationNeeded { what: on.clone() })?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Opens the key, selects OATH and unlocks it; runs `f`.
fn with_oath<R>(
    g: &GlobalOpts,
    access: Access,
    f: impl FnOnce(&OpenKeyInfo, &mut OathSession<'_>) -> Result<R, Failure>,
) -> Result<R, Failure> {
    let mut key = super::session::open_key(g, access)?;
    let info = OpenKeyInfo::of(&key);
    let mut session = super::session::oath(&mut key, g)?;
    f(&info, &mut session)
}

pub(super) fn credential_json(c: &Credential) -> Value {
    json!({
        "id": c.id.to_id_string(),
        "issuer": c.id.issuer,
        "name": c.id.name,
        "type": match c.id.oath_type { OathType::Totp => "totp", OathType::Hotp => "hotp" },
        "algorithm": c.algorithm,
        "period": c.id.period,
        "touch": c.touch,
    })
}

fn list(key: &OpenKeyInfo, s: &mut OathSession<'_>) -> Result<Report, Failure> {
    let creds = manage::list_with_touch(s)?;
    let mut text = String::new();
    for c in &creds {
        let touch = if c.touch == Some(true) {
            "  (touch)"
        } else {
            ""
        };
        text.push_str(&format!("{}{touch}\n", one_line(&c.id.to_string())));
    }
    if creds.is_empty() {
        text.push_str("no OATH credentials on the key\n");
    }
    Ok(Report::new(
        json!({
            "reader": key.reader,
            "serial": key.serial,
            "capacity": key.capacity,
            "credentials": creds.iter().map(credential_json).collect::<Vec<_>>(),
        }),
        text,
    ))
}

fn code_json(c: &Credential, touch: Option<bool>, code: Option<&Code>) -> Value {
    json!({
        "id": c.id.to_id_string(),
        "type": match c.id.oath_type { OathType::Totp => "totp", OathType::Hotp => "hotp" },
        "touch": touch,
        "code": code.map(|c| c.value.clone()),
        "valid_from": code.map(|c| c.valid_from),
        "valid_to": code.map(|c| c.valid_to),
    })
}

fn code(
    s: &mut OathSession<'_>,
    name: Option<&str>,
    now: u64,
    out: Output,
) -> Result<Report, Failure> {
    let all = s.calculate_all(now)?;
    let mut rows = Vec::new();
    let mut text = String::new();
    match name {
        Some(name) => {
            let mut on_touch = || out.notice("Touch your YubiKey...");
            let (cred, touch, code) = manage::code_of(s, all, name, now, &mut on_touch)?;
            text.push_str(&format!(
                "{}  {}\n",
                one_line(&cred.id.to_string()),
                code.value
            ));
            rows.push(code_json(&cred, touch, Some(&code)));
        }
        None => {
            for (cred, result) in &all {
                let (touch, code) = match result {
                    CodeResult::Code(code) => (Some(false), Some(code)),
                    CodeResult::TouchRequired => (Some(true), None),
                    CodeResult::Hotp | CodeResult::Unavailable(_) => (None, None),
                };
                let shown = match (code, result) {
                    (Some(c), _) => c.value.clone(),
                    (None, CodeResult::TouchRequired) => "[touch: name it to compute]".into(),
                    (None, CodeResult::Unavailable(why)) => format!("[no code: {why}]"),
                    _ => "[HOTP: name it to compute]".into(),
                };
                text.push_str(&format!("{}  {shown}\n", one_line(&cred.id.to_string())));
                rows.push(code_json(cred, touch, code));
            }
            if all.is_empty() {
                text.push_str("no OATH credentials on the key\n");
            }
        }
    }
    Ok(Report::new(
        json!({ "timestamp": now, "codes": rows }),
        text,
    ))
}

fn add(a: &AddArgs, g: &GlobalOpts) -> Result<Report, Failure> {
    let oath_type = if a.hotp {
        OathType::Hotp
    } else {
        OathType::Totp
    };
    let id = CredentialId::new(a.issuer.as_deref(), &a.name, oath_type, a.period);
    // Everything that can be checked without the key is checked first.
    id.check_len()?;
    let secret = match (&a.secret_file, a.secret_stdin) {
        (Some(path), _) => input::seed(Source::File(path))?,
        (None, true) => input::seed(Source::Stdin)?,
        (None, false) => input::seed(Source::Prompt("Base32 secret (not shown): "))?,
    };
    let data = CredentialData {
        id,
        algorithm: a.algorithm.into(),
        digits: a.digits,
        secret,
        touch: a.touch,
        counter: a.counter,
    };
    data.validate()?;
    with_oath(g, Access::Exclusive, |_, s| {
        let cred = manage::add(s, &data, a.force)?;
        let id = cred.id.to_id_string();
        Ok(Report::new(
            json!({ "added": credential_json(&cred) }),
            format!("added {}", one_line(&id)),
        ))
    })
}
