//! The AWS layer: the IAM calls an enrollment makes, behind [`IamApi`].
//! It knows nothing of cards; `workflow` decides the order of the calls and
//! how to undo them.

pub mod client;
pub mod config;
pub mod error;
pub mod fake;
pub mod iam;
pub mod totp;

pub use client::Iam;
pub use config::{load, AwsOptions};
pub use error::AwsError;
pub use iam::{CreatedDevice, IamApi, MfaDevice, User, VirtualMfaDevice};
