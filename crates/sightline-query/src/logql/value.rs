//! What a query returns: log streams, an instant vector, a range matrix or a scalar.
//!
//! Kept free of serde on purpose: the HTTP layer owns the wire format (Loki's JSON, with
//! seconds and strings) and converts from these. Timestamps are `i64` nanoseconds since the
//! epoch, as everywhere in Sightline. Streams, vectors and matrices are sorted by labels
//! (except the output of `sort`/`sort_desc`, which is sorted by value), so results are
//! deterministic whatever order the source scanned in.

use sightline_model::Labels;

/// A query's value and what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub value: QueryValue,
    pub stats: QueryStats,
}

#[derive(Clone, Debug, PartialEq)]
pub enum QueryValue {
    /// A log query's entries, grouped by labels after the pipeline.
    Streams(Vec<StreamResult>),
    /// An instant metric query.
    Vector(Vec<Sample>),
    /// A range metric query.
    Matrix(Vec<Series>),
    /// An instant query whose expression is a number.
    Scalar(Point),
}

/// Entries sharing the same labels after the pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamResult {
    /// Stream labels plus extracted labels (and `__error__` when a stage failed).
    pub labels: Labels,
    /// Newest first for a backward query, oldest first for a forward one.
    pub entries: Vec<StreamEntry>,
}

/// One log entry in a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEntry {
    pub timestamp_ns: i64,
    /// The line after `line_format`.
    pub line: String,
    /// Structured metadata, minus fields dropped by the pipeline.
    pub metadata: Vec<(String, String)>,
    /// Labels the pipeline added (parsers, `label_format`, `__error__`); they are also in
    /// the result's `labels`, and are listed here so the API can report them apart from the
    /// stream's own labels, as Loki's `categorize-labels` encoding does.
    pub parsed: Vec<(String, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub timestamp_ns: i64,
    pub value: f64,
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub timestamp_ns: i64,
    pub value: f64,
}

/// One series of a range matrix; points ascend in time.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<Point>,
}

/// Work done by one query, cheap enough to always count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Entries the source handed to the evaluator.
    pub entries_scanned: u64,
    /// Bytes of the lines the source handed over (zero when the query did not need lines).
    pub bytes_scanned: u64,
    /// Entries that passed the pipeline.
    pub entries_matched: u64,
}
