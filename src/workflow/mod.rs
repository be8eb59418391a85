//! The order of steps and how to undo them. Only this layer knows both the
//! key and AWS.

pub mod audit;
pub mod audit_trail;
pub mod baseline;
pub mod bulk;
pub mod codes;
pub mod console;
pub mod desk;
pub mod dry_run;
pub mod enroll;
pub mod journal;
pub mod manifest;
pub mod naming;
pub mod recover;
pub mod report;
pub mod security_key;

#[cfg(test)]
mod audit_tests;
#[cfg(test)]
mod bulk_tests;
#[cfg(test)]
mod tests;
