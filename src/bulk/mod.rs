//! Bulk provisioning at a desk: the manifest's users one after another, each
//! enrolled with [`enroll`] (rollback included) on the next key inserted.
//! A bulk journal (JSON lines, synced per step, 0600, no secrets) records
//! each user's status so that `--resume` never enrolls a user twice; the
//! enrollment journal beside it lets half-done enrollments be finished or
//! undone with [`recover_run`].

pub(crate) mod accounts;
pub(crate) mod book;
pub(crate) mod desk;
pub(crate) mod dry_run;
pub(crate) mod journal;
pub(crate) mod manifest;
pub(crate) mod report;
#[cfg(test)]
mod tests;
pub(crate) mod tray;
#[cfg(test)]
mod tray_tests;

use self::book::{Attempt, Book};
use self::desk::{Desk, DeskKey};
use self::manifest::Row;
use crate::aws::{AwsError, IamApi};
use crate::enroll::{enroll, EnrollError, EnrollOptions, EnrollReport, KeyTarget};
use crate::oath::OathSession;
use crate::progress::{Event, Progress};
use crate::secret::SecretString;
use crate::transport::TransportError;
use crate::undo::journal::{Entry, Journal, JournalError};
use crate::undo::recover::{recover_run, RecoverError, RecoveredRun};
pub(crate) use accounts::{account_key, Accounts};
#[cfg(test)]
pub(crate) use journal::Mark;
pub(crate) use journal::{Journals, Line};
use serde::Serialize;
use std::time::Instant;

/// The tag that marks a device as enrolled by one bulk run.
pub(crate) const TAG_BULK_RUN: &str = "mfakey:bulk-run";

#[derive(Clone, Debug)]
pub(crate) struct BulkOptions {
    /// Touch for rows without a `touch` value.
    pub touch: bool,
    /// IAM path of the devices.
    pub path: String,
    /// For password-protected keys.
    pub password: Option<SecretString>,
    /// Create users missing from IAM (tagged by mfakey) and add them to their groups.
    pub create_users: bool,
    /// Keys per user for rows without a `keys` value: 1, or 2 (a backup key).
    pub keys: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    Enrolled,
    /// Enrolled by this run before (resume).
    AlreadyEnrolled,
    Failed,
    /// Not reached (interrupted).
    Pending,
}

/// One line of the report.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct UserResult {
    pub user: String,
    pub account: Option<String>,
    pub key_serial: Option<u32>,
    pub device_arn: Option<String>,
    pub credential_id: Option<String>,
    pub touch: bool,
    pub status: Status,
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum BulkError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("watching the readers failed: {0}")]
    Desk(#[from] TransportError),
    #[error("the enrollment journal's unfinished run for {user} names something mfakey cannot prove this run made: {why}. Nothing was changed and no key was enrolled; look at the journal, then resume with a journal you trust")]
    UndoRefused { user: String, why: String },
}

impl crate::error::Classify for BulkError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            BulkError::Journal(j) => j.kind(),
            BulkError::Aws(a) => a.kind(),
            BulkError::Desk(t) => t.kind(),
            BulkError::UndoRefused { .. } => Kind::UndoRefused,
        }
    }
}

/// What a bulk run did.
pub(crate) struct Summary {
    pub bulk_run: String,
    pub results: Vec<UserResult>,
    pub interrupted: bool,
}

/// Enrolls `eopts.user` on the open key: its OATH applet selected and
/// unlocked (the password goes only to a key that told its serial), the
/// enrollment's steps and touches sent to `progress` (the rest is in the
/// result).
pub(crate) async fn enroll_on_key<I: IamApi>(
    iam: &I,
    key: &mut DeskKey,
    eopts: &EnrollOptions,
    password: Option<&SecretString>,
    journal: &Journal,
    progress: &mut dyn Progress,
) -> Result<EnrollReport, EnrollError> {
    let serial = key.serial;
    let mut session = OathSession::select(&mut *key.transport)
        .and_then(|mut s| s.unlock_identified(serial, password).map(|()| s))?;
    let target = KeyTarget {
        session: &mut session,
        serial: key.serial,
        capacity: key.capacity,
    };
    let mut steps = |e: Event| {
        if matches!(e, Event::Step { .. } | Event::Touch { .. }) {
            progress.event(e)
        }
    };
    enroll(iam, target, eopts, journal, &mut steps).await
}

