//! Unit tests of OTLP traces: the mapping, every rejection, partial success.

use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope, KeyValueList};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

use super::*;

const START_NS: u64 = 1_705_314_600_000_000_000;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn good_span(name: &str) -> OtlpSpan {
    OtlpSpan {
        trace_id: vec![0x4b; 16],
        span_id: vec![0xa1; 8],
        name: name.into(),
        kind: 2,
        start_time_unix_nano: START_NS,
        end_time_unix_nano: START_NS + 1_000,
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, spans: Vec<OtlpSpan>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "orders.handlers".into(),
                    version: "0.9.1".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[test]
fn maps_every_field() {
    let mut span = good_span("process_payment");
    span.parent_span_id = vec![0xb2; 8];
    span.trace_state = "vendor=1".into();
    span.status = Some(Status {
        message: "card declined".into(),
        code: 2,
    });
    span.attributes = vec![
        kv("s", Value::StringValue("x".into())),
        kv("b", Value::BoolValue(true)),
        kv("i", Value::IntValue(-7)),
        kv("d", Value::DoubleValue(0.5)),
        kv("y", Value::BytesValue(vec![1, 2])),
        kv(
            "a",
            Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Value::IntValue(1)),
                }],
            }),
        ),
        kv(
            "k",
            Value::KvlistValue(KeyValueList {
                values: vec![kv("inner", Value::StringValue("v".into()))],
            }),
        ),
        KeyValue {
            key: "unset".into(),
            value: None,
            key_strindex: 0,
        },
    ];
    span.events = vec![Event {
        time_unix_nano: START_NS + 500,
        name: "exception".into(),
        attributes: vec![
            kv("exception.type", Value::StringValue("ValueError".into())),
            kv(
                "exception.message",
                Value::StringValue("card declined".into()),
            ),
            kv(
                "exception.stacktrace",
                Value::StringValue("Traceback...\nValueError: card declined\n".into()),
            ),
        ],
        dropped_attributes_count: 0,
    }];
    span.links = vec![
        Link {
            trace_id: vec![0x0a; 16],
            span_id: vec![0xb7; 8],
            trace_state: "t".into(),
            attributes: vec![kv("messaging.batch", Value::BoolValue(true))],
            ..Default::default()
        },
        // Invalid: dropped, the span kept.
        Link {
            trace_id: vec![0; 16],
            span_id: vec![0xb7; 8],
            ..Default::default()
        },
    ];
    let decoded = from_request(request(
        vec![kv("service.name", Value::StringValue("orders".into()))],
        vec![span],
    ));
    assert_eq!(decoded.rejected_spans, 0, "{}", decoded.error_message);
    let [s] = decoded.spans.as_slice() else {
        panic!("one span: {decoded:?}")
    };
    assert_eq!(s.trace_id, [0x4b; 16]);
    assert_eq!(s.parent_span_id, Some([0xb2; 8]));
    assert_eq!(s.trace_state, "vendor=1");
    assert_eq!(s.kind, SpanKind::Server);
    assert_eq!((s.start_ns, s.duration_ns()), (START_NS as i64, 1_000));
    assert!(s.is_error());
    assert_eq!(s.status.message, "card declined");
    assert_eq!(s.service, "orders");
    assert_eq!(
        (s.scope_name.as_str(), s.scope_version.as_str()),
        ("orders.handlers", "0.9.1")
    );
    assert_eq!(
        s.attributes,
        vec![
            ("s".into(), AttrValue::String("x".into())),
            ("b".into(), AttrValue::Bool(true)),
            ("i".into(), AttrValue::Int(-7)),
            ("d".into(), AttrValue::Double(0.5)),
            ("y".into(), AttrValue::Bytes(vec![1, 2])),
            ("a".into(), AttrValue::Array(vec![AttrValue::Int(1)])),
            (
                "k".into(),
                AttrValue::KvList(vec![("inner".into(), AttrValue::String("v".into()))])
            ),
            ("unset".into(), AttrValue::Empty),
        ]
    );
    let event = &s.events[0];
    assert_eq!(event.time_ns, START_NS as i64 + 500);
    assert_eq!(
        sightline_model::span::find_attribute(&event.attributes, "exception.stacktrace")
            .and_then(AttrValue::as_str),
        Some("Traceback...\nValueError: card declined\n")
    );
    assert_eq!(s.links.len(), 1);
    assert_eq!(s.links[0].trace_state, "t");
}

