//! The little of CTAPHID (FIDO's framing of messages in 64-byte HID
//! reports, CTAP 2.1 §11.2) mfakey speaks itself, for the one command
//! `ctap-hid-fido2` does not send: authenticatorReset (0x07). One channel
//! from INIT, one CBOR message, keep-alives while the key waits for a
//! touch, the status byte of the answer.

use super::Fido2Error;
use std::io::{Read, Write};
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

const REPORT: usize = 64;
const BROADCAST: [u8; 4] = [0xFF; 4];
const INIT: u8 = 0x86;
const CBOR: u8 = 0x90;
const KEEPALIVE: u8 = 0xBB;
const ERROR: u8 = 0xBF;
/// KEEPALIVE status: the key waits for a touch.
const UP_NEEDED: u8 = 2;
/// authenticatorReset.
const RESET: u8 = 0x07;
/// How long a key may take to answer (a touch it waits for times out on
/// the key's side first, about 30 s).
const ANSWER_WITHIN: Duration = Duration::from_secs(40);

/// Whole HID reports to and from a key.
pub(crate) trait Reports {
    fn send(&mut self, report: &[u8; REPORT]) -> std::io::Result<()>;
    /// The next report, or `None` when `wait` passes without one.
    fn recv(&mut self, wait: Duration) -> std::io::Result<Option<[u8; REPORT]>>;
}

/// A `/dev/hidraw*` node, opened read-write.
pub(crate) struct Hidraw(std::fs::File);

impl Hidraw {
    pub(crate) fn open(path: &str) -> std::io::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        Ok(Hidraw(f))
    }
}

impl Reports for Hidraw {
    fn send(&mut self, report: &[u8; REPORT]) -> std::io::Result<()> {
        // hidraw takes the report number first; FIDO keys number none.
        let mut out = [0u8; REPORT + 1];
        out[1..].copy_from_slice(report);
        self.0.write_all(&out)
    }

    fn recv(&mut self, wait: Duration) -> std::io::Result<Option<[u8; REPORT]>> {
        let mut p = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = wait.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd, count 1.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(None);
        }
        let mut buf = [0u8; REPORT];
        let got = self.0.read(&mut buf)?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(Some(buf))
    }
}

fn io(e: std::io::Error) -> Fido2Error {
    Fido2Error::Device(format!("the key's HID node: {e}"))
}

/// Sends one message on channel `cid` (an initialization report, then
/// continuation reports numbered from 0).
fn send_message(
    dev: &mut dyn Reports,
    cid: [u8; 4],
    cmd: u8,
    data: &[u8],
) -> Result<(), Fido2Error> {
    let mut r = [0u8; REPORT];
    r[..4].copy_from_slice(&cid);
    r[4] = cmd;
    r[5..7].copy_from_slice(&(data.len() as u16).to_be_bytes());
    let first = data.len().min(REPORT - 7);
    r[7..7 + first].copy_from_slice(&data[..first]);
    dev.send(&r).map_err(io)?;
    for (seq, chunk) in data[first..].chunks(REPORT - 5).enumerate() {
        let mut r = [0u8; REPORT];
        r[..4].copy_from_slice(&cid);
        r[4] = seq as u8;
        r[5..5 + chunk.len()].copy_from_slice(chunk);
        dev.send(&r).map_err(io)?;
    }
    Ok(())
}

/// The answer to a message on `cid`: its command and data. Reports of other
/// channels are skipped; keep-alives call `on_touch` once when the key
/// waits for a touch.
fn recv_message(
    dev: &mut dyn Reports,
    cid: [u8; 4],
    on_touch: &mut dyn FnMut(),
) -> Result<(u8, Vec<u8>), Fido2Error> {
    let deadline = Instant::now() + ANSWER_WITHIN;
    let mut told = false;
    let mut next = || -> Result<[u8; REPORT], Fido2Error> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match dev.recv(left).map_err(io)? {
                Some(r) if r[..4] == cid => return Ok(r),
                Some(_) => continue,
                None => return Err(Fido2Error::Device("the key did not answer".into())),
            }
        }
    };
    let first = loop {
        let r = next()?;
        match r[4] {
            KEEPALIVE => {
                if r[7] == UP_NEEDED && !told {
                    told = true;
                    on_touch();
                }
            }
            ERROR => return Err(Fido2Error::Device(format!("CTAPHID error 0x{:02X}", r[7]))),
            _ => break r,
        }
    };
    let len = u16::from_be_bytes([first[5], first[6]]) as usize;
    let mut data = first[7..].to_vec();
    let mut seq = 0u8;
    while data.len() < len {
        let r = next()?;
        if r[4] != seq {
            return Err(Fido2Error::Device(
                "the key's answer came out of order".into(),
            ));
        }
        seq += 1;
        data.extend_from_slice(&r[5..]);
    }
    data.truncate(len);
    Ok((first[4], data))
}

/// A channel of our own (CTAPHID_INIT on the broadcast channel).
fn open_channel(dev: &mut dyn Reports) -> Result<[u8; 4], Fido2Error> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| Fido2Error::Device(e.to_string()))?;
    send_message(dev, BROADCAST, INIT, &nonce)?;
    loop {
        let (cmd, data) = recv_message(dev, BROADCAST, &mut || {})?;
        // Another client's INIT answer has another nonce.
        if cmd == INIT && data.len() >= 12 && data[..8] == nonce {
            let mut cid = [0u8; 4];
            cid.copy_from_slice(&data[8..12]);
            return Ok(cid);
        }
    }
}

