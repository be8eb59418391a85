//! A key's OATH credentials by hand (`mfakey oath …`): which credential a
//! name designates, and the writes (add, delete, rename, password, reset),
//! each refusing what would clobber something unasked.

use crate::credential::unix_now;
use crate::oath::{
    Code, CodeResult, Credential, CredentialData, CredentialId, OathError, OathSession,
};
use crate::secret::SecretString;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ManageError {
    #[error("no credential matches \"{0}\" on the key (see `mfakey oath list`)")]
    NoMatch(String),
    #[error("\"{name}\" matches several credentials: {}; give more of the name", .hits.iter().map(|h| format!("\"{h}\"")).collect::<Vec<_>>().join(", "))]
    Ambiguous { name: String, hits: Vec<String> },
    #[error("the key already holds \"{0}\"; add --force to overwrite it")]
    Exists(String),
    #[error("a credential \"{0}\" already exists on the key")]
    RenameTaken(String),
    #[error("no credential has the id \"{0}\" exactly (see `mfakey oath list`); to delete the one whose id contains it, add --match")]
    NoExactMatch(String),
    #[error(
        "{what} is not done: there is no terminal to ask on; pass --force to do it without asking"
    )]
    ConfirmationNeeded { what: String },
    #[error("declined: {what} is not done")]
    Declined { what: String },
    #[error(transparent)]
    Oath(#[from] OathError),
}

impl crate::error::Classify for ManageError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            ManageError::NoMatch(_) | ManageError::NoExactMatch(_) => Kind::NoSuchCredential,
            ManageError::ConfirmationNeeded { .. } => Kind::ConfirmationNeeded,
            ManageError::Declined { .. } => Kind::Declined,
            ManageError::Ambiguous { .. } => Kind::AmbiguousCredential,
            ManageError::Exists(_) | ManageError::RenameTaken(_) => Kind::CredentialExists,
            ManageError::Oath(o) => o.kind(),
        }
    }
}

/// LIST, with touch learned from CALCULATE ALL (LIST does not say it).
pub(crate) fn list_with_touch(s: &mut OathSession<'_>) -> Result<Vec<Credential>, OathError> {
    let all = s.calculate_all(unix_now())?;
    Ok(all
        .into_iter()
        .map(|(mut c, r)| {
            c.touch = match r {
                CodeResult::TouchRequired => Some(true),
                CodeResult::Code(_) => Some(false),
                CodeResult::Hotp | CodeResult::Unavailable(_) => None,
            };
            c
        })
        .collect())
}

/// The credential NAME designates among `creds`: its exact id, else the
/// only one whose id contains NAME (case-insensitive).
pub(crate) fn pick(creds: Vec<Credential>, name: &str) -> Result<Credential, ManageError> {
    if let Some(c) = creds
        .iter()
        .find(|c| c.id.to_id_string() == name || c.raw_id == name.as_bytes())
    {
        return Ok(c.clone());
    }
    let needle = name.to_lowercase();
    let mut hits: Vec<Credential> = creds
        .into_iter()
        .filter(|c| c.id.to_id_string().to_lowercase().contains(&needle))
        .collect();
    match hits.len() {
        1 => Ok(hits.remove(0)),
        0 => Err(ManageError::NoMatch(name.to_string())),
        _ => Err(ManageError::Ambiguous {
            name: name.to_string(),
            hits: hits.iter().map(|c| c.id.to_string()).collect(),
        }),
    }
}

/// PUT, refusing to overwrite a credential with the same id unless `force`.
pub(crate) fn add(
    s: &mut OathSession<'_>,
    data: &CredentialData,
    force: bool,
) -> Result<Credential, ManageError> {
    let raw = data.id.to_bytes();
    if !force && s.list()?.iter().any(|c| c.raw_id == raw) {
        return Err(ManageError::Exists(data.id.to_string()));
    }
    let mut cred = s.put(data)?;
    cred.touch = Some(data.touch);
    Ok(cred)
}

/// How `oath delete` finds its credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Match {
    /// The id exactly: as stored (`60/I:n`) or as listed (`I:n`).
    Exact,
    /// `--match`: the exact id, else the one id that contains NAME.
    Partial,
}

/// The operator's answer to "do it?": yes, no, or no one to ask (the error
/// says what to pass instead).
pub(crate) type Confirm<'a> = &'a mut dyn FnMut(&str) -> Result<bool, ManageError>;

/// Asks `confirm` about `what`; a no is [`ManageError::Declined`].
fn confirmed(confirm: Confirm<'_>, what: &str) -> Result<(), ManageError> {
    if confirm(what)? {
        Ok(())
    } else {
        Err(ManageError::Declined {
            what: what.to_string(),
        })
    }
}

