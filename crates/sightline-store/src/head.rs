//! In-memory heads: what is in the WAL but not yet in a segment, kept queryable.

pub mod logs;
