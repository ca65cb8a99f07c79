//! Property tests of every decoder: no input panics one, errors are only `BadData` or
//! `TooLarge`, and whatever decodes keeps the record invariants (valid, unique names; limits).
//!
//! Inputs are arbitrary bytes, real fixtures with random mutations (so the bytes get past the
//! first checks and into the deep parts), and generated well-formed payloads whose decoded
//! form is known.

use std::io::Write;

use proptest::prelude::*;
#[path = "support/mutate.rs"]
mod mutate;
use mutate::{mutate, mutations};
use sightline_ingest::loki_push::label_string::parse_label_string;
use sightline_ingest::{ErrorKind, IngestError, compression, es_bulk, loki_push, ndjson, otlp};
use sightline_model::labels::is_valid_label_name;
use sightline_model::log::{LOG_LINE_BYTES_MAX, LOG_METADATA_PAIRS_MAX, LOG_STREAM_LABELS_MAX};
use sightline_model::{Labels, LogRecord};

const NOW_NS: i64 = 1_700_000_000_000_000_000;

const NDJSON_FIXTURE: &[u8] = include_bytes!("data/ndjson/mixed_loggers.ndjson");
const PYTHON_NDJSON_FIXTURE: &[u8] = include_bytes!("data/ndjson/python_service.ndjson");
const OTLP_PB_FIXTURE: &[u8] = include_bytes!("data/otlp/python_sdk_logs.pb");
const OTLP_JSON_FIXTURE: &[u8] = include_bytes!("data/otlp/logs_spec_example.json");
const OTLP_PROTOJSON_FIXTURE: &[u8] = include_bytes!("data/otlp/python_sdk_logs.protojson.json");
const LOKI_JSON_FIXTURE: &[u8] = include_bytes!("data/loki_push/push.json");
const LOKI_PB_FIXTURE: &[u8] = include_bytes!("data/loki_push/push.pb.snappy");
const ES_FIXTURE: &[u8] = include_bytes!("data/es_bulk/filebeat.ndjson");

/// Checks what every decoded batch promises the store.
fn check_records(records: &[LogRecord]) {
    for r in records {
        assert!(r.labels.len() <= LOG_STREAM_LABELS_MAX);
        for (name, value) in r.labels.iter() {
            assert!(is_valid_label_name(name), "label name {name:?}");
            assert!(!value.is_empty(), "empty label {name:?}");
        }
        assert!(r.line.len() <= LOG_LINE_BYTES_MAX);
        assert!(r.metadata.len() <= LOG_METADATA_PAIRS_MAX);
        for (i, (name, value)) in r.metadata.iter().enumerate() {
            assert!(is_valid_label_name(name), "metadata name {name:?}");
            assert!(!value.is_empty(), "empty metadata {name:?}");
            assert!(
                r.metadata.iter().take(i).all(|(n, _)| n != name),
                "duplicate metadata name {name:?}"
            );
        }
    }
}

/// Checks an outcome: records keep the invariants, errors are of a known kind and say
/// something.
fn check_outcome(result: Result<Vec<LogRecord>, IngestError>) {
    match result {
        Ok(records) => check_records(&records),
        Err(e) => check_error(&e),
    }
}

fn check_error(e: &IngestError) {
    assert!(matches!(e.kind(), ErrorKind::BadData | ErrorKind::TooLarge));
    let text = e.to_string();
    assert!(!text.is_empty() && !text.ends_with('.'), "message {text:?}");
}

fn check_bulk(result: Result<es_bulk::BulkDecoded, IngestError>) {
    match result {
        Ok(decoded) => {
            check_records(&decoded.records);
            let made = decoded.items.iter().filter(|i| i.record.is_some()).count();
            assert_eq!(made, decoded.records.len());
            let response = es_bulk::bulk_response(&decoded.items, 1);
            assert_eq!(response["errors"].as_bool(), Some(decoded.has_errors()));
        }
        Err(e) => check_error(&e),
    }
}

