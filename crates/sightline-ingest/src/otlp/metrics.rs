//! OTLP metrics (`POST /v1/metrics`, gRPC `MetricsService/Export`) to Prometheus series, as
//! the OpenTelemetry–Prometheus compatibility spec says.
//!
//! **Accepted**, per metric kind (names by `naming`: sanitised, unit suffix such as
//! `_seconds` or `_bytes`, `_ratio` for gauges of unit `1`, `_total` for counters):
//! - gauges → gauges (unknown-typed when `metric.metadata` has `prometheus.type=unknown`);
//! - cumulative monotonic sums → counters `…_total`, with exemplars;
//! - cumulative non-monotonic sums → gauges (info or stateset when `prometheus.type` says);
//! - cumulative histograms → `_bucket{le}` (cumulative, with `+Inf`), `_sum` when set, and
//!   `_count`, exemplars on the first bucket that holds their value;
//! - cumulative exponential histograms → the same classic series, `le` at each bucket's upper
//!   bound ([`points`] says how);
//! - summaries → `{quantile}` series, `_sum`, `_count`.
//!
//! Labels: the point's attributes (keys sanitised), `otel_scope_name` and
//! `otel_scope_version` from the scope, `job` from `service.namespace/service.name` (or
//! `service.name`) and `instance` from `service.instance.id`, later ones replacing earlier
//! ones. Every other resource attribute goes to one `target_info` gauge (value 1) per
//! resource, at the time of the resource's latest point. Exemplars carry `trace_id` and
//! `span_id` as lowercase hex and their filtered attributes. Timestamps are cut from ns to ms;
//! a point flagged `NoRecordedValue` becomes Prometheus' stale marker. Each family gets its
//! metadata (type, help from the description, unit from the name's unit suffix).
//!
//! **Rejected, per data point, the rest of the request kept** (OTLP's partial success):
//! delta (or unspecified) temporality of sums, histograms and exponential histograms, which
//! Prometheus' cumulative model cannot hold without state across requests; a point without a
//! time or a value; a histogram whose counts do not match its bounds; a metric whose name has
//! no letter or digit; labels over the limits of [`crate::metrics_common`]. Their count is
//! [`OtlpMetricsDecoded::rejected_data_points`] and their reasons
//! [`OtlpMetricsDecoded::error_message`], e.g. `metric "jobs.done" (resource 1, scope 1):
//! delta temporality is not supported, send cumulative (3 data points rejected)`. Only a body
//! that is not an OTLP request at all fails whole.
//!
//! Not converted: native (exponential) histograms as Prometheus native histograms, `_created`
//! series from start times, `otel_scope_info`, scope attributes as labels.

pub mod json_compat;
mod naming;
pub mod points;
#[cfg(test)]
mod tests;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric, metric::Data};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use sightline_model::{METRIC_NAME_LABEL, MetricMetadata, MetricType, Sample, SeriesSamples};

use crate::error::{IngestError, RecordError, excerpt};
use crate::metrics_common::{DecodedMetrics, series_labels};
use crate::otlp::logs::any_value_text;
use naming::{NameKind, attribute_labels, metric_name, set_label};
use points::PointSeries;

/// The metric family of resource attributes.
pub const TARGET_INFO: &str = "target_info";

/// Most distinct reasons kept in [`OtlpMetricsDecoded::error_message`].
pub const REJECTION_REASONS_MAX: usize = 8;

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";
const PROMETHEUS_TYPE_KEY: &str = "prometheus.type";

/// A converted request: series to store, and what was rejected, for OTLP's partial
/// success response (`rejected_data_points`, `error_message`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OtlpMetricsDecoded {
    pub metrics: DecodedMetrics,
    pub rejected_data_points: i64,
    /// Empty when nothing was rejected.
    pub error_message: String,
}

/// Decodes an OTLP/HTTP protobuf body (`application/x-protobuf`).
pub fn decode_protobuf(body: &[u8]) -> Result<OtlpMetricsDecoded, IngestError> {
    let request =
        ExportMetricsServiceRequest::decode(body).map_err(|e| IngestError::Malformed {
            op: "decode otlp metrics protobuf",
            reason: e.to_string(),
        })?;
    Ok(from_request(request))
}

/// Decodes an OTLP/HTTP JSON body (`application/json`).
pub fn decode_json(body: &[u8]) -> Result<OtlpMetricsDecoded, IngestError> {
    Ok(from_request(json_compat::parse_request(body)?))
}

