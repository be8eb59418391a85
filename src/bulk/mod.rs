//! Bulk provisioning at a desk: the manifest's users one after another, each
//! enrolled with [`enroll`] (rollback included) on the next key inserted.
//! A bulk journal (JSON lines, synced per step, 0600, no secrets) records
//! each user's status so that `--resume` never enrolls a user twice; the
//! enrollment journal beside it lets half-done enrollments be finished or
//! undone with [`recover_run`].

pub(crate) mod accounts;
pub(crate) mod desk;
pub(crate) mod dry_run;
pub(crate) mod journal;
pub(crate) mod manifest;
pub(crate) mod report;
#[cfg(test)]
mod tests;

use self::desk::{Desk, DeskKey};
use self::manifest::Row;
use crate::aws::{AwsError, IamApi};
use crate::credential::unix_now;
use crate::enroll::{enroll, EnrollError, EnrollOptions, KeyTarget};
use crate::oath::{OathError, OathSession};
use crate::progress::{Event, Outcome, Progress};
use crate::secret::SecretString;
use crate::transport::TransportError;
use crate::undo::journal::{self as enroll_journal, JournalError};
use crate::undo::recover::recover_run;
pub(crate) use accounts::{account_key, Accounts};
use journal::prior;
pub(crate) use journal::{Journals, Line, Mark};
use serde::Serialize;
use std::collections::HashMap;
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

struct Loop<'a, I: IamApi, D: Desk> {
    accounts: &'a Accounts<'a, I>,
    desk: &'a mut D,
    rows: &'a [Row],
    opts: &'a BulkOptions,
    j: &'a mut Journals,
    run: String,
    results: HashMap<String, UserResult>,
    /// Key serial → the user it was enrolled for in this run.
    used: HashMap<u32, String>,
    /// The enrollments of users' first keys, once their backup key is next.
    earlier: HashMap<String, Vec<UserResult>>,
    /// A user's backup key is being enrolled (any key but one used already).
    backup: bool,
    progress: &'a mut dyn Progress,
}

/// Runs (or with `resume_lines` non-empty, resumes) a bulk enrollment.
pub(crate) async fn run<'a, I: IamApi, D: Desk>(
    accounts: &'a Accounts<'a, I>,
    desk: &'a mut D,
    rows: &'a [Row],
    opts: &'a BulkOptions,
    journals: &'a mut Journals,
    resume_lines: &[Line],
    progress: &'a mut dyn Progress,
) -> Result<Summary, BulkError> {
    let run = prior(resume_lines).unwrap_or_else(enroll_journal::new_run_id);
    let mut l = Loop {
        accounts,
        desk,
        rows,
        opts,
        j: journals,
        run,
        results: HashMap::new(),
        used: HashMap::new(),
        earlier: HashMap::new(),
        backup: false,
        progress,
    };
    if resume_lines.is_empty() {
        l.mark(Mark::Start, None, |line| {
            line.detail = Some(format!("{} users", rows.len()))
        })?;
    } else {
        l.replay(resume_lines);
        l.recover_all().await?;
    }
    let mut interrupted = false;
    // (position in the manifest, row) of the users still to do.
    let pending: Vec<(usize, &Row)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| !l.settled(r))
        .map(|(i, r)| (i + 1, r))
        .collect();
    let of = rows.len();
    for (n, row) in pending {
        if l.desk.interrupted() {
            interrupted = true;
            break;
        }
        if opts.create_users && !l.ensure_user(row).await? {
            continue;
        }
        // Only a resumed run can have tagged devices already: a new run's id
        // was made up just now.
        if !resume_lines.is_empty() && l.done_in_iam(row).await? {
            continue;
        }
        if !l.enroll_keys(row, n, of).await? {
            interrupted = true;
            break;
        }
    }
    if interrupted {
        l.mark(Mark::Interrupted, None, |_| {})?;
        l.progress.event(Event::Interrupted);
    }
    let results = rows.iter().flat_map(|r| l.results_of(r)).collect();
    Ok(Summary {
        bulk_run: l.run,
        results,
        interrupted,
    })
}

/// The key stopped answering (pulled out, reset, or PC/SC lost it), or it
/// told no serial and so got no password: the user waits for a key again
/// rather than failing.
fn transport_lost(e: &EnrollError) -> bool {
    matches!(
        e.root(),
        EnrollError::Oath(OathError::Transport(_) | OathError::Unidentified)
    )
}

