//! The audit's and the baseline's AWS errors. [`AwsError`] states the facts
//! in the enroller's words (IAM, docs/iam-policy.json); the audit and the
//! baseline call IAM, CloudTrail, S3 and STS and each has its own policy
//! document, so their errors say which service answered and which document
//! grants the missing permission.

use crate::aws::AwsError;
use crate::error::{Classify, Kind};

/// The permissions the audit needs.
pub(crate) const AUDIT_POLICY_DOC: &str = "docs/audit-policy.json";

/// Which job met the error, and so which policy document grants its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    Audit,
    Baseline,
}

impl Policy {
    /// What to attach, in words.
    pub(crate) fn remedy(self) -> String {
        match self {
            Policy::Audit => format!("attach the policy in {AUDIT_POLICY_DOC}"),
            Policy::Baseline => format!(
                "attach the baseline's permissions in {AUDIT_POLICY_DOC} (statements BaselineBucket and BaselineTrail)"
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
