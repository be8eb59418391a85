//! Daily use after enrollment, in the AWS tools' own conventions: the
//! current code for a profile's `mfa_serial` (`mfakey code`, usable as
//! aws-vault's `mfa_process`), and the shared config file's profile that
//! points at the device (`profile`, written by `enroll user
//! --configure-profile`).
//!
//! Which credential a device ARN means: mfakey tags each device it creates
//! with `mfakey:user` and `mfakey:key-serial`, and the key with that serial
//! holds `Amazon Web Services:<user>@<account>`. The device name mfakey
//! chooses, `<user>-yk<serial>`, says the same without asking IAM, so that
//! is tried first (aws-vault runs its `mfa_process` without handing it any
//! AWS credentials); a device with another name is looked up by its tags.
//! Either way the key must hold the credential: nothing is guessed.
//!
//! A code is no secret like a seed (it is typed into consoles and expires
//! in 30 s); the seed never leaves the key here.

pub(crate) mod profile;
#[cfg(test)]
mod tests;

use crate::aws::{AwsError, IamApi};
use crate::enroll::naming::AWS_ISSUER;
use crate::enroll::{TAG_KEY_SERIAL, TAG_USER};
use crate::oath::{Code, CodeResult, Credential, OathError, OathSession};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum DailyError {
    #[error("\"{0}\" is not a virtual MFA device ARN (arn:aws:iam::ACCOUNT:mfa/NAME)")]
    NotMfaArn(String),
    #[error("{0} is a FIDO security key: AWS asks it for a touch in the browser, it has no codes")]
    SecurityKey(String),
    #[error("cannot find the key of {arn}: its name is not mfakey's <user>-yk<serial>, and its tags could not be read ({source}); run it with AWS credentials that may call iam:ListMFADeviceTags")]
    Tags {
        arn: String,
        #[source]
        source: AwsError,
    },
    #[error("{0} carries no mfakey:user and mfakey:key-serial tags: mfakey did not put it on a key (use `mfakey oath code NAME` for a credential you added by hand)")]
    Untagged(String),
    #[error("key {serial} holds no AWS credential of user {user} (`mfakey oath list` shows what it holds)")]
    NotOnKey { user: String, serial: String },
    #[error("key {serial} holds several AWS credentials of user {user} ({}), none labelled with account {account}: use `mfakey oath code NAME`", .ids.join(", "))]
    Ambiguous {
        user: String,
        serial: String,
        account: String,
        ids: Vec<String>,
    },
    #[error("{user} was enrolled ({arn}), but {source}")]
    AfterEnrollment {
        user: String,
        arn: String,
        #[source]
        source: Box<profile::ProfileError>,
    },
    #[error("key {serial}'s credential {id} gives no code: {why}")]
    NoCode {
        serial: String,
        id: String,
        why: String,
    },
    #[error(transparent)]
    Oath(#[from] OathError),
}

impl crate::error::Classify for DailyError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            DailyError::NotMfaArn(_) => Kind::InvalidArgument,
            DailyError::SecurityKey(_) => Kind::Unsupported,
            DailyError::Tags { source, .. } => source.kind(),
            DailyError::Untagged(_) | DailyError::NotOnKey { .. } => Kind::NoSuchCredential,
            DailyError::Ambiguous { .. } => Kind::AmbiguousCredential,
            DailyError::AfterEnrollment { source, .. } => source.kind(),
            DailyError::NoCode { .. } => Kind::Oath,
            DailyError::Oath(e) => e.kind(),
        }
    }
}

/// A virtual MFA device, from its ARN `arn:PARTITION:iam::ACCOUNT:mfa/[PATH/]NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Device {
    pub arn: String,
    pub account: String,
    pub name: String,
}

impl Device {
    pub(crate) fn parse(arn: &str) -> Result<Device, DailyError> {
        let bad = || DailyError::NotMfaArn(arn.to_string());
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [arn_word, partition, "iam", "", account, resource] = parts[..] else {
            return Err(bad());
        };
        if arn_word != "arn"
            || !partition.starts_with("aws")
            || account.len() != 12
            || !account.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        if resource.starts_with("u2f/") {
            return Err(DailyError::SecurityKey(arn.to_string()));
        }
        let name = match resource.strip_prefix("mfa/") {
            Some(rest) => rest.rsplit('/').next().unwrap_or_default(),
            None => return Err(bad()),
        };
        if !crate::enroll::naming::valid_device_name(name) {
            return Err(bad());
        }
        Ok(Device {
            arn: arn.to_string(),
            account: account.to_string(),
            name: name.to_string(),
        })
    }
}

