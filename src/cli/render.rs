//! Rendering, in one place: a command's report (text, or one JSON document
//! with `schema_version`), its error, and the progress events of a job
//! (lines on stderr for one-key commands; for `bulk`, a live line on a
//! terminal, plain lines otherwise, or JSON lines with `--json`).
//!
//! Text reaches the terminal only through [`clean`]: names from a card
//! (credential ids) and messages from AWS may hold control characters, and
//! a card must not be able to move the cursor, retitle the terminal or hide
//! a line. Every control character but the line break is shown escaped
//! (`\u{1b}`); [`one_line`] also escapes line breaks, for a value set into
//! a line of text.

use super::board::Board;
use crate::error::Failure;
use crate::progress::{Event, Outcome, Progress, Step};
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::time::Instant;

pub(super) const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy)]
pub(super) struct Output {
    pub json: bool,
    /// `-v`: errors also show the lower layers' detail.
    pub verbose: bool,
}

/// What a command produced.
pub(super) struct Report {
    pub json: Value,
    pub text: String,
}

impl Report {
    pub(super) fn new(json: Value, text: impl Into<String>) -> Self {
        Report {
            json,
            text: text.into(),
        }
    }
}

/// Whether `c` must not reach a terminal as it is: C0 controls (but the
/// line break), DEL, C1 controls (CSI 0x9B among them), and the Unicode
/// bidirectional overrides and isolates that reorder what is shown.
fn escaped(c: char, keep_newline: bool) -> bool {
    match c {
        '\n' => !keep_newline,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

fn escape(text: &str, keep_newline: bool) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| escaped(c, keep_newline)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c, keep_newline) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Text for the terminal: control characters escaped, line breaks kept.
pub(super) fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    escape(text, true)
}

/// A value from a card or AWS set into one line of text: line breaks
/// escaped too.
pub(super) fn one_line(text: &str) -> String {
    escape(text, false).into_owned()
}

impl Output {
    pub(super) fn report(&self, report: &Report) {
        if self.json {
            let mut doc = json!({ "schema_version": SCHEMA_VERSION });
            if let (Some(d), Some(r)) = (doc.as_object_mut(), report.json.as_object()) {
                for (k, v) in r {
                    d.insert(k.clone(), v.clone());
                }
            }
            println!("{doc}");
        } else if !report.text.is_empty() {
            println!("{}", clean(report.text.trim_end()));
        }
    }

    /// Errors go to stderr as text, and also to stdout as JSON with `--json`.
    pub(super) fn error(&self, e: &Failure) {
        eprintln!("error: {}", clean(&e.message));
        if let (true, Some(d)) = (self.verbose, &e.detail) {
            eprintln!("detail: {}", clean(d));
        }
        if self.json {
            self.error_json_only(e);
        }
    }

    /// The JSON error document alone (the text was printed by someone else).
    pub(super) fn error_json_only(&self, e: &Failure) {
        let mut error =
            json!({ "kind": e.kind.name(), "message": e.message, "exit_code": e.exit_code() });
        if let (true, Some(d)) = (self.verbose, &e.detail) {
            error["detail"] = json!(d);
        }
        println!(
            "{}",
            json!({ "schema_version": SCHEMA_VERSION, "error": error })
        );
    }

    /// A line for the operator (prompts, touch requests, progress): stderr.
    pub(super) fn notice(&self, line: &str) {
        eprintln!("{}", clean(line));
    }
}

/// How progress events are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// One-key commands: a line on stderr for what needs the operator.
    Notices,
    /// `bulk --json`: one JSON line per event on stdout, flushed.
    JsonLines,
    /// `bulk` on a terminal: a live status line on stdout.
    Live,
    /// `bulk` otherwise: plain lines on stdout.
    Lines,
    /// `audit --organization` on a terminal: a live line on stderr (stdout
    /// holds the report).
    StderrLive,
}

/// The one renderer of [`Event`]s.
pub(super) struct Renderer {
    mode: Mode,
    verbose: bool,
    line_open: bool,
    user_started: Instant,
    n: String,
    /// Tray mode: one line per reader.
    board: Option<Board>,
    /// What a console verification waits for (the first wait says so).
    pub waiting_for: Option<String>,
}

impl Renderer {
    /// For one-key commands: notices on stderr.
    pub(super) fn notices(verbose: bool) -> Self {
        Self::with(Mode::Notices, verbose)
    }

    /// For `bulk`: JSON lines, a live line on a terminal, or plain lines;
    /// in tray mode one line per reader.
    pub(super) fn desk(json: bool, verbose: bool, tray: bool) -> Self {
        let mode = if json {
            Mode::JsonLines
        } else if std::io::stdout().is_terminal() {
            Mode::Live
        } else {
            Mode::Lines
        };
        let mut r = Self::with(mode, verbose);
        if tray && mode != Mode::JsonLines {
            r.board = Some(Board::new(mode == Mode::Live, verbose));
        }
        r
    }

