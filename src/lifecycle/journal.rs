//! The lifecycle journal: one JSON line per planned and done change of a
//! `revoke`, `replace` or `offboard` run, synced before the next change,
//! in a file of the same trust rules and locks as the enrollment journal
//! (`undo::journal`). It holds names, ARNs, and for a credential proven to
//! be a leaver's, its non-secret check value ([`Proof`]); never a seed or a
//! code. `replace`'s enrollments go to the enrollment journal beside it
//! (`FILE.enroll`).

use crate::credential::{unix_now, Proof};
use crate::undo::journal::{Journal, JournalError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which command a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Op {
    Revoke,
    Replace,
    Offboard,
}

impl Op {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Revoke => "revoke",
            Op::Replace => "replace",
            Op::Offboard => "offboard",
        }
    }
}

/// What a line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Step {
    /// The run began (`key_serial`: the key it is about).
    Begin,
    /// A device the operator confirmed for removal.
    Planned,
    /// `offboard`: AWS accepted codes from the key's credential for the
    /// user's device; `proof` lets a later run recognise that seed.
    Proven,
    /// `replace`: the user is enrolled on the new key (`device_serial`).
    Enrolled,
    Deactivated,
    Deleted,
    /// `offboard`: the proven credential is off the key.
    CredentialDeleted,
    /// The run stopped part way (`detail`: why); `recover` finishes it.
    Stopped,
    /// Nothing is left to do (`detail` says how it ended).
    Done,
}

/// One line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Line {
    pub ts: u64,
    pub run: String,
    pub op: Op,
    pub step: Step,
    /// How the account is reached (`Via::key`); absent: the command line's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_serial: Option<String>,
    /// The key the run is about: revoked or replaced, or (offboard) the
    /// one a proven credential is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_serial: Option<u32>,
    /// `replace`: the key the users move to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_key_serial: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Proof>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `$XDG_STATE_HOME/mfakey/lifecycle.jsonl`, beside the enrollment journal.
pub(crate) fn default_path() -> PathBuf {
    crate::undo::journal::default_path().with_file_name("lifecycle.jsonl")
}

/// The enrollment journal of a lifecycle journal's runs (`FILE.enroll`).
pub(crate) fn enroll_path(path: &Path) -> PathBuf {
    crate::bulk::journal::enroll_journal_path(path)
}

/// The runs without a `Done` line, each as its lines, oldest first.
pub(crate) fn unfinished(lines: &[Line]) -> Vec<Vec<Line>> {
    let mut runs: Vec<Vec<Line>> = Vec::new();
    for l in lines {
        match runs.iter_mut().find(|r| r[0].run == l.run) {
            Some(r) => r.push(l.clone()),
            None => runs.push(vec![l.clone()]),
        }
    }
    runs.retain(|r| !r.iter().any(|l| l.step == Step::Done));
    runs
}

/// Opens the way for a new run (`new_run`): an unfinished run that `same`
/// says is of the same command about the same key or user is taken over
/// (closed: the new run plans afresh from IAM, so it does what was left),
/// and the lines it planned are returned; any other unfinished run
/// refuses (`recover` first).
pub(crate) fn take_over(
    journal: &mut Journal,
    new_run: &str,
    same: &dyn Fn(&Line) -> bool,
) -> Result<Vec<Line>, super::LifecycleError> {
    let lines: Vec<Line> = journal.lines()?;
    let mut planned = Vec::new();
    for run in unfinished(&lines) {
        let first = &run[0];
        if !same(first) {
            return Err(super::LifecycleError::Unfinished {
                journal: journal.path().display().to_string(),
                op: first.op.name(),
                run: first.run.clone(),
            });
        }
        let mut done = first.clone();
        done.ts = unix_now();
        done.step = Step::Done;
        done.detail = Some(format!("taken over by run {new_run}"));
        journal.append_line(&done)?;
        planned.extend(run.into_iter().filter(|l| l.step == Step::Planned));
    }
    Ok(planned)
}

