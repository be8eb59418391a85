//! A bulk run's books: who is done, which key holds whom, and the bulk
//! journal's lines. One `Book` per run, kept by one thread (the desk loop,
//! or the tray's coordinator), which is the bulk journal's only writer:
//! its lines are whole and in the order that thread decided things. The
//! enrollments themselves (one per key, several at once in tray mode) write
//! the enrollment journal beside it.

use super::desk::DeskKey;
use super::journal::{prior, Journals, Line, Mark};
use super::manifest::Row;
use super::{
    recover_on_key, Accounts, BulkError, BulkOptions, Status, Summary, UserResult, TAG_BULK_RUN,
};
use crate::aws::{AwsError, IamApi};
use crate::credential::unix_now;
use crate::enroll::{EnrollError, EnrollOptions, EnrollReport};
use crate::oath::OathError;
use crate::progress::{Event, Outcome, Progress};
use crate::undo::journal::{self as enroll_journal, Entry, JournalError};
use crate::undo::recover::RecoveredRun;
use std::collections::HashMap;

pub(crate) struct Book<'a, I> {
    pub accounts: &'a Accounts<'a, I>,
    pub rows: &'a [Row],
    pub opts: &'a BulkOptions,
    pub j: &'a Journals,
    pub run: String,
    pub results: HashMap<String, UserResult>,
    /// Key serial → the user it was enrolled for in this run.
    pub used: HashMap<u32, String>,
    /// The enrollments of users' first keys, once their backup key is next.
    pub earlier: HashMap<String, Vec<UserResult>>,
    /// A resumed run (an earlier run's lines were replayed).
    pub resumed: bool,
}

/// What one enrollment attempt settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Enrolled, or failed for good.
    Settled,
    /// The key stopped answering (pulled out): the user needs a key again.
    Retry,
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

impl<'a, I: IamApi> Book<'a, I> {
    /// A new run (its `start` line written), or the run `resume_lines` hold.
    pub(crate) fn open(
        accounts: &'a Accounts<'a, I>,
        rows: &'a [Row],
        opts: &'a BulkOptions,
        j: &'a Journals,
        resume_lines: &[Line],
    ) -> Result<Self, JournalError> {
        let mut book = Book {
            accounts,
            rows,
            opts,
            j,
            run: prior(resume_lines).unwrap_or_else(enroll_journal::new_run_id),
            results: HashMap::new(),
            used: HashMap::new(),
            earlier: HashMap::new(),
            resumed: !resume_lines.is_empty(),
        };
        if book.resumed {
            book.replay(resume_lines);
        } else {
            book.mark(Mark::Start, None, |line| {
                line.detail = Some(format!("{} users", rows.len()))
            })?;
        }
        Ok(book)
    }

    /// (position in the manifest, row) of the users still to do.
    pub(crate) fn pending(&self) -> Vec<(usize, &'a Row)> {
        let rows: &'a [Row] = self.rows;
        rows.iter()
            .enumerate()
            .filter(|(_, r)| !self.settled(r))
            .map(|(i, r)| (i + 1, r))
            .collect()
    }