    /// For `audit --organization`: a live line on stderr when it is a
    /// terminal, else notices (one line per account with `-v`).
    pub(super) fn org(verbose: bool) -> Self {
        let mode = if std::io::stderr().is_terminal() {
            Mode::StderrLive
        } else {
            Mode::Notices
        };
        Self::with(mode, verbose)
    }

    fn with(mode: Mode, verbose: bool) -> Self {
        Renderer {
            mode,
            verbose,
            line_open: false,
            user_started: Instant::now(),
            n: String::new(),
            board: None,
            waiting_for: None,
        }
    }

    /// Ends a live line so what follows starts on its own.
    pub(super) fn end_live(&mut self) {
        if let Some(b) = self.board.as_mut() {
            b.end();
        }
        if self.line_open && self.mode == Mode::StderrLive {
            eprintln!();
            self.line_open = false;
        } else if self.line_open {
            self.say("");
        }
    }

    /// The organization's audit on a terminal: one line, rewritten.
    fn org_line(&mut self, e: &Event) {
        if let Event::AccountAudited {
            account,
            n,
            of,
            result,
        } = e
        {
            let mut o = std::io::stderr().lock();
            let _ = write!(o, "\r\x1b[2K[{n}/{of}] {account}: {result}");
            let _ = o.flush();
            self.line_open = true;
        } else {
            self.notice(e);
        }
    }

    fn say(&mut self, line: &str) {
        let line = clean(line);
        if self.mode == Mode::Notices {
            eprintln!("{line}");
            return;
        }
        let mut o = std::io::stdout().lock();
        if self.line_open {
            let _ = write!(o, "\r\x1b[2K");
            self.line_open = false;
        }
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    }

    fn status(&mut self, line: &str) {
        let line = &one_line(line);
        if self.mode == Mode::Live {
            let mut o = std::io::stdout().lock();
            let _ = write!(o, "\r\x1b[2K{line}");
            let _ = o.flush();
            self.line_open = true;
        } else if self.verbose {
            self.say(line);
        }
    }

    fn json_line(&mut self, e: &Event) {
        let mut v = serde_json::to_value(e).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("schema_version".into(), json!(SCHEMA_VERSION));
        }
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{v}");
        let _ = o.flush();
    }

    fn notice(&mut self, e: &Event) {
        match e {
            Event::Touch { n, of, .. } => eprintln!("Touch your YubiKey ({n} of {of})..."),
            Event::RetryCodes { .. } => {
                eprintln!("AWS refused the codes; trying once more with a later pair")
            }
            Event::Undo { what } => eprintln!("undoing: {}", clean(what)),
            Event::Step {
                step: Step::Rollback,
                ..
            } => eprintln!("a step failed: rolling back"),
            Event::Step {
                step: Step::Verify, ..
            } if self.waiting_for.is_some() => {
                eprintln!("{}", clean(self.waiting_for.as_deref().unwrap_or_default()))
            }
            Event::Step { step, .. } if self.verbose => eprintln!("step: {}", step.name()),
            Event::Waiting {
                elapsed_ms,
                timeout_ms,
            } => eprintln!(
                "  not yet ({} s of {} s)",
                elapsed_ms / 1000,
                timeout_ms / 1000
            ),
            Event::Recovered { .. } | Event::KeySkipped { .. } => self.desk_line(e),
            Event::Next {
                user, backup: true, ..
            } => eprintln!(
                "Insert a backup key for {user}: into another reader, or take the first key out and put the backup key in (Ctrl-C stops)"
            ),
            Event::KeyInserted { reader, serial } => eprintln!(
                "key {} in \"{reader}\"",
                serial.map_or("(serial unknown)".into(), |s| s.to_string())
            ),
            Event::Changed { what } => eprintln!("done: {what}"),
            Event::AuditCheck { check } if self.verbose => eprintln!("checking: {check}"),
            Event::ReportWaiting {
                waited_ms,
                limit_ms,
            } => eprintln!(
                "waiting for the credential report ({} s of at most {} s)...",
                waited_ms / 1000,
                limit_ms / 1000
            ),
            Event::OrgAudit {
                organization,
                accounts,
                concurrency,
            } => eprintln!(
                "auditing {accounts} account(s) of organization {organization}, {concurrency} at a time"
            ),
            Event::AccountAudited {
                account,
                n,
                of,
                result,
            } if self.verbose => eprintln!("[{n}/{of}] {account}: {result}"),
            _ => {}
        }
    }

    fn desk_line(&mut self, e: &Event) {
        let secs = self.user_started.elapsed().as_secs();
        match e {
            Event::Recovered {
                user,
                outcome,
                actions,
                remaining,
                ..
            } => self.recovered(user, *outcome, actions, remaining),
            Event::UserCreated { user, groups } => {
                let g = if groups.is_empty() {
                    String::new()
                } else {
                    format!(", added to {}", groups.join(", "))
                };
                self.say(&format!("created IAM user {user}{g}"))
            }
            Event::AlreadyEnrolled { user, .. } => {
                self.say(&format!("{user}: already enrolled by this run"))
            }
            Event::Next {
                user,
                n,
                of,
                key_serial,
                backup,
                ..
            } => {
                self.user_started = Instant::now();
                self.n = format!("[{n}/{of}]");
                let pin = key_serial.map_or(String::new(), |s| format!(" {s}"));
                let which = if *backup { "a backup key" } else { "key" };
                self.say(&format!("{} next: {user} — insert {which}{pin}", self.n));
            }
            Event::KeyInserted { reader, serial } => self.key_inserted(reader, *serial),
            Event::KeySkipped { reason, .. } => self.say(&format!("  skipped: {reason}")),
            Event::Step { user, step, .. } => {
                let n = self.n.clone();
                self.status(&format!("{n} {user}: {} ({secs} s)", step.name()))
            }
            Event::Touch { user, n, of, .. } => self.say(&format!(
                "  {}: touch the key ({n} of {of})",
                user.as_deref().unwrap_or("the key")
            )),
            Event::Enrolled {
                user,
                key_serial,
                device_arn,
                ms,
                ..
            } => self.say(&format!(
                "  enrolled {user} on key {}: {device_arn} ({ms:.0} ms)",
                key_serial.map_or("?".into(), |s| s.to_string())
            )),
            Event::Failed {
                user, error, retry, ..
            } => {
                self.say(&format!("  FAILED {user}: {error}"));
                if *retry {
                    self.say(&format!("  {user} waits for a key again"));
                }
            }
            Event::RemoveKey { .. } => self.say("  remove the key"),
            Event::Interrupted => self.say("interrupted"),
            Event::Changed { what } => self.say(&format!("  done: {what}")),
            Event::RetryCodes { .. }
            | Event::Undo { .. }
            | Event::Waiting { .. }
            | Event::InsertKeys { .. }
            | Event::AuditCheck { .. }
            | Event::ReportWaiting { .. }
            | Event::OrgAudit { .. }
            | Event::AccountAudited { .. } => {}
        }
    }
}

