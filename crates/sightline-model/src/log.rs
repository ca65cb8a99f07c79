//! Log records as the store keeps them, after ingest has normalised them.
//!
//! A record is Loki-shaped: low-cardinality **stream labels** (service, level, a few
//! resource attributes) say which stream it belongs to; the **line** is the text a person
//! reads; **structured metadata** holds every other field (request_id, trace_id, user_id,
//! ip, …) as name/value pairs that are searchable but never labels.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{LabelMatcher, Labels, TenantId};

mod pairs;

pub use pairs::MetadataPairs;

/// Longest log line accepted, in bytes; ingest rejects longer ones with a clear error.
pub const LOG_LINE_BYTES_MAX: usize = 256 * 1024;

/// Most structured-metadata pairs on one record.
pub const LOG_METADATA_PAIRS_MAX: usize = 128;

/// Most stream labels on one record.
pub const LOG_STREAM_LABELS_MAX: usize = 32;

/// One log record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// Stream labels, valid label names: shared by the records of one stream, which a
    /// decoder builds once (a request of 5,000 lines has a few dozen streams).
    pub labels: Arc<Labels>,
    /// The log line.
    pub line: String,
    /// Structured metadata: valid label names, in the order ingest produced them, each once.
    pub metadata: MetadataPairs,
}

impl LogRecord {
    /// The value of a structured-metadata field.
    pub fn metadata_value(&self, name: &str) -> Option<&str> {
        self.metadata.get(name)
    }
}

/// Records of one tenant, as one request delivered them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogBatch {
    pub tenant: TenantId,
    pub records: Vec<LogRecord>,
}

/// One scan: which streams, which time range, and hints for pruning.
#[derive(Clone, Debug)]
pub struct LogSelection {
    pub tenant: TenantId,
    /// Stream selector; a stream is scanned when its labels satisfy every matcher.
    pub matchers: Vec<LabelMatcher>,
    /// Inclusive lower bound, ns since the epoch.
    pub start_ns: i64,
    /// Exclusive upper bound, ns since the epoch.
    pub end_ns: i64,
    /// Hint: the evaluator keeps only lines containing every one of these substrings
    /// (case-sensitive). A source may skip entries whose line lacks one.
    pub line_contains: Vec<String>,
    /// Hint: the evaluator keeps only entries whose stream label or structured-metadata field
    /// `name` equals `value`. A source may skip entries for which neither holds.
    pub metadata_eq: Vec<(String, String)>,
    /// Whether the evaluator reads the line; when false a source may pass `""`.
    pub need_line: bool,
    /// Whether the evaluator reads structured metadata; when false a source may pass `&[]`.
    pub need_metadata: bool,
    /// When set, the evaluator reads only these metadata fields, and a source may pass only
    /// them (for `sum by (field)`, say, a source need not build every field of every entry).
    pub metadata_fields: Option<Vec<String>>,
}

impl LogSelection {
    /// Whether the evaluator wants metadata field `name`.
    pub fn wants_metadata_field(&self, name: &str) -> bool {
        self.need_metadata
            && self
                .metadata_fields
                .as_ref()
                .is_none_or(|f| f.iter().any(|n| n == name))
    }
}

/// One entry as a source hands it to the evaluator; borrowed, so nothing is copied until the
/// evaluator decides to keep it.
#[derive(Clone, Copy, Debug)]
pub struct LogEntryRef<'a> {
    pub timestamp_ns: i64,
    pub line: &'a str,
    pub metadata: &'a [(String, String)],
}