impl<'a, I: IamApi, D: Desk> Loop<'a, I, D> {
    /// The IAM client for `user`'s row.
    fn iam(&self, user: &str) -> &'a I {
        match self.rows.iter().find(|r| r.user == user) {
            Some(row) => self.accounts.for_row(row),
            None => self.accounts.default,
        }
    }

    fn mark(
        &mut self,
        mark: Mark,
        user: Option<&str>,
        fill: impl FnOnce(&mut Line),
    ) -> Result<(), JournalError> {
        let mut line = Line {
            ts: unix_now(),
            bulk_run: self.run.clone(),
            mark,
            user: user.map(str::to_string),
            key_serial: None,
            account_id: None,
            device_serial: None,
            credential_id: None,
            touch: None,
            detail: None,
        };
        fill(&mut line);
        self.j.bulk.append_line(&line)
    }

    fn touch_of(&self, row: &Row) -> bool {
        row.touch.unwrap_or(self.opts.touch)
    }

    /// Takes in what an earlier run of this journal finished.
    fn replay(&mut self, lines: &[Line]) {
        for line in lines {
            let Some(user) = &line.user else { continue };
            if matches!(line.mark, Mark::Enrolled | Mark::AlreadyDone) {
                if let Some(s) = line.key_serial {
                    self.used.insert(s, user.clone());
                }
                self.bank(user);
                self.results.insert(
                    user.clone(),
                    UserResult {
                        user: user.clone(),
                        account: line.account_id.clone(),
                        key_serial: line.key_serial,
                        device_arn: line.device_serial.clone(),
                        credential_id: line.credential_id.clone(),
                        touch: line.touch.unwrap_or(false),
                        status: Status::AlreadyEnrolled,
                        error: None,
                    },
                );
            }
        }
    }

    /// Finishes or undoes the enrollments an earlier run left half done:
    /// those that never wrote to a key at once, the others with their key
    /// if it is in a reader (else when it is next inserted).
    async fn recover_all(&mut self) -> Result<(), BulkError> {
        let entries = self.j.enroll.entries()?;
        for run in enroll_journal::unfinished(&entries) {
            let Some(st) = crate::undo::recover::state(&run) else {
                continue;
            };
            if !st.written() {
                self.recover_one(&run, None).await?;
            } else if let Some(serial) = st.made.key_serial {
                if let Some(mut key) = self.desk.open_serial(serial) {
                    self.recover_with_key(&run, &mut key).await?;
                }
            }
        }
        Ok(())
    }

    async fn recover_with_key(
        &mut self,
        run: &[enroll_journal::Entry],
        key: &mut DeskKey,
    ) -> Result<(), BulkError> {
        let password = self.opts.password.clone();
        let serial = key.serial;
        let session = OathSession::select(&mut *key.transport)
            .and_then(|mut s| s.unlock_identified(serial, password.as_ref()).map(|()| s));
        match session {
            Ok(mut s) => self.recover_one(run, Some(&mut s)).await,
            // A key that will not open or unlock cannot show its credential.
            Err(_) => self.recover_one(run, None).await,
        }
    }

    async fn recover_one(
        &mut self,
        run: &[enroll_journal::Entry],
        key: Option<&mut OathSession<'_>>,
    ) -> Result<(), BulkError> {
        let user = run.first().map(|e| e.user.clone()).unwrap_or_default();
        let iam = self.iam(&user);
        let caller = iam.account_id().await?;
        let r = recover_run(
            iam,
            &caller,
            run,
            key,
            &mut self.j.enroll,
            &mut *self.progress,
        )
        .await
        .map_err(|e| match e {
            crate::undo::recover::RecoverError::Aws(a) => BulkError::Aws(a),
            crate::undo::recover::RecoverError::Journal(j) => BulkError::Journal(j),
        })?;
        if r.outcome == Outcome::Refused {
            return Err(BulkError::UndoRefused {
                user: r.user,
                why: r.remaining.join("; "),
            });
        }
        if r.outcome == Outcome::Finished {
            let entry = st_last(run);
            let touch = self
                .rows
                .iter()
                .find(|row| row.user == r.user)
                .map(|row| self.touch_of(row))
                .unwrap_or(false);
            self.mark(Mark::AlreadyDone, Some(&r.user), |l| {
                l.key_serial = r.key_serial;
                l.device_serial = r.device_serial.clone();
                l.credential_id = r.credential_id.clone();
                l.account_id = entry.and_then(|e| e.account_id.clone());
                l.touch = Some(touch);
                l.detail = Some("completed, found by resume".into());
            })?;
            if let Some(s) = r.key_serial {
                self.used.insert(s, r.user.clone());
            }
            self.results.insert(
                r.user.clone(),
                UserResult {
                    user: r.user.clone(),
                    account: entry.and_then(|e| e.account_id.clone()),
                    key_serial: r.key_serial,
                    device_arn: r.device_serial.clone(),
                    credential_id: r.credential_id.clone(),
                    touch,
                    status: Status::AlreadyEnrolled,
                    error: None,
                },
            );
        }
        self.progress.event(Event::Recovered {
            user: r.user,
            outcome: r.outcome,
            actions: r.actions,
            remaining: r.remaining,
        });
        Ok(())
    }

    /// `--create-users`: creates the user if IAM has none (tagged as made by
    /// this run) and adds it to its groups. False: the user failed.
    async fn ensure_user(&mut self, row: &Row) -> Result<bool, BulkError> {
        let created = match self.accounts.for_row(row).get_user(&row.user).await {
            Ok(_) => false,
            Err(AwsError::NoSuchEntity { .. }) => {
                let tags = vec![
                    (crate::enroll::TAG_MANAGED.to_string(), "true".to_string()),
                    (TAG_BULK_RUN.to_string(), self.run.clone()),
                ];
                match self
                    .accounts
                    .for_row(row)
                    .create_user(&row.user, &tags)
                    .await
                {
                    // A lost answer whose retry found the user: it exists now.
                    Ok(_) | Err(AwsError::EntityAlreadyExists { .. }) => true,
                    Err(e) => {
                        return self
                            .user_failed(row, format!("cannot create user {}: {e}", row.user))
                    }
                }
            }
            Err(e) => return self.user_failed(row, e.to_string()),
        };
        // Idempotent: also finishes the groups of a user created by a killed run.
        for g in &row.groups {
            if let Err(e) = self
                .accounts
                .for_row(row)
                .add_user_to_group(&row.user, g)
                .await
            {
                return self.user_failed(row, format!("cannot add {} to group {g}: {e}", row.user));
            }
        }
        if created {
            self.mark(Mark::UserCreated, Some(&row.user), |l| {
                l.detail = Some(row.groups.join(";"));
            })?;
            self.progress.event(Event::UserCreated {
                user: row.user.clone(),
                groups: row.groups.clone(),
            });
        }
        Ok(true)
    }

    fn user_failed(&mut self, row: &Row, error: String) -> Result<bool, BulkError> {
        let touch = self.touch_of(row);
        self.mark(Mark::Failed, Some(&row.user), |l| {
            l.detail = Some(error.clone())
        })?;
        self.progress.event(Event::Failed {
            user: row.user.clone(),
            error: error.clone(),
            retry: false,
        });
        self.results.insert(
            row.user.clone(),
            UserResult {
                user: row.user.clone(),
                account: None,
                key_serial: None,
                device_arn: None,
                credential_id: None,
                touch,
                status: Status::Failed,
                error: Some(error),
            },
        );
        Ok(false)
    }

    /// Whether IAM already holds every device this bulk run was to enroll
    /// for the user (those it holds count as done).
    async fn done_in_iam(&mut self, row: &Row) -> Result<bool, BulkError> {
        let iam = self.accounts.for_row(row);
        for d in iam.list_mfa_devices(&row.user).await.unwrap_or_default() {
            if self.known_device(&row.user, &d.serial) {
                continue;
            }
            let tags = iam.mfa_device_tags(&d.serial).await.unwrap_or_default();
            if tags
                .iter()
                .any(|(k, v)| k == TAG_BULK_RUN && *v == self.run)
            {
                self.bank(&row.user);
                let touch = self.touch_of(row);
                self.mark(Mark::AlreadyDone, Some(&row.user), |l| {
                    l.device_serial = Some(d.serial.clone());
                    l.touch = Some(touch);
                    l.detail = Some("IAM holds a device tagged for this run".into());
                })?;
                self.progress.event(Event::AlreadyEnrolled {
                    user: row.user.clone(),
                    device_arn: Some(d.serial.clone()),
                });
                self.results.insert(
                    row.user.clone(),
                    UserResult {
                        user: row.user.clone(),
                        account: None,
                        key_serial: None,
                        device_arn: Some(d.serial),
                        credential_id: None,
                        touch,
                        status: Status::AlreadyEnrolled,
                        error: None,
                    },
                );
            }
        }
        Ok(self.settled(row))
    }

    /// Why this key must not be used for `row`, if it must not.
    fn refuse(&self, row: &Row, serial: Option<u32>) -> Option<String> {
        if let Some(s) = serial {
            if let Some(u) = self.used.get(&s) {
                return Some(format!(
                    "key {s} was already used in this run (for {u}): insert another key"
                ));
            }
            if let Some(other) = self
                .rows
                .iter()
                .find(|r| r.key_serial == Some(s) && r.user != row.user)
            {
                return Some(format!(
                    "key {s} is reserved for {} (manifest line {}): insert another key",
                    other.user, other.line
                ));
            }
        }
        match (row.key_serial, serial) {
            // The pin is the user's first key; the backup is any other.
            (Some(want), got) if !self.backup && got != Some(want) => Some(format!(
                "{} must be enrolled on key {want}: insert that key",
                row.user
            )),
            _ => None,
        }
    }

    fn skip(&mut self, reader: &str, serial: Option<u32>, reason: String) -> Result<(), BulkError> {
        self.mark(Mark::KeySkipped, None, |l| {
            l.key_serial = serial;
            l.detail = Some(reason.clone());
        })?;
        self.progress.event(Event::KeySkipped {
            reader: reader.to_string(),
            serial,
            reason,
        });
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
            if let Some(reason) = self.refuse(row, key.serial) {
                let serial = key.serial;
                drop(key);
                self.skip(&reader, serial, reason)?;
                continue;
            }
            // Half-done enrollments on this very key (pulled earlier): finish
            // or undo them first, so the key holds no stale credential.
            if let Some(serial) = key.serial {
                let entries = self.j.enroll.entries()?;
                for run in enroll_journal::unfinished(&entries) {
                    if run.iter().any(|e| e.key_serial == Some(serial)) {
                        self.recover_with_key(&run, &mut key).await?;
                    }
                }
                if let Some(u) = self.used.get(&serial).cloned() {
                    drop(key);
                    self.skip(
                        &reader,
                        Some(serial),
                        format!(
                            "key {serial} holds {u}'s enrollment of this run: insert another key"
                        ),
                    )?;
                    continue;
                }
                if self.results.contains_key(&row.user) {
                    // Recovery found this user's enrollment complete.
                    drop(key);
                    self.progress.event(Event::RemoveKey {
                        reader: reader.clone(),
                        serial: Some(serial),
                    });
                    self.desk.wait_for_removal(&reader)?;
                    return Ok(true);
                }
            }
            let outcome = self.enroll_on(row, &mut key, t0).await?;
            let serial = key.serial;
            drop(key);
            self.progress.event(Event::RemoveKey {
                reader: reader.clone(),
                serial,
            });
            self.desk.wait_for_removal(&reader)?;
            if outcome {
                return Ok(true);
            }
        }
    }

    /// One enrollment attempt. True: the user is settled (enrolled or
    /// failed for good); false: retry with another key.
    async fn enroll_on(
        &mut self,
        row: &Row,
        key: &mut DeskKey,
        t0: Instant,
    ) -> Result<bool, BulkError> {
        let touch = self.touch_of(row);
        self.mark(Mark::Begin, Some(&row.user), |l| {
            l.key_serial = key.serial;
            l.touch = Some(touch);
        })?;
        let eopts = EnrollOptions {
            user: row.user.clone(),
            device_name: row.device_name.clone(),
            path: self.opts.path.clone(),
            touch,
            account_label: None,
            tags: vec![(TAG_BULK_RUN.to_string(), self.run.clone())],
            force: false,
        };
        let eopts = self.for_backup(eopts);
        let iam = self.accounts.for_row(row);
        // The password goes only to a key that told its serial (and passed
        // `refuse`, so a pinned serial matched).
        let serial = key.serial;
        let result = match OathSession::select(&mut *key.transport).and_then(|mut s| {
            s.unlock_identified(serial, self.opts.password.as_ref())
                .map(|()| s)
        }) {
            Err(e) => Err(EnrollError::from(e)),
            Ok(mut session) => {
                let target = KeyTarget {
                    session: &mut session,
                    serial: key.serial,
                    capacity: key.capacity,
                };
                // Bulk shows steps and touches; the rest is in the result.
                let progress = &mut *self.progress;
                let mut progress = |e: Event| {
                    if matches!(e, Event::Step { .. } | Event::Touch { .. }) {
                        progress.event(e)
                    }
                };
                enroll(iam, target, &eopts, &mut self.j.enroll, &mut progress).await
            }
        };
        match result {
            Ok(r) => {
                self.mark(Mark::Enrolled, Some(&row.user), |l| {
                    l.key_serial = r.key_serial;
                    l.account_id = Some(r.account_id.clone());
                    l.device_serial = Some(r.device_serial.clone());
                    l.credential_id = Some(r.credential_id.clone());
                    l.touch = Some(touch);
                })?;
                if let Some(s) = r.key_serial {
                    self.used.insert(s, row.user.clone());
                }
                self.progress.event(Event::Enrolled {
                    user: row.user.clone(),
                    key_serial: r.key_serial,
                    device_arn: r.device_serial.clone(),
                    credential_id: r.credential_id.clone(),
                    ms: t0.elapsed().as_secs_f64() * 1e3,
                });
                self.results.insert(
                    row.user.clone(),
                    UserResult {
                        user: row.user.clone(),
                        account: Some(r.account_id),
                        key_serial: r.key_serial,
                        device_arn: Some(r.device_serial),
                        credential_id: Some(r.credential_id),
                        touch,
                        status: Status::Enrolled,
                        error: None,
                    },
                );
                Ok(true)
            }
            Err(e) => {
                let retry = transport_lost(&e);
                let error = e.to_string();
                self.mark(Mark::Failed, Some(&row.user), |l| {
                    l.key_serial = key.serial;
                    l.detail = Some(error.clone());
                })?;
                self.progress.event(Event::Failed {
                    user: row.user.clone(),
                    error: error.clone(),
                    retry,
                });
                if !retry {
                    self.results.insert(
                        row.user.clone(),
                        UserResult {
                            user: row.user.clone(),
                            account: None,
                            key_serial: key.serial,
                            device_arn: None,
                            credential_id: None,
                            touch,
                            status: Status::Failed,
                            error: Some(error),
                        },
                    );
                }
                Ok(!retry)
            }
        }
    }
}