/// Converts a decoded request (the gRPC path). Never fails: what cannot be converted is
/// counted and explained in the result.
pub fn from_request(request: ExportMetricsServiceRequest) -> OtlpMetricsDecoded {
    let mut out = DecodedMetrics::default();
    let mut rejections = Rejections::default();
    let mut families = std::collections::HashSet::new();
    for (ri, resource_metrics) in request.resource_metrics.into_iter().enumerate() {
        let resource = ResourceLabels::new(resource_metrics.resource.as_ref());
        let mut latest_ms: Option<i64> = None;
        for (si, scope_metrics) in resource_metrics.scope_metrics.into_iter().enumerate() {
            let mut base: Vec<(String, String)> = Vec::new();
            if let Some(scope) = &scope_metrics.scope {
                base.push(("otel_scope_name".into(), scope.name.clone()));
                base.push(("otel_scope_version".into(), scope.version.clone()));
            }
            base.extend(resource.job_instance.iter().cloned());
            for metric in &scope_metrics.metrics {
                let at = || {
                    format!(
                        "metric {:?} (resource {}, scope {})",
                        excerpt(&metric.name, 100),
                        ri + 1,
                        si + 1
                    )
                };
                let converted = convert_metric(metric, &base, &mut out.series, &mut latest_ms);
                match converted {
                    Ok((metadata, failures)) => {
                        if families.insert(metadata.metric_family.clone()) {
                            out.metadata.push(metadata);
                        }
                        for (index, reason) in failures {
                            rejections
                                .add(1, format!("{}, data point {}: {reason}", at(), index + 1));
                        }
                    }
                    Err((_, reason)) if reason.is_empty() => {}
                    Err((count, reason)) => rejections.add(count, format!("{}: {reason}", at())),
                }
            }
        }
        if let Some(timestamp_ms) = latest_ms
            && let Some(series) = resource.target_info(timestamp_ms)
        {
            out.series.push(series);
            if families.insert(TARGET_INFO.to_string()) {
                out.metadata.push(MetricMetadata {
                    metric_family: TARGET_INFO.into(),
                    metric_type: MetricType::Gauge,
                    help: "Target metadata".into(),
                    unit: String::new(),
                });
            }
        }
    }
    OtlpMetricsDecoded {
        metrics: out,
        rejected_data_points: rejections.count,
        error_message: rejections.message(),
    }
}

/// A metric's rejected points: `(index, reason)`.
type PointFailures = Vec<(usize, RecordError)>;

/// Converts one metric's points into `series`: its metadata and the points that failed, or
/// `Err((points, reason))` when the whole metric is rejected.
fn convert_metric(
    metric: &Metric,
    base: &[(String, String)],
    series: &mut Vec<SeriesSamples>,
    latest_ms: &mut Option<i64>,
) -> Result<(MetricMetadata, PointFailures), (i64, String)> {
    let Some(data) = &metric.data else {
        return Err((
            0,
            "metric has no data, or data that is not valid OTLP (its points are unknown)".into(),
        ));
    };
    let prometheus_type = prometheus_type(metric);
    let (points, temporality) = match data {
        Data::Gauge(g) => (g.data_points.len(), None),
        Data::Sum(s) => (s.data_points.len(), Some(s.aggregation_temporality)),
        Data::Histogram(h) => (h.data_points.len(), Some(h.aggregation_temporality)),
        Data::ExponentialHistogram(h) => (h.data_points.len(), Some(h.aggregation_temporality)),
        Data::Summary(s) => (s.data_points.len(), None),
    };
    let points = points as i64;
    if points == 0 {
        return Err((0, String::new()));
    }
    match temporality.map(AggregationTemporality::try_from) {
        None | Some(Ok(AggregationTemporality::Cumulative)) => {}
        Some(Ok(AggregationTemporality::Delta)) => {
            return Err((
                points,
                format!(
                    "delta temporality is not supported, send cumulative ({points} data points rejected)"
                ),
            ));
        }
        Some(_) => {
            return Err((
                points,
                format!("aggregation temporality is unspecified ({points} data points rejected)"),
            ));
        }
    }
    let (name_kind, metric_type) = match data {
        Data::Gauge(_) if prometheus_type.as_deref() == Some("unknown") => {
            (NameKind::Gauge, MetricType::Unknown)
        }
        Data::Gauge(_) => (NameKind::Gauge, MetricType::Gauge),
        Data::Sum(s) if s.is_monotonic => (NameKind::Counter, MetricType::Counter),
        Data::Sum(_) => match prometheus_type.as_deref() {
            Some("info") => (NameKind::Other, MetricType::Info),
            Some("stateset") => (NameKind::Other, MetricType::StateSet),
            _ => (NameKind::Other, MetricType::Gauge),
        },
        Data::Histogram(_) | Data::ExponentialHistogram(_) => {
            (NameKind::Other, MetricType::Histogram)
        }
        Data::Summary(_) => (NameKind::Other, MetricType::Summary),
    };
    let Some((name, unit)) = metric_name(&metric.name, &metric.unit, name_kind) else {
        return Err((
            points,
            format!("metric name has no letter or digit ({points} data points rejected)"),
        ));
    };
    let mut failures = Vec::new();
    let mut keep = |index: usize, converted: Result<PointSeries, RecordError>| match converted {
        Ok(point) => {
            *latest_ms = Some(latest_ms.map_or(point.timestamp_ms, |l| l.max(point.timestamp_ms)));
            series.extend(point.series);
        }
        Err(reason) => failures.push((index, reason)),
    };
    match data {
        Data::Gauge(g) => {
            for (i, p) in g.data_points.iter().enumerate() {
                keep(i, points::number_point(p, &name, base, false));
            }
        }
        Data::Sum(s) => {
            for (i, p) in s.data_points.iter().enumerate() {
                keep(i, points::number_point(p, &name, base, s.is_monotonic));
            }
        }
        Data::Histogram(h) => {
            for (i, p) in h.data_points.iter().enumerate() {
                keep(i, points::histogram_point(p, &name, base));
            }
        }
        Data::ExponentialHistogram(h) => {
            for (i, p) in h.data_points.iter().enumerate() {
                keep(i, points::exponential_point(p, &name, base));
            }
        }
        Data::Summary(s) => {
            for (i, p) in s.data_points.iter().enumerate() {
                keep(i, points::summary_point(p, &name, base));
            }
        }
    }
    let metadata = MetricMetadata {
        metric_family: name,
        metric_type,
        help: metric.description.clone(),
        unit,
    };
    Ok((metadata, failures))
}

