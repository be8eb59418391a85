//! The audit's CloudTrail check: is there a multi-region trail that logs
//! every management event (no source excluded), global service events
//! included, with log file validation and KMS encryption, into a bucket
//! that is not public? Each trail is read in its home region and judged;
//! the best one's shortcomings are the findings.
//!
//! An organization trail owned by another account (the management
//! account) logs this account too, but CloudTrail answers its status and
//! selectors only to its owner: it is credited here, with what the
//! organization run read in the management account when there is one. A
//! trail that cannot be read never sinks the check when another trail
//! satisfies it.

use super::findings::{FindingId, Found};
use super::{CloudError, OrgContext, Policy, Severity};
use crate::aws::account::{
    BucketApi, BucketExposure, EventSelectors, FieldSelector, ManagementEvents, Trail, TrailApi,
};
use crate::aws::AwsError;

/// Which management events the selectors record, and whether every one of
/// them is: no source excluded, no condition narrowing them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Coverage {
    /// Read and/or write management events recorded by some selector.
    pub events: ManagementEvents,
    /// Every management event, read and write, with nothing left out.
    pub complete: bool,
    /// What narrows the selectors that record management events.
    pub narrowed_by: Vec<String>,
}

fn read_write(rw: ManagementEvents) -> (bool, bool) {
    match rw {
        ManagementEvents::All => (true, true),
        ManagementEvents::ReadOnly => (true, false),
        ManagementEvents::WriteOnly => (false, true),
        ManagementEvents::None => (false, false),
    }
}

/// The conditions of an advanced selector other than the event category
/// and read-only, in words.
fn narrowing(fields: &[FieldSelector]) -> Vec<String> {
    let mut out = Vec::new();
    for f in fields
        .iter()
        .filter(|f| f.field != "eventCategory" && f.field != "readOnly")
    {
        for (op, values) in [
            ("Equals", &f.equals),
            ("NotEquals", &f.not_equals),
            ("StartsWith", &f.starts_with),
            ("NotStartsWith", &f.not_starts_with),
            ("EndsWith", &f.ends_with),
            ("NotEndsWith", &f.not_ends_with),
        ] {
            if !values.is_empty() {
                out.push(format!("{} {op} {}", f.field, values.join(", ")));
            }
        }
    }
    out
}

/// The management events the selectors record, basic or advanced.
pub(crate) fn coverage(sel: &EventSelectors) -> Coverage {
    let (mut read, mut write) = (false, false);
    let (mut full_read, mut full_write) = (false, false);
    let mut narrowed_by = Vec::new();
    for s in sel.basic.iter().filter(|s| s.include_management) {
        let (r, w) = read_write(s.read_write);
        (read, write) = (read || r, write || w);
        if s.exclude_sources.is_empty() {
            (full_read, full_write) = (full_read || r, full_write || w);
        } else {
            narrowed_by.extend(
                s.exclude_sources
                    .iter()
                    .map(|x| format!("ExcludeManagementEventSources {x}")),
            );
        }
    }
    for fields in &sel.advanced {
        let management = fields
            .iter()
            .any(|f| f.field == "eventCategory" && f.equals.iter().any(|x| x == "Management"));
        if !management {
            continue;
        }
        let (r, w) = match fields.iter().find(|f| f.field == "readOnly") {
            None => (true, true),
            Some(f) => (
                f.equals.iter().any(|x| x == "true"),
                f.equals.iter().any(|x| x == "false"),
            ),
        };
        (read, write) = (read || r, write || w);
        let conditions = narrowing(fields);
        if conditions.is_empty() {
            (full_read, full_write) = (full_read || r, full_write || w);
        }
        narrowed_by.extend(conditions);
    }
    let events = match (read, write) {
        (true, true) => ManagementEvents::All,
        (true, false) => ManagementEvents::ReadOnly,
        (false, true) => ManagementEvents::WriteOnly,
        (false, false) => ManagementEvents::None,
    };
    narrowed_by.dedup();
    Coverage {
        events,
        complete: full_read && full_write,
        narrowed_by,
    }
}