/// A user's keys: the first, then (with `keys` 2) a backup key, kept apart
/// from the single-key loop above.
impl<'a, I: IamApi, D: Desk> Loop<'a, I, D> {
    fn keys_of(&self, row: &Row) -> usize {
        usize::from(row.keys.unwrap_or(self.opts.keys).max(1))
    }

    /// Keys of `row` enrolled so far (this run or, resumed, an earlier one).
    fn keys_done(&self, row: &Row) -> usize {
        let now = self
            .results
            .get(&row.user)
            .is_some_and(|r| matches!(r.status, Status::Enrolled | Status::AlreadyEnrolled));
        self.earlier.get(&row.user).map_or(0, Vec::len) + usize::from(now)
    }

    /// Nothing more to do for `row`: all its keys are enrolled, or it failed.
    fn settled(&self, row: &Row) -> bool {
        let failed = self
            .results
            .get(&row.user)
            .is_some_and(|r| r.status == Status::Failed);
        failed || self.keys_done(row) >= self.keys_of(row)
    }

    /// Moves the user's enrolled key out of the way of the next one.
    fn bank(&mut self, user: &str) {
        let done = self
            .results
            .get(user)
            .is_some_and(|r| matches!(r.status, Status::Enrolled | Status::AlreadyEnrolled));
        if done {
            if let Some(r) = self.results.remove(user) {
                self.earlier.entry(user.to_string()).or_default().push(r);
            }
        }
    }

