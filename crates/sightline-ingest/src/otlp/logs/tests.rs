//! Unit tests of OTLP logs: the mapping, the JSON variants, protobuf, errors.

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};

use super::*;
use crate::ErrorKind;

const NOW_NS: i64 = 1_700_000_000_000_000_000;

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        key_strindex: 0,
    }
}

fn request(
    resource: Vec<KeyValue>,
    scope: &str,
    logs: Vec<OtlpLogRecord>,
) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: scope.into(),
                    ..Default::default()
                }),
                log_records: logs,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn pairs(record: &LogRecord) -> Vec<(&str, &str)> {
    record.metadata.iter().collect()
}

#[test]
fn maps_resource_scope_and_record() {
    let log = OtlpLogRecord {
        time_unix_nano: 1_544_712_660_300_000_000,
        severity_number: 17,
        severity_text: "Error".into(),
        body: Some(AnyValue {
            value: Some(Value::StringValue("payment failed".into())),
        }),
        attributes: vec![
            string_kv("http.method", "POST"),
            string_kv("host.name", "override"),
        ],
        trace_id: vec![0xAB; 16],
        span_id: vec![0xCD; 8],
        event_name: "payment.failed".into(),
        ..Default::default()
    };
    let resource = vec![
        string_kv("service.name", "checkout"),
        string_kv("deployment.environment.name", "prod"),
        string_kv("k8s.namespace.name", "shop"),
        string_kv("host.name", "node-1"),
        string_kv("k8s.pod.name", "checkout-7d9f"),
    ];
    let records =
        from_request(request(resource, "io.shop.checkout", vec![log]), NOW_NS).expect("valid");
    let [r] = records.as_slice() else {
        panic!("one record expected: {records:?}");
    };
    assert_eq!(r.timestamp_ns, 1_544_712_660_300_000_000);
    assert_eq!(
        r.labels.to_string(),
        r#"{deployment_environment_name="prod", k8s_namespace_name="shop", level="error", service="checkout"}"#
    );
    assert_eq!(r.line, "payment failed");
    assert_eq!(
        pairs(r),
        [
            ("host_name", "override"),
            ("k8s_pod_name", "checkout-7d9f"),
            ("scope_name", "io.shop.checkout"),
            ("http_method", "POST"),
            ("event_name", "payment.failed"),
            ("trace_id", "abababababababababababababababab"),
            ("span_id", "cdcdcdcdcdcdcdcd"),
        ]
    );
}

#[test]
fn defaults_and_fallbacks() {
    let logs = vec![
        OtlpLogRecord {
            observed_time_unix_nano: 42,
            severity_text: "WARNING".into(),
            ..Default::default()
        },
        OtlpLogRecord {
            severity_text: "Loud".into(),
            body: Some(AnyValue {
                value: Some(Value::IntValue(7)),
            }),
            ..Default::default()
        },
    ];
    let records = from_request(request(vec![], "", logs), NOW_NS).expect("valid");
    assert_eq!(records[0].timestamp_ns, 42);
    assert_eq!(
        records[0].labels.to_string(),
        r#"{level="warn", service="unknown_service"}"#
    );
    assert_eq!(records[0].line, "");
    assert!(records[0].metadata.is_empty());
    assert_eq!(records[1].timestamp_ns, NOW_NS);
    assert_eq!(records[1].labels.get("level"), Some("unknown"));
    assert_eq!(records[1].line, "7");
    assert_eq!(pairs(&records[1]), [("severity_text", "Loud")]);
}

#[test]
fn spec_example_json() {
    let body = include_str!("../../../tests/data/otlp/logs_spec_example.json");
    let records = decode_json(body.as_bytes(), NOW_NS).expect("valid");
    let [r] = records.as_slice() else {
        panic!("one record expected: {records:?}");
    };
    assert_eq!(
        r.labels.to_string(),
        r#"{level="info", service="my.service"}"#
    );
    assert_eq!(r.line, "Example log record");
    assert_eq!(r.metadata_value("int_attribute"), Some("10"));
    assert_eq!(
        r.metadata_value("trace_id"),
        Some("5b8efff798038103d269b633813fc60c")
    );
    assert_eq!(
        r.metadata_value("array_attribute"),
        Some(r#"["many","values"]"#)
    );
    assert_eq!(
        r.metadata_value("map_attribute_some_map_key"),
        Some("some value")
    );
}

/// One log record in an OTLP/JSON request.
fn json_request(record: &str) -> String {
    format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"svc"}}}}]}},"scopeLogs":[{{"logRecords":[{record}]}}]}}]}}"#
    )
}

