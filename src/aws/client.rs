//! [`IamApi`] over the AWS SDK (`aws_sdk_iam::Client`).

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_sdk_iam::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_iam::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_iam::error::BoxError;
use aws_sdk_iam::primitives::{Blob, DateTime, DateTimeFormat};
use aws_sdk_iam::types::{AssignmentStatusType, Tag};
use zeroize::Zeroizing;

use crate::aws::iam::{CreatedDevice, IamApi, MfaDevice, User, VirtualMfaDevice};
use crate::aws::AwsError;
use crate::secret::parse_base32_seed;

/// IAM's global endpoint in the `aws` partition, named in error messages
/// when no endpoint override is configured.
const DEFAULT_ENDPOINT: &str = "https://iam.amazonaws.com";

/// The IAM client of the real service (or moto, through an endpoint override).
#[derive(Debug, Clone)]
pub struct Iam {
    client: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    endpoint: EndpointCapture,
    attempts: u32,
}

impl Iam {
    /// Builds the client from a loaded SDK configuration
    /// (see [`crate::aws::config::sdk_config`]).
    pub fn from_sdk_config(config: &SdkConfig) -> Self {
        // Until the first request shows the endpoint the SDK resolved.
        let guess = config
            .endpoint_url()
            .map(str::to_string)
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_IAM").ok())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let endpoint = EndpointCapture(Arc::new(Mutex::new(origin(&guess))));
        let attempts = config.retry_config().map_or(1, |r| r.max_attempts());
        let iam_config = aws_sdk_iam::config::Builder::from(config)
            .interceptor(endpoint.clone())
            .build();
        Iam {
            client: aws_sdk_iam::Client::from_conf(iam_config),
            sts: aws_sdk_sts::Client::new(config),
            endpoint,
            attempts,
        }
    }

    /// The IAM endpoint (`scheme://host[:port]`) the requests go to, as
    /// named in error messages.
    pub fn endpoint(&self) -> String {
        self.endpoint.get()
    }

    /// Attempts per call (first try and retries).
    pub fn max_attempts(&self) -> u32 {
        self.attempts
    }

    /// The region the requests are signed for.
    pub fn region(&self) -> Option<String> {
        self.client.config().region().map(|r| r.to_string())
    }

    fn err<E, R>(&self, action: &str, e: aws_sdk_iam::error::SdkError<E, R>) -> AwsError
    where
        E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + 'static,
    {
        AwsError::from_sdk(action, &self.endpoint.get(), self.attempts, e)
    }
}

fn missing(what: &str) -> AwsError {
    AwsError::Other {
        code: "IncompleteResponse".to_string(),
        message: format!("IAM's answer has no {what}; check --endpoint-url points at IAM"),
    }
}

/// Drops a blob that may hold key material, wiping its bytes.
fn wipe(blob: Option<Blob>) {
    if let Some(b) = blob {
        drop(Zeroizing::new(b.into_inner()));
    }
}

fn to_system_time(t: &DateTime) -> Option<SystemTime> {
    SystemTime::try_from(*t).ok()
}

