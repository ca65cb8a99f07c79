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
    decode(
        &body,
        true,
        NOW_MS,
        FUTURE_MS_MAX_DEFAULT,
        &Default::default(),
    )
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
    let got = decode(
        &req.encode_to_vec(),
        false,
        NOW_MS,
        FUTURE_MS_MAX_DEFAULT,
        &Default::default(),
    )
    .expect("plain protobuf");
    assert_eq!(got.metrics.sample_count(), 1);
    let snappy = encode(&req).expect("encode");
    assert!(
        decode(
            &snappy,
            false,
            NOW_MS,
            FUTURE_MS_MAX_DEFAULT,
            &Default::default()
        )
        .is_err()
    );
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
        &Default::default(),
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
    let e = decode(
        b"\xff\xff\xff\xff\xff",
        true,
        NOW_MS,
        0,
        &Default::default(),
    )
    .expect_err("corrupt snappy");
    assert!(
        e.to_string()
            .starts_with("decode remote-write request: snappy: "),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::BadData);
    let not_protobuf = snap::raw::Encoder::new()
        .compress_vec(b"\x0a\xff\xff")
        .expect("compress");
    let e = decode(&not_protobuf, true, NOW_MS, 0, &Default::default()).expect_err("bad protobuf");
    assert!(
        e.to_string()
            .starts_with("decode remote-write request: protobuf: "),
        "{e}"
    );
    let zeros = vec![0u8; REMOTE_WRITE_DECOMPRESSED_BYTES_MAX + 1];
    let bomb = snap::raw::Encoder::new()
        .compress_vec(&zeros)
        .expect("compress");
    let e = decode(&bomb, true, NOW_MS, 0, &Default::default()).expect_err("too large");
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    let e = decode(&zeros, false, NOW_MS, 0, &Default::default()).expect_err("too large");
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

