//! The key's life after its first day, from the key's side: a backup key
//! in the same sitting (`backup`), which devices live on which key
//! (`inventory`), a lost key's devices removed in every
//! account (`revoke`), its users moved to another key first (`replace`), a
//! device brought back in step (`resync`), and a leaver's MFA removed
//! (`offboard`).
//!
//! mfakey finds its devices by the tags it wrote at create
//! (`mfakey:managed`, `mfakey:user`, `mfakey:key-serial`). `revoke` and
//! `replace` act only on devices that still carry them when they act, in
//! the account whose credentials they use; `offboard` removes every device
//! of a user, after the operator confirmed the list. A credential is taken
//! off a key only when the key proves it holds the seed (see `offboard`).
//! Every change is journaled before the next (`journal`), so that
//! `mfakey recover` finishes what a stopped run left (`recover`).

pub(crate) mod accounts;
pub(crate) mod backup;
pub(crate) mod inventory;
pub(crate) mod journal;
pub(crate) mod offboard;
pub(crate) mod recover;
pub(crate) mod replace;
pub(crate) mod resync;
pub(crate) mod revoke;
#[cfg(test)]
mod tests;

use crate::aws::account::ROOT_ROW;
use crate::aws::{AwsError, IamApi};
use crate::enroll::{TAG_KEY_SERIAL, TAG_MANAGED, TAG_USER};
use crate::oath::OathError;
use crate::progress::{Event, Progress};
use crate::undo::journal::JournalError;
use accounts::AccountsError;
use journal::{Log, Step};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum LifecycleError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{account}: {source}")]
    InAccount { account: String, source: AwsError },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Oath(#[from] OathError),
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    #[error(transparent)]
    Resync(#[from] resync::ResyncError),
    #[error("{cause}; {done}. The journal {journal} holds what is left: run `mfakey recover` to finish it")]
    Stopped {
        cause: Box<LifecycleError>,
        done: String,
        journal: String,
    },
    #[error("the journal {journal} holds an unfinished {op} (run {run}): run `mfakey recover` to finish it first")]
    Unfinished {
        journal: String,
        op: &'static str,
        run: String,
    },
    #[error("{first} and {second} reach the same account {account_id}: list each account once")]
    SameAccount {
        account_id: String,
        first: String,
        second: String,
    },
    #[error("the key in the reader is key {0}, the one to replace: insert the new key")]
    SameKey(u32),
    #[error("the key in the reader reports no serial number, so no device could be told apart as being on it: use a key whose serial mfakey can read")]
    NoSerial,
    #[error("the new key has room for {free} more credential(s), but {need} user(s) are to move onto it: free some slots (mfakey oath delete) or move fewer users")]
    NoRoom { free: usize, need: usize },
}

impl crate::error::Classify for LifecycleError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            LifecycleError::Aws(a) | LifecycleError::InAccount { source: a, .. } => a.kind(),
            LifecycleError::Journal(j) => j.kind(),
            LifecycleError::Oath(o) => o.kind(),
            LifecycleError::Accounts(a) => a.kind(),
            LifecycleError::Resync(r) => r.kind(),
            LifecycleError::Stopped { cause, .. } => cause.kind(),
            LifecycleError::Unfinished { .. } => Kind::JournalExists,
            LifecycleError::SameAccount { .. } => Kind::InvalidArgument,
            LifecycleError::SameKey(_) | LifecycleError::NoSerial => Kind::Refused,
            LifecycleError::NoRoom { .. } => Kind::KeyFull,
        }
    }
}

/// A virtual MFA device mfakey put on a key, as its tags say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Tagged {
    pub account_id: String,
    pub device_arn: String,
    /// The user it is enabled for; `None`: unassigned.
    pub user: Option<String>,
    /// `mfakey:key-serial`: the key that holds its seed.
    pub key_serial: Option<u32>,
    /// `mfakey:user`: whom mfakey made it for.
    pub tagged_user: Option<String>,
}

/// Whether an MFA serial is a virtual device (`arn:…:mfa/…`), which is
/// deleted once deactivated; FIDO (`u2f/`) and hardware devices go with
/// their deactivation.
pub(crate) fn is_virtual(serial: &str) -> bool {
    serial.starts_with("arn:") && serial.contains(":mfa/")
}

/// What mfakey's tags on a device say: `None` when it does not carry
/// `mfakey:managed`.
fn read_tags(tags: &[(String, String)]) -> Option<(Option<u32>, Option<String>)> {
    let get = |k: &str| tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.clone());
    get(TAG_MANAGED)?;
    Some((
        get(TAG_KEY_SERIAL).and_then(|s| s.parse().ok()),
        get(TAG_USER),
    ))
}

