//! AWS's TOTP credential on a key: where it goes, the one write, the codes
//! read from the key and checked against the host's own computation from
//! the seed, the proof that a key holds a given seed, and the one delete,
//! which needs that proof. Shared by `enroll` (IAM-created devices),
//! `console` (seeds the AWS console shows) and `undo`.
//!
//! A credential replaced with `--force` is never removed before its
//! successor is proven: the new seed is written beside it under a
//! temporary id, and only once the enrollment has succeeded is it written
//! over the old one and the temporary copy removed ([`Placement::Beside`]).

use crate::oath::{
    otp, Credential, CredentialData, CredentialId, HashAlgorithm, OathError, OathSession, OathType,
};
use crate::secret::SecretBytes;
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// AWS's TOTP parameters: SHA-1, 6 digits, 30 s.
pub(crate) const PERIOD: u64 = 30;
pub(crate) const DIGITS: u8 = 6;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CodeError {
    /// The key's code differs from the host's: the key does not hold the seed.
    #[error("the key's codes differ from the seed's codes: the write did not take")]
    Mismatch,
    #[error(transparent)]
    Oath(#[from] OathError),
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The codes of steps `step-1` and `step` from the key, each checked against
/// the host's computation from the seed. The key has no clock: both come at
/// once. `on_touch(n, of)` is called before each read of a touch credential.
pub(crate) fn codes_from_key(
    key: &mut OathSession<'_>,
    cred: &Credential,
    seed: &SecretBytes,
    step: u64,
    touch: bool,
    on_touch: &mut dyn FnMut(u8, u8),
) -> Result<(String, String), CodeError> {
    let mut out = Vec::with_capacity(2);
    for (n, s) in [(1u8, step.saturating_sub(1)), (2u8, step)] {
        if touch {
            on_touch(n, 2);
        }
        let at = s * PERIOD;
        let from_key = key.calculate(cred, at)?;
        let expected = otp::totp(seed, HashAlgorithm::Sha1, DIGITS, PERIOD as u32, at);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            from_key.value.as_bytes(),
            expected.as_bytes(),
        )) {
            return Err(CodeError::Mismatch);
        }
        out.push(from_key.value);
    }
    let c2 = out.pop().unwrap_or_default();
    let c1 = out.pop().unwrap_or_default();
    Ok((c1, c2))
}

/// A check value of a seed that can be kept where a secret cannot (the
/// journal): a random challenge and the seed's full HMAC-SHA1 of it, which
/// is what the key answers a full CALCULATE with. The challenge's first
/// byte is `FF`, a TOTP step some 10^13 years away, so the value is no code
/// AWS would ever accept, and an HMAC reveals nothing of its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Proof {
    /// 8 bytes, hex.
    pub challenge: String,
    /// 20 bytes, hex.
    pub response: String,
}

/// What a key holds under an id, as far as a [`Proof`] tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holding {
    /// The seed the proof was made from.
    Ours,
    /// Some other seed.
    Other,
    /// No credential with that id.
    Absent,
}

impl Proof {
    /// A proof of `seed` with a fresh random challenge.
    pub(crate) fn of(seed: &SecretBytes) -> Result<Proof, OathError> {
        let mut challenge = [0u8; 8];
        getrandom::fill(&mut challenge).map_err(|e| OathError::Random(e.to_string()))?;
        challenge[0] = 0xFF;
        let response = otp::full_response(seed, &challenge);
        Ok(Proof {
            challenge: hex(&challenge),
            response: hex(&response),
        })
    }

    /// A proof of the seed the key holds under `raw_id`, from the key's own
    /// answer to a fresh challenge (a touch credential waits for a touch).
    /// Only for a seed something else has shown to be the one meant (AWS
    /// accepted its codes for a device): it lets a later session recognise
    /// that same seed, as [`Proof::of`] does for a seed in hand.
    pub(crate) fn of_key(key: &mut OathSession<'_>, raw_id: &[u8]) -> Result<Proof, OathError> {
        let mut challenge = [0u8; 8];
        getrandom::fill(&mut challenge).map_err(|e| OathError::Random(e.to_string()))?;
        challenge[0] = 0xFF;
        let response = key.calculate_response(raw_id, &challenge)?;
        Ok(Proof {
            challenge: hex(&challenge),
            response: hex(&response),
        })
    }

