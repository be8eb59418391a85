//! The start of an enrollment, up to the device existing in IAM: preflight's
//! IAM reads and the create, either one after the other or (the common
//! case) at once, with the create undone when the reads refuse.
//!
//! Overlapping them saves a sequential round trip to IAM (about 100 ms from
//! outside us-east-1) on every enrollment. The price: a refusal from the
//! reads (no such user, 8 MFA devices, clock skew, the credential id
//! clashing on the key) comes after a device was made, so it is undone
//! before the refusal is reported: through the undo engine (this run's tag,
//! in the caller's account), journaled `begin` → `created`/`rolled_back`,
//! and said when it cannot be undone (`rollback_incomplete`, as any undo).
//! Nothing is left behind either way.

use super::preflight::{self, Facts, Listing, Local, NameCheck, Plan};
use super::{device_tags, Clock, EnrollError, EnrollOptions, Enrollment, KeyTarget};
use crate::aws::{AwsError, CreatedDevice, IamApi};
use crate::credential::unix_now;
use crate::progress::{Event, Progress, Step};
use crate::undo::journal::{new_run_id, Entry, Event as JEvent, Journal};
use crate::undo::{self, Made, Ownership};
use std::future::Future;
use std::time::Instant;

/// An enrollment before its device exists.
pub(super) struct Start<'a, 's, 't, I> {
    iam: &'a I,
    key: KeyTarget<'s, 't>,
    opts: &'a EnrollOptions,
    local: Local,
    journal: &'a Journal,
    run: String,
    clock: Clock,
    progress: &'a mut dyn Progress,
}

/// The device and its seed, with the enrollment that goes on from it.
type Begun<'a, 's, 't, I> = (Enrollment<'a, 's, 't, I>, CreatedDevice);

impl<'a, 's, 't, I: IamApi> Start<'a, 's, 't, I> {
    pub(super) fn new(
        iam: &'a I,
        key: KeyTarget<'s, 't>,
        opts: &'a EnrollOptions,
        local: Local,
        journal: &'a Journal,
        clock: Clock,
        progress: &'a mut dyn Progress,
    ) -> Self {
        Start {
            iam,
            key,
            opts,
            local,
            journal,
            run: new_run_id(),
            clock,
            progress,
        }
    }

