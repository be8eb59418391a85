//! The bulk journal: one JSON line per event of a bulk run (synced, 0600,
//! no secrets), so that `--resume` never enrolls a user twice; beside it,
//! the enrollment journal of the run's enrollments (`FILE.enroll`).

use crate::undo::journal::Journal;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What the bulk journal says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mark {
    /// A run began (first line; `detail` says how many users).
    Start,
    /// An enrollment of `user` begins on `key_serial`.
    Begin,
    Enrolled,
    /// Found enrolled by this run already (IAM tag, or recovered).
    AlreadyDone,
    Failed,
    /// `--create-users` created the user (`detail`: the groups).
    UserCreated,
    /// A key was not used (`detail` says why).
    KeySkipped,
    Interrupted,
}

/// One bulk journal line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Line {
    pub ts: u64,
    pub bulk_run: String,
    pub mark: Mark,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_serial: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub touch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The two journals of a bulk run.
pub(crate) struct Journals {
    pub bulk: Journal,
    pub enroll: Journal,
}

/// The enrollment journal that goes with a bulk journal.
pub(crate) fn enroll_journal_path(bulk: &Path) -> std::path::PathBuf {
    let mut s = bulk.as_os_str().to_owned();
    s.push(".enroll");
    s.into()
}

/// The bulk run id a journal holds (`None`: a new run).
pub(crate) fn prior(lines: &[Line]) -> Option<String> {
    lines
        .iter()
        .find(|l| l.mark == Mark::Start)
        .map(|l| l.bulk_run.clone())
}
