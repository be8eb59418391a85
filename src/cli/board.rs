//! `bulk --parallel` without `--json`: one line per reader. On a terminal
//! the readers' lines stay at the bottom and are redrawn in place (what each
//! key is doing now), with what happened for good (enrolled, failed, skipped,
//! touch) printed above them; otherwise every line is printed as it comes,
//! prefixed with its reader (steps only with `-v`).

use super::render::outcome_word;
use crate::progress::Event;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::Instant;

pub(super) struct Board {
    /// Where it goes (stdout).
    out: Box<dyn Write>,
    /// Redrawn in place (a terminal), or plain lines.
    live: bool,
    verbose: bool,
    /// Each reader's current line.
    lines: BTreeMap<String, String>,
    /// How many board lines are on the screen below the last printed line.
    drawn: usize,
    /// When each reader's key was noticed.
    since: HashMap<String, Instant>,
    /// Each reader's user, as "[n/of] user".
    who: HashMap<String, String>,
}

impl Board {
    pub(super) fn new(live: bool, verbose: bool) -> Self {
        Self::to(Box::new(std::io::stdout()), live, verbose)
    }

    fn to(out: Box<dyn Write>, live: bool, verbose: bool) -> Self {
        Board {
            out,
            live,
            verbose,
            lines: BTreeMap::new(),
            drawn: 0,
            since: HashMap::new(),
            who: HashMap::new(),
        }
    }

    pub(super) fn event(&mut self, e: &Event) {
        let at = e.reader().unwrap_or_default().to_string();
        match e {
            Event::InsertKeys { left } => {
                self.say(&format!("insert the next keys ({left} user(s) left)"))
            }
            Event::KeyInserted { serial, .. } => {
                self.since.insert(at.clone(), Instant::now());
                self.who.remove(&at);
                self.set(&at, format!("key {}", serial_text(*serial)));
            }
            Event::Next {
                user,
                n,
                of,
                backup,
                reader: Some(_),
                ..
            } => {
                let which = if *backup { " (backup key)" } else { "" };
                self.who
                    .insert(at.clone(), format!("[{n}/{of}] {user}{which}"));
                self.set(&at, format!("[{n}/{of}] {user}{which}"));
            }
            Event::Step { step, .. } => {
                let secs = self.since.get(&at).map_or(0, |t| t.elapsed().as_secs());
                let who = self.who.get(&at).cloned().unwrap_or_default();
                self.set(&at, format!("{who}: {} ({secs} s)", step.name()));
            }
            Event::Touch { user, n, of, .. } => {
                let whose = user.as_deref().unwrap_or("the key");
                self.say(&format!("[{at}] {whose}: touch the key ({n} of {of})"));
                self.set(&at, format!("{whose}: TOUCH the key ({n} of {of})"));
            }
            Event::Enrolled {
                user,
                key_serial,
                device_arn,
                ms,
                ..
            } => {
                let key = serial_text(*key_serial);
                self.say(&format!(
                    "[{at}] enrolled {user} on key {key}: {device_arn} ({ms:.0} ms)"
                ));
                self.set(&at, format!("{user} enrolled: remove the key"));
            }
            Event::Failed {
                user, error, retry, ..
            } => {
                self.say(&format!("[{at}] FAILED {user}: {error}"));
                if *retry {
                    self.say(&format!("  {user} waits for a key again"));
                }
                self.set(&at, format!("{user} failed: remove the key"));
            }
            Event::KeySkipped { serial, reason, .. } => {
                self.say(&format!(
                    "[{at}] skipped key {}: {reason}",
                    serial_text(*serial)
                ));
                self.set(&at, format!("key {} not used", serial_text(*serial)));
            }
            Event::RemoveKey { .. } => self.set(&at, "remove the key".into()),
            _ => self.other(e),
        }
    }

    /// Events of the run as a whole.
    fn other(&mut self, e: &Event) {
        match e {
            Event::Recovered {
                user,
                outcome,
                actions,
                remaining,
                ..
            } => {
                self.say(&format!(
                    "earlier enrollment of {user}: {}",
                    outcome_word(*outcome)
                ));
                for a in actions {
                    self.say(&format!("  done: {a}"));
                }
                for a in remaining {
                    self.say(&format!("  left: {a}"));
                }
            }
            Event::UserCreated { user, groups } if groups.is_empty() => {
                self.say(&format!("created IAM user {user}"))
            }
            Event::UserCreated { user, groups } => self.say(&format!(
                "created IAM user {user}, added to {}",
                groups.join(", ")
            )),
            Event::AlreadyEnrolled { user, .. } => {
                self.say(&format!("{user}: already enrolled by this run"))
            }
            Event::Failed { user, error, .. } => self.say(&format!("FAILED {user}: {error}")),
            Event::Interrupted => self.say("interrupted"),
            _ => {}
        }
    }