    /// Preflight's reads, then the create: for a key that might refuse the
    /// credential (full, or holding one its id could clash with).
    pub(super) async fn sequential(self) -> Result<Begun<'a, 's, 't, I>, EnrollError> {
        let facts = preflight::read_iam(self.iam, self.opts, Listing::WithTheReads).await?;
        let capacity = self.key.capacity;
        let plan = preflight::decide(
            self.iam,
            &facts,
            &self.local,
            capacity,
            self.opts,
            &self.run,
            NameCheck::Look,
        )
        .await?;
        let mut e = self.into_enrollment(plan);
        e.log(JEvent::Begin, None)?;
        e.clock.lap(Step::Preflight);
        e.step(Step::Create);
        let created = e.create().await?;
        Ok((e, created))
    }

    /// Preflight's reads and the create in one round.
    pub(super) async fn overlapped(self) -> Result<Begun<'a, 's, 't, I>, EnrollError> {
        // Begin before the create goes out: from here on a killed run
        // leaves a line `recover` finds the device by (name and run tag).
        self.journal.append(&self.entry(JEvent::Begin, None))?;
        self.progress.event(Event::Step {
            user: self.opts.user.clone(),
            step: Step::Create,
            reader: None,
        });
        let tags = device_tags(self.opts, &self.run, self.key.serial);
        let round = Instant::now();
        let create =
            self.iam
                .create_virtual_mfa_device(&self.local.device_name, &self.opts.path, &tags);
        let ((facts, read_ms), (created, create_ms)) = tokio::join!(
            timed(
                round,
                preflight::read_iam(self.iam, self.opts, Listing::IfNeeded)
            ),
            timed(round, create),
        );
        let plan = match facts {
            Ok(mut f) => self.judge(&mut f, &created).await.map_err(|r| (r, Some(f))),
            Err(e) => Err((e.into(), None)),
        };
        let plan = match plan {
            Ok(plan) => plan,
            Err((refusal, facts)) => return Err(self.take_back(facts, created, refusal).await),
        };
        let mut e = self.into_enrollment(plan);
        e.clock.record(Step::Preflight, read_ms);
        match created {
            Ok(c) => {
                e.adopt(&c).await?;
                e.clock.record(Step::Create, create_ms);
                Ok((e, c))
            }
            // A lost create of our own met by the SDK's retry, or a device
            // of the name made since the listing: as in the sequential case.
            Err(AwsError::EntityAlreadyExists { .. }) => {
                let c = e.create().await?;
                Ok((e, c))
            }
            Err(err) => Err(e.create_failed(err).await),
        }
    }

    /// Preflight's refusals, on IAM's answers and the key's list. A
    /// successful create proves the name was free; a create refused for the
    /// name is a refusal unless the device is this run's own (a lost answer):
    /// the account's devices are listed then, to tell which and whose.
    async fn judge(
        &self,
        facts: &mut Facts,
        created: &Result<CreatedDevice, AwsError>,
    ) -> Result<Plan, EnrollError> {
        let names = match created {
            Ok(_) => NameCheck::FreeByCreate,
            Err(AwsError::EntityAlreadyExists { .. }) => {
                facts.virtuals = Some(self.iam.list_virtual_mfa_devices(false).await?);
                match self.own_device(facts).await? {
                    Some(_) => NameCheck::FreeByCreate,
                    None => NameCheck::Look,
                }
            }
            Err(_) => NameCheck::Look,
        };
        let capacity = self.key.capacity;
        preflight::decide(
            self.iam,
            facts,
            &self.local,
            capacity,
            self.opts,
            &self.run,
            names,
        )
        .await
    }

    /// The device of the planned name in IAM's listing, if it carries this
    /// run's tag (a create that acted although its answer was lost).
    async fn own_device(&self, facts: &Facts) -> Result<Option<String>, EnrollError> {
        let name = self.local.device_name.as_str();
        let Some(d) = facts
            .virtuals
            .iter()
            .flatten()
            .find(|d| d.serial.rsplit('/').next() == Some(name))
        else {
            return Ok(None);
        };
        let account = facts.user.account_id.as_str();
        Ok(
            (undo::ownership(self.iam, account, &self.run, &d.serial).await? == Ownership::Ours)
                .then(|| d.serial.clone()),
        )
    }

    /// A refusal after the create went out: whatever the create made is
    /// undone through the undo engine before the refusal is reported.
    async fn take_back(
        self,
        facts: Option<Facts>,
        created: Result<CreatedDevice, AwsError>,
        refusal: EnrollError,
    ) -> EnrollError {
        let account = match &facts {
            Some(f) => Ok(f.user.account_id.clone()),
            None => self.iam.account_id().await,
        };
        let device = match (created, &account) {
            // The seed goes with `c`, unused.
            (Ok(c), _) => Ok(Some(c.serial.clone())),
            (Err(AwsError::AccessDenied { .. } | AwsError::LimitExceeded { .. }), _) => Ok(None),
            // It may have acted: this run's device of the name, if any.
            (Err(_), Ok(account)) => self.find_own(account).await,
            (Err(_), Err(e)) => Err(e.clone()),
        };
        let device = match device {
            Ok(None) => return self.ended(JEvent::RolledBack, refusal, Vec::new()),
            Ok(Some(d)) => d,
            Err(e) => {
                let left = vec![format!(
                    "a virtual MFA device named {} may exist ({e})",
                    self.local.device_name
                )];
                return self.ended(JEvent::RollbackFailed, refusal, left);
            }
        };
        let account = match account {
            Ok(a) => a,
            Err(e) => {
                let left = vec![format!("virtual MFA device {device} ({e})")];
                return self.ended(JEvent::RollbackFailed, refusal, left);
            }
        };
        let made = Made {
            run: self.run.clone(),
            account_id: facts.map(|f| f.user.account_id),
            user: self.opts.user.clone(),
            key_serial: self.key.serial,
            device: Some(device),
            enable_attempted: false,
            credential: None,
        };
        let out = undo::undo(self.iam, &account, &made, None, &mut *self.progress).await;
        let left: Vec<String> = out.left.into_iter().chain(out.refused).collect();
        let event = if left.is_empty() {
            JEvent::RolledBack
        } else {
            JEvent::RollbackFailed
        };
        self.ended(event, refusal, left)
    }

    /// This run's unassigned device of the planned name, looked up afresh.
    async fn find_own(&self, account: &str) -> Result<Option<String>, AwsError> {
        let name = self.local.device_name.as_str();
        for d in self.iam.list_virtual_mfa_devices(true).await? {
            if d.serial.rsplit('/').next() == Some(name)
                && undo::ownership(self.iam, account, &self.run, &d.serial).await?
                    == Ownership::Ours
            {
                return Ok(Some(d.serial));
            }
        }
        Ok(None)
    }

    /// Journals how a refused run ended; the refusal, or the incomplete undo.
    fn ended(&self, event: JEvent, refusal: EnrollError, left: Vec<String>) -> EnrollError {
        let detail = match event {
            JEvent::RolledBack => refusal.to_string(),
            _ => left.join("; "),
        };
        let _ = self.journal.append(&self.entry(event, Some(detail)));
        if left.is_empty() {
            return refusal;
        }
        EnrollError::RollbackIncomplete {
            cause: Box::new(refusal),
            left,
            journal: self.journal.path().display().to_string(),
        }
    }

    /// A journal line of this run, before the plan is known (no account,
    /// no credential id yet).
    fn entry(&self, event: JEvent, detail: Option<String>) -> Entry {
        Entry {
            ts: unix_now(),
            run: self.run.clone(),
            event,
            user: self.opts.user.clone(),
            account_id: None,
            device_name: Some(self.local.device_name.clone()),
            device_serial: None,
            key_serial: self.key.serial,
            credential_id: None,
            written_as: None,
            proof: None,
            detail,
        }
    }

    fn into_enrollment(self, plan: Plan) -> Enrollment<'a, 's, 't, I> {
        let mut base = self.entry(JEvent::Begin, None);
        base.ts = 0;
        base.account_id = Some(plan.account_id.clone());
        base.credential_id = Some(plan.cred_id.to_id_string());
        Enrollment {
            made: Made {
                run: self.run,
                account_id: Some(plan.account_id.clone()),
                user: self.opts.user.clone(),
                key_serial: self.key.serial,
                ..Made::default()
            },
            base,
            iam: self.iam,
            key: self.key,
            opts: self.opts,
            plan,
            journal: self.journal,
            clock: self.clock,
            progress: self.progress,
        }
    }
}

/// `f`'s output and the milliseconds from `since` to its completion.
async fn timed<T>(since: Instant, f: impl Future<Output = T>) -> (T, f64) {
    let out = f.await;
    (out, since.elapsed().as_secs_f64() * 1e3)
}
