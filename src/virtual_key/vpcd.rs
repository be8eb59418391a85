//! Serving the virtual key to pcscd through vsmartcard's vpcd driver.
//!
//! The card is a TCP client of the driver (127.0.0.1:35963 for reader
//! "Virtual PCD 00 00"). Every frame both ways is a 2-byte big-endian length
//! and a payload. One-byte payloads from the reader are control messages
//! (0 power off, 1 power on, 2 reset, 4 send ATR; only 4 is answered); longer
//! ones are command APDUs, answered with data + SW. Closing the connection
//! removes the card.
//!
//! Latency: the driver writes a frame's length and payload in two TCP writes.
//! Unless the card sets `TCP_NODELAY` and re-arms `TCP_QUICKACK` before every
//! read, Nagle and delayed ACKs cost ~40 ms per APDU. Answers go out in one
//! write (length and payload in one buffer) for the same reason.

use super::VirtualYubiKey;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The default address of the first vpcd reader slot.
pub const DEFAULT_ADDR: &str = "127.0.0.1:35963";

/// How often a blocked read wakes up to look at the stop flag.
const POLL: Duration = Duration::from_millis(200);

/// pcscd asks for the ATR every 400 ms; silence this long means the slot is
/// not polled (a listening port that no reader thread serves).
#[cfg(not(test))]
const SILENT_READER: Duration = Duration::from_secs(3);
#[cfg(test)]
const SILENT_READER: Duration = Duration::from_millis(300);
const SILENT_READER_WARNING: &str = "warning: connected, but the reader has sent nothing \
     for 3 s: pcscd does not poll this vpcd port (in its reader.conf, vpcd entries that share \
     one driver file overwrite each other's slots)";

const CTRL_POWER_OFF: u8 = 0;
const CTRL_POWER_ON: u8 = 1;
const CTRL_RESET: u8 = 2;
const CTRL_ATR: u8 = 4;

/// Errors connecting to or talking with the vpcd driver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VpcdError {
    #[error("cannot reach the vpcd reader at {addr} ({source}): start pcscd with the vsmartcard-vpcd driver, or pass --vpcd HOST:PORT")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("the connection to the vpcd reader failed: {0}")]
    Io(std::io::Error),
}

/// Why serving ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServeEnd {
    /// pcscd closed the connection.
    ReaderClosed,
    /// The stop flag was raised (SIGTERM/SIGINT).
    Stopped,
    /// The key was "pulled" at the APDU [`Pull`] named.
    Pulled,
}

/// Where a test pulls the key out: at command APDU number `at` (1-based,
/// counted over the whole insertion), before the card sees it (`after`
/// false: it never happened) or after the card acted on it but before the
/// answer went back (`after` true: it happened, the answer was lost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pull {
    pub at: u32,
    pub after: bool,
}

/// Connects to the driver, retrying until `timeout` while pcscd starts.
pub fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, VpcdError> {
    let deadline = Instant::now() + timeout;
    let fail = |source| VpcdError::Connect {
        addr: addr.into(),
        source,
    };
    loop {
        // Resolve each round; bound each attempt by what is left of the
        // deadline (a full listen queue drops SYNs and would block for long).
        let attempt = addr.to_socket_addrs().and_then(|mut addrs| {
            let sa = addrs
                .next()
                .ok_or_else(|| std::io::Error::other("the address resolves to nothing"))?;
            let left = deadline.saturating_duration_since(Instant::now());
            TcpStream::connect_timeout(&sa, left.max(Duration::from_millis(10)))
        });
        match attempt {
            Ok(s) => return Ok(s),
            Err(source) if Instant::now() >= deadline => return Err(fail(source)),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Asks the kernel to acknowledge at once. Linux clears this flag by itself,
/// so it is set again before every read.
fn quickack(stream: &TcpStream) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let one: libc::c_int = 1;
        // SAFETY: a valid socket fd and a pointer to a c_int of the given size.
        unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = stream;
}

enum ReadOutcome {
    Done,
    Eof,
    Stopped,
}

/// Fills `buf`, waking up to check `stop` and to call `idle`.
fn read_full(
    stream: &mut TcpStream,
    buf: &mut [u8],
    stop: &AtomicBool,
    idle: &mut dyn FnMut(),
) -> Result<ReadOutcome, VpcdError> {
    let mut filled = 0;
    while filled < buf.len() {
        if stop.load(Ordering::SeqCst) {
            return Ok(ReadOutcome::Stopped);
        }
        quickack(stream);
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Ok(ReadOutcome::Eof),
            Ok(n) => filled += n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                idle()
            }
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return Ok(ReadOutcome::Eof)
            }
            Err(e) => return Err(VpcdError::Io(e)),
        }
    }
    Ok(ReadOutcome::Done)
}

