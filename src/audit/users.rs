//! The IAM users' and roles' checks: someone besides root can administer,
//! every user with a password or keys has MFA, MFA that is only virtual,
//! and virtual MFA devices left unassigned.

use std::collections::{BTreeMap, BTreeSet};

use super::findings::{FindingId, Found};
use super::{begin, AuditError, AuditOptions, CheckFail, CheckOut, Ctx};
use crate::aws::account::{AccountApi, CredentialRow, Principal};
use crate::aws::iam::{MfaDevice, VirtualMfaDevice};
use crate::aws::policy::{grants_everything, ADMINISTRATOR_ACCESS};
use crate::aws::AwsError;
use crate::enroll::TAG_MANAGED;
use crate::progress::Progress;

/// The four user checks, recorded in `ctx`. One ListUsers serves them all.
pub(super) async fn audit_users<A: AccountApi>(
    api: &A,
    ctx: &mut Ctx,
    report: &Result<Vec<CredentialRow>, AwsError>,
    virtual_devices: &Result<Vec<VirtualMfaDevice>, AwsError>,
    opts: &AuditOptions,
    progress: &mut dyn Progress,
) -> Result<(), AuditError> {
    begin(progress, "admin-besides-root");
    let users = api.list_users().await;
    ctx.record("admin-besides-root", admin_besides_root(api, &users).await)?;

    begin(progress, "user-mfa");
    let devices = user_devices(api, &users, report).await;
    let r = match (report, &devices) {
        (Ok(rows), Ok(devices)) => user_mfa(api, rows, devices).await,
        (Err(e), _) | (_, Err(e)) => Err(e.into()),
    };
    ctx.record("user-mfa", r)?;

    begin(progress, "mfa-hardware");
    let r = match (&devices, virtual_devices) {
        (Ok(devices), Ok(virtuals)) => mfa_hardware(api, devices, virtuals)
            .await
            .map(|found| (found, hardware_rule(opts).to_string())),
        (Err(e), _) | (_, Err(e)) => Err(e.into()),
    };
    ctx.record("mfa-hardware", r)?;

    begin(progress, "unassigned-mfa");
    let r = match virtual_devices {
        Ok(v) => unassigned(api, v).await,
        Err(e) => Err(e.into()),
    };
    ctx.record("unassigned-mfa", r)
}

/// Who grants what: the first principal found able to do everything.
async fn admin_besides_root<A: AccountApi>(
    api: &A,
    users: &Result<Vec<String>, AwsError>,
) -> CheckOut {
    let users = users.clone()?;
    let mut cache: BTreeMap<String, bool> = BTreeMap::new();
    if let Some(why) = admin_user(api, &users, &mut cache).await? {
        return Ok((Vec::new(), why));
    }
    let mut checked_roles = 0;
    for role in &api.list_roles().await? {
        // Service-linked roles belong to AWS services, not to people.
        if role.path.starts_with("/aws-service-role/") {
            continue;
        }
        checked_roles += 1;
        let who = Principal::Role(role.name.clone());
        if let Some(why) = grants_admin(api, &who, &mut cache).await? {
            return Ok((
                Vec::new(),
                format!("role {} can administer ({why})", role.name),
            ));
        }
    }
    Ok((
        vec![Found::new(
            FindingId::NoAdminBesidesRoot,
            None,
            format!(
                "checked {} users (attached, inline and group policies) and {checked_roles} roles (service-linked ones skipped): \
                 none has {ADMINISTRATOR_ACCESS} or a policy allowing Action \"*\" on Resource \"*\" \
                 (permission boundaries, SCPs and Deny statements are not weighed)",
                users.len()
            ),
        )],
        String::new(),
    ))
}

/// The first user who can administer, directly or through a group, and why.
async fn admin_user<A: AccountApi>(
    api: &A,
    users: &[String],
    cache: &mut BTreeMap<String, bool>,
) -> Result<Option<String>, AwsError> {
    let mut groups_seen: BTreeMap<String, Option<String>> = BTreeMap::new();
    for user in users {
        let who = Principal::User(user.clone());
        if let Some(why) = grants_admin(api, &who, cache).await? {
            return Ok(Some(format!("user {user} can administer ({why})")));
        }
        for group in api.groups_for_user(user).await? {
            if !groups_seen.contains_key(&group) {
                let why = grants_admin(api, &Principal::Group(group.clone()), cache).await?;
                groups_seen.insert(group.clone(), why);
            }
            if let Some(Some(why)) = groups_seen.get(&group) {
                return Ok(Some(format!(
                    "user {user} can administer (group {group}: {why})"
                )));
            }
        }
    }
    Ok(None)
}

