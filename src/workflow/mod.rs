//! The order of steps and how to undo them. Only this layer knows both the
//! key and AWS.

pub mod audit;
pub mod audit_trail;
pub mod baseline;
pub mod enroll;
pub mod journal;
pub mod naming;
pub mod recover;

#[cfg(test)]
mod audit_tests;
#[cfg(test)]
mod tests;
