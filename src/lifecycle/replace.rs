//! `mfakey replace --key-serial OLD`: every user whose device is on key OLD
//! is enrolled onto the key in the reader first (the whole enrollment,
//! rollback included), and only then is OLD's device of that user revoked;
//! so nobody is without MFA at any moment. A user who could not be moved
//! keeps OLD's device. Journaled like `revoke`; the enrollments go to the
//! enrollment journal beside it.

use super::accounts::{Account, Via};
use super::journal::{take_over, Log, Op, Step};
use super::revoke::{account_of, in_account, planned_line, Planned, Revoked};
use super::{remove_device, tagged_devices, without_mfa, Guard, LifecycleError, Removal};
use super::{Target, UserRef};
use crate::aws::{AwsError, IamApi};
use crate::credential::SlotError;
use crate::enroll::{enroll, EnrollError, EnrollOptions, KeyTarget};
use crate::error::{Classify, Kind};
use crate::progress::{Event, Progress};
use crate::undo::journal::{new_run_id, Journal};
use serde::Serialize;

/// The tag a replacement's device carries: the key it replaced.
pub(crate) const TAG_REPLACES: &str = "mfakey:replaces";

/// One user to move.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Move {
    pub account_id: String,
    #[serde(skip)]
    pub via: Via,
    pub user: String,
    /// The user's devices on OLD.
    pub old_devices: Vec<String>,
    /// The user's device already on the new key (an earlier run moved
    /// them): no new enrollment, OLD's device only goes.
    pub on_new: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ReplacePlan {
    pub old_key: u32,
    pub new_key: u32,
    pub accounts: Vec<String>,
    pub moves: Vec<Move>,
    /// OLD's devices enabled for nobody: deleted.
    pub unassigned: Vec<Planned>,
}