/// Every virtual MFA device of the account that mfakey tagged. AWS's
/// listing carries no tags: they are read device by device (a device gone
/// meanwhile is skipped).
pub(crate) async fn tagged_devices<I: IamApi>(
    iam: &I,
    account_id: &str,
) -> Result<Vec<Tagged>, AwsError> {
    let mut out = Vec::new();
    for d in iam.list_virtual_mfa_devices(false).await? {
        let tags = if d.tags.is_empty() {
            match iam.mfa_device_tags(&d.serial).await {
                Ok(t) => t,
                Err(AwsError::NoSuchEntity { .. }) => continue,
                Err(e) => return Err(e),
            }
        } else {
            d.tags.clone()
        };
        let Some((key_serial, tagged_user)) = read_tags(&tags) else {
            continue;
        };
        out.push(Tagged {
            account_id: account_id.to_string(),
            device_arn: d.serial,
            user: d.user.filter(|u| u != ROOT_ROW),
            key_serial,
            tagged_user,
        });
    }
    Ok(out)
}

/// Which devices a removal may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Guard {
    /// Only a device that still carries mfakey's tags naming this key
    /// (`revoke`, `replace`).
    KeySerial(u32),
    /// Any device of the user, as the operator confirmed (`offboard`).
    Confirmed,
}

/// What became of one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Removal {
    /// Deactivated (and, if virtual, deleted).
    Removed,
    /// IAM had no such device any more.
    Gone,
    /// Left as it is: the text says why.
    Left(String),
}

/// A device to remove: whose, and in which account.
pub(crate) struct Target<'t> {
    pub account_id: &'t str,
    pub user: Option<&'t str>,
    pub serial: &'t str,
}

/// Deactivates (when enabled for `user`) and deletes (when virtual) one
/// device, each step journaled once done; `guard` is checked first,
/// against IAM as it is now.
pub(crate) async fn remove_device<I: IamApi>(
    iam: &I,
    t: &Target<'_>,
    guard: Guard,
    log: &mut Log<'_>,
    progress: &mut dyn Progress,
) -> Result<Removal, LifecycleError> {
    if let Some(why) = refusal(iam, t, guard).await? {
        return Ok(why);
    }
    let mut line = log.line(Step::Deactivated);
    line.account_id = Some(t.account_id.to_string());
    line.user = t.user.map(str::to_string);
    line.device_serial = Some(t.serial.to_string());
    if let Some(user) = t.user {
        match iam.deactivate_mfa_device(user, t.serial).await {
            Ok(()) => {
                log.append(&line)?;
                progress.event(Event::Changed {
                    what: format!("deactivated {} for {user}", t.serial),
                });
            }
            // Not enabled (any more): nothing to deactivate.
            Err(AwsError::NoSuchEntity { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !is_virtual(t.serial) {
        return Ok(Removal::Removed);
    }
    match iam.delete_virtual_mfa_device(t.serial).await {
        Ok(()) => {}
        Err(AwsError::NoSuchEntity { .. }) if t.user.is_none() => return Ok(Removal::Gone),
        Err(AwsError::NoSuchEntity { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    line.step = Step::Deleted;
    log.append(&line)?;
    progress.event(Event::Changed {
        what: format!("deleted {}", t.serial),
    });
    Ok(Removal::Removed)
}

/// Why `guard` keeps a device as it is, if it does.
async fn refusal<I: IamApi>(
    iam: &I,
    t: &Target<'_>,
    guard: Guard,
) -> Result<Option<Removal>, LifecycleError> {
    if crate::undo::arn_account(t.serial).is_some_and(|a| a != t.account_id) {
        return Ok(Some(Removal::Left(format!(
            "{} is not in the account of these credentials ({})",
            t.serial, t.account_id
        ))));
    }
    let Guard::KeySerial(want) = guard else {
        return Ok(None);
    };
    let tags = match iam.mfa_device_tags(t.serial).await {
        Ok(tags) => tags,
        Err(AwsError::NoSuchEntity { .. }) => return Ok(Some(Removal::Gone)),
        Err(e) => return Err(e.into()),
    };
    Ok(match read_tags(&tags) {
        Some((Some(s), _)) if s == want => None,
        Some((other, _)) => Some(Removal::Left(format!(
            "{} is no longer tagged as on key {want} ({}): left as it is",
            t.serial,
            other.map_or("no key serial".into(), |s| format!("key {s}"))
        ))),
        None => Some(Removal::Left(format!(
            "{} does not carry mfakey's tags: mfakey did not make it, left as it is",
            t.serial
        ))),
    })
}

/// A user in an account.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(crate) struct UserRef {
    pub account_id: String,
    pub user: String,
}

/// Of `users`, those IAM shows with no MFA device at all (a user deleted
/// meanwhile is not listed).
pub(crate) async fn without_mfa<I: IamApi>(
    iam: &I,
    users: impl IntoIterator<Item = UserRef>,
) -> Result<Vec<UserRef>, AwsError> {
    let mut out = Vec::new();
    for u in users {
        match iam.list_mfa_devices(&u.user).await {
            Ok(ds) if ds.is_empty() => out.push(u),
            Ok(_) | Err(AwsError::NoSuchEntity { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
