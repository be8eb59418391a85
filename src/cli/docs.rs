//! `mfakey completions SHELL` and the packagers' hidden `mfakey man DIR`:
//! both generated from the same clap definitions as `--help`, so they
//! cannot drift from it.

use super::render::Report;
use super::Cli;
use crate::error::{Failure, Kind};
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Folder to write the pages into (created if missing)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
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
/// `mfakey-enroll-user.1`, …), hidden commands left out.
pub(super) fn man(a: &ManArgs) -> Result<Report, Failure> {
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
