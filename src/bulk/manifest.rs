//! The bulk manifest: a CSV file with a header, one IAM user per row.
//! Every bad row is found before anything starts and reported together,
//! with the row's line number in the file (the header is line 1).

use crate::enroll::naming;
use std::path::Path;

/// The columns a manifest may have; `user` is required.
pub(crate) const COLUMNS: [&str; 8] = [
    "user",
    "device_name",
    "touch",
    "key_serial",
    "profile",
    "role_arn",
    "groups",
    "keys",
];

/// One user to enroll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    /// Line number in the file (the header is line 1).
    pub line: usize,
    pub user: String,
    pub device_name: Option<String>,
    /// `None`: the command line's `--touch`/`--no-touch` decides.
    pub touch: Option<bool>,
    /// The only key this user may be enrolled on.
    pub key_serial: Option<u32>,
    pub profile: Option<String>,
    pub role_arn: Option<String>,
    /// For `--create-users`; separated by `;` or spaces.
    pub groups: Vec<String>,
    /// How many keys (1, or 2 with a backup); `None`: `--keys` decides.
    pub keys: Option<u8>,
}

/// One problem in the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RowError {
    /// Line number (1 = the header).
    pub line: usize,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ManifestError {
    #[error("cannot read the manifest {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the manifest has {} problem(s); fix them and run again:\n{}", .0.len(), list(.0))]
    Invalid(Vec<RowError>),
}

impl crate::error::Classify for ManifestError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::InvalidManifest
    }
}

