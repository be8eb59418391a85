//! `bulk --dry-run`: every manifest row checked against IAM, read-only, no key.

use super::manifest::Row;
use super::{account_key, Accounts};
use crate::aws::{AwsError, IamApi, VirtualMfaDevice};
use crate::enroll::naming;
use crate::enroll::preflight;
use serde::Serialize;
use std::collections::HashMap;

/// What IAM says about one row.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RowCheck {
    pub line: usize,
    pub user: String,
    /// The device name, when it does not depend on the key (given, or the key is pinned).
    pub device_name: Option<String>,
    pub mfa_devices: Option<usize>,
    /// `--create-users` would create this user.
    pub create: bool,
    /// Empty: the row would go through.
    pub problems: Vec<String>,
}

/// Checks every row: the user exists, has room for one more MFA device, and
/// the device name is free (a missing user is fine with `create_users`).
/// Read-only: creates nothing.
pub(crate) async fn check<I: IamApi>(
    accounts: &Accounts<'_, I>,
    rows: &[Row],
    create_users: bool,
) -> Result<Vec<RowCheck>, AwsError> {
    let mut virtuals_of: HashMap<Option<String>, Vec<VirtualMfaDevice>> = HashMap::new();
    let mut out = Vec::new();
    for row in rows {
        let iam = accounts.for_row(row);
        let key = account_key(row);
        if !virtuals_of.contains_key(&key) {
            let v = iam.list_virtual_mfa_devices(false).await?;
            virtuals_of.insert(key.clone(), v);
        }
        let virtuals = &virtuals_of[&key];
        let device_name = row.device_name.clone().or_else(|| {
            row.key_serial
                .map(|s| naming::default_device_name(&row.user, Some(s)))
        });
        let facts = preflight::user_facts(iam, &row.user, device_name.as_deref(), virtuals).await?;
        let (create, mut problems) = (facts.missing && create_users, facts.problems);
        if facts.missing && !create_users {
            problems.insert(
                0,
                format!(
                    "no IAM user {} (create it first, or pass --create-users)",
                    row.user
                ),
            );
        }
        let count = facts.mfa_devices;
        out.push(RowCheck {
            line: row.line,
            user: row.user.clone(),
            device_name,
            mfa_devices: count,
            create,
            problems,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::{FakeIam, Op};
    use crate::bulk::manifest;

    #[test]
    fn reports_missing_users_full_users_and_taken_names_without_writing() {
        let iam = FakeIam::new();
        iam.add_user("alice");
        iam.add_user("carol");
        for i in 0..crate::enroll::MAX_MFA_DEVICES {
            iam.add_other_mfa_device("carol", &format!("arn:aws:iam::123456789012:u2f/c{i}"));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(iam.create_virtual_mfa_device("taken", "/", &[]))
            .unwrap();
        let rows =
            manifest::parse("user,device_name\nalice,\nbob,\ncarol,\nalice2,taken\n").unwrap();
        iam.add_user("alice2");
        let checks = rt
            .block_on(check(&Accounts::single(&iam), &rows, false))
            .unwrap();
        let with_create = rt
            .block_on(check(&Accounts::single(&iam), &rows, true))
            .unwrap();
        assert!(with_create[1].create && with_create[1].problems.is_empty());
        assert!(checks[0].problems.is_empty(), "{:?}", checks[0]);
        assert_eq!(checks[0].mfa_devices, Some(0));
        assert!(checks[1].problems[0].contains("no IAM user bob"));
        assert!(checks[2].problems[0].contains("8 MFA devices"));
        assert!(checks[3].problems[0].contains("named taken already exists"));
        let writes = iam
            .calls()
            .iter()
            .filter(|c| {
                matches!(
                    c.op(),
                    Op::CreateVirtualMfaDevice | Op::EnableMfaDevice | Op::DeleteVirtualMfaDevice
                )
            })
            .count();
        assert_eq!(writes, 1, "only the test's own create");
    }
}
