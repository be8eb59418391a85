//! The AWS shared config file (`$AWS_CONFIG_FILE`, else `~/.aws/config`) as
//! the AWS tools read it: a profile's `mfa_serial` (and `source_profile`),
//! and the one edit mfakey makes there, a profile's `mfa_serial` with a
//! commented `mfa_process` line for aws-vault.
//!
//! The edit is careful: every other line stays byte for byte (line endings
//! included); the file is checked before the enrollment starts
//! ([`plan`]) and must not have changed by the time it is written
//! ([`apply`]); the new text goes to a temporary file beside it that is
//! synced and renamed over it, after the old one is copied to a backup;
//! any failure leaves the file as it was.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ProfileError {
    #[error("no AWS config file: set AWS_CONFIG_FILE or HOME")]
    NoHome,
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} has no profile \"{profile}\"")]
    NoProfile { path: String, profile: String },
    #[error("profile \"{profile}\" in {path} has no mfa_serial (`mfakey enroll user NAME --configure-profile {profile}` writes it)")]
    NoMfaSerial { path: String, profile: String },
    #[error(
        "{path} has profile \"{profile}\" {count} times: merge them first; nothing was written"
    )]
    Duplicate {
        path: String,
        profile: String,
        count: usize,
    },
    #[error(
        "\"{0}\" is not a profile name mfakey writes (letters, digits and _ . + = , @ - only)"
    )]
    BadName(String),
    #[error("{path} is not UTF-8 text; nothing was written")]
    NotText { path: String },
    #[error("{path} changed while mfakey was enrolling; nothing was written: add `mfa_serial = {arn}` to profile \"{profile}\" yourself")]
    Changed {
        path: String,
        profile: String,
        arn: String,
    },
    #[error("cannot write {path} ({message}); it was left as it was: add `mfa_serial = {arn}` to profile \"{profile}\" yourself")]
    Write {
        path: String,
        profile: String,
        arn: String,
        message: String,
    },
}

impl crate::error::Classify for ProfileError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            ProfileError::Changed { .. } | ProfileError::Write { .. } => Kind::ConfigNotWritten,
            _ => Kind::AwsConfig,
        }
    }
}

/// The shared config file the AWS tools read: `$AWS_CONFIG_FILE` (a
/// leading `~/` is the home folder, as the SDKs take it), else
/// `~/.aws/config`.
pub(crate) fn config_path() -> Result<PathBuf, ProfileError> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    match std::env::var_os("AWS_CONFIG_FILE").filter(|p| !p.is_empty()) {
        Some(p) => match (p.to_str().and_then(|s| s.strip_prefix("~/")), home) {
            (Some(rest), Some(h)) => Ok(PathBuf::from(h).join(rest)),
            _ => Ok(PathBuf::from(p)),
        },
        None => home
            .map(|h| PathBuf::from(h).join(".aws/config"))
            .ok_or(ProfileError::NoHome),
    }
}

/// What mfakey reads of a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Profile {
    pub mfa_serial: Option<String>,
    pub source_profile: Option<String>,
}

/// Profile `name`'s settings in the config file at `path`.
pub(crate) fn read(path: &Path, name: &str) -> Result<Profile, ProfileError> {
    let text = match fs::read(path) {
        Ok(bytes) => into_text(path, bytes)?,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(ProfileError::NoProfile {
                path: path.display().to_string(),
                profile: name.to_string(),
            })
        }
        Err(e) => return Err(read_error(path, &e)),
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some((start, end)) = section(&lines, name, path)? else {
        return Err(ProfileError::NoProfile {
            path: path.display().to_string(),
            profile: name.to_string(),
        });
    };
    let get = |key: &str| {
        lines[start + 1..end]
            .iter()
            .find_map(|l| {
                setting(l)
                    .filter(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            })
            .filter(|v| !v.is_empty())
    };
    Ok(Profile {
        mfa_serial: get("mfa_serial"),
        source_profile: get("source_profile"),
    })
}

/// The `mfa_serial` of profile `name`, which must have one.
pub(crate) fn mfa_serial(path: &Path, name: &str) -> Result<(String, Profile), ProfileError> {
    let p = read(path, name)?;
    match &p.mfa_serial {
        Some(s) => Ok((s.clone(), p)),
        None => Err(ProfileError::NoMfaSerial {
            path: path.display().to_string(),
            profile: name.to_string(),
        }),
    }
}

/// An edit checked before the enrollment: the file as it was then.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The file itself (a symbolic link's target: the link stays).
    path: PathBuf,
    /// Where the tools look (what the report names).
    shown: PathBuf,
    profile: String,
    original: Option<String>,
}