fn list(errors: &[RowError]) -> String {
    errors
        .iter()
        .map(|e| format!("  line {}: {}", e.line, e.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads and checks the manifest at `path`.
pub(crate) fn load(path: &Path) -> Result<Vec<Row>, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}

/// Parses and checks a manifest's text.
pub(crate) fn parse(text: &str) -> Result<Vec<Row>, ManifestError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let (header, mut errors) = read_header(&mut reader)?;
    let mut rows: Vec<Row> = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                errors.push(RowError {
                    line,
                    message: format!("not a valid CSV row: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let mut bad = |message: String| errors.push(RowError { line, message });
        let row = read_row(&header, &record, line, &mut bad);
        against_earlier_rows(&row, &rows, &mut bad);
        rows.push(row);
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(RowError {
            line: 2,
            message: "the manifest lists no users".into(),
        });
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(ManifestError::Invalid(errors))
    }
}

/// The header's columns (lower case) and what is wrong with them; a header
/// that is no CSV, or names no `user`, ends the parse.
fn read_header(
    reader: &mut csv::Reader<&[u8]>,
) -> Result<(Vec<String>, Vec<RowError>), ManifestError> {
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.to_ascii_lowercase()).collect(),
        Err(e) => {
            return Err(ManifestError::Invalid(vec![RowError {
                line: 1,
                message: format!("not a CSV header: {e}"),
            }]))
        }
    };
    let mut errors = Vec::new();
    for (i, c) in header.iter().enumerate() {
        if !COLUMNS.contains(&c.as_str()) {
            errors.push(RowError {
                line: 1,
                message: format!(
                    "unknown column \"{c}\" (column {}); known columns: {}",
                    i + 1,
                    COLUMNS.join(", ")
                ),
            });
        }
        if header[..i].contains(c) {
            errors.push(RowError {
                line: 1,
                message: format!("column \"{c}\" appears twice"),
            });
        }
    }
    if !header.iter().any(|c| c == "user") {
        errors.push(RowError {
            line: 1,
            message: "no \"user\" column: the header must name it (for example `user,device_name`)"
                .into(),
        });
        return Err(ManifestError::Invalid(errors));
    }
    Ok((header, errors))
}

/// One row's fields, each checked on its own (`bad` collects problems).
fn read_row(
    header: &[String],
    record: &csv::StringRecord,
    line: usize,
    bad: &mut dyn FnMut(String),
) -> Row {
    let field = |name: &str| {
        header
            .iter()
            .position(|c| c == name)
            .and_then(|i| record.get(i))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let user = field("user").unwrap_or_default();
    if user.is_empty() {
        bad("empty user".into());
    } else if !valid_user_name(&user) {
        bad(format!(
            "user \"{user}\" is not an IAM user name (1 to 64 of A-Z a-z 0-9 _+=,.@-)"
        ));
    }
    let device_name = field("device_name");
    if let Some(n) = device_name
        .as_ref()
        .filter(|n| !naming::valid_device_name(n))
    {
        bad(format!(
            "device_name \"{n}\" must be 1 to 226 of A-Z a-z 0-9 _+=,.@-"
        ));
    }
    let touch = field("touch").and_then(|t| {
        let b = parse_bool(&t);
        if b.is_none() {
            bad(format!(
                "touch \"{t}\" is not one of yes, no, true, false, 1, 0"
            ));
        }
        b
    });
    let key_serial = field("key_serial").and_then(|s| match s.parse::<u32>() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            bad(format!(
                "key_serial \"{s}\" is not a key serial number (1 to 4294967295)"
            ));
            None
        }
    });
    let (profile, role_arn) = (field("profile"), field("role_arn"));
    if let Some(arn) = role_arn.as_ref().filter(|a| !valid_role_arn(a)) {
        bad(format!(
            "role_arn \"{arn}\" is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"
        ));
    }
    if profile.is_some() && role_arn.is_some() {
        bad("give profile or role_arn, not both".into());
    }
    let groups: Vec<String> = field("groups")
        .map(|g| {
            g.split([';', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    for g in groups
        .iter()
        .filter(|g| !valid_user_name(g) || g.len() > 128)
    {
        bad(format!("group \"{g}\" is not an IAM group name"));
    }
    let keys = field("keys").and_then(|k| match k.as_str() {
        "1" => Some(1),
        "2" => Some(2),
        _ => {
            bad(format!("keys \"{k}\" is not 1 or 2 (2: a backup key too)"));
            None
        }
    });
    Row {
        line,
        user,
        device_name,
        touch,
        key_serial,
        profile,
        role_arn,
        groups,
        keys,
    }
}

/// What a row may not repeat of the rows before it: its user, its key.
fn against_earlier_rows(row: &Row, rows: &[Row], bad: &mut dyn FnMut(String)) {
    // IAM user names are unique regardless of case ("Alice" is "alice").
    let checked = valid_user_name(&row.user);
    if let Some(first) = rows
        .iter()
        .find(|r| checked && r.user.eq_ignore_ascii_case(&row.user))
    {
        let spelled = if first.user == row.user {
            String::new()
        } else {
            format!(
                " as \"{}\"): IAM user names are not case-sensitive",
                first.user
            )
        };
        let close = if spelled.is_empty() { ")" } else { "" };
        bad(format!(
            "duplicate user \"{}\" (first on line {}{spelled}{close}",
            row.user, first.line
        ));
    }
    if let Some(s) = row.key_serial {
        if let Some(other) = rows.iter().find(|r| r.key_serial == Some(s)) {
            bad(format!(
                "key_serial {s} is already pinned to {} (line {}): one key holds one user's enrollment per run",
                other.user, other.line
            ));
        }
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "y" => Some(true),
        "no" | "false" | "0" | "n" => Some(false),
        _ => None,
    }
}

/// IAM user (and group) names: 1 to 64 of `A-Za-z0-9_+=,.@-`.
pub(crate) fn valid_user_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

/// `arn:<partition>:iam::<12 digits>:role/<path/>NAME`.
pub(crate) fn valid_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let [arn, partition, iam, region, account, resource] = parts.as_slice() else {
        return false;
    };
    let name_ok = resource
        .strip_prefix("role/")
        .and_then(|r| r.rsplit('/').next())
        .is_some_and(|n| {
            (1..=64).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
        });
    *arn == "arn"
        && matches!(*partition, "aws" | "aws-cn" | "aws-us-gov")
        && *iam == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && name_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<RowError> {
        match parse(text) {
            Err(ManifestError::Invalid(e)) => e,
            other => panic!("expected errors, got {other:?}"),
        }
    }

    fn has(errs: &[RowError], line: usize, needle: &str) -> bool {
        errs.iter()
            .any(|e| e.line == line && e.message.contains(needle))
    }

    #[test]
    fn reads_every_column() {
        let rows = parse(
            "user,device_name,touch,key_serial,profile,groups\n\
             alice,,yes,12345678,,admins;ops\n\
             bob,bob-desk,no,,prod,\n\
             carol\n",
        );
        // `carol` alone has too few fields: flexible(false) refuses it.
        assert!(rows.is_err());
        let rows = parse(
            "user,device_name,touch,key_serial,profile,groups\n\
             alice,,yes,12345678,,admins;ops\n\
             bob,bob-desk,no,,prod,\n\
             carol,,,,,\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].touch, Some(true));
        assert_eq!(rows[0].key_serial, Some(12_345_678));
        assert_eq!(rows[0].groups, vec!["admins", "ops"]);
        assert_eq!(rows[1].device_name.as_deref(), Some("bob-desk"));
        assert_eq!(rows[1].touch, Some(false));
        assert_eq!(rows[1].profile.as_deref(), Some("prod"));
        assert_eq!(rows[2].touch, None);
        assert_eq!(rows[2].line, 4);
    }

    #[test]
    fn user_column_alone_is_enough_and_comments_are_skipped() {
        let rows = parse("user\n# a comment\nalice\nbob\n").unwrap();
        assert_eq!(
            rows.iter().map(|r| r.user.as_str()).collect::<Vec<_>>(),
            ["alice", "bob"]
        );
    }

    #[test]
    fn unknown_column_is_reported_on_the_header() {
        let e = errors("user,colour\nalice,red\n");
        assert!(has(&e, 1, "unknown column \"colour\""), "{e:?}");
    }

    #[test]
    fn missing_user_column_is_reported() {
        let e = errors("device_name\nx\n");
        assert!(has(&e, 1, "no \"user\" column"), "{e:?}");
    }

    #[test]
    fn empty_user_is_reported() {
        let e = errors("user,touch\nalice,yes\n,no\n");
        assert!(has(&e, 3, "empty user"), "{e:?}");
    }

    #[test]
    fn duplicate_user_names_the_first_line() {
        let e = errors("user\nalice\nbob\nalice\n");
        assert!(
            has(&e, 4, "duplicate user \"alice\" (first on line 2)"),
            "{e:?}"
        );
    }

    #[test]
    fn duplicate_users_differ_only_in_case() {
        // IAM user names are unique without regard to case: Alice is alice.
        let e = errors("user\nalice\nbob\nAlice\nBOB\n");
        assert!(
            has(
                &e,
                4,
                "duplicate user \"Alice\" (first on line 2 as \"alice\")"
            ),
            "{e:?}"
        );
        assert!(has(&e, 5, "duplicate user \"BOB\""), "{e:?}");
        assert_eq!(e.len(), 2, "{e:?}");
    }

    #[test]
    fn bad_role_arn_is_reported() {
        let e = errors("user,role_arn\nalice,arn:aws:iam::123:role/x\nbob,arn:aws:iam::123456789012:user/bob\ncarol,arn:aws:iam::123456789012:role/ops/Enroller\n");
        assert!(has(&e, 2, "role_arn"), "{e:?}");
        assert!(has(&e, 3, "role_arn"), "{e:?}");
        assert!(!e.iter().any(|x| x.line == 4), "{e:?}");
    }

    #[test]
    fn bad_serial_is_reported() {
        let e = errors("user,key_serial\nalice,12x\nbob,0\ncarol,99999999999\ndave,7\n");
        for line in [2, 3, 4] {
            assert!(has(&e, line, "key_serial"), "line {line}: {e:?}");
        }
        assert_eq!(e.len(), 3);
    }

    #[test]
    fn serial_pinned_twice_is_reported() {
        let e = errors("user,key_serial\nalice,7\nbob,7\n");
        assert!(has(&e, 3, "already pinned to alice"), "{e:?}");
    }

    #[test]
    fn keys_are_one_or_two() {
        let rows = parse("user,keys\nalice,2\nbob,1\ncarol,\n").unwrap();
        let keys: Vec<Option<u8>> = rows.iter().map(|r| r.keys).collect();
        assert_eq!(keys, [Some(2), Some(1), None]);
        let e = errors("user,keys\nalice,3\nbob,two\n");
        assert!(has(&e, 2, "keys \"3\" is not 1 or 2"), "{e:?}");
        assert!(has(&e, 3, "keys \"two\""), "{e:?}");
    }

    #[test]
    fn bad_touch_value_is_reported() {
        let e = errors("user,touch\nalice,maybe\n");
        assert!(has(&e, 2, "touch \"maybe\""), "{e:?}");
    }

    #[test]
    fn bad_names_and_both_profile_and_role_are_reported() {
        let e = errors(
            "user,device_name,profile,role_arn\nal ice,,,\nbob,bad/name,,\ncarol,,p,arn:aws:iam::123456789012:role/r\n",
        );
        assert!(has(&e, 2, "not an IAM user name"), "{e:?}");
        assert!(has(&e, 3, "device_name"), "{e:?}");
        assert!(has(&e, 4, "not both"), "{e:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = errors(
            "user,touch,key_serial,role_arn,extra\n\
             ,yes,1,,\n\
             alice,perhaps,,,\n\
             alice,,abc,,\n\
             bob,,,arn:nope,\n",
        );
        assert!(has(&e, 1, "unknown column \"extra\""));
        assert!(has(&e, 2, "empty user"));
        assert!(has(&e, 3, "touch"));
        assert!(has(&e, 4, "duplicate user"));
        assert!(has(&e, 4, "key_serial"));
        assert!(has(&e, 5, "role_arn"));
        let text = ManifestError::Invalid(e).to_string();
        assert!(text.contains("6 problem(s)"), "{text}");
        assert!(text.contains("line 5: role_arn"), "{text}");
    }

    #[test]
    fn an_empty_manifest_is_refused() {
        let e = errors("user\n");
        assert!(has(&e, 2, "no users"), "{e:?}");
    }
}
