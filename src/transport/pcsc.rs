//! PC/SC backend on the `pcsc` crate: readers, card presence, connections.
//!
//! Read-only commands connect shared; commands that write connect exclusive,
//! so no other client can interleave APDUs (SELECT another applet) in the
//! middle of a write. A program holding the card makes an exclusive connect
//! fail with [`TransportError::InUse`]: we report it and never signal it.

use super::{Transport, TransportError};
use std::ffi::CString;
use std::time::Duration;

/// How long a connection waits for another program to let go of the card.
const SHARING_WAIT: Duration = Duration::from_secs(2);

/// How a connection shares the card with other programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Shared,
    Exclusive,
}

/// A reader and whether a card sits in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reader {
    pub name: String,
    pub card_present: bool,
}

/// A PC/SC context: the link to pcscd.
pub(crate) struct Pcsc {
    ctx: pcsc::Context,
}

impl Pcsc {
    pub(crate) fn establish() -> Result<Self, TransportError> {
        let ctx = pcsc::Context::establish(pcsc::Scope::User).map_err(|e| map_err(e, ""))?;
        Ok(Pcsc { ctx })
    }

    /// Every reader with its card presence. No readers is `Ok(vec![])`.
    pub(crate) fn readers(&self) -> Result<Vec<Reader>, TransportError> {
        let names = match self.ctx.list_readers_owned() {
            Ok(n) => n,
            Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
            Err(e) => return Err(map_err(e, "")),
        };
        let mut states: Vec<pcsc::ReaderState> = names
            .iter()
            .map(|n| pcsc::ReaderState::new(n.clone(), pcsc::State::UNAWARE))
            .collect();
        if !states.is_empty() {
            match self.ctx.get_status_change(Duration::ZERO, &mut states) {
                Ok(()) | Err(pcsc::Error::Timeout) => {}
                Err(e) => return Err(map_err(e, "")),
            }
        }
        Ok(states
            .iter()
            .map(|s| Reader {
                name: s.name().to_string_lossy().into_owned(),
                card_present: s.event_state().contains(pcsc::State::PRESENT)
                    && !s.event_state().contains(pcsc::State::MUTE),
            })
            .collect())
    }

    /// A watch over every reader: [`Pcsc::next_change`] blocks until one
    /// changes, with card event counts, so a key swapped between two looks
    /// is seen as a change although a key is present both times.
    pub(crate) fn watch(&self) -> Watch {
        Watch { states: Vec::new() }
    }

    /// Waits (up to `timeout`) until a reader of `w` changes, a reader comes
    /// or goes, or [`Pcsc::cancel`] is called; the readers now. The first
    /// call answers at once.
    pub(crate) fn next_change(
        &self,
        w: &mut Watch,
        timeout: Duration,
    ) -> Result<Vec<Seen>, TransportError> {
        if w.states.is_empty() {
            w.rebuild(&self.ctx)?;
        } else {
            match self.ctx.get_status_change(timeout, &mut w.states) {
                Ok(()) | Err(pcsc::Error::Timeout) | Err(pcsc::Error::Cancelled) => {}
                // A reader gone from under the watch: look at the list again.
                Err(pcsc::Error::UnknownReader) => w.states.clear(),
                Err(e) => return Err(map_err(e, "")),
            }
            let pnp_changed = w
                .states
                .last()
                .is_some_and(|s| s.event_state().contains(pcsc::State::CHANGED));
            if w.states.is_empty() || pnp_changed {
                w.rebuild(&self.ctx)?;
            }
        }
        for s in w.states.iter_mut() {
            s.sync_current_state();
        }
        let n = w.states.len().saturating_sub(1);
        Ok(w.states[..n]
            .iter()
            .map(|s| Seen {
                name: s.name().to_string_lossy().into_owned(),
                card_present: s.event_state().contains(pcsc::State::PRESENT)
                    && !s.event_state().contains(pcsc::State::MUTE),
                events: s.event_count(),
            })
            .collect())
    }

    /// Ends a [`Pcsc::next_change`] blocked in another thread.
    pub(crate) fn cancel(&self) {
        let _ = self.ctx.cancel();
    }

