//! `mfakey recover`: finishing or undoing enrollments a killed run left
//! unfinished, by what their journal lines say and what IAM and the key
//! show now; and `cleanup`, which lists and removes unassigned devices
//! mfakey created. Every removal goes through the undo engine's rules.

use super::journal::{Entry, Event as JEvent, Journal, JournalError};
use super::{holdings, ownership, Made, MadeCredential, Ownership};
use crate::aws::{AwsError, IamApi, VirtualMfaDevice};
use crate::credential::{self, unix_now, Holding, Removal};
use crate::enroll::TAG_MANAGED;
use crate::oath::OathSession;
use crate::progress::{Outcome, Progress};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub(crate) struct RecoveredRun {
    pub run: String,
    pub user: String,
    pub key_serial: Option<u32>,
    pub device_serial: Option<String>,
    pub credential_id: Option<String>,
    pub outcome: Outcome,
    pub actions: Vec<String>,
    pub remaining: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum RecoverError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl crate::error::Classify for RecoverError {
    fn kind(&self) -> crate::error::Kind {
        match self {
            RecoverError::Aws(a) => a.kind(),
            RecoverError::Journal(j) => j.kind(),
        }
    }
}

/// What a run's journal lines say it made and got to.
#[derive(Clone, Debug)]
pub(crate) struct RunState {
    pub made: Made,
    /// The line to continue the journal from (the last naming the device).
    pub last: Entry,
    pub device_name: Option<String>,
    pub credential_id: Option<String>,
}

impl RunState {
    /// Whether the credential may be on the key.
    pub(crate) fn written(&self) -> bool {
        self.made.credential.is_some()
    }
}

/// Reads a run's lines (`None`: no lines).
pub(crate) fn state(entries: &[Entry]) -> Option<RunState> {
    let last = entries
        .iter()
        .rev()
        .find(|e| e.device_serial.is_some())
        .or(entries.last())?
        .clone();
    let find = |f: fn(&Entry) -> Option<&String>| entries.iter().rev().find_map(f).cloned();
    let writing = entries
        .iter()
        .rev()
        .find(|e| matches!(e.event, JEvent::Writing | JEvent::Written));
    let credential_id = find(|e| e.credential_id.as_ref());
    let credential = writing.map(|w| {
        let final_id = w.credential_id.clone().unwrap_or_default().into_bytes();
        let replacing = entries.iter().any(|e| e.event == JEvent::Replacing);
        MadeCredential {
            written_as: w
                .written_as
                .clone()
                .map(String::into_bytes)
                .unwrap_or_else(|| final_id.clone()),
            replaces: (replacing && w.written_as.is_some()).then_some(final_id),
            proof: w.proof.clone(),
            proven_in_session: false,
        }
    });
    Some(RunState {
        made: Made {
            run: last.run.clone(),
            account_id: find(|e| e.account_id.as_ref()),
            user: last.user.clone(),
            key_serial: entries.iter().rev().find_map(|e| e.key_serial),
            device: find(|e| e.device_serial.as_ref()),
            enable_attempted: false,
            credential,
        },
        device_name: find(|e| e.device_name.as_ref()),
        credential_id,
        last,
    })
}

/// Finishes or undoes one unfinished run. `caller_account` is the account
/// of the credentials in use; `key` is the run's key, opened and unlocked,
/// or `None` when it is not present.
pub(crate) async fn recover_run<I: IamApi>(
    iam: &I,
    caller_account: &str,
    entries: &[Entry],
    key: Option<&mut OathSession<'_>>,
    journal: &Journal,
    progress: &mut dyn Progress,
) -> Result<RecoveredRun, RecoverError> {
    let Some(mut st) = state(entries) else {
        return Err(JournalError::Corrupt {
            path: journal.path().to_path_buf(),
            line: 0,
            message: "a run with no lines".into(),
        }
        .into());
    };
    let mut report = Report::default();
    if let Some(other) = st.made.account_id.as_ref().filter(|a| *a != caller_account) {
        report.refused.push(format!(
            "the journal's run for {} is in account {other}, but these credentials are of account {caller_account}: nothing was touched; recover it with credentials of account {other}",
            st.made.user
        ));
    } else {
        if st.made.device.is_none() {
            st.made.device = find_lost_create(iam, caller_account, &st).await?;
        }
        recover_made(iam, caller_account, &mut st, key, progress, &mut report).await?;
    }
    let outcome = report.outcome();
    let mut line = st.last.clone();
    line.ts = unix_now();
    line.device_serial = st.made.device.clone();
    (line.event, line.detail) = match outcome {
        Outcome::Finished => (JEvent::Done, Some("completed, found by recover".into())),
        Outcome::RolledBack => (JEvent::RolledBack, Some("undone by recover".into())),
        Outcome::Incomplete | Outcome::Refused => {
            (JEvent::RollbackFailed, Some(report.remaining().join("; ")))
        }
    };
    journal.append(&line)?;
    Ok(RecoveredRun {
        run: st.made.run.clone(),
        user: st.made.user.clone(),
        key_serial: st.made.key_serial,
        device_serial: st.made.device.clone(),
        credential_id: st.credential_id.clone(),
        outcome,
        remaining: report.remaining(),
        actions: report.actions,
    })
}

#[derive(Default)]
struct Report {
    finished: bool,
    actions: Vec<String>,
    left: Vec<String>,
    refused: Vec<String>,
}

impl Report {
    fn outcome(&self) -> Outcome {
        if !self.refused.is_empty() {
            Outcome::Refused
        } else if !self.left.is_empty() {
            Outcome::Incomplete
        } else if self.finished {
            Outcome::Finished
        } else {
            Outcome::RolledBack
        }
    }

    fn remaining(&self) -> Vec<String> {
        self.refused.iter().chain(&self.left).cloned().collect()
    }
}

/// A device the run created but did not journal (killed between the create
/// and its line): the unassigned device of the planned name that carries
/// the run's tag.
async fn find_lost_create<I: IamApi>(
    iam: &I,
    caller_account: &str,
    st: &RunState,
) -> Result<Option<String>, AwsError> {
    let Some(name) = &st.device_name else {
        return Ok(None);
    };
    for d in iam.list_virtual_mfa_devices(true).await? {
        if d.serial.rsplit('/').next() == Some(name.as_str())
            && ownership(iam, caller_account, &st.made.run, &d.serial).await? == Ownership::Ours
        {
            return Ok(Some(d.serial));
        }
    }
    Ok(None)
}

/// Finished when the device is enabled and the key proves it holds the
/// run's seed; waiting for the key when it is enabled and the key is not
/// here; undone otherwise.
async fn recover_made<I: IamApi>(
    iam: &I,
    caller_account: &str,
    st: &mut RunState,
    mut key: Option<&mut OathSession<'_>>,
    progress: &mut dyn Progress,
    report: &mut Report,
) -> Result<(), RecoverError> {
    let attached = match &st.made.device {
        Some(serial) => match iam.list_mfa_devices(&st.made.user).await {
            Ok(ds) => ds.iter().any(|d| &d.serial == serial),
            Err(AwsError::NoSuchEntity { .. }) => false,
            Err(e) => return Err(e.into()),
        },
        None => false,
    };
    let held = match (&st.made.credential, key.as_deref_mut()) {
        (Some(c), Some(k)) => match holdings(k, c) {
            Ok(h) => Some(h),
            Err(e) => {
                report.left.push(format!("the key could not be read ({e})"));
                return Ok(());
            }
        },
        _ => None,
    };
    let on_key =
        held.is_some_and(|(first, last)| first == Holding::Ours || last == Some(Holding::Ours));
    if attached && on_key {
        report.finished = true;
        report
            .actions
            .push("the enrollment had completed: device enabled and credential on the key".into());
        if let (Some(c), Some(k), Some(h)) = (&st.made.credential, key, held) {
            settle_replacement(k, c, h, report);
        }
        return Ok(());
    }
    if attached && st.made.credential.is_some() && held.is_none() {
        report.left.push(format!(
            "insert key {} so its credential can be checked",
            st.made
                .key_serial
                .map_or("(unknown serial)".into(), |s| s.to_string())
        ));
        return Ok(());
    }
    st.made.enable_attempted = attached;
    let out = super::undo(iam, caller_account, &st.made, key, progress).await;
    report.actions.extend(out.done);
    report.left.extend(out.left);
    report.refused.extend(out.refused);
    Ok(())
}

/// A finished replacement (the device is enabled and the key proves it
/// holds the new seed): the temporary copy goes once the credential's own
/// id holds the new seed; if the move over the old credential never
/// happened, recover makes it, as `--force` asked: the old one out, the
/// new one renamed into its place (firmware 5.3.1 and later; older keys
/// keep both, and the operator is told).
fn settle_replacement(
    key: &mut OathSession<'_>,
    c: &MadeCredential,
    (first, last): (Holding, Option<Holding>),
    report: &mut Report,
) {
    let (Some(final_id), Some(proof)) = (&c.replaces, &c.proof) else {
        return;
    };
    let temp = String::from_utf8_lossy(&c.written_as).into_owned();
    let id = String::from_utf8_lossy(final_id).into_owned();
    match (first, last) {
        (Holding::Ours, Some(Holding::Ours)) => {
            match credential::delete_proven(key, &c.written_as, proof) {
                Ok(Removal::Deleted) => report
                    .actions
                    .push(format!("deleted the temporary copy \"{temp}\"")),
                Ok(_) => {}
                Err(e) => report
                    .left
                    .push(format!("the temporary copy \"{temp}\" on the key ({e})")),
            }
        }
        (Holding::Ours, _) if key.supports_rename() => {
            match credential::move_into_place(key, &c.written_as, final_id) {
                Ok(()) => report.actions.push(format!(
                    "moved the new credential from \"{temp}\" over \"{id}\", as --force asked"
                )),
                Err(e) => report.left.push(format!(
                    "the new credential is on the key as \"{temp}\"; moving it over \"{id}\" failed ({e})"
                )),
            }
        }
        (Holding::Ours, _) => report.actions.push(format!(
            "the new credential is on the key as \"{temp}\"; \"{id}\" still holds the one it was to replace (this key cannot rename): delete that one when it is no longer needed"
        )),
        _ => {}
    }
}

/// Unassigned virtual MFA devices that mfakey created (by its tag).
pub(crate) async fn leftovers<I: IamApi>(iam: &I) -> Result<Vec<VirtualMfaDevice>, AwsError> {
    let mut ours = Vec::new();
    for d in iam.list_virtual_mfa_devices(true).await? {
        let tags = if d.tags.is_empty() {
            iam.mfa_device_tags(&d.serial).await.unwrap_or_default()
        } else {
            d.tags.clone()
        };
        if d.user.is_none() && tags.iter().any(|(k, _)| k == TAG_MANAGED) {
            ours.push(d);
        }
    }
    Ok(ours)
}

/// Deletes the given leftovers; what was deleted.
pub(crate) async fn delete_leftovers<I: IamApi>(
    iam: &I,
    found: &[VirtualMfaDevice],
) -> Result<Vec<String>, AwsError> {
    let mut deleted = Vec::new();
    for d in found {
        match iam.delete_virtual_mfa_device(&d.serial).await {
            Ok(()) => deleted.push(d.serial.clone()),
            Err(AwsError::NoSuchEntity { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}