/// Points the planned profile at `user`'s new device `arn` (after `enroll
/// user` succeeded; the plan was checked before it started).
pub(crate) fn configure_profile(
    plan: &profile::Plan,
    user: &str,
    arn: &str,
) -> Result<profile::Applied, DailyError> {
    profile::apply(plan, arn).map_err(|source| DailyError::AfterEnrollment {
        user: user.to_string(),
        arn: arn.to_string(),
        source: Box::new(source),
    })
}

/// Whose credential, on which key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Owner {
    pub user: String,
    pub key_serial: u32,
    /// `device_name` or `tags`: how it was found.
    pub found_by: &'static str,
}

/// The owner mfakey's default device name `<user>-yk<serial>` spells.
pub(crate) fn owner_by_name(device: &Device) -> Option<Owner> {
    let (user, serial) = device.name.rsplit_once("-yk")?;
    if user.is_empty() || serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Owner {
        user: user.to_string(),
        key_serial: serial.parse().ok()?,
        found_by: "device_name",
    })
}

/// The owner the device's `mfakey:user` and `mfakey:key-serial` tags name.
pub(crate) async fn owner_by_tags(iam: &impl IamApi, device: &Device) -> Result<Owner, DailyError> {
    let tags = iam
        .mfa_device_tags(&device.arn)
        .await
        .map_err(|source| DailyError::Tags {
            arn: device.arn.clone(),
            source,
        })?;
    let tag = |k: &str| {
        tags.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    match (
        tag(TAG_USER),
        tag(TAG_KEY_SERIAL).and_then(|s| s.parse().ok()),
    ) {
        (Some(user), Some(key_serial)) if !user.is_empty() => Ok(Owner {
            user,
            key_serial,
            found_by: "tags",
        }),
        _ => Err(DailyError::Untagged(device.arn.clone())),
    }
}

/// The current code of the owner's AWS credential on the key.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CurrentCode {
    pub credential_id: String,
    pub code: String,
    /// Unix time the code stops being current.
    pub valid_to: u64,
    pub touch: bool,
}

/// The owner's credential among the key's (`Amazon Web Services:<user>` or
/// `…:<user>@<label>`): the only one, else the one labelled with the
/// device's account id.
fn choose<'a>(
    all: &'a [(Credential, CodeResult)],
    owner: &Owner,
    device: &Device,
) -> Result<&'a (Credential, CodeResult), DailyError> {
    let prefix = format!("{}@", owner.user);
    let mine: Vec<&(Credential, CodeResult)> = all
        .iter()
        .filter(|(c, _)| {
            c.id.issuer.as_deref() == Some(AWS_ISSUER)
                && (c.id.name == owner.user || c.id.name.starts_with(&prefix))
        })
        .collect();
    match mine[..] {
        [] => Err(DailyError::NotOnKey {
            user: owner.user.clone(),
            serial: owner.key_serial.to_string(),
        }),
        [one] => Ok(one),
        _ => {
            let exact = format!("{}@{}", owner.user, device.account);
            mine.iter()
                .copied()
                .find(|(c, _)| c.id.name == exact)
                .ok_or_else(|| DailyError::Ambiguous {
                    user: owner.user.clone(),
                    serial: owner.key_serial.to_string(),
                    account: device.account.clone(),
                    ids: mine.iter().map(|(c, _)| c.id.to_id_string()).collect(),
                })
        }
    }
}

/// Reads the owner's current code from the key (`on_touch` first when the
/// credential wants a touch).
pub(crate) fn current_code(
    session: &mut OathSession<'_>,
    owner: &Owner,
    device: &Device,
    now: u64,
    on_touch: &mut dyn FnMut(),
) -> Result<CurrentCode, DailyError> {
    let all = session.calculate_all(now)?;
    let (cred, result) = choose(&all, owner, device)?;
    let (code, touch): (Code, bool) = match result {
        CodeResult::Code(c) => (c.clone(), false),
        CodeResult::TouchRequired => {
            on_touch();
            (session.calculate(cred, now)?, true)
        }
        CodeResult::Hotp => (session.calculate(cred, now)?, false),
        CodeResult::Unavailable(why) => {
            return Err(DailyError::NoCode {
                serial: owner.key_serial.to_string(),
                id: cred.id.to_id_string(),
                why: why.clone(),
            })
        }
    };
    Ok(CurrentCode {
        credential_id: cred.id.to_id_string(),
        code: code.value.clone(),
        valid_to: code.valid_to,
        touch,
    })
}
