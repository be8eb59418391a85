//! What the operator hears while a job runs: one event type for every job
//! (enrollment, console flows, bulk, recover), sent to a [`Progress`]. The
//! command line renders them (lines on stderr, a live line, or JSON lines);
//! nothing below it prints.

use serde::Serialize;

/// A step of an enrollment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Step {
    Preflight,
    Create,
    Write,
    Check,
    Enable,
    Verify,
    /// A replacement moved over the credential it replaces (`--force`).
    Settle,
    Rollback,
}

impl Step {
    /// The step's name in progress lines and JSON events (as serialized).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::Create => "create",
            Step::Write => "write",
            Step::Check => "check",
            Step::Enable => "enable",
            Step::Verify => "verify",
            Step::Settle => "settle",
            Step::Rollback => "rollback",
        }
    }
}

/// How an unfinished enrollment ended when it was recovered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// The enrollment had in fact completed (device enabled, credential on the key).
    Finished,
    /// Everything it created is gone.
    RolledBack,
    /// Something needs the key (or AWS) and could not be done now.
    Incomplete,
    /// The journal names something mfakey cannot prove it made: left alone.
    Refused,
}

/// One thing worth telling the operator. Serialized as one JSON line
/// (`bulk --json`), tagged by `event`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    /// An enrollment step begins.
    Step {
        user: String,
        step: Step,
        /// The reader of the key (`bulk`).
        #[serde(skip_serializing_if = "Option::is_none")]
        reader: Option<String>,
    },
    /// Touch number `n` of `of` is awaited (`user`: whose credential).
    Touch {
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        n: u8,
        of: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        reader: Option<String>,
    },
    /// AWS refused the codes once; trying with a later pair.
    RetryCodes {
        user: String,
    },
    /// Something made is being undone.
    Undo {
        what: String,
    },
    /// Waiting for AWS to show what the console did.
    Waiting {
        elapsed_ms: u64,
        timeout_ms: u64,
    },
    /// An unfinished enrollment of an earlier run was finished or undone.
    Recovered {
        user: String,
        outcome: Outcome,
        actions: Vec<String>,
        remaining: Vec<String>,
        /// The reader of the run's key, when it was recovered with it.
        #[serde(skip_serializing_if = "Option::is_none")]
        reader: Option<String>,
    },
    AlreadyEnrolled {
        user: String,
        device_arn: Option<String>,
    },
    /// `--create-users` created the user and added it to `groups`.
    UserCreated {
        user: String,
        groups: Vec<String>,
    },
    /// Insert a key for `user` (`n` of `of`); `backup`: the user's second
    /// key (any key but the first; in the first key's reader once it is out).
    /// In tray mode (`reader` set), `user` goes onto the key in that reader.
    Next {
        user: String,
        n: usize,
        of: usize,
        key_serial: Option<u32>,
        #[serde(skip_serializing_if = "is_false")]
        backup: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        reader: Option<String>,
    },
    /// Tray mode: nothing in flight; insert the next tray of keys (`left`
    /// users still to enroll).
    InsertKeys {
        left: usize,
    },
    KeyInserted {
        reader: String,
        serial: Option<u32>,
    },
    KeySkipped {
        reader: String,
        serial: Option<u32>,
        reason: String,
    },
    Enrolled {
        user: String,
        key_serial: Option<u32>,
        device_arn: String,
        credential_id: String,
        /// From the key's insertion to this event.
        ms: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        reader: Option<String>,
    },
    Failed {
        user: String,
        error: String,
        /// The user waits for another key (the key was pulled).
        retry: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        reader: Option<String>,
    },
    RemoveKey {
        reader: String,
        serial: Option<u32>,
    },
    Interrupted,
    /// The audit begins one of its checks.
    AuditCheck {
        check: &'static str,
    },
    /// The audit waits for IAM's credential report: waited so far, bound.
    ReportWaiting {
        waited_ms: u64,
        limit_ms: u64,
    },
    /// An organization's audit begins.
    OrgAudit {
        organization: String,
        accounts: usize,
        concurrency: usize,
    },
    /// One account of an organization's audit is done (`n` of `of`).
    AccountAudited {
        account: String,
        n: usize,
        of: usize,
        result: String,
    },
    /// A lifecycle command changed something in IAM or on a key (a device
    /// deactivated or deleted, a user moved to another key).
    Changed {
        what: String,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Event {
    /// The event as seen at `reader`'s key: the events of one key's
    /// enrollment carry its reader (tray mode runs several at once).
    pub(crate) fn at_reader(mut self, at: &str) -> Event {
        match &mut self {
            Event::Step { reader, .. }
            | Event::Touch { reader, .. }
            | Event::Recovered { reader, .. }
            | Event::Next { reader, .. }
            | Event::Enrolled { reader, .. }
            | Event::Failed { reader, .. } => *reader = Some(at.to_string()),
            _ => {}
        }
        self
    }

    /// The reader an event is about, if any.
    pub(crate) fn reader(&self) -> Option<&str> {
        match self {
            Event::Step { reader, .. }
            | Event::Touch { reader, .. }
            | Event::Recovered { reader, .. }
            | Event::Next { reader, .. }
            | Event::Enrolled { reader, .. }
            | Event::Failed { reader, .. } => reader.as_deref(),
            Event::KeyInserted { reader, .. }
            | Event::KeySkipped { reader, .. }
            | Event::RemoveKey { reader, .. } => Some(reader),
            _ => None,
        }
    }
}

/// Where a job's events go.
pub(crate) trait Progress {
    fn event(&mut self, e: Event);
}

impl<F: FnMut(Event)> Progress for F {
    fn event(&mut self, e: Event) {
        self(e)
    }
}

/// A [`Progress`] that drops everything.
#[cfg(test)]
pub struct Quiet;

#[cfg(test)]
impl Progress for Quiet {
    fn event(&mut self, _: Event) {}
}
