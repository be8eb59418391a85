//! Enrolling an IAM user's virtual MFA device onto a key, transactionally:
//! preflight → create → write → check → enable → verify, and on any failure
//! after create, undo in reverse (credential off the key, device deactivated
//! if it got enabled, device deleted). Every step is journaled first.

use crate::credential::{self, unix_now, CodeError, Slot, PERIOD};
use crate::undo::journal::{new_run_id, Entry, Event, Journal, JournalError};
pub mod naming;

use crate::aws::{AwsError, IamApi, VirtualMfaDevice};
use crate::oath::{Credential, CredentialId, OathError, OathSession};
use crate::secret::SecretBytes;
use serde::Serialize;
use std::time::{Duration, Instant, SystemTime};

/// How far the host clock may be from AWS's. The codes come from the host
/// clock; AWS checks them against its own. Half a 30-second step keeps the
/// host's "current step" the same as AWS's or next to it, inside the one
/// step either way that TOTP validators allow, with room for the `Date`
/// header's one-second resolution and the request's latency.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15);

/// IAM's limit of MFA devices per user.
pub const MAX_MFA_DEVICES: usize = 8;

/// Tag keys mfakey puts on the devices it creates (`cleanup` finds them by these).
pub const TAG_MANAGED: &str = "mfakey:managed";
pub const TAG_KEY_SERIAL: &str = "mfakey:key-serial";
pub const TAG_USER: &str = "mfakey:user";

/// A device's tags: those the listing carried, else ListMFADeviceTags (AWS's
/// ListVirtualMFADevices returns none). Unreadable tags count as none: a
/// device is never taken for mfakey's on a guess.
pub async fn tags_of<I: IamApi>(iam: &I, d: &VirtualMfaDevice) -> Vec<(String, String)> {
    if !d.tags.is_empty() {
        return d.tags.clone();
    }
    iam.mfa_device_tags(&d.serial).await.unwrap_or_default()
}

#[derive(Clone, Debug)]
pub struct EnrollOptions {
    pub user: String,
    /// Default `<user>-yk<serial>`.
    pub device_name: Option<String>,
    /// IAM path, default `/`.
    pub path: String,
    pub touch: bool,
    /// Shown after `@` in the credential id; default the account alias, else its id.
    pub account_label: Option<String>,
    pub tags: Vec<(String, String)>,
    /// Overwrite a credential with the same id on the key.
    pub force: bool,
}

/// The key to enroll onto: an open, unlocked OATH session and what we know of it.
pub struct KeyTarget<'s, 't> {
    pub session: &'s mut OathSession<'t>,
    pub serial: Option<u32>,
    pub capacity: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Preflight,
    Create,
    Write,
    Check,
    Enable,
    Verify,
    Rollback,
}

impl Step {
    /// The step's name in progress lines and JSON events (as serialized).
    pub fn name(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::Create => "create",
            Step::Write => "write",
            Step::Check => "check",
            Step::Enable => "enable",
            Step::Verify => "verify",
            Step::Rollback => "rollback",
        }
    }
}

/// What the operator should hear about while it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    Step(Step),
    /// Touch number `n` of `of` is awaited.
    Touch {
        n: u8,
        of: u8,
    },
    /// AWS refused the codes once; trying with a later pair.
    RetryCodes,
    Undo(String),
}

#[derive(Clone, Debug, Serialize)]
pub struct StepTime {
    pub step: Step,
    pub ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct EnrollReport {
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
pub enum EnrollError {
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
    #[error(
        "the key's OATH applet is full ({capacity} credentials): delete one or use another key"
    )]
    KeyFull { capacity: usize },
    #[error("the key already holds \"{id}\": pass --force to overwrite it")]
    CredentialExists { id: String },
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
}

impl EnrollError {
    /// The failure that started it all (through rollbacks).
    pub fn root(&self) -> &EnrollError {
        match self {
            EnrollError::RolledBack { cause, .. }
            | EnrollError::RollbackIncomplete { cause, .. } => cause.root(),
            e => e,
        }
    }
}

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
}

/// What a run has done so far, for rollback.
#[derive(Default)]
struct Done {
    device: Option<String>,
    credential: Option<Vec<u8>>,
    enable_attempted: bool,
}

struct Run<'a> {
    journal: &'a mut Journal,
    base: Entry,
}