    /// Asks the key what it holds under `raw_id` (a full CALCULATE; a touch
    /// credential waits for a touch). The comparison is constant-time.
    pub(crate) fn held_by(
        &self,
        key: &mut OathSession<'_>,
        raw_id: &[u8],
    ) -> Result<Holding, OathError> {
        let (Some(challenge), Some(want)) = (unhex(&self.challenge), unhex(&self.response)) else {
            // A journal line that is not ours to trust: nothing is proven.
            return Ok(Holding::Other);
        };
        if challenge.len() != 8 || challenge[0] != 0xFF {
            return Ok(Holding::Other);
        }
        match key.calculate_response(raw_id, &challenge) {
            Ok(got)
                if bool::from(subtle::ConstantTimeEq::ct_eq(
                    got.as_slice(),
                    want.as_slice(),
                )) =>
            {
                Ok(Holding::Ours)
            }
            Ok(_) => Ok(Holding::Other),
            Err(OathError::NoSuchCredential(_)) => Ok(Holding::Absent),
            Err(e) => Err(e),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Where a new credential is written while it is being proven.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Under its own id: no credential has that id.
    Direct,
    /// Under `temp`, beside the credential with its id, which stays
    /// untouched until [`settle`] replaces it.
    Beside { temp: CredentialId },
}

/// The temporary id of a credential written beside the one it replaces.
pub(crate) fn temp_id(run: &str) -> CredentialId {
    let tail: String = run
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    CredentialId::new(None, &format!("mfakey-pending-{tail}"), OathType::Totp, 30)
}

/// Why a credential cannot go onto the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SlotError {
    #[error("the key already holds \"{id}\": pass --force to replace it")]
    Exists { id: String },
    #[error(
        "the key's OATH applet is full ({capacity} credentials): delete one or use another key"
    )]
    Full { capacity: usize },
    #[error("the key's OATH applet is full ({capacity} credentials): --force keeps \"{id}\" until its replacement is proven, which needs one free slot; delete another credential first")]
    FullForReplace { capacity: usize, id: String },
    #[error(transparent)]
    Oath(#[from] OathError),
}

impl crate::error::Classify for SlotError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            SlotError::Exists { .. } => Kind::CredentialExists,
            SlotError::Full { .. } | SlotError::FullForReplace { .. } => Kind::KeyFull,
            SlotError::Oath(o) => o.kind(),
        }
    }
}

/// The key-side check before anything is made: where a credential with
/// `id` would go. `run` names the temporary id of a replacement.
pub(crate) fn placement(
    key: &mut OathSession<'_>,
    capacity: usize,
    id: &CredentialId,
    force: bool,
    run: &str,
) -> Result<Placement, SlotError> {
    placement_among(&key.list()?, capacity, id, force, run)
}

/// [`placement`] on a list of the key's credentials already read (in the
/// same exclusive session, so nobody changed the key since).
pub(crate) fn placement_among(
    creds: &[Credential],
    capacity: usize,
    id: &CredentialId,
    force: bool,
    run: &str,
) -> Result<Placement, SlotError> {
    let raw = id.to_bytes();
    let taken = creds.iter().any(|c| c.raw_id == raw);
    match (taken, force) {
        (true, false) => Err(SlotError::Exists {
            id: id.to_id_string(),
        }),
        (false, _) if creds.len() >= capacity => Err(SlotError::Full { capacity }),
        (false, _) => Ok(Placement::Direct),
        (true, true) if creds.len() >= capacity => Err(SlotError::FullForReplace {
            capacity,
            id: id.to_id_string(),
        }),
        (true, true) => Ok(Placement::Beside { temp: temp_id(run) }),
    }
}

/// A credential written and not yet settled.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    /// Where the new seed is (its own id, or the temporary one).
    pub credential: Credential,
    /// The id it gets in the end.
    pub id: CredentialId,
    pub placement: Placement,
    pub touch: bool,
}

/// A failed write: the error, and the raw id the seed may have reached (a
/// lost answer may hide a completed write; a refusal wrote nothing).
#[derive(Debug)]
pub(crate) struct PutFailure {
    pub error: OathError,
    pub maybe_written: Option<Vec<u8>>,
}

/// Writes AWS's credential (SHA-1, [`DIGITS`], [`PERIOD`]) for `seed` as
/// `placement` says: under `id`, or beside the credential that has it.
pub(crate) fn write(
    key: &mut OathSession<'_>,
    id: &CredentialId,
    placement: &Placement,
    seed: &SecretBytes,
    touch: bool,
) -> Result<Written, PutFailure> {
    let at = match placement {
        Placement::Direct => id,
        Placement::Beside { temp } => temp,
    };
    let credential = put(key, at, seed, touch)?;
    Ok(Written {
        credential,
        id: id.clone(),
        placement: placement.clone(),
        touch,
    })
}

