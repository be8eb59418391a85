//! ISO 7816-4 command and response APDUs, and status words.
//!
//! A [`Command`] can only be built valid: data longer than 65 535 bytes or an
//! expected length over 65 536 is refused at construction. Encoding picks the
//! short form when both fit (data ≤ 255, Le ≤ 256) and the extended form
//! otherwise. Response chaining (`61xx`) is driven by [`transmit_chained`] with
//! the applet's own SEND REMAINING instruction (`A5` for OATH, `C0` for ISO).

use crate::transport::{Transport, TransportError};
use zeroize::Zeroize;

/// Errors building an APDU.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum ApduError {
    #[error("command data is {0} bytes; an APDU carries at most 65535")]
    DataTooLong(usize),
    #[cfg(test)]
    #[error("expected length {0} is over the 65536 an APDU can ask for")]
    LeTooLarge(u32),
}

/// One command APDU. `sensitive` marks data that holds key material: traces
/// print it as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    data: Vec<u8>,
    le: Option<u32>,
    sensitive: bool,
}

impl Drop for Command {
    fn drop(&mut self) {
        self.data.zeroize();
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Command({:02X} {:02X} {:02X} {:02X}",
            self.cla, self.ins, self.p1, self.p2
        )?;
        if self.sensitive {
            write!(f, " data=<redacted {} bytes>", self.data.len())?;
        } else if !self.data.is_empty() {
            write!(f, " data={}", hex(&self.data))?;
        }
        if let Some(le) = self.le {
            write!(f, " le={le}")?;
        }
        f.write_str(")")
    }
}

impl Command {
    /// A case-1 command: header only.
    pub(crate) fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
            sensitive: false,
        }
    }

    /// Attaches command data.
    pub(crate) fn with_data(mut self, data: impl Into<Vec<u8>>) -> Result<Self, ApduError> {
        let data = data.into();
        if data.len() > 65_535 {
            let n = data.len();
            let mut data = data;
            data.zeroize();
            return Err(ApduError::DataTooLong(n));
        }
        self.data.zeroize();
        self.data = data;
        Ok(self)
    }

    /// Sets the expected response length (0 is not "none": use 256 or 65536 for "all").
    #[cfg(test)]
    pub fn with_le(mut self, le: u32) -> Result<Self, ApduError> {
        if le > 65_536 {
            return Err(ApduError::LeTooLarge(le));
        }
        self.le = Some(le);
        Ok(self)
    }

    /// Marks the data as key material: traces redact it.
    pub(crate) fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Encodes the command, short form when it fits, extended otherwise.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 9);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        let short = self.data.len() <= 255 && self.le.is_none_or(|le| le <= 256);
        if short {
            if !self.data.is_empty() {
                out.push(self.data.len() as u8);
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                out.push(if le == 256 { 0 } else { le as u8 });
            }
        } else {
            out.push(0);
            if !self.data.is_empty() {
                out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                let v = if le == 65_536 { 0 } else { le as u16 };
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        out
    }

    /// Where the data sits in [`Command::to_bytes`] (after the header and
    /// the one- or three-byte length).
    fn data_range(&self) -> std::ops::Range<usize> {
        let short = self.data.len() <= 255 && self.le.is_none_or(|le| le <= 256);
        let start = if short { 5 } else { 7 };
        start..start + self.data.len()
    }
}

/// A status word (SW1 SW2), with the ranges that carry a value decoded.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct StatusWord(pub u16);

/// The decoded meaning of a [`StatusWord`]. Unknown words stay raw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Sw {
    /// 9000
    Ok,
    /// 61xx: xx more bytes are waiting (00 means 256 or more).
    MoreData(u8),
    /// 63Cx: verification failed, x tries left.
    VerifyFailed { retries: u8 },
    /// 6581
    MemoryFailure,
    /// 6700
    WrongLength,
    /// 6982
    SecurityStatusNotSatisfied,
    /// 6983
    AuthMethodBlocked,
    /// 6984
    ReferenceDataNotUsable,
    /// 6985
    ConditionsNotSatisfied,
    /// 6A80
    IncorrectData,
    /// 6A82
    NotFound,
    /// 6A84
    NoSpace,
    /// 6A86
    IncorrectP1P2,
    /// 6B00
    WrongP1P2,
    /// 6Cxx: wrong Le, xx is the right one.
    WrongLe(u8),
    /// 6D00
    InsNotSupported,
    /// 6E00
    ClaNotSupported,
    /// 6F00
    NoPreciseDiagnosis,
    /// Any other word, kept raw.
    Unknown(u16),
}