impl IamApi for Iam {
    async fn create_user(&self, name: &str, tags: &[(String, String)]) -> Result<User, AwsError> {
        let mut req = self.client.create_user().user_name(name);
        for (k, v) in tags {
            let tag = Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| missing(&format!("a valid tag ({e})")))?;
            req = req.tags(tag);
        }
        let out = req
            .send()
            .await
            .map_err(|e| self.err("iam:CreateUser", e))?;
        let user = out.user.ok_or_else(|| missing("User"))?;
        let account_id = user.arn.split(':').nth(4).unwrap_or_default().to_string();
        Ok(User {
            name: user.user_name,
            arn: user.arn,
            account_id,
        })
    }

    async fn add_user_to_group(&self, user: &str, group: &str) -> Result<(), AwsError> {
        self.client
            .add_user_to_group()
            .user_name(user)
            .group_name(group)
            .send()
            .await
            .map_err(|e| self.err("iam:AddUserToGroup", e))?;
        Ok(())
    }

    async fn get_user(&self, name: &str) -> Result<User, AwsError> {
        let mut req = self.client.get_user();
        if !name.is_empty() {
            req = req.user_name(name);
        }
        let out = req.send().await.map_err(|e| self.err("iam:GetUser", e))?;
        let user = out.user.ok_or_else(|| missing("User"))?;
        let account_id = user.arn.split(':').nth(4).unwrap_or_default().to_string();
        Ok(User {
            name: user.user_name,
            arn: user.arn,
            account_id,
        })
    }

    async fn list_mfa_devices(&self, user: &str) -> Result<Vec<MfaDevice>, AwsError> {
        let mut req = self.client.list_mfa_devices();
        if !user.is_empty() {
            req = req.user_name(user);
        }
        let mut pages = req.into_paginator().items().send();
        let mut devices = Vec::new();
        while let Some(item) = pages.next().await {
            let d = item.map_err(|e| self.err("iam:ListMFADevices", e))?;
            devices.push(MfaDevice {
                enable_date: to_system_time(&d.enable_date),
                serial: d.serial_number,
            });
        }
        Ok(devices)
    }

    async fn list_virtual_mfa_devices(
        &self,
        unassigned_only: bool,
    ) -> Result<Vec<VirtualMfaDevice>, AwsError> {
        let status = if unassigned_only {
            AssignmentStatusType::Unassigned
        } else {
            AssignmentStatusType::Any
        };
        let mut pages = self
            .client
            .list_virtual_mfa_devices()
            .assignment_status(status)
            .into_paginator()
            .items()
            .send();
        let mut devices = Vec::new();
        while let Some(item) = pages.next().await {
            let mut d = item.map_err(|e| self.err("iam:ListVirtualMFADevices", e))?;
            // AWS never sends these here; moto sends every seed.
            wipe(d.base32_string_seed.take());
            wipe(d.qr_code_png.take());
            devices.push(VirtualMfaDevice {
                serial: d.serial_number,
                user: d.user.map(|u| {
                    if u.arn.ends_with(":root") {
                        crate::aws::account::ROOT_ROW.to_string()
                    } else {
                        u.user_name
                    }
                }),
                tags: d
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| (t.key, t.value))
                    .collect(),
            });
        }
        Ok(devices)
    }

    async fn create_virtual_mfa_device(
        &self,
        name: &str,
        path: &str,
        tags: &[(String, String)],
    ) -> Result<CreatedDevice, AwsError> {
        let mut req = self
            .client
            .create_virtual_mfa_device()
            .virtual_mfa_device_name(name)
            .path(path);
        for (k, v) in tags {
            let tag = Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| AwsError::Other {
                    code: "InvalidTag".to_string(),
                    message: e.to_string(),
                })?;
            req = req.tags(tag);
        }
        let mut out = req
            .send()
            .await
            .map_err(|e| self.err("iam:CreateVirtualMFADevice", e))?;
        let mut device = out
            .virtual_mfa_device
            .take()
            .ok_or_else(|| missing("VirtualMFADevice"))?;
        wipe(device.qr_code_png.take());
        let blob = device
            .base32_string_seed
            .take()
            .ok_or_else(|| missing("Base32StringSeed"))?;
        let text = Zeroizing::new(blob.into_inner());
        let seed = std::str::from_utf8(&text)
            .map_err(|_| missing("text seed"))
            .and_then(|s| {
                parse_base32_seed(s).map_err(|e| AwsError::Other {
                    code: "InvalidSeed".to_string(),
                    message: format!("IAM returned an unusable seed: {e}"),
                })
            })?;
        Ok(CreatedDevice {
            serial: std::mem::take(&mut device.serial_number),
            seed,
        })
    }

    async fn enable_mfa_device(
        &self,
        user: &str,
        serial: &str,
        code1: &str,
        code2: &str,
    ) -> Result<(), AwsError> {
        self.client
            .enable_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .authentication_code1(code1)
            .authentication_code2(code2)
            .send()
            .await
            .map_err(|e| self.err("iam:EnableMFADevice", e))?;
        Ok(())
    }

    async fn resync_mfa_device(
        &self,
        user: &str,
        serial: &str,
        code1: &str,
        code2: &str,
    ) -> Result<(), AwsError> {
        self.client
            .resync_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .authentication_code1(code1)
            .authentication_code2(code2)
            .send()
            .await
            .map_err(|e| self.err("iam:ResyncMFADevice", e))?;
        Ok(())
    }

    async fn deactivate_mfa_device(&self, user: &str, serial: &str) -> Result<(), AwsError> {
        self.client
            .deactivate_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .send()
            .await
            .map_err(|e| self.err("iam:DeactivateMFADevice", e))?;
        Ok(())
    }

    async fn delete_virtual_mfa_device(&self, serial: &str) -> Result<(), AwsError> {
        self.client
            .delete_virtual_mfa_device()
            .serial_number(serial)
            .send()
            .await
            .map_err(|e| self.err("iam:DeleteVirtualMFADevice", e))?;
        Ok(())
    }

    async fn mfa_device_tags(&self, serial: &str) -> Result<Vec<(String, String)>, AwsError> {
        let mut pages = self
            .client
            .list_mfa_device_tags()
            .serial_number(serial)
            .into_paginator()
            .items()
            .send();
        let mut tags = Vec::new();
        while let Some(item) = pages.next().await {
            let t = item.map_err(|e| self.err("iam:ListMFADeviceTags", e))?;
            tags.push((t.key, t.value));
        }
        Ok(tags)
    }

    async fn account_id(&self) -> Result<String, AwsError> {
        let out = self.sts.get_caller_identity().send().await.map_err(|e| {
            AwsError::from_sdk(
                "sts:GetCallerIdentity",
                &self.endpoint.get(),
                self.attempts,
                e,
            )
        })?;
        out.account
            .ok_or_else(|| missing("Account (STS GetCallerIdentity)"))
    }

    async fn account_alias(&self) -> Result<Option<String>, AwsError> {
        let out = self
            .client
            .list_account_aliases()
            .send()
            .await
            .map_err(|e| self.err("iam:ListAccountAliases", e))?;
        Ok(out.account_aliases.into_iter().next())
    }

    async fn mfa_device_certifications(
        &self,
        serial: &str,
    ) -> Result<Vec<(String, String)>, AwsError> {
        let out = self
            .client
            .get_mfa_device()
            .serial_number(serial)
            .send()
            .await
            .map_err(|e| self.err("iam:GetMFADevice", e))?;
        let mut certs: Vec<(String, String)> =
            out.certifications.unwrap_or_default().into_iter().collect();
        certs.sort();
        Ok(certs)
    }

    async fn account_mfa_enabled(&self) -> Result<bool, AwsError> {
        let out = self
            .client
            .get_account_summary()
            .send()
            .await
            .map_err(|e| self.err("iam:GetAccountSummary", e))?;
        let map = out.summary_map.unwrap_or_default();
        Ok(map
            .get(&aws_sdk_iam::types::SummaryKeyType::AccountMfaEnabled)
            .is_some_and(|v| *v > 0))
    }

    async fn account_alias_and_clocks(
        &self,
    ) -> Result<(Option<String>, SystemTime, SystemTime), AwsError> {
        let capture = DateCapture::default();
        let out = self
            .client
            .list_account_aliases()
            .customize()
            .interceptor(capture.clone())
            .send()
            .await;
        let host = SystemTime::now();
        let out = out.map_err(|e| self.err("iam:ListAccountAliases", e))?;
        let server = capture
            .take()
            .and_then(|d| DateTime::from_str(&d, DateTimeFormat::HttpDate).ok())
            .and_then(|t| to_system_time(&t))
            .ok_or_else(|| missing("valid Date header"))?;
        Ok((out.account_aliases.into_iter().next(), server, host))
    }

    async fn server_time(&self) -> Result<SystemTime, AwsError> {
        // Any IAM answer carries a Date header, an error one too: an
        // AccessDenied still tells the time.
        let capture = DateCapture::default();
        let result = self
            .client
            .list_account_aliases()
            .customize()
            .interceptor(capture.clone())
            .send()
            .await;
        if let Some(date) = capture.take() {
            return DateTime::from_str(&date, DateTimeFormat::HttpDate)
                .ok()
                .and_then(|t| to_system_time(&t))
                .ok_or_else(|| missing("valid Date header"));
        }
        match result {
            Err(e) => Err(self.err("iam:ListAccountAliases", e)),
            Ok(_) => Err(missing("Date header")),
        }
    }
}

