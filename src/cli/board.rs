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
        Board {
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
                reader: Some(_),
                ..
            } => {
                self.who.insert(at.clone(), format!("[{n}/{of}] {user}"));
                self.set(&at, format!("[{n}/{of}] {user}"));
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
            let mut o = std::io::stdout().lock();
            self.redraw(&mut o);
        } else if self.verbose {
            self.say(&format!("[{reader}] {line}"));
        }
    }

    /// A line for good, above the readers' lines.
    fn say(&mut self, line: &str) {
        let mut o = std::io::stdout().lock();
        self.erase(&mut o);
        let _ = writeln!(o, "{line}");
        self.draw(&mut o);
        let _ = o.flush();
    }

    fn redraw(&mut self, o: &mut impl Write) {
        self.erase(o);
        self.draw(o);
        let _ = o.flush();
    }

    fn erase(&mut self, o: &mut impl Write) {
        if self.drawn > 0 {
            // To the first board line, then clear to the end of the screen.
            let _ = write!(o, "\x1b[{}F\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    fn draw(&mut self, o: &mut impl Write) {
        if !self.live {
            return;
        }
        for (reader, line) in &self.lines {
            let _ = writeln!(o, "  {reader}: {line}");
        }
        self.drawn = self.lines.len();
    }

    /// Takes the readers' lines off the screen (the run's summary follows).
    pub(super) fn end(&mut self) {
        let mut o = std::io::stdout().lock();
        self.erase(&mut o);
        let _ = o.flush();
    }
}

fn serial_text(serial: Option<u32>) -> String {
    serial.map_or("(serial unknown)".into(), |s| s.to_string())
}
