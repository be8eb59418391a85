//! Reading IAM policy documents: does one grant everything?
//!
//! What is checked, and only that: an `Allow` statement whose `Action` is
//! `*` (or `*:*`) and whose `Resource` is `*` (a `Condition`, such as MFA
//! present, still leaves an administrator who meets it). Deny
//! statements, permission boundaries, SCPs and `NotAction` are not weighed:
//! the audit says so in its evidence.

use serde_json::Value;

/// AWS's managed policy that grants everything.
pub const ADMINISTRATOR_ACCESS: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

/// IAM returns policy documents URL-encoded (RFC 3986); decodes `%XX`
/// (and leaves a document that is already plain JSON as it is).
pub fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn as_list(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// True when the document (JSON, or URL-encoded JSON) has an `Allow` of every action on every resource. An unreadable document grants
/// nothing here.
pub fn grants_everything(document: &str) -> bool {
    let text = if document.trim_start().starts_with('{') {
        document.to_string()
    } else {
        url_decode(document)
    };
    let Ok(doc) = serde_json::from_str::<Value>(&text) else {
        return false;
    };
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => return false,
    };
    statements.iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && as_list(s.get("Action"))
                .iter()
                .any(|a| *a == "*" || *a == "*:*")
            && as_list(s.get("Resource")).contains(&"*")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_decoding() {
        assert_eq!(url_decode("%7B%22a%22%3A1%7D"), "{\"a\":1}");
        assert_eq!(url_decode("plain"), "plain");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz"), "%zz");
    }

    #[test]
    fn admin_documents() {
        let admin = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        assert!(grants_everything(admin));
        let single = r#"{"Statement":{"Effect":"Allow","Action":["s3:*","*"],"Resource":["*"]}}"#;
        assert!(grants_everything(single));
        let encoded = "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
        assert!(grants_everything(encoded));
        let with_mfa = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}]}"#;
        assert!(grants_everything(with_mfa));
    }

    #[test]
    fn non_admin_documents() {
        for doc in [
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b"}]}"#,
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}"#,
            "not json",
        ] {
            assert!(!grants_everything(doc), "{doc}");
        }
    }
}
