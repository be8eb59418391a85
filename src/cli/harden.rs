//! The process's own protection, set before anything else runs: no core
//! dump (a crash, SIGQUIT or SIGABRT) may write a seed, a password or a PIN
//! to disk, and no other process of the same user may read this one's
//! memory through ptrace or /proc/PID/mem.

use crate::error::{Failure, Kind};

/// RLIMIT_CORE 0 (soft and hard: it cannot be raised again) and
/// PR_SET_DUMPABLE 0 (no core even where a core handler ignores the limit,
/// no same-user ptrace).
pub(super) fn no_core_dumps() -> Result<(), Failure> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } != 0 {
        return Err(failed("setrlimit(RLIMIT_CORE, 0)"));
    }
    // SAFETY: prctl with PR_SET_DUMPABLE takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(failed("prctl(PR_SET_DUMPABLE, 0)"));
    }
    Ok(())
}

fn failed(call: &str) -> Failure {
    Failure::new(
        Kind::Other,
        format!(
            "cannot turn core dumps off ({call}: {}): mfakey does not run where a crash could write its secrets to disk",
            std::io::Error::last_os_error()
        ),
    )
}
