//! `mfakey audit --organization`: every account of an AWS Organization,
//! from its management account (or a delegated administrator). The
//! accounts are listed (every page), a role is assumed in each, and the
//! accounts are audited concurrently, at most `concurrency` at once (the
//! SDK's retries with backoff absorb throttling; the bound keeps the rate
//! down). An account whose role cannot be assumed is "not checked" with
//! the reason; a suspended or closing account is skipped and said.

use std::collections::BTreeMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use serde::Serialize;

use super::{audit, AuditOptions, AuditReport, CloudError, OrgContext, OrgTrail, Policy, Severity};
use crate::aws::account::{OrgAccount, OrgApi, Organization, TrailApi};
use crate::aws::AwsError;
use crate::error::{Classify, Kind};
use crate::progress::{Event, Progress};

/// The role AWS Organizations creates in the accounts it creates.
pub(crate) const DEFAULT_ROLE: &str = "OrganizationAccountAccessRole";
/// Accounts audited at once.
pub(crate) const DEFAULT_CONCURRENCY: usize = 8;

#[derive(Debug, Clone)]
pub(crate) struct OrgOptions {
    pub role_name: String,
    pub concurrency: usize,
    /// Only these accounts (`--accounts`).
    pub accounts: Option<Vec<String>>,
    pub audit: AuditOptions,
}

/// How one account's audit ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Audited { audit: AuditReport },
    NotChecked { reason: String },
    Skipped { reason: String },
}

#[derive(Debug, Clone)]
pub(crate) struct AccountAudit {
    pub account: OrgAccount,
    pub outcome: Outcome,
}

/// Centralized root access, as IAM's ListOrganizationsFeatures tells it.
#[derive(Debug, Clone)]
pub(crate) enum RootAccess {
    Features(Vec<String>),
    Unknown(String),
}

impl RootAccess {
    fn credentials_managed(&self) -> Option<bool> {
        match self {
            RootAccess::Features(f) => Some(f.iter().any(|x| x == "RootCredentialsManagement")),
            RootAccess::Unknown(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct OrgReport {
    pub organization: Organization,
    /// The account the run's credentials belong to.
    pub caller: String,
    pub root_access: RootAccess,
    /// In ListAccounts' order.
    pub accounts: Vec<AccountAudit>,
    pub elapsed_ms: f64,
}

/// One finding id across the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FindingCount {
    pub id: &'static str,
    pub severity: Severity,
    /// How many accounts have it.
    pub accounts: usize,
    pub account_ids: Vec<String>,
}

impl OrgReport {
    fn audits(&self) -> impl Iterator<Item = (&OrgAccount, &AuditReport)> {
        self.accounts.iter().filter_map(|a| match &a.outcome {
            Outcome::Audited { audit } => Some((&a.account, audit)),
            _ => None,
        })
    }

    /// How many accounts have each finding, most severe first.
    pub(crate) fn finding_counts(&self) -> Vec<FindingCount> {
        let mut by_id: BTreeMap<&'static str, FindingCount> = BTreeMap::new();
        for (account, audit) in self.audits() {
            for f in &audit.findings {
                let c = by_id.entry(f.id).or_insert_with(|| FindingCount {
                    id: f.id,
                    severity: f.severity,
                    accounts: 0,
                    account_ids: Vec::new(),
                });
                c.severity = c.severity.max(f.severity);
                if c.account_ids.last() != Some(&account.id) {
                    c.account_ids.push(account.id.clone());
                    c.accounts += 1;
                }
            }
        }
        let mut counts: Vec<FindingCount> = by_id.into_values().collect();
        counts.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(b.id)));
        counts
    }

    /// Accounts audited, not checked, skipped.
    pub(crate) fn tally(&self) -> (usize, usize, usize) {
        let mut t = (0, 0, 0);
        for a in &self.accounts {
            match a.outcome {
                Outcome::Audited { .. } => t.0 += 1,
                Outcome::NotChecked { .. } => t.1 += 1,
                Outcome::Skipped { .. } => t.2 += 1,
            }
        }
        t
    }

    /// Some account has a finding at or above `at`.
    pub(crate) fn any_at_or_above(&self, at: Severity) -> bool {
        self.audits().any(|(_, a)| a.count_at_or_above(at) > 0)
    }

    /// Some account could not be checked, or some check could not tell.
    pub(crate) fn incomplete(&self) -> bool {
        self.accounts.iter().any(|a| match &a.outcome {
            Outcome::Audited { audit } => audit.incomplete(),
            Outcome::NotChecked { .. } => true,
            Outcome::Skipped { .. } => false,
        })
    }
}

/// What stops the organization's audit before any account is audited.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OrgError {
    #[error("the credentials' account is not in an AWS Organization ({message}); run mfakey audit without --organization")]
    NotInOrganization { message: String },
    #[error("--accounts names {ids}, which organization {organization} does not list")]
    UnknownAccounts { ids: String, organization: String },
    #[error(transparent)]
    Aws(CloudError),
}

