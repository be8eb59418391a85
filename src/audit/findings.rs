//! The one table of findings: each id's severity, title, remedy and
//! cross-references (CIS AWS Foundations Benchmark v7.0.0 recommendation,
//! AWS Security Hub control, Prowler check). A check says which finding it
//! found ([`Found`]: the id, its subject, the evidence, and the values the
//! texts need); [`FindingId::spec`] says the rest. This is the one place a
//! finding's severity is decided.

use serde::Serialize;

use super::Severity;

/// Every finding the audit can report. The JSON id is [`Spec::id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum FindingId {
    RootMfaMissing,
    RootMfaVirtual,
    RootAccessKeys,
    RootSigningCertificates,
    RootCredentialsPresent,
    RootRecentlyUsed,
    NoAdminBesidesRoot,
    UserAdminWithoutMfa,
    UserConsoleWithoutMfa,
    UserKeysWithoutMfa,
    UserMfaVirtualOnly,
    UserMfaHardwareUnverified,
    UserMfaNoBackup,
    VirtualMfaUnassigned,
    CloudtrailMissing,
    CloudtrailNotMultiRegion,
    CloudtrailNotLogging,
    CloudtrailManagementEvents,
    CloudtrailGlobalEventsOff,
    CloudtrailLogValidationOff,
    CloudtrailNoKms,
    CloudtrailBucketPublic,
}

/// Where other auditors name the same thing; empty where none does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct References {
    /// CIS AWS Foundations Benchmark v7.0.0 recommendation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cis: Option<&'static str>,
    /// AWS Security Hub (CSPM) control.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_hub: Option<&'static str>,
    /// Prowler check id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prowler: Option<&'static str>,
}

impl References {
    pub(crate) fn is_empty(&self) -> bool {
        self.cis.is_none() && self.security_hub.is_none() && self.prowler.is_none()
    }
}

const fn refs(
    cis: Option<&'static str>,
    security_hub: Option<&'static str>,
    prowler: Option<&'static str>,
) -> References {
    References {
        cis,
        security_hub,
        prowler,
    }
}

/// A finding's fixed texts. `{subject}` and `{name}` in `title` and the
/// remedies are replaced by the subject and the check's values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// The stable id scripts match on.
    pub id: &'static str,
    pub severity: Severity,
    /// The severity when the run requires hardware MFA
    /// (`--require-hardware-mfa`), when that changes it.
    pub hardware_required: Option<Severity>,
    pub title: &'static str,
    pub remedy: &'static str,
    /// Other remedies, by the name a check asks for with [`Found::variant`].
    pub variants: &'static [(&'static str, &'static str)],
    /// The values (`{name}`) the texts need besides `{subject}`.
    pub params: &'static [&'static str],
    pub references: References,
}

const fn spec(
    id: &'static str,
    severity: Severity,
    title: &'static str,
    remedy: &'static str,
) -> Spec {
    Spec {
        id,
        severity,
        hardware_required: None,
        title,
        remedy,
        variants: &[],
        params: &[],
        references: References {
            cis: None,
            security_hub: None,
            prowler: None,
        },
    }
}

/// A trail that belongs to the organization's management account is fixed
/// there.
const ORG_TRAIL: (&str, &str) = (
    "organization-trail",
    "fix it in the organization's management account, which owns this organization trail: \
     `mfakey baseline cloudtrail --trail-name {subject}` there",
);

/// The remedy of every trail shortcoming the baseline fixes.
const BASELINE_TRAIL: &str = "`mfakey baseline cloudtrail --trail-name {subject}`";

