//! The enrollment journal: append-only JSON lines, one per step, flushed and
//! synced before the step is acted on further, file mode 0600. It holds names
//! and ARNs only, never a seed or a code, so that a run killed mid-way
//! (SIGKILL, power loss) can be finished or undone by `mfakey recover`.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// What happened, in the order an enrollment does it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Preflight passed; nothing created yet.
    Begin,
    /// The virtual MFA device exists in IAM.
    Created,
    /// The credential is about to be written: from here on it may be on the key.
    Written,
    /// EnableMFADevice succeeded.
    Enabled,
    /// The enrollment is complete and verified.
    Done,
    /// A rollback step succeeded: `detail` says which.
    Undone,
    /// Everything the run created is gone again.
    RolledBack,
    /// A rollback step failed: something is left (see `detail`).
    RollbackFailed,
}

/// One journal line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Unix seconds.
    pub ts: u64,
    /// One enrollment: all its lines share this id.
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
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
}

/// The default journal: `$XDG_STATE_HOME/mfakey/journal.jsonl`, else
/// `~/.local/state/mfakey/journal.jsonl`.
pub fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("mfakey").join("journal.jsonl")
}

/// An open journal, appending.
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Opens (creating with mode 0600, and its folder) for appending.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let err = |source| JournalError::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut opts = OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts.open(path).map_err(err)?;
        Ok(Journal {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and makes it durable before returning.
    pub fn append(&mut self, entry: &Entry) -> Result<(), JournalError> {
        self.append_line(entry)
    }

    /// Appends any serializable line (the bulk journal's) and makes it durable.
    pub fn append_line<T: Serialize>(&mut self, entry: &T) -> Result<(), JournalError> {
        let err = |source| JournalError::Write {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_string(entry).map_err(|e| err(std::io::Error::other(e)))?;
        line.push('\n');
        self.file.write_all(line.as_bytes()).map_err(err)?;
        self.file.sync_data().map_err(err)
    }
}

/// Reads every entry. A missing file is an empty journal. A torn last line
/// (the process died mid-write) is ignored; a bad line elsewhere is an error.
pub fn read(path: &Path) -> Result<Vec<Entry>, JournalError> {
    read_lines(path)
}

/// [`read`] for any line type (the bulk journal's).
pub fn read_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, JournalError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(JournalError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|source| JournalError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let mut out = Vec::new();
    let last = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(line) {
            Ok(e) => out.push(e),
            Err(_) if i + 1 == last => {}
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
pub fn unfinished(entries: &[Entry]) -> Vec<Vec<Entry>> {
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
pub fn new_run_id() -> String {
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
            detail: None,
        }
    }

    #[test]
    fn appends_and_reads_back_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/journal.jsonl");
        let mut j = Journal::open(&path).unwrap();
        j.append(&entry("r1", Event::Begin)).unwrap();
        j.append(&entry("r1", Event::Created)).unwrap();
        drop(j);
        let mut j = Journal::open(&path).unwrap();
        j.append(&entry("r2", Event::Begin)).unwrap();
        let all = read(&path).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].event, Event::Created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn torn_last_line_is_ignored_but_corruption_elsewhere_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let good = serde_json::to_string(&entry("r", Event::Begin)).unwrap();
        std::fs::write(&path, format!("{good}\n{{\"ts\":1,\"ru")).unwrap();
        assert_eq!(read(&path).unwrap().len(), 1);
        std::fs::write(&path, format!("garbage\n{good}\n")).unwrap();
        assert!(matches!(
            read(&path),
            Err(JournalError::Corrupt { line: 1, .. })
        ));
        assert!(read(&dir.path().join("missing")).unwrap().is_empty());
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