#[test]
fn service_defaults_to_unknown_service() {
    for resource in [
        vec![],
        vec![kv("service.name", Value::StringValue(String::new()))],
    ] {
        let decoded = from_request(request(resource, vec![good_span("x")]));
        assert_eq!(decoded.spans[0].service, SERVICE_UNKNOWN);
    }
    let mut no_resource = request(vec![], vec![good_span("x")]);
    no_resource.resource_spans[0].resource = None;
    no_resource.resource_spans[0].scope_spans[0].scope = None;
    let decoded = from_request(no_resource);
    assert_eq!(decoded.spans[0].service, SERVICE_UNKNOWN);
    assert_eq!(decoded.spans[0].scope_name, "");
}

#[test]
fn zero_parent_is_root() {
    let mut span = good_span("root");
    span.parent_span_id = vec![0; 8];
    let decoded = from_request(request(vec![], vec![span]));
    assert_eq!(decoded.spans[0].parent_span_id, None);
}

/// Every rejection: the bad span alone is counted and explained, the good ones kept.
#[test]
fn rejections_are_per_span() {
    let check = |edit: fn(&mut OtlpSpan), want: &str| {
        let mut bad = good_span("bad");
        edit(&mut bad);
        let decoded = from_request(request(
            vec![],
            vec![good_span("first"), bad, good_span("last")],
        ));
        assert_eq!(decoded.rejected_spans, 1, "{want}");
        assert_eq!(decoded.spans.len(), 2, "{want}");
        assert_eq!(
            decoded.error_message,
            format!("span \"bad\" (resource 1, scope 1, span 2): {want}")
        );
    };
    check(
        |s| s.trace_id = vec![1; 15],
        "trace id is 15 bytes, want 16",
    );
    check(|s| s.trace_id = vec![], "trace id is 0 bytes, want 16");
    check(|s| s.trace_id = vec![0; 16], "trace id is all zero");
    check(|s| s.span_id = vec![1; 9], "span id is 9 bytes, want 8");
    check(|s| s.span_id = vec![0; 8], "span id is all zero");
    check(
        |s| s.parent_span_id = vec![1; 4],
        "parent span id is 4 bytes, want 8 or none",
    );
    check(
        |s| s.end_time_unix_nano = s.start_time_unix_nano - 1,
        "span ends at 1705314599999999999 ns, before it starts at 1705314600000000000 ns",
    );
    check(
        |s| s.end_time_unix_nano = u64::MAX,
        "end time 18446744073709551615 ns is out of range",
    );
    check(
        |s| {
            s.events = vec![Event {
                time_unix_nano: u64::MAX,
                ..Default::default()
            }]
        },
        "event time 18446744073709551615 ns is out of range",
    );
}

#[test]
fn reasons_are_capped() {
    let spans = (0..20)
        .map(|_| OtlpSpan {
            trace_id: vec![],
            ..good_span("bad")
        })
        .collect();
    let decoded = from_request(request(vec![], spans));
    assert_eq!(decoded.rejected_spans, 20);
    assert_eq!(
        decoded.error_message.matches("span \"bad\"").count(),
        REJECTION_REASONS_MAX
    );
    assert!(
        decoded.error_message.ends_with("; and 12 more"),
        "{}",
        decoded.error_message
    );
}

#[test]
fn malformed_protobuf_fails_whole() {
    let e = decode_protobuf(&[0x0a, 0xff]).expect_err("truncated");
    assert_eq!(e.kind(), crate::ErrorKind::BadData);
    assert!(
        e.to_string().starts_with("decode otlp traces protobuf: "),
        "{e}"
    );
}

#[test]
fn json_with_bad_ids_rejects_span_alone() {
    let body = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[
        {"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"a1b2c3d4e5f60001","name":"ok","startTimeUnixNano":"1","endTimeUnixNano":"2"},
        {"traceId":"not hex!","spanId":"a1b2c3d4e5f60002","name":"bad","kind":"SPAN_KIND_SERVER"}
    ]}]}]}"#;
    let decoded = decode_json(body.as_bytes()).expect("repaired");
    assert_eq!(decoded.spans.len(), 1);
    assert_eq!(decoded.rejected_spans, 1);
    assert!(
        decoded.error_message.contains("trace id is 0 bytes"),
        "{}",
        decoded.error_message
    );
}
