//! What the package ships beside the binary comes from the same clap
//! definitions as `--help`: one man page per command and subcommand, and
//! completion scripts that know every command and option `--help` shows.
//! The real binary; no test stack needed.

mod common;

use common::process::mfakey;
use std::collections::BTreeSet;

fn help(path: &[&str]) -> String {
    let mut args: Vec<&str> = path.to_vec();
    args.push("--help");
    let r = mfakey(&args, b"", &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    r.stdout
}

/// The subcommands a help text lists (`help` itself aside).
fn subcommands(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            inside = true;
        } else if inside && line.starts_with("  ") {
            let name = line.split_whitespace().next().unwrap_or_default();
            if name != "help" {
                out.push(name.to_string());
            }
        } else if inside {
            break;
        }
    }
    out
}

/// The long options a help text defines (its option lines).
fn options(help: &str) -> BTreeSet<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .flat_map(|l| {
            l.split([' ', ',', '=', '<', '[', '.'])
                .filter(|w| w.starts_with("--") && w.len() > 2)
                .map(str::to_string)
                .collect::<Vec<_>>()
                .into_iter()
                .take(1)
        })
        .collect()
}

/// Every command path: `[]`, `["oath"]`, `["oath", "add"]`, …
fn all_commands() -> Vec<Vec<String>> {
    let mut todo = vec![Vec::<String>::new()];
    let mut out = Vec::new();
    while let Some(path) = todo.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        for sub in subcommands(&help(&args)) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
        out.push(path);
    }
    out
}

#[test]
fn one_man_page_per_command_with_the_options_of_its_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man");
    let r = mfakey(&["man", out.to_str().unwrap()], b"", &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let commands = all_commands();
    assert!(commands.len() > 20, "{commands:?}");
    let mut expected = BTreeSet::new();
    for path in &commands {
        let page = if path.is_empty() {
            "mfakey.1".to_string()
        } else {
            format!("mfakey-{}.1", path.join("-"))
        };
        let text = std::fs::read_to_string(out.join(&page))
            .unwrap_or_else(|e| panic!("no page {page} for {path:?}: {e}"));
        let roff = text.replace("\\-", "-");
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let h = help(&args);
        for opt in options(&h) {
            assert!(roff.contains(&opt), "{page} lacks {opt}");
        }
        for sub in subcommands(&h) {
            assert!(roff.contains(&sub), "{page} lacks subcommand {sub}");
        }
        expected.insert(page);
    }
    // No page for anything `--help` does not show (`man` itself).
    let made: BTreeSet<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(made, expected);
}

#[test]
fn completions_know_every_command_and_option_help_shows() {
    let commands = all_commands();
    for shell in ["bash", "zsh", "fish"] {
        let r = mfakey(&["completions", shell], b"", &[]);
        assert_eq!(r.code, Some(0), "{r:?}");
        let script = &r.stdout;
        for path in &commands {
            // clap_complete's fish script goes two subcommands deep: the
            // options of `fido2 credentials delete` and its like are not
            // completed in fish (bash and zsh have every level).
            if shell == "fish" && path.len() > 2 {
                continue;
            }
            if let Some(last) = path.last() {
                assert!(script.contains(last.as_str()), "{shell}: no {last}");
            }
            let args: Vec<&str> = path.iter().map(String::as_str).collect();
            for opt in options(&help(&args)) {
                let spelled = match shell {
                    "fish" => format!("-l {}", &opt[2..]),
                    _ => opt.clone(),
                };
                assert!(
                    script.contains(&spelled),
                    "{shell}: no {spelled} ({path:?})"
                );
            }
        }
        assert!(
            !script.contains(" man "),
            "{shell} completes the hidden `man`"
        );
    }
    let r = mfakey(&["completions", "tcsh"], b"", &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
}

#[test]
fn the_account_label_has_one_spelling_and_the_old_one_still_works() {
    for path in [
        ["enroll", "user"],
        ["enroll", "root"],
        ["enroll", "console"],
    ] {
        let h = help(&path);
        assert!(h.contains("--account-label"), "{path:?}");
        assert!(!h.contains("--label-account"), "{path:?} shows the alias");
        // The hidden alias parses (the error is about what is still missing).
        let mut args: Vec<&str> = path.to_vec();
        args.extend(["--label-account", "acme", "--bogus"]);
        let r = mfakey(&args, b"", &[]);
        assert!(r.stderr.contains("'--bogus'"), "{path:?}: {}", r.stderr);
    }
}
