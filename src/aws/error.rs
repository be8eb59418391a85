//! What can go wrong talking to IAM, in words an operator can act on.
//!
//! Errors carry names, serials, error codes and IAM's own messages: never a
//! seed, never a code pair, never a credential. Each reads as one line:
//! what failed, why, what to do. The SDK's own account (its error chain,
//! which can run to a paragraph of nested debug output) is kept apart as
//! the error's [`Detail`] source, shown only with `-v`.

use std::error::Error as StdError;

use aws_credential_types::provider::error::{CredentialsError, TokenError};
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

pub use crate::error::Detail;

/// The policy document that grants everything this layer calls.
pub const POLICY_DOC: &str = "docs/iam-policy.json";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    #[error("access denied: the AWS credentials in use lack the permission {action} (IAM said: {message}); attach the policy in {POLICY_DOC} to the enrolling principal, or choose a profile that has it with --profile")]
    AccessDenied { action: String, message: String },

    #[error("IAM has no such entity ({message}); check the user name and device serial; if it was created seconds ago, wait a moment and retry (IAM is eventually consistent)")]
    NoSuchEntity { message: String },

    #[error("IAM limit exceeded ({message}); an IAM user can have at most 8 MFA devices: deactivate and delete one the user no longer uses, then retry")]
    LimitExceeded { message: String },

    #[error("IAM says it already exists ({message}); a virtual MFA device of that name may be left over from an interrupted run (list unassigned virtual MFA devices and delete it), or choose another device name")]
    EntityAlreadyExists { message: String },

    #[error("IAM cannot change that entity right now ({message}); wait a minute and retry")]
    EntityTemporarilyUnmodifiable { message: String },

    #[error("IAM refuses to delete the device while it is still enabled for a user ({message}); deactivate it first")]
    DeleteConflict { message: String },

    #[error("IAM throttled the requests even after {attempts} attempts with backoff; the rate limit is account-wide: wait a minute and retry")]
    Throttling { attempts: u32 },

    #[error("IAM refused the two codes (InvalidAuthenticationCode): they were not two consecutive current codes of the new device; check that this machine's clock is correct (NTP), then retry")]
    InvalidAuthenticationCode,

    #[error("cannot reach the IAM endpoint {endpoint} ({detail}); check the network and proxy settings, and --endpoint-url / AWS_ENDPOINT_URL if set")]
    EndpointUnreachable { endpoint: String, detail: String },

    #[error("the AWS credentials were rejected as expired or invalid ({code}: {message}); refresh them (for example `aws sso login`, or new session credentials) and retry")]
    ExpiredCredentials { code: String, message: String },

    #[error("no usable AWS credentials: none of the places the AWS SDK looks (environment variables, ~/.aws/config and ~/.aws/credentials, SSO, web identity, container and instance credentials) gave any; configure them (for example `aws configure` or `aws sso login`) or choose a profile with --profile (-v shows what each place said)")]
    NoCredentials {
        #[source]
        detail: Detail,
    },

    #[error("the AWS request to {endpoint} could not be made or its answer not read ({why}); check --endpoint-url / AWS_ENDPOINT_URL* and the network (-v shows the SDK's detail)")]
    RequestFailed {
        endpoint: String,
        why: String,
        #[source]
        detail: Detail,
    },

    #[error("the IAM request failed: {code}: {message}")]
    Other { code: String, message: String },

    #[error("{setting} is {url}: plain http:// to another machine, so the requests, the seed AWS sends back and the session's credentials would cross the network unencrypted; nothing was sent. Use an https:// endpoint, or pass --allow-insecure-endpoint if that network is trusted (a test server)")]
    InsecureEndpoint { setting: String, url: String },
}

