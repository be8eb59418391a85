//! Undoing what mfakey made: the journal every run writes before it acts,
//! and `recover`, which finishes or undoes what a killed run left behind.

pub mod journal;
pub mod recover;
