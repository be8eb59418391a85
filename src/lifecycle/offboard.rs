//! `mfakey offboard USER`: a leaver. Every MFA device of the user (mfakey's
//! and any other: virtual, FIDO, hardware), as the operator confirmed the
//! list, is deactivated (and a virtual one deleted); and the user's
//! credential on the inserted key is deleted, but only when it is proven
//! to be theirs.
//!
//! The proof follows the undo engine's rule (the key must prove it holds
//! the seed): while the user's virtual device is still enabled, two codes
//! from the key's credential are sent to ResyncMFADevice; AWS accepts them
//! only from that device's seed. A [`Proof`] taken from the key then (its
//! own answer to a fresh challenge) is journaled, so the credential is
//! deleted by that proof, now or by `recover` once the key is back. A
//! credential AWS did not accept stays on the key, and the report says
//! so: its name alone proves nothing.

use super::journal::{take_over, Log, Op, Step};
use super::resync::{names_user, needs_touch, Pair, ResyncError};
use super::{is_virtual, read_tags, remove_device, Guard, LifecycleError, Removal, Target};
use crate::aws::{AwsError, IamApi};
use crate::credential::{self, Proof};
use crate::enroll::KeyTarget;
use crate::oath::{Credential, OathSession};
use crate::progress::{Event, Progress};
use crate::undo::journal::{new_run_id, Journal};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub(crate) struct OffDevice {
    pub device_arn: String,
    /// `virtual`, `fido` or `hardware`.
    pub kind: &'static str,
    /// For a device mfakey tagged: the key its seed is on.
    pub key_serial: Option<u32>,
    pub mfakey: bool,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct OffboardPlan {
    pub user: String,
    pub account_id: String,
    pub devices: Vec<OffDevice>,
    /// The inserted key, if any.
    pub key_serial: Option<u32>,
    /// Its credentials named for the user (removed only once proven).
    pub credentials: Vec<String>,
}

/// The user's devices and, with a key inserted, its credentials named for
/// the user.
pub(crate) async fn plan<I: IamApi>(
    iam: &I,
    user: &str,
    key: Option<&mut KeyTarget<'_, '_>>,
) -> Result<OffboardPlan, LifecycleError> {
    let found = iam.get_user(user).await?;
    let mut devices = Vec::new();
    for d in iam.list_mfa_devices(user).await? {
        let tags = if is_virtual(&d.serial) {
            iam.mfa_device_tags(&d.serial).await.unwrap_or_default()
        } else {
            Vec::new()
        };
        let ours = read_tags(&tags);
        devices.push(OffDevice {
            kind: if is_virtual(&d.serial) {
                "virtual"
            } else if d.serial.contains(":u2f/") {
                "fido"
            } else {
                "hardware"
            },
            key_serial: ours.as_ref().and_then(|(s, _)| *s),
            mfakey: ours.is_some(),
            device_arn: d.serial,
        });
    }
    let (key_serial, credentials) = match key {
        Some(k) => (
            k.serial,
            k.session
                .list()?
                .iter()
                .filter(|c| names_user(c, user))
                .map(|c| c.id.to_id_string())
                .collect(),
        ),
        None => (None, Vec::new()),
    };
    Ok(OffboardPlan {
        user: user.to_string(),
        account_id: found.account_id,
        devices,
        key_serial,
        credentials,
    })
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct OffboardedDevice {
    pub device_arn: String,
    pub outcome: Removal,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct OffboardedCredential {
    pub credential_id: String,
    pub key_serial: Option<u32>,
    /// `deleted`, or why it stays.
    pub outcome: String,
    pub deleted: bool,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct OffboardReport {
    pub user: String,
    pub account_id: String,
    pub run: String,
    pub devices: Vec<OffboardedDevice>,
    pub credentials: Vec<OffboardedCredential>,
    /// MFA devices IAM still lists for the user (none, when all went).
    pub remaining: Vec<String>,
    pub journal: String,
}

/// Carries out a confirmed plan: proofs first (while the devices are
/// enabled), then the devices, then the proven credentials.
pub(crate) async fn apply<I: IamApi>(
    iam: &I,
    plan: &OffboardPlan,
    mut key: Option<KeyTarget<'_, '_>>,
    journal: &mut Journal,
    now: u64,
    progress: &mut dyn Progress,
) -> Result<OffboardReport, LifecycleError> {
    let run = new_run_id();
    take_over(journal, &run, &|l| {
        l.op == Op::Offboard
            && l.user.as_deref() == Some(&plan.user)
            && l.account_id.as_deref() == Some(&plan.account_id)
    })?;
    let mut log = Log::new(journal, Op::Offboard, &run, plan.key_serial);
    let mut begin = log.line(Step::Begin);
    begin.user = Some(plan.user.clone());
    begin.account_id = Some(plan.account_id.clone());
    log.append(&begin)?;
    for d in &plan.devices {
        let mut l = log.line(Step::Planned);
        l.account_id = Some(plan.account_id.clone());
        l.user = Some(plan.user.clone());
        l.device_serial = Some(d.device_arn.clone());
        log.append(&l)?;
    }
    let proven = match key.as_mut() {
        Some(k) => match prove_all(iam, plan, k.session, now, &mut log, progress).await {
            Ok(p) => p,
            Err(e) => return Err(log.stop(e, "nothing was removed".into())),
        },
        None => Vec::new(),
    };
    let mut devices = Vec::new();
    for d in &plan.devices {
        let t = Target {
            account_id: &plan.account_id,
            user: Some(&plan.user),
            serial: &d.device_arn,
        };
        match remove_device(iam, &t, Guard::Confirmed, &mut log, progress).await {
            Ok(outcome) => devices.push(OffboardedDevice {
                device_arn: d.device_arn.clone(),
                outcome,
            }),
            Err(e) => {
                let n = devices.len();
                let total = plan.devices.len();
                return Err(log.stop(e, format!("{n} of {total} device(s) removed before it")));
            }
        }
    }
    let credentials = match delete_credentials(plan, key, &proven, &mut log, progress) {
        Ok(c) => c,
        Err(e) => {
            let done = "every device was removed; the proven credential is still on the key (the journal holds its proof): insert the key";
            return Err(log.stop(e, done.into()));
        }
    };
    let remaining = match iam.list_mfa_devices(&plan.user).await {
        Ok(ds) => ds.into_iter().map(|d| d.serial).collect(),
        Err(e) => return Err(log.stop(e.into(), "every device was removed".into())),
    };
    log.mark(Step::Done, None)?;
    Ok(OffboardReport {
        user: plan.user.clone(),
        account_id: plan.account_id.clone(),
        run,
        devices,
        credentials,
        remaining,
        journal: log.path(),
    })
}

/// A credential AWS accepted codes from, and the proof taken of it.
struct Proven {
    cred: Credential,
}

/// For each of the key's credentials named for the user: the user's
/// virtual devices (those tagged as on this key first) are tried until AWS
/// accepts its codes for one.
async fn prove_all<I: IamApi>(
    iam: &I,
    plan: &OffboardPlan,
    key: &mut OathSession<'_>,
    now: u64,
    log: &mut Log<'_>,
    progress: &mut dyn Progress,
) -> Result<Vec<Proven>, LifecycleError> {
    let mut order: Vec<&OffDevice> = plan
        .devices
        .iter()
        .filter(|d| d.kind == "virtual")
        .collect();
    order.sort_by_key(|d| d.key_serial.is_none() || d.key_serial != plan.key_serial);
    let creds: Vec<Credential> = key
        .list()?
        .into_iter()
        .filter(|c| plan.credentials.contains(&c.id.to_id_string()))
        .collect();
    // Only touches reach the operator: a refused pair here is an answer.
    let mut touches = |e: Event| {
        if matches!(e, Event::Touch { .. }) {
            progress.event(e)
        }
    };
    let mut out = Vec::new();
    for mut cred in creds {
        cred.touch = Some(needs_touch(key, &cred, now)?);
        for d in &order {
            let pair = Pair {
                user: &plan.user,
                device: &d.device_arn,
                cred: &cred,
                now,
            };
            match pair.send(iam, key, &mut touches).await {
                Ok(Some(_)) => {}
                Ok(None) => continue,
                // Not a device AWS can resync (made around mfakey): the next.
                Err(ResyncError::Aws(AwsError::NoSuchEntity { .. })) => continue,
                // mfakey may not resync: nothing can be proven, the
                // credentials stay (and the report says so).
                Err(ResyncError::Aws(AwsError::AccessDenied { .. })) => return Ok(out),
                Err(e) => return Err(e.into()),
            }
            if cred.touch == Some(true) {
                touches(Event::Touch {
                    user: Some(plan.user.clone()),
                    n: 1,
                    of: 1,
                    reader: None,
                });
            }
            let proof = Proof::of_key(key, &cred.raw_id)?;
            let mut l = log.line(Step::Proven);
            l.account_id = Some(plan.account_id.clone());
            l.user = Some(plan.user.clone());
            l.device_serial = Some(d.device_arn.clone());
            l.credential_id = Some(cred.id.to_id_string());
            l.proof = Some(proof);
            log.append(&l)?;
            out.push(Proven { cred });
            break;
        }
    }
    Ok(out)
}

/// Deletes the proven credentials: this very session (exclusive, as the
/// command line opens the key for it) had AWS accept their codes and took
/// their proofs. Says why each other one stays; a key that fails mid-way
/// is an error (the journal's proof lets `recover` finish).
fn delete_credentials(
    plan: &OffboardPlan,
    key: Option<KeyTarget<'_, '_>>,
    proven: &[Proven],
    log: &mut Log<'_>,
    progress: &mut dyn Progress,
) -> Result<Vec<OffboardedCredential>, LifecycleError> {
    let mut out = Vec::new();
    let Some(key) = key else {
        return Ok(out);
    };
    for id in &plan.credentials {
        let mut done = OffboardedCredential {
            credential_id: id.clone(),
            key_serial: plan.key_serial,
            outcome: String::new(),
            deleted: false,
        };
        match proven.iter().find(|p| &p.cred.id.to_id_string() == id) {
            None => {
                done.outcome = format!(
                    "left on the key: AWS accepted its codes for none of {}'s devices, so nothing proves it is theirs; if it is, delete it with `mfakey oath delete \"{id}\"`",
                    plan.user
                );
            }
            Some(p) => {
                let removal = credential::delete_proven_in_session(key.session, &p.cred.raw_id)?;
                done.outcome = match removal {
                    credential::Removal::Deleted => {
                        let mut l = log.line(Step::CredentialDeleted);
                        l.user = Some(plan.user.clone());
                        l.credential_id = Some(id.clone());
                        log.append(&l)?;
                        progress.event(Event::Changed {
                            what: format!(
                                "deleted \"{id}\" from key {}",
                                serial_text(plan.key_serial)
                            ),
                        });
                        done.deleted = true;
                        "deleted".into()
                    }
                    credential::Removal::Absent => "was no longer on the key".into(),
                    credential::Removal::NotOurs => {
                        "left: the key no longer holds the seed AWS accepted".into()
                    }
                };
            }
        }
        out.push(done);
    }
    Ok(out)
}

fn serial_text(s: Option<u32>) -> String {
    s.map_or("(serial unknown)".into(), |s| s.to_string())
}
