//! Enrolling an IAM user's virtual MFA device onto a key, transactionally:
//! preflight → create → write → check → enable → verify (→ settle, for a
//! replacement), each step journaled before it is acted on further; on any
//! failure after the create, the undo engine removes what this run made.

pub(crate) mod naming;
pub(crate) mod preflight;
mod start;

use crate::aws::{AwsError, CreatedDevice, IamApi};
use crate::credential::{self, unix_now, CodeError, Placement, Proof, SlotError, PERIOD};
use crate::oath::{Credential, OathError, OathSession};
use crate::progress::{Event, Progress, Step};
use crate::secret::SecretBytes;
use crate::undo::journal::{Entry, Event as JEvent, Journal, JournalError};
use crate::undo::{self, Made, MadeCredential, Ownership, TAG_RUN};
use preflight::Plan;
use serde::Serialize;
use std::time::{Duration, Instant};

/// How far the host clock may be from AWS's. The codes come from the host
/// clock; AWS checks them against its own. Half a 30-second step keeps the
/// host's "current step" the same as AWS's or next to it, inside the one
/// step either way that TOTP validators allow, with room for the `Date`
/// header's one-second resolution and the request's latency.
pub(crate) const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15);

/// IAM's limit of MFA devices per user.
pub(crate) const MAX_MFA_DEVICES: usize = 8;

/// Tag keys mfakey puts on the devices it creates (`cleanup` finds them by
/// these; the undo engine by [`TAG_RUN`]).
pub(crate) const TAG_MANAGED: &str = "mfakey:managed";
pub(crate) const TAG_KEY_SERIAL: &str = "mfakey:key-serial";
pub(crate) const TAG_USER: &str = "mfakey:user";

#[derive(Clone, Debug)]
pub(crate) struct EnrollOptions {
    pub user: String,
    /// Default `<user>-yk<serial>`.
    pub device_name: Option<String>,
    /// IAM path, default `/`.
    pub path: String,
    pub touch: bool,
    /// Shown after `@` in the credential id; default the account alias, else its id.
    pub account_label: Option<String>,
    pub tags: Vec<(String, String)>,
    /// Replace a credential with the same id on the key (only once the new
    /// one is proven).
    pub force: bool,
}