/// Writes one frame (length + payload) in a single write.
fn write_frame(stream: &mut TcpStream, payload: &[u8]) -> Result<(), VpcdError> {
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&payload[..len as usize]);
    stream.write_all(&frame).map_err(VpcdError::Io)
}

/// Serves `key` on `stream` until the reader closes the connection or `stop`
/// is raised. `log` receives command names and status words only, and one
/// line starting with `warning:` if the reader stays silent after connecting.
pub fn serve(
    mut stream: TcpStream,
    key: &mut VirtualYubiKey,
    stop: &AtomicBool,
    pull: Option<Pull>,
    log: &mut dyn FnMut(&str),
) -> Result<ServeEnd, VpcdError> {
    let mut apdus = 0u32;
    stream.set_nodelay(true).map_err(VpcdError::Io)?;
    stream.set_read_timeout(Some(POLL)).map_err(VpcdError::Io)?;
    let mut header = [0u8; 2];
    let connected = Instant::now();
    let mut heard = false;
    loop {
        let mut idle = || {
            if !heard && connected.elapsed() >= SILENT_READER {
                heard = true; // warn once
                log(SILENT_READER_WARNING);
            }
        };
        let header_read = read_full(&mut stream, &mut header, stop, &mut idle)?;
        heard = true;
        match header_read {
            ReadOutcome::Done => {}
            ReadOutcome::Eof => return Ok(ServeEnd::ReaderClosed),
            ReadOutcome::Stopped => return Ok(ServeEnd::Stopped),
        }
        let mut payload = zeroize::Zeroizing::new(vec![0u8; u16::from_be_bytes(header) as usize]);
        match read_full(&mut stream, &mut payload, stop, &mut || {})? {
            ReadOutcome::Done => {}
            ReadOutcome::Eof => return Ok(ServeEnd::ReaderClosed),
            ReadOutcome::Stopped => return Ok(ServeEnd::Stopped),
        }
        match payload.as_slice() {
            [] => {}
            [CTRL_POWER_OFF] => {
                log("power off");
                key.power_cycle();
            }
            [CTRL_POWER_ON] => {
                log("power on");
                key.power_cycle();
            }
            [CTRL_RESET] => {
                log("reset");
                key.power_cycle();
            }
            [CTRL_ATR] => {
                log("ATR requested");
                write_frame(&mut stream, key.atr())?;
            }
            [other] => log(&format!("unknown control message {other}")),
            apdu => {
                apdus += 1;
                let name = key.command_name(apdu);
                let pulled_here = pull.filter(|p| p.at == apdus);
                if pulled_here.is_some_and(|p| !p.after) {
                    log(&format!("pulled before {name}"));
                    return Ok(ServeEnd::Pulled);
                }
                let started = Instant::now();
                let answer = zeroize::Zeroizing::new(key.process(apdu));
                if pulled_here.is_some() {
                    log(&format!("pulled after {name}, its answer lost"));
                    return Ok(ServeEnd::Pulled);
                }
                write_frame(&mut stream, &answer)?;
                let sw = match answer.as_slice() {
                    [.., a, b] => u16::from_be_bytes([*a, *b]),
                    _ => 0,
                };
                log(&format!(
                    "{name}: {sw:04X} ({} bytes, {:.3} ms)",
                    answer.len().saturating_sub(2),
                    started.elapsed().as_secs_f64() * 1e3
                ));
            }
        }
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs SIGTERM and SIGINT handlers that raise the returned flag
/// (without SA_RESTART, so a blocked read returns at once).
pub fn install_stop_signals() -> &'static AtomicBool {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; the sigaction struct is fully initialised.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = 0;
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
    &STOP
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A fake vpcd driver on a free port: it sends frames the way pcscd does
    /// (length and payload in separate writes) and reads answers.
    fn frame_pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let card = connect(&addr, Duration::from_secs(2)).unwrap();
        let (reader, _) = l.accept().unwrap();
        (reader, card)
    }

    fn send(reader: &mut TcpStream, payload: &[u8]) {
        reader
            .write_all(&(payload.len() as u16).to_be_bytes())
            .unwrap();
        reader.write_all(payload).unwrap();
    }

    fn recv(reader: &mut TcpStream) -> Vec<u8> {
        let mut h = [0u8; 2];
        reader.read_exact(&mut h).unwrap();
        let mut p = vec![0u8; u16::from_be_bytes(h) as usize];
        reader.read_exact(&mut p).unwrap();
        p
    }

    #[test]
    fn serves_atr_apdus_and_ends_when_the_reader_closes() {
        let (mut reader, card) = frame_pair();
        let server = std::thread::spawn(move || {
            let mut key = VirtualYubiKey::new(Default::default());
            let stop = AtomicBool::new(false);
            let mut names = Vec::new();
            let end = serve(card, &mut key, &stop, None, &mut |l| {
                names.push(l.to_string())
            })
            .unwrap();
            (end, names)
        });
        reader.set_nodelay(true).unwrap();
        send(&mut reader, &[CTRL_POWER_ON]);
        send(&mut reader, &[CTRL_ATR]);
        assert_eq!(recv(&mut reader), super::super::ATR);
        send(
            &mut reader,
            &[0, 0xA4, 4, 0, 8, 0xA0, 0, 0, 5, 0x27, 0x47, 0x11, 0x17],
        );
        assert_eq!(recv(&mut reader), b"5.7.1\x90\x00");
        // Time many round trips: with the socket options this is well under
        // the 40 ms a delayed ACK costs.
        let t = Instant::now();
        for _ in 0..50 {
            send(&mut reader, &[0, 0x1D, 0, 0, 0]);
            assert_eq!(recv(&mut reader).last(), Some(&0x00));
        }
        let per = t.elapsed() / 50;
        assert!(per < Duration::from_millis(20), "{per:?} per APDU");
        drop(reader);
        let (end, names) = server.join().unwrap();
        assert_eq!(end, ServeEnd::ReaderClosed);
        assert!(names
            .iter()
            .any(|n| n.starts_with("SELECT MANAGEMENT: 9000")));
        assert!(names
            .iter()
            .any(|n| n.starts_with("MANAGEMENT READ CONFIG: 9000")));
    }

    #[test]
    fn stops_when_the_flag_is_raised() {
        let (_reader, card) = frame_pair();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let server = std::thread::spawn(move || {
            let mut key = VirtualYubiKey::new(Default::default());
            serve(card, &mut key, &s2, None, &mut |_| {}).unwrap()
        });
        std::thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::SeqCst);
        assert_eq!(server.join().unwrap(), ServeEnd::Stopped);
    }

    #[test]
    fn warns_once_when_the_reader_never_speaks() {
        let (_reader, card) = frame_pair();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let server = std::thread::spawn(move || {
            let mut key = VirtualYubiKey::new(Default::default());
            let mut lines = Vec::new();
            serve(card, &mut key, &s2, None, &mut |l| {
                lines.push(l.to_string())
            })
            .unwrap();
            lines
        });
        std::thread::sleep(SILENT_READER * 3);
        stop.store(true, Ordering::SeqCst);
        let lines = server.join().unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("warning:"));
    }

    #[test]
    fn connect_gives_up_after_the_timeout() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let t = Instant::now();
        let e = connect(&addr, Duration::from_millis(150)).unwrap_err();
        assert!(t.elapsed() >= Duration::from_millis(150));
        assert!(e.to_string().contains("start pcscd"));
    }
}
