//! Harness for the integration tests (see docs/TESTING.md).
//!
//! The tests need the stack that `tests/run.sh` starts: pcscd with the four
//! vpcd readers, moto and the IAM proxy. Each test takes one or more reader
//! slots under a cross-process lock, inserts `virtual-yubikey` cards into
//! them, runs `mfakey` (and Yubico's `ykman` as an independent client) with a
//! private HOME, and ends with a [`SecretScan`] over everything it produced.
//!
//! Each test binary uses a different part of the harness.
#![allow(dead_code, unused_imports)]

pub mod oath;
pub mod otp;
pub mod process;
pub mod scan;
pub mod scenario;
pub mod slot;
pub mod vkey;

pub use otp::{hotp, totp, Algo};
pub use process::{mfakey, ykman, Run, Running};
pub use scan::{SecretScan, Seed};
pub use scenario::Scenario;
pub use slot::Slot;
pub use vkey::VirtualKey;

/// Panics unless the test stack runs (`tests/run.sh` sets MFAKEY_TEST_STACK).
pub fn require_stack() {
    if std::env::var_os("MFAKEY_TEST_STACK").is_none() {
        panic!(
            "the integration-test stack is not running: run the tests through tests/run.sh \
             (it starts pcscd with the vpcd readers, moto and the IAM proxy, then runs cargo test)"
        );
    }
}

/// The venv with ykman and moto (tests/setup.sh creates it).
pub fn venv() -> std::path::PathBuf {
    match std::env::var_os("MFAKEY_VENV") {
        Some(v) => v.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"),
    }
}

/// Unix time now, in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock before 1970")
        .as_secs()
}

/// A serial number unlikely to collide with another test's key.
pub fn random_serial() -> u32 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).expect("getrandom");
    10_000_000 + u32::from_be_bytes(b) % 80_000_000
}
