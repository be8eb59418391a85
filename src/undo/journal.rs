//! Journals: append-only JSON lines, each flushed and synced before the
//! step it records is acted on further, file mode 0600. An enrollment's
//! lines hold names, ARNs and a non-secret check value of the seed (a
//! [`Proof`]), never a seed or a code, so that a run killed mid-way
//! (SIGKILL, power loss) can be finished or undone by `mfakey recover`.
//!
//! What a journal says decides what mfakey deletes, so a journal is only
//! trusted when this user alone could have written it: a symbolic link, a
//! file owned by someone else, or one that group or others may write is
//! refused. An open journal is locked (`flock`): enrollments share it;
//! `recover`, `cleanup --delete` and a bulk run take it alone, so they never
//! act on a run that is still in flight.

use crate::credential::Proof;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// What happened, in the order an enrollment does it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Event {
    /// Preflight passed; nothing created yet (the device may exist from
    /// here on: a create whose answer was lost).
    Begin,
    /// The virtual MFA device exists in IAM.
    Created,
    /// The credential is about to be written: from here on it may be on the
    /// key. The line carries the seed's [`Proof`] and where it goes.
    Writing,
    /// The key took the write.
    Written,
    /// EnableMFADevice succeeded.
    Enabled,
    /// A replacement is about to be written over the credential it replaces.
    Replacing,
    /// The enrollment is complete and verified.
    Done,
    /// A rollback step succeeded: `detail` says which.
    Undone,
    /// Everything the run created is gone again.
    RolledBack,
    /// A rollback step failed: something is left (see `detail`).
    RollbackFailed,
}

/// One journal line of an enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// Unix seconds.
    pub ts: u64,
    /// One enrollment: all its lines share this id; its device carries it
    /// as the tag `mfakey:run`.
    pub run: String,
    pub event: Event,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The virtual MFA device's name (known before it is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// Its ARN (known once created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_serial: Option<u32>,
    /// The id the credential has in the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    /// Where the seed is written first, when not under `credential_id`: the
    /// temporary id beside a credential being replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_as: Option<String>,
    /// The seed's check value, from `writing` on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Proof>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum JournalError {
    #[error("cannot write the journal {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the journal {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("journal {path}, line {line}: not a journal entry ({message})")]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("the journal {path} {why}: mfakey only trusts a journal this user alone can write (it decides what gets deleted); move it aside and pass --journal with a file in a private folder")]
    Unsafe { path: PathBuf, why: String },
    #[error("the journal {path} is in use by another mfakey ({holder}); wait for it to finish and run this again")]
    InUse { path: PathBuf, holder: &'static str },
    #[error("the journal {path} already exists; a new run starts a new journal: remove it (after `mfakey recover --journal` if it holds unfinished work) or choose another --journal")]
    Exists { path: PathBuf },
}

impl crate::error::Classify for JournalError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            JournalError::Unsafe { .. } => Kind::JournalUnsafe,
            JournalError::InUse { .. } => Kind::JournalInUse,
            JournalError::Exists { .. } => Kind::JournalExists,
            JournalError::Write { .. }
            | JournalError::Read { .. }
            | JournalError::Corrupt { .. } => Kind::Journal,
        }
    }
}

/// The default journal: `$XDG_STATE_HOME/mfakey/journal.jsonl`, else
/// `~/.local/state/mfakey/journal.jsonl`.
pub(crate) fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("mfakey").join("journal.jsonl")
}

/// How a journal is held while open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    /// Enrollments: any number at once.
    Shared,
    /// `recover`, `cleanup --delete`, a bulk run: nobody else.
    Exclusive,
}

/// An open, locked journal. Its methods take `&self`: one journal is
/// shared by the enrollments a tray runs at once, and every append is one
/// whole line written under the journal's own mutex (one writer at a time).
#[derive(Debug)]
pub(crate) struct Journal {
    file: std::sync::Mutex<File>,
    path: PathBuf,
}

impl Journal {
    /// Opens the journal at `path` for reading and appending, creating it
    /// (mode 0600, its folder 0700) when missing; refuses an unsafe one;
    /// takes `lock` without waiting.
    pub(crate) fn open(path: &Path, lock: Lock) -> Result<Self, JournalError> {
        Self::open_with(path, lock, false)
    }

