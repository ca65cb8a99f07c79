//! The data model shared by every Sightline crate.
//!
//! It owns the vocabulary and nothing else: tenants, label sets, label matchers, log
//! records, metric series and spans. It depends on no sibling crate, so ingest, store,
//! query and api can all speak it.
//!
//! Invariants kept here, so no other crate re-checks them:
//! - a [`Labels`] set is sorted by name and holds each name once;
//! - a [`TenantId`] is 1..=64 characters of `[A-Za-z0-9_.-]`;
//! - timestamps are `i64` nanoseconds since the Unix epoch (UTC).

pub mod duration;
pub mod interner;
pub mod labels;
pub mod log;
pub mod matcher;
pub mod metric;
pub mod parallel;
pub mod span;
pub mod tenant;

pub use interner::LabelInterner;
pub use labels::{Labels, WeakLabels};
pub use log::{LogBatch, LogRecord};
pub use matcher::{LabelMatcher, MatchOp};
pub use metric::{
    Exemplar, METRIC_NAME_LABEL, MetricBatch, MetricMetadata, MetricType, STALE_NAN_BITS, Sample,
    SeriesSamples, SeriesSelection, any_stale, is_stale_nan, stale_nan,
};
pub use span::{
    AttrValue, Span, SpanBatch, SpanEvent, SpanId, SpanKind, SpanLink, SpanStatus, StatusCode,
    TraceId, TraceQuery,
};
pub use tenant::TenantId;

/// Nanoseconds per millisecond, second, minute.
pub const NANOS_PER_MILLI: i64 = 1_000_000;
pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub const NANOS_PER_MINUTE: i64 = 60 * NANOS_PER_SECOND;

/// The current time as nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
