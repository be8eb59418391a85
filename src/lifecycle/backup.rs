//! `enroll user --backup`: once the first key is enrolled, a second key in
//! the same sitting, waited for at the desk (`bulk::desk`): in another
//! reader, or in the first key's reader once that key is out. The backup
//! is an enrollment of its own (its own device, journal run and rollback);
//! when it fails, the first key stays enrolled and the error says so.

use crate::aws::IamApi;
use crate::bulk::desk::Desk;
use crate::enroll::{enroll, EnrollError, EnrollOptions, EnrollReport, KeyTarget};
use crate::error::{Classify, Failure, Kind};
use crate::oath::OathSession;
use crate::progress::{Event, Progress};
use crate::transport::TransportError;
use crate::undo::journal::Journal;

/// The operator's side of opening a key: its OATH password, if it has one
/// (sent only to a key that told its `serial`).
pub(crate) trait Unlocker {
    fn unlock(&mut self, session: &mut OathSession<'_>, serial: Option<u32>)
        -> Result<(), Failure>;
}

/// Why the backup key was not enrolled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum BackupCause {
    #[error("stopped (Ctrl-C) before a backup key was enrolled")]
    Interrupted,
    #[error("watching the readers failed: {0}")]
    Desk(TransportError),
    #[error("the backup key could not be opened: {0}")]
    Key(Failure),
    #[error(transparent)]
    Enroll(EnrollError),
}

/// The first key is enrolled, the backup is not.
#[derive(Debug, thiserror::Error)]
#[error("{user} IS enrolled on the first key {first} ({device}), but NOT on a backup key: {cause}. To add a backup later: `mfakey enroll user {user}` with another key")]
pub(crate) struct BackupError {
    pub user: String,
    pub first: String,
    pub device: String,
    pub cause: BackupCause,
}

impl Classify for BackupError {
    fn kind(&self) -> Kind {
        match &self.cause {
            // Something of the backup's is left: `recover` first.
            BackupCause::Enroll(e) if e.kind() == Kind::RollbackIncomplete => {
                Kind::RollbackIncomplete
            }
            _ => Kind::BackupNotEnrolled,
        }
    }
}

/// The backup's options: the first key's, with a device name of its own
/// when one was given (the default name already holds the key's serial).
fn backup_options(first: &EnrollOptions) -> EnrollOptions {
    let mut o = first.clone();
    o.device_name = first.device_name.as_ref().map(|n| format!("{n}-backup"));
    o
}

/// Waits for a key other than the first, and enrolls `opts.user` on it.
pub(crate) async fn enroll_backup<I: IamApi, D: Desk>(
    iam: &I,
    desk: &mut D,
    first: &EnrollReport,
    opts: &EnrollOptions,
    unlock: &mut dyn Unlocker,
    journal: &mut Journal,
    progress: &mut dyn Progress,
) -> Result<EnrollReport, BackupError> {
    let fail = |cause| BackupError {
        user: opts.user.clone(),
        first: first
            .key_serial
            .map_or("(serial unknown)".into(), |s| s.to_string()),
        device: first.device_serial.clone(),
        cause,
    };
    let opts = backup_options(opts);
    progress.event(Event::Next {
        user: opts.user.clone(),
        n: 1,
        of: 1,
        key_serial: None,
        backup: true,
        reader: None,
    });
    let mut first_seen = false;
    loop {
        let reader = match desk.wait_for_key() {
            Ok(Some(r)) => r,
            Ok(None) => return Err(fail(BackupCause::Interrupted)),
            Err(e) => return Err(fail(BackupCause::Desk(e))),
        };
        let mut key = match desk.open(&reader) {
            Ok(k) => k,
            Err(why) => {
                progress.event(Event::KeySkipped {
                    reader,
                    serial: None,
                    reason: format!("cannot read the key: {why}"),
                });
                continue;
            }
        };
        if key.serial.is_some() && key.serial == first.key_serial {
            // Still in its reader (said once it comes back, not before).
            if first_seen {
                progress.event(Event::KeySkipped {
                    reader,
                    serial: key.serial,
                    reason: "this is the first key: insert another key for the backup".into(),
                });
            }
            first_seen = true;
            continue;
        }
        progress.event(Event::KeyInserted {
            reader,
            serial: key.serial,
        });
        let mut session = OathSession::select(&mut *key.transport)
            .map_err(|e| fail(BackupCause::Enroll(e.into())))?;
        unlock
            .unlock(&mut session, key.serial)
            .map_err(|f| fail(BackupCause::Key(f)))?;
        let target = KeyTarget {
            session: &mut session,
            serial: key.serial,
            capacity: key.capacity,
        };
        return enroll(iam, target, &opts, journal, progress)
            .await
            .map_err(|e| fail(BackupCause::Enroll(e)));
    }
}
