//! The ingest crate's errors: [`IngestError`] for a request, [`RecordError`] for one record.
//!
//! A decoder finds what is wrong with a record through [`crate::logs_common`], which does not
//! know where the record sits in the request; the decoder then wraps the [`RecordError`] in
//! [`IngestError::Record`] with a location, so messages read
//! `ndjson line 3: timestamp "yesterday": expected RFC 3339 or epoch number`.
//!
//! Conventions:
//! - messages are lowercase with no trailing period and say what was wrong and where;
//! - locations count from 1 (`line 3`, `stream 2`, `entry 5`), as a person counts;
//! - [`IngestError::kind`] is the only classification the api crate looks at: [`ErrorKind`]
//!   `BadData` for the caller's malformed input, `TooLarge` for an exceeded size limit.

use sightline_model::log::{LOG_METADATA_PAIRS_MAX, LOG_STREAM_LABELS_MAX};

/// How the api crate should answer an ingest error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller sent malformed or invalid data (HTTP 400).
    BadData,
    /// A body, decompressed body, line, label or metadata set is over a size limit (HTTP 413
    /// for a whole body; the api may prefer 400 for one record).
    TooLarge,
}

/// Why a request could not be decoded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// One record is malformed or over a per-record limit; `at` says where, e.g.
    /// `ndjson line 3` or `loki push: stream 2`.
    #[error("{at}: {reason}")]
    Record { at: String, reason: RecordError },
    /// The body is not the format it claims to be (JSON syntax or shape, protobuf).
    #[error("{op}: {reason}")]
    Malformed { op: &'static str, reason: String },
    /// The body could not be decompressed.
    #[error("{op}: {codec}: {reason}")]
    Decompress {
        op: &'static str,
        codec: &'static str,
        reason: String,
    },
    /// The decompressed body would be larger than its limit (a decompression bomb, or simply
    /// too much data for one request).
    #[error("{op}: {codec}: decompressed body is larger than the limit of {limit_bytes} bytes")]
    DecompressedTooLarge {
        op: &'static str,
        codec: &'static str,
        limit_bytes: usize,
    },
    /// The body itself is larger than its limit.
    #[error("{op}: body is {bytes} bytes, larger than the limit of {limit_bytes} bytes")]
    BodyTooLarge {
        op: &'static str,
        bytes: usize,
        limit_bytes: usize,
    },
    /// A `Content-Encoding` this crate cannot decode.
    #[error("decode body: unsupported content-encoding {encoding:?}")]
    UnsupportedEncoding { encoding: String },
}

impl IngestError {
    /// How the api crate should answer this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Record { reason, .. } => reason.kind(),
            Self::DecompressedTooLarge { .. } | Self::BodyTooLarge { .. } => ErrorKind::TooLarge,
            Self::Malformed { .. } | Self::Decompress { .. } | Self::UnsupportedEncoding { .. } => {
                ErrorKind::BadData
            }
        }
    }

    /// Wraps a record error with its location.
    pub fn record(at: impl Into<String>, reason: RecordError) -> Self {
        Self::Record {
            at: at.into(),
            reason,
        }
    }
}