impl Renderer {
    fn recovered(
        &mut self,
        user: &str,
        outcome: Outcome,
        actions: &[String],
        remaining: &[String],
    ) {
        self.say(&format!(
            "earlier enrollment of {user}: {}",
            outcome_word(outcome)
        ));
        for a in actions {
            self.say(&format!("  done: {a}"));
        }
        for a in remaining {
            self.say(&format!("  left: {a}"));
        }
    }

    fn key_inserted(&mut self, reader: &str, serial: Option<u32>) {
        self.user_started = Instant::now();
        let line = format!(
            "{} key {} in \"{reader}\"",
            self.n,
            serial.map_or("(serial unknown)".into(), |s| s.to_string())
        );
        if self.mode == Mode::Live {
            self.status(&line)
        } else {
            let shown = line.trim_start_matches(&self.n).trim_start().to_string();
            self.say(&format!("  {shown}"))
        }
    }
}

/// How a recovered run ended, in words.
pub(super) fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Finished => "was complete",
        Outcome::RolledBack => "undone",
        Outcome::Incomplete => "INCOMPLETE",
        Outcome::Refused => "REFUSED (not provably mfakey's: left alone)",
    }
}

impl Progress for Renderer {
    fn event(&mut self, e: Event) {
        match self.mode {
            Mode::JsonLines => self.json_line(&e),
            Mode::Notices => self.notice(&e),
            Mode::Live | Mode::Lines => match self.board.as_mut() {
                Some(b) => b.event(&e),
                None => self.desk_line(&e),
            },
            Mode::StderrLive => self.org_line(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_from_cards_and_aws_are_escaped() {
        let hostile = "name\u{1b}]0;owned\u{7}\u{1b}[2J\rnext\u{9b}31m\u{202e}txt\u{7f}";
        let shown = clean(hostile);
        assert!(
            !shown
                .chars()
                .any(|c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{shown:?}"
        );
        assert_eq!(
            shown,
            "name\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{d}next\\u{9b}31m\\u{202e}txt\\u{7f}"
        );
        // Our own line breaks stay; a value's are shown.
        assert_eq!(clean("line 1\nline 2"), "line 1\nline 2");
        assert_eq!(one_line("a\nb\tc"), "a\\u{a}b\\u{9}c");
        // Text without any is untouched (not even copied).
        assert!(matches!(
            clean("Zürich Bank: ok"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
