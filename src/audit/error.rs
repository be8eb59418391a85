//! The audit's and the baseline's AWS errors. [`AwsError`] states the facts
//! in the enroller's words (IAM, docs/iam-policy.json); the audit and the
//! baseline call IAM, CloudTrail, S3 and STS and each has its own policy
//! document, so their errors say which service answered and which document
//! grants the missing permission.

use crate::aws::AwsError;
use crate::error::{Classify, Kind};

/// The permissions the audit needs (reads only).
pub(crate) const AUDIT_POLICY_DOC: &str = "docs/audit-policy.json";

/// The permissions the baseline needs, on mfakey's own bucket and trail
/// names.
pub(crate) const BASELINE_POLICY_DOC: &str = "docs/baseline-policy.json";

/// Which job met the error, and so which policy document grants its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    Audit,
    /// The organization-wide audit's own calls (Organizations, STS
    /// AssumeRole, ListOrganizationsFeatures), also in the audit's policy.
    Organization,
    Baseline,
}

impl Policy {
    /// What to attach, in words.
    pub(crate) fn remedy(self) -> String {
        match self {
            Policy::Audit => format!("attach the policy in {AUDIT_POLICY_DOC}"),
            Policy::Organization => format!(
                "run it from the organization's management account or a delegated administrator, \
                 with the policy in {AUDIT_POLICY_DOC} (statement AuditOrganization)"
            ),
            Policy::Baseline => format!(
                "attach the baseline's permissions in {BASELINE_POLICY_DOC} (statements BaselineBucket and BaselineTrail, \
                 which name mfakey's own bucket and trail names: add yours if you chose others with --bucket or --trail-name)"
            ),
        }
    }
}

/// An AWS error met by the audit or the baseline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CloudError {
    #[error("access denied: the AWS credentials in use lack the permission {action} (AWS said: {message}); {}, or choose a profile that has it with --profile", .policy.remedy())]
    AccessDenied {
        action: String,
        message: String,
        policy: Policy,
    },
    #[error("cannot reach the AWS endpoint {endpoint} ({detail}); check the network and proxy settings, and --endpoint-url / AWS_ENDPOINT_URL* if set")]
    Unreachable { endpoint: String, detail: String },
    #[error("AWS throttled the requests even after {attempts} attempts with backoff; wait a minute and retry")]
    Throttled { attempts: u32 },
    #[error("the AWS request failed: {code}: {message}")]
    Failed { code: String, message: String },
    /// Errors whose own words fit any service (credentials above all).
    #[error(transparent)]
    Aws(AwsError),
}

impl CloudError {
    /// The AWS error `e`, met by the job whose permissions are in `policy`.
    pub(crate) fn new(e: AwsError, policy: Policy) -> Self {
        match e {
            AwsError::AccessDenied { action, message } => CloudError::AccessDenied {
                action,
                message,
                policy,
            },
            AwsError::EndpointUnreachable { endpoint, detail } => {
                CloudError::Unreachable { endpoint, detail }
            }
            AwsError::Throttling { attempts } => CloudError::Throttled { attempts },
            AwsError::Other { code, message } => CloudError::Failed { code, message },
            other => CloudError::Aws(other),
        }
    }
}

impl Classify for CloudError {
    fn kind(&self) -> Kind {
        match self {
            CloudError::AccessDenied { .. } => Kind::AccessDenied,
            CloudError::Unreachable { .. } => Kind::EndpointUnreachable,
            CloudError::Throttled { .. } => Kind::Throttling,
            CloudError::Failed { .. } => Kind::Aws,
            CloudError::Aws(e) => e.kind(),
        }
    }
}

/// Errors that stop the whole audit: without credentials no check can run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum AuditError {
    #[error(transparent)]
    Aws(AwsError),
}

impl Classify for AuditError {
    fn kind(&self) -> Kind {
        match self {
            AuditError::Aws(a) => a.kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_job_names_its_own_policy_and_no_service_it_did_not_call() {
        let denied = || AwsError::AccessDenied {
            action: "cloudtrail:GetTrailStatus".into(),
            message: "no".into(),
        };
        let audit = CloudError::new(denied(), Policy::Audit).to_string();
        assert!(audit.contains("cloudtrail:GetTrailStatus") && audit.contains(AUDIT_POLICY_DOC));
        assert!(
            !audit.contains("iam-policy.json") && !audit.contains("IAM said"),
            "{audit}"
        );
        let baseline = CloudError::new(denied(), Policy::Baseline).to_string();
        assert!(baseline.contains("BaselineBucket") && baseline.contains("BaselineTrail"));
        assert!(baseline.contains(BASELINE_POLICY_DOC) && !baseline.contains(AUDIT_POLICY_DOC));
        for e in [
            AwsError::EndpointUnreachable {
                endpoint: "https://cloudtrail.eu-west-1.amazonaws.com".into(),
                detail: "refused".into(),
            },
            AwsError::Throttling { attempts: 5 },
            AwsError::Other {
                code: "TrailNotFoundException".into(),
                message: "Unknown trail".into(),
            },
        ] {
            let kind = e.kind();
            let c = CloudError::new(e, Policy::Audit);
            assert_eq!(c.kind(), kind);
            assert!(!c.to_string().contains("IAM"), "{c}");
        }
    }
}

#[cfg(test)]
mod policy_tests {
    //! The policy documents the messages name hold what they say.

    use serde_json::Value;

    fn statements(doc: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
        let v: Value = serde_json::from_str(doc).expect("policy JSON");
        let list = |x: &Value| match x {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        };
        v["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .map(|s| {
                (
                    s["Sid"].as_str().unwrap_or("").to_string(),
                    list(&s["Action"]),
                    list(&s["Resource"]),
                )
            })
            .collect()
    }

    #[test]
    fn the_audit_policy_only_reads() {
        for (sid, actions, _) in statements(include_str!("../../docs/audit-policy.json")) {
            for a in actions {
                let verb = a.split(':').nth(1).unwrap_or("");
                let read = ["Get", "List", "Describe", "Generate"]
                    .iter()
                    .any(|p| verb.starts_with(p))
                    || a == "sts:AssumeRole";
                assert!(read, "{sid}: {a} is not a read");
            }
        }
    }

    #[test]
    fn the_baseline_policy_writes_only_mfakeys_own_names() {
        let all = statements(include_str!("../../docs/baseline-policy.json"));
        for sid in ["BaselineBucket", "BaselineTrail"] {
            assert!(all.iter().any(|(s, _, _)| s == sid), "{sid}");
        }
        for (sid, actions, resources) in &all {
            let writes = actions.iter().any(|a| {
                let verb = a.split(':').nth(1).unwrap_or("");
                ["Create", "Put", "Update", "Start"]
                    .iter()
                    .any(|p| verb.starts_with(p))
            });
            if writes {
                for r in resources {
                    assert!(
                        r == "arn:aws:s3:::mfakey-cloudtrail-*"
                            || r == "arn:aws:cloudtrail:*:*:trail/mfakey-*",
                        "{sid}: writes on {r}"
                    );
                }
            }
        }
        // The defaults fall under those names.
        assert!(super::super::baseline::DEFAULT_TRAIL.starts_with("mfakey-"));
    }
}
