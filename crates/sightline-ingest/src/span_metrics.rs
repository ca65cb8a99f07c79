//! RED metrics derived from spans as they arrive, with no instrumentation of their own.
//!
//! Every stored span counts once into its series, keyed by tenant, `service`, `operation`
//! (the span name), `span_kind` and `status_code`, spelt as OpenTelemetry's `spanmetrics`
//! connector spells them (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`):
//!
//! - `traces_spanmetrics_calls_total`: a counter of spans (errors are the
//!   `status_code="STATUS_CODE_ERROR"` ones);
//! - `traces_spanmetrics_latency_seconds`: a classic histogram of span durations
//!   (`_bucket`, `_sum`, `_count`) over Prometheus' default buckets, each bucket carrying as
//!   exemplar the trace and span id of the latest span that fell in it.
//!
//! The counts are cumulative since the server started; [`SpanMetrics::snapshot`] turns them
//! into samples at one instant, every series each time, as a scrape would, so `rate()` and
//! `histogram_quantile()` work as on any Prometheus counter (a restart is a counter reset).
//! A tenant holds at most `series_max` series; spans that would make more are counted in
//! [`SpanMetrics::dropped_spans`] and left out, so a span name with ids in it cannot blow up
//! the TSDB.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use std::collections::HashMap;

use sightline_model::span::hex_lower;

use sightline_model::{
    Exemplar, Labels, MetricBatch, MetricMetadata, MetricType, Sample, SeriesSamples, Span,
    SpanKind, StatusCode, TenantId,
};

pub const CALLS: &str = "traces_spanmetrics_calls_total";
pub const LATENCY: &str = "traces_spanmetrics_latency_seconds";
/// Prometheus' default histogram buckets, in seconds.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Most series (label sets of the four labels) per tenant.
pub const SERIES_MAX: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    service: String,
    operation: String,
    kind: SpanKind,
    status: StatusCode,
}

#[derive(Clone, Debug, Default)]
struct Counts {
    calls: u64,
    sum_seconds: f64,
    /// Per bucket of [`BUCKETS`] and a last one for +Inf; not cumulative.
    buckets: [u64; BUCKETS.len() + 1],
    /// Per bucket: the latest span in it.
    exemplars: [Option<SpanExemplar>; BUCKETS.len() + 1],
}

/// (trace id, span id, seconds, end ms) of a span.
type SpanExemplar = ([u8; 16], [u8; 8], f64, i64);

/// The aggregator; shared by every ingest path.
pub struct SpanMetrics {
    tenants: Mutex<HashMap<TenantId, HashMap<Key, Counts>>>,
    series_max: usize,
    dropped: AtomicU64,
}

impl Default for SpanMetrics {
    fn default() -> Self {
        Self::new(SERIES_MAX)
    }
}

/// OpenTelemetry's spelling of a kind, as the `spanmetrics` connector writes it.
pub fn kind_label(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
        SpanKind::Internal => "SPAN_KIND_INTERNAL",
        SpanKind::Server => "SPAN_KIND_SERVER",
        SpanKind::Client => "SPAN_KIND_CLIENT",
        SpanKind::Producer => "SPAN_KIND_PRODUCER",
        SpanKind::Consumer => "SPAN_KIND_CONSUMER",
    }
}

/// OpenTelemetry's spelling of a status code.
pub fn status_label(status: StatusCode) -> &'static str {
    match status {
        StatusCode::Unset => "STATUS_CODE_UNSET",
        StatusCode::Ok => "STATUS_CODE_OK",
        StatusCode::Error => "STATUS_CODE_ERROR",
    }
}

impl SpanMetrics {
    pub fn new(series_max: usize) -> Self {
        Self {
            tenants: Mutex::default(),
            series_max,
            dropped: AtomicU64::new(0),
        }
    }