impl Sw {
    /// What cards answer a SELECT of an applet they do not have (or have
    /// turned off): 6A82, 6A86, 6B00, 6D00, 6E00 and 6999. One list for
    /// every SELECT (the Management and OATH ones each had part of it).
    pub(crate) fn means_no_applet(self) -> bool {
        matches!(
            self,
            Sw::NotFound
                | Sw::IncorrectP1P2
                | Sw::WrongP1P2
                | Sw::InsNotSupported
                | Sw::ClaNotSupported
                | Sw::Unknown(0x6999)
        )
    }
}

impl StatusWord {
    pub(crate) fn from_bytes(sw1: u8, sw2: u8) -> Self {
        StatusWord(u16::from_be_bytes([sw1, sw2]))
    }

    pub(crate) fn is_ok(self) -> bool {
        self.0 == 0x9000
    }

    pub(crate) fn decode(self) -> Sw {
        match self.0 {
            0x9000 => Sw::Ok,
            0x6581 => Sw::MemoryFailure,
            0x6700 => Sw::WrongLength,
            0x6982 => Sw::SecurityStatusNotSatisfied,
            0x6983 => Sw::AuthMethodBlocked,
            0x6984 => Sw::ReferenceDataNotUsable,
            0x6985 => Sw::ConditionsNotSatisfied,
            0x6A80 => Sw::IncorrectData,
            0x6A82 => Sw::NotFound,
            0x6A84 => Sw::NoSpace,
            0x6A86 => Sw::IncorrectP1P2,
            0x6B00 => Sw::WrongP1P2,
            0x6D00 => Sw::InsNotSupported,
            0x6E00 => Sw::ClaNotSupported,
            0x6F00 => Sw::NoPreciseDiagnosis,
            w if w >> 8 == 0x61 => Sw::MoreData(w as u8),
            w if w & 0xFFF0 == 0x63C0 => Sw::VerifyFailed {
                retries: (w & 0x0F) as u8,
            },
            w if w >> 8 == 0x6C => Sw::WrongLe(w as u8),
            w => Sw::Unknown(w),
        }
    }
}

impl From<Sw> for StatusWord {
    fn from(sw: Sw) -> Self {
        StatusWord(match sw {
            Sw::Ok => 0x9000,
            Sw::MoreData(n) => 0x6100 | n as u16,
            Sw::VerifyFailed { retries } => 0x63C0 | (retries as u16 & 0x0F),
            Sw::MemoryFailure => 0x6581,
            Sw::WrongLength => 0x6700,
            Sw::SecurityStatusNotSatisfied => 0x6982,
            Sw::AuthMethodBlocked => 0x6983,
            Sw::ReferenceDataNotUsable => 0x6984,
            Sw::ConditionsNotSatisfied => 0x6985,
            Sw::IncorrectData => 0x6A80,
            Sw::NotFound => 0x6A82,
            Sw::NoSpace => 0x6A84,
            Sw::IncorrectP1P2 => 0x6A86,
            Sw::WrongP1P2 => 0x6B00,
            Sw::WrongLe(n) => 0x6C00 | n as u16,
            Sw::InsNotSupported => 0x6D00,
            Sw::ClaNotSupported => 0x6E00,
            Sw::NoPreciseDiagnosis => 0x6F00,
            Sw::Unknown(w) => w,
        })
    }
}

impl std::fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StatusWord({:04X} {:?})", self.0, self.decode())
    }
}

impl std::fmt::Display for StatusWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// A response APDU: data and status word. The data is zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Response {
    data: Vec<u8>,
    pub sw: StatusWord,
}

impl Drop for Response {
    fn drop(&mut self) {
        self.data.zeroize();
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Response({} bytes, {:?})", self.data.len(), self.sw)
    }
}

impl Response {
    pub(crate) fn new(data: Vec<u8>, sw: StatusWord) -> Self {
        Response { data, sw }
    }

    /// Splits raw bytes from the card into data and status word.
    pub(crate) fn from_bytes(mut raw: Vec<u8>) -> Result<Self, TransportError> {
        if raw.len() < 2 {
            let n = raw.len();
            raw.zeroize();
            return Err(TransportError::Malformed(format!(
                "a response of {n} bytes has no status word"
            )));
        }
        let sw2 = raw.pop().unwrap_or(0);
        let sw1 = raw.pop().unwrap_or(0);
        Ok(Response {
            data: raw,
            sw: StatusWord::from_bytes(sw1, sw2),
        })
    }

    pub(crate) fn data(&self) -> &[u8] {
        &self.data
    }

    /// Takes the data out (the response is left empty).
    pub(crate) fn into_data(mut self) -> Vec<u8> {
        std::mem::take(&mut self.data)
    }
}

/// Most data a chained response may carry in all (64 KiB): more than any
/// applet mfakey speaks to sends, far less than a hostile card could.
pub(crate) const MAX_RESPONSE: usize = 64 * 1024;