    /// Like [`Journal::open`], for a journal that must not exist yet.
    pub(crate) fn create_new(path: &Path, lock: Lock) -> Result<Self, JournalError> {
        Self::open_with(path, lock, true)
    }

    fn open_with(path: &Path, lock: Lock, fresh: bool) -> Result<Self, JournalError> {
        let err = |source| JournalError::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
        }
        let mut opts = OpenOptions::new();
        opts.read(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW);
        let (file, created) = if fresh {
            match opts.create_new(true).open(path) {
                Ok(f) => (f, true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(JournalError::Exists {
                        path: path.to_path_buf(),
                    })
                }
                Err(e) => return Err(open_error(path, e)),
            }
        } else {
            match opts.clone().open(path) {
                Ok(f) => (f, false),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    match opts.create_new(true).open(path) {
                        Ok(f) => (f, true),
                        // Someone made it between the two calls: judge theirs.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            (opts.open(path).map_err(|e| open_error(path, e))?, false)
                        }
                        Err(e) => return Err(open_error(path, e)),
                    }
                }
                Err(e) => return Err(open_error(path, e)),
            }
        };
        check_safe(&file, path)?;
        let j = Journal {
            file: std::sync::Mutex::new(file),
            path: path.to_path_buf(),
        };
        j.lock(lock)?;
        if created {
            // The new name must survive a power loss as the lines will.
            sync_dir(dir.unwrap_or(Path::new("."))).map_err(err)?;
        } else {
            j.end_torn_line()?;
        }
        Ok(j)
    }

    /// The file, for one whole operation (a poisoned lock only means a
    /// thread panicked between two whole lines: the file is still good).
    fn file(&self) -> std::sync::MutexGuard<'_, File> {
        self.file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self, lock: Lock) -> Result<(), JournalError> {
        let op = match lock {
            Lock::Shared => libc::LOCK_SH,
            Lock::Exclusive => libc::LOCK_EX,
        };
        // SAFETY: flock on a file descriptor this struct owns.
        let rc = unsafe { libc::flock(self.file().as_raw_fd(), op | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(JournalError::InUse {
                path: self.path.clone(),
                holder: match lock {
                    Lock::Shared => "`recover`, `cleanup --delete` or a bulk run is working on it",
                    Lock::Exclusive => "an enrollment, `recover` or a bulk run is working on it",
                },
            });
        }
        Err(self.write_error(e))
    }

    /// A last line without its newline was torn by a crash: end it, so the
    /// next line starts on a line of its own (readers skip the torn one).
    fn end_torn_line(&self) -> Result<(), JournalError> {
        let mut file = self.file();
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            return Ok(());
        }
        let mut last = [0u8; 1];
        let read = (|| {
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)
        })();
        read.map_err(|source| JournalError::Read {
            path: self.path.clone(),
            source,
        })?;
        if last[0] != b'\n' {
            self.write_durably(&mut file, b"\n")?;
        }
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and makes it durable before returning.
    pub(crate) fn append(&self, entry: &Entry) -> Result<(), JournalError> {
        self.append_line(entry)
    }

    /// Appends one entry that no action waits on: it becomes durable with
    /// the next [`Journal::append`] (a sync writes out every line before
    /// it), which comes before the enrollment acts again outside the
    /// process. A crash may lose it, and `recover` does not need it (it
    /// reads IAM and the key; `writing` holds the proof).
    pub(crate) fn note(&self, entry: &Entry) -> Result<(), JournalError> {
        let line = self.encode(entry)?;
        let mut file = self.file();
        file.write_all(line.as_bytes())
            .map_err(|e| self.write_error(e))
    }

    /// Appends any serializable line (the bulk journal's) and makes it
    /// durable: one `write` of the whole line and its sync, under the lock.
    pub(crate) fn append_line<T: Serialize>(&self, entry: &T) -> Result<(), JournalError> {
        let line = self.encode(entry)?;
        let mut file = self.file();
        self.write_durably(&mut file, line.as_bytes())
    }

    /// One journal line: the entry's JSON and its newline.
    fn encode<T: Serialize>(&self, entry: &T) -> Result<String, JournalError> {
        let mut line =
            serde_json::to_string(entry).map_err(|e| self.write_error(std::io::Error::other(e)))?;
        line.push('\n');
        Ok(line)
    }

    fn write_error(&self, source: std::io::Error) -> JournalError {
        JournalError::Write {
            path: self.path.clone(),
            source,
        }
    }

    fn write_durably(&self, file: &mut File, bytes: &[u8]) -> Result<(), JournalError> {
        file.write_all(bytes).map_err(|e| self.write_error(e))?;
        file.sync_data().map_err(|e| self.write_error(e))
    }

    /// Every enrollment entry in the journal.
    pub(crate) fn entries(&self) -> Result<Vec<Entry>, JournalError> {
        self.lines()
    }

    /// Every line, of any line type (the bulk journal's).
    pub(crate) fn lines<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, JournalError> {
        let mut text = String::new();
        let mut file = self.file();
        let read = (|| {
            file.seek(SeekFrom::Start(0))?;
            file.read_to_string(&mut text)
        })();
        read.map_err(|source| JournalError::Read {
            path: self.path.clone(),
            source,
        })?;
        parse_lines(&self.path, &text)
    }
}