    /// Spans left out because their tenant had `series_max` series already.
    pub fn dropped_spans(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Counts stored spans.
    pub fn observe(&self, tenant: &TenantId, spans: &[Span]) {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let series = match tenants.get_mut(tenant) {
            Some(s) => s,
            None => tenants.entry(tenant.clone()).or_default(),
        };
        for s in spans {
            let key = Key {
                service: s.service.clone(),
                operation: s.name.clone(),
                kind: s.kind,
                status: s.status.code,
            };
            let full = series.len() >= self.series_max;
            let counts = match series.get_mut(&key) {
                Some(c) => c,
                None if full => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                None => series.entry(key).or_default(),
            };
            let seconds = s.duration_ns() as f64 / 1e9;
            let bucket = BUCKETS
                .iter()
                .position(|le| seconds <= *le)
                .unwrap_or(BUCKETS.len());
            counts.calls += 1;
            counts.sum_seconds += seconds;
            counts.buckets[bucket] += 1;
            counts.exemplars[bucket] = Some((
                s.trace_id,
                s.span_id,
                seconds,
                s.end_ns.div_euclid(1_000_000),
            ));
        }
    }

    /// Every series' cumulative values as samples at `now_ms`, one batch per tenant.
    pub fn snapshot(&self, now_ms: i64) -> Vec<MetricBatch> {
        let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(tenants.len());
        for (tenant, series) in tenants.iter() {
            let mut batch = MetricBatch {
                tenant: tenant.clone(),
                series: Vec::with_capacity(series.len() * (BUCKETS.len() + 4)),
                metadata: metadata(),
            };
            for (key, counts) in series {
                push_series(&mut batch.series, key, counts, now_ms);
            }
            out.push(batch);
        }
        out
    }
}

fn metadata() -> Vec<MetricMetadata> {
    vec![
        MetricMetadata {
            metric_family: CALLS.trim_end_matches("_total").to_owned(),
            metric_type: MetricType::Counter,
            help: "Spans received, by service, operation, kind and status.".to_owned(),
            unit: String::new(),
        },
        MetricMetadata {
            metric_family: LATENCY.to_owned(),
            metric_type: MetricType::Histogram,
            help: "Span durations, by service, operation, kind and status.".to_owned(),
            unit: "seconds".to_owned(),
        },
    ]
}

fn series_labels(name: &str, key: &Key, le: Option<&str>) -> Labels {
    let mut pairs = vec![
        ("__name__".to_owned(), name.to_owned()),
        ("operation".to_owned(), key.operation.clone()),
        ("service".to_owned(), key.service.clone()),
        ("span_kind".to_owned(), kind_label(key.kind).to_owned()),
        (
            "status_code".to_owned(),
            status_label(key.status).to_owned(),
        ),
    ];
    if let Some(le) = le {
        pairs.push(("le".to_owned(), le.to_owned()));
    }
    // Empty values are no label at all, as Prometheus has it.
    pairs.retain(|(_, v)| !v.is_empty());
    Labels::from_pairs(pairs)
}

fn push_series(out: &mut Vec<SeriesSamples>, key: &Key, c: &Counts, now_ms: i64) {
    let sample = |value: f64| {
        vec![Sample {
            timestamp_ms: now_ms,
            value,
        }]
    };
    out.push(SeriesSamples {
        labels: series_labels(CALLS, key, None),
        samples: sample(c.calls as f64),
        exemplars: Vec::new(),
    });
    let mut cumulative = 0u64;
    for (i, n) in c.buckets.iter().enumerate() {
        cumulative += n;
        let le = BUCKETS.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
        let exemplars = c.exemplars[i]
            .iter()
            .map(|(trace, span, seconds, ts_ms)| Exemplar {
                labels: Labels::from_pairs([
                    ("span_id".to_owned(), hex_lower(span)),
                    ("trace_id".to_owned(), hex_lower(trace)),
                ]),
                value: *seconds,
                timestamp_ms: *ts_ms,
            })
            .collect();
        out.push(SeriesSamples {
            labels: series_labels(&format!("{LATENCY}_bucket"), key, Some(&le)),
            samples: sample(cumulative as f64),
            exemplars,
        });
    }
    out.push(SeriesSamples {
        labels: series_labels(&format!("{LATENCY}_sum"), key, None),
        samples: sample(c.sum_seconds),
        exemplars: Vec::new(),
    });
    out.push(SeriesSamples {
        labels: series_labels(&format!("{LATENCY}_count"), key, None),
        samples: sample(c.calls as f64),
        exemplars: Vec::new(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::{SpanStatus, StatusCode};

    fn span(name: &str, ms: i64, error: bool) -> Span {
        Span {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: None,
            trace_state: String::new(),
            name: name.into(),
            kind: SpanKind::Server,
            start_ns: 1_000_000_000,
            end_ns: 1_000_000_000 + ms * 1_000_000,
            status: SpanStatus {
                code: if error {
                    StatusCode::Error
                } else {
                    StatusCode::Unset
                },
                message: String::new(),
            },
            service: "orders".into(),
            resource: vec![],
            scope_name: String::new(),
            scope_version: String::new(),
            attributes: vec![],
            events: vec![],
            links: vec![],
        }
    }

    fn value(batch: &MetricBatch, labels: &[(&str, &str)]) -> Option<f64> {
        batch
            .series
            .iter()
            .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| s.samples[0].value)
    }

    #[test]
    fn counts_calls_errors_and_buckets_cumulatively() {
        let m = SpanMetrics::default();
        let t = TenantId::default_tenant();
        m.observe(&t, &[span("GET /", 3, false), span("GET /", 300, false)]);
        m.observe(&t, &[span("GET /", 40, true)]);
        let b = &m.snapshot(5_000)[0];
        let ok = [("__name__", CALLS), ("status_code", "STATUS_CODE_UNSET")];
        assert_eq!(value(b, &ok), Some(2.0));
        let err = [("__name__", CALLS), ("status_code", "STATUS_CODE_ERROR")];
        assert_eq!(value(b, &err), Some(1.0));
        let bucket = format!("{LATENCY}_bucket");
        let le = |le: &'static str| {
            [
                ("__name__", bucket.as_str()),
                ("status_code", "STATUS_CODE_UNSET"),
                ("le", le),
            ]
        };
        assert_eq!(value(b, &le("0.005")), Some(1.0));
        assert_eq!(value(b, &le("0.25")), Some(1.0));
        assert_eq!(value(b, &le("0.5")), Some(2.0));
        assert_eq!(value(b, &le("+Inf")), Some(2.0));
        let with_exemplar = b
            .series
            .iter()
            .find(|s| s.labels.get("le") == Some("0.5") && !s.exemplars.is_empty())
            .expect("an exemplar on the bucket the 300 ms span fell in");
        assert_eq!(
            with_exemplar.exemplars[0].labels.get("trace_id"),
            Some("01010101010101010101010101010101")
        );
        assert!(b.series.iter().all(|s| s.samples[0].timestamp_ms == 5_000));
    }

    #[test]
    fn series_over_the_limit_are_dropped_and_counted() {
        let m = SpanMetrics::new(1);
        let t = TenantId::default_tenant();
        m.observe(
            &t,
            &[
                span("a", 1, false),
                span("b", 1, false),
                span("a", 1, false),
            ],
        );
        assert_eq!(m.dropped_spans(), 1);
        let b = &m.snapshot(1)[0];
        assert_eq!(
            value(b, &[("__name__", CALLS), ("operation", "a")]),
            Some(2.0)
        );
        assert_eq!(value(b, &[("__name__", CALLS), ("operation", "b")]), None);
    }
}
