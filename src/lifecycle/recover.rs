//! `mfakey recover` for lifecycle runs that stopped part way: what the
//! operator confirmed is finished, under the rules the run itself had.
//! - `revoke`: the planned devices not yet deleted, if they still carry
//!   mfakey's tags naming the key;
//! - `replace`: OLD's device of each user now on the new key (enrolled by
//!   the run, or IAM shows a device tagged as on it); a user not moved
//!   keeps OLD's device;
//! - `offboard`: the planned devices not yet removed, then each proven
//!   credential, when its key is inserted and still proves it holds that
//!   seed.
//!
//! A run with nothing left gets its `done` line; otherwise it stays open
//! and the report says what waits (a key, an account).

use super::accounts::{Account, Via};
use super::journal::{Line, Log, Op, Step};
use super::{is_virtual, read_tags, remove_device, Guard, LifecycleError, Removal, Target};
use crate::aws::IamApi;
use crate::credential::{self, Removal as KeyRemoval};
use crate::oath::OathSession;
use crate::progress::{Outcome, Progress};
use crate::undo::journal::Journal;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub(crate) struct RecoveredRun {
    pub run: String,
    pub op: Op,
    pub outcome: Outcome,
    pub actions: Vec<String>,
    pub remaining: Vec<String>,
}

/// What recovering `run` needs: the ways into its accounts, and the key
/// holding a proven credential not yet deleted (`offboard`).
pub(crate) fn needs(run: &[Line]) -> (Vec<Via>, Option<u32>) {
    let mut vias: Vec<Via> = Vec::new();
    for l in run.iter().filter(|l| l.account_id.is_some()) {
        if let Some(v) = Via::from_key(l.account.as_deref()) {
            if !vias.contains(&v) {
                vias.push(v);
            }
        }
    }
    let key = pending_credentials(run).first().and_then(|l| l.key_serial);
    (vias, key)
}

fn pending_credentials(run: &[Line]) -> Vec<&Line> {
    run.iter()
        .filter(|l| l.step == Step::Proven)
        .filter(|p| {
            !run.iter()
                .any(|l| l.step == Step::CredentialDeleted && l.credential_id == p.credential_id)
        })
        .collect()
}

/// Planned devices without their last line (deleted; deactivated, for a
/// device that is not virtual).
fn pending_devices(run: &[Line]) -> Vec<&Line> {
    run.iter()
        .filter(|l| l.step == Step::Planned)
        .filter(|p| {
            !run.iter().any(|l| {
                l.device_serial == p.device_serial
                    && (l.step == Step::Deleted
                        || (l.step == Step::Deactivated
                            && !p.device_serial.as_deref().is_some_and(is_virtual)))
            })
        })
        .collect()
}

/// Finishes one unfinished run; `key` is the key [`needs`] named, opened
/// and unlocked, when it is present.
pub(crate) async fn recover_run<I: IamApi>(
    accounts: &[Account<'_, I>],
    run: &[Line],
    key: Option<&mut OathSession<'_>>,
    journal: &mut Journal,
    progress: &mut dyn Progress,
) -> Result<RecoveredRun, LifecycleError> {
    let first = &run[0];
    let mut log = Log::new(journal, first.op, &first.run, first.key_serial);
    let mut r = RecoveredRun {
        run: first.run.clone(),
        op: first.op,
        outcome: Outcome::Finished,
        actions: Vec::new(),
        remaining: Vec::new(),
    };
    let guard = match first.op {
        Op::Revoke | Op::Replace => Guard::KeySerial(first.key_serial.unwrap_or(0)),
        Op::Offboard => Guard::Confirmed,
    };
    for p in pending_devices(run) {
        let Some(a) = p
            .account_id
            .as_deref()
            .and_then(|id| accounts.iter().find(|a| a.id == id))
        else {
            r.remaining.push(format!(
                "{}: account {} is not reached with these credentials",
                p.device_serial.as_deref().unwrap_or("?"),
                p.account_id.as_deref().unwrap_or("?")
            ));
            continue;
        };
        if first.op == Op::Replace {
            if let Some(why) = not_moved(a, run, p).await? {
                r.actions.push(why);
                continue;
            }
        }
        let t = Target {
            account_id: &a.id,
            user: p.user.as_deref(),
            serial: p.device_serial.as_deref().unwrap_or_default(),
        };
        match remove_device(a.iam, &t, guard, &mut log, progress).await? {
            Removal::Removed => r.actions.push(format!("removed {}", t.serial)),
            Removal::Gone => {}
            Removal::Left(why) => r.actions.push(why),
        }
    }
    finish_credentials(run, key, &mut log, &mut r)?;
    if r.remaining.is_empty() {
        log.mark(Step::Done, Some("finished by recover".into()))?;
    } else {
        r.outcome = Outcome::Incomplete;
        log.mark(Step::Stopped, Some(r.remaining.join("; ")))?;
    }
    Ok(r)
}

/// `replace`: why OLD's device `p` stays (its user is not on the new key),
/// if it does.
async fn not_moved<I: IamApi>(
    a: &Account<'_, I>,
    run: &[Line],
    p: &Line,
) -> Result<Option<String>, LifecycleError> {
    let Some(user) = p.user.as_deref() else {
        return Ok(None);
    };
    let new_key = run.iter().find_map(|l| l.new_key_serial);
    let enrolled: Vec<&str> = run
        .iter()
        .filter(|l| l.step == Step::Enrolled && l.user.as_deref() == Some(user))
        .filter(|l| l.account_id.as_deref() == Some(&a.id))
        .filter_map(|l| l.device_serial.as_deref())
        .collect();
    for d in a.iam.list_mfa_devices(user).await? {
        if enrolled.contains(&d.serial.as_str()) {
            return Ok(None);
        }
        if is_virtual(&d.serial) && new_key.is_some() {
            let tags = a.iam.mfa_device_tags(&d.serial).await.unwrap_or_default();
            if read_tags(&tags).and_then(|(s, _)| s) == new_key {
                return Ok(None);
            }
        }
    }
    Ok(Some(format!(
        "{user} is not on key {} (its enrollment did not finish): keeps {}",
        new_key.map_or("?".into(), |k| k.to_string()),
        p.device_serial.as_deref().unwrap_or("?")
    )))
}

/// `offboard`: each proven credential not yet deleted, by its proof.
fn finish_credentials(
    run: &[Line],
    mut key: Option<&mut OathSession<'_>>,
    log: &mut Log<'_>,
    r: &mut RecoveredRun,
) -> Result<(), LifecycleError> {
    for p in pending_credentials(run) {
        let (Some(id), Some(proof)) = (&p.credential_id, &p.proof) else {
            continue;
        };
        let serial = p
            .key_serial
            .map_or("(serial unknown)".into(), |s| s.to_string());
        let Some(k) = key.as_deref_mut() else {
            r.remaining.push(format!(
                "credential \"{id}\" on key {serial}: insert the key and run `mfakey recover` again"
            ));
            continue;
        };
        match credential::delete_proven(k, id.as_bytes(), proof)? {
            KeyRemoval::Deleted => {
                let mut l = log.line(Step::CredentialDeleted);
                l.user = p.user.clone();
                l.credential_id = Some(id.clone());
                log.append(&l)?;
                r.actions
                    .push(format!("deleted \"{id}\" from key {serial}"));
            }
            KeyRemoval::Absent => {}
            KeyRemoval::NotOurs => r.actions.push(format!(
                "\"{id}\" on key {serial} holds another seed than the one proven: left as it is"
            )),
        }
    }
    Ok(())
}