impl FindingId {
    #[cfg(test)]
    pub(crate) const ALL: &'static [FindingId] = {
        use FindingId::*;
        &[
            RootMfaMissing,
            RootMfaVirtual,
            RootAccessKeys,
            RootSigningCertificates,
            RootCredentialsPresent,
            RootRecentlyUsed,
            NoAdminBesidesRoot,
            UserAdminWithoutMfa,
            UserConsoleWithoutMfa,
            UserKeysWithoutMfa,
            UserMfaVirtualOnly,
            UserMfaHardwareUnverified,
            UserMfaNoBackup,
            VirtualMfaUnassigned,
            CloudtrailMissing,
            CloudtrailNotMultiRegion,
            CloudtrailNotLogging,
            CloudtrailManagementEvents,
            CloudtrailGlobalEventsOff,
            CloudtrailLogValidationOff,
            CloudtrailNoKms,
            CloudtrailBucketPublic,
        ]
    };

    /// The table.
    pub(crate) const fn spec(self) -> Spec {
        use FindingId::*;
        use Severity::*;
        match self {
            RootMfaMissing => Spec {
                references: refs(Some("2.5"), Some("IAM.9"), Some("iam_root_mfa_enabled")),
                ..spec(
                    "root-mfa-missing",
                    Critical,
                    "the root user has no MFA",
                    "AWS lets root MFA be set only in the console: sign in as root, open Security credentials, \
                     Assign MFA device; choose a security key, or Authenticator app, click \"Show secret key\" and store it on a YubiKey with \
                     `mfakey oath add aws-root --secret-stdin` (paste the key), then enter two codes from `mfakey oath code aws-root`",
                )
            },
            RootMfaVirtual => Spec {
                references: refs(Some("2.6"), Some("IAM.6"), Some("iam_root_hardware_mfa_enabled")),
                ..spec(
                    "root-mfa-virtual",
                    Medium,
                    "the root user's MFA is a virtual (authenticator app) device, not a security key",
                    "sign in as root, Security credentials, Assign MFA device: add a FIDO2 security key, then remove the virtual device",
                )
            },
            RootAccessKeys => Spec {
                references: refs(Some("2.4"), Some("IAM.4"), Some("iam_no_root_access_key")),
                ..spec(
                    "root-access-keys",
                    Critical,
                    "the root user has access keys",
                    "sign in as root, open Security credentials, Access keys: deactivate each key, check nothing breaks, then delete it; \
                     use an IAM user or role's keys instead",
                )
            },
            RootSigningCertificates => spec(
                "root-signing-certificates",
                High,
                "the root user has X.509 signing certificates (they sign API requests as root)",
                "sign in as root, open Security credentials, X.509 certificates: deactivate each certificate, check nothing breaks, then delete it \
                 (in an organization with centralized root access: IAM console of the management account, Root access management, \
                 the account, Delete root user credentials)",
            ),
            RootCredentialsPresent => Spec {
                references: refs(Some("2.1.1"), None, Some("iam_root_credentials_management_enabled")),
                ..spec(
                    "root-credentials-present",
                    Medium,
                    "the root user of this member account still has credentials, though the organization manages root access centrally",
                    "from the management account (or the delegated administrator for IAM): IAM console, Root access management, \
                     select the account, Delete root user credentials; or `aws sts assume-root --target-principal ACCOUNT_ID \
                     --task-policy-arn arn=arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials` and delete the login profile, \
                     access keys, signing certificates and MFA devices with those credentials",
                )
            },
            RootRecentlyUsed => Spec {
                params: &["days"],
                references: refs(Some("2.7"), None, Some("iam_avoid_root_usage")),
                ..spec(
                    "root-recently-used",
                    High,
                    "the root user was used in the last {days} days",
                    "do daily work as an IAM user or role with MFA (`mfakey enroll user NAME`); \
                     look up what root did in CloudTrail (Event history, user name \"root\")",
                )
            },
            NoAdminBesidesRoot => spec(
                "no-admin-besides-root",
                High,
                "no IAM user or role besides root can administer the account",
                "give administrators their rights through a group, never a policy attached to the user (CIS 2.13, Security Hub IAM.2): \
                 `aws iam create-group --group-name admins`, \
                 `aws iam attach-group-policy --group-name admins --policy-arn arn:aws:iam::aws:policy/AdministratorAccess`, \
                 `aws iam create-user --user-name admin`, `aws iam add-user-to-group --group-name admins --user-name admin`, \
                 then `mfakey enroll user admin`; with IAM Identity Center, assign a permission set with AdministratorAccess instead",
            ),
            UserAdminWithoutMfa => Spec {
                references: refs(None, None, Some("iam_administrator_access_with_mfa")),
                ..spec(
                    "user-admin-without-mfa",
                    Critical,
                    "IAM user {subject} can administer the account and has no MFA",
                    "`mfakey enroll user {subject}`; until then, deactivate its password and access keys",
                )
            },
            UserConsoleWithoutMfa => Spec {
                references: refs(Some("2.10"), Some("IAM.5"), Some("iam_user_mfa_enabled_console_access")),
                ..spec(
                    "user-console-without-mfa",
                    High,
                    "IAM user {subject} signs in to the console without MFA",
                    "`mfakey enroll user {subject}`",
                )
            },
            UserKeysWithoutMfa => Spec {
                references: refs(None, Some("IAM.19"), None),
                ..spec(
                    "user-keys-without-mfa",
                    Medium,
                    "IAM user {subject} has active access keys and no MFA",
                    "`mfakey enroll user {subject}`, and require MFA for its sensitive actions (condition aws:MultiFactorAuthPresent)",
                )
            },
            UserMfaVirtualOnly => Spec {
                hardware_required: Some(High),
                params: &["serial"],
                references: refs(None, None, Some("iam_user_hardware_mfa_enabled")),
                ..spec(
                    "user-mfa-virtual-only",
                    Low,
                    "IAM user {subject}'s MFA is only virtual (a seed on a phone or computer)",
                    "`mfakey enroll user {subject}`, then `aws iam deactivate-mfa-device --user-name {subject} --serial-number {serial}`",
                )
            },
            UserMfaHardwareUnverified => Spec {
                hardware_required: Some(Medium),
                references: refs(None, None, Some("iam_user_hardware_mfa_enabled")),
                ..spec(
                    "user-mfa-hardware-unverified",
                    Info,
                    "IAM user {subject}'s MFA is a FIDO device AWS knows no certification of: a security key, or a passkey synced to a phone or password manager",
                    "if it is a synced passkey, add a certified security key (console: Security credentials, Assign MFA device) \
                     or `mfakey enroll user {subject}` onto a YubiKey",
                )
            },
            UserMfaNoBackup => spec(
                "user-mfa-no-backup",
                Info,
                "IAM user {subject} has one MFA device and no backup (AWS allows 8 per user)",
                "enroll a second device, for example onto a second YubiKey: `mfakey enroll user {subject} --device-name {subject}-backup`",
            ),
            VirtualMfaUnassigned => Spec {
                variants: &[("made-by-mfakey", "`mfakey cleanup --delete`")],
                ..spec(
                    "virtual-mfa-unassigned",
                    Low,
                    "an unassigned virtual MFA device is left over",
                    "`aws iam delete-virtual-mfa-device --serial-number {subject}`",
                )
            },
            CloudtrailMissing => Spec {
                references: refs(Some("4.1"), Some("CloudTrail.3"), Some("cloudtrail_multi_region_enabled")),
                ..spec(
                    "cloudtrail-missing",
                    High,
                    "no CloudTrail trail: API activity is kept for 90 days only, in Event history",
                    "`mfakey baseline cloudtrail`",
                )
            },
            CloudtrailNotMultiRegion => Spec {
                references: refs(Some("4.1"), Some("CloudTrail.1"), Some("cloudtrail_multi_region_enabled")),
                ..trail_spec("cloudtrail-not-multi-region", Medium, "trail {subject} records one region only")
            },
            CloudtrailNotLogging => Spec {
                references: refs(Some("4.1"), Some("CloudTrail.1"), Some("cloudtrail_multi_region_enabled")),
                ..trail_spec("cloudtrail-not-logging", High, "trail {subject} is not logging")
            },
            CloudtrailManagementEvents => Spec {
                references: refs(
                    Some("4.1"),
                    Some("CloudTrail.1"),
                    Some("cloudtrail_multi_region_enabled_logging_management_events"),
                ),
                ..trail_spec(
                    "cloudtrail-management-events",
                    Medium,
                    "trail {subject} does not record all management events",
                )
            },
            CloudtrailGlobalEventsOff => trail_spec(
                "cloudtrail-global-events-off",
                Medium,
                "trail {subject} does not record global service events (IAM and STS: sign-ins, MFA changes)",
            ),
            CloudtrailLogValidationOff => Spec {
                references: refs(Some("4.2"), Some("CloudTrail.4"), Some("cloudtrail_log_file_validation_enabled")),
                ..trail_spec("cloudtrail-log-validation-off", Medium, "trail {subject} has log file validation off")
            },
            CloudtrailNoKms => Spec {
                references: refs(Some("4.5"), Some("CloudTrail.2"), Some("cloudtrail_kms_encryption_enabled")),
                variants: &[ORG_TRAIL],
                ..spec(
                    "cloudtrail-no-kms",
                    Low,
                    "trail {subject}'s logs are not encrypted with a KMS key",
                    "`mfakey baseline cloudtrail --trail-name {subject} --kms-key KEY_ARN` (the key policy must let CloudTrail use it)",
                )
            },
            CloudtrailBucketPublic => Spec {
                params: &["bucket"],
                references: refs(None, Some("CloudTrail.6"), Some("cloudtrail_logs_s3_bucket_is_not_publicly_accessible")),
                variants: &[ORG_TRAIL],
                ..spec(
                    "cloudtrail-bucket-public",
                    Critical,
                    "trail {subject}'s log bucket {bucket} is public",
                    "block all public access to bucket {bucket} (`mfakey baseline cloudtrail --trail-name {subject}` does), \
                     then remove the policy statements and ACL grants that open it",
                )
            },
        }
    }
}