fn decode_one_json(record: &str) -> Result<LogRecord, IngestError> {
    let mut records = decode_json(json_request(record).as_bytes(), NOW_NS)?;
    assert_eq!(records.len(), 1);
    Ok(records.remove(0))
}

#[test]
fn json_numbers_as_strings_or_numbers() {
    let r = decode_one_json(r#"{"timeUnixNano":"1544712660300000000","attributes":[{"key":"n","value":{"intValue":"10"}},{"key":"m","value":{"intValue":11}}]}"#)
        .expect("valid");
    assert_eq!(r.timestamp_ns, 1_544_712_660_300_000_000);
    assert_eq!(pairs(&r), [("n", "10"), ("m", "11")]);
    let r = decode_one_json(r#"{"timeUnixNano":1544712660300000000}"#).expect("valid");
    assert_eq!(r.timestamp_ns, 1_544_712_660_300_000_000);
}

#[test]
fn json_variants_the_crate_rejects_are_repaired() {
    let r = decode_one_json(
        r#"{"severityNumber":"SEVERITY_NUMBER_WARN","traceId":"W47/95gDgQPSabYzgT/GDA==","spanId":null,"body":{"kvlistValue":{}},"attributes":[{"key":"empty","value":{"arrayValue":{}}},{"key":"d","value":{"doubleValue":"NaN"}},{"key":"e","value":{"doubleValue":"1.5"}},{"value":{"stringValue":"no key"}}]}"#,
    )
    .expect("repaired");
    assert_eq!(r.labels.get("level"), Some("warn"));
    assert_eq!(r.line, "{}");
    assert_eq!(
        pairs(&r),
        [
            ("empty", "[]"),
            ("d", "NaN"),
            ("e", "1.5"),
            ("_", "no key"),
            ("trace_id", "5b8efff798038103d269b633813fc60c")
        ]
    );
}

#[test]
fn json_errors_report_the_first_failure() {
    let e = decode_json(b"{\"resourceLogs\": 5}", NOW_NS).expect_err("bad shape");
    assert_eq!(e.kind(), ErrorKind::BadData);
    assert!(
        e.to_string()
            .starts_with("decode otlp logs json: invalid type: integer `5`"),
        "{e}"
    );
    let e = decode_json(b"{", NOW_NS).expect_err("bad syntax");
    assert_eq!(
        e.to_string(),
        "decode otlp logs json: EOF while parsing an object at line 1 column 1"
    );
    let e = decode_one_json(r#"{"traceId":"zz"}"#).expect_err("bad id");
    assert!(e.to_string().starts_with("decode otlp logs json: "), "{e}");
    assert_eq!(decode_json(b"{}", NOW_NS), Ok(vec![]));
}

#[test]
fn protobuf_round_trip_and_errors() {
    let log = OtlpLogRecord {
        time_unix_nano: 5,
        body: Some(AnyValue {
            value: Some(Value::StringValue("hello".into())),
        }),
        ..Default::default()
    };
    let body = request(vec![string_kv("service.name", "svc")], "s", vec![log]).encode_to_vec();
    let records = decode_protobuf(&body, NOW_NS).expect("valid");
    assert_eq!(records[0].line, "hello");
    assert_eq!(records[0].timestamp_ns, 5);
    let e = decode_protobuf(&body[..body.len() - 3], NOW_NS).expect_err("truncated");
    assert!(
        e.to_string()
            .starts_with("decode otlp logs protobuf: failed to decode Protobuf message"),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::BadData);
}

#[test]
fn record_errors_name_their_position() {
    let ok = OtlpLogRecord::default();
    let long = OtlpLogRecord {
        body: Some(AnyValue {
            value: Some(Value::StringValue(
                "x".repeat(sightline_model::log::LOG_LINE_BYTES_MAX + 1),
            )),
        }),
        ..Default::default()
    };
    let e = from_request(request(vec![], "", vec![ok, long]), NOW_NS).expect_err("too long");
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert!(
        e.to_string()
            .starts_with("otlp logs: resource 1, scope 1, record 2: line is 262145 bytes"),
        "{e}"
    );
    let late = OtlpLogRecord {
        time_unix_nano: u64::MAX,
        ..Default::default()
    };
    let e = from_request(request(vec![], "", vec![late]), NOW_NS).expect_err("out of range");
    assert_eq!(
        e.to_string(),
        "otlp logs: resource 1, scope 1, record 1: timestamp \"18446744073709551615\": out of range"
    );
    let e = from_request(
        request(
            vec![string_kv("service.name", &"s".repeat(5000))],
            "",
            vec![],
        ),
        NOW_NS,
    )
    .expect_err("long label");
    assert!(
        e.to_string()
            .starts_with("otlp logs: resource 1: label \"service\" value is 5000 bytes"),
        "{e}"
    );
}