    fn known_device(&self, user: &str, serial: &str) -> bool {
        let known = |r: &UserResult| r.device_arn.as_deref() == Some(serial);
        self.results.get(user).is_some_and(known)
            || self.earlier.get(user).is_some_and(|v| v.iter().any(known))
    }

    /// Enrolls `row` on each of its keys in turn: the second is a backup,
    /// any key not used in this run. False: interrupted.
    async fn enroll_keys(&mut self, row: &Row, n: usize, of: usize) -> Result<bool, BulkError> {
        while !self.settled(row) {
            self.backup = self.keys_done(row) > 0;
            self.bank(&row.user);
            let go = self.enroll_user(row, n, of).await;
            self.backup = false;
            if !go? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A backup's device gets a name of its own when the row names one.
    fn for_backup(&self, mut eopts: EnrollOptions) -> EnrollOptions {
        if self.backup {
            eopts.device_name = eopts.device_name.map(|n| format!("{n}-backup"));
        }
        eopts
    }

    /// The report lines of `row`: one per key enrolled (or failed), and
    /// `pending` for keys not reached.
    fn results_of(&mut self, row: &Row) -> Vec<UserResult> {
        let mut out = self.earlier.remove(&row.user).unwrap_or_default();
        out.extend(self.results.remove(&row.user));
        let failed = out.iter().any(|r| r.status == Status::Failed);
        if !failed && out.len() < self.keys_of(row) {
            out.push(UserResult {
                user: row.user.clone(),
                account: None,
                key_serial: None,
                device_arn: None,
                credential_id: None,
                touch: self.touch_of(row),
                status: Status::Pending,
                error: None,
            });
        }
        out
    }
}

fn st_last(run: &[enroll_journal::Entry]) -> Option<&enroll_journal::Entry> {
    run.iter().rev().find(|e| e.account_id.is_some())
}
