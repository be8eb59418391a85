//! Reading codes from the key and checking them against the host's own
//! computation from the seed; whether a credential id has a slot on the key.
//! Shared by `enroll` (IAM-created devices) and `console` (seeds the AWS
//! console shows).

use crate::oath::{
    otp, Credential, CredentialData, CredentialId, HashAlgorithm, OathError, OathSession,
};
use crate::secret::SecretBytes;
use std::time::{SystemTime, UNIX_EPOCH};

/// AWS's TOTP parameters: SHA-1, 6 digits, 30 s.
pub const PERIOD: u64 = 30;
pub const DIGITS: u8 = 6;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    /// The key's code differs from the host's: the key does not hold the seed.
    #[error("the key's codes differ from the seed's codes: the write did not take")]
    Mismatch,
    #[error(transparent)]
    Oath(#[from] OathError),
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The codes of steps `step-1` and `step` from the key, each checked against
/// the host's computation from the seed. The key has no clock: both come at
/// once. `on_touch(n, of)` is called before each read of a touch credential.
pub fn codes_from_key(
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

/// A failed write: the error, and the credential's raw id when it may be
/// on the key anyway (a lost answer may hide a completed write; a refusal
/// wrote nothing, and over an existing credential must not cost it).
#[derive(Debug)]
pub struct PutFailure {
    pub error: OathError,
    pub maybe_written: Option<Vec<u8>>,
}

/// Writes AWS's credential (SHA-1, [`DIGITS`], [`PERIOD`]) for `seed`
/// under `id`; the returned credential knows its touch setting.
pub fn put_aws_credential(
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

/// Deletes the credential `raw_id`: `true` deleted, `false` it was not
/// there (absent counts as removed: undoing a write that never landed).
pub fn remove_credential(key: &mut OathSession<'_>, raw_id: &[u8]) -> Result<bool, OathError> {
    match key.delete(raw_id) {
        Ok(()) => Ok(true),
        Err(OathError::NoSuchCredential(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether the key can take a credential with `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// No credential with that id, and room for one.
    Free,
    /// A credential with that id is there (a write would overwrite it).
    Taken,
    /// No such credential and no room.
    Full,
}

/// Lists the key's credentials to see whether `id` has a slot.
pub fn slot_for(
    key: &mut OathSession<'_>,
    capacity: usize,
    id: &CredentialId,
) -> Result<Slot, OathError> {
    let creds = key.list()?;
    let raw = id.to_bytes();
    Ok(if creds.iter().any(|c| c.raw_id == raw) {
        Slot::Taken
    } else if creds.len() >= capacity {
        Slot::Full
    } else {
        Slot::Free
    })
}
