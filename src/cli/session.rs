//! The key a command works on: the one place that opens it, selects its
//! OATH applet, and unlocks it (the password from `--password-file`, else a
//! no-echo prompt on a terminal).

use super::input::{self, Source};
use super::GlobalOpts;
use crate::device::{self, OpenKey, Selector};
use crate::error::Failure;
use crate::oath::{OathError, OathSession};
use crate::transport::pcsc::{Access, Pcsc};
use crate::transport::TraceSink;
use std::io::IsTerminal;
use std::sync::Arc;

pub(super) fn selector(g: &GlobalOpts) -> Selector {
    Selector {
        reader: g.reader.clone(),
        serial: g.serial,
    }
}

/// The `--trace-apdu` sink: stderr.
pub(super) fn trace_sink(g: &GlobalOpts) -> Option<TraceSink> {
    g.trace_apdu
        .then(|| Arc::new(|line: &str| eprintln!("apdu {line}")) as TraceSink)
}

pub(super) fn open_key(g: &GlobalOpts, access: Access) -> Result<OpenKey, Failure> {
    let pcsc = Pcsc::establish()?;
    open_with(&pcsc, g, &selector(g), access)
}

/// Opens the key `sel` chooses on an established PC/SC context.
pub(super) fn open_with(
    pcsc: &Pcsc,
    g: &GlobalOpts,
    sel: &Selector,
    access: Access,
) -> Result<OpenKey, Failure> {
    Ok(device::open(pcsc, sel, access, trace_sink(g).as_ref())?)
}

/// The OATH session on `key`, unlocked when the applet has a password.
pub(super) fn oath<'k>(key: &'k mut OpenKey, g: &GlobalOpts) -> Result<OathSession<'k>, Failure> {
    let serial = key.info.serial;
    let mut session = OathSession::select(&mut key.transport)?;
    unlock(&mut session, serial, g)?;
    Ok(session)
}

/// Unlocks a password-protected applet from `--password-file`, or a no-echo
/// prompt when stdin is a terminal; a locked applet otherwise stays locked
/// ([`OathError::Locked`]). Only a key that told its serial (`device::open`
/// read it, and matched `--serial` when given) is sent the password's
/// proof, and the password is not even read for another
/// ([`OathError::Unidentified`]).
pub(super) fn unlock(
    session: &mut OathSession<'_>,
    serial: Option<u32>,
    g: &GlobalOpts,
) -> Result<(), Failure> {
    if !session.is_locked() {
        return Ok(());
    }
    if serial.is_none() {
        return Err(OathError::Unidentified.into());
    }
    let password = match &g.password_file {
        Some(path) => input::password(Source::File(path))?,
        None if std::io::stdin().is_terminal() => {
            input::password(Source::Prompt("OATH password: "))?
        }
        None => return Err(OathError::Locked.into()),
    };
    Ok(session.unlock_identified(serial, Some(&password))?)
}

/// What commands report about the key they worked on.
pub(super) struct OpenKeyInfo {
    pub reader: String,
    pub serial: Option<u32>,
    pub capacity: usize,
}

impl OpenKeyInfo {
    pub(super) fn of(key: &OpenKey) -> Self {
        OpenKeyInfo {
            reader: key.reader.clone(),
            serial: key.info.serial,
            capacity: key.info.oath_capacity(),
        }
    }
}
