//! The `hid` module of an mfakey built without the `fido2` cargo feature
//! (`--no-default-features`): the same names as the real one, so the CLI
//! and the jobs compile unchanged, but no FIDO key can ever be opened.
//! Every way in answers [`Fido2Error::NotBuilt`], which says how to get an
//! mfakey that has FIDO2. Nothing of ctap-hid-fido2 or hidapi is linked.

use super::{Fido2Credential, Fido2Device, Fido2Error, Fido2Info};
use crate::secret::SecretString;
use std::convert::Infallible;

/// No value of it exists: this build opens no FIDO key.
pub(crate) enum HidDevice {}

/// Kept for the CLI's signature; there is no library to print anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum LibraryNotes {
    #[default]
    Discard,
    Stderr,
}

/// A FIDO HID device found: never, in this build.
#[derive(Clone)]
pub(crate) struct Found {
    pub product: String,
    never: Infallible,
}

impl Found {
    pub(crate) fn path(&self) -> Option<&str> {
        match self.never {}
    }
}

impl HidDevice {
    pub(crate) fn find_all(_notes: LibraryNotes) -> Result<Vec<Found>, Fido2Error> {
        Err(Fido2Error::NotBuilt)
    }

    pub(crate) fn open(_notes: LibraryNotes) -> Result<HidDevice, Fido2Error> {
        Err(Fido2Error::NotBuilt)
    }

    pub(crate) fn open_found(found: &Found, _notes: LibraryNotes) -> Result<HidDevice, Fido2Error> {
        match found.never {}
    }
}

impl Fido2Device for HidDevice {
    fn info(&mut self) -> Result<Fido2Info, Fido2Error> {
        match *self {}
    }
    fn pin_retries(&mut self) -> Result<u32, Fido2Error> {
        match *self {}
    }
    fn set_pin(&mut self, _new_pin: &SecretString) -> Result<(), Fido2Error> {
        match *self {}
    }
    fn change_pin(&mut self, _c: &SecretString, _n: &SecretString) -> Result<(), Fido2Error> {
        match *self {}
    }
    fn credentials(&mut self, _pin: &SecretString) -> Result<Vec<Fido2Credential>, Fido2Error> {
        match *self {}
    }
    fn delete_credential(&mut self, _pin: &SecretString, _id: &[u8]) -> Result<(), Fido2Error> {
        match *self {}
    }
    fn reset(&mut self, _on_touch: &mut dyn FnMut()) -> Result<(), Fido2Error> {
        match *self {}
    }
}