/// What [`apply`] did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Applied {
    pub path: String,
    pub profile: String,
    /// The copy of the file as it was (none when there was no file, or
    /// nothing changed).
    pub backup: Option<String>,
    pub changed: bool,
    /// The `mfa_serial` this one replaced.
    pub replaced: Option<String>,
}

/// Checks that profile `name` of the file at `path` can be edited (a
/// profile name mfakey writes, UTF-8 text, the profile at most once) and
/// remembers the file as it is.
pub(crate) fn plan(path: &Path, name: &str) -> Result<Plan, ProfileError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_.+=,@-".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok_char) {
        return Err(ProfileError::BadName(name.to_string()));
    }
    let real = match fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(read_error(path, &e)),
    };
    let original = match fs::read(&real) {
        Ok(bytes) => Some(into_text(path, bytes)?),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(read_error(path, &e)),
    };
    if let Some(text) = &original {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        section(&lines, name, path)?;
    }
    Ok(Plan {
        path: real,
        shown: path.to_path_buf(),
        profile: name.to_string(),
        original,
    })
}

/// Writes `mfa_serial = ARN` (and `# mfa_process = mfakey code --profile
/// P` unless the profile has an `mfa_process` already) into the planned
/// profile. Nothing is written when the text would not change.
pub(crate) fn apply(plan: &Plan, arn: &str) -> Result<Applied, ProfileError> {
    apply_with(plan, arn, None)
}

/// [`apply`] with the backup made in `backup_dir` (a test's way to make
/// the write fail half-way).
#[cfg(test)]
pub(crate) fn apply_in(plan: &Plan, arn: &str, backup_dir: &Path) -> Result<Applied, ProfileError> {
    apply_with(plan, arn, Some(backup_dir))
}

fn apply_with(plan: &Plan, arn: &str, backup_dir: Option<&Path>) -> Result<Applied, ProfileError> {
    let write_err = |message: String| ProfileError::Write {
        path: plan.shown.display().to_string(),
        profile: plan.profile.clone(),
        arn: arn.to_string(),
        message,
    };
    let now = match fs::read(&plan.path) {
        Ok(bytes) => Some(String::from_utf8(bytes).ok()),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(write_err(e.to_string())),
    };
    if now.as_ref().map(|t| t.as_deref()) != plan.original.as_ref().map(|t| Some(t.as_str())) {
        return Err(ProfileError::Changed {
            path: plan.shown.display().to_string(),
            profile: plan.profile.clone(),
            arn: arn.to_string(),
        });
    }
    let old = plan.original.as_deref().unwrap_or("");
    let (new, replaced) = edited(old, &plan.profile, arn);
    let mut applied = Applied {
        path: plan.shown.display().to_string(),
        profile: plan.profile.clone(),
        backup: None,
        changed: new != old,
        replaced,
    };
    if !applied.changed {
        return Ok(applied);
    }
    let backup =
        write_file(&plan.path, plan.original.as_deref(), &new, backup_dir).map_err(write_err)?;
    applied.backup = backup.map(|b| b.display().to_string());
    Ok(applied)
}

/// The text with profile `name`'s `mfa_serial` set to `arn`, and the
/// `mfa_serial` it replaced. Every other line is kept as it is; new lines
/// use the file's line ending.
pub(crate) fn edited(text: &str, name: &str, arn: &str) -> (String, Option<String>) {
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let serial_line = format!("mfa_serial = {arn}{eol}");
    let process_line = format!("# mfa_process = mfakey code --profile {name}{eol}");
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let found = {
        let view: Vec<&str> = lines.iter().map(String::as_str).collect();
        section(&view, name, Path::new("")).ok().flatten()
    };
    let Some((start, end)) = found else {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(eol);
        }
        if !out.is_empty() {
            out.push_str(eol);
        }
        out.push_str(&format!("{}{eol}", header(name)));
        out.push_str(&serial_line);
        out.push_str(&process_line);
        return (out, None);
    };
    let body = start + 1..end;
    let has_process = lines[body.clone()].iter().any(|l| {
        setting(l).is_some_and(|(k, _)| k == "mfa_process") || {
            let t = l.trim_start();
            (t.starts_with('#') || t.starts_with(';')) && t.contains("mfa_process")
        }
    });
    let existing = lines[body.clone()]
        .iter()
        .position(|l| setting(l).is_some_and(|(k, _)| k == "mfa_serial"))
        .map(|i| start + 1 + i);
    let (at, replaced) = match existing {
        Some(i) => {
            let old = setting(&lines[i]).map(|(_, v)| v.to_string());
            if old.as_deref() == Some(arn) {
                return (text.to_string(), None);
            }
            // The line's own ending is kept (the last line may have none).
            let ending = if lines[i].ends_with("\r\n") {
                "\r\n"
            } else if lines[i].ends_with('\n') {
                "\n"
            } else {
                ""
            };
            lines[i] = format!("mfa_serial = {arn}{ending}");
            (i, old)
        }
        None => {
            // After the section's last setting, before blank lines that
            // separate it from the next one.
            let mut last = start;
            for i in body.clone() {
                if !lines[i].trim().is_empty() {
                    last = i;
                }
            }
            if !lines[last].ends_with('\n') {
                lines[last].push_str(eol);
            }
            lines.insert(last + 1, serial_line.clone());
            (last + 1, None)
        }
    };
    if !has_process {
        if !lines[at].ends_with('\n') {
            lines[at].push_str(eol);
        }
        lines.insert(at + 1, process_line);
    }
    (lines.concat(), replaced)
}