/// The key to enroll onto: an open, unlocked OATH session and what we know of it.
pub(crate) struct KeyTarget<'s, 't> {
    pub session: &'s mut OathSession<'t>,
    pub serial: Option<u32>,
    pub capacity: usize,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct StepTime {
    pub step: Step,
    pub ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct EnrollReport {
    pub user: String,
    pub account_id: String,
    pub device_serial: String,
    pub key_serial: Option<u32>,
    pub credential_id: String,
    pub touch: bool,
    pub steps: Vec<StepTime>,
    pub total_ms: f64,
    pub journal: String,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum EnrollError {
    #[error("invalid {what}: {why}")]
    Invalid { what: &'static str, why: String },
    #[error("user {user} already has {count} MFA devices, IAM's limit is {MAX_MFA_DEVICES}: remove one first (aws iam deactivate-mfa-device)")]
    TooManyDevices { user: String, count: usize },
    #[error("a virtual MFA device named {name} already exists ({serial}){hint}")]
    DeviceNameTaken {
        name: String,
        serial: String,
        hint: String,
    },
    #[error("the host clock is {skew_secs} s away from AWS's; codes would be refused. Set the clock (NTP) and try again (bound: {} s)", MAX_CLOCK_SKEW.as_secs())]
    ClockSkew { skew_secs: i64 },
    #[error(transparent)]
    Slot(SlotError),
    #[error(
        "the key's codes differ from the codes of the seed AWS issued: the write did not take"
    )]
    CheckFailed,
    #[error("EnableMFADevice succeeded but {serial} is not among {user}'s MFA devices")]
    NotVerified { user: String, serial: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Oath(#[from] OathError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{cause}; everything this run created was removed again ({})", undone.join(", "))]
    RolledBack {
        cause: Box<EnrollError>,
        undone: Vec<String>,
    },
    #[error("{cause}; the rollback is incomplete, left behind: {}; run `mfakey recover` (journal {journal})", left.join("; "))]
    RollbackIncomplete {
        cause: Box<EnrollError>,
        left: Vec<String>,
        journal: String,
    },
    #[error("{user} is enrolled ({serial}), but moving the new credential over the one it replaces failed ({cause}): the new one is on the key as \"{temp}\"; insert the key and run `mfakey recover` (journal {journal})")]
    NotSettled {
        user: String,
        serial: String,
        temp: String,
        cause: Box<OathError>,
        journal: String,
    },
}

impl EnrollError {
    /// The failure that started it all (through rollbacks).
    pub(crate) fn root(&self) -> &EnrollError {
        match self {
            EnrollError::RolledBack { cause, .. }
            | EnrollError::RollbackIncomplete { cause, .. } => cause.root(),
            e => e,
        }
    }
}

impl crate::error::Classify for EnrollError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        if matches!(
            self,
            EnrollError::RollbackIncomplete { .. } | EnrollError::NotSettled { .. }
        ) {
            return Kind::RollbackIncomplete;
        }
        match self.root() {
            EnrollError::Invalid { .. } => Kind::InvalidArgument,
            EnrollError::TooManyDevices { .. } => Kind::TooManyDevices,
            EnrollError::DeviceNameTaken { .. } => Kind::DeviceNameTaken,
            EnrollError::ClockSkew { .. } => Kind::ClockSkew,
            EnrollError::Slot(s) => s.kind(),
            EnrollError::CheckFailed => Kind::CheckFailed,
            EnrollError::NotVerified { .. } => Kind::NotVerified,
            EnrollError::Aws(a) => a.kind(),
            EnrollError::Oath(o) => o.kind(),
            EnrollError::Journal(j) => j.kind(),
            _ => Kind::Other,
        }
    }
}

impl From<SlotError> for EnrollError {
    fn from(e: SlotError) -> Self {
        match e {
            SlotError::Oath(o) => EnrollError::Oath(o),
            other => EnrollError::Slot(other),
        }
    }
}

impl From<CodeError> for EnrollError {
    fn from(e: CodeError) -> Self {
        match e {
            CodeError::Mismatch => EnrollError::CheckFailed,
            CodeError::Oath(o) => EnrollError::Oath(o),
        }
    }
}

/// Step times.
struct Clock {
    started: Instant,
    last: Instant,
    steps: Vec<StepTime>,
}

impl Clock {
    fn new() -> Self {
        let now = Instant::now();
        Clock {
            started: now,
            last: now,
            steps: Vec::new(),
        }
    }
    fn lap(&mut self, step: Step) {
        let now = Instant::now();
        self.steps.push(StepTime {
            step,
            ms: (now - self.last).as_secs_f64() * 1e3,
        });
        self.last = now;
    }
    /// A step timed apart (steps that ran at once), and the next lap
    /// counted from now.
    fn record(&mut self, step: Step, ms: f64) {
        self.steps.push(StepTime { step, ms });
        self.last = Instant::now();
    }
}

/// One enrollment under way: what it works with and what it has made.
struct Enrollment<'a, 's, 't, I> {
    iam: &'a I,
    key: KeyTarget<'s, 't>,
    opts: &'a EnrollOptions,
    plan: Plan,
    journal: &'a Journal,
    base: Entry,
    made: Made,
    clock: Clock,
    progress: &'a mut dyn Progress,
}

/// Enrolls `opts.user`'s new virtual MFA device onto the key. The journal
/// must be open (shared); every step is recorded in it first.
///
/// In the common case (the key has room and holds nothing the new
/// credential's id could clash with) the create goes out together with
/// preflight's IAM reads, and a refusal from those reads undoes it through
/// the undo engine: three sequential IAM rounds (reads and create, enable,
/// verify) instead of four. Otherwise preflight answers first, as before.
pub(crate) async fn enroll<I: IamApi>(
    iam: &I,
    mut key: KeyTarget<'_, '_>,
    opts: &EnrollOptions,
    journal: &Journal,
    progress: &mut dyn Progress,
) -> Result<EnrollReport, EnrollError> {
    let clock = Clock::new();
    progress.event(Event::Step {
        user: opts.user.clone(),
        step: Step::Preflight,
        reader: None,
    });
    let local = preflight::local(&mut key, opts)?;
    let overlap = local.key_takes_it(&opts.user, key.capacity);
    let start = start::Start::new(iam, key, opts, local, journal, clock, progress);
    let (mut e, created) = if overlap {
        start.overlapped().await?
    } else {
        start.sequential().await?
    };
    let result = e.finish(&created.serial, &created.seed).await;
    drop(created);
    match result {
        Ok(()) => e.done(),
        Err(cause @ EnrollError::NotSettled { .. }) => Err(cause),
        Err(cause) => Err(e.rollback(cause).await),
    }
}

/// Reports each touch a read of `user`'s credential waits for.
fn touch_events<'p>(progress: &'p mut dyn Progress, user: &'p str) -> impl FnMut(u8, u8) + 'p {
    move |n, of| {
        progress.event(Event::Touch {
            user: Some(user.to_string()),
            n,
            of,
            reader: None,
        })
    }
}

/// The tags of a device an enrollment creates.
fn device_tags(opts: &EnrollOptions, run: &str, key_serial: Option<u32>) -> Vec<(String, String)> {
    let mut tags = vec![
        (TAG_MANAGED.to_string(), "true".to_string()),
        (TAG_USER.to_string(), opts.user.clone()),
        (TAG_RUN.to_string(), run.to_string()),
    ];
    if let Some(s) = key_serial {
        tags.push((TAG_KEY_SERIAL.to_string(), s.to_string()));
    }
    tags.extend(opts.tags.iter().cloned());
    tags
}

impl<'a, 's, 't, I: IamApi> Enrollment<'a, 's, 't, I> {
    /// A journal line, durable before the step it records goes on.
    fn log(&mut self, event: JEvent, detail: Option<String>) -> Result<(), JournalError> {
        let line = self.line(event, detail);
        self.journal.append(&line)
    }