fn snappy_block(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(data)
        .expect("compress")
}

fn loki_pb_raw() -> Vec<u8> {
    snap::raw::Decoder::new()
        .decompress_vec(LOKI_PB_FIXTURE)
        .expect("fixture is a snappy block")
}

fn decode_bodies(bytes: &[u8]) {
    check_outcome(ndjson::decode(bytes, NOW_NS));
    check_outcome(otlp::logs::decode_protobuf(bytes, NOW_NS));
    check_outcome(otlp::logs::decode_json(bytes, NOW_NS));
    check_outcome(loki_push::decode_json(bytes));
    check_outcome(loki_push::decode_protobuf(bytes));
    check_outcome(loki_push::decode_protobuf(&snappy_block(bytes)));
    check_bulk(es_bulk::decode(bytes, Some("idx"), NOW_NS));
    check_bulk(es_bulk::decode(bytes, None, NOW_NS));
    for encoding in [
        None,
        Some("gzip"),
        Some("deflate"),
        Some("snappy"),
        Some("zstd"),
        Some("br"),
    ] {
        if let Err(e) = compression::decode_body(encoding, bytes, 1 << 16) {
            check_error(&e);
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = parse_label_string(text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        decode_bodies(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[{}\\[\\]\":,0-9a-z\\\\ \n.eE+-]{0,400}") {
        decode_bodies(text.as_bytes());
    }

    #[test]
    fn mutated_ndjson_never_panics(edits in mutations()) {
        check_outcome(ndjson::decode(&mutate(NDJSON_FIXTURE, &edits), NOW_NS));
        check_outcome(ndjson::decode(&mutate(PYTHON_NDJSON_FIXTURE, &edits), NOW_NS));
    }

    #[test]
    fn mutated_otlp_never_panics(edits in mutations()) {
        check_outcome(otlp::logs::decode_protobuf(&mutate(OTLP_PB_FIXTURE, &edits), NOW_NS));
        check_outcome(otlp::logs::decode_json(&mutate(OTLP_JSON_FIXTURE, &edits), NOW_NS));
        check_outcome(otlp::logs::decode_json(&mutate(OTLP_PROTOJSON_FIXTURE, &edits), NOW_NS));
    }

    #[test]
    fn mutated_loki_push_never_panics(edits in mutations()) {
        check_outcome(loki_push::decode_json(&mutate(LOKI_JSON_FIXTURE, &edits)));
        check_outcome(loki_push::decode_protobuf(&mutate(LOKI_PB_FIXTURE, &edits)));
        // Mutating inside the compression reaches the protobuf decoder and label parser.
        check_outcome(loki_push::decode_protobuf(&snappy_block(&mutate(&loki_pb_raw(), &edits))));
    }

    #[test]
    fn mutated_es_bulk_never_panics(edits in mutations()) {
        check_bulk(es_bulk::decode(&mutate(ES_FIXTURE, &edits), Some("logs"), NOW_NS));
    }

    #[test]
    fn mutated_compressed_bodies_never_panic(edits in mutations()) {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(NDJSON_FIXTURE).expect("write to vec");
        let gzip = gzip.finish().expect("finish");
        let zstd = zstd::encode_all(NDJSON_FIXTURE, 1).expect("compress");
        for (encoding, body) in [("gzip", gzip), ("deflate", deflate(NDJSON_FIXTURE)), ("snappy", snappy_block(NDJSON_FIXTURE)), ("zstd", zstd)] {
            match compression::decode_body(Some(encoding), &mutate(&body, &edits), NDJSON_FIXTURE.len() * 2) {
                Ok(bytes) => check_outcome(ndjson::decode(&bytes, NOW_NS)),
                Err(e) => check_error(&e),
            }
        }
    }
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("write to vec");
    e.finish().expect("finish")
}

/// JSON values for generated log objects: scalars, and shallow arrays and objects.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z_.@]{1,8}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Keys that play roles, and others.
fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "message",
            "msg",
            "timestamp",
            "time",
            "ts",
            "@timestamp",
            "level",
            "severity",
            "levelname",
            "lvl",
            "service",
            "service.name",
            "service_name",
            "trace_id",
            "traceId",
            "span.id",
            "request_id",
        ])
        .prop_map(str::to_string),
        ".{1,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any JSON object decodes, or fails only on its timestamp; a string message with no
    /// timestamp is the line, and labels always have a service and a level.
    #[test]
    fn generated_json_objects_decode(fields in prop::collection::vec((json_key(), json_value()), 0..12)) {
        let object: serde_json::Map<String, serde_json::Value> = fields.into_iter().collect();
        let line = serde_json::Value::Object(object.clone()).to_string();
        match ndjson::decode(line.as_bytes(), NOW_NS) {
            Ok(records) => {
                check_records(&records);
                prop_assert_eq!(records.len(), 1);
                let r = &records[0];
                prop_assert!(r.labels.get("service").is_some());
                prop_assert!(r.labels.get("level").is_some());
                if let Some(serde_json::Value::String(message)) = object.get("message") {
                    prop_assert_eq!(&r.line, message);
                }
                if !object.contains_key("message") && !object.contains_key("msg") {
                    prop_assert_eq!(&r.line, &line);
                }
            }
            Err(e) => {
                check_error(&e);
                let text = e.to_string();
                prop_assert!(
                    text.starts_with("ndjson line 1: timestamp") || e.kind() == ErrorKind::TooLarge,
                    "{}", text
                );
            }
        }
    }

    /// A label set printed in Prometheus notation parses back to itself.
    #[test]
    fn label_strings_round_trip(pairs in prop::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,10}", ".{0,16}"), 0..6)) {
        let labels = Labels::from_pairs(pairs);
        let parsed = parse_label_string(&labels.to_string()).expect("display output parses");
        prop_assert_eq!(Labels::from_pairs(parsed), labels);
    }

    /// Loki JSON pushes keep every line, timestamp and label as sent.
    #[test]
    fn loki_json_round_trips(
        streams in prop::collection::vec(
            (prop::collection::btree_map("[a-z_]{1,8}", "[^\u{0}]{1,12}", 1..4),
             prop::collection::vec((any::<i64>(), ".{0,30}"), 0..5)),
            0..4)
    ) {
        let body = serde_json::json!({
            "streams": streams.iter().map(|(labels, entries)| serde_json::json!({
                "stream": labels,
                "values": entries.iter().map(|(ts, line)| serde_json::json!([ts.to_string(), line])).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        let records = loki_push::decode_json(body.to_string().as_bytes()).expect("valid push");
        check_records(&records);
        let want: Vec<(i64, &str)> = streams.iter().flat_map(|(_, e)| e.iter().map(|(ts, l)| (*ts, l.as_str()))).collect();
        let got: Vec<(i64, &str)> = records.iter().map(|r| (r.timestamp_ns, r.line.as_str())).collect();
        prop_assert_eq!(got, want);
    }

    /// Epoch nanoseconds printed as RFC 3339 parse back exactly.
    #[test]
    fn rfc3339_timestamps_round_trip(ns in -9_000_000_000_000_000_000i64..9_000_000_000_000_000_000i64) {
        let secs = ns.div_euclid(1_000_000_000);
        let nanos = u32::try_from(ns.rem_euclid(1_000_000_000)).expect("below 1e9");
        let time = chrono::DateTime::from_timestamp(secs, nanos).expect("in range");
        let text = time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        prop_assert_eq!(sightline_ingest::logs_common::timestamp_from_str(&text), Ok(ns));
    }
}

mod otlp_round_trip {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
    };
    use opentelemetry_proto::tonic::logs::v1::{
        LogRecord as OtlpLogRecord, ResourceLogs, ScopeLogs,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use proptest::prelude::*;
    use prost::Message;

    use super::{NOW_NS, check_records};

    fn any_value() -> impl Strategy<Value = AnyValue> {
        let leaf = prop_oneof![
            ".{0,12}".prop_map(Value::StringValue),
            any::<bool>().prop_map(Value::BoolValue),
            any::<i64>().prop_map(Value::IntValue),
            // serde_json (without `float_roundtrip`) may read a long double one ulp off, so
            // doubles here are short decimals that it reads exactly.
            any::<i32>().prop_map(|n| Value::DoubleValue(f64::from(n) / 1000.0)),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::BytesValue),
        ];
        let value = leaf.prop_recursive(2, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(|v| Value::ArrayValue(
                    ArrayValue {
                        values: v.into_iter().map(|v| AnyValue { value: Some(v) }).collect()
                    }
                )),
                prop::collection::vec(("[a-z.]{1,6}", inner), 0..3).prop_map(|kvs| {
                    Value::KvlistValue(KeyValueList {
                        values: kvs
                            .into_iter()
                            .map(|(k, v)| KeyValue {
                                key: k,
                                value: Some(AnyValue { value: Some(v) }),
                                key_strindex: 0,
                            })
                            .collect(),
                    })
                }),
            ]
        });
        value.prop_map(|v| AnyValue { value: Some(v) })
    }

    fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
        prop::collection::vec(
            (
                prop_oneof![
                    Just("service.name".to_string()),
                    Just("k8s.namespace.name".to_string()),
                    "[a-z.]{1,10}"
                ],
                any_value(),
            ),
            0..5,
        )
        .prop_map(|kvs| {
            kvs.into_iter()
                .map(|(k, v)| KeyValue {
                    key: k,
                    value: Some(v),
                    key_strindex: 0,
                })
                .collect()
        })
    }

    fn log_record() -> impl Strategy<Value = OtlpLogRecord> {
        (
            0..2_000_000_000_000_000_000u64,
            0..30i32,
            "[A-Za-z]{0,8}",
            prop::option::of(any_value()),
            attributes(),
            prop::collection::vec(any::<u8>(), 0..=16),
        )
            .prop_map(
                |(time, severity_number, severity_text, body, attributes, trace_id)| {
                    OtlpLogRecord {
                        time_unix_nano: time,
                        severity_number,
                        severity_text,
                        body,
                        attributes,
                        trace_id,
                        ..Default::default()
                    }
                },
            )
    }

    fn request() -> impl Strategy<Value = ExportLogsServiceRequest> {
        prop::collection::vec(
            (
                attributes(),
                "[a-z.]{0,8}",
                prop::collection::vec(log_record(), 0..4),
            ),
            0..3,
        )
        .prop_map(|resources| ExportLogsServiceRequest {
            resource_logs: resources
                .into_iter()
                .map(|(attributes, scope, logs)| ResourceLogs {
                    resource: Some(Resource {
                        attributes,
                        ..Default::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: scope,
                            ..Default::default()
                        }),
                        log_records: logs,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                })
                .collect(),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Protobuf, OTLP/JSON (as opentelemetry-proto writes it) and the gRPC path agree.
        #[test]
        fn protobuf_json_and_grpc_agree(req in request()) {
            let direct = sightline_ingest::otlp::logs::from_request(req.clone(), NOW_NS);
            let protobuf = sightline_ingest::otlp::logs::decode_protobuf(&req.encode_to_vec(), NOW_NS);
            let json_text = serde_json::to_string(&req).expect("serialise request");
            let json = sightline_ingest::otlp::logs::decode_json(json_text.as_bytes(), NOW_NS);
            if let Ok(records) = &direct {
                check_records(records);
            }
            prop_assert_eq!(&direct, &protobuf);
            prop_assert_eq!(&direct, &json, "json: {}", json_text);
        }
    }
}
