//! `mfakey resync USER`: two consecutive codes read from the key at once
//! (the key has no clock: no 30-second wait) and handed to
//! ResyncMFADevice. AWS refuses a code it has already accepted, so a pair
//! refused is followed by the next one, (T, T+1), once; after an enable or
//! a sign-in in this very step, both are refused and the operator is told
//! to run it again in the next step.
//!
//! The same exchange proves that a key's credential holds a device's seed
//! (`offboard`): AWS only accepts that seed's codes.

use crate::aws::{AwsError, IamApi};
use crate::credential::PERIOD;
use crate::enroll::naming::AWS_ISSUER;
use crate::enroll::KeyTarget;
use crate::oath::{CodeResult, Credential, OathError, OathSession, OathType};
use crate::progress::{Event, Progress};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ResyncError {
    #[error("{user} has no virtual MFA device to resync (FIDO and hardware devices have no codes mfakey can read)")]
    NoDevice { user: String },
    #[error("{device} is not one of {user}'s virtual MFA devices ({})", listed.join(", "))]
    NotUsers {
        user: String,
        device: String,
        listed: Vec<String>,
    },
    #[error("{user} has several virtual MFA devices and {why}: pass --device with one of {}", devices.join(", "))]
    WhichDevice {
        user: String,
        why: String,
        devices: Vec<String>,
    },
    #[error("the key holds no credential for {user} (one named \"{AWS_ISSUER}:{user}@…\"): insert the key that holds it, or name it with --credential")]
    NoCredential { user: String },
    #[error("the key holds several credentials for {user} ({}): name one with --credential", ids.join(", "))]
    WhichCredential { user: String, ids: Vec<String> },
    #[error("AWS refused both pairs of codes that \"{id}\" gave for {device} (the pairs ending at TOTP steps {step} and {}): a code of this half-minute was used already (a sign-in, an enable or a resync moments ago: run this again in 30 s), this machine's clock is off (check NTP), or the credential is not this device's", .step + 1)]
    Refused {
        id: String,
        device: String,
        step: u64,
    },
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Oath(#[from] OathError),
}

impl crate::error::Classify for ResyncError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            ResyncError::NoDevice { .. } | ResyncError::NotUsers { .. } => Kind::NoSuchEntity,
            ResyncError::WhichDevice { .. } => Kind::InvalidArgument,
            ResyncError::NoCredential { .. } => Kind::NoSuchCredential,
            ResyncError::WhichCredential { .. } => Kind::AmbiguousCredential,
            ResyncError::Refused { .. } => Kind::InvalidAuthenticationCode,
            ResyncError::Aws(a) => a.kind(),
            ResyncError::Oath(o) => o.kind(),
        }
    }
}