    /// A journal line nothing waits on (`created`, `written`, `enabled`):
    /// the next logged line, which comes before anything else is done
    /// outside the process, makes it durable too.
    fn note(&mut self, event: JEvent) -> Result<(), JournalError> {
        let line = self.line(event, None);
        self.journal.note(&line)
    }

    fn line(&self, event: JEvent, detail: Option<String>) -> Entry {
        let mut line = self.base.clone();
        line.ts = unix_now();
        line.event = event;
        line.detail = detail;
        line
    }

    fn step(&mut self, step: Step) {
        self.progress.event(Event::Step {
            user: self.opts.user.clone(),
            step,
            reader: None,
        });
    }

    /// Creates the device. A create whose answer was lost may still have
    /// made it: what carries this run's tag is this run's, and is replaced
    /// (its seed went with the lost answer) or removed.
    async fn create(&mut self) -> Result<CreatedDevice, EnrollError> {
        let tags = device_tags(self.opts, &self.made.run, self.key.serial);
        let (name, path) = (self.plan.device_name.clone(), self.opts.path.clone());
        let (name, path) = (name.as_str(), path.as_str());
        let created = match self.iam.create_virtual_mfa_device(name, path, &tags).await {
            Ok(created) => created,
            Err(AwsError::EntityAlreadyExists { .. }) => {
                // Preflight saw no such device: the SDK's retry met our own.
                self.remove_lost_create().await?;
                self.iam
                    .create_virtual_mfa_device(name, path, &tags)
                    .await?
            }
            Err(e) => return Err(self.create_failed(e).await),
        };
        self.adopt(&created).await?;
        self.clock.lap(Step::Create);
        Ok(created)
    }

    /// A create that failed may still have acted (a lost answer).
    async fn create_failed(&mut self, e: AwsError) -> EnrollError {
        // Best effort; if IAM cannot be reached, the Begin line lets
        // `recover` find the device by name and run tag.
        if !matches!(
            e,
            AwsError::AccessDenied { .. } | AwsError::LimitExceeded { .. }
        ) {
            let _ = self.remove_lost_create().await;
        }
        e.into()
    }

