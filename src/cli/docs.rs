//! `mfakey completions SHELL` and the packagers' `mfakey man DIR`: both
//! generated from the same clap definitions as `--help`, so they cannot
//! drift from it. `man` is parsed apart from [`Cli`], before it, so that
//! nothing generated from `Cli` offers it (clap's bash completion would
//! list even a hidden subcommand).

use super::render::{Output, Report};
use super::Cli;
use crate::error::{exit, Failure, Kind};
use clap::{Args, CommandFactory, Parser};
use clap_complete::Shell;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

/// `mfakey man DIR`.
#[derive(Parser, Debug)]
#[command(
    name = "mfakey man",
    bin_name = "mfakey man",
    about = "Write mfakey's man pages into DIR (for packagers)"
)]
struct ManArgs {
    /// Folder to write the pages into (created if missing)
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// Runs `mfakey man DIR` when that is the command line: its exit code.
pub(super) fn packager_command() -> Option<ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).and_then(|a| a.to_str()) != Some("man") {
        return None;
    }
    let a = match ManArgs::try_parse_from(&args[1..]) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return Some(ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 }));
        }
    };
    let out = Output {
        json: false,
        verbose: false,
    };
    Some(match man(&a) {
        Ok(report) => {
            out.report(&report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            out.error(&e);
            ExitCode::from(e.exit_code())
        }
    })
}

/// The completion script, to be sourced by the shell or installed where
/// it looks (the Debian package does that).
pub(super) fn completions(a: &CompletionsArgs) -> Result<Report, Failure> {
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut Cli::command(), "mfakey", &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    Ok(Report::new(
        json!({ "completions": { "shell": a.shell.to_string(), "script": script } }),
        script,
    ))
}

/// One man page per command and subcommand (`mfakey.1`,
/// `mfakey-enroll-user.1`, …).
fn man(a: &ManArgs) -> Result<Report, Failure> {
    let fail = |e: std::io::Error| {
        Failure::new(
            Kind::Other,
            format!("cannot write man pages to {}: {e}", a.dir.display()),
        )
    };
    std::fs::create_dir_all(&a.dir).map_err(fail)?;
    clap_mangen::generate_to(Cli::command(), &a.dir).map_err(fail)?;
    let mut pages: Vec<String> = std::fs::read_dir(&a.dir)
        .map_err(fail)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("mfakey") && n.ends_with(".1"))
        .collect();
    pages.sort();
    let text = format!("{} man pages in {}", pages.len(), a.dir.display());
    Ok(Report::new(
        json!({ "man": { "dir": a.dir.display().to_string(), "pages": pages } }),
        text,
    ))
}
