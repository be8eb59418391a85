// SPDX-License-Identifier: AGPL-3.0-or-later
// (built on soft-fido2, AGPL-3.0; a test peer, never part of mfakey: docs/TESTING.md)
//! A FIDO2 authenticator in software for mfakey's guest tests: CTAP2 over
//! CTAPHID on a Linux UHID device, so the kernel gives it a real
//! `/dev/hidraw*` node that hidapi (inside mfakey) and python-fido2 open as
//! they would open a key.
//!
//! What it is, on purpose: client PIN supported and not set, PIN/UV auth
//! protocol 2 only (soft-fido2's choice, which catches a client that assumes
//! protocol 1), discoverable credentials with credential management, user
//! presence always granted (there is no one to touch it), no built-in user
//! verification (the PIN is the only UV). Credentials live in memory and die
//! with the process; each start is a fresh key.
//!
//!   mfakey-test-authenticator [--ready-file PATH] [--pin-state PATH]
//!                             [--reset-window-ms N]
//!
//! `--ready-file` is created once the kernel has started the HID device.
//! `--pin-state` keeps the PIN (its hash), the retry counter and the
//! minimum length in a file across restarts, so that stopping and starting
//! again is re-inserting the same key (passkeys still start empty); without
//! it each start is a new key. `--reset-window-ms N` plays a key's rule for
//! authenticatorReset: only within N ms of insertion (this start), later
//! `CTAP2_ERR_NOT_ALLOWED` (without it, always). SIGTERM (or SIGINT) destroys
//! the device and exits 0.

use soft_fido2::{
    Authenticator, AuthenticatorCallbacks, AuthenticatorConfig, AuthenticatorOptions, Credential,
    CredentialRef, PinState, PinStorageCallbacks, Result as FidoResult, StatusCode, UpResult,
    UvResult,
};
use soft_fido2_transport::{Cmd, CommandHandler, CtapHidHandler, Packet, UhidDevice};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The AAGUID the guest scenarios expect from `mfakey fido2 info`.
pub const AAGUID: [u8; 16] = *b"mfakey-test-auth";
/// Reported firmware 1.2.3 (YubiKey-style `major << 16 | minor << 8 | patch`).
pub const FIRMWARE: u32 = 0x01_02_03;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Credentials by id, in memory.
#[derive(Default)]
struct Store {
    creds: Mutex<BTreeMap<Vec<u8>, Credential>>,
}

impl AuthenticatorCallbacks for Store {
    fn request_up(&self, _info: &str, _user: Option<&str>, _rp: &str) -> FidoResult<UpResult> {
        Ok(UpResult::Accepted)
    }

    fn request_uv(&self, _info: &str, _user: Option<&str>, _rp: &str) -> FidoResult<UvResult> {
        // No fingerprint reader: only the PIN verifies the user.
        Ok(UvResult::Denied)
    }

    fn write_credential(&self, cred: &CredentialRef) -> FidoResult<()> {
        let owned = cred.to_owned();
        self.creds.lock().unwrap().insert(owned.id.clone(), owned);
        Ok(())
    }

    fn read_credential(&self, id: &[u8]) -> FidoResult<Option<Credential>> {
        Ok(self.creds.lock().unwrap().get(id).cloned())
    }

    fn delete_credential(&self, id: &[u8]) -> FidoResult<()> {
        self.creds.lock().unwrap().remove(id);
        Ok(())
    }

    fn list_credentials(&self, rp_id: &str, user_id: Option<&[u8]>) -> FidoResult<Vec<Credential>> {
        Ok(self
            .creds
            .lock()
            .unwrap()
            .values()
            .filter(|c| c.rp.id == rp_id && user_id.is_none_or(|u| c.user.id == u))
            .cloned()
            .collect())
    }

    fn enumerate_rps(&self) -> FidoResult<Vec<(String, Option<String>, usize)>> {
        let mut rps: BTreeMap<String, (Option<String>, usize)> = BTreeMap::new();
        for c in self.creds.lock().unwrap().values() {
            rps.entry(c.rp.id.clone())
                .or_insert((c.rp.name.clone(), 0))
                .1 += 1;
        }
        Ok(rps
            .into_iter()
            .map(|(id, (name, n))| (id, name, n))
            .collect())
    }

    fn credential_count(&self) -> FidoResult<usize> {
        Ok(self.creds.lock().unwrap().len())
    }

    fn get_timestamp_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// The PIN state in a file (CBOR, 0600, replaced whole on every change).
struct PinFile(PathBuf);

impl PinStorageCallbacks for PinFile {
    fn load_pin_state(&self) -> Result<PinState, StatusCode> {
        // No file yet: a new key (the library then starts from its defaults).
        let bytes = std::fs::read(&self.0).map_err(|_| StatusCode::Other)?;
        cbor4ii::serde::from_slice(&bytes).map_err(|e| {
            eprintln!("authenticator: {}: {e}", self.0.display());
            StatusCode::Other
        })
    }

    fn save_pin_state(&self, state: &PinState) -> Result<(), StatusCode> {
        let tmp = self.0.with_extension("new");
        let bytes = cbor4ii::serde::to_vec(Vec::new(), state).map_err(|_| StatusCode::Other)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|_| StatusCode::Other)?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &self.0))
            .map_err(|_| StatusCode::Other)
    }
}