    /// Takes a created device on: journaled, or removed at once.
    async fn adopt(&mut self, created: &CreatedDevice) -> Result<(), EnrollError> {
        self.made.device = Some(created.serial.clone());
        self.base.device_serial = Some(created.serial.clone());
        if let Err(e) = self.note(JEvent::Created) {
            // The device exists but is not journaled: remove it now.
            let _ = self.iam.delete_virtual_mfa_device(&created.serial).await;
            return Err(e.into());
        }
        Ok(())
    }

    /// Deletes the unassigned device of the planned name if it is this run's.
    async fn remove_lost_create(&mut self) -> Result<(), EnrollError> {
        let name = self.plan.device_name.clone();
        let lost = self
            .iam
            .list_virtual_mfa_devices(true)
            .await?
            .into_iter()
            .find(|d| d.serial.rsplit('/').next() == Some(name.as_str()) && d.user.is_none());
        let Some(d) = lost else { return Ok(()) };
        match undo::ownership(self.iam, &self.plan.account_id, &self.made.run, &d.serial).await? {
            Ownership::Ours => Ok(self.iam.delete_virtual_mfa_device(&d.serial).await?),
            Ownership::Gone => Ok(()),
            Ownership::NotOurs(_) => Err(EnrollError::DeviceNameTaken {
                name,
                hint: ": another program made it a moment ago; choose another --device-name".into(),
                serial: d.serial,
            }),
        }
    }

    /// Write, check, enable, verify, settle.
    async fn finish(&mut self, serial: &str, seed: &SecretBytes) -> Result<(), EnrollError> {
        let proof = Proof::of(seed)?;
        let written = self.write(seed, &proof)?;
        self.step(Step::Check);
        let step = unix_now() / PERIOD;
        let (c1, c2) = self.codes(&written.credential, seed, step)?;
        self.clock.lap(Step::Check);
        self.enable(serial, &written.credential, seed, step, (c1, c2))
            .await?;
        self.verify(serial).await?;
        self.settle(serial, &written, seed, &proof)
    }

    fn write(
        &mut self,
        seed: &SecretBytes,
        proof: &Proof,
    ) -> Result<credential::Written, EnrollError> {
        self.step(Step::Write);
        let written_as = match &self.plan.placement {
            Placement::Direct => self.plan.cred_id.clone(),
            Placement::Beside { temp } => temp.clone(),
        };
        self.base.proof = Some(proof.clone());
        if matches!(self.plan.placement, Placement::Beside { .. }) {
            self.base.written_as = Some(written_as.to_id_string());
        }
        // From here on the credential may be on the key: `recover` looks.
        self.log(JEvent::Writing, None)?;
        // An acknowledged PUT to an id that was free when this same
        // exclusive session looked is proof enough; a lost answer is not.
        let made_at = |raw: Vec<u8>, proven_in_session| MadeCredential {
            written_as: raw,
            replaces: None,
            proof: Some(proof.clone()),
            proven_in_session,
        };
        let placement = self.plan.placement.clone();
        match credential::write(
            self.key.session,
            &self.plan.cred_id,
            &placement,
            seed,
            self.opts.touch,
        ) {
            Ok(w) => {
                self.made.credential = Some(made_at(w.credential.raw_id.clone(), true));
                self.note(JEvent::Written)?;
                self.clock.lap(Step::Write);
                Ok(w)
            }
            Err(f) => {
                self.made.credential = f.maybe_written.map(|raw| made_at(raw, false));
                Err(f.error.into())
            }
        }
    }

    fn codes(
        &mut self,
        cred: &Credential,
        seed: &SecretBytes,
        step: u64,
    ) -> Result<(String, String), EnrollError> {
        let mut on_touch = touch_events(&mut *self.progress, &self.opts.user);
        Ok(credential::codes_from_key(
            self.key.session,
            cred,
            seed,
            step,
            self.opts.touch,
            &mut on_touch,
        )?)
    }