/// Which management events the selectors record, basic or advanced.
#[cfg(test)]
pub(crate) fn management_events(sel: &EventSelectors) -> ManagementEvents {
    coverage(sel).events
}

/// What is known of one trail.
struct TrailFacts<'a> {
    trail: &'a Trail,
    /// An organization trail of another account: fixed there.
    foreign: bool,
    /// GetTrailStatus; `None` when only the owner can read it.
    logging: Option<bool>,
    /// GetEventSelectors; `None` when only the owner can read them.
    selectors: Option<EventSelectors>,
    /// The log bucket; `Ok(None)` when not looked at or not found.
    bucket: Result<Option<BucketExposure>, AwsError>,
    /// What was credited rather than read, or could not be read.
    notes: Vec<String>,
}

/// Reads a trail's status, selectors and bucket in its home region; an
/// organization trail of another account is credited instead.
async fn read_facts<'a, A: TrailApi + BucketApi>(
    api: &A,
    t: &'a Trail,
    account: Option<&str>,
    org: Option<&OrgContext>,
) -> Result<TrailFacts<'a>, AwsError> {
    let owner = t.account();
    let foreign = t.organization && owner.is_some() && account.is_some() && owner != account;
    if !foreign {
        let region = t.home_region.as_str();
        let mut facts = TrailFacts {
            trail: t,
            foreign,
            logging: Some(api.is_logging(region, &t.arn).await?),
            selectors: Some(api.event_selectors(region, &t.arn).await?),
            bucket: api.bucket_exposure(&t.bucket, region).await,
            notes: Vec::new(),
        };
        if let Err(e) = &facts.bucket {
            let why = CloudError::new(e.clone(), Policy::Audit);
            facts.notes.push(format!(
                "bucket {} of trail {} not judged: {why}",
                t.bucket, t.name
            ));
        }
        return Ok(facts);
    }
    let owner = owner.unwrap_or_default();
    let read = org.and_then(|o| o.trails.iter().find(|x| x.arn == t.arn));
    let note = match read {
        Some(_) => format!(
            "organization trail {} of account {owner}: status and selectors as the management account reads them",
            t.name
        ),
        None => format!(
            "organization trail {} of account {owner} logs this account; CloudTrail answers its status and selectors \
             only to its owner, so they are credited here (the owner's audit judges them), as is its bucket",
            t.name
        ),
    };
    Ok(TrailFacts {
        trail: t,
        foreign,
        logging: read.map(|r| r.logging),
        selectors: read.map(|r| r.selectors.clone()),
        bucket: Ok(None),
        notes: vec![note],
    })
}

/// What a trail's selectors leave out, in words.
fn events_evidence(c: &Coverage) -> String {
    let mut text = format!(
        "GetEventSelectors: management events recorded: {:?}",
        c.events
    );
    if !c.narrowed_by.is_empty() {
        text.push_str(&format!(", narrowed by {}", c.narrowed_by.join("; ")));
    }
    text
}

fn bucket_evidence(b: &str, x: &BucketExposure) -> String {
    let [block_acls, ignore_acls, block_policy, restrict] = x.block;
    format!(
        "bucket {b}: GetBucketPolicyStatus IsPublic = {}; GetBucketAcl public grants: {}; \
         GetPublicAccessBlock BlockPublicAcls = {block_acls}, IgnorePublicAcls = {ignore_acls}, \
         BlockPublicPolicy = {block_policy}, RestrictPublicBuckets = {restrict}",
        x.policy_public,
        if x.public_grants.is_empty() {
            "none".to_string()
        } else {
            x.public_grants.join(", ")
        }
    )
}