impl Run<'_> {
    fn log(&mut self, event: Event, detail: Option<String>) -> Result<(), JournalError> {
        let mut e = self.base.clone();
        e.ts = unix_now();
        e.event = event;
        e.detail = detail;
        self.journal.append(&e)
    }
}

/// Enrolls `opts.user`'s new virtual MFA device onto the key.
pub async fn enroll<I: IamApi>(
    iam: &I,
    key: KeyTarget<'_, '_>,
    opts: &EnrollOptions,
    journal: &mut Journal,
    progress: &mut dyn FnMut(Progress),
) -> Result<EnrollReport, EnrollError> {
    let mut clock = Clock::new();
    progress(Progress::Step(Step::Preflight));
    let mut key = key;
    let plan = preflight(iam, &mut key, opts).await?;
    clock.lap(Step::Preflight);

    let mut run = Run {
        journal,
        base: Entry {
            ts: 0,
            run: new_run_id(),
            event: Event::Begin,
            user: opts.user.clone(),
            account_id: Some(plan.account_id.clone()),
            device_serial: None,
            key_serial: key.serial,
            device_name: Some(plan.device_name.clone()),
            credential_id: Some(plan.cred_id.to_id_string()),
            detail: None,
        },
    };
    run.log(Event::Begin, None)?;

    progress(Progress::Step(Step::Create));
    let mut tags = vec![
        (TAG_MANAGED.to_string(), "true".to_string()),
        (TAG_USER.to_string(), opts.user.clone()),
    ];
    if let Some(s) = key.serial {
        tags.push((TAG_KEY_SERIAL.to_string(), s.to_string()));
    }
    tags.extend(opts.tags.iter().cloned());
    let created = create_device(iam, &plan, opts, &tags).await?;
    run.base.device_serial = Some(created.serial.clone());
    let mut done = Done {
        device: Some(created.serial.clone()),
        ..Done::default()
    };
    if let Err(e) = run.log(Event::Created, None) {
        // The device exists but is not journaled: remove it now.
        let _ = iam.delete_virtual_mfa_device(&created.serial).await;
        return Err(e.into());
    }
    clock.lap(Step::Create);

    let result = finish(
        iam,
        key.session,
        opts,
        &plan,
        &created.serial,
        &created.seed,
        &mut done,
        &mut run,
        &mut clock,
        progress,
    )
    .await;
    drop(created);
    match result {
        Ok(()) => {
            run.log(Event::Done, None)?;
            Ok(EnrollReport {
                user: opts.user.clone(),
                account_id: plan.account_id,
                device_serial: done.device.unwrap_or_default(),
                key_serial: key.serial,
                credential_id: plan.cred_id.to_id_string(),
                touch: opts.touch,
                total_ms: clock.started.elapsed().as_secs_f64() * 1e3,
                steps: clock.steps,
                journal: run.journal.path().display().to_string(),
            })
        }
        Err(cause) => {
            progress(Progress::Step(Step::Rollback));
            Err(rollback(
                iam,
                key.session,
                &opts.user,
                done,
                &mut run,
                cause,
                progress,
            )
            .await)
        }
    }
}

struct Plan {
    account_id: String,
    device_name: String,
    cred_id: CredentialId,
}

