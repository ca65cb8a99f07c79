//! Golden tests of the span decoders: real payloads under `tests/data/` decoded and compared
//! with the expected spans in `<payload>.golden.json` beside them (ids as hex, attribute
//! values as `{"Type": value}`).
//!
//! After an intended change of the output, regenerate with
//! `SIGHTLINE_UPDATE_GOLDEN=1 cargo test -p sightline-ingest --test golden_traces` and review
//! the diff like code. How the payloads were made is in `tests/data/README.md`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sightline_ingest::otlp::traces::TracesDecoded;
use sightline_ingest::{otlp, zipkin};
use sightline_model::span::{find_attribute, hex_lower};
use sightline_model::{AttrValue, Span, SpanEvent, SpanKind, SpanLink, StatusCode};

fn data_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(relative)
}

fn read(relative: &str) -> Vec<u8> {
    let path = data_path(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn attrs_json(attributes: &[(String, AttrValue)]) -> Value {
    attributes
        .iter()
        .map(|(k, v)| json!([k, serde_json::to_value(v).expect("serialise value")]))
        .collect()
}

fn event_json(e: &SpanEvent) -> Value {
    json!({"time_ns": e.time_ns, "name": e.name, "attributes": attrs_json(&e.attributes)})
}

fn link_json(l: &SpanLink) -> Value {
    json!({
        "trace_id": hex_lower(&l.trace_id),
        "span_id": hex_lower(&l.span_id),
        "trace_state": l.trace_state,
        "attributes": attrs_json(&l.attributes),
    })
}

fn span_json(s: &Span) -> Value {
    json!({
        "trace_id": s.trace_id_hex(),
        "span_id": s.span_id_hex(),
        "parent_span_id": s.parent_span_id_hex(),
        "trace_state": s.trace_state,
        "name": s.name,
        "kind": s.kind.as_str(),
        "start_ns": s.start_ns,
        "end_ns": s.end_ns,
        "status": {"code": s.status.code.as_str(), "message": s.status.message},
        "service": s.service,
        "resource": attrs_json(&s.resource),
        "scope": [s.scope_name, s.scope_version],
        "attributes": attrs_json(&s.attributes),
        "events": s.events.iter().map(event_json).collect::<Vec<_>>(),
        "links": s.links.iter().map(link_json).collect::<Vec<_>>(),
    })
}

fn decoded_json(d: &TracesDecoded) -> Value {
    json!({
        "spans": d.spans.iter().map(span_json).collect::<Vec<_>>(),
        "rejected_spans": d.rejected_spans,
        "error_message": d.error_message,
    })
}

/// Compares `got` with the golden of `fixture`, or rewrites it when asked to.
fn check_golden(fixture: &str, got: &Value) {
    let path = data_path(&format!("{fixture}.golden.json"));
    let text = serde_json::to_string_pretty(got).expect("serialise golden") + "\n";
    if std::env::var_os("SIGHTLINE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e} (run with SIGHTLINE_UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert!(
        text == want,
        "{fixture} decodes differently from {}:\n{text}",
        path.display()
    );
}

fn by_name<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?}"))
}

/// The seed's `handle_order` trace from the Python SDK: the tree, the error and the
/// recorded exception, and then every field through the golden.
#[test]
fn otlp_python_sdk_handle_order_protobuf() {
    let fixture = "otlp/python_sdk_traces.pb";
    let decoded = otlp::traces::decode_protobuf(&read(fixture)).expect("valid fixture");
    assert_eq!(decoded.rejected_spans, 0, "{}", decoded.error_message);
    let spans = &decoded.spans;
    assert_eq!(spans.len(), 5);
    let root = by_name(spans, "handle_order");
    assert!(root.is_root());
    assert_eq!(
        (root.kind, root.service.as_str()),
        (SpanKind::Server, "orders")
    );
    for child in [
        "validate_order",
        "check_inventory",
        "process_payment",
        "send_confirmation",
    ] {
        let span = by_name(spans, child);
        assert_eq!(span.parent_span_id, Some(root.span_id), "{child}");
        assert_eq!(span.trace_id, root.trace_id, "{child}");
        assert!(
            span.start_ns >= root.start_ns && span.end_ns <= root.end_ns,
            "{child}"
        );
    }
    let payment = by_name(spans, "process_payment");
    assert_eq!(payment.status.code, StatusCode::Error);
    assert_eq!(payment.status.message, "card declined");
    let exception = payment
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("recorded exception");
    let attr = |k| find_attribute(&exception.attributes, k).and_then(AttrValue::as_str);
    assert_eq!(attr("exception.type"), Some("ValueError"));
    assert_eq!(attr("exception.message"), Some("card declined"));
    assert_eq!(
        attr("exception.stacktrace"),
        Some("ValueError: card declined\n")
    );
    assert_eq!(by_name(spans, "send_confirmation").links.len(), 1);
    check_golden(fixture, &decoded_json(&decoded));
}

/// The same request as OTLP/JSON (hex ids, integer enums, 64-bit integers as strings)
/// decodes to the same spans.
#[test]
fn otlp_python_sdk_handle_order_json_matches_protobuf() {
    let from_json =
        otlp::traces::decode_json(&read("otlp/python_sdk_traces.json")).expect("valid fixture");
    let from_protobuf =
        otlp::traces::decode_protobuf(&read("otlp/python_sdk_traces.pb")).expect("valid");
    assert_eq!(from_json, from_protobuf);
}

/// Protobuf's generic JSON printer (enum names, base64 ids) decodes to the same spans.
#[test]
fn otlp_python_sdk_handle_order_protojson_matches_protobuf() {
    let from_json = otlp::traces::decode_json(&read("otlp/python_sdk_traces.protojson.json"))
        .expect("repaired fixture");
    let from_protobuf =
        otlp::traces::decode_protobuf(&read("otlp/python_sdk_traces.pb")).expect("valid");
    assert_eq!(from_json, from_protobuf);
}

/// A hand-written Zipkin v2 body: a 64-bit trace across two services with a shared span,
/// error tags, annotations and endpoints, a 128-bit trace, and two bad spans rejected alone.
#[test]
fn zipkin_handle_order() {
    let fixture = "zipkin/handle_order.json";
    let decoded = zipkin::decode_json(&read(fixture)).expect("valid fixture");
    assert_eq!(decoded.spans.len(), 4);
    assert_eq!(decoded.rejected_spans, 2);
    let root = &decoded.spans[0];
    assert_eq!(root.trace_id_hex(), "0000000000000000463ac35c9f6413ad");
    assert!(root.is_error());
    assert_eq!(root.status.message, "card declined");
    check_golden(fixture, &decoded_json(&decoded));
}
