//! Reference OTP codes computed with totp-rs, independently of mfakey's own
//! code path.

use super::scan::Seed;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Sha1,
    Sha256,
    Sha512,
}

impl Algo {
    fn totp_rs(self) -> totp_rs::Algorithm {
        match self {
            Algo::Sha1 => totp_rs::Algorithm::SHA1,
            Algo::Sha256 => totp_rs::Algorithm::SHA256,
            Algo::Sha512 => totp_rs::Algorithm::SHA512,
        }
    }
}

/// RFC 6238 code of `seed` at unix time `t`.
pub fn totp(seed: &Seed, algo: Algo, digits: u8, period: u64, t: u64) -> String {
    totp_rs::Builder::new()
        .with_algorithm(algo.totp_rs())
        .with_digits(digits)
        .with_step_duration(period)
        .with_secret(seed.bytes().to_vec())
        .build_noncompliant()
        .generate(t)
        .to_string()
}

/// RFC 4226 code of `seed` at `counter` (a TOTP with a 1-second step at
/// time `counter` is exactly HOTP of that counter).
pub fn hotp(seed: &Seed, algo: Algo, digits: u8, counter: u64) -> String {
    totp(seed, algo, digits, 1, counter)
}