async fn preflight<I: IamApi>(
    iam: &I,
    key: &mut KeyTarget<'_, '_>,
    opts: &EnrollOptions,
) -> Result<Plan, EnrollError> {
    if opts.user.is_empty() {
        return Err(EnrollError::Invalid {
            what: "user name",
            why: "it is empty".into(),
        });
    }
    if !naming::valid_path(&opts.path) {
        return Err(EnrollError::Invalid {
            what: "--path",
            why: format!(
                "\"{}\" must start and end with / (for example /team/)",
                opts.path
            ),
        });
    }
    let device_name = match &opts.device_name {
        Some(n) => n.clone(),
        None => naming::default_device_name(&opts.user, key.serial),
    };
    if !naming::valid_device_name(&device_name) {
        return Err(EnrollError::Invalid {
            what: "device name",
            why: format!("\"{device_name}\" must be 1 to 226 of A-Z a-z 0-9 _+=,.@-"),
        });
    }
    // Four independent reads (the alias and AWS's clock come in one answer):
    // one round trip's latency, not four.
    let (user, devices, virtuals, (alias, server, host)) = tokio::try_join!(
        iam.get_user(&opts.user),
        iam.list_mfa_devices(&opts.user),
        iam.list_virtual_mfa_devices(false),
        iam.account_alias_and_clocks(),
    )?;
    if devices.len() >= MAX_MFA_DEVICES {
        return Err(EnrollError::TooManyDevices {
            user: opts.user.clone(),
            count: devices.len(),
        });
    }
    if let Some(d) = virtuals
        .iter()
        .find(|d| d.serial.rsplit('/').next() == Some(device_name.as_str()))
    {
        let ours = d.user.is_none() && tags_of(iam, d).await.iter().any(|(k, _)| k == TAG_MANAGED);
        let hint = match (&d.user, ours) {
            (Some(u), _) => format!(", assigned to {u}: choose another --device-name"),
            (None, true) => format!(
                ", left unassigned by an earlier mfakey run: remove it with `mfakey cleanup --delete` (or `aws iam delete-virtual-mfa-device --serial-number {}`)",
                d.serial
            ),
            (None, false) => format!(
                ", unassigned: remove it with `aws iam delete-virtual-mfa-device --serial-number {}` or choose another --device-name",
                d.serial
            ),
        };
        return Err(EnrollError::DeviceNameTaken {
            name: device_name,
            serial: d.serial.clone(),
            hint,
        });
    }
    check_clock(server, host)?;

    let label = opts
        .account_label
        .clone()
        .or(alias)
        .unwrap_or_else(|| user.account_id.clone());
    let cred_id = naming::credential_id(&opts.user, &label, &user.account_id);
    cred_id.check_len()?;
    check_key(key.session, key.capacity, &cred_id, opts.force)?;
    Ok(Plan {
        account_id: user.account_id,
        device_name,
        cred_id,
    })
}

fn check_clock(server: SystemTime, host: SystemTime) -> Result<(), EnrollError> {
    let skew = match host.duration_since(server) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    if skew.abs() > MAX_CLOCK_SKEW.as_secs_f64() {
        return Err(EnrollError::ClockSkew {
            skew_secs: skew.round() as i64,
        });
    }
    Ok(())
}

/// Key-side preflight: a free slot, and no credential with our id unless --force.
fn check_key(
    key: &mut OathSession<'_>,
    capacity: usize,
    id: &CredentialId,
    force: bool,
) -> Result<(), EnrollError> {
    match credential::slot_for(key, capacity, id)? {
        Slot::Taken if !force => Err(EnrollError::CredentialExists {
            id: id.to_id_string(),
        }),
        Slot::Full => Err(EnrollError::KeyFull { capacity }),
        _ => Ok(()),
    }
}

