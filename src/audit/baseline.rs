//! `baseline cloudtrail`: an S3 bucket (public access blocked, the bucket
//! policy CloudTrail needs, optional Object Lock) and a multi-region trail
//! with log file validation and every management event, logging.
//!
//! [`plan`] reads what exists and lists only what is missing; [`apply`]
//! does exactly that list, then checks `IsLogging`. Run twice, the second
//! plan is empty: nothing is changed.

use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::error::{CloudError, Policy};
use super::trail::coverage;
use crate::aws::account::{
    BucketApi, EventSelector, ManagementEvents, Trail, TrailApi, TrailSettings,
};
use crate::aws::AwsError;

pub(crate) const DEFAULT_TRAIL: &str = "mfakey-account-trail";

#[derive(Debug, Clone, Default)]
pub(crate) struct BaselineOptions {
    pub trail_name: Option<String>,
    /// Default `mfakey-cloudtrail-<account>-<region>`.
    pub bucket: Option<String>,
    pub kms_key: Option<String>,
    /// Create the bucket with Object Lock (only when it is created).
    pub object_lock: bool,
}

/// One change the baseline makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub(crate) enum Change {
    CreateBucket {
        bucket: String,
        region: String,
        object_lock: bool,
    },
    BlockPublicAccess {
        bucket: String,
    },
    PutBucketPolicy {
        bucket: String,
        /// The whole policy after the change.
        policy: String,
        /// The Sids of the statements added (mfakey's, for this trail).
        added: Vec<String>,
        /// The Sids of mfakey's own earlier statements for this trail that
        /// are replaced.
        replaced: Vec<String>,
        /// How many statements already there are kept as they are.
        kept: usize,
    },
    CreateTrail {
        trail: String,
        bucket: String,
        kms_key: Option<String>,
    },
    UpdateTrail {
        trail: String,
        kms_key: Option<String>,
        why: String,
    },
    PutEventSelectors {
        trail: String,
    },
    StartLogging {
        trail: String,
    },
}

impl Change {
    /// One line for people.
    pub(crate) fn describe(&self) -> String {
        match self {
            Change::CreateBucket {
                bucket,
                region,
                object_lock,
            } => format!(
                "create S3 bucket {bucket} in {region}{}",
                if *object_lock {
                    " with Object Lock"
                } else {
                    ""
                }
            ),
            Change::BlockPublicAccess { bucket } => {
                format!("block all public access to bucket {bucket}")
            }
            Change::PutBucketPolicy {
                bucket,
                added,
                replaced,
                kept,
                ..
            } => {
                let mut text = format!(
                    "add statement(s) {} to bucket {bucket}'s policy so CloudTrail (only for this trail) can write its logs",
                    added.join(", ")
                );
                if !replaced.is_empty() {
                    text.push_str(&format!(
                        " (replacing mfakey's earlier {})",
                        replaced.join(", ")
                    ));
                }
                text.push_str(&format!("; the {kept} statement(s) already there are kept"));
                text
            }
            Change::CreateTrail {
                trail,
                bucket,
                kms_key,
            } => format!(
                "create trail {trail}: all regions, log file validation on, logs to {bucket}{}",
                kms_key
                    .as_ref()
                    .map(|k| format!(", encrypted with {k}"))
                    .unwrap_or_default()
            ),
            Change::UpdateTrail { trail, why, .. } => format!("update trail {trail}: {why}"),
            Change::PutEventSelectors { trail } => {
                format!("make trail {trail} record all management events (read and write, no event source excluded)")
            }
            Change::StartLogging { trail } => format!("start logging on trail {trail}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Plan {
    pub account_id: String,
    pub region: String,
    pub trail: String,
    pub bucket: String,
    pub changes: Vec<Change>,
    /// What is already as it should be.
    pub already: Vec<String>,
    /// What the baseline leaves as it is, and why.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum BaselineError {
    #[error(transparent)]
    Aws(CloudError),
    #[error("trail {trail} already logs to bucket {existing}, not {asked}: leave out --bucket, or choose another --trail-name")]
    BucketMismatch {
        trail: String,
        existing: String,
        asked: String,
    },
    #[error("bucket {bucket} has a bucket policy that is not valid JSON; fix or delete it, then run again")]
    BadPolicy { bucket: String },
    #[error("invalid {what} {name:?}: {why}")]
    InvalidName {
        what: &'static str,
        name: String,
        why: &'static str,
    },
    #[error("trail {trail} was created in {home_region}, and CloudTrail changes a trail only from its home region: run again with --region {home_region}")]
    OtherRegion { trail: String, home_region: String },
    #[error("trail {trail} still reports IsLogging = false after StartLogging; check it in the CloudTrail console and run again")]
    NotLogging { trail: String },
}

impl From<AwsError> for BaselineError {
    fn from(e: AwsError) -> Self {
        BaselineError::Aws(CloudError::new(e, Policy::Baseline))
    }
}

impl crate::error::Classify for BaselineError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            BaselineError::Aws(a) => a.kind(),
            BaselineError::InvalidName { .. } => Kind::InvalidArgument,
            BaselineError::NotLogging { .. } => Kind::NotLogging,
            BaselineError::BucketMismatch { .. }
            | BaselineError::BadPolicy { .. }
            | BaselineError::OtherRegion { .. } => Kind::Refused,
        }
    }
}