impl AwsError {
    /// Maps an IAM error code (the awsQuery `<Code>`) and message.
    /// `action` is the IAM permission of the call, e.g. `iam:EnableMFADevice`.
    pub fn from_code(action: &str, code: &str, message: &str, attempts: u32) -> AwsError {
        // AWS's message, on one line whatever it held.
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        match code {
            "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
                AwsError::AccessDenied {
                    action: action.to_string(),
                    message,
                }
            }
            "NoSuchEntity" => AwsError::NoSuchEntity { message },
            "LimitExceeded" => AwsError::LimitExceeded { message },
            "EntityAlreadyExists" => AwsError::EntityAlreadyExists { message },
            "EntityTemporarilyUnmodifiable" => AwsError::EntityTemporarilyUnmodifiable { message },
            "DeleteConflict" => AwsError::DeleteConflict { message },
            "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException" => AwsError::Throttling { attempts },
            "InvalidAuthenticationCode" => AwsError::InvalidAuthenticationCode,
            "ExpiredToken" | "ExpiredTokenException" | "InvalidClientTokenId" => {
                AwsError::ExpiredCredentials {
                    code: code.to_string(),
                    message,
                }
            }
            _ => AwsError::Other {
                code: if code.is_empty() {
                    "Unknown".to_string()
                } else {
                    code.to_string()
                },
                message,
            },
        }
    }

    /// Maps an SDK error of the call needing permission `action`, sent to
    /// `endpoint` with at most `attempts` attempts.
    pub fn from_sdk<E, R>(action: &str, endpoint: &str, attempts: u32, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: std::fmt::Debug + 'static,
    {
        if let Some(detail) = credentials_problem(&err) {
            return AwsError::NoCredentials {
                detail: detail.into(),
            };
        }
        match &err {
            SdkError::ServiceError(ctx) => {
                let e = ctx.err();
                Self::from_code(
                    action,
                    e.code().unwrap_or_default(),
                    e.message().unwrap_or_default(),
                    attempts,
                )
            }
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
                AwsError::EndpointUnreachable {
                    endpoint: endpoint.to_string(),
                    detail: innermost(&err),
                }
            }
            SdkError::ResponseError(_) => AwsError::RequestFailed {
                endpoint: endpoint.to_string(),
                why: format!(
                    "the answer is not a valid AWS response: {}",
                    innermost(&err)
                ),
                detail: DisplayErrorContext(&err).to_string().into(),
            },
            _ => AwsError::RequestFailed {
                endpoint: endpoint.to_string(),
                why: innermost(&err),
                detail: DisplayErrorContext(&err).to_string().into(),
            },
        }
    }
}

impl crate::error::Classify for AwsError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            AwsError::AccessDenied { .. } => Kind::AccessDenied,
            AwsError::NoSuchEntity { .. } => Kind::NoSuchEntity,
            AwsError::LimitExceeded { .. } => Kind::LimitExceeded,
            AwsError::EntityAlreadyExists { .. } => Kind::EntityAlreadyExists,
            AwsError::Throttling { .. } => Kind::Throttling,
            AwsError::InvalidAuthenticationCode => Kind::InvalidAuthenticationCode,
            AwsError::EndpointUnreachable { .. } => Kind::EndpointUnreachable,
            AwsError::ExpiredCredentials { .. } => Kind::ExpiredCredentials,
            AwsError::NoCredentials { .. } => Kind::NoCredentials,
            AwsError::InsecureEndpoint { .. } => Kind::InsecureEndpoint,
            AwsError::EntityTemporarilyUnmodifiable { .. }
            | AwsError::DeleteConflict { .. }
            | AwsError::RequestFailed { .. }
            | AwsError::Other { .. } => Kind::Aws,
        }
    }
}

/// The credentials provider's complaint, if the request failed for want of
/// credentials (the SDK reports it as a dispatch failure).
fn credentials_problem(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<CredentialsError>().is_some()
            || e.downcast_ref::<TokenError>().is_some()
        {
            return Some(DisplayErrorContext(e).to_string());
        }
        cur = e.source();
    }
    None
}

