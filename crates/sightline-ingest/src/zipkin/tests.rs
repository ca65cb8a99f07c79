//! Unit tests of Zipkin v2 JSON: the mapping, every rejection, malformed bodies.

use super::*;

const ROOT: &str = r#""traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","timestamp":1705314600000000,"duration":1500"#;

fn decode_one(fields: &str) -> Span {
    let body = format!("[{{{ROOT}{fields}}}]");
    let decoded = decode_json(body.as_bytes()).expect("valid body");
    assert_eq!(decoded.rejected_spans, 0, "{}", decoded.error_message);
    decoded.spans.into_iter().next().expect("one span")
}

#[test]
fn maps_ids_times_and_service() {
    let s = decode_one(
        r#","name":"get /api","kind":"SERVER","localEndpoint":{"serviceName":"frontend"}"#,
    );
    assert_eq!(s.trace_id_hex(), "0000000000000000463ac35c9f6413ad");
    assert_eq!(s.span_id_hex(), "a2fb4a1d1a96d312");
    assert_eq!(s.parent_span_id, None);
    assert_eq!(
        (s.start_ns, s.end_ns),
        (1_705_314_600_000_000_000, 1_705_314_600_001_500_000)
    );
    assert_eq!(s.kind, SpanKind::Server);
    assert_eq!(s.service, "frontend");
    assert_eq!(
        s.resource,
        vec![("service.name".into(), AttrValue::String("frontend".into()))]
    );
    let s = decode_one("");
    assert_eq!(s.service, SERVICE_UNKNOWN);
    assert_eq!(s.kind, SpanKind::Unspecified);
    assert_eq!(s.duration_ns(), 1_500_000);
    let s = decode_one(
        r#","traceId":"5B8EFFF798038103D269B633813FC60C","parentId":"0000000000000000""#,
    );
    assert_eq!(s.trace_id_hex(), "5b8efff798038103d269b633813fc60c");
    assert_eq!(s.parent_span_id, None);
    let s = decode_one(r#","parentId":"b7ad6b7169203331""#);
    assert_eq!(s.parent_span_id_hex().as_deref(), Some("b7ad6b7169203331"));
}

#[test]
fn maps_tags_endpoints_annotations_and_flags() {
    let s = decode_one(
        r#","tags":{"z":"last","error":"boom","a":1},"remoteEndpoint":{"serviceName":"db","ipv4":"10.0.0.1","port":5432},"localEndpoint":{"ipv6":"::1"},"annotations":[{"timestamp":1705314600000500,"value":"cs"}],"shared":true,"debug":false"#,
    );
    assert!(s.is_error());
    assert_eq!(s.status.message, "boom");
    let attributes: Vec<(&str, String)> = s
        .attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_string()))
        .collect();
    assert_eq!(
        attributes,
        [
            ("a", "1".to_string()),
            ("z", "last".into()),
            ("net.host.ip", "::1".into()),
            ("net.peer.name", "db".into()),
            ("net.peer.ip", "10.0.0.1".into()),
            ("net.peer.port", "5432".into()),
            ("zipkin.shared", "true".into()),
        ]
    );
    assert_eq!(s.events.len(), 1);
    assert_eq!(
        (s.events[0].time_ns, s.events[0].name.as_str()),
        (1_705_314_600_000_500_000, "cs")
    );
}

