//! Reading codes from the key and checking them against the host's own
//! computation from the seed; whether a credential id has a slot on the key.
//! Shared by `enroll` (IAM-created devices) and `console` (seeds the AWS
//! console shows).

use crate::oath::{otp, Credential, CredentialId, HashAlgorithm, OathError, OathSession};
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