/// CTAPHID CBOR messages to the CTAP2 authenticator; CTAP errors travel as
/// status bytes inside the answer, as on a key.
struct Cbor {
    auth: Authenticator<Store>,
    /// CTAP2 requests served (printed at exit: how chatty clients are).
    requests: u64,
    /// When this key was inserted (started).
    started: std::time::Instant,
    /// How long after insertion a reset is still taken.
    reset_window: Option<std::time::Duration>,
}

/// authenticatorReset's command byte, and the status a key gives it too late.
const RESET: u8 = 0x07;
const NOT_ALLOWED: u8 = 0x30;

impl CommandHandler for Cbor {
    fn handle_command(&mut self, cmd: Cmd, data: &[u8]) -> soft_fido2_transport::Result<Vec<u8>> {
        if cmd != Cmd::Cbor {
            return Err(soft_fido2_transport::Error::InvalidCommand);
        }
        self.requests += 1;
        let late = self
            .reset_window
            .is_some_and(|w| self.started.elapsed() > w);
        if data.first() == Some(&RESET) && late {
            eprintln!("authenticator: reset refused, {:?} after insertion", self.started.elapsed());
            return Ok(vec![NOT_ALLOWED]);
        }
        let mut answer = Vec::new();
        self.auth
            .handle(data, &mut answer)
            .map_err(|e| soft_fido2_transport::Error::Other(format!("{e:?}")))?;
        Ok(answer)
    }
}

fn config() -> AuthenticatorConfig {
    AuthenticatorConfig::builder()
        .aaguid(AAGUID)
        .firmware_version(FIRMWARE)
        .max_credentials(25)
        .force_resident_keys(false)
        .options(
            AuthenticatorOptions::new()
                .with_resident_keys(true)
                .with_user_presence(true)
                .with_user_verification(None)
                .with_client_pin(Some(false))
                .with_pin_uv_auth_token(Some(true))
                .with_credential_management(Some(true))
                .with_make_cred_uv_not_required(Some(true)),
        )
        .device_name("mfakey test authenticator".to_string())
        .build()
}

/// Waits up to `ms` for the UHID fd to have an event (poll, not a sleep loop:
/// under emulation every millisecond of latency counts per HID packet).
fn wait_readable(fd: libc::c_int, ms: libc::c_int) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, count 1.
    unsafe { libc::poll(&mut p, 1, ms) };
}

fn run(
    ready_file: Option<String>,
    pin_state: Option<PathBuf>,
    reset_window: Option<std::time::Duration>,
) -> Result<(), String> {
    let cfg = config();
    let auth = match pin_state {
        Some(path) => {
            Authenticator::with_config_and_pin_storage(Store::default(), cfg.clone(), PinFile(path))
        }
        None => Authenticator::with_config(Store::default(), cfg.clone()),
    }
    .map_err(|e| format!("authenticator: {e:?}"))?;
    let device = UhidDevice::create_fido_device_with_ids(
        cfg.device_name.as_deref(),
        cfg.vendor_id,
        cfg.product_id,
        cfg.device_version,
    )
    .map_err(|e| format!("/dev/uhid: {e}"))?;
    let mut hid = CtapHidHandler::new(Cbor {
        auth,
        requests: 0,
        started: std::time::Instant::now(),
        reset_window,
    });
    if let Some(path) = ready_file {
        std::fs::write(&path, b"ready\n").map_err(|e| format!("{path}: {e}"))?;
    }
    eprintln!("authenticator: UHID device started");
    let fd = device.as_raw_fd();
    let mut buf = [0u8; 64];
    while !STOP.load(Ordering::SeqCst) {
        match device.read_packet(&mut buf) {
            Ok(Some(_)) => {
                let answers = hid
                    .process_packet(Packet::from_bytes(buf))
                    .map_err(|e| format!("CTAPHID: {e}"))?;
                for a in answers {
                    device
                        .write_packet(a.as_bytes())
                        .map_err(|e| format!("UHID write: {e}"))?;
                }
            }
            Ok(None) => wait_readable(fd, 200),
            Err(e) => return Err(format!("UHID read: {e}")),
        }
    }
    // Dropping the device closes /dev/uhid: the kernel removes the hidraw node.
    drop(device);
    eprintln!(
        "authenticator: stopped after {} CTAP2 requests",
        hid.command_handler().requests
    );
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut ready_file = None;
    let mut pin_state = None;
    let mut reset_window = None;
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--ready-file", Some(p)) => ready_file = Some(p),
            ("--pin-state", Some(p)) => pin_state = Some(PathBuf::from(p)),
            ("--reset-window-ms", Some(n)) if n.parse::<u64>().is_ok() => {
                reset_window = n.parse().ok().map(std::time::Duration::from_millis)
            }
            _ => {
                eprintln!(
                    "usage: mfakey-test-authenticator [--ready-file PATH] [--pin-state PATH] [--reset-window-ms N]"
                );
                return ExitCode::from(2);
            }
        }
    }
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    match run(ready_file, pin_state, reset_window) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authenticator: {e}");
            ExitCode::FAILURE
        }
    }
}
