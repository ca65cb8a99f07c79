//! Metrics in Prometheus' model: a series is a sorted label set (the metric name is the label
//! `__name__`); a sample is a millisecond timestamp and an `f64`. Classic histograms and
//! summaries are their `_bucket`/`_sum`/`_count`/quantile series.
//!
//! Staleness follows Prometheus: a sample whose value has the exact bit pattern
//! [`STALE_NAN_BITS`] marks the end of a series (a scrape target or a series went away);
//! query evaluation treats it as "no value from here on", never as a number.

use serde::{Deserialize, Serialize};

use crate::{LabelMatcher, Labels, TenantId};

/// The label that holds the metric name.
pub const METRIC_NAME_LABEL: &str = "__name__";

/// Prometheus' staleness marker: a NaN with this exact bit pattern.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is the staleness marker (and not any other NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Whether any of `samples` is the staleness marker: folds over runs of samples without a
/// branch per sample, so the compares vectorise.
pub fn any_stale(samples: &[Sample]) -> bool {
    samples
        .chunks(64)
        .any(|run| run.iter().fold(false, |any, p| any | is_stale_nan(p.value)))
}

/// One sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub value: f64,
}

/// An exemplar: a sample of one observation with labels such as `trace_id`, linking a
/// series to a trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exemplar {
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// Samples (and exemplars) of one series, as one request delivered them, in any order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesSamples {
    /// Includes `__name__`; valid label names; non-empty values.
    pub labels: Labels,
    pub samples: Vec<Sample>,
    pub exemplars: Vec<Exemplar>,
}

/// The type of a metric family, as the exposition formats and remote write name them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    #[default]
    Unknown,
}

impl MetricType {
    /// The name the Prometheus `/api/v1/metadata` endpoint uses.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

/// Metadata of a metric family (`# TYPE`, `# HELP`, `# UNIT`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MetricMetadata {
    /// The family name, e.g. `http_request_duration_seconds` (without `_bucket`).
    pub metric_family: String,
    pub metric_type: MetricType,
    pub help: String,
    pub unit: String,
}

/// Series of one tenant, as one request (or one scrape) delivered them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricBatch {
    pub tenant: TenantId,
    pub series: Vec<SeriesSamples>,
    pub metadata: Vec<MetricMetadata>,
}

impl MetricBatch {
    /// Number of samples in the batch.
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}

/// One series selection: the series whose labels satisfy every matcher, with their samples
/// in `[start_ms, end_ms]` (both inclusive, as PromQL's ranges need the left edge excluded
/// by the evaluator itself).
#[derive(Clone, Debug)]
pub struct SeriesSelection {
    pub tenant: TenantId,
    pub matchers: Vec<LabelMatcher>,
    pub start_ms: i64,
    pub end_ms: i64,
}
