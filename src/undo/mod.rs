//! The one undo engine. Whatever asks for an undo (a failed enrollment
//! rolling back, `recover`, `bulk --resume`, an abandoned console step), it
//! removes only what it can prove the run itself made:
//! - an IAM device only when it carries this run's tag (`mfakey:run`,
//!   written at create) and lives in the caller's account, which must also
//!   be the account the journal names;
//! - a credential on the key only when the key proves it holds the seed the
//!   run wrote (a full CALCULATE compared with the journaled [`Proof`], or
//!   the codes this very session read and checked), never by its id alone.
//!
//! Anything else is left as it is, and said.

pub(crate) mod journal;
pub(crate) mod recover;

use crate::aws::{AwsError, IamApi};
use crate::credential::{self, Holding, Proof, Removal};
use crate::oath::{OathError, OathSession};
use crate::progress::{Event, Progress};

/// The tag that names the run which created a device.
pub(crate) const TAG_RUN: &str = "mfakey:run";

/// What one run made, as far as the run itself or its journal knows.
#[derive(Clone, Debug, Default)]
pub(crate) struct Made {
    pub run: String,
    /// The account the journal says the run worked in.
    pub account_id: Option<String>,
    pub user: String,
    pub key_serial: Option<u32>,
    /// The device's ARN, once known.
    pub device: Option<String>,
    /// Whether the device may be enabled for `user` (EnableMFADevice was
    /// sent, or IAM shows it attached): then it is deactivated first.
    pub enable_attempted: bool,
    pub credential: Option<MadeCredential>,
}

/// A credential a run wrote (or may have).
#[derive(Clone, Debug)]
pub(crate) struct MadeCredential {
    /// Where the new seed was written first: its own id, or the temporary
    /// id beside the credential it replaces.
    pub written_as: Vec<u8>,
    /// The id it gets in the end, when that differs (a replacement).
    pub replaces: Option<Vec<u8>>,
    /// The seed's check value; `None` (a journal from before proofs) means
    /// nothing on the key can be proven to be the run's.
    pub proof: Option<Proof>,
    /// This very session wrote the seed and read the seed's codes from the
    /// key under `written_as` (over an exclusive connection): proven.
    pub proven_in_session: bool,
}

/// What an undo did, left, and refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Undo {
    pub done: Vec<String>,
    /// Could not be done now (the key is absent, IAM failed): a later
    /// `recover` can.
    pub left: Vec<String>,
    /// Will not be done: nothing proves the run made it.
    pub refused: Vec<String>,
}

impl Undo {
    pub(crate) fn complete(&self) -> bool {
        self.left.is_empty() && self.refused.is_empty()
    }
}

/// Whether a device is this run's to remove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// Tagged with this run, in the caller's account.
    Ours,
    /// IAM has no such device.
    Gone,
    /// Not provably this run's; the text says what was found.
    NotOurs(String),
}

/// The account of an IAM ARN (`arn:aws:iam::<account>:…`).
pub(crate) fn arn_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    match (parts.next(), parts.nth(3)) {
        (Some("arn"), Some(account)) if !account.is_empty() => Some(account),
        _ => None,
    }
}

/// Whether `serial` is a device run `run` created in `caller_account`.
pub(crate) async fn ownership<I: IamApi>(
    iam: &I,
    caller_account: &str,
    run: &str,
    serial: &str,
) -> Result<Ownership, AwsError> {
    if arn_account(serial) != Some(caller_account) {
        return Ok(Ownership::NotOurs(format!(
            "{serial} is not in the caller's account {caller_account}"
        )));
    }
    let tags = match iam.mfa_device_tags(serial).await {
        Ok(t) => t,
        Err(AwsError::NoSuchEntity { .. }) => return Ok(Ownership::Gone),
        Err(e) => return Err(e),
    };
    match tags.iter().find(|(k, _)| k == TAG_RUN) {
        Some((_, v)) if v == run => Ok(Ownership::Ours),
        Some((_, v)) => Ok(Ownership::NotOurs(format!(
            "{serial} was made by another mfakey run ({TAG_RUN}={v}, not {run})"
        ))),
        None => Ok(Ownership::NotOurs(format!(
            "{serial} carries no {TAG_RUN} tag: mfakey did not make it in this run"
        ))),
    }
}

/// Undoes what `made` says the run made: the credential off the key (if
/// the key is here), the device deactivated and deleted. `caller_account`
/// is the account of the credentials in use.
pub(crate) async fn undo<I: IamApi>(
    iam: &I,
    caller_account: &str,
    made: &Made,
    key: Option<&mut OathSession<'_>>,
    progress: &mut dyn Progress,
) -> Undo {
    let mut out = match &made.credential {
        Some(c) => undo_credential(c, made.key_serial, key, progress),
        None => Undo::default(),
    };
    if let Some(serial) = &made.device {
        undo_device(iam, caller_account, made, serial, progress, &mut out).await;
    }
    out
}

