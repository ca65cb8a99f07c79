//! Unit tests of remote write: validation, errors, skipped histograms, limits.

use super::proto::{Exemplar as PbExemplar, Histogram, Label, Sample as PbSample, TimeSeries};
use super::*;
use crate::ErrorKind;
use crate::metrics_common::{EXEMPLAR_LABEL_CHARS_MAX, SERIES_LABELS_MAX};

const NOW_MS: i64 = 1_700_000_000_000;

fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(name, value)| Label {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect()
}

fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels(pairs),
        samples: samples
            .iter()
            .map(|(timestamp, value)| PbSample {
                value: *value,
                timestamp: *timestamp,
            })
            .collect(),
        ..Default::default()
    }
}

fn request(timeseries: Vec<TimeSeries>) -> WriteRequest {
    WriteRequest {
        timeseries,
        metadata: vec![],
    }
}

fn decode_request(req: &WriteRequest) -> Result<RemoteWriteDecoded, IngestError> {
    let body = encode(req).expect("encode");
    decode(&body, true, NOW_MS, FUTURE_MS_MAX_DEFAULT)
}

#[test]
fn decodes_series_samples_and_metadata() {
    let mut req = request(vec![
        series(
            &[
                ("job", "api"),
                ("__name__", "http_requests_total"),
                ("empty", ""),
            ],
            &[(NOW_MS - 15_000, 1.0), (NOW_MS, 2.5)],
        ),
        series(&[("__name__", "up")], &[(NOW_MS, f64::NAN)]),
    ]);
    req.metadata.push(proto::MetricMetadata {
        r#type: proto::MetricType::Counter as i32,
        metric_family_name: "http_requests_total".into(),
        help: "Requests.".into(),
        unit: String::new(),
    });
    req.metadata.push(proto::MetricMetadata {
        r#type: 42,
        metric_family_name: "odd".into(),
        ..Default::default()
    });
    req.metadata.push(proto::MetricMetadata {
        metric_family_name: "not valid".into(),
        ..Default::default()
    });
    let got = decode_request(&req).expect("valid request");
    let series = &got.metrics.series;
    assert_eq!(series.len(), 2);
    assert_eq!(
        series[0].labels.to_string(),
        r#"{__name__="http_requests_total", job="api"}"#
    );
    assert_eq!(
        series[0].samples,
        [
            Sample {
                timestamp_ms: NOW_MS - 15_000,
                value: 1.0
            },
            Sample {
                timestamp_ms: NOW_MS,
                value: 2.5
            }
        ]
    );
    assert!(series[1].samples[0].value.is_nan());
    assert_eq!(
        got.metrics.metadata,
        [
            MetricMetadata {
                metric_family: "http_requests_total".into(),
                metric_type: MetricType::Counter,
                help: "Requests.".into(),
                unit: String::new(),
            },
            MetricMetadata {
                metric_family: "odd".into(),
                ..Default::default()
            }
        ]
    );
}

#[test]
fn uncompressed_bodies_decode_when_not_snappy() {
    let req = request(vec![series(&[("__name__", "up")], &[(NOW_MS, 1.0)])]);
    let got =
        decode(&req.encode_to_vec(), false, NOW_MS, FUTURE_MS_MAX_DEFAULT).expect("plain protobuf");
    assert_eq!(got.metrics.sample_count(), 1);
    let snappy = encode(&req).expect("encode");
    assert!(decode(&snappy, false, NOW_MS, FUTURE_MS_MAX_DEFAULT).is_err());
}

#[test]
fn skips_and_counts_native_histograms() {
    let mut mixed = series(&[("__name__", "latency")], &[(NOW_MS, 1.0)]);
    mixed.histograms = vec![Histogram::default(), Histogram::default()];
    let mut only = series(&[("__name__", "only_native")], &[]);
    only.histograms = vec![Histogram {
        schema: 3,
        timestamp: NOW_MS,
        ..Default::default()
    }];
    let got = decode_request(&request(vec![mixed, only])).expect("mixed request lands");
    assert_eq!(got.native_histogram_samples_skipped, 3);
    assert_eq!(got.metrics.series.len(), 1);
    assert_eq!(
        got.metrics.series[0].labels.get("__name__"),
        Some("latency")
    );
}

#[test]
fn keeps_exemplars_and_drops_long_ones() {
    let mut s = series(
        &[("__name__", "req_bucket"), ("le", "0.5")],
        &[(NOW_MS, 3.0)],
    );
    s.exemplars = vec![
        PbExemplar {
            labels: labels(&[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]),
            value: 0.31,
            timestamp: NOW_MS - 10,
        },
        PbExemplar {
            labels: labels(&[("trace_id", &"a".repeat(EXEMPLAR_LABEL_CHARS_MAX))]),
            value: 0.4,
            timestamp: NOW_MS,
        },
    ];
    let got = decode_request(&request(vec![s])).expect("valid");
    let exemplars = &got.metrics.series[0].exemplars;
    assert_eq!(exemplars.len(), 1);
    assert_eq!(
        exemplars[0].labels.to_string(),
        r#"{trace_id="4bf92f3577b34da6a3ce929d0e0e4736"}"#
    );
    assert_eq!(exemplars[0].timestamp_ms, NOW_MS - 10);
    assert_eq!(got.exemplars_dropped, 1);
}