/// Finds OLD's users, checks the key in the reader (not OLD, room for
/// them all), and what each user already has on it.
pub(crate) async fn plan<I: IamApi>(
    accounts: &[Account<'_, I>],
    old_key: u32,
    key: &mut KeyTarget<'_, '_>,
) -> Result<ReplacePlan, LifecycleError> {
    let new_key = key.serial.ok_or(LifecycleError::NoSerial)?;
    if new_key == old_key {
        return Err(LifecycleError::SameKey(old_key));
    }
    let (mut moves, mut unassigned) = (Vec::<Move>::new(), Vec::new());
    for a in accounts {
        let tagged = tagged_devices(a.iam, &a.id)
            .await
            .map_err(|source| in_account(a, source))?;
        for t in tagged.iter().filter(|t| t.key_serial == Some(old_key)) {
            let Some(user) = &t.user else {
                unassigned.push(Planned {
                    account_id: a.id.clone(),
                    via: a.via.clone(),
                    device_arn: t.device_arn.clone(),
                    user: None,
                    other_mfa: Vec::new(),
                });
                continue;
            };
            match moves
                .iter_mut()
                .find(|m| m.account_id == a.id && &m.user == user)
            {
                Some(m) => m.old_devices.push(t.device_arn.clone()),
                None => moves.push(Move {
                    account_id: a.id.clone(),
                    via: a.via.clone(),
                    user: user.clone(),
                    old_devices: vec![t.device_arn.clone()],
                    on_new: tagged
                        .iter()
                        .find(|n| n.key_serial == Some(new_key) && n.user.as_ref() == Some(user))
                        .map(|n| n.device_arn.clone()),
                }),
            }
        }
    }
    let need = moves.iter().filter(|m| m.on_new.is_none()).count();
    let free = key.capacity.saturating_sub(key.session.list()?.len());
    if need > free {
        return Err(LifecycleError::NoRoom { free, need });
    }
    Ok(ReplacePlan {
        old_key,
        new_key,
        accounts: accounts.iter().map(|a| a.id.clone()).collect(),
        moves,
        unassigned,
    })
}

/// How the new devices are made.
#[derive(Clone, Debug)]
pub(crate) struct ReplaceOptions {
    pub touch: bool,
    pub path: String,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Moved {
    pub account_id: String,
    pub user: String,
    pub new_device: String,
    pub old_devices: Vec<Revoked>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct NotMoved {
    pub account_id: String,
    pub user: String,
    /// Why; the user keeps OLD's device.
    pub error: String,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ReplaceReport {
    pub old_key: u32,
    pub new_key: u32,
    pub run: String,
    pub moved: Vec<Moved>,
    pub not_moved: Vec<NotMoved>,
    pub unassigned: Vec<Revoked>,
    pub without_mfa: Vec<UserRef>,
    /// What stopped the enrollments early (the key pulled, IAM gone), if
    /// anything: the users after it were not tried.
    pub stopped: Option<String>,
    #[serde(skip)]
    pub stopped_kind: Option<Kind>,
    pub journal: String,
}

/// The two journals of a replace run.
pub(crate) struct Journals<'j> {
    pub lifecycle: &'j mut Journal,
    pub enroll: &'j mut Journal,
}

/// The run under way.
struct Run<'r, 'a, I> {
    accounts: &'r [Account<'a, I>],
    plan: &'r ReplacePlan,
    log: Log<'r>,
    moved: Vec<Moved>,
    not_moved: Vec<NotMoved>,
    stopped: Option<EnrollError>,
}

/// Moves every planned user onto the key, then revokes OLD's devices of
/// those who are on it.
pub(crate) async fn apply<I: IamApi>(
    accounts: &[Account<'_, I>],
    plan: &ReplacePlan,
    key: KeyTarget<'_, '_>,
    opts: &ReplaceOptions,
    journals: Journals<'_>,
    progress: &mut dyn Progress,
) -> Result<ReplaceReport, LifecycleError> {
    let run_id = new_run_id();
    let old = plan.old_key;
    take_over(journals.lifecycle, &run_id, &|l| {
        l.op == Op::Replace && l.key_serial == Some(old)
    })?;
    let mut log = Log::new(journals.lifecycle, Op::Replace, &run_id, Some(old));
    log.set_new_key(plan.new_key);
    log.mark(Step::Begin, None)?;
    for m in &plan.moves {
        for d in &m.old_devices {
            let p = planned(m, d);
            log.append(&planned_line(&log, &p))?;
        }
    }
    for p in &plan.unassigned {
        log.append(&planned_line(&log, p))?;
    }
    let mut run = Run {
        accounts,
        plan,
        log,
        moved: Vec::new(),
        not_moved: Vec::new(),
        stopped: None,
    };
    run.enroll_all(key, opts, journals.enroll, progress).await?;
    if let Err(e) = run.revoke_old(progress).await {
        let n = run.moved.len();
        return Err(run.log.stop(e, format!("{n} user(s) moved to the new key")));
    }
    run.finish().await
}

fn planned(m: &Move, device: &str) -> Planned {
    Planned {
        account_id: m.account_id.clone(),
        via: m.via.clone(),
        device_arn: device.to_string(),
        user: Some(m.user.clone()),
        other_mfa: Vec::new(),
    }
}

/// Whether an enrollment's failure ends the enrollments (the key or IAM is
/// gone, or something is left to recover) rather than this user's alone.
fn stops_the_run(e: &EnrollError) -> bool {
    if e.kind() == Kind::RollbackIncomplete {
        return true;
    }
    match e.root() {
        // This user's credential id is taken on the key: theirs alone.
        EnrollError::Slot(SlotError::Exists { .. }) => false,
        EnrollError::Oath(_) | EnrollError::Slot(_) | EnrollError::Journal(_) => true,
        EnrollError::CheckFailed => true,
        EnrollError::Aws(a) => matches!(
            a,
            AwsError::EndpointUnreachable { .. }
                | AwsError::ExpiredCredentials { .. }
                | AwsError::NoCredentials { .. }
                | AwsError::Throttling { .. }
        ),
        _ => false,
    }
}

impl<I: IamApi> Run<'_, '_, I> {
    async fn enroll_all(
        &mut self,
        key: KeyTarget<'_, '_>,
        opts: &ReplaceOptions,
        journal: &mut Journal,
        progress: &mut dyn Progress,
    ) -> Result<(), LifecycleError> {
        let (session, serial, capacity) = (key.session, key.serial, key.capacity);
        for m in &self.plan.moves {
            if let Some(dev) = &m.on_new {
                self.moved_to(m, dev.clone());
                continue;
            }
            if let Some(e) = &self.stopped {
                self.not_moved.push(NotMoved {
                    account_id: m.account_id.clone(),
                    user: m.user.clone(),
                    error: format!(
                        "not tried: the run stopped at an earlier user ({})",
                        e.root()
                    ),
                });
                continue;
            }
            let a = account_of(self.accounts, &m.account_id)?;
            let eopts = EnrollOptions {
                user: m.user.clone(),
                device_name: None,
                path: opts.path.clone(),
                touch: opts.touch,
                account_label: None,
                tags: vec![(TAG_REPLACES.to_string(), self.plan.old_key.to_string())],
                force: false,
            };
            let target = KeyTarget {
                session: &mut *session,
                serial,
                capacity,
            };
            match enroll(a.iam, target, &eopts, journal, progress).await {
                Ok(r) => {
                    let mut line = self.log.line(Step::Enrolled);
                    line.account = m.via.key();
                    line.account_id = Some(m.account_id.clone());
                    line.user = Some(m.user.clone());
                    line.device_serial = Some(r.device_serial.clone());
                    self.log.append(&line)?;
                    progress.event(Event::Changed {
                        what: format!(
                            "{} is on key {} ({})",
                            m.user, self.plan.new_key, r.device_serial
                        ),
                    });
                    self.moved_to(m, r.device_serial);
                }
                Err(e) => {
                    self.not_moved.push(NotMoved {
                        account_id: m.account_id.clone(),
                        user: m.user.clone(),
                        error: e.to_string(),
                    });
                    if stops_the_run(&e) {
                        self.stopped = Some(e);
                    }
                }
            }
        }
        Ok(())
    }

    fn moved_to(&mut self, m: &Move, new_device: String) {
        self.moved.push(Moved {
            account_id: m.account_id.clone(),
            user: m.user.clone(),
            new_device,
            old_devices: m
                .old_devices
                .iter()
                .map(|d| Revoked {
                    account_id: m.account_id.clone(),
                    user: Some(m.user.clone()),
                    device_arn: d.clone(),
                    outcome: Removal::Left("not revoked yet".into()),
                })
                .collect(),
        });
    }

    /// OLD's devices of the users now on the new key, and OLD's unassigned
    /// devices.
    async fn revoke_old(&mut self, progress: &mut dyn Progress) -> Result<(), LifecycleError> {
        let guard = Guard::KeySerial(self.plan.old_key);
        for i in 0..self.moved.len() {
            for j in 0..self.moved[i].old_devices.len() {
                let (acct, user, dev) = {
                    let r = &self.moved[i].old_devices[j];
                    (r.account_id.clone(), r.user.clone(), r.device_arn.clone())
                };
                let a = account_of(self.accounts, &acct)?;
                let t = Target {
                    account_id: &acct,
                    user: user.as_deref(),
                    serial: &dev,
                };
                let outcome = remove_device(a.iam, &t, guard, &mut self.log, progress)
                    .await
                    .map_err(|e| match e {
                        LifecycleError::Aws(source) => in_account(a, source),
                        other => other,
                    })?;
                self.moved[i].old_devices[j].outcome = outcome;
            }
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<ReplaceReport, LifecycleError> {
        let guard = Guard::KeySerial(self.plan.old_key);
        let mut unassigned = Vec::new();
        for p in &self.plan.unassigned {
            let a = account_of(self.accounts, &p.account_id)?;
            let t = Target {
                account_id: &p.account_id,
                user: None,
                serial: &p.device_arn,
            };
            let mut none = |_e: Event| {};
            match remove_device(a.iam, &t, guard, &mut self.log, &mut none).await {
                Ok(outcome) => unassigned.push(Revoked {
                    account_id: p.account_id.clone(),
                    user: None,
                    device_arn: p.device_arn.clone(),
                    outcome,
                }),
                Err(e) => {
                    let n = self.moved.len();
                    return Err(self
                        .log
                        .stop(e, format!("{n} user(s) moved to the new key")));
                }
            }
        }
        let mut without = Vec::new();
        for a in self.accounts {
            let users = self
                .plan
                .moves
                .iter()
                .filter(|m| m.account_id == a.id)
                .map(|m| UserRef {
                    account_id: a.id.clone(),
                    user: m.user.clone(),
                });
            match without_mfa(a.iam, users).await {
                Ok(w) => without.extend(w),
                Err(e) => {
                    let n = self.moved.len();
                    return Err(self
                        .log
                        .stop(in_account(a, e), format!("{n} user(s) moved")));
                }
            }
        }
        let detail = format!("{} moved, {} not", self.moved.len(), self.not_moved.len());
        self.log.mark(Step::Done, Some(detail))?;
        Ok(ReplaceReport {
            old_key: self.plan.old_key,
            new_key: self.plan.new_key,
            run: self.log.run().to_string(),
            journal: self.log.path(),
            moved: self.moved,
            not_moved: self.not_moved,
            unassigned,
            without_mfa: without,
            stopped_kind: self.stopped.as_ref().map(Classify::kind),
            stopped: self.stopped.map(|e| e.to_string()),
        })
    }
}
