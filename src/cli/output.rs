//! Rendering: every command returns a JSON value and a text form; this module
//! prints one or the other. JSON documents carry `schema_version`.

use super::error::CliError;
use serde_json::{json, Value};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy)]
pub struct Output {
    pub json: bool,
}

/// What a command produced.
pub struct Report {
    pub json: Value,
    pub text: String,
}

impl Report {
    pub fn new(json: Value, text: impl Into<String>) -> Self {
        Report {
            json,
            text: text.into(),
        }
    }
}

impl Output {
    pub fn report(&self, report: &Report) {
        if self.json {
            let mut doc = json!({ "schema_version": SCHEMA_VERSION });
            if let (Some(d), Some(r)) = (doc.as_object_mut(), report.json.as_object()) {
                for (k, v) in r {
                    d.insert(k.clone(), v.clone());
                }
            }
            println!("{doc}");
        } else if !report.text.is_empty() {
            println!("{}", report.text.trim_end());
        }
    }

    /// Errors go to stderr as text, and also to stdout as JSON with `--json`.
    pub fn error(&self, e: &CliError) {
        eprintln!("error: {}", e.message);
        if self.json {
            self.error_json_only(e);
        }
    }

    /// The JSON error document alone (the text was printed by someone else).
    pub fn error_json_only(&self, e: &CliError) {
        println!(
            "{}",
            json!({
                "schema_version": SCHEMA_VERSION,
                "error": { "kind": e.kind, "message": e.message, "exit_code": e.exit },
            })
        );
    }

    /// A line for the operator (prompts, touch requests, progress): stderr.
    pub fn notice(&self, line: &str) {
        eprintln!("{line}");
    }
}
