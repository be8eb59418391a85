//! The bulk run's report file: CSV, or JSON when the name ends in `.json`.
//! Names, ARNs and statuses only; never a secret.

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
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let body = if json {
        let doc = serde_json::json!({ "bulk_run": bulk_run, "users": results });
        let mut s = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
        s.push('\n');
        s.into_bytes()
    } else {
        csv_bytes(results)?
    };
    let tmp = path.with_extension("tmp-report");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(&body)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

fn csv_bytes(results: &[UserResult]) -> std::io::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER).map_err(std::io::Error::other)?;
    for r in results {
        let status = serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        w.write_record([
            r.user.clone(),
            r.account.clone().unwrap_or_default(),
            r.key_serial.map(|s| s.to_string()).unwrap_or_default(),
            r.device_arn.clone().unwrap_or_default(),
            r.credential_id.clone().unwrap_or_default(),
            r.touch.to_string(),
            status,
            r.error.clone().unwrap_or_default(),
        ])
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