/// The credential whose id is NAME exactly, stored or as listed.
fn exact(creds: Vec<Credential>, name: &str) -> Result<Credential, ManageError> {
    let mut hits: Vec<Credential> = creds
        .into_iter()
        .filter(|c| {
            c.raw_id == name.as_bytes() || c.id.to_id_string() == name || c.id.to_string() == name
        })
        .collect();
    match hits.len() {
        1 => Ok(hits.remove(0)),
        0 => Err(ManageError::NoExactMatch(name.to_string())),
        _ => Err(ManageError::Ambiguous {
            name: name.to_string(),
            hits: hits.iter().map(|c| c.id.to_id_string()).collect(),
        }),
    }
}

/// DELETE of the credential NAME designates, once `confirm` says yes to
/// deleting it (by its full id); its id. An empty NAME is refused before
/// anything is sent.
pub(crate) fn delete(
    s: &mut OathSession<'_>,
    name: &str,
    how: Match,
    confirm: Confirm<'_>,
) -> Result<CredentialId, ManageError> {
    if name.trim().is_empty() {
        return Err(OathError::InvalidCredential(
            "the credential id is empty: name the credential to delete (see `mfakey oath list`)"
                .into(),
        )
        .into());
    }
    let creds = s.list()?;
    let cred = match how {
        Match::Exact => exact(creds, name)?,
        Match::Partial => pick(creds, name)?,
    };
    let full = cred.id.to_id_string();
    let what = if full == name {
        format!("deleting \"{full}\"")
    } else {
        format!("deleting \"{full}\" (the credential \"{name}\" names)")
    };
    confirmed(confirm, &what)?;
    s.delete(&cred.raw_id)?;
    Ok(cred.id)
}

/// RENAME of the credential OLD designates to `[issuer:]name`, refusing a
/// name another credential has; (from, to).
pub(crate) fn rename(
    s: &mut OathSession<'_>,
    old: &str,
    new: &str,
) -> Result<(CredentialId, CredentialId), ManageError> {
    let cred = pick(s.list()?, old)?;
    let (issuer, name) = split_issuer(new);
    let new_id = CredentialId::new(issuer, name, cred.id.oath_type, cred.id.period);
    new_id.check_len()?;
    if s.list()?.iter().any(|c| c.raw_id == new_id.to_bytes()) {
        return Err(ManageError::RenameTaken(new_id.to_string()));
    }
    s.rename(&cred.raw_id, &new_id)?;
    Ok((cred.id, new_id))
}

/// `issuer:name` → (Some(issuer), name), split at the first colon as Yubico's tools do.
pub(crate) fn split_issuer(s: &str) -> (Option<&str>, &str) {
    match s.split_once(':') {
        Some((i, n)) if !i.is_empty() => (Some(i), n),
        _ => (None, s),
    }
}

/// SET CODE: the access key derived from `new` goes only to a key that
/// told its `serial` (it is as good as the password for guessing it).
pub(crate) fn set_password(
    s: &mut OathSession<'_>,
    serial: Option<u32>,
    new: &SecretString,
) -> Result<(), ManageError> {
    if serial.is_none() {
        return Err(OathError::Unidentified.into());
    }
    Ok(s.set_password(new)?)
}

pub(crate) fn clear_password(s: &mut OathSession<'_>) -> Result<(), ManageError> {
    Ok(s.clear_password()?)
}

/// RESET, once `confirm` says yes: every credential and the password gone.
pub(crate) fn reset(
    s: &mut OathSession<'_>,
    key: &str,
    confirm: Confirm<'_>,
) -> Result<(), ManageError> {
    let count = if s.is_locked() {
        "every OATH credential".to_string()
    } else {
        format!("all {} OATH credential(s)", s.list()?.len())
    };
    confirmed(
        confirm,
        &format!("erasing {count} and the OATH password of {key}"),
    )?;
    Ok(s.reset()?)
}

/// One credential's code (a touch or HOTP credential computed on its own;
/// `on_touch` before a touch).
pub(crate) fn code_of(
    s: &mut OathSession<'_>,
    all: Vec<(Credential, CodeResult)>,
    name: &str,
    now: u64,
    on_touch: &mut dyn FnMut(),
) -> Result<(Credential, Option<bool>, Code), ManageError> {
    let chosen = pick(all.iter().map(|(c, _)| c.clone()).collect(), name)?;
    let Some((cred, result)) = all.into_iter().find(|(c, _)| c.raw_id == chosen.raw_id) else {
        return Err(ManageError::NoMatch(name.to_string()));
    };
    Ok(match result {
        CodeResult::Code(code) => (cred, Some(false), code),
        CodeResult::TouchRequired => {
            on_touch();
            let code = s.calculate(&cred, now)?;
            (cred, Some(true), code)
        }
        CodeResult::Hotp | CodeResult::Unavailable(_) => {
            let code = s.calculate(&cred, now)?;
            (cred, None, code)
        }
    })
}