/// The deepest cause's text: "Connection refused (os error 111)" rather than
/// "dispatch failure", on one line.
fn innermost(err: &(dyn StdError + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::config::Credentials;
    use aws_sdk_iam::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_iam::operation::enable_mfa_device::EnableMFADeviceError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    fn service(code: &str, message: &str) -> SdkError<EnableMFADeviceError, Response> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let resp = Response::new(StatusCode::try_from(403).unwrap(), SdkBody::empty());
        SdkError::service_error(EnableMFADeviceError::generic(meta), resp)
    }

    fn map(err: SdkError<EnableMFADeviceError, Response>) -> AwsError {
        AwsError::from_sdk("iam:EnableMFADevice", "http://127.0.0.1:9", 5, err)
    }

    #[test]
    fn service_codes_map_to_variants() {
        let e = map(service("AccessDenied", "User: x is not authorized"));
        assert_eq!(
            e,
            AwsError::AccessDenied {
                action: "iam:EnableMFADevice".into(),
                message: "User: x is not authorized".into()
            }
        );
        let text = e.to_string();
        assert!(text.contains("iam:EnableMFADevice") && text.contains("docs/iam-policy.json"));

        assert!(matches!(
            map(service("NoSuchEntity", "")),
            AwsError::NoSuchEntity { .. }
        ));
        assert!(matches!(
            map(service("LimitExceeded", "")),
            AwsError::LimitExceeded { .. }
        ));
        assert!(matches!(
            map(service("EntityAlreadyExists", "")),
            AwsError::EntityAlreadyExists { .. }
        ));
        assert!(matches!(
            map(service("EntityTemporarilyUnmodifiable", "")),
            AwsError::EntityTemporarilyUnmodifiable { .. }
        ));
        assert!(matches!(
            map(service("DeleteConflict", "")),
            AwsError::DeleteConflict { .. }
        ));
        assert_eq!(
            map(service("Throttling", "Rate exceeded")),
            AwsError::Throttling { attempts: 5 }
        );
        assert_eq!(
            map(service("InvalidAuthenticationCode", "not valid")),
            AwsError::InvalidAuthenticationCode
        );
        for code in [
            "ExpiredToken",
            "ExpiredTokenException",
            "InvalidClientTokenId",
        ] {
            assert!(
                matches!(map(service(code, "")), AwsError::ExpiredCredentials { .. }),
                "{code}"
            );
        }
        assert_eq!(
            map(service("ServiceFailure", "boom")),
            AwsError::Other {
                code: "ServiceFailure".into(),
                message: "boom".into()
            }
        );
    }

    #[test]
    fn dispatch_failures_are_unreachable_endpoints() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let err = SdkError::<EnableMFADeviceError, Response>::dispatch_failure(ConnectorError::io(
            Box::new(io),
        ));
        match map(err) {
            AwsError::EndpointUnreachable { endpoint, detail } => {
                assert_eq!(endpoint, "http://127.0.0.1:9");
                assert!(detail.contains("connection refused"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        let err = SdkError::<EnableMFADeviceError, Response>::timeout_error("attempt timeout");
        assert!(matches!(map(err), AwsError::EndpointUnreachable { .. }));
    }

    #[test]
    fn credentials_provider_failures_are_no_credentials() {
        let cred = CredentialsError::not_loaded("no providers in chain provided credentials");
        let err = SdkError::<EnableMFADeviceError, Response>::dispatch_failure(
            ConnectorError::other(Box::new(cred), None),
        );
        match map(err) {
            e @ AwsError::NoCredentials { .. } => {
                // One line, what to do; the SDK's chain only as the detail.
                let text = e.to_string();
                assert!(
                    !text.contains('\n') && !text.contains("no providers"),
                    "{text}"
                );
                assert!(text.contains("--profile"), "{text}");
                let f = crate::error::Failure::from(e);
                assert!(f.detail.unwrap_or_default().contains("no providers"));
            }
            other => panic!("{other:?}"),
        }
        // Static credentials are never part of any message.
        let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI", None, None, "test");
        let e = AwsError::NoCredentials {
            detail: format!("{creds:?}").into(),
        };
        assert!(!e.to_string().contains("wJalrXUtnFEMI"));
    }

    #[test]
    fn every_message_says_what_to_do() {
        let all = [
            AwsError::NoSuchEntity {
                message: "m".into(),
            },
            AwsError::LimitExceeded {
                message: "m".into(),
            },
            AwsError::EntityAlreadyExists {
                message: "m".into(),
            },
            AwsError::EntityTemporarilyUnmodifiable {
                message: "m".into(),
            },
            AwsError::DeleteConflict {
                message: "m".into(),
            },
            AwsError::Throttling { attempts: 5 },
            AwsError::InvalidAuthenticationCode,
            AwsError::EndpointUnreachable {
                endpoint: "e".into(),
                detail: "d".into(),
            },
            AwsError::ExpiredCredentials {
                code: "c".into(),
                message: "m".into(),
            },
            AwsError::NoCredentials { detail: "d".into() },
            AwsError::RequestFailed {
                endpoint: "e".into(),
                why: "w".into(),
                detail: "d".into(),
            },
        ];
        for e in all {
            let t = e.to_string();
            assert!(
                [
                    "retry",
                    "check",
                    "delete",
                    "deactivate",
                    "configure",
                    "refresh"
                ]
                .iter()
                .any(|w| t.contains(w)),
                "{t}"
            );
        }
    }
}