/// The `prometheus.type` entry of a metric's metadata, as a translator from Prometheus sets
/// it.
fn prometheus_type(metric: &Metric) -> Option<String> {
    metric
        .metadata
        .iter()
        .find(|kv| kv.key == PROMETHEUS_TYPE_KEY)
        .and_then(|kv| kv.value.clone())
        .and_then(any_value_text)
}

/// What a resource gives its series: `job` and `instance`, and its other attributes for
/// `target_info`.
struct ResourceLabels {
    job_instance: Vec<(String, String)>,
    others: Vec<(String, String)>,
}

impl ResourceLabels {
    fn new(resource: Option<&Resource>) -> Self {
        let attributes = resource
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        let text = |key: &str| {
            attributes
                .iter()
                .find(|kv| kv.key == key)
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    other => any_value_text(opentelemetry_proto::tonic::common::v1::AnyValue {
                        value: Some(other.clone()),
                    }),
                })
                .filter(|s| !s.is_empty())
        };
        let mut job_instance = Vec::new();
        if let Some(service) = text(SERVICE_NAME) {
            let job = match text(SERVICE_NAMESPACE) {
                Some(namespace) => format!("{namespace}/{service}"),
                None => service,
            };
            job_instance.push(("job".to_string(), job));
        }
        if let Some(instance) = text(SERVICE_INSTANCE_ID) {
            job_instance.push(("instance".to_string(), instance));
        }
        let others = attribute_labels(attributes.iter().filter(|kv| {
            ![SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID].contains(&kv.key.as_str())
        }));
        Self {
            job_instance,
            others,
        }
    }

    /// The `target_info` series at `timestamp_ms`, when the resource has other attributes
    /// (and they make a valid label set).
    fn target_info(&self, timestamp_ms: i64) -> Option<SeriesSamples> {
        if self.others.iter().all(|(_, v)| v.is_empty()) {
            return None;
        }
        let mut pairs = self.others.clone();
        for (k, v) in &self.job_instance {
            set_label(&mut pairs, k, v.clone());
        }
        set_label(&mut pairs, METRIC_NAME_LABEL, TARGET_INFO.to_string());
        let labels = series_labels(&mut pairs).ok()?;
        Some(SeriesSamples {
            labels,
            samples: vec![Sample {
                timestamp_ms,
                value: 1.0,
            }],
            exemplars: vec![],
        })
    }
}

/// Rejected points and the first [`REJECTION_REASONS_MAX`] reasons.
#[derive(Default)]
struct Rejections {
    count: i64,
    reasons: Vec<String>,
    more: usize,
}

impl Rejections {
    /// Counts `count` rejected points; an empty `reason` (nothing to say) is not kept.
    fn add(&mut self, count: i64, reason: String) {
        self.count += count;
        if reason.is_empty() {
            return;
        }
        if self.reasons.len() < REJECTION_REASONS_MAX {
            self.reasons.push(reason);
        } else {
            self.more += 1;
        }
    }

    fn message(&self) -> String {
        let mut text = self.reasons.join("; ");
        if self.more > 0 {
            text.push_str(&format!("; and {} more", self.more));
        }
        text
    }
}
