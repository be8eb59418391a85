//! A real browser for the audit's HTML page: Debian's chromium, headless,
//! with a fresh profile and nothing that talks to the network on its own.
//! `--dump-dom` prints the document after it loaded and its script ran.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The page's DOM after loading in chromium.
pub fn dump_dom(page: &Path) -> String {
    let profile = tempfile::Builder::new()
        .prefix("mfakey-chromium-")
        .tempdir()
        .expect("tempdir");
    let url = format!(
        "file://{}",
        page.canonicalize().expect("page path").display()
    );
    let out = Command::new("timeout")
        .arg(Duration::from_secs(60).as_secs().to_string())
        .args([
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", &url])
        .output()
        .expect("chromium (Debian package chromium; tests/setup.sh installs it)");
    assert!(
        out.status.success(),
        "chromium failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 DOM")
}

/// The attributes of every start tag of `tag` whose class list has
/// `class`, as (name, unescaped value) pairs.
pub fn elements(dom: &str, tag: &str, class: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let open = format!("<{tag} ");
    let mut rest = dom;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let end = after.find('>').expect("a closed start tag");
        let attrs = attributes(&after[..end]);
        let classes = attrs
            .iter()
            .find(|(k, _)| k == "class")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if classes.split(' ').any(|c| c == class) {
            out.push(attrs);
        }
        rest = &after[end..];
    }
    out
}

/// One attribute of an element.
pub fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> &'a str {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// `name="value"` pairs of a start tag (as chromium serializes them:
/// double quotes, entities for `&`, `"`, `<`, `>`).
fn attributes(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim().to_string();
        let value_start = &rest[eq + 2..];
        let close = value_start.find('"').expect("closing quote");
        out.push((name, unescape(&value_start[..close])));
        rest = value_start[close + 1..].trim_start();
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The root element's attribute `name` (set by the page's script).
pub fn root_attr(dom: &str, name: &str) -> String {
    let start = dom.find("<html").expect("<html");
    let end = start + dom[start..].find('>').expect(">");
    let attrs = attributes(&dom[start + 5..end]);
    attr(&attrs, name).to_string()
}