/// What to resync.
#[derive(Clone, Debug)]
pub(crate) struct ResyncRequest {
    pub user: String,
    /// The device (default: the user's virtual device tagged as on this key).
    pub device: Option<String>,
    /// The credential's id on the key (default: the one named for the user).
    pub credential: Option<String>,
    /// Unix time the codes are read for.
    pub now: u64,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ResyncReport {
    pub user: String,
    pub device_arn: String,
    pub credential_id: String,
    pub key_serial: Option<u32>,
    /// The TOTP step of the second code AWS accepted.
    pub step: u64,
    /// Pairs sent (1, or 2 when the first was refused).
    pub pairs: u8,
}

/// Resyncs `req.user`'s device with codes from the key.
pub(crate) async fn resync<I: IamApi>(
    iam: &I,
    key: KeyTarget<'_, '_>,
    req: &ResyncRequest,
    progress: &mut dyn Progress,
) -> Result<ResyncReport, ResyncError> {
    let device = pick_device(iam, &req.user, req.device.as_deref(), key.serial).await?;
    let cred = pick_credential(
        iam,
        key.session,
        &req.user,
        req.credential.as_deref(),
        &device,
    )
    .await?;
    let pair = Pair {
        user: &req.user,
        device: &device,
        cred: &cred,
        now: req.now,
    };
    match pair.send(iam, key.session, progress).await? {
        Some((step, pairs)) => Ok(ResyncReport {
            user: req.user.clone(),
            device_arn: device,
            credential_id: cred.id.to_id_string(),
            key_serial: key.serial,
            step,
            pairs,
        }),
        None => Err(ResyncError::Refused {
            id: cred.id.to_id_string(),
            device,
            step: req.now / PERIOD,
        }),
    }
}

/// The user's virtual device to resync: the one named, else the one
/// tagged as on this key, else the only one.
async fn pick_device<I: IamApi>(
    iam: &I,
    user: &str,
    named: Option<&str>,
    key_serial: Option<u32>,
) -> Result<String, ResyncError> {
    let virtuals: Vec<String> = iam
        .list_mfa_devices(user)
        .await?
        .into_iter()
        .map(|d| d.serial)
        .filter(|s| super::is_virtual(s))
        .collect();
    if let Some(d) = named {
        return match virtuals.iter().find(|v| *v == d) {
            Some(v) => Ok(v.clone()),
            None => Err(ResyncError::NotUsers {
                user: user.into(),
                device: d.into(),
                listed: virtuals,
            }),
        };
    }
    let mut on_key = Vec::new();
    for v in &virtuals {
        let tags = iam.mfa_device_tags(v).await.unwrap_or_default();
        let serial = super::read_tags(&tags).and_then(|(s, _)| s);
        if serial.is_some() && serial == key_serial {
            on_key.push(v.clone());
        }
    }
    match (on_key.as_slice(), virtuals.as_slice()) {
        ([one], _) | ([], [one]) => Ok(one.clone()),
        ([], []) => Err(ResyncError::NoDevice { user: user.into() }),
        ([], _) => Err(ResyncError::WhichDevice {
            user: user.into(),
            why: "none is tagged as on this key".into(),
            devices: virtuals,
        }),
        (_, _) => Err(ResyncError::WhichDevice {
            user: user.into(),
            why: "several are tagged as on this key".into(),
            devices: on_key,
        }),
    }
}

/// Whether a credential id is one mfakey (or AWS's own label) gives `user`:
/// `Amazon Web Services:<user>@<label>`, the bare user, or the user cut to
/// fit with `~`.
pub(crate) fn names_user(c: &Credential, user: &str) -> bool {
    if c.id.issuer.as_deref() != Some(AWS_ISSUER) || c.id.oath_type != OathType::Totp {
        return false;
    }
    let name = c.id.name.as_str();
    name == user
        || name
            .strip_prefix(user)
            .is_some_and(|rest| rest.starts_with('@'))
        || name
            .strip_suffix('~')
            .is_some_and(|cut| !cut.is_empty() && user.starts_with(cut))
}

/// The credential of `user` on the key: the one named, else the only one
/// named for the user, else the one whose label is the device's account
/// (its id or alias).
async fn pick_credential<I: IamApi>(
    iam: &I,
    key: &mut OathSession<'_>,
    user: &str,
    named: Option<&str>,
    device: &str,
) -> Result<Credential, ResyncError> {
    let all = key.list()?;
    if let Some(id) = named {
        return all
            .into_iter()
            .find(|c| c.id.to_id_string() == id)
            .ok_or_else(|| ResyncError::Oath(OathError::NoSuchCredential(id.to_string())));
    }
    let mut mine: Vec<Credential> = all.into_iter().filter(|c| names_user(c, user)).collect();
    if mine.len() > 1 {
        let account = crate::undo::arn_account(device)
            .unwrap_or_default()
            .to_string();
        let alias = iam.account_alias().await.ok().flatten();
        let labels = [Some(account), alias];
        let label_of = |c: &Credential| c.id.name.rsplit_once('@').map(|(_, l)| l.to_string());
        mine.retain(|c| label_of(c).is_some_and(|l| labels.contains(&Some(l))));
    }
    match mine.len() {
        1 => Ok(mine.remove(0)),
        0 => Err(ResyncError::NoCredential { user: user.into() }),
        _ => Err(ResyncError::WhichCredential {
            user: user.into(),
            ids: mine.iter().map(|c| c.id.to_id_string()).collect(),
        }),
    }
}

/// Codes of one credential for one device, sent to ResyncMFADevice.
pub(crate) struct Pair<'p> {
    pub user: &'p str,
    pub device: &'p str,
    pub cred: &'p Credential,
    pub now: u64,
}

impl Pair<'_> {
    /// Sends (T-1, T), and (T, T+1) if AWS refuses the first; the step AWS
    /// took and the pairs sent, or `None` when it refused both.
    pub(crate) async fn send<I: IamApi>(
        &self,
        iam: &I,
        key: &mut OathSession<'_>,
        progress: &mut dyn Progress,
    ) -> Result<Option<(u64, u8)>, ResyncError> {
        let t = self.now / PERIOD;
        let touch = needs_touch(key, self.cred, self.now)?;
        for (n, step) in [(1u8, t), (2u8, t + 1)] {
            let (c1, c2) = self.codes(key, step, touch, progress)?;
            match iam
                .resync_mfa_device(self.user, self.device, &c1, &c2)
                .await
            {
                Ok(()) => return Ok(Some((step, n))),
                Err(AwsError::InvalidAuthenticationCode) => {
                    if n == 1 {
                        progress.event(Event::RetryCodes {
                            user: self.user.to_string(),
                        });
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// The codes of steps `step-1` and `step`, read at once.
    fn codes(
        &self,
        key: &mut OathSession<'_>,
        step: u64,
        touch: bool,
        progress: &mut dyn Progress,
    ) -> Result<(String, String), OathError> {
        let mut out = Vec::with_capacity(2);
        for (n, s) in [(1u8, step.saturating_sub(1)), (2u8, step)] {
            if touch {
                progress.event(Event::Touch {
                    user: Some(self.user.to_string()),
                    n,
                    of: 2,
                    reader: None,
                });
            }
            out.push(key.calculate(self.cred, s * PERIOD)?.value);
        }
        let c2 = out.pop().unwrap_or_default();
        let c1 = out.pop().unwrap_or_default();
        Ok((c1, c2))
    }
}

/// Whether the credential wants a touch for each code (LIST does not say;
/// CALCULATE ALL leaves such credentials uncomputed).
pub(crate) fn needs_touch(
    key: &mut OathSession<'_>,
    cred: &Credential,
    now: u64,
) -> Result<bool, OathError> {
    if let Some(t) = cred.touch {
        return Ok(t);
    }
    Ok(key
        .calculate_all(now)?
        .iter()
        .any(|(c, r)| c.raw_id == cred.raw_id && matches!(r, CodeResult::TouchRequired)))
}
