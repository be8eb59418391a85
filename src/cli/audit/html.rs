//! `audit --html FILE`: the report as one self-contained page, drawn from
//! the same JSON document `--json` prints, so the two cannot disagree. No
//! network resource: styles and the one script are inline, and the page's
//! Content-Security-Policy forbids anything else (the script is allowed
//! by its hash). The script only measures: it marks on the root element
//! that the page was laid out and how many findings are visible, which is
//! what a browser test reads back.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::report::refs_text;

/// The page's one script: measures the laid-out page.
const SCRIPT: &str = "(function(){var d=document.documentElement;\
var f=document.querySelectorAll('article.finding'),n=0;\
for(var i=0;i<f.length;i++){var r=f[i].getBoundingClientRect();if(r.width>0&&r.height>0)n++;}\
d.setAttribute('data-visible-findings',String(n));\
d.setAttribute('data-rendered','yes');})();";

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1b1b1b}\
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
.sev-critical{background:#fbe3e4}.sev-high{background:#fdebd3}.sev-medium{background:#fff6d6}\
.sev-low{background:#eef4fb}.sev-info{background:#f3f3f3}\
article.finding{border-left:4px solid #999;padding:.25em .75em;margin:.5em 0}\
article.finding h4{margin:.2em 0}dl{margin:.2em 0}dt{font-weight:600;float:left;width:6em}dd{margin-left:6.5em}\
.reason{color:#7a1f1f}code{font-family:ui-monospace,monospace}";

const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];

/// Text and attribute values, escaped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Standard base64 (for the script's CSP hash).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One account, as the page shows it: id, name, and its audit (or why not).
struct Account<'a> {
    id: &'a str,
    name: &'a str,
    status: &'a str,
    reason: &'a str,
    audit: Option<&'a Value>,
}

fn accounts(doc: &Value) -> Vec<Account<'_>> {
    if let Some(org) = doc.get("organization") {
        let list = org.get("accounts").and_then(Value::as_array);
        return list
            .into_iter()
            .flatten()
            .map(|a| Account {
                id: text(a, "account_id"),
                name: text(a, "name"),
                status: text(a, "status"),
                reason: text(a, "reason"),
                audit: a.get("audit"),
            })
            .collect();
    }
    let audit = doc.get("audit");
    vec![Account {
        id: audit.map_or("", |a| text(a, "account_id")),
        name: "",
        status: "audited",
        reason: "",
        audit,
    }]
}

fn findings(audit: Option<&Value>) -> &[Value] {
    audit
        .and_then(|a| a.get("findings"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn references(f: &Value) -> String {
    let get = |k: &str| f.get("references")?.get(k)?.as_str();
    refs_text(get("cis"), get("security_hub"), get("prowler"))
}

fn finding_html(out: &mut String, account: &str, f: &Value) {
    let sev = text(f, "severity");
    out.push_str(&format!(
        "<article class=\"finding sev-{}\" data-account=\"{}\" data-id=\"{}\" data-severity=\"{}\" data-subject=\"{}\">\
         <h4><code>{}</code> {}</h4><dl><dt>evidence</dt><dd>{}</dd><dt>remedy</dt><dd>{}</dd>",
        esc(sev),
        esc(account),
        esc(text(f, "id")),
        esc(sev),
        esc(text(f, "subject")),
        esc(text(f, "id")),
        esc(text(f, "title")),
        esc(text(f, "evidence")),
        esc(text(f, "remedy")),
    ));
    let refs = references(f);
    if !refs.is_empty() {
        out.push_str(&format!("<dt>see</dt><dd>{}</dd>", esc(&refs)));
    }
    out.push_str("</dl></article>\n");
}

fn account_html(out: &mut String, a: &Account) {
    out.push_str(&format!(
        "<section class=\"account\" id=\"account-{0}\" data-account=\"{0}\" data-status=\"{1}\">\n<h2>Account {0} {2}</h2>\n",
        esc(a.id),
        esc(a.status),
        esc(a.name)
    ));
    if a.audit.is_none() {
        out.push_str(&format!(
            "<p class=\"reason\">{}: {}</p>\n",
            esc(&a.status.replace('_', " ")),
            esc(a.reason)
        ));
    }
    let all = findings(a.audit);
    for sev in SEVERITIES {
        let group: Vec<&Value> = all.iter().filter(|f| text(f, "severity") == sev).collect();
        if group.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "<h3 class=\"sev-{sev}\">{} ({})</h3>\n",
            sev.to_uppercase(),
            group.len()
        ));
        for f in group {
            finding_html(out, a.id, f);
        }
    }
    let checks = a
        .audit
        .and_then(|x| x.get("checks"))
        .and_then(Value::as_array);
    if let Some(checks) = checks {
        out.push_str("<details><summary>checks</summary><table><tr><th>check</th><th>status</th><th>detail</th></tr>\n");
        for c in checks {
            out.push_str(&format!(
                "<tr class=\"check\" data-check=\"{0}\" data-status=\"{1}\"><td>{0}</td><td>{1}</td><td>{2}</td></tr>\n",
                esc(text(c, "check")),
                esc(text(c, "status")),
                esc(text(c, "detail"))
            ));
        }
        out.push_str("</table></details>\n");
    }
    out.push_str("</section>\n");
}

fn count_cells(a: &Account) -> String {
    SEVERITIES
        .iter()
        .map(|s| {
            let n = findings(a.audit)
                .iter()
                .filter(|f| text(f, "severity") == *s)
                .count();
            format!("<td class=\"count\" data-severity=\"{s}\">{n}</td>")
        })
        .collect()
}

/// The summary at the top: the verdict, every account, and (for an
/// organization) how many accounts have each finding.
fn summary_html(out: &mut String, doc: &Value, list: &[Account]) {
    let top = doc.get("organization").or_else(|| doc.get("audit"));
    let result = top.map_or("", |t| text(t, "result"));
    out.push_str(&format!(
        "<section id=\"summary\" data-result=\"{0}\"><p>Result: <strong>{1}</strong> (fail-on {2})</p>\n",
        esc(result),
        esc(&result.to_uppercase()),
        esc(top.map_or("", |t| text(t, "fail_on")))
    ));
    out.push_str("<table id=\"accounts\"><tr><th>account</th><th>name</th><th>status</th>");
    for s in SEVERITIES {
        out.push_str(&format!("<th>{s}</th>"));
    }
    out.push_str("</tr>\n");
    for a in list {
        out.push_str(&format!(
            "<tr class=\"account-row\" data-account=\"{0}\" data-status=\"{2}\"><td><a href=\"#account-{0}\">{0}</a></td><td>{1}</td><td>{2}</td>{3}</tr>\n",
            esc(a.id),
            esc(a.name),
            esc(a.status),
            count_cells(a)
        ));
    }
    out.push_str("</table>\n");
    let counts = doc
        .pointer("/organization/summary/findings")
        .and_then(Value::as_array);
    if let Some(counts) = counts.filter(|c| !c.is_empty()) {
        out.push_str("<h3>Findings across accounts</h3><table id=\"finding-counts\"><tr><th>severity</th><th>finding</th><th>accounts</th></tr>\n");
        for c in counts {
            out.push_str(&format!(
                "<tr class=\"finding-count sev-{0}\" data-id=\"{1}\" data-accounts=\"{2}\"><td>{0}</td><td><code>{1}</code></td><td>{2}</td></tr>\n",
                esc(text(c, "severity")),
                esc(text(c, "id")),
                c.get("accounts").and_then(Value::as_u64).unwrap_or(0)
            ));
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

/// The page for the report `doc` (the `--json` document).
pub(super) fn page(doc: &Value) -> String {
    let list = accounts(doc);
    let title = match doc.get("organization") {
        Some(o) => format!(
            "mfakey audit of organization {}",
            text(o, "organization_id")
        ),
        None => "mfakey audit".to_string(),
    };
    let hash = base64(&Sha256::digest(SCRIPT.as_bytes()));
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'\">\n\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    summary_html(&mut out, doc, &list);
    for a in &list {
        account_html(&mut out, a);
    }
    out.push_str(&format!("<script>{SCRIPT}</script>\n</body></html>\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_as_the_rfc_gives_it() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
    }

    #[test]
    fn everything_from_aws_is_escaped_and_nothing_is_fetched() {
        let doc = json!({"audit": {"result": "fail", "fail_on": "high", "account_id": "123456789012",
            "checks": [], "findings": [{"id": "user-console-without-mfa", "severity": "high",
            "subject": "<img src=x onerror=alert(1)>", "title": "t\"", "evidence": "a&b", "remedy": "r'"}]}});
        let p = page(&doc);
        assert!(!p.contains("<img"), "{p}");
        assert!(p.contains("&lt;img src=x onerror=alert(1)&gt;") && p.contains("a&amp;b"));
        for bad in ["http:", "https:", "src=\"", "<link", "@import", "url("] {
            assert!(!p.contains(bad), "{bad}");
        }
    }
}