/// Takes a run's credential off the key where the key proves it is the
/// run's (see the module's rules); `key` absent: left for `recover`.
pub(crate) fn undo_credential(
    c: &MadeCredential,
    key_serial: Option<u32>,
    mut key: Option<&mut OathSession<'_>>,
    progress: &mut dyn Progress,
) -> Undo {
    let mut out = Undo::default();
    let places = std::iter::once((&c.written_as, c.proven_in_session))
        .chain(c.replaces.as_ref().map(|f| (f, false)));
    for (raw, proven) in places {
        let what = format!("credential \"{}\" on the key", lossy(raw));
        let Some(key) = key.as_deref_mut() else {
            out.left.push(format!(
                "{what} may be on key {}: insert it and run `mfakey recover`",
                key_serial.map_or("(serial unknown)".into(), |s| s.to_string())
            ));
            continue;
        };
        let removal = match (&c.proof, proven) {
            (_, true) => credential::delete_proven_in_session(key, raw),
            (Some(proof), false) => {
                if key_needs_touch(key, raw) {
                    progress.event(Event::Touch {
                        user: None,
                        n: 1,
                        of: 1,
                        reader: None,
                    });
                }
                credential::delete_proven(key, raw, proof)
            }
            (None, false) => Ok(Removal::NotOurs),
        };
        match removal {
            Ok(Removal::Deleted) => {
                progress.event(Event::Undo { what: what.clone() });
                out.done.push(format!("deleted {what}"))
            }
            Ok(Removal::Absent) => {}
            Ok(Removal::NotOurs) if c.proof.is_none() => out.refused.push(format!(
                "{what}: the journal holds no proof of the seed this run wrote (it is from an older mfakey), so it was left; check it by hand"
            )),
            // The credential a replacement was for keeps its old seed.
            Ok(Removal::NotOurs) if c.replaces.as_deref() == Some(raw.as_slice()) => {}
            Ok(Removal::NotOurs) => out.refused.push(format!(
                "{what} holds another seed than the one this run wrote: left as it is"
            )),
            Err(e) => out.left.push(format!("{what} ({e})")),
        }
    }
    out
}

/// Whether the credential `raw_id` wants a touch (LIST does not say; a
/// failed look says no, and a touch then simply times out).
fn key_needs_touch(key: &mut OathSession<'_>, raw_id: &[u8]) -> bool {
    match key.calculate_all(credential::unix_now()) {
        Ok(all) => all.iter().any(|(c, r)| {
            c.raw_id == raw_id && matches!(r, crate::oath::CodeResult::TouchRequired)
        }),
        Err(OathError::Transport(_)) | Err(_) => false,
    }
}

async fn undo_device<I: IamApi>(
    iam: &I,
    caller_account: &str,
    made: &Made,
    serial: &str,
    progress: &mut dyn Progress,
    out: &mut Undo,
) {
    if let Some(journaled) = &made.account_id {
        if journaled != caller_account {
            out.refused.push(format!(
                "{serial}: the journal names account {journaled}, but these credentials are of account {caller_account}: left as it is"
            ));
            return;
        }
    }
    match ownership(iam, caller_account, &made.run, serial).await {
        Ok(Ownership::Ours) => {}
        Ok(Ownership::Gone) => return,
        Ok(Ownership::NotOurs(why)) => {
            out.refused.push(format!("{why}: left as it is"));
            return;
        }
        Err(e) => {
            out.left.push(format!("virtual MFA device {serial} ({e})"));
            return;
        }
    }
    if made.enable_attempted {
        let what = format!("MFA device {serial} enabled for {}", made.user);
        match iam.deactivate_mfa_device(&made.user, serial).await {
            Ok(()) => {
                progress.event(Event::Undo { what: what.clone() });
                out.done.push(format!("deactivated {serial}"))
            }
            // Never enabled: nothing to deactivate.
            Err(AwsError::NoSuchEntity { .. }) => {}
            Err(e) => {
                out.left.push(format!("{what} ({e})"));
                return;
            }
        }
    }
    let what = format!("virtual MFA device {serial}");
    progress.event(Event::Undo { what: what.clone() });
    match iam.delete_virtual_mfa_device(serial).await {
        Ok(()) => out
            .done
            .push(format!("deleted virtual MFA device {serial}")),
        Err(AwsError::NoSuchEntity { .. }) => {}
        Err(e) => out.left.push(format!("{what} ({e})")),
    }
}

/// What the key holds of a run's credential: under the id it was written
/// as, and (for a replacement) under its final id.
pub(crate) fn holdings(
    key: &mut OathSession<'_>,
    c: &MadeCredential,
) -> Result<(Holding, Option<Holding>), OathError> {
    let Some(proof) = &c.proof else {
        return Ok((Holding::Other, None));
    };
    let first = proof.held_by(key, &c.written_as)?;
    let last = match &c.replaces {
        Some(final_id) => Some(proof.held_by(key, final_id)?),
        None => None,
    };
    Ok((first, last))
}

fn lossy(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_accounts() {
        assert_eq!(
            arn_account("arn:aws:iam::123456789012:mfa/alice"),
            Some("123456789012")
        );
        assert_eq!(
            arn_account("arn:aws:iam::123456789012:u2f/user/a/b-1"),
            Some("123456789012")
        );
        assert_eq!(arn_account("arn:aws:iam:::mfa/x"), None);
        assert_eq!(arn_account("not-an-arn"), None);
    }
}