    /// Connects to the card in `reader`.
    pub(crate) fn connect(
        &self,
        reader: &str,
        access: Access,
    ) -> Result<PcscTransport, TransportError> {
        let name = CString::new(reader)
            .map_err(|_| TransportError::Io("reader name holds a NUL byte".into()))?;
        let mode = match access {
            Access::Shared => pcsc::ShareMode::Shared,
            Access::Exclusive => pcsc::ShareMode::Exclusive,
        };
        // Another program's connection is usually brief (a desktop app
        // polling, another mfakey identifying keys): wait for it a little
        // before calling the key busy.
        let deadline = std::time::Instant::now() + SHARING_WAIT;
        let card = loop {
            match self.ctx.connect(&name, mode, pcsc::Protocols::ANY) {
                Ok(card) => break card,
                Err(pcsc::Error::SharingViolation) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(map_err(e, reader)),
            }
        };
        Ok(PcscTransport {
            card: Some(card),
            reader: reader.to_string(),
            buf: vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED],
            // An exclusive connection disturbs no one by resetting, and the
            // reset drops whatever it selected or unlocked. A shared one
            // leaves the card alone: resetting would break other programs'
            // commands in flight.
            reset_on_close: access == Access::Exclusive,
        })
    }
}

/// What a [`Watch`] reports of a reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub name: String,
    pub card_present: bool,
    /// The reader's card event count: one more per insertion or removal.
    pub events: u32,
}

/// The reader states a watch compares against (the readers, then PnP).
pub(crate) struct Watch {
    states: Vec<pcsc::ReaderState>,
}

impl Watch {
    /// Every reader's current state (and the PnP pseudo-reader's).
    fn rebuild(&mut self, ctx: &pcsc::Context) -> Result<(), TransportError> {
        let names = match ctx.list_readers_owned() {
            Ok(n) => n,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) => return Err(map_err(e, "")),
        };
        self.states = names
            .into_iter()
            .map(|n| pcsc::ReaderState::new(n, pcsc::State::UNAWARE))
            .collect();
        self.states.push(pcsc::ReaderState::new(
            pcsc::PNP_NOTIFICATION(),
            pcsc::State::UNAWARE,
        ));
        match ctx.get_status_change(Duration::ZERO, &mut self.states) {
            Ok(()) | Err(pcsc::Error::Timeout) => Ok(()),
            Err(e) => Err(map_err(e, "")),
        }
    }
}

/// One connection to a card.
pub(crate) struct PcscTransport {
    card: Option<pcsc::Card>,
    reader: String,
    buf: Vec<u8>,
    reset_on_close: bool,
}

impl PcscTransport {
    /// The reader's `SCARD_ATTR_CHANNEL_ID` (the CCID driver gives a USB
    /// reader's bus and address), as the driver answers it; `None` when it
    /// does not say.
    pub(crate) fn channel_id(&self) -> Option<Vec<u8>> {
        self.card
            .as_ref()?
            .get_attribute_owned(pcsc::Attribute::ChannelId)
            .ok()
    }
}

impl Transport for PcscTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let card = self.card.as_ref().ok_or(TransportError::CardRemoved)?;
        let answer = card
            .transmit(apdu, &mut self.buf)
            .map_err(|e| map_err(e, &self.reader))?;
        // A card always answers at least SW1 SW2; nothing at all means the
        // reader lost it (seen when a key is pulled mid-command).
        if answer.is_empty() {
            return Err(TransportError::CardRemoved);
        }
        Ok(answer.to_vec())
    }

    fn reset_on_close(&mut self) {
        self.reset_on_close = true;
    }
}

impl Drop for PcscTransport {
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            let how = if self.reset_on_close {
                pcsc::Disposition::ResetCard
            } else {
                pcsc::Disposition::LeaveCard
            };
            // Nothing to do about a failed disconnect: the card or pcscd is gone.
            let _ = card.disconnect(how);
        }
        // Scrub whatever the last answer left in the buffer.
        zeroize::Zeroize::zeroize(&mut self.buf);
    }
}

fn map_err(e: pcsc::Error, reader: &str) -> TransportError {
    use pcsc::Error as E;
    match e {
        E::NoService | E::ServiceStopped => TransportError::NoService,
        E::NoReadersAvailable => TransportError::NoReaders,
        E::NoSmartcard => TransportError::NoCard(reader.to_string()),
        E::RemovedCard | E::UnpoweredCard | E::UnresponsiveCard | E::ReaderUnavailable => {
            TransportError::CardRemoved
        }
        E::ResetCard => TransportError::CardReset,
        E::SharingViolation => TransportError::InUse(reader.to_string()),
        E::UnknownReader => TransportError::Pcsc(format!("unknown reader \"{reader}\"")),
        other => TransportError::Pcsc(other.to_string()),
    }
}
