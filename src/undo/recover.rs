//! Finishing or undoing enrollments a killed run left behind (`mfakey
//! recover`), and removing unassigned devices mfakey created (`cleanup`).

use super::journal::{Entry, Event, Journal, JournalError};
use crate::aws::{AwsError, IamApi, VirtualMfaDevice};
use crate::credential::unix_now;
use crate::enroll::{tags_of, TAG_MANAGED, TAG_USER};
use crate::oath::OathSession;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The enrollment had in fact completed (device enabled, credential on the key).
    Finished,
    /// Everything it created is gone.
    RolledBack,
    /// Something needs the key (or AWS) and could not be done now.
    Incomplete,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecoveredRun {
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
pub enum RecoverError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("a journal run with no lines")]
    EmptyRun,
}

/// What a run's journal lines say it got to.
pub struct RunState {
    /// The most informative line: the last one that names the device, else the last.
    pub last: Entry,
    /// Whether the credential may be on the key.
    pub written: bool,
}

pub fn state(entries: &[Entry]) -> Option<RunState> {
    let last = entries
        .iter()
        .rev()
        .find(|e| e.device_serial.is_some())
        .or(entries.last())?
        .clone();
    Some(RunState {
        written: entries.iter().any(|e| e.event == Event::Written),
        last,
    })
}

/// Finishes or undoes one unfinished run. `key` is the run's key, opened and
/// unlocked, or `None` when it is not present.
pub async fn recover_run<I: IamApi>(
    iam: &I,
    entries: &[Entry],
    key: Option<&mut OathSession<'_>>,
    journal: &mut Journal,
) -> Result<RecoveredRun, RecoverError> {
    let st = state(entries).ok_or(RecoverError::EmptyRun)?;
    let e = &st.last;
    let mut actions = Vec::new();
    let mut remaining = Vec::new();

    // Which device: journaled, or (killed between create and its journal
    // line) found by name among unassigned devices mfakey made for this user.
    let mut device = e.device_serial.clone();
    if device.is_none() {
        if let Some(name) = &e.device_name {
            for d in iam.list_virtual_mfa_devices(true).await? {
                if d.serial.rsplit('/').next() == Some(name.as_str())
                    && made_by_mfakey_for(iam, &d, &e.user).await
                {
                    device = Some(d.serial);
                    break;
                }
            }
        }
    }
    let attached = match &device {
        Some(serial) => iam
            .list_mfa_devices(&e.user)
            .await?
            .iter()
            .any(|d| &d.serial == serial),
        None => false,
    };
    let cred_raw = e.credential_id.as_ref().map(|c| c.as_bytes().to_vec());
    let mut key = key;
    let on_key = match (&mut key, &cred_raw) {
        (Some(s), Some(raw)) if st.written => match s.list() {
            Ok(list) => Some(list.iter().any(|c| &c.raw_id == raw)),
            Err(_) => None,
        },
        (_, _) if !st.written => Some(false),
        _ => None,
    };

    let outcome = if attached && on_key == Some(true) {
        actions
            .push("the enrollment had completed: device enabled and credential on the key".into());
        Outcome::Finished
    } else if attached && on_key.is_none() {
        remaining.push(format!(
            "insert key {} so its credential can be checked",
            e.key_serial
                .map_or("(unknown serial)".into(), |s| s.to_string())
        ));
        Outcome::Incomplete
    } else {
        // Not a usable enrollment: undo whatever exists.
        if st.written {
            match (&mut key, &cred_raw) {
                (Some(s), Some(raw)) => match crate::credential::remove_credential(s, raw) {
                    Ok(true) => actions.push(format!(
                        "deleted credential \"{}\" from the key",
                        lossy(raw)
                    )),
                    Ok(false) => {}
                    Err(err) => {
                        remaining.push(format!("credential \"{}\" on the key ({err})", lossy(raw)))
                    }
                },
                (None, Some(raw)) => remaining.push(format!(
                    "credential \"{}\" may be on key {}: insert it and run recover again",
                    lossy(raw),
                    e.key_serial
                        .map_or("(unknown serial)".into(), |s| s.to_string())
                )),
                _ => {}
            }
        }
        if let Some(serial) = &device {
            if attached {
                match iam.deactivate_mfa_device(&e.user, serial).await {
                    Ok(()) | Err(AwsError::NoSuchEntity { .. }) => {
                        actions.push(format!("deactivated {serial}"))
                    }
                    Err(err) => {
                        remaining.push(format!("{serial} still enabled for {} ({err})", e.user))
                    }
                }
            }
            match iam.delete_virtual_mfa_device(serial).await {
                Ok(()) => actions.push(format!("deleted virtual MFA device {serial}")),
                Err(AwsError::NoSuchEntity { .. }) => {}
                Err(err) => remaining.push(format!("virtual MFA device {serial} ({err})")),
            }
        }
        if remaining.is_empty() {
            Outcome::RolledBack
        } else {
            Outcome::Incomplete
        }
    };

    let mut line = e.clone();
    line.ts = unix_now();
    line.device_serial = device.clone();
    match outcome {
        Outcome::Finished => {
            line.event = Event::Done;
            line.detail = Some("completed, found by recover".into());
            journal.append(&line)?;
        }
        Outcome::RolledBack => {
            line.event = Event::RolledBack;
            line.detail = Some("undone by recover".into());
            journal.append(&line)?;
        }
        Outcome::Incomplete => {
            line.event = Event::RollbackFailed;
            line.detail = Some(remaining.join("; "));
            journal.append(&line)?;
        }
    }
    Ok(RecoveredRun {
        run: e.run.clone(),
        user: e.user.clone(),
        key_serial: e.key_serial,
        device_serial: device,
        credential_id: e.credential_id.clone(),
        outcome,
        actions,
        remaining,
    })
}

fn lossy(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

async fn made_by_mfakey_for<I: IamApi>(iam: &I, d: &VirtualMfaDevice, user: &str) -> bool {
    let tags = tags_of(iam, d).await;
    tags.iter().any(|(k, _)| k == TAG_MANAGED)
        && tags.iter().any(|(k, v)| k == TAG_USER && v == user)
}

/// Unassigned virtual MFA devices that mfakey created (by its tag).
pub async fn leftovers<I: IamApi>(iam: &I) -> Result<Vec<VirtualMfaDevice>, AwsError> {
    let mut ours = Vec::new();
    for d in iam.list_virtual_mfa_devices(true).await? {
        if d.user.is_none() && tags_of(iam, &d).await.iter().any(|(k, _)| k == TAG_MANAGED) {
            ours.push(d);
        }
    }
    Ok(ours)
}