async fn create_device<I: IamApi>(
    iam: &I,
    plan: &Plan,
    opts: &EnrollOptions,
    tags: &[(String, String)],
) -> Result<crate::aws::CreatedDevice, EnrollError> {
    let find_ours = || async {
        iam.list_virtual_mfa_devices(true)
            .await
            .ok()?
            .into_iter()
            .find(|d| {
                d.serial.rsplit('/').next() == Some(plan.device_name.as_str()) && d.user.is_none()
            })
    };
    match iam
        .create_virtual_mfa_device(&plan.device_name, &opts.path, tags)
        .await
    {
        Ok(created) => Ok(created),
        Err(AwsError::EntityAlreadyExists { .. }) => {
            // Preflight saw no such device: the first attempt's answer was lost
            // and the SDK's retry found our own device. Its seed went with that
            // answer, so replace it.
            if let Some(d) = find_ours().await {
                iam.delete_virtual_mfa_device(&d.serial).await?;
            }
            Ok(iam
                .create_virtual_mfa_device(&plan.device_name, &opts.path, tags)
                .await?)
        }
        Err(e) => {
            // The device may exist with its answer lost: remove it if IAM can
            // be reached; if not, the journal's Begin line lets `recover` do it.
            if !matches!(
                e,
                AwsError::AccessDenied { .. } | AwsError::LimitExceeded { .. }
            ) {
                if let Some(d) = find_ours().await {
                    let _ = iam.delete_virtual_mfa_device(&d.serial).await;
                }
            }
            Err(e.into())
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn finish<I: IamApi>(
    iam: &I,
    key: &mut OathSession<'_>,
    opts: &EnrollOptions,
    plan: &Plan,
    serial: &str,
    seed: &SecretBytes,
    done: &mut Done,
    run: &mut Run<'_>,
    clock: &mut Clock,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), EnrollError> {
    progress(Progress::Step(Step::Write));
    // Journaled before the write: from here on the credential may be on the
    // key, and `recover` looks for it.
    run.log(Event::Written, None)?;
    let cred =
        credential::put_aws_credential(key, &plan.cred_id, seed, opts.touch).map_err(|f| {
            done.credential = f.maybe_written;
            EnrollError::from(f.error)
        })?;
    done.credential = Some(cred.raw_id.clone());
    clock.lap(Step::Write);

    progress(Progress::Step(Step::Check));
    let step = unix_now() / PERIOD;
    let (c1, c2) = codes_from_key(key, &cred, seed, step, opts.touch, progress)?;
    clock.lap(Step::Check);

    progress(Progress::Step(Step::Enable));
    done.enable_attempted = true;
    match iam.enable_mfa_device(&opts.user, serial, &c1, &c2).await {
        Ok(()) => {}
        Err(AwsError::InvalidAuthenticationCode) => {
            progress(Progress::RetryCodes);
            let later = (unix_now() / PERIOD).max(step + 1);
            let (c1, c2) = codes_from_key(key, &cred, seed, later, opts.touch, progress)?;
            iam.enable_mfa_device(&opts.user, serial, &c1, &c2).await?;
        }
        Err(e) => {
            // The request may have taken effect with its answer lost: look.
            let attached = iam.list_mfa_devices(&opts.user).await.ok();
            if !attached.is_some_and(|ds| ds.iter().any(|d| d.serial == serial)) {
                return Err(e.into());
            }
        }
    }
    run.log(Event::Enabled, None)?;
    clock.lap(Step::Enable);

    progress(Progress::Step(Step::Verify));
    let devices = iam.list_mfa_devices(&opts.user).await?;
    if !devices.iter().any(|d| d.serial == serial) {
        return Err(EnrollError::NotVerified {
            user: opts.user.clone(),
            serial: serial.to_string(),
        });
    }
    clock.lap(Step::Verify);
    Ok(())
}

fn codes_from_key(
    key: &mut OathSession<'_>,
    cred: &Credential,
    seed: &SecretBytes,
    step: u64,
    touch: bool,
    progress: &mut dyn FnMut(Progress),
) -> Result<(String, String), EnrollError> {
    let mut on_touch = |n, of| progress(Progress::Touch { n, of });
    credential::codes_from_key(key, cred, seed, step, touch, &mut on_touch).map_err(|e| match e {
        CodeError::Mismatch => EnrollError::CheckFailed,
        CodeError::Oath(o) => EnrollError::Oath(o),
    })
}

async fn rollback<I: IamApi>(
    iam: &I,
    key: &mut OathSession<'_>,
    user: &str,
    done: Done,
    run: &mut Run<'_>,
    cause: EnrollError,
    progress: &mut dyn FnMut(Progress),
) -> EnrollError {
    let mut undone = Vec::new();
    let mut left = Vec::new();
    if let Some(raw) = &done.credential {
        let what = format!("credential \"{}\" on the key", String::from_utf8_lossy(raw));
        progress(Progress::Undo(what.clone()));
        match credential::remove_credential(key, raw) {
            Ok(_) => undone.push(what),
            Err(e) => left.push(format!("{what} ({e})")),
        }
    }
    if let Some(serial) = &done.device {
        if done.enable_attempted {
            let what = format!("MFA device {serial} enabled for {user}");
            match iam.deactivate_mfa_device(user, serial).await {
                Ok(()) => {
                    progress(Progress::Undo(what.clone()));
                    undone.push(format!("deactivated {serial}"));
                }
                // Never enabled: nothing to deactivate.
                Err(AwsError::NoSuchEntity { .. }) => {}
                Err(e) => left.push(format!("{what} ({e})")),
            }
        }
        let what = format!("virtual MFA device {serial}");
        progress(Progress::Undo(what.clone()));
        match iam.delete_virtual_mfa_device(serial).await {
            Ok(()) | Err(AwsError::NoSuchEntity { .. }) => undone.push(format!("deleted {serial}")),
            Err(e) => left.push(format!("{what} ({e})")),
        }
    }
    let journal = run.journal.path().display().to_string();
    if left.is_empty() {
        let _ = run.log(Event::RolledBack, Some(cause.to_string()));
        EnrollError::RolledBack {
            cause: Box::new(cause),
            undone,
        }
    } else {
        let _ = run.log(Event::RollbackFailed, Some(left.join("; ")));
        EnrollError::RollbackIncomplete {
            cause: Box::new(cause),
            left,
            journal,
        }
    }
}

#[cfg(test)]
mod tests;
