//! [`OrgApi`] over the AWS SDK, for the organization-wide audit: the
//! organization, its accounts (every page of ListAccounts), the centralized
//! root access features (IAM ListOrganizationsFeatures), and each member
//! account's clients through a role assumed there.

use std::time::SystemTime;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

use crate::aws::account::{BucketApi, OrgAccount, OrgApi, Organization};
use crate::aws::{AwsError, Cloud};

/// The session name member accounts see in their CloudTrail.
pub(crate) const SESSION_NAME: &str = "mfakey-audit";

impl Cloud {
    fn org_err<E, R>(&self, action: &str, e: SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + 'static,
    {
        let endpoint = self.endpoint_of(
            "ORGANIZATIONS",
            "https://organizations.us-east-1.amazonaws.com",
        );
        AwsError::from_sdk(action, &endpoint, self.attempts, e)
    }

    /// The ARN partition of the configured region.
    fn partition(&self) -> &'static str {
        let region = self
            .sdk_config()
            .region()
            .map(|r| r.as_ref().to_string())
            .unwrap_or_default();
        if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }
}

fn incomplete(what: &str) -> AwsError {
    AwsError::Other {
        code: "IncompleteResponse".to_string(),
        message: format!("the answer has no {what}; check the endpoint"),
    }
}

impl OrgApi for Cloud {
    type Member = Cloud;

    async fn organization(&self) -> Result<Organization, AwsError> {
        let out = self
            .orgs
            .describe_organization()
            .send()
            .await
            .map_err(|e| self.org_err("organizations:DescribeOrganization", e))?;
        let o = out.organization.ok_or_else(|| incomplete("Organization"))?;
        Ok(Organization {
            id: o.id.unwrap_or_default(),
            management_account: o.master_account_id.unwrap_or_default(),
        })
    }

    async fn accounts(&self) -> Result<Vec<OrgAccount>, AwsError> {
        let mut pages = self.orgs.list_accounts().into_paginator().send();
        let mut accounts = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.org_err("organizations:ListAccounts", e))?;
            accounts.extend(page.accounts.unwrap_or_default().into_iter().map(|a| {
                let status = a
                    .state
                    .map(|s| s.as_str().to_string())
                    .or_else(|| a.status.map(|s| s.as_str().to_string()))
                    .unwrap_or_default();
                OrgAccount {
                    id: a.id.unwrap_or_default(),
                    name: a.name.unwrap_or_default(),
                    status,
                }
            }));
        }
        Ok(accounts)
    }

    async fn root_access_features(&self) -> Result<Vec<String>, AwsError> {
        let out = self
            .iam_raw
            .list_organizations_features()
            .send()
            .await
            .map_err(|e| self.iam_err("iam:ListOrganizationsFeatures", e))?;
        Ok(out
            .enabled_features
            .unwrap_or_default()
            .iter()
            .map(|f| f.as_str().to_string())
            .collect())
    }

    async fn caller_account(&self) -> Result<String, AwsError> {
        self.account_id().await
    }

    fn own(&self) -> Cloud {
        self.clone()
    }

    async fn member(&self, account: &str, role_name: &str) -> Result<Cloud, AwsError> {
        let arn = format!("arn:{}:iam::{account}:role/{role_name}", self.partition());
        let out = self
            .sts
            .assume_role()
            .role_arn(&arn)
            .role_session_name(SESSION_NAME)
            .send()
            .await
            .map_err(|e| {
                let endpoint = self.endpoint_of("STS", "https://sts.amazonaws.com");
                AwsError::from_sdk("sts:AssumeRole", &endpoint, self.attempts, e)
            })?;
        let c = out.credentials.ok_or_else(|| incomplete("Credentials"))?;
        let expiry = SystemTime::try_from(c.expiration).ok();
        let creds = Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            expiry,
            "mfakey-audit-assumed-role",
        );
        let config = self
            .sdk_config()
            .clone()
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(creds))
            .build();
        Ok(Cloud::from_sdk_config(&config))
    }
}
