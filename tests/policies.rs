//! The IAM policy documents in docs/ against the code: each grants exactly
//! the AWS actions its commands can call, no more and no less.
//!
//! What a command calls is derived from the source, not written down here:
//! the actions are the `"service:Action"` strings the AWS layer passes to
//! its error mapper at each SDK call (checked against the SDK operation the
//! same function sends), and a command's actions are those of the AWS
//! functions its entry point reaches through the crate's call graph
//! (parsed from src/). The one table below says which commands each policy
//! document serves. No stack needed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// A command a policy serves: its name, the function it starts in
/// (`file::fn`, file relative to src/), the functions whose calls belong
/// to another document (an option's extra permissions), and the document
/// whose grants it builds on (it then needs only what that one lacks).
struct Command {
    name: &'static str,
    entry: &'static str,
    except: &'static [&'static str],
    beyond: Option<&'static str>,
}

const fn cmd(name: &'static str, entry: &'static str) -> Command {
    Command {
        name,
        entry,
        except: &[],
        beyond: None,
    }
}

/// A command's extra needs on top of another document's.
const fn extra(name: &'static str, entry: &'static str, beyond: &'static str) -> Command {
    Command {
        name,
        entry,
        except: &[],
        beyond: Some(beyond),
    }
}

/// The functions a bulk run reaches only with --create-users or rows with
/// a role_arn: their permissions are in docs/bulk-policy.json.
const BULK_EXTRAS: &[&str] = &["bulk/book.rs::ensure_user", "aws/config.rs::load_assumed"];

/// What an accounts file's `role_arn` lines add (docs/bulk-policy.json).
const ROLE_EXTRAS: &[&str] = &["aws/config.rs::load_assumed"];

/// Each policy document and the commands it serves. To add a document:
/// write it under docs/ and add a line here with its commands' entry
/// functions; the test then holds it to exactly what they call.
const POLICIES: &[(&str, &[Command])] = &[
    (
        "docs/iam-policy.json",
        &[
            cmd("enroll user|root|console", "cli/enroll.rs::run_enroll"),
            cmd("recover", "cli/enroll.rs::run_recover"),
            cmd("cleanup", "cli/enroll.rs::run_cleanup"),
            Command {
                name: "bulk",
                entry: "cli/bulk.rs::run",
                except: BULK_EXTRAS,
                beyond: None,
            },
            Command {
                name: "bulk --dry-run",
                entry: "cli/bulk.rs::dry",
                except: BULK_EXTRAS,
                beyond: None,
            },
            cmd("fido2 register", "cli/fido2.rs::register"),
            Command {
                name: "inventory",
                entry: "cli/lifecycle.rs::run_inventory",
                except: ROLE_EXTRAS,
                beyond: None,
            },
            Command {
                name: "revoke",
                entry: "cli/lifecycle.rs::run_revoke",
                except: ROLE_EXTRAS,
                beyond: None,
            },
            Command {
                name: "replace",
                entry: "cli/lifecycle.rs::run_replace",
                except: ROLE_EXTRAS,
                beyond: None,
            },
            cmd("resync", "cli/lifecycle.rs::run_resync"),
            cmd("offboard", "cli/lifecycle.rs::run_offboard"),
        ],
    ),
    (
        "docs/bulk-policy.json",
        &[
            extra(
                "bulk --create-users",
                "bulk/book.rs::ensure_user",
                "docs/iam-policy.json",
            ),
            extra(
                "bulk rows and --accounts lines with role_arn",
                "aws/config.rs::load_assumed",
                "docs/iam-policy.json",
            ),
        ],
    ),
    (
        "docs/audit-policy.json",
        &[cmd("audit", "cli/audit.rs::run_audit")],
    ),
    (
        "docs/baseline-policy.json",
        &[cmd("baseline cloudtrail", "cli/audit.rs::run_baseline")],
    ),
];

/// Actions no policy needs to grant: GetCallerIdentity cannot be denied.
const NEED_NO_PERMISSION: &[&str] = &["sts:GetCallerIdentity"];

