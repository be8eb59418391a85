//! Host-side reference codes (RFC 4226 HOTP, RFC 6238 TOTP) computed with
//! the `totp-rs` crate, and the formatting of the card's truncated answers.
//!
//! HOTP is TOTP with a step of one second at "time" = counter: totp-rs
//! computes `HMAC(key, be64(time / step))`, which with step 1 is exactly
//! RFC 4226's `HMAC(key, be64(counter))`, followed by the same dynamic
//! truncation. That keeps one independent implementation for both instead
//! of a second, hand-written HOTP.

use super::HashAlgorithm;
use crate::secret::SecretBytes;
use totp_rs::{Algorithm, Builder};

/// The RFC 6238 code of `secret` at `unix_time`. A period of 0 is taken as 1
/// (`CredentialData::validate` refuses it before it gets here).
pub(crate) fn totp(
    secret: &SecretBytes,
    alg: HashAlgorithm,
    digits: u8,
    period: u32,
    unix_time: u64,
) -> String {
    generate(secret, alg, digits, u64::from(period.max(1)), unix_time)
}

/// The RFC 4226 code of `secret` at `counter`.
#[cfg(test)]
pub fn hotp(secret: &SecretBytes, alg: HashAlgorithm, digits: u8, counter: u64) -> String {
    generate(secret, alg, digits, 1, counter)
}

/// What a SHA-1 credential holding `secret` answers a full CALCULATE of
/// `challenge` with: HMAC-SHA1(secret, challenge), untruncated.
pub(crate) fn full_response(secret: &SecretBytes, challenge: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
    super::password::hmac(HashAlgorithm::Sha1, secret.expose(), challenge)
}

/// Formats a card's truncated answer: `(value & 0x7fffffff) % 10^digits`,
/// zero-padded on the left to `digits`.
pub(crate) fn format_truncated(digits: u8, value: u32) -> String {
    let v = u64::from(value & 0x7FFF_FFFF);
    let v = match 10u64.checked_pow(u32::from(digits)) {
        Some(m) => v % m,
        None => v,
    };
    format!("{v:0width$}", width = usize::from(digits))
}

fn generate(secret: &SecretBytes, alg: HashAlgorithm, digits: u8, step: u64, time: u64) -> String {
    let totp = Builder::new()
        .with_algorithm(match alg {
            HashAlgorithm::Sha1 => Algorithm::SHA1,
            HashAlgorithm::Sha256 => Algorithm::SHA256,
            HashAlgorithm::Sha512 => Algorithm::SHA512,
        })
        .with_digits(digits)
        .with_step_duration(step)
        .with_secret(secret.expose())
        .build_noncompliant();
    if (1..=9).contains(&digits) {
        return totp.generate(time).to_string();
    }
    // totp-rs panics on 10 digits or more: truncate its HMAC here instead.
    let sig = totp.sign(time);
    let sig = sig.as_ref();
    let offset = usize::from(sig.last().copied().unwrap_or(0) & 0x0F);
    let value = match sig.get(offset..offset + 4) {
        Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        None => 0,
    };
    format_truncated(digits, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(s: &[u8]) -> SecretBytes {
        SecretBytes::new(s.to_vec())
    }

    #[test]
    fn rfc4226_appendix_d() {
        let k = seed(b"12345678901234567890");
        let expect = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (c, e) in expect.iter().enumerate() {
            assert_eq!(hotp(&k, HashAlgorithm::Sha1, 6, c as u64), *e, "count {c}");
        }
    }

    #[test]
    fn rfc6238_appendix_b() {
        let s1 = seed(b"12345678901234567890");
        let s256 = seed(b"12345678901234567890123456789012");
        let s512 = seed(b"1234567890123456789012345678901234567890123456789012345678901234");
        let table: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, a, b, c) in table {
            assert_eq!(totp(&s1, HashAlgorithm::Sha1, 8, 30, t), a, "SHA1 {t}");
            assert_eq!(
                totp(&s256, HashAlgorithm::Sha256, 8, 30, t),
                b,
                "SHA256 {t}"
            );
            assert_eq!(
                totp(&s512, HashAlgorithm::Sha512, 8, 30, t),
                c,
                "SHA512 {t}"
            );
        }
    }

    #[test]
    fn period_divides_time() {
        let k = seed(b"12345678901234567890");
        // 60 s period at t=119 is step 1, the same as HOTP counter 1.
        assert_eq!(totp(&k, HashAlgorithm::Sha1, 6, 60, 119), "287082");
        assert_eq!(totp(&k, HashAlgorithm::Sha1, 6, 0, 1), "287082");
    }

    #[test]
    fn padded_and_hashed_keys_give_the_same_codes() {
        // Why PUT may pad to 14 bytes and hash long keys: HMAC does both.
        let short = seed(b"abc");
        let padded = seed(b"abc\0\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(
            totp(&short, HashAlgorithm::Sha1, 6, 30, 1234567890),
            totp(&padded, HashAlgorithm::Sha1, 6, 30, 1234567890)
        );
    }

    #[test]
    fn truncated_answer_formatting() {
        // RFC 4226 Appendix D, count 0: truncated 0x4c93cf18 -> 1284755224.
        assert_eq!(format_truncated(6, 0x4c93_cf18), "755224");
        assert_eq!(format_truncated(8, 0x4c93_cf18), "84755224");
        // The top bit is masked off; leading zeros kept.
        assert_eq!(format_truncated(6, 0x8000_0007), "000007");
        assert_eq!(format_truncated(10, 0xFFFF_FFFF), "2147483647");
        assert_eq!(format_truncated(12, 5), "000000000005");
    }

    #[test]
    fn ten_digits_do_not_panic() {
        let k = seed(b"12345678901234567890");
        // count 0 truncates to 1284755224 (RFC 4226 Appendix D).
        assert_eq!(hotp(&k, HashAlgorithm::Sha1, 10, 0), "1284755224");
    }
}