/// Sends `cmd`, and while the card answers `61xx`, sends `send_remaining_ins`
/// (with the command's CLA) and appends what comes back. A response that
/// grows past [`MAX_RESPONSE`] in all is refused
/// ([`TransportError::ResponseTooLong`]): a card cannot make mfakey hold
/// more than that.
pub(crate) fn transmit_chained(
    transport: &mut dyn Transport,
    cmd: &Command,
    send_remaining_ins: u8,
) -> Result<Response, TransportError> {
    let mut resp = send(transport, cmd)?;
    let mut data = zeroize::Zeroizing::new(std::mem::take(&mut resp.data));
    check_size(data.len())?;
    while let Sw::MoreData(_) = resp.sw.decode() {
        let more = Command::new(cmd.cla, send_remaining_ins, 0, 0);
        resp = send(transport, &more)?;
        check_size(data.len() + resp.data.len())?;
        data.extend_from_slice(&resp.data);
        resp.data.zeroize();
    }
    Ok(Response::new(std::mem::take(&mut *data), resp.sw))
}

fn check_size(len: usize) -> Result<(), TransportError> {
    if len > MAX_RESPONSE {
        return Err(TransportError::ResponseTooLong {
            limit: MAX_RESPONSE,
        });
    }
    Ok(())
}

pub(crate) use crate::transport::hex;

