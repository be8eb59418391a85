//! `mfakey revoke --key-serial N`: a lost or stolen key. Every virtual MFA
//! device whose mfakey tags name key N, in every account given, is
//! deactivated and deleted; nothing else is touched. The plan is shown
//! (and confirmed by the command line) first; each change is journaled.

use super::accounts::{Account, Via};
use super::journal::{take_over, Line, Log, Op, Step};
use super::{remove_device, tagged_devices, without_mfa, Guard, LifecycleError, Removal};
use super::{Target, UserRef};
use crate::aws::IamApi;
use crate::progress::Progress;
use crate::undo::journal::{new_run_id, Journal};
use serde::Serialize;

/// A device to revoke.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Planned {
    pub account_id: String,
    /// How its account is reached.
    #[serde(skip)]
    pub via: Via,
    pub device_arn: String,
    /// The user it is enabled for (`None`: unassigned).
    pub user: Option<String>,
    /// The user's other MFA devices (of any kind), which stay.
    pub other_mfa: Vec<String>,
}

/// What a revoke will do.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RevokePlan {
    pub key_serial: u32,
    pub accounts: Vec<String>,
    pub devices: Vec<Planned>,
}

impl RevokePlan {
    /// The users the plan leaves without any MFA device.
    pub(crate) fn left_without_mfa(&self) -> Vec<UserRef> {
        let mut out: Vec<UserRef> = self
            .devices
            .iter()
            .filter(|p| p.other_mfa.is_empty())
            .filter_map(|p| {
                p.user.as_ref().map(|u| UserRef {
                    account_id: p.account_id.clone(),
                    user: u.clone(),
                })
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Finds the devices mfakey put on key `key_serial`, and what each user
/// keeps besides them.
pub(crate) async fn plan<I: IamApi>(
    accounts: &[Account<'_, I>],
    key_serial: u32,
) -> Result<RevokePlan, LifecycleError> {
    let mut devices = Vec::new();
    for a in accounts {
        let on_key: Vec<_> = tagged_devices(a.iam, &a.id)
            .await
            .map_err(|source| in_account(a, source))?
            .into_iter()
            .filter(|t| t.key_serial == Some(key_serial))
            .collect();
        for t in &on_key {
            let other_mfa = match &t.user {
                Some(u) => a
                    .iam
                    .list_mfa_devices(u)
                    .await
                    .map_err(|source| in_account(a, source))?
                    .into_iter()
                    .map(|d| d.serial)
                    .filter(|s| !on_key.iter().any(|o| &o.device_arn == s))
                    .collect(),
                None => Vec::new(),
            };
            devices.push(Planned {
                account_id: a.id.clone(),
                via: a.via.clone(),
                device_arn: t.device_arn.clone(),
                user: t.user.clone(),
                other_mfa,
            });
        }
    }
    Ok(RevokePlan {
        key_serial,
        accounts: accounts.iter().map(|a| a.id.clone()).collect(),
        devices,
    })
}

pub(super) fn in_account<I>(a: &Account<'_, I>, source: crate::aws::AwsError) -> LifecycleError {
    LifecycleError::InAccount {
        account: format!("account {} ({})", a.id, a.via),
        source,
    }
}

/// One device's outcome.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Revoked {
    pub account_id: String,
    pub user: Option<String>,
    pub device_arn: String,
    pub outcome: Removal,
}

/// What a revoke did.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RevokeReport {
    pub key_serial: u32,
    pub run: String,
    pub devices: Vec<Revoked>,
    /// Users IAM now shows with no MFA device at all.
    pub without_mfa: Vec<UserRef>,
    pub journal: String,
}

/// Carries out a confirmed plan, journaled: the plan first, then each
/// change once made. A run of this same revoke left unfinished in the
/// journal is taken over (the plan, made from IAM now, holds what it left).
pub(crate) async fn apply<I: IamApi>(
    accounts: &[Account<'_, I>],
    plan: &RevokePlan,
    journal: &mut Journal,
    progress: &mut dyn Progress,
) -> Result<RevokeReport, LifecycleError> {
    let run = new_run_id();
    let key = plan.key_serial;
    let earlier = take_over(journal, &run, &|l| {
        l.op == Op::Revoke && l.key_serial == Some(key)
    })?;
    let mut log = Log::new(journal, Op::Revoke, &run, Some(key));
    log.mark(Step::Begin, None)?;
    for p in &plan.devices {
        log.append(&planned_line(&log, p))?;
    }
    let mut done = Vec::new();
    for p in &plan.devices {
        let a = account_of(accounts, &p.account_id)?;
        let t = Target {
            account_id: &p.account_id,
            user: p.user.as_deref(),
            serial: &p.device_arn,
        };
        match remove_device(a.iam, &t, Guard::KeySerial(key), &mut log, progress).await {
            Ok(outcome) => done.push(Revoked {
                account_id: p.account_id.clone(),
                user: p.user.clone(),
                device_arn: p.device_arn.clone(),
                outcome,
            }),
            Err(e) => {
                let n = done.len();
                let cause = match e {
                    LifecycleError::Aws(source) => in_account(a, source),
                    other => other,
                };
                let total = plan.devices.len();
                return Err(log.stop(cause, format!("{n} of {total} device(s) revoked before it")));
            }
        }
    }
    let without = users_without_mfa(accounts, plan, &earlier).await;
    let without = match without {
        Ok(w) => w,
        Err(e) => return Err(log.stop(e, "every device was revoked".into())),
    };
    log.mark(Step::Done, Some(format!("{} device(s)", done.len())))?;
    Ok(RevokeReport {
        key_serial: key,
        run,
        devices: done,
        without_mfa: without,
        journal: log.path(),
    })
}

pub(super) fn planned_line(log: &Log<'_>, p: &Planned) -> Line {
    let mut l = log.line(Step::Planned);
    l.account = p.via.key();
    l.account_id = Some(p.account_id.clone());
    l.user = p.user.clone();
    l.device_serial = Some(p.device_arn.clone());
    l
}

pub(super) fn account_of<'x, 'a, I>(
    accounts: &'x [Account<'a, I>],
    id: &str,
) -> Result<&'x Account<'a, I>, LifecycleError> {
    accounts
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(|| LifecycleError::InAccount {
            account: format!("account {id}"),
            source: crate::aws::AwsError::Other {
                code: "NotReached".into(),
                message: "no credentials of this run reach it".into(),
            },
        })
}

/// The planned users (and those an earlier, taken-over run had planned)
/// that IAM now shows with no MFA at all.
async fn users_without_mfa<I: IamApi>(
    accounts: &[Account<'_, I>],
    plan: &RevokePlan,
    earlier: &[Line],
) -> Result<Vec<UserRef>, LifecycleError> {
    let mut out = Vec::new();
    for a in accounts {
        let mut users: Vec<UserRef> = plan
            .devices
            .iter()
            .filter(|p| p.account_id == a.id)
            .filter_map(|p| p.user.clone())
            .chain(
                earlier
                    .iter()
                    .filter(|l| l.account_id.as_deref() == Some(&a.id))
                    .filter_map(|l| l.user.clone()),
            )
            .map(|user| UserRef {
                account_id: a.id.clone(),
                user,
            })
            .collect();
        users.sort();
        users.dedup();
        out.extend(
            without_mfa(a.iam, users)
                .await
                .map_err(|source| in_account(a, source))?,
        );
    }
    Ok(out)
}
