//! Whether this user can reach FIDO keys at all: `/dev/hidraw*` present,
//! and openable. Tells "no key" from "no permission: install the udev rule".

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HidrawAccess {
    /// No `hidraw*` node at all: no HID device (so no key).
    NoDevices,
    /// Nodes this user may open, and those refused (EACCES/EPERM).
    Nodes {
        open: Vec<PathBuf>,
        refused: Vec<PathBuf>,
    },
}

impl HidrawAccess {
    /// Whether opening `path` was refused (EACCES/EPERM) to this user.
    pub(crate) fn refused(&self, path: &Path) -> bool {
        match self {
            HidrawAccess::NoDevices => false,
            HidrawAccess::Nodes { refused, .. } => refused.iter().any(|p| p == path),
        }
    }
}

/// Looks at `dir` (`/dev`): every `hidraw*` node, opened read-write.
pub(crate) fn probe(dir: &Path) -> HidrawAccess {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return HidrawAccess::NoDevices;
    };
    let mut nodes: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("hidraw"))
        .map(|e| e.path())
        .collect();
    nodes.sort();
    classify(
        nodes
            .into_iter()
            .map(|p| {
                let r = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&p)
                    .map(drop)
                    .map_err(|e| e.kind());
                (p, r)
            })
            .collect(),
    )
}

/// Sorts opened nodes from refused ones (other errors, e.g. a node gone
/// meanwhile, count as neither).
pub(crate) fn classify(results: Vec<(PathBuf, Result<(), ErrorKind>)>) -> HidrawAccess {
    if results.is_empty() {
        return HidrawAccess::NoDevices;
    }
    let mut open = Vec::new();
    let mut refused = Vec::new();
    for (p, r) in results {
        match r {
            Ok(()) => open.push(p),
            Err(ErrorKind::PermissionDenied) => refused.push(p),
            Err(_) => {}
        }
    }
    HidrawAccess::Nodes { open, refused }
}

/// Why no FIDO key was found, given what `probe` saw.
pub(crate) fn why_none(access: &HidrawAccess) -> super::Fido2Error {
    match access {
        HidrawAccess::Nodes { refused, .. } if !refused.is_empty() => {
            super::Fido2Error::NoPermission {
                paths: refused
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        }
        _ => super::Fido2Error::NoKey,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fido2::Fido2Error;

    #[test]
    fn no_nodes_is_no_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tty0"), b"").unwrap();
        let a = probe(dir.path());
        assert_eq!(a, HidrawAccess::NoDevices);
        assert_eq!(why_none(&a), Fido2Error::NoKey);
        assert_eq!(
            probe(Path::new("/nonexistent-dir")),
            HidrawAccess::NoDevices
        );
    }

    #[test]
    fn openable_nodes_without_a_fido_key_is_no_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hidraw0"), b"").unwrap();
        let a = probe(dir.path());
        assert_eq!(
            a,
            HidrawAccess::Nodes {
                open: vec![dir.path().join("hidraw0")],
                refused: vec![]
            }
        );
        assert_eq!(why_none(&a), Fido2Error::NoKey);
    }

    #[test]
    fn refused_nodes_mean_install_the_udev_rule() {
        let a = classify(vec![
            ("/dev/hidraw0".into(), Ok(())),
            ("/dev/hidraw1".into(), Err(ErrorKind::PermissionDenied)),
            ("/dev/hidraw2".into(), Err(ErrorKind::NotFound)),
        ]);
        let e = why_none(&a);
        assert_eq!(
            e,
            Fido2Error::NoPermission {
                paths: "/dev/hidraw1".into()
            }
        );
        assert!(e.to_string().contains("udev rule"));
        assert!(a.refused(Path::new("/dev/hidraw1")));
        assert!(!a.refused(Path::new("/dev/hidraw0")));
        assert!(!a.refused(Path::new("/dev/hidraw2")));
        assert!(!HidrawAccess::NoDevices.refused(Path::new("/dev/hidraw1")));
    }
}