/// Sends one command and splits the answer into data and status word. The
/// encoded bytes are wiped afterwards (PUT carries a seed, SET CODE an
/// access key), and a sensitive command's data is marked as such for the
/// transport (traces redact it).
pub(crate) fn send(
    transport: &mut dyn Transport,
    cmd: &Command,
) -> Result<Response, TransportError> {
    let bytes = zeroize::Zeroizing::new(cmd.to_bytes());
    let raw = if cmd.sensitive && !cmd.data.is_empty() {
        transport.transmit_secret(&bytes, cmd.data_range())?
    } else {
        transport.transmit(&bytes)?
    };
    Response::from_bytes(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case1_header_only() {
        assert_eq!(
            Command::new(0x00, 0xA4, 0x04, 0x00).to_bytes(),
            vec![0, 0xA4, 4, 0]
        );
    }

    #[test]
    fn short_with_data_and_le() {
        let c = Command::new(0, 0xA4, 4, 0)
            .with_data(vec![0xA0, 0, 0, 5, 0x27, 0x21, 1])
            .unwrap();
        assert_eq!(
            c.to_bytes(),
            vec![0, 0xA4, 4, 0, 7, 0xA0, 0, 0, 5, 0x27, 0x21, 1]
        );
        let c = Command::new(0, 0x1D, 0, 0).with_le(256).unwrap();
        assert_eq!(c.to_bytes(), vec![0, 0x1D, 0, 0, 0]);
        let c = Command::new(0, 0xCA, 0, 0)
            .with_data(vec![1])
            .unwrap()
            .with_le(10)
            .unwrap();
        assert_eq!(c.to_bytes(), vec![0, 0xCA, 0, 0, 1, 1, 10]);
    }

    #[test]
    fn extended_when_data_over_255() {
        let c = Command::new(0, 1, 0, 0).with_data(vec![0xAB; 300]).unwrap();
        let b = c.to_bytes();
        assert_eq!(&b[..7], &[0, 1, 0, 0, 0, 0x01, 0x2C]);
        assert_eq!(b.len(), 7 + 300);
        let c = Command::new(0, 1, 0, 0)
            .with_data(vec![1; 300])
            .unwrap()
            .with_le(65_536)
            .unwrap();
        assert_eq!(&c.to_bytes()[307..], &[0, 0]);
    }

    #[test]
    fn extended_when_only_le_is_large() {
        let c = Command::new(0, 0xB0, 0, 0).with_le(1000).unwrap();
        assert_eq!(c.to_bytes(), vec![0, 0xB0, 0, 0, 0, 0x03, 0xE8]);
    }

    #[test]
    fn invalid_commands_cannot_be_built() {
        assert_eq!(
            Command::new(0, 1, 0, 0)
                .with_data(vec![0; 65_536])
                .unwrap_err(),
            ApduError::DataTooLong(65_536)
        );
        assert_eq!(
            Command::new(0, 1, 0, 0).with_le(65_537).unwrap_err(),
            ApduError::LeTooLarge(65_537)
        );
    }

    #[test]
    fn sensitive_data_is_redacted() {
        let c = Command::new(0, 1, 0, 0)
            .with_data(vec![0x42; 20])
            .unwrap()
            .sensitive();
        assert!(!format!("{c:?}").contains("42"));
        // Through a tracing transport, short and extended forms alike.
        for len in [20usize, 300] {
            let c = Command::new(0, 1, 0, 0)
                .with_data(vec![0x42; len])
                .unwrap()
                .sensitive();
            let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
            let seen = lines.clone();
            let sink: crate::transport::TraceSink =
                std::sync::Arc::new(move |l: &str| seen.lock().unwrap().push(l.to_string()));
            let card = Chunky {
                parts: vec![vec![0x90, 0x00]],
                seen: vec![],
            };
            let mut t = crate::transport::Traced::new(card, sink);
            send(&mut t, &c).unwrap();
            let lines = lines.lock().unwrap();
            assert_eq!(
                lines[0],
                format!("> 00 01 00 00 <{len} bytes of key material redacted>")
            );
            assert!(lines[1].starts_with("<  [9000]"), "{}", lines[1]);
        }
    }

    #[test]
    fn status_words_round_trip() {
        for w in [
            0x9000u16, 0x6100, 0x61FF, 0x63C0, 0x63C5, 0x6581, 0x6700, 0x6982, 0x6983, 0x6984,
            0x6985, 0x6A80, 0x6A82, 0x6A84, 0x6A86, 0x6B00, 0x6C10, 0x6D00, 0x6E00, 0x6F00, 0x6400,
            0x1234,
        ] {
            let sw = StatusWord(w);
            assert_eq!(StatusWord::from(sw.decode()), sw, "{w:04X}");
        }
        assert_eq!(StatusWord(0x6112).decode(), Sw::MoreData(0x12));
        assert_eq!(StatusWord(0x63C3).decode(), Sw::VerifyFailed { retries: 3 });
        assert_eq!(StatusWord(0x6400).decode(), Sw::Unknown(0x6400));
    }

    #[test]
    fn response_split() {
        let r = Response::from_bytes(vec![1, 2, 0x90, 0]).unwrap();
        assert_eq!(r.data(), &[1, 2]);
        assert!(r.sw.is_ok());
        assert!(Response::from_bytes(vec![0x90]).is_err());
    }

    struct Chunky {
        parts: Vec<Vec<u8>>,
        seen: Vec<Vec<u8>>,
    }
    impl Transport for Chunky {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            self.seen.push(apdu.to_vec());
            Ok(self.parts.remove(0))
        }
    }

    /// A card that keeps answering `61xx` with full chunks.
    struct Endless {
        chunk: usize,
        sent: usize,
    }
    impl Transport for Endless {
        fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            self.sent += 1;
            let mut out = vec![0xAB; self.chunk];
            out.extend_from_slice(&[0x61, 0x00]);
            Ok(out)
        }
    }

    #[test]
    fn chaining_stops_at_64_kib_with_a_device_error() {
        for chunk in [255usize, 4096, 65_536] {
            let mut t = Endless { chunk, sent: 0 };
            let e = transmit_chained(&mut t, &Command::new(0, 0xA1, 0, 0), 0xA5).unwrap_err();
            let text = e.to_string();
            assert!(text.contains("64 KiB"), "{chunk}: {text}");
            assert_eq!(crate::error::Classify::kind(&e), crate::error::Kind::Device);
            // Never more than the bound (plus the chunk that crossed it) was taken in.
            assert!(
                t.sent * chunk <= MAX_RESPONSE + chunk,
                "{chunk}: {} answers",
                t.sent
            );
        }
        // Exactly 64 KiB in all is still a response.
        let mut parts: Vec<Vec<u8>> = (0..15)
            .map(|_| {
                let mut p = vec![1u8; 4096];
                p.extend_from_slice(&[0x61, 0x00]);
                p
            })
            .collect();
        let mut last = vec![1u8; 4096];
        last.extend_from_slice(&[0x90, 0x00]);
        parts.push(last);
        let mut t = Chunky {
            parts,
            seen: vec![],
        };
        let r = transmit_chained(&mut t, &Command::new(0, 0xA1, 0, 0), 0xA5).unwrap();
        assert_eq!(r.data().len(), MAX_RESPONSE);
    }

    #[test]
    fn chaining_uses_the_applets_send_remaining() {
        let mut t = Chunky {
            parts: vec![
                vec![1, 2, 0x61, 0x02],
                vec![3, 4, 0x61, 0x01],
                vec![5, 0x90, 0x00],
            ],
            seen: vec![],
        };
        let r = transmit_chained(&mut t, &Command::new(0, 0xA1, 0, 0), 0xA5).unwrap();
        assert_eq!(r.data(), &[1, 2, 3, 4, 5]);
        assert!(r.sw.is_ok());
        assert_eq!(t.seen[1], vec![0, 0xA5, 0, 0]);
        assert_eq!(t.seen.len(), 3);
    }
}