#[test]
fn future_samples_fail_with_series_and_timestamp() {
    let edge = NOW_MS + FUTURE_MS_MAX_DEFAULT;
    let ok = request(vec![series(&[("__name__", "x")], &[(edge, 1.0)])]);
    assert!(decode_request(&ok).is_ok());
    let late = request(vec![series(
        &[("__name__", "x"), ("job", "a")],
        &[(NOW_MS, 1.0), (edge + 1, 1.0)],
    )]);
    let e = decode_request(&late).expect_err("too far in the future");
    assert_eq!(e.kind(), ErrorKind::BadData);
    assert_eq!(
        e.to_string(),
        format!(
            "decode remote-write request: series {{__name__=\"x\", job=\"a\"}}: sample timestamp \
             {} ms is more than 600000 ms after now ({NOW_MS} ms)",
            edge + 1
        )
    );
    let custom = decode(
        &encode(&late).expect("encode"),
        true,
        NOW_MS,
        60 * 60 * 1000,
    );
    assert!(custom.is_ok());
}

#[test]
fn error_messages() {
    let check = |pairs: &[(&str, &str)], want: &str| {
        let e = decode_request(&request(vec![series(pairs, &[(NOW_MS, 1.0)])]))
            .expect_err("invalid series");
        assert_eq!(e.to_string(), want, "{pairs:?}");
        assert_eq!(e.kind(), ErrorKind::BadData);
    };
    check(
        &[("__name__", "x"), ("1a", "v")],
        r#"decode remote-write request: series {__name__="x", 1a="v"}: label name "1a" is not valid"#,
    );
    check(
        &[("__name__", "x"), ("a", "1"), ("a", "2")],
        r#"decode remote-write request: series {__name__="x", a="1", a="2"}: duplicate label name "a""#,
    );
    check(
        &[("job", "api")],
        r#"decode remote-write request: series {job="api"}: series has no metric name (label __name__)"#,
    );
    check(
        &[("__name__", "http.requests")],
        r#"decode remote-write request: series {__name__="http.requests"}: metric name "http.requests" is not valid"#,
    );
    let mut bad_exemplar = series(&[("__name__", "x")], &[(NOW_MS, 1.0)]);
    bad_exemplar.exemplars = vec![PbExemplar {
        labels: labels(&[("trace-id", "abc")]),
        value: 1.0,
        timestamp: NOW_MS,
    }];
    let e = decode_request(&request(vec![bad_exemplar])).expect_err("bad exemplar");
    assert_eq!(
        e.to_string(),
        r#"decode remote-write request: series {__name__="x"}, exemplar 1: label name "trace-id" is not valid"#
    );
}

#[test]
fn body_errors() {
    let e = decode(b"\xff\xff\xff\xff\xff", true, NOW_MS, 0).expect_err("corrupt snappy");
    assert!(
        e.to_string()
            .starts_with("decode remote-write request: snappy: "),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::BadData);
    let not_protobuf = snap::raw::Encoder::new()
        .compress_vec(b"\x0a\xff\xff")
        .expect("compress");
    let e = decode(&not_protobuf, true, NOW_MS, 0).expect_err("bad protobuf");
    assert!(
        e.to_string()
            .starts_with("decode remote-write request: protobuf: "),
        "{e}"
    );
    let zeros = vec![0u8; REMOTE_WRITE_DECOMPRESSED_BYTES_MAX + 1];
    let bomb = snap::raw::Encoder::new()
        .compress_vec(&zeros)
        .expect("compress");
    let e = decode(&bomb, true, NOW_MS, 0).expect_err("too large");
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    let e = decode(&zeros, false, NOW_MS, 0).expect_err("too large");
    assert_eq!(e.kind(), ErrorKind::TooLarge);
}

#[test]
fn too_many_labels_is_too_large() {
    let names: Vec<String> = (0..SERIES_LABELS_MAX).map(|i| format!("l{i}")).collect();
    let mut pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    pairs.push(("__name__", "x"));
    let e = decode_request(&request(vec![series(&pairs, &[(NOW_MS, 1.0)])]))
        .expect_err("too many labels");
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert!(
        e.to_string()
            .ends_with("129 labels, more than the limit of 128"),
        "{e}"
    );
}

#[test]
fn request_from_series_round_trips() {
    let req = request(vec![series(
        &[("__name__", "x"), ("a", "b")],
        &[(NOW_MS, 1.0), (NOW_MS + 1, 2.0)],
    )]);
    let decoded = decode_request(&req).expect("valid");
    let again = decode_request(&request_from_series(&decoded.metrics.series)).expect("valid");
    assert_eq!(again, decoded);
}
