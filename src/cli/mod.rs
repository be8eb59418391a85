//! The command line: parse, run one command, render its report or error.
//! Only this layer prints or reads the terminal.

mod audit;
mod board;
mod bulk;
mod code;
mod console;
mod docs;
mod enroll;
mod fido2;
mod fido2_keys;
mod harden;
mod input;
mod keys;
mod lifecycle;
mod oath;
mod render;
mod session;

use crate::error::{exit, Failure};
use clap::{Args, Parser, Subcommand};
use render::Output;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "mfakey",
    version,
    about = "Put AWS MFA onto YubiKeys",
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalOpts {
    /// Reader to use: its exact name, or a part matching exactly one reader
    #[arg(long, global = true, value_name = "NAME")]
    pub reader: Option<String>,
    /// Serial number of the key to use
    #[arg(long, global = true, value_name = "N")]
    pub serial: Option<u32>,
    /// Print one JSON document on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// More detail on stderr (repeatable)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print every APDU on stderr (key material redacted)
    #[arg(long, global = true)]
    pub trace_apdu: bool,
    /// File holding the OATH password of a password-protected key (first line)
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List every YubiKey present: serial, firmware, OATH slots, password, FIDO2
    Keys,
    /// Work with the key's OATH applet
    #[command(subcommand)]
    Oath(oath::OathCmd),
    /// Enroll MFA onto the key
    #[command(subcommand)]
    Enroll(enroll::EnrollCmd),
    /// Finish or undo enrollments a killed run left unfinished (reads the journal)
    Recover(enroll::RecoverArgs),
    /// List (and with --delete remove) unassigned virtual MFA devices mfakey created
    Cleanup(enroll::CleanupArgs),
    /// Audit the account's first-day security settings (root, MFA, admins, CloudTrail)
    Audit(audit::AuditArgs),
    /// Set up what the audit found missing
    #[command(subcommand)]
    Baseline(audit::BaselineCmd),
    /// The key's FIDO2 side: info, PIN, passkeys, guided console registration
    #[command(subcommand)]
    Fido2(fido2::Fido2Cmd),
    /// Enroll a CSV manifest's users, one key after another, resumable
    Bulk(bulk::BulkArgs),
    /// Every virtual MFA device mfakey put on a key, by key serial, and the users on a single key
    Inventory(lifecycle::InventoryArgs),
    /// A lost or stolen key: deactivate and delete every device tagged as on it, in every account given
    Revoke(lifecycle::RevokeArgs),
    /// Move a key's users onto the key in the reader, then revoke the old key's devices
    Replace(lifecycle::ReplaceArgs),
    /// Resynchronize a user's virtual MFA device with two codes from the key
    Resync(lifecycle::ResyncArgs),
    /// A leaver: remove every MFA device of the user, and their proven credential from the key
    Offboard(lifecycle::OffboardArgs),
    /// Print the current code of a profile's MFA device (aws-vault's mfa_process)
    Code(code::CodeArgs),
    /// Print a shell completion script
    Completions(docs::CompletionsArgs),
}

/// Runs the program: the process's exit code.
pub fn run() -> ExitCode {
    // `mfakey man DIR`, for packagers: outside `Cli`, so that neither
    // --help, the completions nor the man pages offer it.
    if let Some(code) = docs::packager_command() {
        return code;
    }
    let wants_json = std::env::args().any(|a| a == "--json");
    // Before any secret can be read: no core dump, no same-user ptrace.
    if let Err(e) = harden::no_core_dumps() {
        Output {
            json: wants_json,
            verbose: false,
        }
        .error(&e);
        return ExitCode::from(e.exit_code());
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let _ = e.print();
            if wants_json {
                let err = Failure::usage(e.kind().to_string());
                Output {
                    json: true,
                    verbose: false,
                }
                .error_json_only(&err);
            }
            return ExitCode::from(exit::USAGE);
        }
    };
    let out = Output {
        json: cli.global.json,
        verbose: cli.global.verbose > 0,
    };
    match dispatch(&cli, out) {
        Ok((report, code)) => {
            out.report(&report);
            ExitCode::from(code)
        }
        Err(e) => {
            out.error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// The report and the exit status (0, except `audit`'s findings codes).
fn dispatch(cli: &Cli, out: Output) -> Result<(render::Report, u8), Failure> {
    let report = match &cli.command {
        Command::Keys => keys::run(&cli.global, out),
        Command::Oath(cmd) => oath::run(cmd, &cli.global, out),
        Command::Enroll(cmd) => enroll::run_enroll(cmd, &cli.global, out),
        Command::Recover(a) => lifecycle::run_recover(a, &cli.global, out),
        Command::Cleanup(a) => enroll::run_cleanup(a, &cli.global, out),
        Command::Fido2(cmd) => fido2::run(cmd, &cli.global, out),
        Command::Bulk(a) => bulk::run(a, &cli.global, out),
        Command::Inventory(a) => lifecycle::run_inventory(a, &cli.global, out),
        Command::Revoke(a) => lifecycle::run_revoke(a, &cli.global, out),
        Command::Replace(a) => lifecycle::run_replace(a, &cli.global, out),
        Command::Resync(a) => lifecycle::run_resync(a, &cli.global, out),
        Command::Offboard(a) => lifecycle::run_offboard(a, &cli.global, out),
        Command::Code(a) => code::run(a, &cli.global, out),
        Command::Completions(a) => docs::completions(a),
        Command::Baseline(cmd) => audit::run_baseline(cmd, out),
        Command::Audit(a) => return audit::run_audit(a, cli.global.verbose > 0, out),
    }?;
    Ok((report, 0))
}
