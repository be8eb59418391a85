//! The AWS layer: the IAM calls an enrollment makes, behind [`IamApi`];
//! what the audit and the CloudTrail baseline read and change, behind the
//! traits of [`account`].
//! It knows nothing of cards; the jobs (`enroll`, `console`, `bulk`,
//! `audit`, `undo`) decide the order of the calls and how to undo them.
//! Public (the integration tests drive it against moto): the IAM client,
//! its trait and errors, and how it is configured.

pub(crate) mod account;
pub(crate) mod client;
pub(crate) mod cloud;
pub mod config;
pub(crate) mod error;
#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod iam;
pub(crate) mod org;
pub(crate) mod policy;
#[cfg(test)]
mod totp;

pub use client::Iam;
pub(crate) use cloud::Cloud;
pub(crate) use config::load_cloud;
pub use config::{load, AwsOptions};
pub use error::AwsError;
pub use iam::{CreatedDevice, IamApi, MfaDevice, User, VirtualMfaDevice};