    /// A reader's line now.
    fn set(&mut self, reader: &str, line: String) {
        if self.live {
            self.lines.insert(reader.to_string(), line);
            self.erase();
            self.draw();
        } else if self.verbose {
            self.say(&format!("[{reader}] {line}"));
        }
    }

    /// A line for good, above the readers' lines.
    fn say(&mut self, line: &str) {
        self.erase();
        let _ = writeln!(self.out, "{line}");
        self.draw();
    }

    fn erase(&mut self) {
        if self.drawn > 0 {
            // To the first board line, then clear to the end of the screen.
            let _ = write!(self.out, "\x1b[{}F\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    fn draw(&mut self) {
        if self.live {
            for (reader, line) in &self.lines {
                let _ = writeln!(self.out, "  {reader}: {line}");
            }
            self.drawn = self.lines.len();
        }
        let _ = self.out.flush();
    }

    /// Takes the readers' lines off the screen (the run's summary follows).
    pub(super) fn end(&mut self) {
        self.erase();
        let _ = self.out.flush();
    }
}

fn serial_text(serial: Option<u32>) -> String {
    serial.map_or("(serial unknown)".into(), |s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Step;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Screen(Arc<Mutex<Vec<u8>>>);

    impl Write for Screen {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Screen {
        /// What a terminal shows after the bytes written: lines, with
        /// "n lines up" (ESC [ n F) and "clear below" (ESC [ J) applied.
        fn shown(&self) -> Vec<String> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            let (mut lines, mut row) = (vec![String::new()], 0usize);
            let mut rest = text.as_str();
            while let Some(c) = rest.chars().next() {
                if let Some(esc) = rest.strip_prefix("\x1b[") {
                    let end = esc.find(|c: char| c.is_ascii_alphabetic()).unwrap();
                    let (n, cmd) = (&esc[..end], &esc[end..end + 1]);
                    match cmd {
                        "F" => row -= n.parse::<usize>().unwrap(),
                        "J" => {
                            lines.truncate(row + 1);
                            lines[row].clear();
                        }
                        other => panic!("unexpected escape {other}"),
                    }
                    rest = &esc[end + 1..];
                    continue;
                }
                if c == '\n' {
                    row += 1;
                    if lines.len() <= row {
                        lines.push(String::new());
                    }
                } else {
                    lines[row].push(c);
                }
                rest = &rest[c.len_utf8()..];
            }
            lines.retain(|l| !l.is_empty());
            lines
        }
    }

    fn step(reader: &str, user: &str, step: Step) -> Event {
        Event::Step {
            user: user.into(),
            step,
            reader: Some(reader.into()),
        }
    }

    #[test]
    fn a_terminal_shows_one_line_per_reader_below_what_happened() {
        let screen = Screen::default();
        let mut b = Board::to(Box::new(screen.clone()), true, false);
        for (r, s) in [("R1", 1001), ("R2", 1002)] {
            b.event(&Event::KeyInserted {
                reader: r.into(),
                serial: Some(s),
            });
        }
        for (r, u, n) in [("R1", "alice", 1), ("R2", "bob", 2)] {
            b.event(&Event::Next {
                user: u.into(),
                n,
                of: 2,
                key_serial: None,
                backup: false,
                reader: Some(r.into()),
            });
        }
        b.event(&step("R1", "alice", Step::Enable));
        b.event(&step("R2", "bob", Step::Write));
        assert_eq!(
            screen.shown(),
            [
                "  R1: [1/2] alice: enable (0 s)",
                "  R2: [2/2] bob: write (0 s)"
            ]
        );
        b.event(&Event::Enrolled {
            user: "alice".into(),
            key_serial: Some(1001),
            device_arn: "arn:aws:iam::1:mfa/alice".into(),
            credential_id: "x".into(),
            ms: 80.0,
            reader: Some("R1".into()),
        });
        b.event(&Event::RemoveKey {
            reader: "R1".into(),
            serial: Some(1001),
        });
        let shown = screen.shown();
        assert_eq!(
            shown,
            [
                "[R1] enrolled alice on key 1001: arn:aws:iam::1:mfa/alice (80 ms)",
                "  R1: remove the key",
                "  R2: [2/2] bob: write (0 s)"
            ]
        );
        b.end();
        assert_eq!(
            screen.shown(),
            ["[R1] enrolled alice on key 1001: arn:aws:iam::1:mfa/alice (80 ms)"]
        );
    }

    #[test]
    fn without_a_terminal_lines_name_their_reader() {
        let screen = Screen::default();
        let mut b = Board::to(Box::new(screen.clone()), false, false);
        b.event(&step("R1", "alice", Step::Enable));
        b.event(&Event::Failed {
            user: "bob".into(),
            error: "the key was removed".into(),
            retry: true,
            reader: Some("R2".into()),
        });
        assert_eq!(
            screen.shown(),
            [
                "[R2] FAILED bob: the key was removed",
                "  bob waits for a key again"
            ]
        );
    }
}