/// The reference decoder: `prost` into owned types, then the same checks, one series at a
/// time. The hand-written wire decoder must agree with it on every request.
fn reference_decode(request: WriteRequest) -> Result<RemoteWriteDecoded, IngestError> {
    let latest_ms = NOW_MS.saturating_add(FUTURE_MS_MAX_DEFAULT);
    let mut out = RemoteWriteDecoded::default();
    for series in request.timeseries {
        out.native_histogram_samples_skipped += series.histograms.len() as u64;
        let mut pairs: Vec<(String, String)> = series
            .labels
            .into_iter()
            .map(|l| (l.name, l.value))
            .collect();
        let labels = crate::metrics_common::series_labels(&mut pairs).map_err(|reason| {
            IngestError::record(format!("{OP}: series {}", pairs_text(&pairs)), reason)
        })?;
        let at = || format!("{OP}: series {}", excerpt(&labels.to_string(), 300));
        if let Some(s) = series.samples.iter().find(|s| s.timestamp > latest_ms) {
            let reason = RecordError::SampleTooFarInFuture {
                timestamp_ms: s.timestamp,
                now_ms: NOW_MS,
                future_ms_max: FUTURE_MS_MAX_DEFAULT,
            };
            return Err(IngestError::record(at(), reason));
        }
        let samples: Vec<Sample> = series
            .samples
            .iter()
            .map(|s| Sample {
                timestamp_ms: s.timestamp,
                value: s.value,
            })
            .collect();
        let mut exemplars = Vec::new();
        for (i, e) in series.exemplars.into_iter().enumerate() {
            let pairs = e.labels.into_iter().map(|l| (l.name, l.value)).collect();
            match exemplar_labels(pairs) {
                Ok(Some(labels)) => exemplars.push(Exemplar {
                    labels,
                    value: e.value,
                    timestamp_ms: e.timestamp,
                }),
                Ok(None) => out.exemplars_dropped += 1,
                Err(reason) => {
                    return Err(IngestError::record(
                        format!("{}, exemplar {}", at(), i + 1),
                        reason,
                    ));
                }
            }
        }
        if samples.is_empty() && exemplars.is_empty() {
            continue;
        }
        out.metrics.series.push(SeriesSamples {
            labels,
            samples,
            exemplars,
        });
    }
    out.metrics.metadata = request
        .metadata
        .into_iter()
        .filter(|m| is_valid_metric_name(&m.metric_family_name))
        .map(|m| MetricMetadata {
            metric_type: metric_type(m.r#type),
            metric_family: m.metric_family_name,
            help: m.help,
            unit: m.unit,
        })
        .collect();
    Ok(out)
}

/// Both decoders' answers, as comparable text for errors (the kinds must agree too).
fn both(req: &WriteRequest, interner: &LabelInterner) -> (String, String) {
    let show = |r: Result<RemoteWriteDecoded, IngestError>| match r {
        Ok(d) => format!("{d:?}"),
        Err(e) => format!("{:?}: {e}", e.kind()),
    };
    let raw = req.encode_to_vec();
    let ours = decode_protobuf(&raw, NOW_MS, FUTURE_MS_MAX_DEFAULT, interner);
    // What prost reads back (it does not write default values: -0.0 comes back as 0.0).
    let read_back = WriteRequest::decode(raw.as_slice()).expect("prost reads its own bytes");
    (show(ours), show(reference_decode(read_back)))
}

mod agrees_with_prost {
    use super::*;
    use proptest::prelude::*;

    fn label() -> impl Strategy<Value = Label> {
        // Mostly valid names, sometimes an invalid or repeated one, sometimes empty values.
        (
            prop_oneof![
                8 => prop::sample::select(vec!["__name__", "job", "instance", "le", "a_b"]),
                1 => prop::sample::select(vec!["1a", "x-y", ""]),
            ],
            prop_oneof![
                6 => prop::sample::select(vec!["up", "api", "0.5", "http_requests_total"]),
                1 => prop::sample::select(vec!["", "bad.name", "ü"]),
            ],
        )
            .prop_map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
    }

    fn series() -> impl Strategy<Value = TimeSeries> {
        (
            prop::collection::vec(label(), 0..5),
            prop::collection::vec((-5i64..5, any::<f64>()), 0..4),
            prop::collection::vec(
                (prop::collection::vec(label(), 0..3), -5i64..5, any::<f64>()),
                0..2,
            ),
            0usize..2,
        )
            .prop_map(|(labels, samples, exemplars, histograms)| TimeSeries {
                labels,
                samples: samples
                    .into_iter()
                    .map(|(dt, value)| PbSample {
                        value,
                        // A step of FUTURE_MS_MAX_DEFAULT / 2 past now puts some too late.
                        timestamp: NOW_MS + dt * FUTURE_MS_MAX_DEFAULT / 2,
                    })
                    .collect(),
                exemplars: exemplars
                    .into_iter()
                    .map(|(labels, dt, value)| PbExemplar {
                        labels,
                        value,
                        timestamp: NOW_MS + dt,
                    })
                    .collect(),
                histograms: vec![Histogram::default(); histograms],
            })
    }

    fn metadata() -> impl Strategy<Value = proto::MetricMetadata> {
        (
            -1i32..9,
            prop::sample::select(vec!["up", "bad name", "", "x:y"]),
            ".{0,8}",
        )
            .prop_map(|(t, name, help)| proto::MetricMetadata {
                r#type: t,
                metric_family_name: name.into(),
                help,
                unit: "seconds".into(),
            })
    }

    proptest! {
        #[test]
        fn on_any_request(
            timeseries in prop::collection::vec(series(), 0..6),
            metadata in prop::collection::vec(metadata(), 0..3),
        ) {
            let req = WriteRequest { timeseries, metadata };
            let interner = LabelInterner::default();
            let (ours, reference) = both(&req, &interner);
            prop_assert_eq!(&ours, &reference);
            // Again, now that the interner holds the sets: the same answer.
            let (again, _) = both(&req, &interner);
            prop_assert_eq!(again, reference);
        }
    }
}

#[test]
fn a_known_series_shares_its_label_set() {
    let interner = LabelInterner::default();
    let req = request(vec![series(
        &[("__name__", "up"), ("job", "api")],
        &[(NOW_MS, 1.0)],
    )]);
    // Unsorted labels find the same set.
    let unsorted = request(vec![series(
        &[("job", "api"), ("__name__", "up")],
        &[(NOW_MS, 2.0)],
    )]);
    let raw = req.encode_to_vec();
    let first = decode_protobuf(&raw, NOW_MS, 0, &interner).expect("valid");
    let second = decode_protobuf(&raw, NOW_MS, 0, &interner).expect("valid");
    let third = decode_protobuf(&unsorted.encode_to_vec(), NOW_MS, 0, &interner).expect("valid");
    let l = &first.metrics.series[0].labels;
    assert!(l.ptr_eq(&second.metrics.series[0].labels));
    assert!(l.ptr_eq(&third.metrics.series[0].labels));
    assert_eq!(interner.len(), 1);
}

#[test]
fn unknown_fields_are_skipped_and_wrong_wire_types_fail() {
    let req = request(vec![series(&[("__name__", "up")], &[(NOW_MS, 1.0)])]);
    let mut raw = req.encode_to_vec();
    // An unknown field of each wire type at the top level: 15 varint, 14 fixed64,
    // 13 length-delimited, 12 fixed32.
    raw.extend_from_slice(&[15 << 3, 0x96, 0x01, (14 << 3) | 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    raw.extend_from_slice(&[(13 << 3) | 2, 2, b'h', b'i', (12 << 3) | 5, 1, 2, 3, 4]);
    let got = decode_protobuf(&raw, NOW_MS, 0, &LabelInterner::default()).expect("valid");
    assert_eq!(got.metrics.sample_count(), 1);
    // `timeseries` (field 1) as a varint.
    let e = decode_protobuf(&[0x08, 1], NOW_MS, 0, &LabelInterner::default())
        .expect_err("wrong wire type");
    assert_eq!(
        e.to_string(),
        "decode remote-write request: protobuf: field 1 has wire type Varint, expected Len at byte 1"
    );
    let e = decode_protobuf(&raw[..raw.len() - 3], NOW_MS, 0, &LabelInterner::default())
        .expect_err("truncated");
    assert!(e.to_string().contains("runs past the end"), "{e}");
}
