//! Console enrollment: the AWS console creates the device and shows its seed
//! (root MFA cannot be enabled through the API; an IAM user may enroll
//! there too). mfakey takes the seed the operator typed, writes it to the
//! key, checks the write, hands out codes, and, given IAM credentials of the
//! same account, waits for AWS to show the result.
//!
//! Nothing here prints or reads the terminal: `cli::console` does.

use crate::credential::{self, unix_now, CodeError, Slot, PERIOD};
use crate::enroll::naming;

pub mod security_key;
use crate::aws::{AwsError, IamApi};
use crate::oath::{Credential, CredentialId, OathError, OathSession};
use crate::secret::SecretBytes;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Whose MFA the console enrolls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsoleTarget {
    /// The account's root user.
    Root,
    /// An IAM user (the name is also the name in the credential id).
    User(String),
}

impl ConsoleTarget {
    /// The name before `@` in the credential id.
    pub fn id_name(&self) -> &str {
        match self {
            ConsoleTarget::Root => "root",
            ConsoleTarget::User(n) => n,
        }
    }

    /// `Amazon Web Services:<name>@<label>`, within the 64-byte limit: over
    /// it, the label gives way to the account id (when known), then the
    /// name stands alone, then it is cut (see [`naming::credential_id`]).
    pub fn credential_id(
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
    pub fn console_steps(&self) -> Vec<String> {
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
pub struct ConsoleCodes {
    pub code1: String,
    pub code2: String,
    /// The TOTP step of `code2` (unix time / 30).
    pub step: u64,
    /// Seconds until `code2`'s window ends (when the codes were read).
    pub seconds_left: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    #[error("invalid {what}: {why}")]
    Invalid { what: &'static str, why: String },
    #[error("the key already holds \"{id}\": pass --force to overwrite it, or delete it first (mfakey oath delete)")]
    CredentialExists { id: String },
    #[error(
        "the key's OATH applet is full ({capacity} credentials): delete one or use another key"
    )]
    KeyFull { capacity: usize },
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
}

impl From<CodeError> for ConsoleError {
    fn from(e: CodeError) -> Self {
        match e {
            CodeError::Mismatch => ConsoleError::CheckFailed,
            CodeError::Oath(o) => ConsoleError::Oath(o),
        }
    }
}

/// The key-side checks before the secret is asked for: room, and no
/// credential with that id unless `force`.
pub fn check_key(
    key: &mut OathSession<'_>,
    capacity: usize,
    id: &CredentialId,
    force: bool,
) -> Result<(), ConsoleError> {
    match credential::slot_for(key, capacity, id)? {
        Slot::Taken if !force => Err(ConsoleError::CredentialExists {
            id: id.to_id_string(),
        }),
        Slot::Full => Err(ConsoleError::KeyFull { capacity }),
        _ => Ok(()),
    }
}

/// What [`write`] left on the key, for [`codes_now`] and [`credential::remove_credential`].
#[derive(Debug)]
pub struct Written {
    pub credential: Credential,
    pub touch: bool,
}

/// A failed write: the error, and whether a credential may now be on the
/// key (so the caller can offer to delete it).
#[derive(Debug)]
pub struct WriteFailure {
    pub error: ConsoleError,
    pub credential: Option<Vec<u8>>,
}

/// Writes `seed` under `id` and checks it: the key's codes for the current
/// window must equal the host's own computation from `seed`. Returns the
/// checked codes (the first ones to show).
pub fn write(
    key: &mut OathSession<'_>,
    id: &CredentialId,
    seed: &SecretBytes,
    touch: bool,
    on_touch: &mut dyn FnMut(u8, u8),
) -> Result<(Written, ConsoleCodes), WriteFailure> {
    let credential =
        credential::put_aws_credential(key, id, seed, touch).map_err(|f| WriteFailure {
            error: f.error.into(),
            credential: f.maybe_written,
        })?;
    let written = Written { credential, touch };
    match codes_now(key, &written, seed, on_touch) {
        Ok(c) => Ok((written, c)),
        Err(error) => Err(WriteFailure {
            error,
            credential: Some(written.credential.raw_id.clone()),
        }),
    }
}

/// The codes of the current window and the one before, from the key, each
/// checked against the host's computation from `seed`.
pub fn codes_now(
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
pub fn seconds_left(step: u64, now: u64) -> u64 {
    ((step + 1) * PERIOD).saturating_sub(now)
}

/// What AWS showed before the console step, to tell the new device from
/// what was there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Baseline {
    /// `AccountMFAEnabled` before.
    Root { already_enabled: bool },
    /// The user's MFA device serials before.
    User { user: String, devices: Vec<String> },
}

/// Reads the baseline for `target`.
pub async fn baseline<I: IamApi>(iam: &I, target: &ConsoleTarget) -> Result<Baseline, AwsError> {
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
pub enum Verification {
    /// Root: `AccountMFAEnabled` became 1.
    RootMfaEnabled { waited_ms: u64 },
    /// Root: it was 1 before (root already had an MFA device), so it cannot
    /// tell whether this one was added.
    RootAlreadyEnabled,
    /// The user's new MFA device.
    UserDevice { serial: String, waited_ms: u64 },
}

/// Polls IAM until the console step shows, or `timeout` passes.
/// `on_wait(elapsed, timeout)` is called before each poll after the first.
pub async fn wait_verified<I: IamApi>(
    iam: &I,
    baseline: &Baseline,
    timeout: Duration,
    poll: Duration,
    on_wait: &mut dyn FnMut(Duration, Duration),
) -> Result<Verification, ConsoleError> {
    if matches!(
        baseline,
        Baseline::Root {
            already_enabled: true
        }
    ) {
        return Ok(Verification::RootAlreadyEnabled);
    }
    let started = Instant::now();
    loop {
        let waited_ms = started.elapsed().as_millis() as u64;
        match baseline {
            Baseline::Root { .. } => {
                if iam.account_mfa_enabled().await? {
                    return Ok(Verification::RootMfaEnabled { waited_ms });
                }
            }
            Baseline::User { user, devices } => {
                let now = iam.list_mfa_devices(user).await?;
                if let Some(d) = now.into_iter().find(|d| !devices.contains(&d.serial)) {
                    return Ok(Verification::UserDevice {
                        serial: d.serial,
                        waited_ms,
                    });
                }
            }
        }
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            return Err(not_verified(baseline, timeout));
        }
        on_wait(elapsed, timeout);
        tokio::time::sleep(poll.min(timeout - elapsed)).await;
    }
}

fn not_verified(baseline: &Baseline, timeout: Duration) -> ConsoleError {
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
        hint,
    }
}

#[cfg(test)]
mod tests;