    /// EnableMFADevice with the checked codes; once more with a later pair
    /// if AWS refuses them; an error whose request may have acted is
    /// checked against ListMFADevices.
    async fn enable(
        &mut self,
        serial: &str,
        cred: &Credential,
        seed: &SecretBytes,
        step: u64,
        (c1, c2): (String, String),
    ) -> Result<(), EnrollError> {
        self.step(Step::Enable);
        self.made.enable_attempted = true;
        let user = self.opts.user.clone();
        match self.iam.enable_mfa_device(&user, serial, &c1, &c2).await {
            Ok(()) => {}
            Err(AwsError::InvalidAuthenticationCode) => {
                self.progress
                    .event(Event::RetryCodes { user: user.clone() });
                let later = (unix_now() / PERIOD).max(step + 1);
                let (c1, c2) = self.codes(cred, seed, later)?;
                self.iam.enable_mfa_device(&user, serial, &c1, &c2).await?;
            }
            Err(e) => {
                let attached = self.iam.list_mfa_devices(&user).await.ok();
                if !attached.is_some_and(|ds| ds.iter().any(|d| d.serial == serial)) {
                    return Err(e.into());
                }
            }
        }
        self.note(JEvent::Enabled)?;
        self.clock.lap(Step::Enable);
        Ok(())
    }

    async fn verify(&mut self, serial: &str) -> Result<(), EnrollError> {
        self.step(Step::Verify);
        let devices = self.iam.list_mfa_devices(&self.opts.user).await?;
        if !devices.iter().any(|d| d.serial == serial) {
            return Err(EnrollError::NotVerified {
                user: self.opts.user.clone(),
                serial: serial.to_string(),
            });
        }
        self.clock.lap(Step::Verify);
        Ok(())
    }

    /// A replacement: now that the enrollment stands, the new seed goes over
    /// the credential it replaces.
    fn settle(
        &mut self,
        serial: &str,
        written: &credential::Written,
        seed: &SecretBytes,
        proof: &Proof,
    ) -> Result<(), EnrollError> {
        let Placement::Beside { temp } = &written.placement else {
            return Ok(());
        };
        self.step(Step::Settle);
        self.log(JEvent::Replacing, None)?;
        if let Some(c) = self.made.credential.as_mut() {
            c.replaces = Some(written.id.to_bytes());
        }
        let mut on_touch = touch_events(&mut *self.progress, &self.opts.user);
        match credential::settle(self.key.session, written, seed, proof, &mut on_touch) {
            Ok(_) => {
                self.clock.lap(Step::Settle);
                Ok(())
            }
            Err(cause) => Err(EnrollError::NotSettled {
                user: self.opts.user.clone(),
                serial: serial.to_string(),
                temp: temp.to_id_string(),
                cause: Box::new(cause),
                journal: self.journal.path().display().to_string(),
            }),
        }
    }

    fn done(mut self) -> Result<EnrollReport, EnrollError> {
        self.log(JEvent::Done, None)?;
        Ok(EnrollReport {
            user: self.opts.user.clone(),
            account_id: self.plan.account_id.clone(),
            device_serial: self.made.device.clone().unwrap_or_default(),
            key_serial: self.key.serial,
            credential_id: self.plan.cred_id.to_id_string(),
            touch: self.opts.touch,
            total_ms: self.clock.started.elapsed().as_secs_f64() * 1e3,
            steps: self.clock.steps,
            journal: self.journal.path().display().to_string(),
        })
    }

    /// Undoes what this run made, through the undo engine; the error says
    /// what became of it.
    async fn rollback(mut self, cause: EnrollError) -> EnrollError {
        self.step(Step::Rollback);
        let account = self.plan.account_id.clone();
        let outcome = undo::undo(
            self.iam,
            &account,
            &self.made,
            Some(&mut *self.key.session),
            &mut *self.progress,
        )
        .await;
        let journal = self.journal.path().display().to_string();
        if outcome.complete() {
            let _ = self.log(JEvent::RolledBack, Some(cause.to_string()));
            EnrollError::RolledBack {
                cause: Box::new(cause),
                undone: outcome.done,
            }
        } else {
            let left: Vec<String> = outcome.left.into_iter().chain(outcome.refused).collect();
            let _ = self.log(JEvent::RollbackFailed, Some(left.join("; ")));
            EnrollError::RollbackIncomplete {
                cause: Box::new(cause),
                left,
                journal,
            }
        }
    }
}

#[cfg(test)]
mod tests;