fn trail_arn(region: &str, account: &str, trail: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{account}:trail/{trail}")
}

/// mfakey's Sid for one of its statements for the trail `source_arn`:
/// unique to the trail, so statements for other trails (AWS's console
/// names them all alike) are never taken for ours.
fn our_sid(what: &str, source_arn: &str) -> String {
    let digest = Sha256::digest(source_arn.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("Mfakey{what}{hex}")
}

/// The two statements CloudTrail needs on its bucket, limited to this
/// trail by `aws:SourceArn`.
pub(crate) fn required_statements(bucket: &str, account: &str, source_arn: &str) -> Vec<Value> {
    vec![
        json!({
            "Sid": our_sid("CloudTrailAclCheck", source_arn),
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": format!("arn:aws:s3:::{bucket}"),
            "Condition": {"StringEquals": {"aws:SourceArn": source_arn}}
        }),
        json!({
            "Sid": our_sid("CloudTrailWrite", source_arn),
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": format!("arn:aws:s3:::{bucket}/AWSLogs/{account}/*"),
            "Condition": {"StringEquals": {
                "s3:x-amz-acl": "bucket-owner-full-control",
                "aws:SourceArn": source_arn
            }}
        }),
    ]
}

/// A bucket policy with mfakey's statements merged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Merged {
    pub policy: String,
    pub added: Vec<String>,
    pub replaced: Vec<String>,
    pub kept: usize,
}

/// A statement without its Sid, to compare what it grants.
fn without_sid(s: &Value) -> Value {
    let mut s = s.clone();
    if let Some(o) = s.as_object_mut() {
        o.remove("Sid");
    }
    s
}

/// The bucket policy with the required statements merged in, or `None`
/// when the existing one already grants them (under any Sid). Nothing
/// that is not mfakey's own statement for this trail is removed or
/// changed: other trails' statements and the owner's stay.
pub(crate) fn merged_policy(
    existing: Option<&str>,
    required: &[Value],
) -> Result<Option<Merged>, serde_json::Error> {
    let mut doc = match existing {
        None => json!({"Version": "2012-10-17", "Statement": []}),
        Some(text) => serde_json::from_str::<Value>(text)?,
    };
    let mut statements = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(v @ Value::Object(_)) => vec![v.clone()],
        _ => Vec::new(),
    };
    let kept_before = statements.len();
    let (mut added, mut replaced) = (Vec::new(), Vec::new());
    for r in required {
        let grant = without_sid(r);
        if statements.iter().any(|s| without_sid(s) == grant) {
            continue;
        }
        let sid = r.get("Sid").cloned().unwrap_or(Value::Null);
        let sid_text = sid.as_str().unwrap_or_default().to_string();
        match statements.iter_mut().find(|s| s.get("Sid") == Some(&sid)) {
            Some(old) => {
                *old = r.clone();
                replaced.push(sid_text);
            }
            None => {
                statements.push(r.clone());
                added.push(sid_text);
            }
        }
    }
    if added.is_empty() && replaced.is_empty() {
        return Ok(None);
    }
    doc["Statement"] = Value::Array(statements);
    if doc.get("Version").is_none() {
        doc["Version"] = json!("2012-10-17");
    }
    Ok(Some(Merged {
        policy: doc.to_string(),
        added,
        kept: kept_before - replaced.len(),
        replaced,
    }))
}

fn put_policy(bucket: &str, m: Merged) -> Change {
    Change::PutBucketPolicy {
        bucket: bucket.to_string(),
        policy: m.policy,
        added: m.added,
        replaced: m.replaced,
        kept: m.kept,
    }
}

/// CloudTrail's trail-name rules (an ARN is taken as it is).
pub(crate) fn check_trail_name(name: &str) -> Result<(), BaselineError> {
    if name.starts_with("arn:") {
        return Ok(());
    }
    let bad = |why| BaselineError::InvalidName {
        what: "trail name",
        name: name.to_string(),
        why,
    };
    let b = name.as_bytes();
    if !(3..=128).contains(&b.len()) {
        return Err(bad("a trail name has 3 to 128 characters"));
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
    {
        return Err(bad("use only letters, digits, '.', '_' and '-'"));
    }
    if !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return Err(bad("start and end with a letter or a digit"));
    }
    if b.windows(2)
        .any(|w| !w[0].is_ascii_alphanumeric() && !w[1].is_ascii_alphanumeric())
    {
        return Err(bad("no two of '.', '_', '-' in a row"));
    }
    Ok(())
}

/// S3's bucket-name rules (general purpose buckets).
pub(crate) fn check_bucket_name(name: &str) -> Result<(), BaselineError> {
    let bad = |why| BaselineError::InvalidName {
        what: "bucket name",
        name: name.to_string(),
        why,
    };
    let b = name.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return Err(bad("a bucket name has 3 to 63 characters"));
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b".-".contains(c))
    {
        return Err(bad("use only lower-case letters, digits, '.' and '-'"));
    }
    if !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return Err(bad("start and end with a letter or a digit"));
    }
    if name.contains("..") {
        return Err(bad("no two periods in a row"));
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err(bad("a bucket name cannot look like an IP address"));
    }
    Ok(())
}

/// Which trail and bucket the baseline is about, and what exists of them.
struct Target {
    account: String,
    region: String,
    trail: String,
    existing: Option<Trail>,
    bucket: String,
}

/// Checks the names, then finds the trail (if it exists) and its bucket.
async fn target<A: BucketApi + TrailApi>(
    api: &A,
    opts: &BaselineOptions,
) -> Result<Target, BaselineError> {
    if let Some(name) = &opts.trail_name {
        check_trail_name(name)?;
    }
    if let Some(bucket) = &opts.bucket {
        check_bucket_name(bucket)?;
    }
    let account = api.account_id().await?;
    let region = api.region();
    let trail = opts
        .trail_name
        .clone()
        .unwrap_or_else(|| DEFAULT_TRAIL.to_string());
    let existing: Option<Trail> = api
        .describe_trails()
        .await?
        .into_iter()
        .find(|t| t.name == trail || t.arn == trail);
    if let Some(t) = &existing {
        if !t.home_region.is_empty() && t.home_region != region {
            return Err(BaselineError::OtherRegion {
                trail: t.name.clone(),
                home_region: t.home_region.clone(),
            });
        }
    }
    let bucket = match (&existing, &opts.bucket) {
        (Some(t), Some(b)) if &t.bucket != b => {
            return Err(BaselineError::BucketMismatch {
                trail: t.name.clone(),
                existing: t.bucket.clone(),
                asked: b.clone(),
            })
        }
        (Some(t), _) => t.bucket.clone(),
        (None, Some(b)) => b.clone(),
        (None, None) => format!("mfakey-cloudtrail-{account}-{region}"),
    };
    Ok(Target {
        account,
        region,
        trail,
        existing,
        bucket,
    })
}

/// The plan being made: changes, what is already right, notes.
#[derive(Default)]
struct Lists {
    changes: Vec<Change>,
    already: Vec<String>,
    notes: Vec<String>,
}

/// Reads what exists and lists the changes needed.
pub(crate) async fn plan<A: BucketApi + TrailApi>(
    api: &A,
    opts: &BaselineOptions,
) -> Result<Plan, BaselineError> {
    let t = target(api, opts).await?;
    let mut lists = Lists::default();
    plan_bucket(api, opts, &t, &mut lists).await?;
    match &t.existing {
        None => plan_new_trail(opts, &t, &mut lists),
        Some(existing) => plan_existing_trail(api, opts, existing, &mut lists).await?,
    }
    Ok(Plan {
        account_id: t.account,
        region: t.region,
        trail: t.trail,
        bucket: t.bucket,
        changes: lists.changes,
        already: lists.already,
        notes: lists.notes,
    })
}

/// The bucket: created with public access blocked and CloudTrail's
/// statements, or an existing one completed.
async fn plan_bucket<A: BucketApi>(
    api: &A,
    opts: &BaselineOptions,
    t: &Target,
    l: &mut Lists,
) -> Result<(), BaselineError> {
    let bucket = &t.bucket;
    let source_arn = t
        .existing
        .as_ref()
        .map(|e| e.arn.clone())
        .unwrap_or_else(|| trail_arn(&t.region, &t.account, &t.trail));
    let required = required_statements(bucket, &t.account, &source_arn);
    let Some(state) = api.bucket_state(bucket).await? else {
        l.changes.push(Change::CreateBucket {
            bucket: bucket.clone(),
            region: t.region.clone(),
            object_lock: opts.object_lock,
        });
        l.changes.push(Change::BlockPublicAccess {
            bucket: bucket.clone(),
        });
        if let Ok(Some(m)) = merged_policy(None, &required) {
            l.changes.push(put_policy(bucket, m));
        }
        return Ok(());
    };
    l.already.push(format!("bucket {bucket} exists"));
    if opts.object_lock {
        l.notes.push(format!(
            "bucket {bucket} exists: Object Lock is only set when the bucket is created, so it is left as it is"
        ));
    }
    if state.public_access_blocked {
        l.already
            .push(format!("bucket {bucket} blocks all public access"));
    } else {
        l.changes.push(Change::BlockPublicAccess {
            bucket: bucket.clone(),
        });
    }
    match merged_policy(state.policy.as_deref(), &required) {
        Err(_) => {
            return Err(BaselineError::BadPolicy {
                bucket: bucket.clone(),
            })
        }
        Ok(None) => l
            .already
            .push(format!("bucket {bucket}'s policy lets CloudTrail write")),
        Ok(Some(m)) => l.changes.push(put_policy(bucket, m)),
    }
    Ok(())
}

fn plan_new_trail(opts: &BaselineOptions, t: &Target, l: &mut Lists) {
    l.changes.push(Change::CreateTrail {
        trail: t.trail.clone(),
        bucket: t.bucket.clone(),
        kms_key: opts.kms_key.clone(),
    });
    l.changes.push(Change::PutEventSelectors {
        trail: t.trail.clone(),
    });
    l.changes.push(Change::StartLogging {
        trail: t.trail.clone(),
    });
}

/// An existing trail: its settings, its selectors, its logging.
async fn plan_existing_trail<A: TrailApi>(
    api: &A,
    opts: &BaselineOptions,
    t: &Trail,
    l: &mut Lists,
) -> Result<(), BaselineError> {
    plan_trail_settings(opts, t, l);
    let selectors = api.event_selectors(&t.home_region, &t.arn).await?;
    if coverage(&selectors).complete {
        l.already
            .push(format!("trail {} records all management events", t.name));
    } else if !selectors.advanced.is_empty() {
        l.notes.push(format!(
            "trail {} uses advanced event selectors without all management events; add a selector with eventCategory = Management in the CloudTrail console",
            t.name
        ));
    } else {
        l.changes.push(Change::PutEventSelectors {
            trail: t.name.clone(),
        });
    }
    if api.is_logging(&t.home_region, &t.arn).await? {
        l.already.push(format!("trail {} is logging", t.name));
    } else {
        l.changes.push(Change::StartLogging {
            trail: t.name.clone(),
        });
    }
    Ok(())
}

/// UpdateTrail when the trail is not multi-region, lacks log file
/// validation, or is to be encrypted with another key.
fn plan_trail_settings(opts: &BaselineOptions, t: &Trail, l: &mut Lists) {
    let mut why = Vec::new();
    if !t.multi_region {
        why.push("make it multi-region".to_string());
    }
    if !t.log_file_validation {
        why.push("turn log file validation on".to_string());
    }
    if !t.global_events {
        why.push("record global service events".to_string());
    }
    let new_key = opts
        .kms_key
        .as_ref()
        .filter(|k| t.kms_key.as_ref() != Some(*k));
    if let Some(k) = new_key {
        why.push(format!("encrypt with {k}"));
    }
    if why.is_empty() {
        l.already.push(format!(
            "trail {} is multi-region with log file validation{}",
            t.name,
            t.kms_key
                .as_ref()
                .map(|k| format!(", encrypted with {k}"))
                .unwrap_or_default()
        ));
        return;
    }
    l.changes.push(Change::UpdateTrail {
        trail: t.name.clone(),
        kms_key: new_key.or(t.kms_key.as_ref()).cloned(),
        why: why.join(", "),
    });
}

/// The selectors after the change: every existing selector kept with its
/// data resources, management events read and write on the first one, and
/// no management event source excluded.
fn all_management(existing: &[EventSelector]) -> Vec<EventSelector> {
    let mut out: Vec<EventSelector> = existing.to_vec();
    for s in &mut out {
        s.exclude_sources.clear();
    }
    match out.first_mut() {
        Some(first) => {
            first.read_write = ManagementEvents::All;
            first.include_management = true;
        }
        None => out.push(EventSelector {
            read_write: ManagementEvents::All,
            include_management: true,
            data_resources: Vec::new(),
            exclude_sources: Vec::new(),
        }),
    }
    out
}

/// Makes the plan's changes in order, reporting each as it is done, then
/// checks the trail logs.
pub(crate) async fn apply<A: BucketApi + TrailApi>(
    api: &A,
    plan: &Plan,
    done: &mut dyn FnMut(&Change),
) -> Result<(), BaselineError> {
    for change in &plan.changes {
        match change {
            Change::CreateBucket {
                bucket,
                object_lock,
                ..
            } => api.create_bucket(bucket, *object_lock).await?,
            Change::BlockPublicAccess { bucket } => api.block_public_access(bucket).await?,
            Change::PutBucketPolicy { bucket, policy, .. } => {
                api.put_bucket_policy(bucket, policy).await?
            }
            Change::CreateTrail {
                trail,
                bucket,
                kms_key,
            } => {
                api.create_trail(&TrailSettings {
                    name: trail.clone(),
                    bucket: bucket.clone(),
                    kms_key: kms_key.clone(),
                })
                .await?
            }
            Change::UpdateTrail { trail, kms_key, .. } => {
                api.update_trail(&TrailSettings {
                    name: trail.clone(),
                    bucket: plan.bucket.clone(),
                    kms_key: kms_key.clone(),
                })
                .await?
            }
            Change::PutEventSelectors { trail } => {
                let existing = api.event_selectors(&plan.region, trail).await?;
                api.put_event_selectors(trail, &all_management(&existing.basic))
                    .await?
            }
            Change::StartLogging { trail } => api.start_logging(trail).await?,
        }
        done(change);
    }
    if !plan.changes.is_empty() && !api.is_logging(&plan.region, &plan.trail).await? {
        return Err(BaselineError::NotLogging {
            trail: plan.trail.clone(),
        });
    }
    Ok(())
}
