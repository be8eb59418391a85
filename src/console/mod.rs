//! Console enrollment: the AWS console creates the device and shows its seed
//! (root MFA cannot be enabled through the API; an IAM user may enroll
//! there too). mfakey takes the seed the operator typed, writes it to the
//! key, checks the write, hands out codes, and, given IAM credentials of the
//! same account, waits for AWS to show the result.
//!
//! Nothing here prints or reads the terminal: the operator's side (the
//! secret typed, the codes shown until confirmed) is an [`Operator`] the
//! command line provides.

pub(crate) mod flow;
pub(crate) mod security_key;
pub(crate) mod wait;

use crate::aws::{AwsError, IamApi};
use crate::credential::{self, unix_now, CodeError, SlotError, Written, PERIOD};
use crate::enroll::naming;
use crate::error::Failure;
use crate::oath::{CredentialId, OathError, OathSession};
use crate::progress::Progress;
use crate::secret::SecretBytes;
use serde::Serialize;
use std::time::Duration;

pub(crate) use flow::{run, ConsoleOutcome, ConsoleRequest, Operator};

/// Whose MFA the console enrolls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ConsoleTarget {
    /// The account's root user.
    Root,
    /// An IAM user (the name is also the name in the credential id).
    User(String),
}

impl ConsoleTarget {
    /// The name before `@` in the credential id.
    pub(crate) fn id_name(&self) -> &str {
        match self {
            ConsoleTarget::Root => "root",
            ConsoleTarget::User(n) => n,
        }
    }

    /// `Amazon Web Services:<name>@<label>`, within the 64-byte limit: over
    /// it, the label gives way to the account id (when known), then the
    /// name stands alone, then it is cut (see [`naming::credential_id`]).
    pub(crate) fn credential_id(
        &self,
        label: &str,
        account_id: Option<&str>,
    ) -> Result<CredentialId, ConsoleError> {
        if label.is_empty() {
            return Err(ConsoleError::Invalid {
                what: "account label",
                why: "it is empty".into(),
            });
        }
        if self.id_name().is_empty() {
            return Err(ConsoleError::Invalid {
                what: "--name",
                why: "it is empty".into(),
            });
        }
        let id = naming::credential_id(self.id_name(), label, account_id.unwrap_or(label));
        id.check_len()?;
        Ok(id)
    }

    /// What the operator does in the console, one line per step.
    pub(crate) fn console_steps(&self) -> Vec<String> {
        let who = match self {
            ConsoleTarget::Root => {
                "Sign in to https://console.aws.amazon.com/ as the root user (the account's email address).".to_string()
            }
            ConsoleTarget::User(n) => format!(
                "Sign in to the AWS console as the IAM user {n} (or as an administrator: IAM > Users > {n})."
            ),
        };
        let page = match self {
            ConsoleTarget::Root => "Open the account menu (top right) > Security credentials.",
            ConsoleTarget::User(_) => {
                "Open Security credentials (the user's page, tab Security credentials)."
            }
        };
        vec![
            who,
            page.to_string(),
            "Under Multi-factor authentication (MFA) choose Assign MFA device; give it a name.".into(),
            "Choose Authenticator app, then Next.".into(),
            "Choose Show secret key and copy the key; paste it at mfakey's prompt (it is not shown).".into(),
            "Type the two codes mfakey shows into MFA code 1 and MFA code 2, then Add MFA.".into(),
        ]
    }
}

/// Two consecutive codes read from the key (steps `step-1` and `step`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct ConsoleCodes {
    pub code1: String,
    pub code2: String,
    /// The TOTP step of `code2` (unix time / 30).
    pub step: u64,
    /// Seconds until `code2`'s window ends (when the codes were read).
    pub seconds_left: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ConsoleError {
    #[error("invalid {what}: {why}")]
    Invalid { what: &'static str, why: String },
    #[error(transparent)]
    Slot(SlotError),
    #[error("the key's codes differ from the codes of the secret you typed: the write did not take; try again")]
    CheckFailed,
    #[error("{what} did not show in AWS within {waited_secs} s: {hint}")]
    NotVerified {
        what: String,
        waited_secs: u64,
        hint: String,
    },
    #[error(transparent)]
    Oath(#[from] OathError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The operator's side failed (reading the secret, the terminal).
    #[error(transparent)]
    Operator(Failure),
    /// A failure before the codes were confirmed, and what became of the
    /// credential written for it.
    #[error("{cause}; {what}")]
    Abandoned {
        cause: Box<ConsoleError>,
        what: String,
    },
}

impl ConsoleError {
    /// The failure that started it all.
    pub(crate) fn root(&self) -> &ConsoleError {
        match self {
            ConsoleError::Abandoned { cause, .. } => cause.root(),
            e => e,
        }
    }
}

impl crate::error::Classify for ConsoleError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self.root() {
            ConsoleError::Invalid { .. } => Kind::InvalidArgument,
            ConsoleError::Slot(s) => s.kind(),
            ConsoleError::CheckFailed => Kind::CheckFailed,
            ConsoleError::NotVerified { .. } => Kind::NotVerified,
            ConsoleError::Oath(o) => o.kind(),
            ConsoleError::Aws(a) => a.kind(),
            ConsoleError::Operator(f) => f.kind,
            ConsoleError::Abandoned { .. } => Kind::Other,
        }
    }
}

