//! The store's one error type.

/// What went wrong in the store. `Clone` so one WAL failure can be handed to every request
/// of its commit group.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A file or object could not be read or written.
    #[error("{0}")]
    Io(String),
    /// Bytes on disk are not what the format says (checksum, length, magic).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A caller's batch is over a limit.
    #[error("{0}")]
    TooLarge(String),
    /// A write would take a tenant past its series (cardinality) limit; retrying will not help.
    #[error("{0}")]
    TooManySeries(String),
    /// Over a resource limit for now (the head is full while a flush catches up); retry.
    #[error("{0}")]
    Overloaded(String),
    /// The store is shutting down.
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    /// An I/O error with the operation that failed, as `context: error`.
    pub fn io(context: &str, e: impl std::fmt::Display) -> Self {
        Self::Io(format!("{context}: {e}"))
    }
}