/// Keeps the `Date` header of the last answer to one request.
#[derive(Debug, Clone, Default)]
struct DateCapture(Arc<Mutex<Option<String>>>);

impl DateCapture {
    fn take(&self) -> Option<String> {
        self.0.lock().ok().and_then(|mut d| d.take())
    }
}

impl Intercept for DateCapture {
    fn name(&self) -> &'static str {
        "mfakey::DateCapture"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            if let Ok(mut slot) = self.0.lock() {
                *slot = Some(date.to_string());
            }
        }
        Ok(())
    }
}

/// `scheme://authority` of a URL, without path or trailing slash.
fn origin(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?']).next().unwrap_or(rest);
            format!("{scheme}://{authority}")
        }
        None => url.trim_end_matches('/').to_string(),
    }
}

/// Keeps the endpoint of the latest request, as the SDK resolved it (flag,
/// `AWS_ENDPOINT_URL_IAM`, `AWS_ENDPOINT_URL` or AWS's own).
#[derive(Debug, Clone)]
struct EndpointCapture(Arc<Mutex<String>>);

impl EndpointCapture {
    fn get(&self) -> String {
        self.0.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Intercept for EndpointCapture {
    fn name(&self) -> &'static str {
        "mfakey::EndpointCapture"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(mut slot) = self.0.lock() {
            *slot = origin(context.request().uri());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn origin_drops_path_and_query() {
        assert_eq!(
            origin("https://iam.amazonaws.com/"),
            "https://iam.amazonaws.com"
        );
        assert_eq!(
            origin("http://127.0.0.1:5000/?Action=x"),
            "http://127.0.0.1:5000"
        );
        assert_eq!(origin("http://127.0.0.1:5000"), "http://127.0.0.1:5000");
    }
}