impl Classify for OrgError {
    fn kind(&self) -> Kind {
        match self {
            OrgError::NotInOrganization { .. } => Kind::Refused,
            OrgError::UnknownAccounts { .. } => Kind::InvalidArgument,
            OrgError::Aws(e) => e.kind(),
        }
    }
}

impl From<AwsError> for OrgError {
    fn from(e: AwsError) -> Self {
        match e {
            AwsError::Other { code, message } if code == "AWSOrganizationsNotInUseException" => {
                OrgError::NotInOrganization { message }
            }
            other => OrgError::Aws(CloudError::new(other, Policy::Organization)),
        }
    }
}

/// The accounts to audit: all, or those `--accounts` names (each must be
/// listed).
fn select(
    all: Vec<OrgAccount>,
    wanted: &Option<Vec<String>>,
    org: &Organization,
) -> Result<Vec<OrgAccount>, OrgError> {
    let Some(wanted) = wanted else {
        return Ok(all);
    };
    let unknown: Vec<&str> = wanted
        .iter()
        .filter(|w| !all.iter().any(|a| &a.id == *w))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(OrgError::UnknownAccounts {
            ids: unknown.join(", "),
            organization: org.id.clone(),
        });
    }
    Ok(all.into_iter().filter(|a| wanted.contains(&a.id)).collect())
}

/// The organization's trails as their owner reads them, when the run's
/// credentials are that owner's (the management account's).
async fn org_trails<T: TrailApi>(own: &T, caller: &str) -> Vec<OrgTrail> {
    let Ok(trails) = own.describe_trails().await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in trails
        .iter()
        .filter(|t| t.organization && t.account() == Some(caller))
    {
        let logging = own.is_logging(&t.home_region, &t.arn).await;
        let selectors = own.event_selectors(&t.home_region, &t.arn).await;
        if let (Ok(logging), Ok(selectors)) = (logging, selectors) {
            out.push(OrgTrail {
                arn: t.arn.clone(),
                logging,
                selectors,
            });
        }
    }
    out
}

/// One account: skipped unless active; its own credentials for the
/// caller's account, the role's for the others.
async fn audit_account<O: OrgApi>(
    org: &O,
    a: &OrgAccount,
    caller: &str,
    role: &str,
    opts: &AuditOptions,
) -> Outcome {
    if a.status != "ACTIVE" {
        return Outcome::Skipped {
            reason: format!("account status {}: not audited", a.status),
        };
    }
    let member = if a.id == caller {
        org.own()
    } else {
        match org.member(&a.id, role).await {
            Ok(m) => m,
            Err(e) => {
                return Outcome::NotChecked {
                    reason: assume_failure(role, caller, e),
                }
            }
        }
    };
    match audit(&member, opts, &mut |_: Event| {}).await {
        Ok(r) => Outcome::Audited { audit: r },
        Err(e) => Outcome::NotChecked {
            reason: e.to_string(),
        },
    }
}