/// Finishes or undoes one unfinished enrollment (with its key, when given).
pub(crate) async fn recover_on_key<I: IamApi>(
    iam: &I,
    run: &[Entry],
    key: Option<&mut DeskKey>,
    password: Option<&SecretString>,
    journal: &Journal,
    progress: &mut dyn Progress,
) -> Result<RecoveredRun, BulkError> {
    let caller = iam.account_id().await?;
    let session = key.map(|k| {
        let serial = k.serial;
        OathSession::select(&mut *k.transport)
            .and_then(|mut s| s.unlock_identified(serial, password).map(|()| s))
    });
    // A key that will not open or unlock cannot show its credential.
    let mut session = session.and_then(Result::ok);
    recover_run(iam, &caller, run, session.as_mut(), journal, progress)
        .await
        .map_err(|e| match e {
            RecoverError::Aws(a) => BulkError::Aws(a),
            RecoverError::Journal(j) => BulkError::Journal(j),
        })
}

/// The desk, one key after another.
struct Loop<'a, 'p, I: IamApi, D: Desk> {
    book: Book<'a, I>,
    desk: &'a mut D,
    /// A user's backup key is being enrolled (any key but one used already).
    backup: bool,
    progress: &'p mut dyn Progress,
}

/// Runs (or with `resume_lines` non-empty, resumes) a bulk enrollment, one
/// key after another.
pub(crate) async fn run<'a, I: IamApi, D: Desk>(
    accounts: &'a Accounts<'a, I>,
    desk: &'a mut D,
    rows: &'a [Row],
    opts: &'a BulkOptions,
    journals: &'a Journals,
    resume_lines: &[Line],
    progress: &mut dyn Progress,
) -> Result<Summary, BulkError> {
    let book = Book::open(accounts, rows, opts, journals, resume_lines)?;
    let mut l = Loop {
        book,
        desk,
        backup: false,
        progress,
    };
    if l.book.resumed {
        let desk = &mut *l.desk;
        let mut open = |serial| desk.open_serial(serial);
        l.book.recover_all(&mut open, &mut *l.progress).await?;
    }
    let mut interrupted = false;
    let of = rows.len();
    for (n, row) in l.book.pending() {
        if l.desk.interrupted() {
            interrupted = true;
            break;
        }
        if opts.create_users && !l.book.ensure_user(row, &mut *l.progress).await? {
            continue;
        }
        // Only a resumed run can have tagged devices already: a new run's id
        // was made up just now.
        if l.book.resumed && l.book.done_in_iam(row, &mut *l.progress).await? {
            continue;
        }
        if !l.enroll_keys(row, n, of).await? {
            interrupted = true;
            break;
        }
    }
    l.book.finish(interrupted, l.progress)
}