fn put(
    key: &mut OathSession<'_>,
    id: &CredentialId,
    seed: &SecretBytes,
    touch: bool,
) -> Result<Credential, PutFailure> {
    let data = CredentialData {
        id: id.clone(),
        algorithm: HashAlgorithm::Sha1,
        digits: DIGITS,
        secret: seed.clone(),
        touch,
        counter: 0,
    };
    match key.put(&data) {
        Ok(mut c) => {
            c.touch = Some(touch);
            Ok(c)
        }
        Err(error) => Err(PutFailure {
            maybe_written: matches!(error, OathError::Transport(_)).then(|| id.to_bytes()),
            error,
        }),
    }
}

/// Moves a proven replacement into place: the seed is written under its
/// own id (over the credential it replaces), proven there, and the
/// temporary copy is deleted. A credential written directly is already in
/// place. `on_touch` is called before a touch credential is proven.
pub(crate) fn settle(
    key: &mut OathSession<'_>,
    written: &Written,
    seed: &SecretBytes,
    proof: &Proof,
    on_touch: &mut dyn FnMut(u8, u8),
) -> Result<Credential, OathError> {
    let Placement::Beside { temp } = &written.placement else {
        return Ok(written.credential.clone());
    };
    let settled = put(key, &written.id, seed, written.touch).map_err(|f| f.error)?;
    if written.touch {
        on_touch(1, 1);
    }
    if proof.held_by(key, &settled.raw_id)? != Holding::Ours {
        return Err(OathError::Malformed(format!(
            "\"{}\" does not give the new seed's answers after it was written",
            written.id.to_id_string()
        )));
    }
    // The temporary copy holds the same seed, proven when it was written.
    match key.delete(&temp.to_bytes()) {
        Ok(()) | Err(OathError::NoSuchCredential(_)) => Ok(settled),
        Err(e) => Err(e),
    }
}

/// Finishes a replacement whose new seed is proven under `temp` (the
/// caller proved it in this session): the credential it replaces goes, and
/// the new one is renamed into its place (RENAME, firmware 5.3.1+).
pub(crate) fn move_into_place(
    key: &mut OathSession<'_>,
    temp: &[u8],
    final_id: &[u8],
) -> Result<(), OathError> {
    match key.delete(final_id) {
        Ok(()) | Err(OathError::NoSuchCredential(_)) => {}
        Err(e) => return Err(e),
    }
    let id = CredentialId::parse(final_id, OathType::Totp);
    key.rename(temp, &id)?;
    Ok(())
}

/// What [`delete_proven`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Removal {
    Deleted,
    /// There was no such credential.
    Absent,
    /// The key holds another seed under that id: it was left alone.
    NotOurs,
}

/// Deletes the credential `raw_id` only when the key proves it holds the
/// seed `proof` was made from.
pub(crate) fn delete_proven(
    key: &mut OathSession<'_>,
    raw_id: &[u8],
    proof: &Proof,
) -> Result<Removal, OathError> {
    match proof.held_by(key, raw_id)? {
        Holding::Absent => Ok(Removal::Absent),
        Holding::Other => Ok(Removal::NotOurs),
        Holding::Ours => match key.delete(raw_id) {
            Ok(()) => Ok(Removal::Deleted),
            Err(OathError::NoSuchCredential(_)) => Ok(Removal::Absent),
            Err(e) => Err(e),
        },
    }
}

/// Deletes a credential this very session wrote and proved (its codes were
/// read from the key and matched the seed, over an exclusive connection
/// nobody else could use meanwhile): the proof is already in hand.
pub(crate) fn delete_proven_in_session(
    key: &mut OathSession<'_>,
    raw_id: &[u8],
) -> Result<Removal, OathError> {
    match key.delete(raw_id) {
        Ok(()) => Ok(Removal::Deleted),
        Err(OathError::NoSuchCredential(_)) => Ok(Removal::Absent),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_challenges_are_out_of_any_clocks_reach_and_fresh() {
        let seed = SecretBytes::new(vec![7; 20]);
        let a = Proof::of(&seed).unwrap();
        let b = Proof::of(&seed).unwrap();
        assert_ne!(a.challenge, b.challenge);
        assert!(a.challenge.starts_with("ff"));
        assert_eq!(a.response.len(), 40);
        assert_eq!(unhex(&a.challenge).unwrap().len(), 8);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn temporary_ids_fit_and_differ_by_run() {
        let a = temp_id("0123456789abcdef");
        assert_eq!(a.to_id_string(), "mfakey-pending-0123456789abcdef");
        assert_ne!(a, temp_id("fedcba9876543210"));
        assert!(a.to_bytes().len() <= crate::oath::MAX_ID_LEN);
    }
}
