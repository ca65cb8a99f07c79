//! Why a PromQL query failed: the one error type at the PromQL boundary.
//!
//! Messages are Prometheus' own wording where clients or tests match on them (Grafana shows
//! them as they are), so they do not always follow our lowercase-sentence style.

pub use crate::logql::SourceError;

/// A failed PromQL query. The api crate maps `Parse` and `Execution` to `bad_data` /
/// `execution`, `Timeout` to `timeout`, `TooManySamples` to `execution`, `Source` to
/// `internal`.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    /// The query text is not valid PromQL (or uses what Prometheus 2.42 does not know).
    #[error("{0}")]
    Parse(String),
    /// The query is valid but cannot be answered for this data, e.g. "many-to-many matching
    /// not allowed", "vector cannot contain metrics with the same labelset".
    #[error("{0}")]
    Execution(String),
    #[error("query timed out in {0}")]
    Timeout(String),
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(String),
    #[error("select series: {0}")]
    Source(#[from] SourceError),
}

impl PromError {
    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        PromError::Execution(msg.into())
    }
}
