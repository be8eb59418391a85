//! How IAM checks a pair of codes (RFC 6238: HMAC-SHA1, 6 digits, 30 s
//! steps), for the fake IAM; the codes themselves come from `oath::otp`,
//! the host's one TOTP.

use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use crate::secret::SecretBytes;

/// Seconds per TOTP step.
pub const STEP_SECONDS: u64 = 30;

/// The step number of `time` (seconds since the epoch / 30).
pub fn step_at(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        / STEP_SECONDS
}

/// The 6-digit code of `seed` for TOTP step `step`.
pub(crate) fn code_for_step(seed: &SecretBytes, step: u64) -> Zeroizing<String> {
    Zeroizing::new(crate::oath::otp::totp(
        seed,
        crate::oath::HashAlgorithm::Sha1,
        6,
        STEP_SECONDS as u32,
        step.saturating_mul(STEP_SECONDS),
    ))
}

/// The step `T` such that (`code1`, `code2`) are the codes of steps T-1 and
/// T, with T within ±`window` steps of `now_step`; `None` otherwise.
pub fn matching_step(
    seed: &SecretBytes,
    code1: &str,
    code2: &str,
    now_step: u64,
    window: u64,
) -> Option<u64> {
    let low = now_step.saturating_sub(window).max(1);
    (low..=now_step + window)
        .find(|&t| *code_for_step(seed, t - 1) == code1 && *code_for_step(seed, t) == code2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA1 seed "12345678901234567890", last 6 digits.
        let seed = SecretBytes::new(b"12345678901234567890".to_vec());
        assert_eq!(*code_for_step(&seed, 59 / 30), "287082");
        assert_eq!(*code_for_step(&seed, 1111111109 / 30), "081804");
        assert_eq!(*code_for_step(&seed, 1234567890 / 30), "005924");
        assert_eq!(*code_for_step(&seed, 2000000000 / 30), "279037");
    }

    #[test]
    fn matching_step_accepts_only_consecutive_pairs_near_now() {
        let seed = SecretBytes::new(b"12345678901234567890".to_vec());
        let now = 1_000_000;
        let (a, b) = (code_for_step(&seed, now - 1), code_for_step(&seed, now));
        assert_eq!(matching_step(&seed, &a, &b, now, 1), Some(now));
        assert_eq!(matching_step(&seed, &a, &b, now + 1, 1), Some(now));
        assert_eq!(matching_step(&seed, &a, &b, now + 2, 1), None);
        assert_eq!(matching_step(&seed, &b, &a, now, 1), None);
        assert_eq!(matching_step(&seed, &a, &a, now, 1), None);
    }
}
