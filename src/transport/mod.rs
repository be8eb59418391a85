//! The seam between protocol code and the card: a transport moves APDU bytes.
//!
//! PC/SC ([`pcsc`]) is one backend; the in-process virtual YubiKey
//! (`crate::virtual_key`) and recorded transcripts in unit tests are others.
//! Everything above (SELECT, chaining, status words) is written against
//! [`Transport`] only.

pub(crate) mod pcsc;

use std::ops::Range;

/// Errors moving bytes to and from a card.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum TransportError {
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
    #[error("the card's answer grew past {} KiB (response chaining): no YubiKey answer is that long, so the card is refused; remove it", limit / 1024)]
    ResponseTooLong { limit: usize },
    #[error("{0}")]
    Io(String),
}

/// Moves one command APDU to the card and brings its answer back. It knows
/// bytes only: building commands and reading answers is `crate::apdu`'s job.
pub(crate) trait Transport {
    /// Sends raw command bytes and returns the raw answer (data, SW1, SW2).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// [`Transport::transmit`] for a command whose bytes in `secret` are key
    /// material (a seed on PUT, an access key on SET CODE): a transport that
    /// shows what it sends (a trace) must not show those.
    fn transmit_secret(
        &mut self,
        apdu: &[u8],
        secret: Range<usize>,
    ) -> Result<Vec<u8>, TransportError> {
        let _ = secret;
        self.transmit(apdu)
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
    fn transmit_secret(
        &mut self,
        apdu: &[u8],
        secret: Range<usize>,
    ) -> Result<Vec<u8>, TransportError> {
        (**self).transmit_secret(apdu, secret)
    }
    fn reset_on_close(&mut self) {
        (**self).reset_on_close()
    }
}

/// Where trace lines go (the CLI prints them on stderr).
pub(crate) type TraceSink = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// A transport that reports every command and answer to a sink (the CLI's
/// `--trace-apdu`). Command data marked sensitive is redacted.
pub(crate) struct Traced<T> {
    inner: T,
    sink: TraceSink,
}

impl<T: Transport> Traced<T> {
    pub(crate) fn new(inner: T, sink: TraceSink) -> Self {
        Traced { inner, sink }
    }
}

impl<T: Transport> Traced<T> {
    fn exchange(
        &mut self,
        shown: String,
        apdu: &[u8],
        secret: Option<Range<usize>>,
    ) -> Result<Vec<u8>, TransportError> {
        (self.sink)(&format!("> {shown}"));
        let started = std::time::Instant::now();
        let answer = match secret {
            Some(r) => self.inner.transmit_secret(apdu, r),
            None => self.inner.transmit(apdu),
        };
        let ms = started.elapsed().as_secs_f64() * 1e3;
        match &answer {
            Ok(a) if a.len() >= 2 => {
                let (data, sw) = a.split_at(a.len() - 2);
                (self.sink)(&format!(
                    "< {} [{}] ({ms:.2} ms)",
                    hex(data),
                    hex(sw).replace(' ', "")
                ))
            }
            Ok(a) => (self.sink)(&format!("< {} (no status word) ({ms:.2} ms)", hex(a))),
            Err(e) => (self.sink)(&format!("< error: {e}")),
        }
        answer
    }
}

impl<T: Transport> Transport for Traced<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.exchange(hex(apdu), apdu, None)
    }

    fn transmit_secret(
        &mut self,
        apdu: &[u8],
        secret: Range<usize>,
    ) -> Result<Vec<u8>, TransportError> {
        let head = &apdu[..secret.start.min(4).min(apdu.len())];
        let shown = format!(
            "{} <{} bytes of key material redacted>",
            hex(head),
            secret.len()
        );
        self.exchange(shown, apdu, Some(secret))
    }

    fn reset_on_close(&mut self) {
        self.inner.reset_on_close()
    }
}

/// Upper-case hex with spaces between bytes, for traces.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02X}"));
    }
    s
}

impl crate::error::Classify for TransportError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            TransportError::NoService => Kind::PcscNotRunning,
            TransportError::NoReaders => Kind::NoReader,
            TransportError::NoCard(_) => Kind::NoKey,
            TransportError::CardRemoved => Kind::KeyRemoved,
            TransportError::CardReset => Kind::KeyReset,
            TransportError::InUse(_) => Kind::KeyInUse,
            TransportError::Pcsc(_)
            | TransportError::Malformed(_)
            | TransportError::ResponseTooLong { .. }
            | TransportError::Io(_) => Kind::Device,
        }
    }
}
