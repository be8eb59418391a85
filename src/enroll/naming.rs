//! Names mfakey chooses: the IAM virtual MFA device name and the credential
//! id on the key.

use crate::oath::{CredentialId, OathType, MAX_ID_LEN};

/// The issuer AWS itself puts in its otpauth label.
pub(crate) const AWS_ISSUER: &str = "Amazon Web Services";

/// Longest virtual MFA device name IAM takes.
pub(crate) const MAX_DEVICE_NAME: usize = 226;

/// Whether `name` fits IAM's pattern for virtual MFA device names, `[\w+=,.@-]+`.
pub(crate) fn valid_device_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_DEVICE_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// Whether `path` is an IAM path: `/` alone, or `/`-delimited and ending in `/`.
pub(crate) fn valid_path(path: &str) -> bool {
    path.starts_with('/')
        && path.ends_with('/')
        && path.len() <= 512
        && path.chars().all(|c| ('\u{21}'..='\u{7E}').contains(&c))
}

/// `<user>-yk<serial>`: unique per user and key, within IAM's pattern
/// (IAM user names use the same character set).
pub(crate) fn default_device_name(user: &str, key_serial: Option<u32>) -> String {
    let suffix = match key_serial {
        Some(s) => format!("-yk{s}"),
        None => "-yubikey".to_string(),
    };
    let keep = MAX_DEVICE_NAME - suffix.len();
    let mut base: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c))
        .collect();
    base.truncate(keep);
    format!("{base}{suffix}")
}

/// The credential id for an IAM user's device, as AWS labels it:
/// `Amazon Web Services:<user>@<account label>`. Over the 64-byte budget it
/// gives up, in order: the alias (for the account id), the account part,
/// then the end of the user name (marked with `~`).
pub(crate) fn credential_id(user: &str, account_label: &str, account_id: &str) -> CredentialId {
    let candidates = [
        format!("{user}@{account_label}"),
        format!("{user}@{account_id}"),
        user.to_string(),
    ];
    for name in &candidates {
        let id = CredentialId::new(Some(AWS_ISSUER), name, OathType::Totp, 30);
        if id.to_bytes().len() <= MAX_ID_LEN {
            return id;
        }
    }
    let budget = MAX_ID_LEN - AWS_ISSUER.len() - 1 - 1;
    let mut name = String::new();
    for c in user.chars() {
        if name.len() + c.len_utf8() > budget {
            break;
        }
        name.push(c);
    }
    name.push('~');
    CredentialId::new(Some(AWS_ISSUER), &name, OathType::Totp, 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_fit_iam() {
        assert_eq!(
            default_device_name("alice", Some(12345678)),
            "alice-yk12345678"
        );
        assert!(valid_device_name(&default_device_name(
            "a.b+c=d,e@f_g-h",
            Some(1)
        )));
        let long = "u".repeat(300);
        let n = default_device_name(&long, Some(4294967295));
        assert_eq!(n.len(), MAX_DEVICE_NAME);
        assert!(n.ends_with("-yk4294967295"));
        assert!(!valid_device_name("bad name"));
        assert!(!valid_device_name(""));
        assert!(valid_path("/"));
        assert!(valid_path("/team/ops/"));
        assert!(!valid_path("team/"));
        assert!(!valid_path("/team"));
    }

    #[test]
    fn credential_id_is_aws_style_and_fits() {
        let id = credential_id("alice", "acme-prod", "123456789012");
        assert_eq!(id.to_string(), "Amazon Web Services:alice@acme-prod");
        // A long alias falls back to the account id.
        let id = credential_id("alice", &"x".repeat(60), "123456789012");
        assert_eq!(id.to_string(), "Amazon Web Services:alice@123456789012");
        // A long user name drops the account, then is cut with a marker.
        let user = "a.very.long.firstname.lastname.contractor";
        let id = credential_id(user, "acme", "123456789012");
        assert_eq!(id.name, user);
        let user = "u".repeat(64);
        let id = credential_id(&user, "acme", "123456789012");
        assert_eq!(id.to_bytes().len(), MAX_ID_LEN);
        assert!(id.name.ends_with('~'));
        // Multi-byte characters are never split.
        let user = "é".repeat(40);
        let id = credential_id(&user, "acme", "123456789012");
        assert!(id.to_bytes().len() <= MAX_ID_LEN);
        assert!(id.name.ends_with('~'));
    }
}