/// The section header the AWS tools read for profile `name`.
fn header(name: &str) -> String {
    if name == "default" {
        "[default]".to_string()
    } else {
        format!("[profile {name}]")
    }
}

/// The section's name when `line` is a section header.
fn header_name(line: &str) -> Option<String> {
    let t = line.trim();
    let inner = t.strip_prefix('[')?.split_once(']')?.0;
    Some(inner.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The lines of profile `name`: its header's index and the index after its
/// last line; an error when it is there more than once.
fn section(
    lines: &[&str],
    name: &str,
    path: &Path,
) -> Result<Option<(usize, usize)>, ProfileError> {
    let wanted: &[String] = &if name == "default" {
        vec!["default".to_string(), "profile default".to_string()]
    } else {
        vec![format!("profile {name}")]
    };
    let headers: Vec<(usize, String)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| header_name(l).map(|n| (i, n)))
        .collect();
    let hits: Vec<usize> = headers
        .iter()
        .filter(|(_, n)| wanted.contains(n))
        .map(|(i, _)| *i)
        .collect();
    match hits[..] {
        [] => Ok(None),
        [start] => {
            let end = headers
                .iter()
                .map(|(i, _)| *i)
                .find(|i| *i > start)
                .unwrap_or(lines.len());
            Ok(Some((start, end)))
        }
        _ => Err(ProfileError::Duplicate {
            path: path.display().to_string(),
            profile: name.to_string(),
            count: hits.len(),
        }),
    }
}

/// `key = value` at the start of a line (indented lines belong to a
/// nested setting such as `s3 =`; comments are none).
fn setting(line: &str) -> Option<(&str, &str)> {
    if line.starts_with([' ', '\t']) {
        return None;
    }
    let t = line.trim();
    if t.starts_with('#') || t.starts_with(';') || t.starts_with('[') {
        return None;
    }
    let (k, v) = t.split_once('=')?;
    Some((k.trim(), v.trim()))
}

fn into_text(path: &Path, bytes: Vec<u8>) -> Result<String, ProfileError> {
    String::from_utf8(bytes).map_err(|_| ProfileError::NotText {
        path: path.display().to_string(),
    })
}

fn read_error(path: &Path, e: &std::io::Error) -> ProfileError {
    ProfileError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Replaces the file at `path` with `new`: a temporary file beside it
/// (the old file's mode, else 0600), synced, the old text copied to a
/// backup first, then renamed over it and the folder synced. Any failure
/// removes what it made and leaves the file as it was. The backup's path
/// (beside the file unless `backup_dir` says otherwise).
fn write_file(
    path: &Path,
    old: Option<&str>,
    new: &str,
    backup_dir: Option<&Path>,
) -> Result<Option<PathBuf>, String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .ok_or("no file name")?
        .to_string_lossy()
        .to_string();
    let mode = match fs::metadata(path) {
        Ok(m) => m.permissions().mode() & 0o777,
        Err(_) => 0o600,
    };
    if old.is_none() && !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let stamp = crate::credential::unix_now();
    let tmp = dir.join(format!(
        ".{file_name}.mfakey-{}-{stamp}.tmp",
        std::process::id()
    ));
    let backup = old.map(|_| {
        backup_dir
            .unwrap_or(dir)
            .join(format!("{file_name}.mfakey-{stamp}.bak"))
    });
    // Only what this call created is removed on failure.
    let mut made: Vec<PathBuf> = Vec::new();
    let mut written = write_new(&tmp, new, mode).map(|()| made.push(tmp.clone()));
    if let (Ok(()), Some(b), Some(text)) = (&written, &backup, old) {
        written = write_new(b, text, mode).map(|()| made.push(b.clone()));
    }
    if written.is_ok() {
        written = fs::rename(&tmp, path).map_err(|e| format!("renaming into place: {e}"));
    }
    if let Err(e) = written {
        for p in made {
            let _ = fs::remove_file(p);
        }
        return Err(e);
    }
    // The new text is in place; the folder sync only makes the rename durable.
    let _ = File::open(dir).and_then(|d| d.sync_all());
    Ok(backup)
}

/// A new file (never an existing one) holding `text`, synced.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}