/// authenticatorReset: every credential and the PIN go. The key's own
/// rules: only within seconds of its insertion (`CTAP2_ERR_NOT_ALLOWED`
/// after), and with a touch (`on_touch` is called when it waits for one).
pub(crate) fn reset(dev: &mut dyn Reports, on_touch: &mut dyn FnMut()) -> Result<(), Fido2Error> {
    let cid = open_channel(dev)?;
    send_message(dev, cid, CBOR, &[RESET])?;
    let (cmd, data) = recv_message(dev, cid, on_touch)?;
    if cmd != CBOR {
        return Err(Fido2Error::Device(format!(
            "the key answered the reset with command 0x{cmd:02X}"
        )));
    }
    match data.first() {
        Some(0x00) => Ok(()),
        Some(0x30) => Err(Fido2Error::ResetNotAllowed),
        // USER_ACTION_TIMEOUT, OPERATION_DENIED, KEEPALIVE_CANCEL.
        Some(0x2F | 0x27 | 0x2D) => Err(Fido2Error::ResetNotConfirmed),
        Some(s) => Err(Fido2Error::Device(format!(
            "the key refused the reset (CTAP status 0x{s:02X})"
        ))),
        None => Err(Fido2Error::Device(
            "the key's answer to the reset was empty".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A key behind reports: answers INIT with channel 01020304 and the
    /// reset with keep-alives, then `status`. Records what it was sent.
    struct Key {
        sent: Vec<[u8; REPORT]>,
        queue: VecDeque<[u8; REPORT]>,
        status: u8,
        keepalives: usize,
        /// Another client's report on another channel, before each answer.
        noise: bool,
    }

    fn report(cid: [u8; 4], cmd: u8, data: &[u8]) -> [u8; REPORT] {
        let mut r = [0u8; REPORT];
        r[..4].copy_from_slice(&cid);
        r[4] = cmd;
        r[5..7].copy_from_slice(&(data.len() as u16).to_be_bytes());
        r[7..7 + data.len()].copy_from_slice(data);
        r
    }

    impl Reports for Key {
        fn send(&mut self, r: &[u8; REPORT]) -> std::io::Result<()> {
            self.sent.push(*r);
            if self.noise {
                self.queue.push_back(report([9, 9, 9, 9], CBOR, &[0x00]));
            }
            match (r[..4] == BROADCAST, r[4]) {
                (true, INIT) => {
                    let mut d = r[7..15].to_vec();
                    d.extend_from_slice(&[1, 2, 3, 4, 2, 5, 7, 0, 0x05]);
                    self.queue.push_back(report(BROADCAST, INIT, &d));
                }
                (false, CBOR) => {
                    for _ in 0..self.keepalives {
                        self.queue
                            .push_back(report([1, 2, 3, 4], KEEPALIVE, &[UP_NEEDED]));
                    }
                    self.queue
                        .push_back(report([1, 2, 3, 4], CBOR, &[self.status]));
                }
                _ => {}
            }
            Ok(())
        }

        fn recv(&mut self, _: Duration) -> std::io::Result<Option<[u8; REPORT]>> {
            Ok(self.queue.pop_front())
        }
    }

    fn key(status: u8) -> Key {
        Key {
            sent: vec![],
            queue: VecDeque::new(),
            status,
            keepalives: 3,
            noise: true,
        }
    }

    #[test]
    fn reset_goes_on_its_own_channel_and_asks_for_a_touch_once() {
        let mut k = key(0x00);
        let mut touches = 0;
        reset(&mut k, &mut || touches += 1).unwrap();
        assert_eq!(touches, 1);
        // INIT on the broadcast channel with an 8-byte nonce, then one CBOR
        // message of one byte, 0x07, on the channel the key gave.
        assert_eq!(k.sent.len(), 2);
        assert_eq!(k.sent[0][..5], [0xFF, 0xFF, 0xFF, 0xFF, INIT]);
        assert_eq!(k.sent[0][5..7], [0, 8]);
        assert_eq!(k.sent[1][..8], [1, 2, 3, 4, CBOR, 0, 1, RESET]);
    }

    #[test]
    fn the_keys_refusals_say_why() {
        let e = reset(&mut key(0x30), &mut || {}).unwrap_err();
        assert_eq!(e, Fido2Error::ResetNotAllowed);
        assert!(e.to_string().contains("within"), "{e}");
        for s in [0x2F, 0x27] {
            assert_eq!(
                reset(&mut key(s), &mut || {}).unwrap_err(),
                Fido2Error::ResetNotConfirmed
            );
        }
        assert!(matches!(
            reset(&mut key(0x01), &mut || {}).unwrap_err(),
            Fido2Error::Device(m) if m.contains("0x01")
        ));
        // No answer at all.
        struct Mute;
        impl Reports for Mute {
            fn send(&mut self, _: &[u8; REPORT]) -> std::io::Result<()> {
                Ok(())
            }
            fn recv(&mut self, _: Duration) -> std::io::Result<Option<[u8; REPORT]>> {
                Ok(None)
            }
        }
        assert!(matches!(
            reset(&mut Mute, &mut || {}),
            Err(Fido2Error::Device(m)) if m.contains("did not answer")
        ));
    }

    #[test]
    fn long_messages_are_split_into_numbered_continuations() {
        let mut k = key(0);
        let data: Vec<u8> = (0..200u8).collect();
        send_message(&mut k, [1, 2, 3, 4], CBOR, &data).unwrap();
        // 57 bytes in the first report, then 59 per continuation.
        assert_eq!(k.sent.len(), 4);
        assert_eq!(k.sent[1][4], 0);
        assert_eq!(k.sent[3][4], 2);
        let mut back = k.sent[0][7..].to_vec();
        for r in &k.sent[1..] {
            back.extend_from_slice(&r[5..]);
        }
        assert_eq!(&back[..200], &data[..]);
    }
}
