//! Unit tests of OTLP metrics: each kind's series, labels, rejections, partial success.

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    DataPointFlags, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exemplar,
};
use sightline_model::is_stale_nan;

use super::*;

const T_NS: u64 = 1_700_000_000_123_456_789;
const T_MS: i64 = 1_700_000_000_123;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        key_strindex: 0,
    }
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        description: format!("{name} help"),
        unit: unit.into(),
        metadata: vec![],
        data: Some(data),
    }
}

fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "io.shop".into(),
                    version: "1.2".into(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn number(value: f64, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        time_unix_nano: T_NS,
        value: Some(NumberValue::AsDouble(value)),
        ..Default::default()
    }
}

/// `labels value` per sample, without the scope labels every series has.
fn lines(decoded: &OtlpMetricsDecoded) -> Vec<String> {
    let mut out = Vec::new();
    for s in &decoded.metrics.series {
        let mut labels = s.labels.clone();
        labels.remove("otel_scope_name");
        labels.remove("otel_scope_version");
        for sample in &s.samples {
            assert_eq!(sample.timestamp_ms, T_MS);
            out.push(format!("{labels} {}", sample.value));
        }
        for e in &s.exemplars {
            out.push(format!("  # {} {}@{}", e.labels, e.value, e.timestamp_ms));
        }
    }
    out
}

fn convert(metrics: Vec<Metric>) -> OtlpMetricsDecoded {
    let got = from_request(request(vec![], metrics));
    assert_eq!(got.rejected_data_points, 0, "{}", got.error_message);
    got
}

#[test]
fn gauges_and_sums() {
    let got = convert(vec![
        metric(
            "system.memory.utilization",
            "1",
            Data::Gauge(Gauge {
                data_points: vec![number(0.25, vec![kv("state", "used")])],
            }),
        ),
        metric(
            "http.server.requests",
            "{request}",
            Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    exemplars: vec![Exemplar {
                        time_unix_nano: T_NS - 1_000_000,
                        trace_id: vec![0xab; 16],
                        span_id: vec![0xcd; 8],
                        filtered_attributes: vec![kv("user.id", "u1")],
                        value: Some(exemplar::Value::AsInt(1)),
                    }],
                    ..number(7.0, vec![])
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
        ),
        metric(
            "queue.size",
            "",
            Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    value: Some(NumberValue::AsInt(-3)),
                    exemplars: vec![Exemplar {
                        value: Some(exemplar::Value::AsInt(1)),
                        ..Default::default()
                    }],
                    ..number(0.0, vec![])
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: false,
            }),
        ),
    ]);
    assert_eq!(
        lines(&got),
        [
            r#"{__name__="system_memory_utilization_ratio", state="used"} 0.25"#,
            r#"{__name__="http_server_requests_total"} 7"#,
            r#"  # {span_id="cdcdcdcdcdcdcdcd", trace_id="abababababababababababababababab", user_id="u1"} 1@1700000000122"#,
            r#"{__name__="queue_size"} -3"#,
        ]
    );
    let types: Vec<(&str, MetricType, &str)> = got
        .metrics
        .metadata
        .iter()
        .map(|m| (m.metric_family.as_str(), m.metric_type, m.unit.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            (
                "system_memory_utilization_ratio",
                MetricType::Gauge,
                "ratio"
            ),
            ("http_server_requests_total", MetricType::Counter, ""),
            ("queue_size", MetricType::Gauge, ""),
        ]
    );
    assert_eq!(
        got.metrics.metadata[0].help,
        "system.memory.utilization help"
    );
}

