//! PC/SC backend (to be written).