#[test]
fn otel_status_tags_set_the_status() {
    let s = decode_one(
        r#","tags":{"otel.status_code":"ERROR","otel.status_description":"card declined"}"#,
    );
    assert_eq!(
        s.status,
        SpanStatus {
            code: StatusCode::Error,
            message: "card declined".into()
        }
    );
    assert!(s.attributes.is_empty());
    let s = decode_one(r#","tags":{"otel.status_code":"OK"}"#);
    assert_eq!(s.status.code, StatusCode::Ok);
    let s = decode_one(r#","tags":{"error":""}"#);
    assert_eq!(
        s.status,
        SpanStatus {
            code: StatusCode::Error,
            message: String::new()
        }
    );
}

/// Every rejection: the bad span alone is counted and explained, the good ones kept.
#[test]
fn rejections_are_per_span() {
    let check = |bad: &str, want: &str| {
        let body = format!("[{{{ROOT}}},{bad},{{{ROOT}}}]");
        let decoded = decode_json(body.as_bytes()).expect("valid body");
        assert_eq!(
            (decoded.spans.len(), decoded.rejected_spans),
            (2, 1),
            "{bad}"
        );
        assert_eq!(decoded.error_message, want, "{bad}");
    };
    let span = |fields: &str| format!("{{{ROOT}{fields}}}");
    check(
        &span(r#","traceId":"xyz","name":"n""#),
        r#"span 2 ("n"): traceId "xyz" is not 16 or 32 hex digits, not all zero"#,
    );
    check(
        &span(&format!(r#","traceId":"{}""#, "1".repeat(33))),
        r#"span 2: traceId "111111111111111111111111111111111" is not 16 or 32 hex digits, not all zero"#,
    );
    check(
        &span(r#","traceId":"00000000000000000000000000000000""#),
        r#"span 2: traceId "00000000000000000000000000000000" is not 16 or 32 hex digits, not all zero"#,
    );
    check(
        &span(r#","id":"0000000000000000""#),
        r#"span 2: id "0000000000000000" is not 16 hex digits, not all zero"#,
    );
    check(
        &span(r#","id":"a2fb4a1d1a96d3121""#),
        r#"span 2: id "a2fb4a1d1a96d3121" is not 16 hex digits, not all zero"#,
    );
    check(
        &span(r#","parentId":"nothex""#),
        r#"span 2: parentId "nothex" is not 16 hex digits"#,
    );
    check(
        r#"{"id":"a2fb4a1d1a96d312","timestamp":1}"#,
        "span 2: traceId is missing",
    );
    check(
        r#"{"traceId":"463ac35c9f6413ad","timestamp":1}"#,
        "span 2: id is missing",
    );
    check(
        r#"{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312"}"#,
        "span 2: timestamp is missing",
    );
    check(
        &span(r#","kind":"client""#),
        r#"span 2: kind "client" is not one of CLIENT, SERVER, PRODUCER, CONSUMER"#,
    );
    check(
        &span(r#","duration":-5"#),
        "span 2: span ends at 1705314599999995000 ns, before it starts at 1705314600000000000 ns",
    );
    check(
        &span(r#","timestamp":9223372036854775807"#),
        "span 2: timestamp 9223372036854775807 µs is out of range",
    );
    check(
        &span(r#","annotations":[{"timestamp":-9223372036854775808,"value":"x"}]"#),
        "span 2: annotation timestamp 9223372036854775808 µs is out of range",
    );
    check(
        &span(r#","duration":"1500""#),
        r#"span 2: invalid type: string "1500", expected i64"#,
    );
    check(
        "42",
        "span 2: invalid type: integer `42`, expected struct ZipkinSpan",
    );
}

#[test]
fn malformed_body_names_line_and_column() {
    let check = |body: &str, want: &str| {
        let e = decode_json(body.as_bytes()).expect_err("malformed");
        assert_eq!(e.kind(), crate::ErrorKind::BadData);
        assert_eq!(e.to_string(), want);
    };
    check(
        "[\n  {\"traceId\": \"463ac35c9f6413ad\",\n   \"id\": }\n]",
        "decode zipkin spans json: expected value at line 3 column 10",
    );
    check(
        r#"{"traceId":"463ac35c9f6413ad"}"#,
        "decode zipkin spans json: invalid type: map, expected a sequence at line 1 column 0",
    );
    check(
        "",
        "decode zipkin spans json: EOF while parsing a value at line 1 column 0",
    );
    assert_eq!(
        decode_json(b"[]").expect("empty array"),
        TracesDecoded::default()
    );
}