/// Permissions IAM or S3 check besides the operation's own, when the call
/// passes what the marker names: tags at creation, Object Lock at creation.
const IMPLIED: &[(&str, &str, &[&str])] = &[
    (
        "iam:CreateVirtualMFADevice",
        ".tags(",
        &["iam:TagMFADevice"],
    ),
    ("iam:CreateUser", ".tags(", &["iam:TagUser"]),
    (
        "s3:CreateBucket",
        "object_lock_enabled_for_bucket(",
        &[
            "s3:PutBucketObjectLockConfiguration",
            "s3:PutBucketVersioning",
        ],
    ),
];

/// SDK operations whose IAM action has another name.
const OPERATION_ACTIONS: &[(&str, &str)] = &[
    ("s3:HeadBucket", "s3:ListBucket"),
    ("s3:GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock"),
    ("s3:PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock"),
];

// ---- reading the source ----------------------------------------------------------

struct Func {
    file: String,
    owner: Option<String>,
    /// For a method of `impl Trait for Type`: the trait.
    owner_trait: Option<String>,
    name: String,
    /// The body without comments; string literals kept (action strings).
    body: String,
    /// The body without comments and string literals (for calls).
    code: String,
}

/// Comments blanked out; with `strings`, string literals blanked too. Byte
/// offsets are kept, so one text can be read with the other's positions.
fn blank(src: &str, strings: bool) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out[i] = b' ';
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            while i < b.len() && !b[i..].starts_with(b"*/") {
                if b[i] != b'\n' {
                    out[i] = b' ';
                }
                i += 1;
            }
            out[i..(i + 2).min(b.len())].fill(b' ');
            i += 2;
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('x', '\n', '\''): never a brace or a quote.
            let end = b[i + 1..]
                .iter()
                .skip(1)
                .position(|&c| c == b'\'')
                .map_or(i, |p| i + 2 + p);
            out[i..=end.min(b.len() - 1)].fill(b' ');
            i = end + 1;
        } else if b[i] == b'"' || b[i..].starts_with(b"r#\"") || b[i..].starts_with(b"r\"") {
            let raw = b[i] == b'r';
            let hashes = if raw {
                b[i + 1..].iter().take_while(|&&c| c == b'#').count()
            } else {
                0
            };
            let start = i;
            i += if raw { 2 + hashes } else { 1 };
            loop {
                if i >= b.len() {
                    break;
                }
                if !raw && b[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if b[i] == b'"' && b[i + 1..].iter().take(hashes).all(|&c| c == b'#') {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            if strings {
                for c in &mut out[start..i.min(b.len())] {
                    if *c != b'\n' {
                        *c = b' ';
                    }
                }
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The index of the brace that closes the one at `open`.
fn closing(code: &[u8], open: usize) -> usize {
    let mut depth = 0;
    for (i, &c) in code.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    code.len().saturating_sub(1)
}

fn ident_at(code: &[u8], mut i: usize) -> String {
    let start = i;
    while i < code.len() && (code[i].is_ascii_alphanumeric() || code[i] == b'_') {
        i += 1;
    }
    String::from_utf8_lossy(&code[start..i]).into_owned()
}

/// `#[cfg(test)]` items (test modules, test-only functions) are not code
/// that runs in mfakey: blanked out.
fn without_tests(code: &str) -> String {
    let mut b = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(p) = code[from..].find("#[cfg(test)]") {
        let at = from + p;
        let rest = &b[at..];
        let brace = rest.iter().position(|&c| c == b'{');
        let semi = rest.iter().position(|&c| c == b';');
        let end = match (brace, semi) {
            (Some(o), Some(s)) if s < o => at + s,
            (Some(o), _) => closing(&b, at + o),
            _ => b.len() - 1,
        };
        b[at..=end].iter_mut().for_each(|c| {
            if *c != b'\n' {
                *c = b' '
            }
        });
        from = end + 1;
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every function of the code mfakey ships (tests, test doubles and the
/// test-only virtual key left out).
fn functions(src: &Path) -> Vec<Func> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut out = Vec::new();
    for path in files {
        let rel = path
            .strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let skip = rel.starts_with("virtual_key/")
            || rel.starts_with("bin/")
            || rel.ends_with("tests.rs")
            || [
                "aws/fake.rs",
                "fido2/fake.rs",
                "oath/script.rs",
                "fuzzing.rs",
            ]
            .contains(&rel.as_str());
        if skip {
            continue;
        }
        let raw = std::fs::read_to_string(&path).unwrap();
        let body_text = without_tests(&blank(&raw, false));
        let code = without_tests(&blank(&raw, true));
        let cb = code.as_bytes();
        // impl and trait blocks: (start, end, type).
        let mut owners = Vec::new();
        for kw in ["impl", "trait"] {
            let mut from = 0;
            while let Some(p) = code[from..].find(kw) {
                let at = from + p;
                from = at + kw.len();
                let before_ok =
                    at == 0 || !(cb[at - 1].is_ascii_alphanumeric() || cb[at - 1] == b'_');
                let after = cb.get(at + kw.len()).copied().unwrap_or(b' ');
                if !before_ok || !(after == b' ' || after == b'<') {
                    continue;
                }
                let Some(open) = code[at..].find('{').map(|o| at + o) else {
                    continue;
                };
                let head = &code[at..open];
                if head.contains(';') || head.contains("fn ") {
                    continue;
                }
                // `impl<..> Trait for Type<..>`, `impl<..> Type<..>`, `trait Name`: the type.
                let head = head[kw.len()..].trim_start();
                let mut depth = 0;
                let after_generics: String = head
                    .chars()
                    .skip_while(|c| {
                        match c {
                            '<' => depth += 1,
                            '>' => depth -= 1,
                            _ => {}
                        }
                        depth > 0 || *c == '>'
                    })
                    .collect();
                let name_part = after_generics
                    .rsplit(" for ")
                    .next()
                    .unwrap_or(&after_generics);
                let trait_name = after_generics
                    .split_once(" for ")
                    .map(|(t, _)| {
                        t.rsplit("::")
                            .next()
                            .unwrap_or(t)
                            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .find(|w| !w.is_empty())
                            .unwrap_or("")
                            .to_string()
                    })
                    .filter(|t| !t.is_empty());
                let name = name_part
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .find(|w| w.chars().next().is_some_and(|c| c.is_uppercase()))
                    .unwrap_or("")
                    .to_string();
                owners.push((open, closing(cb, open), name, trait_name));
            }
        }
        let mut from = 0;
        while let Some(p) = code[from..].find("fn ") {
            let at = from + p;
            from = at + 3;
            if at > 0 && (cb[at - 1].is_ascii_alphanumeric() || cb[at - 1] == b'_') {
                continue;
            }
            let name = ident_at(cb, at + 3);
            if name.is_empty() {
                continue;
            }
            // The body: the first `{` at bracket depth 0 after the name, unless a `;` comes first.
            let mut i = at + 3 + name.len();
            let (mut paren, mut angle) = (0i32, 0i32);
            let open = loop {
                match cb.get(i) {
                    None => break None,
                    Some(b'(') | Some(b'[') => paren += 1,
                    Some(b')') | Some(b']') => paren -= 1,
                    Some(b'<') => angle += 1,
                    Some(b'>') if cb.get(i - 1) != Some(&b'-') && cb.get(i - 1) != Some(&b'=') => {
                        angle -= 1
                    }
                    Some(b';') if paren == 0 => break None,
                    Some(b'{') if paren == 0 && angle <= 0 => break Some(i),
                    _ => {}
                }
                i += 1;
            };
            let Some(open) = open else { continue };
            let end = closing(cb, open);
            let block = owners
                .iter()
                .filter(|(s, e, _, _)| *s < at && at < *e)
                .min_by_key(|(s, e, _, _)| e - s);
            let owner = block
                .map(|(_, _, n, _)| n.clone())
                .filter(|n| !n.is_empty());
            let owner_trait = block.and_then(|(_, _, _, t)| t.clone());
            out.push(Func {
                file: rel.clone(),
                owner,
                owner_trait,
                name,
                body: body_text[open..=end].to_string(),
                code: code[open..=end].to_string(),
            });
        }
    }
    out
}

// ---- what calls what -----------------------------------------------------------------

/// A call in a body: the name, and how it is written.
enum Call {
    /// `.name(`
    Method(String),
    /// `Path::name(` (the segment before the name)
    Path(String, String),
    /// `name(`
    Bare(String),
}

fn calls(code: &str) -> Vec<Call> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let word_start = i;
        if b[i].is_ascii_alphabetic() || b[i] == b'_' {
            let name = ident_at(b, i);
            i += name.len();
            let mut j = i;
            if b.get(j..j + 3) == Some(b"::<") {
                // turbofish: skip to the closing '>'
                let mut depth = 0;
                while j < b.len() {
                    match b[j] {
                        b'<' => depth += 1,
                        b'>' => {
                            depth -= 1;
                            if depth == 0 {
                                j += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
            }
            if b.get(j) != Some(&b'(') || name.chars().next().is_some_and(|c| c.is_uppercase()) {
                continue;
            }
            let prev = &code[..word_start];
            let trimmed = prev.trim_end();
            if trimmed.ends_with('.') {
                out.push(Call::Method(name));
            } else if let Some(p) = trimmed.strip_suffix("::") {
                let seg: String = p
                    .chars()
                    .rev()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                out.push(Call::Path(seg, name));
            } else if !trimmed.ends_with("fn") {
                out.push(Call::Bare(name));
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Whether `f` is what `call` in `caller`'s file can reach. Errs on the
/// side of reaching more: a method by its name, of any type (or trait) the
/// caller's file names at all; a command that seems to call more than it
/// does shows up as a policy that lacks an action, never as one that
/// silently grants too little.
fn resolves(f: &Func, call: &Call, caller: &Func) -> bool {
    match call {
        Call::Method(n) => {
            &f.name == n
                && f.owner.is_some()
                && (f.file == caller.file
                    || f.owner.as_deref().is_some_and(|o| names(&caller.file, o))
                    || f.owner_trait
                        .as_deref()
                        .is_some_and(|t| names(&caller.file, t)))
        }
        Call::Path(seg, n) => {
            &f.name == n
                && (f.owner.as_deref() == Some(seg.as_str())
                    || (seg == "Self" && f.owner == caller.owner && f.file == caller.file)
                    || (f.owner.is_none() && in_module(&f.file, seg, &caller.file)))
        }
        Call::Bare(n) => {
            &f.name == n
                && f.owner.is_none()
                && (f.file == caller.file
                    || top(&f.file) == top(&caller.file)
                    || imports(&caller.file, n))
        }
    }
}

/// The first directory of a file under src/ (`console` for console/flow.rs).
fn top(file: &str) -> &str {
    file.split('/')
        .next()
        .unwrap_or(file)
        .trim_end_matches(".rs")
}

/// Whether `file` is in module `seg` or below it (`console::run` may be
/// console/flow.rs's, re-exported); `super`/`crate`/`self` reach anything
/// near the caller.
fn in_module(file: &str, seg: &str, caller: &str) -> bool {
    match seg {
        "super" | "self" => top(file) == top(caller),
        "crate" => true,
        _ => file
            .trim_end_matches(".rs")
            .split('/')
            .any(|part| part == seg),
    }
}

/// Whether `file` names the type or trait `word` anywhere in its code
/// (a method of a type the file never names is not its call).
fn names(file: &str, word: &str) -> bool {
    use std::sync::{Mutex, OnceLock};
    static WORDS: OnceLock<Mutex<BTreeMap<String, BTreeSet<String>>>> = OnceLock::new();
    let mut cache = WORDS.get_or_init(Default::default).lock().unwrap();
    let words = cache.entry(file.to_string()).or_insert_with(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(file);
        let text = blank(&std::fs::read_to_string(src).unwrap_or_default(), true);
        text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    });
    words.contains(word)
}

/// Whether `caller_file` names `name` in a `use` item (each file's names
/// read once).
fn imports(caller_file: &str, name: &str) -> bool {
    use std::sync::{Mutex, OnceLock};
    static USES: OnceLock<Mutex<BTreeMap<String, BTreeSet<String>>>> = OnceLock::new();
    let mut cache = USES.get_or_init(Default::default).lock().unwrap();
    let words = cache.entry(caller_file.to_string()).or_insert_with(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src")
            .join(caller_file);
        let text = std::fs::read_to_string(src).unwrap_or_default();
        let mut words = BTreeSet::new();
        let mut in_use = false;
        for l in text.lines() {
            let t = l.trim_start();
            if t.starts_with("use ")
                || t.starts_with("pub(crate) use ")
                || t.starts_with("pub use ")
            {
                in_use = true;
            }
            if in_use {
                words.extend(
                    t.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .map(str::to_string),
                );
            }
            if t.contains(';') {
                in_use = false;
            }
        }
        words
    });
    words.contains(name)
}

/// The actions a function's body names at its SDK calls.
fn actions_in(f: &Func) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if !f.file.starts_with("aws/") {
        return out;
    }
    for (svc, _) in SERVICE_PREFIXES {
        let pat = format!("\"{svc}:");
        let mut from = 0;
        while let Some(p) = f.body[from..].find(&pat) {
            let at = from + p + 1;
            let end = f.body[at..].find('"').map_or(f.body.len(), |e| at + e);
            let action = &f.body[at..end];
            if action
                .split(':')
                .nth(1)
                .is_some_and(|a| a.chars().all(|c| c.is_ascii_alphanumeric()) && !a.is_empty())
            {
                out.insert(action.to_string());
            }
            from = end;
        }
    }
    if f.code.contains("AssumeRoleProvider") {
        out.insert("sts:AssumeRole".into());
    }
    let implied: Vec<String> = IMPLIED
        .iter()
        .filter(|(a, marker, _)| out.contains(*a) && f.code.contains(marker))
        .flat_map(|(_, _, extra)| extra.iter().map(|s| s.to_string()))
        .collect();
    out.extend(implied);
    for (op, action) in OPERATION_ACTIONS {
        if out.remove(*op) {
            out.insert(action.to_string());
        }
    }
    out
}

/// The SDK clients' services as the action strings name them.
const SERVICE_PREFIXES: &[(&str, &str)] = &[
    ("iam", "IAM"),
    ("sts", "STS"),
    ("s3", "S3"),
    ("cloudtrail", "CloudTrail"),
    ("organizations", "Organizations"),
];

fn key(f: &Func) -> String {
    format!("{}::{}", f.file, f.name)
}

/// Every action `entry` can reach, skipping the functions in `except`,
/// each with the call chain that first reached it.
fn reachable(funcs: &[Func], entry: &str, except: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let start: Vec<usize> = funcs
        .iter()
        .enumerate()
        .filter(|(_, f)| key(f) == entry)
        .map(|(i, _)| i)
        .collect();
    assert!(
        !start.is_empty(),
        "no function {entry} in src/ (update the table in tests/policies.rs)"
    );
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (j, g) in funcs.iter().enumerate() {
        by_name.entry(g.name.as_str()).or_default().push(j);
    }
    let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
    let mut seen: BTreeSet<usize> = start.iter().copied().collect();
    let mut queue: VecDeque<usize> = start.into_iter().collect();
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    while let Some(i) = queue.pop_front() {
        let f = &funcs[i];
        for a in actions_in(f) {
            let mut chain = vec![key(f)];
            let mut at = i;
            while let Some(&p) = parent.get(&at) {
                chain.push(key(&funcs[p]));
                at = p;
            }
            chain.reverse();
            found.entry(a).or_default().insert(chain.join(" > "));
        }
        for call in calls(&f.code) {
            let name = match &call {
                Call::Method(n) | Call::Path(_, n) | Call::Bare(n) => n,
            };
            let Some(candidates) = by_name.get(name.as_str()) else {
                continue;
            };
            // A bare name the caller's own file defines is that function.
            let local = matches!(call, Call::Bare(_))
                && candidates
                    .iter()
                    .any(|&j| funcs[j].owner.is_none() && funcs[j].file == f.file);
            for &j in candidates {
                let g = &funcs[j];
                if seen.contains(&j) || except.contains(&key(g).as_str()) || !resolves(g, &call, f)
                {
                    continue;
                }
                if local && g.file != f.file {
                    continue;
                }
                seen.insert(j);
                parent.insert(j, i);
                queue.push_back(j);
            }
        }
    }
    found
}

/// The actions a policy document allows (every Allow statement).
fn granted(doc: &serde_json::Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let stmts = match &doc["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        s => vec![s.clone()],
    };
    for s in stmts {
        assert_eq!(
            s["Effect"], "Allow",
            "only Allow statements are expected: {s}"
        );
        match &s["Action"] {
            serde_json::Value::String(a) => {
                out.insert(a.clone());
            }
            serde_json::Value::Array(a) => {
                out.extend(a.iter().map(|x| x.as_str().unwrap().to_string()))
            }
            other => panic!("Action {other}"),
        }
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn read_doc(path: &str) -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// What `commands` need, derived from the code.
fn needed(funcs: &[Func], commands: &[Command]) -> BTreeMap<String, BTreeSet<String>> {
    let mut need: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in commands {
        let base = c.beyond.map(|doc| {
            let (_, cmds) = POLICIES
                .iter()
                .find(|(d, _)| *d == doc)
                .expect("`beyond` names a document of the table");
            needed(funcs, cmds)
        });
        for (action, via) in reachable(funcs, c.entry, c.except) {
            if NEED_NO_PERMISSION.contains(&action.as_str())
                || base.as_ref().is_some_and(|b| b.contains_key(&action))
            {
                continue;
            }
            need.entry(action)
                .or_default()
                .extend(via.into_iter().map(|v| format!("{} via {v}", c.name)));
        }
    }
    need
}

/// Each document against the table: what is missing, what is too much.
fn mismatches(
    funcs: &[Func],
    doc_path: &str,
    doc: &serde_json::Value,
    commands: &[Command],
) -> Vec<String> {
    let need = needed(funcs, commands);
    let have = granted(doc);
    let mut out = Vec::new();
    for (a, why) in &need {
        if !have.contains(a) {
            out.push(format!(
                "{doc_path} lacks {a}, which {} call(s)",
                why.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    for a in &have {
        if !need.contains_key(a) {
            out.push(format!(
                "{doc_path} grants {a}, which none of its commands call"
            ));
        }
    }
    out
}

#[test]
fn each_policy_grants_exactly_what_its_commands_call() {
    let funcs = functions(&src());
    let mut problems = Vec::new();
    for (doc_path, commands) in POLICIES {
        problems.extend(mismatches(&funcs, doc_path, &read_doc(doc_path), commands));
    }
    // Every action the code names is some document's.
    let all: BTreeSet<String> = funcs.iter().flat_map(actions_in).collect();
    let covered: BTreeSet<String> = POLICIES
        .iter()
        .flat_map(|(d, _)| granted(&read_doc(d)))
        .collect();
    for a in all.difference(&covered) {
        if !NEED_NO_PERMISSION.contains(&a.as_str()) {
            problems.push(format!(
                "{a} is called but no policy document in the table grants it"
            ));
        }
    }
    // Every policy document in docs/ is in the table.
    for e in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")).unwrap() {
        let name = format!("docs/{}", e.unwrap().file_name().to_string_lossy());
        if name.ends_with("-policy.json") && !POLICIES.iter().any(|(d, _)| *d == name) {
            problems.push(format!("{name} is not in the table of tests/policies.rs"));
        }
    }
    assert!(
        problems.is_empty(),
        "policy documents and code disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// The action strings are the operations the functions send: each string
/// names an SDK operation called in the same function (or one of the
/// operations mapped in OPERATION_ACTIONS), and every function that sends
/// an SDK request names at least one action.
#[test]
fn action_strings_match_the_sdk_calls() {
    let funcs = functions(&src());
    let snake = |s: &str| {
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            let prev_upper = i > 0 && s.chars().nth(i - 1).is_some_and(|p| p.is_uppercase());
            let next_lower = s.chars().nth(i + 1).is_some_and(|n| n.is_lowercase());
            if c.is_uppercase() && i > 0 && (!prev_upper || next_lower) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    };
    let mut problems = Vec::new();
    let mut checked = 0;
    for f in funcs.iter().filter(|f| f.file.starts_with("aws/")) {
        let sends = f.code.contains(".send()") || f.code.contains(".into_paginator()");
        let acts = actions_in(f);
        if sends && acts.is_empty() {
            problems.push(format!(
                "{} sends an AWS request but names no action",
                key(f)
            ));
        }
        for a in &acts {
            let op = a.split(':').nth(1).unwrap_or_default();
            let op = OPERATION_ACTIONS
                .iter()
                .find(|(_, act)| act == a)
                .map_or(op, |(o, _)| o.split(':').nth(1).unwrap());
            let word = snake(op);
            let called = f
                .code
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|w| w == word);
            let implied = IMPLIED
                .iter()
                .any(|(_, _, extra)| extra.contains(&a.as_str()));
            if sends && !called && !implied && a != "sts:AssumeRole" {
                // Action strings handed to a helper that makes the call.
                let helper = funcs
                    .iter()
                    .any(|g| g.file == f.file && g.code.contains(&format!(".{word}()")));
                if !helper {
                    problems.push(format!("{} names {a} but sends no {}()", key(f), snake(op)));
                }
            }
            checked += 1;
        }
    }
    assert!(
        checked > 30,
        "only {checked} action strings found: the parser is blind"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The test can fail: a document missing one action its commands call is
/// caught, and so is one granting an action none calls.
#[test]
fn a_policy_missing_or_adding_an_action_is_caught() {
    let funcs = functions(&src());
    for (doc_path, commands) in POLICIES {
        let doc = read_doc(doc_path);
        let first = granted(&doc)
            .into_iter()
            .next()
            .expect("a document grants something");
        let mut less = doc.clone();
        for s in less["Statement"].as_array_mut().unwrap() {
            if s["Action"] == serde_json::json!(first) {
                s["Action"] = serde_json::json!([]);
            }
            if let Some(a) = s["Action"].as_array_mut() {
                a.retain(|x| x != &serde_json::json!(first));
            }
        }
        let found = mismatches(&funcs, doc_path, &less, commands);
        assert!(
            found.iter().any(|m| m.contains(&format!("lacks {first}"))),
            "{doc_path} without {first}: {found:?}"
        );
        let mut more = doc.clone();
        let action = &mut more["Statement"][0]["Action"];
        if let Some(one) = action.as_str().map(str::to_string) {
            *action = serde_json::json!([one]);
        }
        action
            .as_array_mut()
            .expect("a statement's Action")
            .push(serde_json::json!("iam:DeleteUser"));
        let found = mismatches(&funcs, doc_path, &more, commands);
        assert!(
            found.iter().any(|m| m.contains("grants iam:DeleteUser")),
            "{found:?}"
        );
    }
}

/// Deletes are narrowed to mfakey's own devices where IAM allows it:
/// DeleteVirtualMFADevice is authorized against the device (resource type
/// `mfa`, which supports aws:ResourceTag), so the statement requires the
/// tag mfakey puts on every device it creates.
#[test]
fn deleting_devices_needs_mfakeys_tag() {
    let doc = read_doc("docs/iam-policy.json");
    let stmts = doc["Statement"].as_array().unwrap();
    let delete: Vec<&serde_json::Value> = stmts
        .iter()
        .filter(|s| {
            s["Action"]
                .as_array()
                .is_some_and(|a| a.contains(&serde_json::json!("iam:DeleteVirtualMFADevice")))
        })
        .collect();
    assert_eq!(delete.len(), 1, "{delete:?}");
    assert_eq!(
        delete[0]["Condition"]["StringEquals"]["aws:ResourceTag/mfakey:managed"], "true",
        "{}",
        delete[0]
    );
    assert_eq!(
        delete[0]["Action"].as_array().unwrap().len(),
        1,
        "the condition must apply to the delete alone"
    );
}
