//! The IAM calls an enrollment needs, as a trait the job folders are generic over.
//! Implemented by [`crate::aws::Iam`] (the AWS SDK) and
//! [`crate::aws::fake::FakeIam`] (in memory, for unit tests).

use std::future::Future;
use std::time::SystemTime;

use crate::aws::AwsError;
use crate::secret::SecretBytes;

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub arn: String,
    pub account_id: String,
}

/// An MFA device assigned to a user (virtual, hardware TOTP or FIDO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaDevice {
    pub serial: String,
    pub enable_date: Option<SystemTime>,
}

/// A virtual MFA device of the account. Never holds a seed, even where the
/// server sends one (moto does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualMfaDevice {
    pub serial: String,
    /// The user name it is enabled for (`<root_account>` for the root
    /// user, whose entry has no user name); `None` when unassigned.
    pub user: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// A virtual MFA device just created: its serial (ARN) and its seed, which
/// IAM returns only once.
#[derive(Debug)]
pub struct CreatedDevice {
    pub serial: String,
    pub seed: SecretBytes,
}

/// The IAM operations of an enrollment. Every call maps failures to
/// [`AwsError`]; the real client retries throttling and transient failures
/// before giving up.
pub trait IamApi: Sync {
    /// GetUser. An empty `name` means the caller's own user.
    fn get_user(&self, name: &str) -> impl Future<Output = Result<User, AwsError>> + Send;

    /// ListMFADevices for `user`, all pages. An empty `user` means the
    /// caller (root lists its own devices this way).
    fn list_mfa_devices(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Vec<MfaDevice>, AwsError>> + Send;

    /// ListVirtualMFADevices (`Unassigned` or `Any`), all pages.
    fn list_virtual_mfa_devices(
        &self,
        unassigned_only: bool,
    ) -> impl Future<Output = Result<Vec<VirtualMfaDevice>, AwsError>> + Send;

    /// CreateVirtualMFADevice. `path` is `/` or `/something/`.
    fn create_virtual_mfa_device(
        &self,
        name: &str,
        path: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<CreatedDevice, AwsError>> + Send;

    /// EnableMFADevice with two consecutive codes (T-1, T).
    fn enable_mfa_device(
        &self,
        user: &str,
        serial: &str,
        code1: &str,
        code2: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// ResyncMFADevice with two consecutive codes (AWS refuses codes it
    /// already accepted, as for EnableMFADevice).
    fn resync_mfa_device(
        &self,
        user: &str,
        serial: &str,
        code1: &str,
        code2: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// DeactivateMFADevice.
    fn deactivate_mfa_device(
        &self,
        user: &str,
        serial: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// DeleteVirtualMFADevice.
    fn delete_virtual_mfa_device(
        &self,
        serial: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// ListMFADeviceTags: a device's tags (ListVirtualMFADevices does not
    /// return them, on AWS as on moto).
    fn mfa_device_tags(
        &self,
        serial: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, AwsError>> + Send;

    /// CreateUser with tags (for `bulk --create-users`).
    fn create_user(
        &self,
        name: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<User, AwsError>> + Send;

    /// AddUserToGroup (idempotent).
    fn add_user_to_group(
        &self,
        user: &str,
        group: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// The account of the credentials in use (STS GetCallerIdentity, which
    /// needs no permission).
    fn account_id(&self) -> impl Future<Output = Result<String, AwsError>> + Send;

    /// The account alias (ListAccountAliases), if one is set.
    fn account_alias(&self) -> impl Future<Output = Result<Option<String>, AwsError>> + Send;

    /// GetMFADevice's certifications of a FIDO security key (`FIPS`,
    /// `FIDO` → level), sorted by name.
    fn mfa_device_certifications(
        &self,
        serial: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, AwsError>> + Send;

    /// GetAccountSummary's `AccountMFAEnabled`: whether the root user has MFA.
    fn account_mfa_enabled(&self) -> impl Future<Output = Result<bool, AwsError>> + Send;

    /// IAM's clock: the `Date` header of a fresh IAM answer (1 s resolution).
    fn server_time(&self) -> impl Future<Output = Result<SystemTime, AwsError>> + Send;

    /// The account alias and IAM's clock, with the host's clock read when
    /// IAM's arrived. The SDK client takes both from one ListAccountAliases
    /// answer; others make the two calls.
    fn account_alias_and_clocks(
        &self,
    ) -> impl Future<Output = Result<(Option<String>, SystemTime, SystemTime), AwsError>> + Send
    {
        async {
            let clocks = async { self.server_time().await.map(|t| (t, SystemTime::now())) };
            let (alias, (server, host)) = tokio::try_join!(self.account_alias(), clocks)?;
            Ok((alias, server, host))
        }
    }
}