/// Why a role could not be assumed, and what to do.
fn assume_failure(role: &str, caller: &str, e: AwsError) -> String {
    match e {
        AwsError::AccessDenied { message, .. } => format!(
            "role {role} could not be assumed (AWS said: {message}); the account needs a role of that name trusting account {caller} \
             (--role-name names another), and these credentials need sts:AssumeRole on it"
        ),
        other => format!(
            "role {role} could not be assumed: {}",
            CloudError::new(other, Policy::Organization)
        ),
    }
}

/// Runs the jobs, at most `limit` at once on this task, handing each
/// result to `done` as it comes.
async fn run_bounded<T, F: Future<Output = T>>(
    jobs: impl IntoIterator<Item = F>,
    limit: usize,
    mut done: impl FnMut(T),
) {
    let mut jobs = jobs.into_iter();
    let mut running: Vec<Pin<Box<F>>> = Vec::new();
    loop {
        while running.len() < limit.max(1) {
            match jobs.next() {
                Some(j) => running.push(Box::pin(j)),
                None => break,
            }
        }
        if running.is_empty() {
            return;
        }
        let out = poll_fn(|cx| {
            for i in 0..running.len() {
                if let Poll::Ready(v) = running[i].as_mut().poll(cx) {
                    drop(running.swap_remove(i));
                    return Poll::Ready(v);
                }
            }
            Poll::Pending
        })
        .await;
        done(out);
    }
}

/// A word about how an account's audit ended, for progress.
fn outcome_word(o: &Outcome) -> String {
    match o {
        Outcome::Audited { audit } => format!("{} finding(s)", audit.findings.len()),
        Outcome::NotChecked { .. } => "not checked".to_string(),
        Outcome::Skipped { .. } => "skipped".to_string(),
    }
}

/// Audits every (or every chosen) account of the organization.
pub(crate) async fn audit_organization<O: OrgApi>(
    org: &O,
    opts: &OrgOptions,
    progress: &mut dyn Progress,
) -> Result<OrgReport, OrgError> {
    let started = Instant::now();
    let organization = org.organization().await?;
    let caller = org.caller_account().await?;
    let accounts = select(org.accounts().await?, &opts.accounts, &organization)?;
    let root_access = match org.root_access_features().await {
        Ok(f) => RootAccess::Features(f),
        Err(e) => RootAccess::Unknown(CloudError::new(e, Policy::Organization).to_string()),
    };
    let context = OrgContext {
        management_account: organization.management_account.clone(),
        root_credentials_managed: root_access.credentials_managed(),
        trails: org_trails(&org.own(), &caller).await,
    };
    let audit_opts = AuditOptions {
        organization: Some(Arc::new(context)),
        ..opts.audit.clone()
    };
    let total = accounts.len();
    progress.event(Event::OrgAudit {
        organization: organization.id.clone(),
        accounts: total,
        concurrency: opts.concurrency,
    });
    let jobs = accounts.iter().enumerate().map(|(i, a)| {
        let (caller, audit_opts) = (&caller, &audit_opts);
        async move {
            let outcome = audit_account(org, a, caller, &opts.role_name, audit_opts).await;
            (i, outcome)
        }
    });
    let mut outcomes: Vec<Option<Outcome>> = vec![None; total];
    let mut n = 0;
    run_bounded(jobs, opts.concurrency, |(i, outcome)| {
        n += 1;
        progress.event(Event::AccountAudited {
            account: accounts[i].id.clone(),
            n,
            of: total,
            result: outcome_word(&outcome),
        });
        outcomes[i] = Some(outcome);
    })
    .await;
    let accounts = accounts
        .into_iter()
        .zip(outcomes)
        .map(|(account, o)| AccountAudit {
            account,
            outcome: o.expect("every job ran"),
        })
        .collect();
    Ok(OrgReport {
        organization,
        caller,
        root_access,
        accounts,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}