/// Why `who` can do everything, if it can.
async fn grants_admin<A: AccountApi>(
    api: &A,
    who: &Principal,
    cache: &mut BTreeMap<String, bool>,
) -> Result<Option<String>, AwsError> {
    for arn in api.attached_policies(who).await? {
        if arn == ADMINISTRATOR_ACCESS {
            return Ok(Some("AdministratorAccess attached".to_string()));
        }
        // AWS's own other managed policies are not "everything"; the
        // account's own ones are read.
        if arn.starts_with("arn:aws:iam::aws:") || arn.contains(":iam::aws:policy/") {
            continue;
        }
        let admin = match cache.get(&arn) {
            Some(v) => *v,
            None => {
                let v = grants_everything(&api.managed_policy_document(&arn).await?);
                cache.insert(arn.clone(), v);
                v
            }
        };
        if admin {
            return Ok(Some(format!("{arn} allows * on *")));
        }
    }
    for (name, doc) in api.inline_policies(who).await? {
        if grants_everything(&doc) {
            return Ok(Some(format!("inline policy {name} allows * on *")));
        }
    }
    Ok(None)
}

/// ListMFADevices of every user (from ListUsers, and the report's rows).
async fn user_devices<A: AccountApi>(
    api: &A,
    users: &Result<Vec<String>, AwsError>,
    report: &Result<Vec<CredentialRow>, AwsError>,
) -> Result<BTreeMap<String, Vec<MfaDevice>>, AwsError> {
    let mut names: BTreeSet<String> = users.clone()?.into_iter().collect();
    if let Ok(rows) = report {
        names.extend(rows.iter().filter(|r| !r.is_root()).map(|r| r.user.clone()));
    }
    let mut out = BTreeMap::new();
    for user in names {
        match api.user_mfa_devices(&user).await {
            Ok(d) => {
                out.insert(user, d);
            }
            // In the report but deleted since (the report can be 4 h old).
            Err(AwsError::NoSuchEntity { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Users with a password or active keys and no MFA (critical when they can
/// administer), and users whose MFA is a single device.
async fn user_mfa<A: AccountApi>(
    api: &A,
    rows: &[CredentialRow],
    devices: &BTreeMap<String, Vec<MfaDevice>>,
) -> CheckOut {
    let mut found = Vec::new();
    let mut users = 0;
    let mut cache = BTreeMap::new();
    for row in rows.iter().filter(|r| !r.is_root()) {
        let Some(d) = devices.get(&row.user) else {
            continue;
        };
        users += 1;
        if let [only] = d.as_slice() {
            found.push(Found::new(
                FindingId::UserMfaNoBackup,
                Some(&row.user),
                format!("ListMFADevices: one device, {}", only.serial),
            ));
        }
        if !d.is_empty() || !(row.password_enabled || row.has_active_keys()) {
            continue;
        }
        if let Some(why) = user_can_administer(api, &row.user, &mut cache).await? {
            found.push(Found::new(
                FindingId::UserAdminWithoutMfa,
                Some(&row.user),
                format!(
                    "{why}; credential report: password_enabled = {}, an access key active = {}; ListMFADevices: none",
                    row.password_enabled,
                    row.has_active_keys()
                ),
            ));
        }
        if row.password_enabled {
            found.push(Found::new(
                FindingId::UserConsoleWithoutMfa,
                Some(&row.user),
                "credential report: password_enabled = true; ListMFADevices: none",
            ));
        }
        if row.has_active_keys() {
            found.push(Found::new(
                FindingId::UserKeysWithoutMfa,
                Some(&row.user),
                "credential report: an access key is active; ListMFADevices: none",
            ));
        }
    }
    Ok((found, user_mfa_detail(users, rows, devices)))
}

/// How many users were checked, and who is too new for the report.
fn user_mfa_detail(
    users: usize,
    rows: &[CredentialRow],
    devices: &BTreeMap<String, Vec<MfaDevice>>,
) -> String {
    let newer: Vec<&str> = devices
        .keys()
        .filter(|u| !rows.iter().any(|r| &r.user == *u))
        .map(String::as_str)
        .collect();
    let mut detail = format!("{users} IAM users checked");
    if !newer.is_empty() {
        // IAM regenerates the report at most every 4 hours.
        detail.push_str(&format!(
            "; not in the credential report yet (newer than it), so not checked: {}",
            newer.join(", ")
        ));
    }
    detail
}

/// Why `user` can do everything (its own policies or a group's), if it can.
async fn user_can_administer<A: AccountApi>(
    api: &A,
    user: &str,
    cache: &mut BTreeMap<String, bool>,
) -> Result<Option<String>, AwsError> {
    admin_user(api, &[user.to_string()], cache).await
}

/// What a device is, as far as AWS tells.
enum DeviceKind {
    /// A FIDO device with certifications (GetMFADevice): a certified
    /// security key.
    CertifiedFido(String),
    /// A FIDO device AWS knows no certification of: a security key, or a
    /// synced passkey (both have `u2f/` ARNs).
    Fido,
    /// A hardware TOTP token (a plain serial, not an ARN).
    HardwareToken,
    /// A virtual device whose seed mfakey wrote onto a YubiKey.
    OnYubiKey,
    /// A virtual device (a seed on a phone or computer).
    Virtual,
}

impl DeviceKind {
    fn is_hardware(&self) -> bool {
        matches!(
            self,
            DeviceKind::CertifiedFido(_) | DeviceKind::HardwareToken | DeviceKind::OnYubiKey
        )
    }

    /// What the judgement rests on, for the evidence.
    fn describe(&self, serial: &str) -> String {
        match self {
            DeviceKind::CertifiedFido(c) => format!("{serial}: FIDO, certified ({c})"),
            DeviceKind::Fido => format!(
                "{serial}: FIDO, GetMFADevice gives no certification (a security key, or a synced passkey)"
            ),
            DeviceKind::HardwareToken => format!("{serial}: a hardware TOTP token"),
            DeviceKind::OnYubiKey => format!(
                "{serial}: virtual, seed written onto a YubiKey by mfakey (tag {TAG_MANAGED})"
            ),
            DeviceKind::Virtual => format!("{serial}: virtual, no {TAG_MANAGED} tag"),
        }
    }
}

/// Tells what `d` is: GetMFADevice's certifications for FIDO devices, the
/// tags of virtual ones (ListVirtualMFADevices carries none on AWS).
/// Unread tags or certifications are not "none": a refusal makes the check
/// not run rather than misjudge a device.
async fn device_kind<A: AccountApi>(
    api: &A,
    user: &str,
    d: &MfaDevice,
    virtuals: &[VirtualMfaDevice],
) -> Result<DeviceKind, AwsError> {
    if d.serial.contains(":u2f/") {
        let certs = api.fido_certifications(user, &d.serial).await?;
        if certs.is_empty() {
            return Ok(DeviceKind::Fido);
        }
        let list: Vec<String> = certs.iter().map(|(k, v)| format!("{k} {v}")).collect();
        return Ok(DeviceKind::CertifiedFido(list.join(", ")));
    }
    if !d.serial.starts_with("arn:") {
        return Ok(DeviceKind::HardwareToken);
    }
    let mut tags = virtuals
        .iter()
        .find(|v| v.serial == d.serial)
        .map(|v| v.tags.clone())
        .unwrap_or_default();
    if tags.is_empty() && d.serial.contains(":mfa/") {
        tags = api.device_tags(&d.serial).await?;
    }
    Ok(if tags.iter().any(|(k, _)| k == TAG_MANAGED) {
        DeviceKind::OnYubiKey
    } else {
        DeviceKind::Virtual
    })
}

/// Users whose MFA is only virtual, or rests on FIDO devices AWS knows no
/// certification of.
async fn mfa_hardware<A: AccountApi>(
    api: &A,
    devices: &BTreeMap<String, Vec<MfaDevice>>,
    virtuals: &[VirtualMfaDevice],
) -> Result<Vec<Found>, CheckFail> {
    let mut found = Vec::new();
    for (user, list) in devices {
        let mut kinds = Vec::new();
        for d in list {
            let kind = device_kind(api, user, d, virtuals).await?;
            let hardware = kind.is_hardware();
            kinds.push((kind, d.serial.as_str()));
            if hardware {
                break;
            }
        }
        if list.is_empty() || kinds.iter().any(|(k, _)| k.is_hardware()) {
            continue;
        }
        let described: Vec<String> = kinds.iter().map(|(k, s)| k.describe(s)).collect();
        let evidence = format!(
            "ListMFADevices: {}; none is a certified security key, a hardware token, or a device mfakey enrolled onto a YubiKey",
            described.join("; ")
        );
        if kinds.iter().any(|(k, _)| matches!(k, DeviceKind::Fido)) {
            found.push(Found::new(
                FindingId::UserMfaHardwareUnverified,
                Some(user),
                evidence,
            ));
        } else {
            found.push(
                Found::new(FindingId::UserMfaVirtualOnly, Some(user), evidence)
                    .with("serial", list[0].serial.as_str()),
            );
        }
    }
    Ok(found)
}

async fn unassigned<A: AccountApi>(api: &A, virtuals: &[VirtualMfaDevice]) -> CheckOut {
    let mut found = Vec::new();
    for d in virtuals.iter().filter(|d| d.user.is_none()) {
        let tags = if d.tags.is_empty() {
            api.device_tags(&d.serial).await.unwrap_or_default()
        } else {
            d.tags.clone()
        };
        let ours = tags.iter().any(|(k, _)| k == TAG_MANAGED);
        let f = Found::new(
            FindingId::VirtualMfaUnassigned,
            Some(&d.serial),
            format!(
                "ListVirtualMFADevices: {} is assigned to no user{}",
                d.serial,
                if ours { " (created by mfakey)" } else { "" }
            ),
        );
        found.push(if ours { f.variant("made-by-mfakey") } else { f });
    }
    Ok((found, String::new()))
}

/// The mfa-hardware check's words about the run's rule.
fn hardware_rule(opts: &AuditOptions) -> &'static str {
    if opts.require_hardware_mfa {
        "hardware MFA required"
    } else {
        "virtual-only MFA reported as low (pass --require-hardware-mfa to raise it)"
    }
}
