//! In-memory heads: what the WAL holds that no segment does yet, one per signal.

pub mod logs;
pub mod metrics;
pub mod traces;
