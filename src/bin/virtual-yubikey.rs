//! `virtual-yubikey`: a YubiKey 5 card emulator served to pcscd through the
//! vpcd virtual reader, for tests. Prints `ready <port>` once connected and
//! serves until pcscd closes the connection or SIGTERM/SIGINT (exit 0).

use clap::Parser;
use mfakey::version::Version;
use mfakey::virtual_key::{self, vpcd, Config, FormFactor, TouchPolicy, VirtualYubiKey};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    version,
    about = "A virtual YubiKey 5 (OATH, Management, PIV serial) on vpcd, for tests"
)]
struct Args {
    /// Address of pcscd's vpcd driver slot.
    #[arg(long, value_name = "HOST:PORT", default_value = vpcd::DEFAULT_ADDR)]
    vpcd: String,
    /// Serial number.
    #[arg(long, value_name = "N", default_value_t = 12_345_678)]
    serial: u32,
    /// Firmware version (32 OATH slots before 5.7.0, 64 from it; RENAME from 5.3.1).
    #[arg(long, value_name = "X.Y.Z", default_value = "5.7.1")]
    firmware: Version,
    /// usb-a-keychain, usb-c-keychain, usb-a-nano, usb-c-nano, usb-c-lightning, usb-a-bio, usb-c-bio.
    #[arg(long, value_name = "KIND", default_value = "usb-a-keychain")]
    form_factor: FormFactor,
    /// Report no NFC interface (default: NFC for keychains only).
    #[arg(long)]
    no_nfc: bool,
    /// FIDO2 disabled in the enabled capabilities.
    #[arg(long)]
    no_fido2: bool,
    /// OATH disabled: selecting it answers 6A82.
    #[arg(long)]
    no_oath: bool,
    /// Keep OATH credentials and password in this file (JSON, mode 0600).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// approve, timeout (answers 6982) or delay-ms=N.
    #[arg(long, value_name = "POLICY", default_value = "approve")]
    touch: TouchPolicy,
    /// How long to retry connecting while pcscd starts.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    connect_timeout_ms: u64,
    /// Tests: pull the key out when command APDU number N arrives, before
    /// the card sees it (the key disconnects; its state stays as it was).
    #[arg(long, value_name = "N", conflicts_with = "pull_after")]
    pull_at: Option<u32>,
    /// Tests: pull the key out right after command APDU number N took
    /// effect, before its answer goes back.
    #[arg(long, value_name = "N")]
    pull_after: Option<u32>,
    /// Log command names and status words to stderr (never data).
    #[arg(short, long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = Config {
        serial: args.serial,
        firmware: args.firmware,
        form_factor: args.form_factor,
        nfc: virtual_key::form_factor_has_nfc(args.form_factor) && !args.no_nfc,
        fido2_enabled: !args.no_fido2,
        oath_enabled: !args.no_oath,
        touch: args.touch,
    };
    let mut key = match &args.state {
        Some(path) => match VirtualYubiKey::with_state_file(config, path) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("virtual-yubikey: {e}");
                return ExitCode::from(1);
            }
        },
        None => VirtualYubiKey::new(config),
    };
    let stop = vpcd::install_stop_signals();
    let timeout = Duration::from_millis(args.connect_timeout_ms);
    let stream = match vpcd::connect(&args.vpcd, timeout) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("virtual-yubikey: {e}");
            return ExitCode::from(1);
        }
    };
    let port = args.vpcd.rsplit(':').next().unwrap_or("");
    println!("ready {port}");
    let _ = std::io::stdout().flush();
    let verbose = args.verbose;
    let mut log = |line: &str| {
        if verbose || line.starts_with("warning:") {
            eprintln!("virtual-yubikey: {line}");
        }
    };
    let pull = match (args.pull_at, args.pull_after) {
        (Some(at), _) => Some(vpcd::Pull { at, after: false }),
        (None, Some(at)) => Some(vpcd::Pull { at, after: true }),
        (None, None) => None,
    };
    match vpcd::serve(stream, &mut key, stop, pull, &mut log) {
        Ok(end) => {
            log(&format!("{end:?}"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("virtual-yubikey: {e}");
            ExitCode::from(1)
        }
    }
}