    /// The IAM client for `user`'s row.
    pub(crate) fn iam(&self, user: &str) -> &'a I {
        match self.rows.iter().find(|r| r.user == user) {
            Some(row) => self.accounts.for_row(row),
            None => self.accounts.default,
        }
    }

    pub(crate) fn mark(
        &self,
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

    pub(crate) fn touch_of(&self, row: &Row) -> bool {
        row.touch.unwrap_or(self.opts.touch)
    }

    /// The enrollment options of `row` in this run (a backup key's device
    /// gets a name of its own when the row names one).
    pub(crate) fn enroll_options(&self, row: &Row, backup: bool) -> EnrollOptions {
        let device_name = match &row.device_name {
            Some(n) if backup => Some(format!("{n}-backup")),
            n => n.clone(),
        };
        EnrollOptions {
            user: row.user.clone(),
            device_name,
            path: self.opts.path.clone(),
            touch: self.touch_of(row),
            account_label: None,
            tags: vec![(TAG_BULK_RUN.to_string(), self.run.clone())],
            force: false,
        }
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

    /// The unfinished enrollments of the enrollment journal.
    pub(crate) fn unfinished(&self) -> Result<Vec<Vec<Entry>>, JournalError> {
        Ok(enroll_journal::unfinished(&self.j.enroll.entries()?))
    }

    /// The unfinished enrollments that wrote (or may have) to key `serial`.
    pub(crate) fn unfinished_on(&self, serial: u32) -> Result<Vec<Vec<Entry>>, JournalError> {
        Ok(self
            .unfinished()?
            .into_iter()
            .filter(|run| run.iter().any(|e| e.key_serial == Some(serial)))
            .collect())
    }

    /// Finishes or undoes the enrollments an earlier run left half done:
    /// those that never wrote to a key at once, the others with their key
    /// if `open` finds it in a reader (else when it is next inserted).
    pub(crate) async fn recover_all(
        &mut self,
        open: &mut dyn FnMut(u32) -> Option<DeskKey>,
        progress: &mut dyn Progress,
    ) -> Result<(), BulkError> {
        for run in self.unfinished()? {
            let Some(st) = crate::undo::recover::state(&run) else {
                continue;
            };
            let mut key = match (st.written(), st.made.key_serial) {
                (false, _) => None,
                (true, Some(serial)) => match open(serial) {
                    Some(k) => Some(k),
                    None => continue,
                },
                (true, None) => continue,
            };
            let iam = self.iam(&st.made.user);
            let password = self.opts.password.as_ref();
            let r =
                recover_on_key(iam, &run, key.as_mut(), password, &self.j.enroll, progress).await?;
            self.recovered(r, &run, None, progress)?;
        }
        Ok(())
    }

    /// Books what recovering an unfinished enrollment did (found complete:
    /// the user counts as enrolled by this run, on that key).
    pub(crate) fn recovered(
        &mut self,
        r: RecoveredRun,
        run: &[Entry],
        reader: Option<&str>,
        progress: &mut dyn Progress,
    ) -> Result<(), BulkError> {
        if r.outcome == Outcome::Refused {
            return Err(BulkError::UndoRefused {
                user: r.user,
                why: r.remaining.join("; "),
            });
        }
        if r.outcome == Outcome::Finished {
            self.found_complete(&r, run)?;
        }
        let mut e = Event::Recovered {
            user: r.user,
            outcome: r.outcome,
            actions: r.actions,
            remaining: r.remaining,
            reader: None,
        };
        if let Some(at) = reader {
            e = e.at_reader(at);
        }
        progress.event(e);
        Ok(())
    }

    fn found_complete(&mut self, r: &RecoveredRun, run: &[Entry]) -> Result<(), BulkError> {
        let account = run.iter().rev().find_map(|e| e.account_id.clone());
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
            l.account_id = account.clone();
            l.touch = Some(touch);
            l.detail = Some("completed, found by resume".into());
        })?;
        if let Some(s) = r.key_serial {
            self.used.insert(s, r.user.clone());
        }
        // A user's other key, enrolled already, stays in the report.
        self.bank(&r.user);
        self.results.insert(
            r.user.clone(),
            UserResult {
                user: r.user.clone(),
                account,
                key_serial: r.key_serial,
                device_arn: r.device_serial.clone(),
                credential_id: r.credential_id.clone(),
                touch,
                status: Status::AlreadyEnrolled,
                error: None,
            },
        );
        Ok(())
    }

    /// `--create-users`: creates the user if IAM has none (tagged as made by
    /// this run) and adds it to its groups. False: the user failed.
    pub(crate) async fn ensure_user(
        &mut self,
        row: &Row,
        progress: &mut dyn Progress,
    ) -> Result<bool, BulkError> {
        let iam = self.accounts.for_row(row);
        let created = match iam.get_user(&row.user).await {
            Ok(_) => false,
            Err(AwsError::NoSuchEntity { .. }) => {
                let tags = vec![
                    (crate::enroll::TAG_MANAGED.to_string(), "true".to_string()),
                    (TAG_BULK_RUN.to_string(), self.run.clone()),
                ];
                match iam.create_user(&row.user, &tags).await {
                    // A lost answer whose retry found the user: it exists now.
                    Ok(_) | Err(AwsError::EntityAlreadyExists { .. }) => true,
                    Err(e) => {
                        let why = format!("cannot create user {}: {e}", row.user);
                        return self.user_failed(row, why, progress);
                    }
                }
            }
            Err(e) => return self.user_failed(row, e.to_string(), progress),
        };
        // Idempotent: also finishes the groups of a user created by a killed run.
        for g in &row.groups {
            if let Err(e) = iam.add_user_to_group(&row.user, g).await {
                let why = format!("cannot add {} to group {g}: {e}", row.user);
                return self.user_failed(row, why, progress);
            }
        }
        if created {
            self.mark(Mark::UserCreated, Some(&row.user), |l| {
                l.detail = Some(row.groups.join(";"));
            })?;
            progress.event(Event::UserCreated {
                user: row.user.clone(),
                groups: row.groups.clone(),
            });
        }
        Ok(true)
    }

    fn user_failed(
        &mut self,
        row: &Row,
        error: String,
        progress: &mut dyn Progress,
    ) -> Result<bool, BulkError> {
        let touch = self.touch_of(row);
        self.mark(Mark::Failed, Some(&row.user), |l| {
            l.detail = Some(error.clone())
        })?;
        progress.event(Event::Failed {
            user: row.user.clone(),
            error: error.clone(),
            retry: false,
            reader: None,
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
    pub(crate) async fn done_in_iam(
        &mut self,
        row: &Row,
        progress: &mut dyn Progress,
    ) -> Result<bool, BulkError> {
        let iam = self.accounts.for_row(row);
        for d in iam.list_mfa_devices(&row.user).await.unwrap_or_default() {
            if self.known_device(&row.user, &d.serial) {
                continue;
            }
            let tags = iam.mfa_device_tags(&d.serial).await.unwrap_or_default();
            if !tags
                .iter()
                .any(|(k, v)| k == TAG_BULK_RUN && *v == self.run)
            {
                continue;
            }
            self.bank(&row.user);
            let touch = self.touch_of(row);
            self.mark(Mark::AlreadyDone, Some(&row.user), |l| {
                l.device_serial = Some(d.serial.clone());
                l.touch = Some(touch);
                l.detail = Some("IAM holds a device tagged for this run".into());
            })?;
            progress.event(Event::AlreadyEnrolled {
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
        Ok(self.settled(row))
    }

    /// Why this key must not be used for `row` (`backup`: for the user's
    /// backup key), if it must not.
    pub(crate) fn refuse(&self, row: &Row, serial: Option<u32>, backup: bool) -> Option<String> {
        if let Some(s) = serial {
            if let Some(u) = self.used.get(&s) {
                return Some(format!(
                    "key {s} was already used in this run (for {u}): insert another key"
                ));
            }
            if let Some(other) = self.pinned_to(s).filter(|r| r.user != row.user) {
                return Some(format!(
                    "key {s} is reserved for {} (manifest line {}): insert another key",
                    other.user, other.line
                ));
            }
        }
        match (row.key_serial, serial) {
            // The pin is the user's first key; the backup is any other.
            (Some(want), got) if !backup && got != Some(want) => Some(format!(
                "{} must be enrolled on key {want}: insert that key",
                row.user
            )),
            _ => None,
        }
    }

    /// The row pinned to key `serial`, if any.
    pub(crate) fn pinned_to(&self, serial: u32) -> Option<&'a Row> {
        let rows: &'a [Row] = self.rows;
        rows.iter().find(|r| r.key_serial == Some(serial))
    }

    /// A key not used (the journal says why).
    pub(crate) fn skipped(&self, serial: Option<u32>, reason: &str) -> Result<(), JournalError> {
        self.mark(Mark::KeySkipped, None, |l| {
            l.key_serial = serial;
            l.detail = Some(reason.to_string());
        })
    }

    /// An enrollment of `row` on `serial` begins.
    pub(crate) fn begin(&self, row: &Row, serial: Option<u32>) -> Result<(), JournalError> {
        let touch = self.touch_of(row);
        self.mark(Mark::Begin, Some(&row.user), |l| {
            l.key_serial = serial;
            l.touch = Some(touch);
        })
    }

    /// Books one enrollment attempt of `row` on key `serial` (`ms`: from the
    /// key's insertion), says so, and whether the user is settled.
    pub(crate) fn attempted(
        &mut self,
        row: &Row,
        serial: Option<u32>,
        result: Result<EnrollReport, EnrollError>,
        ms: f64,
        reader: &str,
        progress: &mut dyn Progress,
    ) -> Result<Attempt, BulkError> {
        match result {
            Ok(r) => {
                self.enrolled(row, r, ms, reader, progress)?;
                Ok(Attempt::Settled)
            }
            Err(e) => self.failed(row, serial, &e, reader, progress),
        }
    }

    fn enrolled(
        &mut self,
        row: &Row,
        r: EnrollReport,
        ms: f64,
        reader: &str,
        progress: &mut dyn Progress,
    ) -> Result<(), BulkError> {
        let touch = self.touch_of(row);
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
        progress.event(Event::Enrolled {
            user: row.user.clone(),
            key_serial: r.key_serial,
            device_arn: r.device_serial.clone(),
            credential_id: r.credential_id.clone(),
            ms,
            reader: Some(reader.to_string()),
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
        Ok(())
    }

    fn failed(
        &mut self,
        row: &Row,
        serial: Option<u32>,
        e: &EnrollError,
        reader: &str,
        progress: &mut dyn Progress,
    ) -> Result<Attempt, BulkError> {
        let retry = transport_lost(e);
        let error = e.to_string();
        self.mark(Mark::Failed, Some(&row.user), |l| {
            l.key_serial = serial;
            l.detail = Some(error.clone());
        })?;
        progress.event(Event::Failed {
            user: row.user.clone(),
            error: error.clone(),
            retry,
            reader: Some(reader.to_string()),
        });
        if retry {
            return Ok(Attempt::Retry);
        }
        self.results.insert(
            row.user.clone(),
            UserResult {
                user: row.user.clone(),
                account: None,
                key_serial: serial,
                device_arn: None,
                credential_id: None,
                touch: self.touch_of(row),
                status: Status::Failed,
                error: Some(error),
            },
        );
        Ok(Attempt::Settled)
    }

    /// The run's end: an interruption is journaled and said; every row's
    /// results (one per key), in manifest order (keys not reached are
    /// pending).
    pub(crate) fn finish(
        mut self,
        interrupted: bool,
        progress: &mut dyn Progress,
    ) -> Result<Summary, BulkError> {
        if interrupted {
            self.mark(Mark::Interrupted, None, |_| {})?;
            progress.event(Event::Interrupted);
        }
        let rows: &'a [Row] = self.rows;
        let results = rows.iter().flat_map(|r| self.results_of(r)).collect();
        Ok(Summary {
            bulk_run: self.run,
            results,
            interrupted,
        })
    }
}

/// A user's keys: the first, then (with `keys` 2) a backup key.
impl<'a, I: IamApi> Book<'a, I> {
    pub(crate) fn keys_of(&self, row: &Row) -> usize {
        usize::from(row.keys.unwrap_or(self.opts.keys).max(1))
    }

    /// Keys of `row` enrolled so far (this run or, resumed, an earlier one).
    pub(crate) fn keys_done(&self, row: &Row) -> usize {
        let now = self
            .results
            .get(&row.user)
            .is_some_and(|r| matches!(r.status, Status::Enrolled | Status::AlreadyEnrolled));
        self.earlier.get(&row.user).map_or(0, Vec::len) + usize::from(now)
    }

    /// Nothing more to do for `row`: all its keys are enrolled, or it failed.
    pub(crate) fn settled(&self, row: &Row) -> bool {
        let failed = self
            .results
            .get(&row.user)
            .is_some_and(|r| r.status == Status::Failed);
        failed || self.keys_done(row) >= self.keys_of(row)
    }

    /// Moves the user's enrolled key out of the way of the next one.
    pub(crate) fn bank(&mut self, user: &str) {
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
