//! Test seeds and the SecretScan: every output a scenario produced must hold
//! no spelling of any seed it used.

use std::path::{Path, PathBuf};

/// A throwaway OATH seed for one test.
#[derive(Clone)]
pub struct Seed {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Seed({} bytes)", self.bytes.len())
    }
}

impl Seed {
    /// `len` random bytes (AWS uses 40-byte seeds; authenticator apps 20).
    pub fn random(len: usize) -> Seed {
        let mut bytes = vec![0u8; len];
        getrandom::fill(&mut bytes).expect("getrandom");
        Seed { bytes }
    }

    pub fn from_bytes(bytes: &[u8]) -> Seed {
        Seed {
            bytes: bytes.to_vec(),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// RFC 4648 base32, upper case, no padding (as IAM returns it).
    pub fn base32(&self) -> String {
        base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &self.bytes)
    }

    /// Lower case in groups of 4 (as authenticator apps display it).
    pub fn base32_grouped_lower(&self) -> String {
        group4(&self.base32()).to_lowercase()
    }

    /// The spellings the scan looks for, by name. Matching is case-insensitive,
    /// so upper and lower case of each are covered.
    pub fn spellings(&self) -> Vec<(&'static str, Vec<u8>)> {
        let b32 = self.base32();
        let hex: String = self.bytes.iter().map(|b| format!("{b:02x}")).collect();
        vec![
            ("base32", b32.to_lowercase().into_bytes()),
            (
                "base32 in groups of 4",
                group4(&b32).to_lowercase().into_bytes(),
            ),
            ("hex", hex.into_bytes()),
        ]
    }
}

fn group4(s: &str) -> String {
    s.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Collects what a scenario produced (stdout, stderr, files, directories)
/// and asserts no seed appears in any of it. A scan that recorded something
/// must be checked before it is dropped.
#[derive(Default)]
pub struct SecretScan {
    texts: Vec<(String, Vec<u8>)>,
    paths: Vec<PathBuf>,
    checked: bool,
}

/// Where a seed was found: the source's label and the spelling's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub source: String,
    pub spelling: &'static str,
}

impl SecretScan {
    pub fn new() -> SecretScan {
        SecretScan::default()
    }

    /// Records a text or bytes the scenario produced.
    pub fn add(&mut self, label: impl Into<String>, content: impl AsRef<[u8]>) {
        self.texts.push((label.into(), content.as_ref().to_vec()));
        self.checked = false;
    }

    /// Records a command's stdout and stderr.
    pub fn add_run(&mut self, run: &super::Run) {
        self.add(format!("stdout of {:?}", run.args), &run.stdout);
        self.add(format!("stderr of {:?}", run.args), &run.stderr);
    }

    /// Records a file, or every file under a directory, read at check time.
    pub fn add_path(&mut self, path: impl Into<PathBuf>) {
        self.paths.push(path.into());
        self.checked = false;
    }

    /// Every place and spelling where `seed` occurs.
    pub fn find(&self, seed: &Seed) -> Vec<Finding> {
        let mut sources: Vec<(String, Vec<u8>)> = self.texts.clone();
        for p in &self.paths {
            read_tree(p, &mut sources);
        }
        let spellings = seed.spellings();
        let mut found = Vec::new();
        for (label, content) in &sources {
            let lower = content.to_ascii_lowercase();
            for (name, needle) in &spellings {
                if contains(&lower, needle) {
                    found.push(Finding {
                        source: label.clone(),
                        spelling: name,
                    });
                }
            }
            if seed.bytes.len() >= 10 && contains(content, &seed.bytes) {
                found.push(Finding {
                    source: label.clone(),
                    spelling: "raw bytes",
                });
            }
        }
        found
    }

    /// Panics if any seed appears anywhere (naming where and which spelling,
    /// never the seed itself).
    pub fn assert_clean(&mut self, seeds: &[&Seed]) {
        self.checked = true;
        let found: Vec<Finding> = seeds.iter().flat_map(|s| self.find(s)).collect();
        assert!(found.is_empty(), "a seed leaked: {found:#?}");
    }

    /// Number of recorded sources (texts plus files now on disk).
    pub fn source_count(&self) -> usize {
        let mut sources = Vec::new();
        for p in &self.paths {
            read_tree(p, &mut sources);
        }
        self.texts.len() + sources.len()
    }
}

impl Drop for SecretScan {
    fn drop(&mut self) {
        let recorded = !self.texts.is_empty() || !self.paths.is_empty();
        if recorded && !self.checked && !std::thread::panicking() {
            panic!("a SecretScan recorded output but was never checked (call assert_clean)");
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn read_tree(path: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            read_tree(&e, out);
        }
    } else if meta.is_file() {
        if let Ok(content) = std::fs::read(path) {
            out.push((format!("file {}", path.display()), content));
        }
    }
}
