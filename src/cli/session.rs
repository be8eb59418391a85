//! Opening the chosen key and its OATH applet, unlocking it if needed.

use super::error::CliError;
use super::input::{self, Source};
use super::GlobalOpts;
use crate::device::{self, OpenKey, Selector};
use crate::oath::OathSession;
use crate::transport::pcsc::{Access, Pcsc};
use crate::transport::TraceSink;
use std::io::IsTerminal;
use std::sync::Arc;

pub fn selector(g: &GlobalOpts) -> Selector {
    Selector {
        reader: g.reader.clone(),
        serial: g.serial,
    }
}

/// The `--trace-apdu` sink: stderr.
pub fn trace_sink(g: &GlobalOpts) -> Option<TraceSink> {
    g.trace_apdu
        .then(|| Arc::new(|line: &str| eprintln!("apdu {line}")) as TraceSink)
}

pub fn open_key(g: &GlobalOpts, access: Access) -> Result<OpenKey, CliError> {
    let pcsc = Pcsc::establish()?;
    Ok(device::open(
        &pcsc,
        &selector(g),
        access,
        trace_sink(g).as_ref(),
    )?)
}

/// Unlocks a password-protected applet from `--password-file`, or a no-echo
/// prompt when stdin is a terminal.
pub fn unlock(session: &mut OathSession<'_>, g: &GlobalOpts) -> Result<(), CliError> {
    if !session.is_locked() {
        return Ok(());
    }
    let password = match &g.password_file {
        Some(path) => input::password(Source::File(path))?,
        None if std::io::stdin().is_terminal() => {
            input::password(Source::Prompt("OATH password: "))?
        }
        None => return Err(crate::oath::OathError::Locked.into()),
    };
    session.unlock(&password)?;
    Ok(())
}

/// Opens the key, selects OATH and unlocks it; runs `f`.
pub fn with_oath<R>(
    g: &GlobalOpts,
    access: Access,
    f: impl FnOnce(&OpenKeyInfo, &mut OathSession<'_>) -> Result<R, CliError>,
) -> Result<R, CliError> {
    let mut key = open_key(g, access)?;
    let info = OpenKeyInfo {
        reader: key.reader.clone(),
        serial: key.info.serial,
        capacity: key.info.oath_capacity(),
    };
    let mut session = OathSession::select(&mut key.transport)?;
    unlock(&mut session, g)?;
    f(&info, &mut session)
}

/// What commands report about the key they worked on.
pub struct OpenKeyInfo {
    pub reader: String,
    pub serial: Option<u32>,
    pub capacity: usize,
}
