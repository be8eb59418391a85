//! `--state FILE`: the OATH applet's stored data (salt, password key,
//! credentials) kept across restarts of the virtual key, as a real key keeps
//! them in flash. JSON, mode 0600, replaced atomically (temp file + rename).
//!
//! The file holds key material by design (it is the card's memory): it is
//! only ever read and written here, and errors never quote its contents.

use super::oath::{AccessKey, Credential, HashAlgo, OathData, OathType};
use crate::secret::SecretBytes;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

const FORMAT: u32 = 1;

/// Errors loading or saving the state file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("cannot read the virtual key's state file {path}: {source}; check the path and its permissions")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the virtual key's state file {path}: {source}; check that its directory exists and is writable")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the virtual key's state file {path} is not valid ({what}); delete it to start with an empty key")]
    Malformed { path: PathBuf, what: String },
}

#[derive(Serialize, Deserialize)]
struct FileState {
    format: u32,
    salt: String,
    access_key: Option<FileAccessKey>,
    credentials: Vec<FileCredential>,
}

#[derive(Serialize, Deserialize)]
struct FileAccessKey {
    algorithm: u8,
    key: String,
}

impl Drop for FileAccessKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

#[derive(Serialize, Deserialize)]
struct FileCredential {
    id: String,
    /// `[type|algo]` as on the wire.
    kind: u8,
    digits: u8,
    key: String,
    touch: bool,
    counter: u64,
}

impl Drop for FileCredential {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Loads the state, or `None` when the file does not exist yet.
pub(crate) fn load(path: &Path) -> Result<Option<OathData>, StateError> {
    let raw = match std::fs::read(path) {
        Ok(b) => Zeroizing::new(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.into(),
                source,
            })
        }
    };
    let bad = |what: &str| StateError::Malformed {
        path: path.into(),
        what: what.into(),
    };
    let file: FileState = serde_json::from_slice(&raw).map_err(|e| {
        // serde_json's message names a line and column, never the data.
        bad(&format!("not the expected JSON at line {}", e.line()))
    })?;
    if file.format != FORMAT {
        return Err(bad("unknown format version"));
    }
    let salt: [u8; 8] = from_hex(&file.salt)
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| bad("salt is not 8 bytes of hex"))?;
    let access_key = match &file.access_key {
        None => None,
        Some(ak) => Some(AccessKey {
            algo: HashAlgo::from_nibble(ak.algorithm)
                .ok_or_else(|| bad("unknown access key algorithm"))?,
            key: SecretBytes::new(from_hex(&ak.key).ok_or_else(|| bad("access key is not hex"))?),
        }),
    };
    let mut credentials = Vec::new();
    for c in &file.credentials {
        let oath_type =
            OathType::from_nibble(c.kind).ok_or_else(|| bad("unknown credential type"))?;
        credentials.push(Credential {
            id: from_hex(&c.id).ok_or_else(|| bad("credential id is not hex"))?,
            oath_type,
            algo: HashAlgo::from_nibble(c.kind).ok_or_else(|| bad("unknown algorithm"))?,
            digits: c.digits,
            key: SecretBytes::new(from_hex(&c.key).ok_or_else(|| bad("key is not hex"))?),
            touch: c.touch,
            counter: c.counter,
        });
    }
    Ok(Some(OathData {
        salt,
        access_key,
        credentials,
    }))
}

/// Writes the state: a 0600 temp file beside the target, synced, then renamed.
pub(crate) fn save(path: &Path, data: &OathData) -> Result<(), StateError> {
    let file = FileState {
        format: FORMAT,
        salt: to_hex(&data.salt),
        access_key: data.access_key.as_ref().map(|ak| FileAccessKey {
            algorithm: ak.algo.nibble(),
            key: to_hex(ak.key.expose()),
        }),
        credentials: data
            .credentials
            .iter()
            .map(|c| FileCredential {
                id: to_hex(&c.id),
                kind: c.oath_type.nibble() | c.algo.nibble(),
                digits: c.digits,
                key: to_hex(c.key.expose()),
                touch: c.touch,
                counter: c.counter,
            })
            .collect(),
    };
    let write_err = |source| StateError::Write {
        path: path.into(),
        source,
    };
    let json = Zeroizing::new(
        serde_json::to_vec_pretty(&file)
            .map_err(|e| write_err(std::io::Error::other(e.to_string())))?,
    );
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> OathData {
        OathData {
            salt: [1, 2, 3, 4, 5, 6, 7, 8],
            access_key: Some(AccessKey {
                algo: HashAlgo::Sha1,
                key: SecretBytes::new(vec![9; 16]),
            }),
            credentials: vec![Credential {
                id: b"60/Issuer:alice".to_vec(),
                oath_type: OathType::Hotp,
                algo: HashAlgo::Sha256,
                digits: 8,
                key: SecretBytes::new(vec![7; 20]),
                touch: true,
                counter: 42,
            }],
        }
    }

    #[test]
    fn round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        assert!(load(&path).unwrap().is_none());
        save(&path, &sample()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back.salt, [1, 2, 3, 4, 5, 6, 7, 8]);
        let ak = back.access_key.unwrap();
        assert_eq!((ak.algo, ak.key.expose()), (HashAlgo::Sha1, &[9u8; 16][..]));
        let c = &back.credentials[0];
        assert_eq!(c.id, b"60/Issuer:alice");
        assert_eq!(
            (c.oath_type, c.algo, c.digits),
            (OathType::Hotp, HashAlgo::Sha256, 8)
        );
        assert_eq!(c.key.expose(), &[7u8; 20]);
        assert!(c.touch);
        assert_eq!(c.counter, 42);
        // Only the target remains: the temp file was renamed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn malformed_files_are_refused_without_quoting_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        std::fs::write(&path, b"{\"format\":1,\"salt\":\"zz-secret-zz\"").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
        let mut good = serde_json::to_value(FileState {
            format: 1,
            salt: "zz".into(),
            access_key: None,
            credentials: vec![],
        })
        .unwrap();
        std::fs::write(&path, good.to_string()).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("salt"));
        good["format"] = 9.into();
        std::fs::write(&path, good.to_string()).unwrap();
        assert!(load(&path).is_err());
    }

    #[test]
    fn save_into_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/key.json");
        assert!(matches!(
            save(&path, &sample()),
            Err(StateError::Write { .. })
        ));
    }
}
