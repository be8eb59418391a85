//! Which account each manifest row is in: the command line's, or the one a
//! row's `profile` or `role_arn` names.

use super::manifest::Row;
use std::collections::HashMap;

/// The IAM client of each account a manifest names: the default one (the
/// command line's), and one per `profile` / `role_arn` value.
pub(crate) struct Accounts<'a, I> {
    pub default: &'a I,
    /// Keyed by [`account_key`].
    pub by_key: HashMap<String, &'a I>,
}

impl<'a, I> Accounts<'a, I> {
    /// Every row in the command line's account.
    #[cfg(test)]
    pub fn single(iam: &'a I) -> Self {
        Accounts {
            default: iam,
            by_key: HashMap::new(),
        }
    }

    /// The client for `row` (the default one for rows naming no account).
    pub(crate) fn for_row(&self, row: &Row) -> &'a I {
        account_key(row)
            .and_then(|k| self.by_key.get(&k).copied())
            .unwrap_or(self.default)
    }
}

/// Which account a row names: `profile:NAME` or `role:ARN`; `None` for the default.
pub(crate) fn account_key(row: &Row) -> Option<String> {
    match (&row.profile, &row.role_arn) {
        (Some(p), _) => Some(format!("profile:{p}")),
        (None, Some(r)) => Some(format!("role:{r}")),
        (None, None) => None,
    }
}
