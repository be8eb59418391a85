//! The order of steps and how to undo them. Only this layer knows both the
//! key and AWS.

pub mod codes;
pub mod console;
pub mod enroll;
pub mod journal;
pub mod naming;
pub mod recover;

#[cfg(test)]
mod tests;
