//! `mfakey inventory`: every virtual MFA device mfakey put on a key, by key
//! serial (account, user, device, enable date), and the users whose MFA
//! lives on a single key: no second key, and no other MFA device.

use super::accounts::Account;
use super::revoke::in_account;
use super::{tagged_devices, LifecycleError, Tagged};
use crate::aws::{AwsError, IamApi};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Device {
    pub account_id: String,
    /// The user it is enabled for; `None`: unassigned (an enrollment that
    /// never finished, or a revoke that stopped part way).
    pub user: Option<String>,
    pub device_arn: String,
    /// When it was enabled (RFC 3339, UTC).
    pub enable_date: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Key {
    /// `None`: devices whose tags name no key.
    pub key_serial: Option<u32>,
    pub devices: Vec<Device>,
}

/// A user whose MFA is all on one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct SingleKey {
    pub account_id: String,
    pub user: String,
    pub key_serial: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Inventory {
    pub accounts: Vec<String>,
    pub keys: Vec<Key>,
    pub single_key_users: Vec<SingleKey>,
}

/// Reads every account's devices and each of their users' MFA devices.
pub(crate) async fn inventory<I: IamApi>(
    accounts: &[Account<'_, I>],
) -> Result<Inventory, LifecycleError> {
    let mut by_key: BTreeMap<Option<u32>, Vec<Device>> = BTreeMap::new();
    let mut single = Vec::new();
    for a in accounts {
        let tagged = tagged_devices(a.iam, &a.id)
            .await
            .map_err(|source| in_account(a, source))?;
        let users: BTreeMap<&str, Vec<&Tagged>> =
            tagged.iter().fold(BTreeMap::new(), |mut m, t| {
                if let Some(u) = &t.user {
                    m.entry(u.as_str()).or_insert_with(Vec::new).push(t);
                }
                m
            });
        let mut dates = BTreeMap::new();
        for (user, mine) in &users {
            let all = match a.iam.list_mfa_devices(user).await {
                Ok(all) => all,
                Err(AwsError::NoSuchEntity { .. }) => continue,
                Err(e) => return Err(in_account(a, e)),
            };
            for d in &all {
                dates.insert(d.serial.clone(), d.enable_date);
            }
            let keys: std::collections::BTreeSet<Option<u32>> =
                mine.iter().map(|t| t.key_serial).collect();
            let others = all
                .iter()
                .filter(|d| !mine.iter().any(|t| t.device_arn == d.serial))
                .count();
            if keys.len() == 1 && others == 0 {
                single.push(SingleKey {
                    account_id: a.id.clone(),
                    user: user.to_string(),
                    key_serial: mine[0].key_serial,
                });
            }
        }
        for t in tagged {
            let enable_date = dates.get(&t.device_arn).copied().flatten().map(rfc3339);
            by_key.entry(t.key_serial).or_default().push(Device {
                account_id: t.account_id,
                user: t.user,
                device_arn: t.device_arn,
                enable_date,
            });
        }
    }
    Ok(Inventory {
        accounts: accounts.iter().map(|a| a.id.clone()).collect(),
        keys: by_key
            .into_iter()
            .map(|(key_serial, devices)| Key {
                key_serial,
                devices,
            })
            .collect(),
        single_key_users: single,
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_rfc3339_utc() {
        let at = |s| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
