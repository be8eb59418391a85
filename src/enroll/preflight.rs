//! Preflight: everything that can refuse an enrollment is looked at before
//! anything is made. The IAM half ([`user_facts`]) is shared with
//! `bulk --dry-run`, which reports the same refusals row by row.

use super::naming;
use super::{EnrollError, EnrollOptions, KeyTarget, MAX_CLOCK_SKEW, MAX_MFA_DEVICES, TAG_MANAGED};
use crate::aws::{AwsError, IamApi, User, VirtualMfaDevice};
use crate::credential::{self, Placement};
use crate::oath::{Credential, CredentialId};
use std::time::SystemTime;

/// What an enrollment will make, decided by preflight.
pub(crate) struct Plan {
    pub account_id: String,
    pub device_name: String,
    pub cred_id: CredentialId,
    pub placement: Placement,
}

/// A device of the account with the name an enrollment wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NameTaken {
    pub serial: String,
    /// The user it is enabled for, if any.
    pub user: Option<String>,
    /// Unassigned and tagged by mfakey: left by an earlier run.
    pub left_by_mfakey: bool,
}

impl NameTaken {
    /// What to do about it.
    pub(crate) fn hint(&self) -> String {
        match (&self.user, self.left_by_mfakey) {
            (Some(u), _) => format!(", assigned to {u}: choose another --device-name"),
            (None, true) => format!(
                ", left unassigned by an earlier mfakey run: remove it with `mfakey cleanup --delete` (or `aws iam delete-virtual-mfa-device --serial-number {}`)",
                self.serial
            ),
            (None, false) => format!(
                ", unassigned: remove it with `aws iam delete-virtual-mfa-device --serial-number {}` or choose another --device-name",
                self.serial
            ),
        }
    }
}

/// The device of the account named `name`, if any. AWS's listing carries no
/// tags: they are read for an unassigned match only (unreadable tags: not
/// taken for mfakey's).
pub(crate) async fn name_taken<I: IamApi>(
    iam: &I,
    virtuals: &[VirtualMfaDevice],
    name: &str,
) -> Option<NameTaken> {
    let d = virtuals
        .iter()
        .find(|d| d.serial.rsplit('/').next() == Some(name))?;
    let left_by_mfakey = d.user.is_none() && {
        let tags = if d.tags.is_empty() {
            iam.mfa_device_tags(&d.serial).await.unwrap_or_default()
        } else {
            d.tags.clone()
        };
        tags.iter().any(|(k, _)| k == TAG_MANAGED)
    };
    Some(NameTaken {
        serial: d.serial.clone(),
        user: d.user.clone(),
        left_by_mfakey,
    })
}

/// Refuses a user at IAM's limit of MFA devices.
pub(crate) fn room_for_one_more(user: &str, devices: usize) -> Result<(), EnrollError> {
    if devices >= MAX_MFA_DEVICES {
        return Err(EnrollError::TooManyDevices {
            user: user.to_string(),
            count: devices,
        });
    }
    Ok(())
}

/// Checks the options that need neither IAM nor the key; the device name.
fn check_options(opts: &EnrollOptions, key_serial: Option<u32>) -> Result<String, EnrollError> {
    if opts.user.is_empty() {
        return Err(EnrollError::Invalid {
            what: "user name",
            why: "it is empty".into(),
        });
    }
    if !naming::valid_path(&opts.path) {
        return Err(EnrollError::Invalid {
            what: "--path",
            why: format!(
                "\"{}\" must start and end with / (for example /team/)",
                opts.path
            ),
        });
    }
    let device_name = match &opts.device_name {
        Some(n) => n.clone(),
        None => naming::default_device_name(&opts.user, key_serial),
    };
    if !naming::valid_device_name(&device_name) {
        return Err(EnrollError::Invalid {
            what: "device name",
            why: format!("\"{device_name}\" must be 1 to 226 of A-Z a-z 0-9 _+=,.@-"),
        });
    }
    Ok(device_name)
}

/// What preflight knows before IAM answers: the device name (the options
/// checked) and what the key holds (one LIST, in the enrollment's own
/// exclusive session).
pub(crate) struct Local {
    pub device_name: String,
    creds: Vec<Credential>,
}

/// The options, then the key's credentials.
pub(crate) fn local(
    key: &mut KeyTarget<'_, '_>,
    opts: &EnrollOptions,
) -> Result<Local, EnrollError> {
    let device_name = check_options(opts, key.serial)?;
    let creds = key.session.list()?;
    Ok(Local { device_name, creds })
}

impl Local {
    /// Whether the key takes the credential whatever IAM answers: it has a
    /// free slot, and no AWS credential whose id the new one could turn out
    /// to have (the id's account part comes from IAM). Then nothing on the
    /// key can refuse the enrollment, and the create may go out with the
    /// IAM reads.
    pub(crate) fn key_takes_it(&self, user: &str, capacity: usize) -> bool {
        self.creds.len() < capacity && !self.creds.iter().any(|c| may_be_id_of(&c.id, user))
    }
}

/// Whether `id` may be the credential id [`naming::credential_id`] gives
/// `user` for some account (`user@…`, `user`, or the user cut short with `~`).
fn may_be_id_of(id: &CredentialId, user: &str) -> bool {
    if id.issuer.as_deref() != Some(naming::AWS_ISSUER) {
        return false;
    }
    match id.name.strip_suffix('~') {
        Some(cut) => user.starts_with(cut),
        None => id.name.starts_with(user),
    }
}