/// What is wrong with one record, before the decoder says where the record is.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RecordError {
    /// JSON syntax, e.g. `expected value at column 1`.
    #[error("{0}")]
    Json(String),
    /// The bytes are not UTF-8.
    #[error("invalid utf-8 at byte {valid_up_to}")]
    Utf8 { valid_up_to: usize },
    /// A JSON log record that is not an object.
    #[error("expected a json object, found {found}")]
    NotAnObject { found: &'static str },
    /// A timestamp that is neither RFC 3339 nor an epoch number, or is out of range.
    #[error("timestamp {value:?}: {reason}")]
    BadTimestamp { value: String, reason: &'static str },
    /// The line is longer than [`sightline_model::log::LOG_LINE_BYTES_MAX`].
    #[error("line is {bytes} bytes, more than the limit of {limit_bytes}")]
    LineTooLong { bytes: usize, limit_bytes: usize },
    /// One metadata value is longer than its limit.
    #[error("metadata {name:?} is {bytes} bytes, more than the limit of {limit_bytes}")]
    MetadataValueTooLong {
        name: String,
        bytes: usize,
        limit_bytes: usize,
    },
    /// More structured-metadata pairs than [`LOG_METADATA_PAIRS_MAX`].
    #[error("more than {LOG_METADATA_PAIRS_MAX} structured metadata pairs")]
    TooManyMetadataPairs,
    /// More stream labels than [`LOG_STREAM_LABELS_MAX`].
    #[error("more than {LOG_STREAM_LABELS_MAX} stream labels")]
    TooManyLabels,
    /// A label or metadata name longer than its limit.
    #[error("name {name:?} is {bytes} bytes, more than the limit of {limit_bytes}")]
    NameTooLong {
        name: String,
        bytes: usize,
        limit_bytes: usize,
    },
    /// A label value longer than its limit.
    #[error("label {name:?} value is {bytes} bytes, more than the limit of {limit_bytes}")]
    LabelValueTooLong {
        name: String,
        bytes: usize,
        limit_bytes: usize,
    },
    /// A label name outside `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("label name {0:?} is not valid")]
    BadLabelName(String),
    /// A metric name outside `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("metric name {0:?} is not valid")]
    BadMetricName(String),
    /// The same label name twice in one label set.
    #[error("duplicate label name {0:?}")]
    DuplicateLabelName(String),
    /// A series without a (non-empty) `__name__` label.
    #[error("series has no metric name (label __name__)")]
    NoMetricName,
    /// More labels on a series than its limit.
    #[error("{count} labels, more than the limit of {limit}")]
    TooManySeriesLabels { count: usize, limit: usize },
    /// A sample later than the caller's clock allows.
    #[error(
        "sample timestamp {timestamp_ms} ms is more than {future_ms_max} ms after now ({now_ms} ms)"
    )]
    SampleTooFarInFuture {
        timestamp_ms: i64,
        now_ms: i64,
        future_ms_max: i64,
    },
    /// Text that does not follow a format's grammar, e.g.
    /// `expected '=' after label name "code" at column 12`.
    #[error("{reason} at column {column}")]
    Syntax { reason: String, column: usize },
    /// A Prometheus-style label string such as `{a="b"}` that does not parse.
    #[error("bad label string {text:?}: {reason}")]
    BadLabelString { text: String, reason: String },
    /// A stream without any label.
    #[error("stream has no labels")]
    NoLabels,
    /// Any other shape error, e.g. `entry 3: expected [timestamp, line]`.
    #[error("{0}")]
    Invalid(String),
}

impl RecordError {
    /// How the api crate should answer this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::LineTooLong { .. }
            | Self::MetadataValueTooLong { .. }
            | Self::TooManyMetadataPairs
            | Self::TooManyLabels
            | Self::NameTooLong { .. }
            | Self::LabelValueTooLong { .. }
            | Self::TooManySeriesLabels { .. } => ErrorKind::TooLarge,
            Self::Json(_)
            | Self::Utf8 { .. }
            | Self::NotAnObject { .. }
            | Self::BadTimestamp { .. }
            | Self::BadLabelName(_)
            | Self::BadMetricName(_)
            | Self::DuplicateLabelName(_)
            | Self::NoMetricName
            | Self::SampleTooFarInFuture { .. }
            | Self::Syntax { .. }
            | Self::BadLabelString { .. }
            | Self::NoLabels
            | Self::Invalid(_) => ErrorKind::BadData,
        }
    }
}

/// `text` cut to at most `max_chars` characters (with `...` when cut), for quoting a piece of
/// bad input in an error message without repeating a whole megabyte of it.
pub(crate) fn excerpt(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_and_where() {
        let e = IngestError::record(
            "ndjson line 3",
            RecordError::Json("expected value at column 1".into()),
        );
        assert_eq!(e.to_string(), "ndjson line 3: expected value at column 1");
        assert_eq!(e.kind(), ErrorKind::BadData);
        let e = IngestError::Decompress {
            op: "loki push",
            codec: "snappy",
            reason: "corrupt input".into(),
        };
        assert_eq!(e.to_string(), "loki push: snappy: corrupt input");
        let e = IngestError::record(
            "otlp logs: resource 1, scope 1, record 2",
            RecordError::TooManyMetadataPairs,
        );
        assert_eq!(e.kind(), ErrorKind::TooLarge);
    }

    #[test]
    fn excerpt_cuts_on_char_boundaries() {
        assert_eq!(excerpt("héllo", 2), "hé...");
        assert_eq!(excerpt("hé", 2), "hé");
        assert_eq!(excerpt("", 2), "");
    }
}