fn open_error(path: &Path, e: std::io::Error) -> JournalError {
    // O_NOFOLLOW on a symbolic link fails with ELOOP.
    if e.raw_os_error() == Some(libc::ELOOP) {
        return JournalError::Unsafe {
            path: path.to_path_buf(),
            why: "is a symbolic link".into(),
        };
    }
    JournalError::Write {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Whether this user alone can have written the open file.
fn check_safe(file: &File, path: &Path) -> Result<(), JournalError> {
    let meta = file.metadata().map_err(|source| JournalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let unsafe_because = |why: String| JournalError::Unsafe {
        path: path.to_path_buf(),
        why,
    };
    if !meta.file_type().is_file() {
        return Err(unsafe_because("is not a regular file".into()));
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(unsafe_because(format!(
            "belongs to user id {}, not to this user ({me})",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_because(format!(
            "may be written by {} (mode {:o})",
            if meta.mode() & 0o002 != 0 {
                "anyone"
            } else {
                "its group"
            },
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads every entry of the journal at `path` without locking it (a
/// missing file is an empty journal), with the same trust rules as
/// [`Journal::open`].
#[cfg(test)]
pub fn read(path: &Path) -> Result<Vec<Entry>, JournalError> {
    read_lines(path)
}

/// [`read`] for any line type (the bulk journal's).
pub(crate) fn read_lines<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Vec<T>, JournalError> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(match open_error(path, e) {
                JournalError::Write { path, source } => JournalError::Read { path, source },
                other => other,
            })
        }
    };
    check_safe(&file, path)?;
    let mut text = String::new();
    (&file)
        .read_to_string(&mut text)
        .map_err(|source| JournalError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    parse_lines(path, &text)
}

/// Parses JSON lines. A line cut short (the process died mid-write: JSON
/// that ends early) is skipped wherever it is; any other bad line is an
/// error naming its number.
pub(crate) fn parse_lines<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<Vec<T>, JournalError> {
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(line) {
            Ok(e) => out.push(e),
            Err(e) if e.is_eof() => {}
            Err(e) => {
                return Err(JournalError::Corrupt {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// The runs that never reached `Done` or `RolledBack`, each as its entries.
pub(crate) fn unfinished(entries: &[Entry]) -> Vec<Vec<Entry>> {
    let mut runs: Vec<(String, Vec<Entry>)> = Vec::new();
    for e in entries {
        match runs.iter_mut().find(|(r, _)| *r == e.run) {
            Some((_, v)) => v.push(e.clone()),
            None => runs.push((e.run.clone(), vec![e.clone()])),
        }
    }
    runs.into_iter()
        .map(|(_, v)| v)
        .filter(|v| {
            !v.iter()
                .any(|e| matches!(e.event, Event::Done | Event::RolledBack))
        })
        .collect()
}

/// A fresh run id: 16 random hex digits.
pub(crate) fn new_run_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        b = (t.as_nanos() as u64).to_be_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn entry(run: &str, event: Event) -> Entry {
        Entry {
            ts: 1,
            run: run.into(),
            event,
            user: "alice".into(),
            account_id: None,
            device_name: None,
            device_serial: Some("arn:aws:iam::123456789012:mfa/alice-yk1".into()),
            key_serial: Some(1),
            credential_id: None,
            written_as: None,
            proof: None,
            detail: None,
        }
    }

    #[test]
    fn appends_and_reads_back_with_mode_0600_in_a_private_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/journal.jsonl");
        let j = Journal::open(&path, Lock::Shared).unwrap();
        j.append(&entry("r1", Event::Begin)).unwrap();
        j.append(&entry("r1", Event::Created)).unwrap();
        drop(j);
        let j = Journal::open(&path, Lock::Shared).unwrap();
        j.append(&entry("r2", Event::Begin)).unwrap();
        let all = read(&path).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].event, Event::Created);
        assert_eq!(j.entries().unwrap(), all);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("sub")), 0o700);
    }

    #[test]
    fn a_torn_line_is_skipped_and_ended_so_later_lines_stay_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let good = serde_json::to_string(&entry("r", Event::Begin)).unwrap();
        std::fs::write(&path, format!("{good}\n{{\"ts\":1,\"ru")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(&path).unwrap().len(), 1);
        // Appending after a power loss must not glue the next line onto
        // the torn one.
        let j = Journal::open(&path, Lock::Exclusive).unwrap();
        j.append(&entry("r", Event::Created)).unwrap();
        drop(j);
        let all = read(&path).unwrap();
        assert_eq!(
            all.iter().map(|e| e.event).collect::<Vec<_>>(),
            [Event::Begin, Event::Created]
        );
        std::fs::write(&path, format!("garbage\n{good}\n")).unwrap();
        assert!(matches!(
            read(&path),
            Err(JournalError::Corrupt { line: 1, .. })
        ));
        assert!(read(&dir.path().join("missing")).unwrap().is_empty());
    }

    #[test]
    fn symlinks_foreign_and_writable_journals_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        Journal::open(&real, Lock::Shared).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        for r in [
            Journal::open(&link, Lock::Shared).map(|_| ()),
            read(&link).map(|_| ()),
        ] {
            let e = r.unwrap_err();
            assert!(matches!(e, JournalError::Unsafe { .. }), "{e}");
            assert!(e.to_string().contains("symbolic link"), "{e}");
        }
        for (mode, who) in [(0o666, "anyone"), (0o620, "its group")] {
            std::fs::set_permissions(&real, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = Journal::open(&real, Lock::Shared).unwrap_err();
            assert!(e.to_string().contains(who), "{e}");
            assert!(matches!(read(&real), Err(JournalError::Unsafe { .. })));
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::os::unix::fs::chown(&real, Some(65534), None).unwrap();
            let e = Journal::open(&real, Lock::Shared).unwrap_err();
            assert!(e.to_string().contains("belongs to user id 65534"), "{e}");
        }
    }

    #[test]
    fn locks_keep_recover_away_from_enrollments_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let a = Journal::open(&path, Lock::Shared).unwrap();
        let _b = Journal::open(&path, Lock::Shared).unwrap();
        let e = Journal::open(&path, Lock::Exclusive).unwrap_err();
        assert!(matches!(e, JournalError::InUse { .. }), "{e}");
        drop(a);
        drop(_b);
        let x = Journal::open(&path, Lock::Exclusive).unwrap();
        assert!(matches!(
            Journal::open(&path, Lock::Shared),
            Err(JournalError::InUse { .. })
        ));
        drop(x);
        assert!(matches!(
            Journal::create_new(&path, Lock::Exclusive),
            Err(JournalError::Exists { .. })
        ));
    }

    #[test]
    fn unfinished_runs_are_those_without_an_end() {
        let es = vec![
            entry("a", Event::Begin),
            entry("b", Event::Begin),
            entry("a", Event::Created),
            entry("a", Event::Done),
            entry("b", Event::Created),
            entry("c", Event::Begin),
            entry("c", Event::RolledBack),
        ];
        let open = unfinished(&es);
        assert_eq!(open.len(), 1);
        assert_eq!(open[0][0].run, "b");
        assert_eq!(open[0].len(), 2);
    }
}