/// IAM's answers preflight needs.
pub(crate) struct Facts {
    pub user: User,
    devices: usize,
    /// The account's virtual devices, when listed (for the name check).
    pub virtuals: Option<Vec<VirtualMfaDevice>>,
    alias: Option<String>,
    server: SystemTime,
    host: SystemTime,
}

/// Whether preflight lists the account's virtual devices with its reads:
/// only to refuse a taken name before anything is created. A create that
/// goes out at once is itself refused for a taken name (IAM names are
/// unique), and the listing, which takes one request per page in a large
/// account, is then made only to say whose the name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Listing {
    WithTheReads,
    IfNeeded,
}

/// The independent IAM reads at once (one round trip's latency, not four;
/// the alias and AWS's clock come in one answer).
pub(crate) async fn read_iam<I: IamApi>(
    iam: &I,
    opts: &EnrollOptions,
    listing: Listing,
) -> Result<Facts, AwsError> {
    let virtuals = async {
        match listing {
            Listing::WithTheReads => iam.list_virtual_mfa_devices(false).await.map(Some),
            Listing::IfNeeded => Ok(None),
        }
    };
    let (user, devices, virtuals, (alias, server, host)) = tokio::try_join!(
        iam.get_user(&opts.user),
        iam.list_mfa_devices(&opts.user),
        virtuals,
        iam.account_alias_and_clocks(),
    )?;
    Ok(Facts {
        user,
        devices: devices.len(),
        virtuals,
        alias,
        server,
        host,
    })
}

/// Whether [`decide`] looks for a device of the planned name: not when a
/// create of that name has just succeeded (IAM names are unique, so the
/// name was free).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameCheck {
    Look,
    FreeByCreate,
}

/// Every refusal, given IAM's answers and the key's list: fewer than 8 MFA
/// devices, no device of the name, the host clock, then the key: a free
/// slot, and no credential with the id unless `--force` (which then needs
/// a slot beside it). The plan.
pub(crate) async fn decide<I: IamApi>(
    iam: &I,
    facts: &Facts,
    local: &Local,
    capacity: usize,
    opts: &EnrollOptions,
    run: &str,
    names: NameCheck,
) -> Result<Plan, EnrollError> {
    room_for_one_more(&opts.user, facts.devices)?;
    if names == NameCheck::Look {
        let virtuals = facts.virtuals.as_deref().unwrap_or_default();
        name_free(iam, virtuals, &local.device_name).await?;
    }
    check_clock(facts.server, facts.host)?;
    let account_id = facts.user.account_id.clone();
    let label = opts
        .account_label
        .clone()
        .or_else(|| facts.alias.clone())
        .unwrap_or_else(|| account_id.clone());
    let cred_id = naming::credential_id(&opts.user, &label, &account_id);
    cred_id.check_len()?;
    let placement = credential::placement_among(&local.creds, capacity, &cred_id, opts.force, run)?;
    Ok(Plan {
        account_id,
        device_name: local.device_name.clone(),
        cred_id,
        placement,
    })
}

/// Refuses a name some device of the account already has.
pub(crate) async fn name_free<I: IamApi>(
    iam: &I,
    virtuals: &[VirtualMfaDevice],
    name: &str,
) -> Result<(), EnrollError> {
    match name_taken(iam, virtuals, name).await {
        Some(taken) => Err(EnrollError::DeviceNameTaken {
            name: name.to_string(),
            hint: taken.hint(),
            serial: taken.serial,
        }),
        None => Ok(()),
    }
}

/// Refuses a host clock too far from AWS's (`server`: IAM's `Date`;
/// `host`: this machine's clock when that answer arrived).
pub(crate) fn check_clock(server: SystemTime, host: SystemTime) -> Result<(), EnrollError> {
    let skew = match host.duration_since(server) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    if skew.abs() > MAX_CLOCK_SKEW.as_secs_f64() {
        return Err(EnrollError::ClockSkew {
            skew_secs: skew.round() as i64,
        });
    }
    Ok(())
}

/// What IAM says of one user, for `bulk --dry-run`: the refusals preflight
/// would make, as text (none: it would go through).
pub(crate) async fn user_facts<I: IamApi>(
    iam: &I,
    user: &str,
    device_name: Option<&str>,
    virtuals: &[VirtualMfaDevice],
) -> Result<UserFacts, AwsError> {
    let mut facts = UserFacts::default();
    match iam.get_user(user).await {
        Ok(_) => match iam.list_mfa_devices(user).await {
            Ok(ds) => {
                if let Err(e) = room_for_one_more(user, ds.len()) {
                    facts.problems.push(e.to_string());
                }
                facts.mfa_devices = Some(ds.len());
            }
            Err(e) => facts
                .problems
                .push(format!("cannot list {user}'s MFA devices: {e}")),
        },
        Err(AwsError::NoSuchEntity { .. }) => facts.missing = true,
        Err(e @ (AwsError::AccessDenied { .. } | AwsError::NoCredentials { .. })) => {
            facts.problems.push(e.to_string())
        }
        Err(e) => return Err(e),
    }
    if let Some(name) = device_name {
        if let Some(taken) = name_taken(iam, virtuals, name).await {
            facts.problems.push(
                EnrollError::DeviceNameTaken {
                    name: name.to_string(),
                    hint: taken.hint(),
                    serial: taken.serial,
                }
                .to_string(),
            );
        }
    }
    Ok(facts)
}

/// See [`user_facts`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct UserFacts {
    /// IAM has no such user.
    pub missing: bool,
    pub mfa_devices: Option<usize>,
    pub problems: Vec<String>,
}
