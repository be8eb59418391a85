//! The seam between protocol code and the card: a transport moves APDU bytes.
//!
//! PC/SC ([`pcsc`]) is one backend; the in-process virtual YubiKey
//! (`crate::virtual_key`) and recorded transcripts in unit tests are others.
//! Everything above (SELECT, chaining, status words) is written against
//! [`Transport`] only.

pub mod pcsc;

use crate::apdu::{Command, Response};

/// Errors moving bytes to and from a card.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    #[error("the PC/SC service is not running: start pcscd (`sudo systemctl start pcscd`, or `pcscd -f` in a terminal)")]
    NoService,
    #[error("no smart-card reader found: insert a YubiKey (pcscd lists it as a reader)")]
    NoReaders,
    #[error("no key in reader \"{0}\"")]
    NoCard(String),
    #[error("the key was removed during the command; insert it and run the command again")]
    CardRemoved,
    #[error("another program reset the key during the command; run the command again")]
    CardReset,
    #[error("another program is using the key in reader \"{0}\" (for example gpg-agent's scdaemon); close it and try again")]
    InUse(String),
    #[error("PC/SC error: {0}")]
    Pcsc(String),
    #[error("the card answered something that is not a valid APDU response: {0}")]
    Malformed(String),
    #[error("{0}")]
    Io(String),
}

/// Moves one command APDU to the card and brings its answer back.
pub trait Transport {
    /// Sends raw command bytes and returns the raw answer (data, SW1, SW2).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// Sends a command and splits the answer into data and status word.
    /// Wrappers (tracing) override this to see the command as a value.
    fn send(&mut self, cmd: &Command) -> Result<Response, TransportError> {
        // The bytes may carry a seed (PUT) or an access key (SET CODE).
        let bytes = zeroize::Zeroizing::new(cmd.to_bytes());
        let raw = self.transmit(&bytes)?;
        Response::from_bytes(raw)
    }

    /// Asks that the card be reset when this connection closes, so that an
    /// unlocked applet does not outlive the command (called after unlocking).
    /// Transports without such a notion ignore it.
    fn reset_on_close(&mut self) {}
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
    fn send(&mut self, cmd: &Command) -> Result<Response, TransportError> {
        (**self).send(cmd)
    }
    fn reset_on_close(&mut self) {
        (**self).reset_on_close()
    }
}

/// Where trace lines go (the CLI prints them on stderr).
pub type TraceSink = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// A transport that reports every command and answer to a sink (the CLI's
/// `--trace-apdu`). Command data marked sensitive is redacted.
pub struct Traced<T> {
    inner: T,
    sink: TraceSink,
}

impl<T: Transport> Traced<T> {
    pub fn new(inner: T, sink: TraceSink) -> Self {
        Traced { inner, sink }
    }
}

impl<T: Transport> Transport for Traced<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        // Raw bytes carry no sensitivity mark: show only the header.
        let head = &apdu[..apdu.len().min(4)];
        (self.sink)(&format!(
            "> {} (raw, {} bytes)",
            crate::apdu::hex(head),
            apdu.len()
        ));
        self.inner.transmit(apdu)
    }

    fn send(&mut self, cmd: &Command) -> Result<Response, TransportError> {
        (self.sink)(&format!("> {}", cmd.trace()));
        let started = std::time::Instant::now();
        let resp = self.inner.send(cmd);
        match &resp {
            Ok(r) => (self.sink)(&format!(
                "< {} [{}] ({:.2} ms)",
                crate::apdu::hex(r.data()),
                r.sw,
                started.elapsed().as_secs_f64() * 1e3
            )),
            Err(e) => (self.sink)(&format!("< error: {e}")),
        }
        resp
    }

    fn reset_on_close(&mut self) {
        self.inner.reset_on_close()
    }
}