#[test]
fn histograms_become_cumulative_buckets() {
    let point = HistogramDataPoint {
        attributes: vec![kv("http.route", "/a")],
        time_unix_nano: T_NS,
        count: 6,
        sum: Some(2.5),
        bucket_counts: vec![1, 2, 0, 3],
        explicit_bounds: vec![0.1, 0.5, 1.0],
        exemplars: vec![
            Exemplar {
                value: Some(exemplar::Value::AsDouble(0.3)),
                trace_id: vec![1; 16],
                ..Default::default()
            },
            Exemplar {
                value: Some(exemplar::Value::AsDouble(7.0)),
                trace_id: vec![2; 16],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let got = convert(vec![metric(
        "http.server.request.duration",
        "s",
        Data::Histogram(Histogram {
            data_points: vec![point],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    )]);
    let name = "http_server_request_duration_seconds";
    assert_eq!(
        lines(&got),
        [
            format!(r#"{{__name__="{name}_bucket", http_route="/a", le="0.1"}} 1"#),
            format!(r#"{{__name__="{name}_bucket", http_route="/a", le="0.5"}} 3"#),
            format!(r#"  # {{trace_id="01010101010101010101010101010101"}} 0.3@{T_MS}"#),
            format!(r#"{{__name__="{name}_bucket", http_route="/a", le="1.0"}} 3"#),
            format!(r#"{{__name__="{name}_bucket", http_route="/a", le="+Inf"}} 6"#),
            format!(r#"  # {{trace_id="02020202020202020202020202020202"}} 7@{T_MS}"#),
            format!(r#"{{__name__="{name}_sum", http_route="/a"}} 2.5"#),
            format!(r#"{{__name__="{name}_count", http_route="/a"}} 6"#),
        ]
    );
    assert_eq!(got.metrics.metadata[0].metric_family, name);
    assert_eq!(got.metrics.metadata[0].metric_type, MetricType::Histogram);
    assert_eq!(got.metrics.metadata[0].unit, "seconds");
}

fn exponential(point: ExponentialHistogramDataPoint) -> Vec<String> {
    let got = convert(vec![metric(
        "latency",
        "",
        Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint {
                time_unix_nano: T_NS,
                ..point
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    )]);
    lines(&got)
        .into_iter()
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?.to_string();
            Some(format!("{le} {}", l.rsplit(' ').next()?))
        })
        .collect()
}

#[test]
fn exponential_histograms_become_classic_buckets() {
    // Scale 0: positive bucket i holds (2^i, 2^(i+1)], negative bucket i [-2^(i+1), -2^i).
    let got = exponential(ExponentialHistogramDataPoint {
        count: 10,
        sum: Some(12.0),
        scale: 0,
        zero_count: 1,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![2, 0, 3],
        }),
        negative: Some(Buckets {
            offset: 1,
            bucket_counts: vec![3, 1],
        }),
        ..Default::default()
    });
    assert_eq!(
        got,
        [
            "-4.0 1", "-2.0 4", "0.0 5", "2.0 7", "4.0 7", "8.0 10", "+Inf 10"
        ]
    );
    // Scale 10 is merged down to 8: four buckets become one.
    let got = exponential(ExponentialHistogramDataPoint {
        count: 4,
        scale: 10,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![1, 1, 1, 1],
        }),
        ..Default::default()
    });
    assert_eq!(got, ["0.0 0", "1.0027112750502025 4", "+Inf 4"]);
    // Too many buckets are merged until they fit.
    let got = exponential(ExponentialHistogramDataPoint {
        count: 1000,
        scale: 3,
        zero_threshold: 1e-9,
        positive: Some(Buckets {
            offset: -500,
            bucket_counts: vec![1; 1000],
        }),
        ..Default::default()
    });
    assert!(
        got.len() <= points::EXPONENTIAL_BUCKETS_MAX + 2,
        "{}",
        got.len()
    );
    // Buckets below the zero threshold fold into the zero bucket.
    assert!(got[0].starts_with("1e-09 "), "{got:?}");
    assert_eq!(got.last().map(String::as_str), Some("+Inf 1000"));
    let counts: Vec<f64> = got
        .iter()
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{got:?}");
}

#[test]
fn summaries() {
    let got = convert(vec![metric(
        "rpc.duration",
        "ms",
        Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                time_unix_nano: T_NS,
                count: 10,
                sum: 55.5,
                quantile_values: vec![
                    ValueAtQuantile {
                        quantile: 0.5,
                        value: 4.0,
                    },
                    ValueAtQuantile {
                        quantile: 1.0,
                        value: 9.0,
                    },
                ],
                ..Default::default()
            }],
        }),
    )]);
    assert_eq!(
        lines(&got),
        [
            r#"{__name__="rpc_duration_milliseconds", quantile="0.5"} 4"#,
            r#"{__name__="rpc_duration_milliseconds", quantile="1.0"} 9"#,
            r#"{__name__="rpc_duration_milliseconds_sum"} 55.5"#,
            r#"{__name__="rpc_duration_milliseconds_count"} 10"#,
        ]
    );
}

#[test]
fn resource_becomes_job_instance_and_target_info() {
    let resource = vec![
        kv("service.name", "checkout"),
        kv("service.namespace", "shop"),
        kv("service.instance.id", "pod-1"),
        kv("host.name", "node-7"),
        kv("k8s.pod.name", "checkout-7d9f"),
    ];
    let later = NumberDataPoint {
        time_unix_nano: T_NS + 5_000_000,
        ..number(1.0, vec![kv("job", "overridden")])
    };
    let got = from_request(request(
        resource,
        vec![metric(
            "up",
            "",
            Data::Gauge(Gauge {
                data_points: vec![number(1.0, vec![]), later],
            }),
        )],
    ));
    let series: Vec<String> = got
        .metrics
        .series
        .iter()
        .map(|s| format!("{} @{}", s.labels, s.samples[0].timestamp_ms))
        .collect();
    assert_eq!(
        series,
        [
            format!(
                r#"{{__name__="up", instance="pod-1", job="shop/checkout", otel_scope_name="io.shop", otel_scope_version="1.2"}} @{T_MS}"#
            ),
            format!(
                r#"{{__name__="up", instance="pod-1", job="shop/checkout", otel_scope_name="io.shop", otel_scope_version="1.2"}} @{}"#,
                T_MS + 5
            ),
            format!(
                r#"{{__name__="target_info", host_name="node-7", instance="pod-1", job="shop/checkout", k8s_pod_name="checkout-7d9f"}} @{}"#,
                T_MS + 5
            ),
        ]
    );
    assert_eq!(
        got.metrics
            .metadata
            .iter()
            .map(|m| m.metric_family.as_str())
            .collect::<Vec<_>>(),
        ["up", "target_info"]
    );
}

#[test]
fn no_recorded_value_is_a_stale_marker() {
    let point = HistogramDataPoint {
        time_unix_nano: T_NS,
        count: 3,
        sum: Some(1.0),
        bucket_counts: vec![3, 0],
        explicit_bounds: vec![1.0],
        flags: DataPointFlags::NoRecordedValueMask as u32,
        ..Default::default()
    };
    let gauge = NumberDataPoint {
        value: None,
        flags: 1,
        ..number(0.0, vec![])
    };
    let got = convert(vec![
        metric(
            "h",
            "",
            Data::Histogram(Histogram {
                data_points: vec![point],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
        ),
        metric(
            "g",
            "",
            Data::Gauge(Gauge {
                data_points: vec![gauge],
            }),
        ),
    ]);
    assert_eq!(got.metrics.series.len(), 5);
    assert!(
        got.metrics
            .series
            .iter()
            .all(|s| is_stale_nan(s.samples[0].value))
    );
}

#[test]
fn delta_and_bad_points_are_rejected_and_the_rest_kept() {
    let delta = metric(
        "jobs.done",
        "",
        Data::Sum(Sum {
            data_points: vec![
                number(1.0, vec![]),
                number(2.0, vec![]),
                number(3.0, vec![]),
            ],
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: true,
        }),
    );
    let unspecified = metric(
        "h",
        "",
        Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint::default()],
            aggregation_temporality: 0,
        }),
    );
    let mixed = metric(
        "temp",
        "Cel",
        Data::Gauge(Gauge {
            data_points: vec![
                number(21.5, vec![]),
                NumberDataPoint {
                    time_unix_nano: 0,
                    ..number(1.0, vec![])
                },
                NumberDataPoint {
                    value: None,
                    ..number(1.0, vec![])
                },
            ],
        }),
    );
    let bad_histogram = metric(
        "sizes",
        "By",
        Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: T_NS,
                bucket_counts: vec![1, 2],
                explicit_bounds: vec![1.0, 2.0],
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    );
    let nameless = metric(
        "...",
        "",
        Data::Gauge(Gauge {
            data_points: vec![number(1.0, vec![])],
        }),
    );
    let got = from_request(request(
        vec![],
        vec![delta, unspecified, mixed, bad_histogram, nameless],
    ));
    assert_eq!(got.rejected_data_points, 8);
    assert_eq!(lines(&got), [r#"{__name__="temp_celsius"} 21.5"#]);
    assert_eq!(
        got.error_message,
        "metric \"jobs.done\" (resource 1, scope 1): delta temporality is not supported, send \
         cumulative (3 data points rejected); metric \"h\" (resource 1, scope 1): aggregation \
         temporality is unspecified (1 data points rejected); metric \"temp\" (resource 1, \
         scope 1), data point 2: data point has no time_unix_nano; metric \"temp\" (resource \
         1, scope 1), data point 3: data point has no value; metric \"sizes\" (resource 1, \
         scope 1), data point 1: 2 bucket counts for 2 explicit bounds; expected 3; metric \
         \"...\" (resource 1, scope 1): metric name has no letter or digit (1 data points \
         rejected)"
    );
}

#[test]
fn reasons_are_capped() {
    let metrics = (0..REJECTION_REASONS_MAX + 3)
        .map(|i| {
            metric(
                &format!("m{i}"),
                "",
                Data::Sum(Sum {
                    data_points: vec![number(1.0, vec![])],
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                    is_monotonic: true,
                }),
            )
        })
        .collect();
    let got = from_request(request(vec![], metrics));
    assert_eq!(got.rejected_data_points, REJECTION_REASONS_MAX as i64 + 3);
    assert!(
        got.error_message.ends_with("; and 3 more"),
        "{}",
        got.error_message
    );
}

#[test]
fn attribute_keys_are_sanitised() {
    let got = convert(vec![metric(
        "g",
        "",
        Data::Gauge(Gauge {
            data_points: vec![number(
                1.0,
                vec![
                    kv("__name__", "x"),
                    kv("2xx", "a"),
                    kv("a.b", "1"),
                    kv("a_b", "2"),
                    kv("le", "not a bucket"),
                ],
            )],
        }),
    )]);
    assert_eq!(
        lines(&got),
        [r#"{__name__="g", a_b="1;2", key_2xx="a", key__name__="x", le="not a bucket"} 1"#]
    );
}

#[test]
fn protobuf_and_json_bodies() {
    let req = request(
        vec![kv("service.name", "api")],
        vec![metric(
            "g",
            "",
            Data::Gauge(Gauge {
                data_points: vec![number(1.5, vec![])],
            }),
        )],
    );
    let direct = from_request(req.clone());
    assert_eq!(decode_protobuf(&req.encode_to_vec()), Ok(direct.clone()));
    let json = serde_json::to_string(&req).expect("serialise");
    assert_eq!(decode_json(json.as_bytes()), Ok(direct));
    let e = decode_protobuf(b"\x0a\xff").expect_err("bad protobuf");
    assert!(
        e.to_string().starts_with("decode otlp metrics protobuf: "),
        "{e}"
    );
}
