//! The accounts a command spans: the command line's, or those an
//! `--accounts FILE` lists (a CSV with a header naming `profile` and/or
//! `role_arn`, one account per line, as a bulk manifest's rows name theirs).

use crate::aws::IamApi;
use crate::bulk::manifest::valid_role_arn;
use std::path::Path;

/// How an account is reached.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Via {
    /// The command line's credentials (`--profile`, the environment, …).
    CommandLine,
    /// A shared-config profile.
    Profile(String),
    /// A role assumed with the command line's credentials.
    Role(String),
}

impl Via {
    /// As journals keep it (`None`: the command line's), the same spelling
    /// as `bulk::account_key`.
    pub(crate) fn key(&self) -> Option<String> {
        match self {
            Via::CommandLine => None,
            Via::Profile(p) => Some(format!("profile:{p}")),
            Via::Role(r) => Some(format!("role:{r}")),
        }
    }

    /// Back from [`Via::key`]; an unknown spelling is `None`.
    pub(crate) fn from_key(key: Option<&str>) -> Option<Via> {
        match key {
            None => Some(Via::CommandLine),
            Some(k) => match k.split_once(':') {
                Some(("profile", p)) if !p.is_empty() => Some(Via::Profile(p.to_string())),
                Some(("role", r)) if valid_role_arn(r) => Some(Via::Role(r.to_string())),
                _ => None,
            },
        }
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::CommandLine => f.write_str("the command line's account"),
            Via::Profile(p) => write!(f, "profile {p}"),
            Via::Role(r) => write!(f, "role {r}"),
        }
    }
}

/// An account reached: how, its id, and its IAM client.
pub(crate) struct Account<'a, I> {
    pub via: Via,
    pub id: String,
    pub iam: &'a I,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum AccountsError {
    #[error("cannot read the accounts file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the accounts file has {} problem(s):\n{}", .0.len(), .0.iter().map(|(l, m)| format!("  line {l}: {m}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<(usize, String)>),
}

impl crate::error::Classify for AccountsError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::InvalidArgument
    }
}

/// Reads and checks an accounts file.
pub(crate) fn load(path: &Path) -> Result<Vec<Via>, AccountsError> {
    let text = std::fs::read_to_string(path).map_err(|source| AccountsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}

/// Parses an accounts file: every problem at once, with its line number.
pub(crate) fn parse(text: &str) -> Result<Vec<Via>, AccountsError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut bad: Vec<(usize, String)> = Vec::new();
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_ascii_lowercase).collect(),
        Err(e) => return Err(AccountsError::Invalid(vec![(1, e.to_string())])),
    };
    for c in header
        .iter()
        .filter(|c| !matches!(c.as_str(), "profile" | "role_arn"))
    {
        bad.push((
            1,
            format!("unknown column \"{c}\": the columns are profile and role_arn"),
        ));
    }
    let column = |name: &str| header.iter().position(|c| c == name);
    let (pc, rc) = (column("profile"), column("role_arn"));
    if pc.is_none() && rc.is_none() {
        bad.push((1, "the header names neither profile nor role_arn".into()));
    }
    let mut out: Vec<(usize, Via)> = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                bad.push((line, format!("not a valid CSV row: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let get = |c: Option<usize>| c.and_then(|i| record.get(i)).filter(|v| !v.is_empty());
        let via = match (get(pc), get(rc)) {
            (Some(p), None) => Via::Profile(p.to_string()),
            (None, Some(r)) if valid_role_arn(r) => Via::Role(r.to_string()),
            (None, Some(r)) => {
                bad.push((line, format!("role_arn \"{r}\" is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)")));
                continue;
            }
            (Some(_), Some(_)) => {
                bad.push((line, "give profile or role_arn, not both".into()));
                continue;
            }
            (None, None) => {
                bad.push((line, "names no account (profile or role_arn)".into()));
                continue;
            }
        };
        if let Some((first, _)) = out.iter().find(|(_, v)| *v == via) {
            bad.push((line, format!("the same account as line {first}")));
            continue;
        }
        out.push((line, via));
    }
    if out.is_empty() && bad.is_empty() {
        bad.push((2, "the file lists no accounts".into()));
    }
    if bad.is_empty() {
        Ok(out.into_iter().map(|(_, v)| v).collect())
    } else {
        Err(AccountsError::Invalid(bad))
    }
}

/// Reaches every account once (its id, from STS) before anything starts;
/// two ways into the same account are refused (its devices would be
/// counted twice).
pub(crate) async fn reach<'a, I: IamApi>(
    clients: Vec<(Via, &'a I)>,
) -> Result<Vec<Account<'a, I>>, super::LifecycleError> {
    let mut out: Vec<Account<'a, I>> = Vec::new();
    for (via, iam) in clients {
        let id = iam
            .account_id()
            .await
            .map_err(|source| super::LifecycleError::InAccount {
                account: via.to_string(),
                source,
            })?;
        if let Some(first) = out.iter().find(|a| a.id == id) {
            return Err(super::LifecycleError::SameAccount {
                account_id: id,
                first: first.via.to_string(),
                second: via.to_string(),
            });
        }
        out.push(Account { via, id, iam });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_and_roles_one_a_line() {
        let v = parse("profile,role_arn\nprod,\n,arn:aws:iam::111122223333:role/Enroller\n# x\n")
            .unwrap();
        assert_eq!(
            v,
            [
                Via::Profile("prod".into()),
                Via::Role("arn:aws:iam::111122223333:role/Enroller".into())
            ]
        );
        assert_eq!(
            parse("role_arn\narn:aws:iam::111122223333:role/r\n")
                .unwrap()
                .len(),
            1
        );
        for via in &v {
            assert_eq!(Via::from_key(via.key().as_deref()).as_ref(), Some(via));
        }
        assert_eq!(Via::from_key(None), Some(Via::CommandLine));
        assert_eq!(Via::from_key(Some("nonsense")), None);
    }

    #[test]
    fn every_bad_line_at_once() {
        let e = parse(
            "profile,role_arn,colour\np,,\n,arn:aws:iam::1:role/x,\np,arn:aws:iam::111122223333:role/r,\n,,\np,,\n",
        )
        .unwrap_err()
        .to_string();
        for needle in [
            "line 1: unknown column \"colour\"",
            "line 3: role_arn",
            "line 4: give profile or role_arn, not both",
            "line 5: names no account",
            "line 6: the same account as line 2",
        ] {
            assert!(e.contains(needle), "{needle}: {e}");
        }
        assert!(parse("profile\n")
            .unwrap_err()
            .to_string()
            .contains("no accounts"));
        assert!(parse("user\nx\n")
            .unwrap_err()
            .to_string()
            .contains("neither"));
    }
}