impl<'a, I: IamApi, D: Desk> Loop<'a, '_, I, D> {
    /// Enrolls `row` on each of its keys in turn: the second is a backup,
    /// any key not used in this run. False: interrupted.
    async fn enroll_keys(&mut self, row: &Row, n: usize, of: usize) -> Result<bool, BulkError> {
        while !self.book.settled(row) {
            self.backup = self.book.keys_done(row) > 0;
            self.book.bank(&row.user);
            let go = self.enroll_user(row, n, of).await;
            self.backup = false;
            if !go? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn recover(
        &mut self,
        run: &[Entry],
        key: Option<&mut DeskKey>,
        reader: Option<&str>,
    ) -> Result<(), BulkError> {
        let user = run.first().map(|e| e.user.clone()).unwrap_or_default();
        let iam = self.book.iam(&user);
        let password = self.book.opts.password.as_ref();
        let r = recover_on_key(
            iam,
            run,
            key,
            password,
            &self.book.j.enroll,
            &mut *self.progress,
        )
        .await?;
        self.book.recovered(r, run, reader, &mut *self.progress)
    }

    fn skip(&mut self, reader: &str, serial: Option<u32>, reason: String) -> Result<(), BulkError> {
        self.book.skipped(serial, &reason)?;
        self.progress.event(Event::KeySkipped {
            reader: reader.to_string(),
            serial,
            reason,
        });
        self.remove(reader, serial)
    }

    /// "Remove the key", and the wait for it.
    fn remove(&mut self, reader: &str, serial: Option<u32>) -> Result<(), BulkError> {
        self.progress.event(Event::RemoveKey {
            reader: reader.to_string(),
            serial,
        });
        self.desk.wait_for_removal(reader)?;
        Ok(())
    }

    /// Enrolls `row` on the next suitable key. False: interrupted.
    async fn enroll_user(&mut self, row: &Row, n: usize, of: usize) -> Result<bool, BulkError> {
        loop {
            self.progress.event(Event::Next {
                user: row.user.clone(),
                n,
                of,
                key_serial: row.key_serial.filter(|_| !self.backup),
                backup: self.backup,
                reader: None,
            });
            let Some(reader) = self.desk.wait_for_key()? else {
                return Ok(false);
            };
            let t0 = Instant::now();
            let mut key = match self.desk.open(&reader) {
                Ok(k) => k,
                Err(why) => {
                    self.skip(&reader, None, format!("cannot read the key: {why}"))?;
                    continue;
                }
            };
            self.progress.event(Event::KeyInserted {
                reader: reader.clone(),
                serial: key.serial,
            });
            if let Some(reason) = self.book.refuse(row, key.serial, self.backup) {
                let serial = key.serial;
                drop(key);
                self.skip(&reader, serial, reason)?;
                continue;
            }
            if let Some(serial) = key.serial {
                if let Some(holder) = self.clean_key(serial, &mut key).await? {
                    drop(key);
                    if holder == row.user {
                        // Recovery found this user's enrollment complete.
                        self.remove(&reader, Some(serial))?;
                        return Ok(true);
                    }
                    let why = format!(
                        "key {serial} holds {holder}'s enrollment of this run: insert another key"
                    );
                    self.skip(&reader, Some(serial), why)?;
                    continue;
                }
            }
            let settled = self.enroll_on(row, &mut key, &reader, t0).await?;
            let serial = key.serial;
            drop(key);
            self.remove(&reader, serial)?;
            if settled == Attempt::Settled {
                return Ok(true);
            }
        }
    }

    /// Half-done enrollments on this very key (pulled earlier) are finished
    /// or undone first, so the key holds no stale credential. The user whose
    /// enrollment of this run the key holds, if any.
    async fn clean_key(
        &mut self,
        serial: u32,
        key: &mut DeskKey,
    ) -> Result<Option<String>, BulkError> {
        for run in self.book.unfinished_on(serial)? {
            self.recover(&run, Some(&mut *key), None).await?;
        }
        Ok(self.book.used.get(&serial).cloned())
    }

    /// One enrollment attempt: settled (enrolled or failed for good), or
    /// to retry with another key.
    async fn enroll_on(
        &mut self,
        row: &Row,
        key: &mut DeskKey,
        reader: &str,
        t0: Instant,
    ) -> Result<Attempt, BulkError> {
        self.book.begin(row, key.serial)?;
        let eopts = self.book.enroll_options(row, self.backup);
        let iam = self.book.accounts.for_row(row);
        let password = self.book.opts.password.as_ref();
        let result = enroll_on_key(
            iam,
            key,
            &eopts,
            password,
            &self.book.j.enroll,
            &mut *self.progress,
        )
        .await;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        self.book
            .attempted(row, key.serial, result, ms, reader, &mut *self.progress)
    }
}
