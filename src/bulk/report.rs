//! The bulk run's report file: CSV, or JSON when the name ends in `.json`.
//! Names, ARNs and statuses only; never a secret. A CSV cell that a
//! spreadsheet would run as a formula is neutralized; the file is written
//! through a new, unguessable temporary file (O_EXCL, O_NOFOLLOW, 0600)
//! renamed over the report, so no planted link is ever written through.

use super::UserResult;
use std::io::Write;
use std::path::Path;

/// The report's columns, in order.
pub(crate) const HEADER: [&str; 8] = [
    "user",
    "account",
    "key_serial",
    "device_arn",
    "credential_id",
    "touch",
    "status",
    "error",
];

/// Writes the report (mode 0600, replacing the file through a temporary one).
pub(crate) fn write(path: &Path, bulk_run: &str, results: &[UserResult]) -> std::io::Result<()> {
    let body = body(path, bulk_run, results)?;
    let (tmp, mut f) = create_temp(path)?;
    let done = f
        .write_all(&body)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// A new file beside `path`, named `.NAME.RANDOM.tmp`: created only if
/// nothing (not even a link) has that name, never through a link, 0600.
fn create_temp(path: &Path) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    for _ in 0..16 {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).map_err(std::io::Error::other)?;
        let suffix: String = r.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = dir.join(format!(".{name}.{suffix}.tmp"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "no free temporary name beside the report after 16 tries",
    ))
}

/// The report's bytes: JSON when the name ends in `.json`, else CSV.
fn body(path: &Path, bulk_run: &str, results: &[UserResult]) -> std::io::Result<Vec<u8>> {
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if json {
        let doc = serde_json::json!({ "bulk_run": bulk_run, "users": results });
        let mut s = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
        s.push('\n');
        Ok(s.into_bytes())
    } else {
        csv_bytes(results)
    }
}

/// A cell a spreadsheet would take for a formula (it starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return) gets a leading `'`, which shows it
/// as text.
fn cell(value: String) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value
    }
}

fn csv_bytes(results: &[UserResult]) -> std::io::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER).map_err(std::io::Error::other)?;
    for r in results {
        let status = serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        w.write_record(
            [
                r.user.clone(),
                r.account.clone().unwrap_or_default(),
                r.key_serial.map(|s| s.to_string()).unwrap_or_default(),
                r.device_arn.clone().unwrap_or_default(),
                r.credential_id.clone().unwrap_or_default(),
                r.touch.to_string(),
                status,
                r.error.clone().unwrap_or_default(),
            ]
            .map(cell),
        )
        .map_err(std::io::Error::other)?;
    }
    w.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::Status;

    fn results() -> Vec<UserResult> {
        vec![
            UserResult {
                user: "alice".into(),
                account: Some("123456789012".into()),
                key_serial: Some(7),
                device_arn: Some("arn:aws:iam::123456789012:mfa/alice-yk7".into()),
                credential_id: Some("Amazon Web Services:alice@123456789012".into()),
                touch: true,
                status: Status::Enrolled,
                error: None,
            },
            UserResult {
                user: "bob".into(),
                account: None,
                key_serial: None,
                device_arn: None,
                credential_id: None,
                touch: false,
                status: Status::Failed,
                error: Some("no such user, \"bob\"".into()),
            },
        ]
    }

    /// Cells a spreadsheet would take for a formula (=, +, -, @, and the
    /// tab and carriage return that also start one) get a leading `'`.
    #[test]
    fn csv_cells_that_start_a_formula_are_neutralized() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut r = results();
        r[0].user = "=HYPERLINK(\"http://evil.example\",\"x\")".into();
        r[0].credential_id = Some("+SUM(1,2)".into());
        r[1].user = "-2+3".into();
        r[1].error = Some("@cmd|' /C calc'!A0".into());
        r[1].device_arn = Some("\t=1+1".into());
        r[1].account = Some("\r=1".into());
        write(&path, "run1", &r).unwrap();
        let mut rd = csv::Reader::from_path(&path).unwrap();
        let rows: Vec<csv::StringRecord> = rd.records().map(|x| x.unwrap()).collect();
        for row in &rows {
            for cell in row {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{cell:?} would be a formula"
                );
            }
        }
        assert_eq!(&rows[0][0], "'=HYPERLINK(\"http://evil.example\",\"x\")");
        assert_eq!(&rows[1][0], "'-2+3");
        assert_eq!(&rows[1][7], "'@cmd|' /C calc'!A0");
        // Ordinary cells are untouched.
        assert_eq!(&rows[0][6], "enrolled");
    }

    /// A symbolic link where the report's temporary file would go is never
    /// followed: the temporary file is new (O_EXCL), unguessable and not a
    /// link (O_NOFOLLOW), mode 0600.
    #[test]
    fn the_report_never_writes_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("r.csv");
        for guess in ["r.tmp-report", ".r.csv.tmp", "r.csv.tmp"] {
            std::os::unix::fs::symlink(&victim, dir.path().join(guess)).unwrap();
        }
        write(&path, "run1", &results()).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Nothing else is left beside it but the planted links.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [".r.csv.tmp", "r.csv", "r.csv.tmp", "r.tmp-report", "victim"]
        );
    }

    #[test]
    fn csv_and_json_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        let csv_path = dir.path().join("r.csv");
        write(&csv_path, "run1", &results()).unwrap();
        let text = std::fs::read_to_string(&csv_path).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(HEADER.join(",").as_str()));
        assert_eq!(
            lines.next(),
            Some("alice,123456789012,7,arn:aws:iam::123456789012:mfa/alice-yk7,Amazon Web Services:alice@123456789012,true,enrolled,")
        );
        assert_eq!(
            lines.next(),
            Some("bob,,,,,false,failed,\"no such user, \"\"bob\"\"\"")
        );
        let json_path = dir.path().join("r.JSON");
        write(&json_path, "run1", &results()).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        assert_eq!(v["bulk_run"], "run1");
        assert_eq!(v["users"][0]["status"], "enrolled");
        assert_eq!(v["users"][1]["error"], "no such user, \"bob\"");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&csv_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