/// A trail shortcoming the baseline fixes.
const fn trail_spec(id: &'static str, severity: Severity, title: &'static str) -> Spec {
    Spec {
        variants: &[ORG_TRAIL],
        ..spec(id, severity, title, BASELINE_TRAIL)
    }
}

/// What the run's options change in the table.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rules {
    pub require_hardware_mfa: bool,
}

/// One thing found wrong, as the report shows it. `id` is stable (scripts
/// match on it); `subject` names the user, device or trail when the
/// finding is about one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub subject: Option<String>,
    pub title: String,
    pub evidence: String,
    pub remedy: String,
    #[serde(skip_serializing_if = "References::is_empty")]
    pub references: References,
}

/// What a check found: the finding's id, its subject, the evidence, and the
/// values the table's texts need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub id: FindingId,
    pub subject: Option<String>,
    pub evidence: String,
    params: Vec<(&'static str, String)>,
    variant: Option<&'static str>,
}

impl Found {
    pub(crate) fn new(id: FindingId, subject: Option<&str>, evidence: impl Into<String>) -> Self {
        Found {
            id,
            subject: subject.map(str::to_string),
            evidence: evidence.into(),
            params: Vec::new(),
            variant: None,
        }
    }

    /// A value the texts need (`{name}`).
    pub(crate) fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.params.push((name, value.into()));
        self
    }

    /// Use the table's remedy of that name instead of the default one.
    pub(crate) fn variant(mut self, name: &'static str) -> Self {
        self.variant = Some(name);
        self
    }

    fn fill(&self, template: &str) -> String {
        let mut text = template.replace("{subject}", self.subject.as_deref().unwrap_or(""));
        for (name, value) in &self.params {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    /// The finding as reported, with the table's severity, title and remedy.
    pub(crate) fn render(&self, rules: Rules) -> Finding {
        let spec = self.id.spec();
        debug_assert!(
            spec.params
                .iter()
                .all(|p| self.params.iter().any(|(name, _)| name == p)),
            "{} needs {:?}",
            spec.id,
            spec.params
        );
        let severity = match spec.hardware_required {
            Some(raised) if rules.require_hardware_mfa => raised,
            _ => spec.severity,
        };
        let remedy = self
            .variant
            .and_then(|v| spec.variants.iter().find(|(name, _)| *name == v))
            .map_or(spec.remedy, |(_, text)| *text);
        Finding {
            id: spec.id,
            severity,
            subject: self.subject.clone(),
            title: self.fill(spec.title),
            evidence: self.evidence.clone(),
            remedy: self.fill(remedy),
            references: spec.references,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finding of `id` with every value its texts need.
    fn sample(id: FindingId) -> Found {
        id.spec()
            .params
            .iter()
            .fold(Found::new(id, Some("subj"), "evidence"), |f, p| {
                f.with(p, "value")
            })
    }

    #[test]
    fn ids_are_unique_and_documented() {
        let readme = include_str!("../../README.md");
        let mut seen = std::collections::BTreeSet::new();
        for id in FindingId::ALL {
            let s = id.spec();
            assert!(seen.insert(s.id), "{} twice", s.id);
            assert!(
                s.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}",
                s.id
            );
            assert!(
                readme.contains(&format!("`{}`", s.id)),
                "{} not in README",
                s.id
            );
        }
    }

    #[test]
    fn every_text_is_complete_once_filled() {
        for id in FindingId::ALL {
            let s = id.spec();
            let f = sample(*id);
            let mut all = vec![f.render(Rules::default())];
            for (name, _) in s.variants {
                all.push(f.clone().variant(name).render(Rules::default()));
            }
            for r in all {
                for text in [&r.title, &r.remedy] {
                    assert!(!text.is_empty() && !text.contains('{'), "{}: {text}", s.id);
                }
            }
        }
    }

    #[test]
    fn hardware_required_raises_only_what_the_table_says() {
        let strict = Rules {
            require_hardware_mfa: true,
        };
        for id in FindingId::ALL {
            let f = sample(*id);
            let (plain, raised) = (f.render(Rules::default()), f.render(strict));
            match id {
                FindingId::UserMfaVirtualOnly => {
                    assert_eq!(
                        (plain.severity, raised.severity),
                        (Severity::Low, Severity::High)
                    )
                }
                FindingId::UserMfaHardwareUnverified => assert_eq!(
                    (plain.severity, raised.severity),
                    (Severity::Info, Severity::Medium)
                ),
                _ => assert_eq!(plain.severity, raised.severity, "{}", plain.id),
            }
        }
    }
}
