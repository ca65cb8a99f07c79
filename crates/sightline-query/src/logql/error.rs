//! Why a query failed: the one error type at the LogQL boundary.
//!
//! Messages are lowercase without a trailing period and say what the user can change.

use sightline_model::Labels;

use super::parser::ParseError;
use super::source::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("scan logs: {0}")]
    Source(#[from] SourceError),
    #[error(
        "maximum number of series ({limit}) reached for a single query; narrow the selector \
         or aggregate, as in sum by (label) (…)"
    )]
    TooManySeries { limit: usize },
    #[error(
        "exceeded maximum resolution of {limit} points per series; increase the step or \
         shorten the time range"
    )]
    TooManyPoints { limit: usize },
    #[error(
        "query would hold more than {limit} samples in memory; narrow the selector, the \
         pipeline or the time range"
    )]
    TooManySamples { limit: usize },
    #[error(
        "max entries limit per query exceeded, limit > max_entries_limit ({requested} > {limit})"
    )]
    TooManyEntries { requested: u32, limit: u32 },
    #[error(
        "pipeline error: {error:?} for series {labels}: {details}; use a label filter to skip \
         it, as in | __error__!={error:?}, or skip all errors with | __error__=\"\""
    )]
    Pipeline {
        error: String,
        details: String,
        labels: Labels,
    },
    #[error("invalid query: {reason}")]
    Invalid { reason: String },
}
