//! `enroll root` and `enroll console`, start to end: the account label, the
//! key's room, the secret the console shows (asked only once the key can
//! take it), the write and its check, the codes until the operator has
//! typed them, AWS's confirmation, and, for a replacement, the move over
//! the credential it replaces. A failure before the codes are confirmed
//! takes the credential off the key again, through the undo engine.

use super::{
    baseline, codes_now, wait_verified, Baseline, ConsoleCodes, ConsoleError, ConsoleTarget,
    Verification,
};
use crate::aws::IamApi;
use crate::credential::{self, Placement, Proof, Written};
use crate::enroll::KeyTarget;
use crate::error::Failure;
use crate::oath::CredentialId;
use crate::progress::{Event, Progress, Step};
use crate::secret::SecretBytes;
use crate::undo::{self, MadeCredential};
use serde::Serialize;
use std::time::Duration;

/// What the operator does, as the command line provides it.
pub(crate) trait Operator: Progress {
    /// Shows the console steps and the id the secret goes under, and reads
    /// the secret the console shows.
    fn secret(
        &mut self,
        steps: &[String],
        id: &CredentialId,
        touch: bool,
    ) -> Result<SecretBytes, Failure>;

    /// Shows `first` until the operator has typed them into the console;
    /// `fresh` reads a new pair from the key. The pair typed.
    fn confirm(
        &mut self,
        first: ConsoleCodes,
        touch: bool,
        fresh: &mut dyn FnMut(&mut dyn Progress) -> Result<ConsoleCodes, ConsoleError>,
    ) -> Result<ConsoleCodes, ConsoleError>;

    /// After a failure before confirmation: may the credential written for
    /// it be deleted again? (`false` leaves it.)
    fn delete_after_failure(&mut self, id: &str) -> bool;
}

/// What to enroll.
#[derive(Clone, Debug)]
pub(crate) struct ConsoleRequest {
    pub target: ConsoleTarget,
    /// After `@` in the credential id; default (with IAM) the alias, else the account id.
    pub account_label: Option<String>,
    pub touch: bool,
    /// Replace a credential with the same id (once the new one is confirmed).
    pub force: bool,
    /// How long to wait for AWS to show the result (with IAM).
    pub wait: Duration,
    pub poll: Duration,
}

/// What the console enrollment did.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ConsoleOutcome {
    pub credential_id: String,
    pub key_serial: Option<u32>,
    pub touch: bool,
    pub codes: ConsoleCodes,
    /// `None`: not checked (no IAM credentials given).
    pub verification: Option<Verification>,
}

/// Runs a console enrollment onto `key`; `iam` (credentials of the same
/// account) labels the credential and verifies the result.
pub(crate) async fn run<I: IamApi>(
    iam: Option<&I>,
    req: &ConsoleRequest,
    mut key: KeyTarget<'_, '_>,
    operator: &mut dyn Operator,
) -> Result<ConsoleOutcome, ConsoleError> {
    let id = credential_id(iam, req).await?;
    let before = match iam {
        Some(iam) => Some(baseline(iam, &req.target).await?),
        None => None,
    };
    // The key first: no secret is asked for when it cannot take it.
    let run = crate::undo::journal::new_run_id();
    let placement = credential::placement(key.session, key.capacity, &id, req.force, &run)?;
    let seed = operator
        .secret(&req.target.console_steps(), &id, req.touch)
        .map_err(ConsoleError::Operator)?;
    let proof = Proof::of(&seed)?;
    let (written, codes) = match write_and_confirm(&mut key, req, &id, &placement, &seed, operator)
    {
        Ok(w) => w,
        Err(failed) => {
            let Unconfirmed { cause, made } = *failed;
            return Err(abandon(&mut key, cause, made, operator));
        }
    };
    let verification = match (iam, &before) {
        (Some(iam), Some(b)) => {
            operator.event(Event::Step {
                user: req.target.id_name().to_string(),
                step: Step::Verify,
                reader: None,
            });
            Some(verify(iam, b, req, &id, operator).await?)
        }
        _ => None,
    };
    let mut on_touch = |n, of| touch_event(operator, n, of);
    credential::settle(key.session, &written, &seed, &proof, &mut on_touch)?;
    Ok(ConsoleOutcome {
        credential_id: id.to_id_string(),
        key_serial: key.serial,
        touch: req.touch,
        codes,
        verification,
    })
}

fn touch_event(p: &mut dyn Progress, n: u8, of: u8) {
    p.event(Event::Touch {
        user: None,
        n,
        of,
        reader: None,
    });
}