/// A run's writer: every line starts from the run's own.
pub(crate) struct Log<'j> {
    journal: &'j mut Journal,
    base: Line,
    /// Whether this run changed anything yet (a stop before the first
    /// change ends the run: there is nothing to finish).
    pub changed: bool,
}

impl<'j> Log<'j> {
    /// The lines of run `run` (a new one, or one `recover` finishes).
    pub(crate) fn new(
        journal: &'j mut Journal,
        op: Op,
        run: &str,
        key_serial: Option<u32>,
    ) -> Self {
        Log {
            journal,
            base: Line {
                ts: 0,
                run: run.to_string(),
                op,
                step: Step::Begin,
                account: None,
                account_id: None,
                user: None,
                device_serial: None,
                key_serial,
                new_key_serial: None,
                credential_id: None,
                proof: None,
                detail: None,
            },
            changed: false,
        }
    }

    /// `replace`: the key its users move to, on every later line.
    pub(crate) fn set_new_key(&mut self, serial: u32) {
        self.base.new_key_serial = Some(serial);
    }

    pub(crate) fn run(&self) -> &str {
        &self.base.run
    }

    pub(crate) fn path(&self) -> String {
        self.journal.path().display().to_string()
    }

    /// A line of this run at `step`, to fill in and [`Log::append`].
    pub(crate) fn line(&self, step: Step) -> Line {
        let mut l = self.base.clone();
        l.step = step;
        l
    }

    /// Appends `line` durably (stamped now).
    pub(crate) fn append(&mut self, line: &Line) -> Result<(), JournalError> {
        let mut l = line.clone();
        l.ts = unix_now();
        if !matches!(
            l.step,
            Step::Begin | Step::Planned | Step::Proven | Step::Stopped | Step::Done
        ) {
            self.changed = true;
        }
        self.journal.append_line(&l)
    }

    /// Appends a bare line at `step` with `detail`.
    pub(crate) fn mark(&mut self, step: Step, detail: Option<String>) -> Result<(), JournalError> {
        let mut l = self.line(step);
        l.detail = detail;
        self.append(&l)
    }

    /// Ends the run after a failure: left open for `recover` when it had
    /// changed something, closed otherwise. The error says which.
    pub(crate) fn stop(
        &mut self,
        cause: super::LifecycleError,
        done: String,
    ) -> super::LifecycleError {
        if !self.changed {
            let _ = self.mark(
                Step::Done,
                Some(format!("stopped before any change: {cause}")),
            );
            return cause;
        }
        let _ = self.mark(Step::Stopped, Some(cause.to_string()));
        super::LifecycleError::Stopped {
            cause: Box::new(cause),
            done,
            journal: self.path(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::undo::journal::Lock;

    #[test]
    fn runs_without_done_are_unfinished_and_refuse_a_new_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lifecycle.jsonl");
        let mut j = Journal::open(&path, Lock::Exclusive).unwrap();
        let mut a = Log::new(&mut j, Op::Revoke, "a", Some(7));
        a.mark(Step::Begin, None).unwrap();
        assert!(!a.changed);
        a.mark(Step::Deleted, None).unwrap();
        assert!(a.changed);
        let run_a = a.run().to_string();
        assert_eq!(run_a, "a");
        let mut b = Log::new(&mut j, Op::Offboard, "b", None);
        b.mark(Step::Begin, None).unwrap();
        b.mark(Step::Done, None).unwrap();
        let lines: Vec<Line> = j.lines().unwrap();
        let open = unfinished(&lines);
        assert_eq!(open.len(), 1);
        assert_eq!(open[0][0].run, run_a);
        assert_eq!(open[0][0].key_serial, Some(7));
        // Another command (or key) refuses; the same one takes the run over.
        let e = take_over(&mut j, "c", &|l| l.op == Op::Offboard)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unfinished revoke (run a)"), "{e}");
        let taken = take_over(&mut j, "c", &|l| l.key_serial == Some(7)).unwrap();
        assert!(taken.is_empty());
        let lines: Vec<Line> = j.lines().unwrap();
        assert!(unfinished(&lines).is_empty());
        assert!(default_path().ends_with("mfakey/lifecycle.jsonl"));
    }
}