/// The shortcomings of one trail.
fn judge(f: &TrailFacts) -> Vec<Found> {
    let t = f.trail;
    let subject = Some(t.name.as_str());
    let mut found = Vec::new();
    let mut add = |id, evidence: String| {
        let mut x = Found::new(id, subject, evidence);
        if f.foreign {
            x = x.variant("organization-trail");
        }
        found.push(x);
    };
    if !t.multi_region {
        add(
            FindingId::CloudtrailNotMultiRegion,
            format!(
                "DescribeTrails: IsMultiRegionTrail = false (home {})",
                t.home_region
            ),
        );
    }
    if f.logging == Some(false) {
        add(
            FindingId::CloudtrailNotLogging,
            "GetTrailStatus: IsLogging = false".to_string(),
        );
    }
    if let Some(c) = f.selectors.as_ref().map(coverage) {
        if !c.complete {
            add(FindingId::CloudtrailManagementEvents, events_evidence(&c));
        }
    }
    if !t.global_events {
        add(
            FindingId::CloudtrailGlobalEventsOff,
            "DescribeTrails: IncludeGlobalServiceEvents = false".to_string(),
        );
    }
    if !t.log_file_validation {
        add(
            FindingId::CloudtrailLogValidationOff,
            "DescribeTrails: LogFileValidationEnabled = false".to_string(),
        );
    }
    if t.kms_key.is_none() {
        add(
            FindingId::CloudtrailNoKms,
            "DescribeTrails: no KmsKeyId (S3-managed encryption only)".to_string(),
        );
    }
    if let Ok(Some(x)) = &f.bucket {
        if x.is_public() {
            let mut b = Found::new(
                FindingId::CloudtrailBucketPublic,
                subject,
                bucket_evidence(&t.bucket, x),
            )
            .with("bucket", t.bucket.as_str());
            if f.foreign {
                b = b.variant("organization-trail");
            }
            found.push(b);
        }
    }
    found
}

/// How bad a trail's shortcomings are, to pick the best trail.
fn weight(found: &[Found]) -> u32 {
    found
        .iter()
        .map(|f| match f.id.spec().severity {
            Severity::Critical => 1000,
            Severity::High => 100,
            Severity::Medium => 10,
            Severity::Low => 1,
            Severity::Info => 0,
        })
        .sum()
}

/// The findings of the best trail (fewest and mildest shortcomings), or
/// `cloudtrail-missing` when there is none. `account` is the audited
/// account (to tell its own trails from the organization's); `org` what
/// the organization run read of the organization's trails.
pub(crate) async fn check<A: TrailApi + BucketApi>(
    api: &A,
    account: Option<&str>,
    org: Option<&OrgContext>,
) -> Result<(Vec<Found>, String), AwsError> {
    let trails = api.describe_trails().await?;
    if trails.is_empty() {
        return Ok((
            vec![Found::new(
                FindingId::CloudtrailMissing,
                None,
                "DescribeTrails: no trails",
            )],
            String::new(),
        ));
    }
    let mut judged = Vec::new();
    let mut unreadable = Vec::new();
    for t in &trails {
        match read_facts(api, t, account, org).await {
            Ok(f) => judged.push((judge(&f), f)),
            Err(e) => unreadable.push((t, e)),
        }
    }
    pick(judged, unreadable, trails.len())
}

/// The best judged trail, unless none satisfies and a trail could not be
/// read (which might have): then the check cannot tell.
fn pick(
    judged: Vec<(Vec<Found>, TrailFacts)>,
    unreadable: Vec<(&Trail, AwsError)>,
    total: usize,
) -> Result<(Vec<Found>, String), AwsError> {
    let best = judged.into_iter().min_by_key(|(found, _)| weight(found));
    let (found, facts) = match best {
        Some((found, facts)) if found.is_empty() || unreadable.is_empty() => (found, facts),
        _ => return Err(unreadable.into_iter().next().expect("a trail").1),
    };
    let mut detail = format!("{total} trails; judged the best: {}", facts.trail.name);
    for note in &facts.notes {
        detail.push_str(&format!("; {note}"));
    }
    for (t, e) in &unreadable {
        let why = CloudError::new(e.clone(), Policy::Audit);
        detail.push_str(&format!("; trail {} not read: {why}", t.name));
    }
    Ok((found, detail))
}