/// The credential id: the label given, else (with IAM) the account alias,
/// else the account id.
async fn credential_id<I: IamApi>(
    iam: Option<&I>,
    req: &ConsoleRequest,
) -> Result<CredentialId, ConsoleError> {
    let Some(iam) = iam else {
        let label = req.account_label.as_deref().ok_or_else(|| {
            ConsoleError::Operator(Failure::usage(
                "pass --account-label ALIAS (the name after @ in the key's credential id), \
                 or --verify so mfakey reads the account alias from IAM",
            ))
        })?;
        return req.target.credential_id(label, None);
    };
    // GetUser fails for roles and SSO: the account id is then unknown.
    let name = match &req.target {
        ConsoleTarget::Root => "",
        ConsoleTarget::User(n) => n.as_str(),
    };
    let account_id = match iam.get_user(name).await {
        Ok(u) if !u.account_id.is_empty() => Some(u.account_id),
        _ => None,
    };
    let label = match &req.account_label {
        Some(l) => Some(l.clone()),
        None => iam.account_alias().await?,
    };
    match label.or_else(|| account_id.clone()) {
        Some(l) => req.target.credential_id(&l, account_id.as_deref()),
        None => Err(ConsoleError::Operator(Failure::usage(
            "the account has no alias and its id could not be read (GetUser): pass --account-label",
        ))),
    }
}

/// A failure before the codes were confirmed, and what may be on the key.
struct Unconfirmed {
    cause: ConsoleError,
    made: Option<MadeCredential>,
}

fn unconfirmed(cause: ConsoleError, made: Option<MadeCredential>) -> Box<Unconfirmed> {
    Box::new(Unconfirmed { cause, made })
}

/// Writes the secret, checks it, and shows codes until confirmed. On
/// failure: the error, and what may now be on the key.
fn write_and_confirm(
    key: &mut KeyTarget<'_, '_>,
    req: &ConsoleRequest,
    id: &CredentialId,
    placement: &Placement,
    seed: &SecretBytes,
    operator: &mut dyn Operator,
) -> Result<(Written, ConsoleCodes), Box<Unconfirmed>> {
    let written = credential::write(key.session, id, placement, seed, req.touch).map_err(|f| {
        let made = f.maybe_written.map(|raw| MadeCredential {
            written_as: raw,
            replaces: None,
            proof: None,
            proven_in_session: false,
        });
        unconfirmed(f.error.into(), made)
    })?;
    // Acknowledged, to an id that was free when this session looked.
    let made = Some(MadeCredential {
        written_as: written.credential.raw_id.clone(),
        replaces: None,
        proof: None,
        proven_in_session: true,
    });
    let session = &mut *key.session;
    let first = {
        let mut on_touch = |n, of| touch_event(operator, n, of);
        codes_now(session, &written, seed, &mut on_touch)
    };
    let first = first.map_err(|e| unconfirmed(e, made.clone()))?;
    let mut fresh = |p: &mut dyn Progress| {
        let mut on_touch = |n, of| touch_event(p, n, of);
        codes_now(session, &written, seed, &mut on_touch)
    };
    let codes = operator
        .confirm(first, req.touch, &mut fresh)
        .map_err(|e| unconfirmed(e, made))?;
    Ok((written, codes))
}

/// A failure before confirmation: the operator may keep the credential;
/// otherwise the undo engine takes it off the key (it was proven in this
/// session). The error says which.
fn abandon(
    key: &mut KeyTarget<'_, '_>,
    cause: ConsoleError,
    made: Option<MadeCredential>,
    operator: &mut dyn Operator,
) -> ConsoleError {
    let Some(made) = made else { return cause };
    let id = String::from_utf8_lossy(&made.written_as).into_owned();
    if !operator.delete_after_failure(&id) {
        return ConsoleError::Abandoned {
            cause: Box::new(cause),
            what: format!("\"{id}\" was left on the key (mfakey oath delete \"{id}\" removes it)"),
        };
    }
    let out = undo::undo_credential(&made, key.serial, Some(&mut *key.session), operator);
    let what = if out.complete() {
        format!("\"{id}\" was deleted from the key")
    } else {
        format!(
            "\"{id}\" may be left on the key ({}): mfakey oath delete \"{id}\"",
            out.left
                .iter()
                .chain(&out.refused)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    ConsoleError::Abandoned {
        cause: Box::new(cause),
        what,
    }
}

async fn verify<I: IamApi>(
    iam: &I,
    before: &Baseline,
    req: &ConsoleRequest,
    id: &CredentialId,
    operator: &mut dyn Operator,
) -> Result<Verification, ConsoleError> {
    wait_verified(
        iam,
        before,
        req.wait,
        req.poll,
        &id.to_id_string(),
        operator,
    )
    .await
}
