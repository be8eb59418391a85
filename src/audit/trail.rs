//! The audit's CloudTrail check: is there a multi-region trail that logs
//! every management event, with log file validation and KMS encryption?
//! Each trail is judged; the best one's shortcomings are the findings.

use super::findings::{FindingId, Found};
use super::Severity;
use crate::aws::account::{EventSelectors, ManagementEvents, Trail, TrailApi};
use crate::aws::AwsError;

/// Which management events the selectors record, basic or advanced.
pub(crate) fn management_events(sel: &EventSelectors) -> ManagementEvents {
    let (mut read, mut write) = (false, false);
    for s in sel.basic.iter().filter(|s| s.include_management) {
        match s.read_write {
            ManagementEvents::All => (read, write) = (true, true),
            ManagementEvents::ReadOnly => read = true,
            ManagementEvents::WriteOnly => write = true,
            ManagementEvents::None => {}
        }
    }
    for fields in &sel.advanced {
        let management = fields
            .iter()
            .any(|(f, v)| f == "eventCategory" && v.iter().any(|x| x == "Management"));
        if !management {
            continue;
        }
        match fields.iter().find(|(f, _)| f == "readOnly") {
            None => (read, write) = (true, true),
            Some((_, v)) => {
                read |= v.iter().any(|x| x == "true");
                write |= v.iter().any(|x| x == "false");
            }
        }
    }
    match (read, write) {
        (true, true) => ManagementEvents::All,
        (true, false) => ManagementEvents::ReadOnly,
        (false, true) => ManagementEvents::WriteOnly,
        (false, false) => ManagementEvents::None,
    }
}

/// What is known of one trail: DescribeTrails' fields, GetTrailStatus,
/// GetEventSelectors.
struct TrailFacts<'a> {
    trail: &'a Trail,
    logging: bool,
    events: ManagementEvents,
}

async fn read_facts<'a, T: TrailApi>(api: &T, t: &'a Trail) -> Result<TrailFacts<'a>, AwsError> {
    Ok(TrailFacts {
        trail: t,
        logging: api.is_logging(&t.arn).await?,
        events: management_events(&api.event_selectors(&t.arn).await?),
    })
}

/// The shortcomings of one trail.
fn judge(f: &TrailFacts) -> Vec<Found> {
    let t = f.trail;
    let subject = Some(t.name.as_str());
    let mut found = Vec::new();
    if !t.multi_region {
        found.push(Found::new(
            FindingId::CloudtrailNotMultiRegion,
            subject,
            format!(
                "DescribeTrails: IsMultiRegionTrail = false (home {})",
                t.home_region
            ),
        ));
    }
    if !f.logging {
        found.push(Found::new(
            FindingId::CloudtrailNotLogging,
            subject,
            "GetTrailStatus: IsLogging = false",
        ));
    }
    if f.events != ManagementEvents::All {
        found.push(Found::new(
            FindingId::CloudtrailManagementEvents,
            subject,
            format!(
                "GetEventSelectors: management events recorded: {:?}",
                f.events
            ),
        ));
    }
    if !t.log_file_validation {
        found.push(Found::new(
            FindingId::CloudtrailLogValidationOff,
            subject,
            "DescribeTrails: LogFileValidationEnabled = false",
        ));
    }
    if t.kms_key.is_none() {
        found.push(Found::new(
            FindingId::CloudtrailNoKms,
            subject,
            "DescribeTrails: no KmsKeyId (S3-managed encryption only)",
        ));
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
        })
        .sum()
}

/// The findings of the best trail (fewest and mildest shortcomings), or
/// `cloudtrail-missing` when there is none.
pub(crate) async fn check<T: TrailApi>(api: &T) -> Result<(Vec<Found>, String), AwsError> {
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
    let mut best: Option<(Vec<Found>, &Trail)> = None;
    for t in &trails {
        let found = judge(&read_facts(api, t).await?);
        if best
            .as_ref()
            .is_none_or(|(b, _)| weight(&found) < weight(b))
        {
            best = Some((found, t));
        }
    }
    let (found, t) = best.expect("at least one trail");
    Ok((
        found,
        format!("{} trails; judged the best: {}", trails.len(), t.name),
    ))
}