impl From<SlotError> for ConsoleError {
    fn from(e: SlotError) -> Self {
        match e {
            SlotError::Oath(o) => ConsoleError::Oath(o),
            other => ConsoleError::Slot(other),
        }
    }
}

impl From<CodeError> for ConsoleError {
    fn from(e: CodeError) -> Self {
        match e {
            CodeError::Mismatch => ConsoleError::CheckFailed,
            CodeError::Oath(o) => ConsoleError::Oath(o),
        }
    }
}

/// The codes of the current window and the one before, from the key, each
/// checked against the host's computation from `seed`.
pub(crate) fn codes_now(
    key: &mut OathSession<'_>,
    written: &Written,
    seed: &SecretBytes,
    on_touch: &mut dyn FnMut(u8, u8),
) -> Result<ConsoleCodes, ConsoleError> {
    let now = unix_now();
    let step = now / PERIOD;
    let (code1, code2) = credential::codes_from_key(
        key,
        &written.credential,
        seed,
        step,
        written.touch,
        on_touch,
    )?;
    Ok(ConsoleCodes {
        code1,
        code2,
        step,
        seconds_left: seconds_left(step, unix_now()),
    })
}

/// Seconds until the window of `step` ends, at unix time `now`.
pub(crate) fn seconds_left(step: u64, now: u64) -> u64 {
    ((step + 1) * PERIOD).saturating_sub(now)
}

/// What AWS showed before the console step, to tell the new device from
/// what was there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Baseline {
    /// `AccountMFAEnabled` before.
    Root { already_enabled: bool },
    /// The user's MFA device serials before.
    User { user: String, devices: Vec<String> },
}

/// Reads the baseline for `target`.
pub(crate) async fn baseline<I: IamApi>(
    iam: &I,
    target: &ConsoleTarget,
) -> Result<Baseline, AwsError> {
    Ok(match target {
        ConsoleTarget::Root => Baseline::Root {
            already_enabled: iam.account_mfa_enabled().await?,
        },
        ConsoleTarget::User(u) => Baseline::User {
            user: u.clone(),
            devices: iam
                .list_mfa_devices(u)
                .await?
                .into_iter()
                .map(|d| d.serial)
                .collect(),
        },
    })
}

/// What verification found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(crate) enum Verification {
    /// Root: `AccountMFAEnabled` became 1.
    RootMfaEnabled { waited_ms: u64 },
    /// Root: it was 1 before (root already had an MFA device), so it cannot
    /// tell whether this one was added.
    RootAlreadyEnabled,
    /// The user's new MFA device.
    UserDevice { serial: String, waited_ms: u64 },
}

/// Polls IAM until the console step shows, or `timeout` passes (an
/// [`crate::progress::Event::Waiting`] before each poll after the first).
/// `id` is the credential's id, named in a timeout's hint.
pub(crate) async fn wait_verified<I: IamApi>(
    iam: &I,
    baseline: &Baseline,
    timeout: Duration,
    poll: Duration,
    id: &str,
    progress: &mut dyn Progress,
) -> Result<Verification, ConsoleError> {
    if matches!(
        baseline,
        Baseline::Root {
            already_enabled: true
        }
    ) {
        return Ok(Verification::RootAlreadyEnabled);
    }
    let found = wait::poll(timeout, poll, progress, || async {
        Ok::<_, ConsoleError>(match baseline {
            Baseline::Root { .. } => iam.account_mfa_enabled().await?.then_some(None),
            Baseline::User { user, devices } => iam
                .list_mfa_devices(user)
                .await?
                .into_iter()
                .find(|d| !devices.contains(&d.serial))
                .map(|d| Some(d.serial)),
        })
    })
    .await?;
    match found {
        Some((None, waited)) => Ok(Verification::RootMfaEnabled {
            waited_ms: waited.as_millis() as u64,
        }),
        Some((Some(serial), waited)) => Ok(Verification::UserDevice {
            serial,
            waited_ms: waited.as_millis() as u64,
        }),
        None => Err(not_verified(baseline, timeout, id)),
    }
}

fn not_verified(baseline: &Baseline, timeout: Duration, id: &str) -> ConsoleError {
    let (what, hint) = match baseline {
        Baseline::Root { .. } => (
            "the root user's MFA".to_string(),
            "GetAccountSummary still reports AccountMFAEnabled 0. Check the console accepted \
             the codes (Add MFA), then look again with `aws iam get-account-summary`; the \
             credential stays on the key"
                .to_string(),
        ),
        Baseline::User { user, .. } => (
            format!("a new MFA device for {user}"),
            format!(
                "ListMFADevices shows no new device for {user}. Check the console accepted \
                 the codes, then look again with `aws iam list-mfa-devices --user-name {user}`; \
                 the credential stays on the key"
            ),
        ),
    };
    ConsoleError::NotVerified {
        what,
        waited_secs: timeout.as_secs(),
        hint: format!(
            "{hint} (to take it off the key if the console step was abandoned: mfakey oath delete \"{id}\")"
        ),
    }
}

#[cfg(test)]
mod tests;
