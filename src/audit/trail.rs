//! The audit's CloudTrail check: is there a multi-region trail that logs
//! every management event, with log file validation and KMS encryption?
//! Each trail is judged; the best one's shortcomings are the findings.

use super::{Finding, Severity};
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

fn fix(trail: &Trail) -> String {
    format!("`mfakey baseline cloudtrail --trail-name {}`", trail.name)
}

/// The findings of one trail.
async fn judge<T: TrailApi>(api: &T, t: &Trail) -> Result<Vec<Finding>, AwsError> {
    let mut found = Vec::new();
    let subject = Some(t.name.clone());
    let mut add = |id, severity, title: String, evidence: String, remedy: String| {
        found.push(Finding {
            id,
            severity,
            subject: subject.clone(),
            title,
            evidence,
            remedy,
        })
    };
    if !t.multi_region {
        add(
            "cloudtrail-not-multi-region",
            Severity::Medium,
            format!("trail {} records one region only", t.name),
            format!(
                "DescribeTrails: IsMultiRegionTrail = false (home {})",
                t.home_region
            ),
            fix(t),
        );
    }
    if !api.is_logging(&t.arn).await? {
        add(
            "cloudtrail-not-logging",
            Severity::High,
            format!("trail {} is not logging", t.name),
            "GetTrailStatus: IsLogging = false".to_string(),
            fix(t),
        );
    }
    let events = management_events(&api.event_selectors(&t.arn).await?);
    if events != ManagementEvents::All {
        add(
            "cloudtrail-management-events",
            Severity::Medium,
            format!("trail {} does not record all management events", t.name),
            format!("GetEventSelectors: management events recorded: {events:?}"),
            fix(t),
        );
    }
    if !t.log_file_validation {
        add(
            "cloudtrail-log-validation-off",
            Severity::Medium,
            format!("trail {} has log file validation off", t.name),
            "DescribeTrails: LogFileValidationEnabled = false".to_string(),
            fix(t),
        );
    }
    if t.kms_key.is_none() {
        add(
            "cloudtrail-no-kms",
            Severity::Low,
            format!("trail {}'s logs are not encrypted with a KMS key", t.name),
            "DescribeTrails: no KmsKeyId (S3-managed encryption only)".to_string(),
            format!(
                "`mfakey baseline cloudtrail --trail-name {} --kms-key KEY_ARN` (the key policy must let CloudTrail use it)",
                t.name
            ),
        );
    }
    Ok(found)
}

fn weight(found: &[Finding]) -> u32 {
    found
        .iter()
        .map(|f| match f.severity {
            Severity::Critical => 1000,
            Severity::High => 100,
            Severity::Medium => 10,
            Severity::Low => 1,
        })
        .sum()
}

/// The findings of the best trail (fewest and mildest shortcomings), or
/// `cloudtrail-missing` when there is none.
pub(crate) async fn check<T: TrailApi>(api: &T) -> Result<(Vec<Finding>, String), AwsError> {
    let trails = api.describe_trails().await?;
    if trails.is_empty() {
        return Ok((
            vec![Finding {
                id: "cloudtrail-missing",
                severity: Severity::High,
                subject: None,
                title:
                    "no CloudTrail trail: API activity is kept for 90 days only, in Event history"
                        .to_string(),
                evidence: "DescribeTrails: no trails".to_string(),
                remedy: "`mfakey baseline cloudtrail`".to_string(),
            }],
            String::new(),
        ));
    }
    let mut best: Option<(Vec<Finding>, &Trail)> = None;
    for t in &trails {
        let found = judge(api, t).await?;
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
