//! The AWS layer: the IAM calls an enrollment makes, behind [`IamApi`];
//! what the audit and the CloudTrail baseline read and change, behind the
//! traits of [`account`].
//! It knows nothing of cards; `workflow` decides the order of the calls and
//! how to undo them.

pub mod account;
pub mod client;
pub mod cloud;
pub mod config;
pub mod error;
#[cfg(test)]
pub mod fake;
pub mod iam;
pub mod policy;
pub mod totp;

pub use client::Iam;
pub use cloud::Cloud;
pub use config::{load, load_cloud, AwsOptions};
pub use error::AwsError;
pub use iam::{CreatedDevice, IamApi, MfaDevice, User, VirtualMfaDevice};
