//! Unit tests of Loki push decoding: JSON, protobuf, errors with positions.

use super::proto::{EntryAdapter, LabelPairAdapter, StreamAdapter, Timestamp};
use super::*;
use crate::ErrorKind;

fn json_error(body: &str) -> String {
    decode_json(body.as_bytes())
        .expect_err("should fail")
        .to_string()
}

fn snappy(push: &PushRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&push.encode_to_vec())
        .expect("compress")
}

fn entry(seconds: i64, nanos: i32, line: &str, metadata: &[(&str, &str)]) -> EntryAdapter {
    EntryAdapter {
        timestamp: Some(Timestamp { seconds, nanos }),
        line: line.into(),
        structured_metadata: metadata
            .iter()
            .map(|(n, v)| LabelPairAdapter {
                name: (*n).into(),
                value: (*v).into(),
            })
            .collect(),
    }
}

#[test]
fn json_streams_values_and_metadata() {
    let body = r#"{"streams":[
        {"stream":{"app":"api","level":"WARN"},"values":[["1705314600000000001","first"],["1705314600000000002","second",{"trace.id":"ABC","n":5,"none":null}]]},
        {"stream":{"app":"web"},"values":[[1705314600000000003,"third"]]}
    ]}"#;
    let records = decode_json(body.as_bytes()).expect("valid");
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[0].labels.to_string(),
        r#"{app="api", level="WARN"}"#,
        "kept as given"
    );
    assert_eq!(records[0].timestamp_ns, 1_705_314_600_000_000_001);
    assert_eq!(records[0].line, "first");
    assert!(records[0].metadata.is_empty());
    assert_eq!(
        records[1].metadata,
        [
            ("trace_id".to_string(), "ABC".to_string()),
            ("n".to_string(), "5".to_string())
        ]
    );
    assert_eq!(records[2].labels.to_string(), r#"{app="web"}"#);
    assert_eq!(records[2].timestamp_ns, 1_705_314_600_000_000_003);
}

#[test]
fn json_empty_pushes() {
    assert_eq!(decode_json(br#"{"streams":[]}"#), Ok(vec![]));
    assert_eq!(decode_json(b"{}"), Ok(vec![]));
    assert_eq!(
        decode_json(br#"{"streams":[{"stream":{"a":"b"}}]}"#),
        Ok(vec![])
    );
}

#[test]
fn json_errors_name_stream_and_entry() {
    assert_eq!(
        json_error("{"),
        "loki push: json: EOF while parsing an object at line 1 column 1"
    );
    assert_eq!(
        json_error("[]"),
        "loki push: json: expected an object with \"streams\", found an array"
    );
    assert_eq!(
        json_error(r#"{"streams":{}}"#),
        "loki push: json: \"streams\" must be an array, found an object"
    );
    assert_eq!(
        json_error(r#"{"streams":[{"stream":{"a":"b"},"values":[]},{"values":[]}]}"#),
        "loki push: stream 2: stream has no labels"
    );
    assert_eq!(
        json_error(r#"{"streams":[{"stream":{"a":""},"values":[]}]}"#),
        "loki push: stream 1: stream has no labels"
    );
    assert_eq!(
        json_error(r#"{"streams":[{"stream":{"a-b":"c"},"values":[]}]}"#),
        "loki push: stream 1: label name \"a-b\" is not valid"
    );
    assert_eq!(
        json_error(r#"{"streams":[{"stream":{"a":1},"values":[]}]}"#),
        "loki push: stream 1: label \"a\" must be a string, found a number"
    );
    assert_eq!(
        json_error(r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x"],["x","y"]]}]}"#),
        "loki push: stream 1, entry 2: timestamp \"x\": expected a string of epoch nanoseconds"
    );
    assert_eq!(
        json_error(r#"{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}"#),
        "loki push: stream 1, entry 1: expected [timestamp, line] or [timestamp, line, {metadata}]"
    );
    assert_eq!(
        json_error(r#"{"streams":[{"stream":{"a":"b"},"values":[["1",2]]}]}"#),
        "loki push: stream 1, entry 1: line must be a string, found a number"
    );
    assert_eq!(
        json_error(r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":[1]}]]}]}"#),
        "loki push: stream 1, entry 1: structured metadata \"k\" must be a string, found an array"
    );
}

#[test]
fn protobuf_push() {
    let push = PushRequest {
        streams: vec![StreamAdapter {
            labels: r#"{app="api", env="prod"}"#.into(),
            entries: vec![
                entry(
                    1_705_314_600,
                    5,
                    "hello",
                    &[("traceID", "abc"), ("user.id", "7")],
                ),
                entry(1_705_314_601, 0, "world", &[]),
            ],
            hash: 12345,
        }],
    };
    let records = decode_protobuf(&snappy(&push)).expect("valid");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].labels.to_string(), r#"{app="api", env="prod"}"#);
    assert_eq!(records[0].timestamp_ns, 1_705_314_600_000_000_005);
    assert_eq!(records[0].line, "hello");
    assert_eq!(
        records[0].metadata,
        [
            ("traceID".to_string(), "abc".to_string()),
            ("user_id".to_string(), "7".to_string())
        ]
    );
    assert_eq!(records[1].timestamp_ns, 1_705_314_601_000_000_000);
}

#[test]
fn protobuf_errors() {
    let e = decode_protobuf(b"\x10\x01\x02").expect_err("corrupt");
    assert!(e.to_string().starts_with("loki push: snappy: "), "{e}");
    assert_eq!(e.kind(), ErrorKind::BadData);
    let e = decode_protobuf(
        &snap::raw::Encoder::new()
            .compress_vec(b"\x0a\x05ab")
            .expect("compress"),
    )
    .expect_err("truncated");
    assert!(
        e.to_string()
            .starts_with("loki push: protobuf: failed to decode Protobuf message"),
        "{e}"
    );
    let bad_labels = PushRequest {
        streams: vec![
            StreamAdapter {
                labels: r#"{a="b"}"#.into(),
                ..Default::default()
            },
            StreamAdapter {
                labels: "{a=}".into(),
                ..Default::default()
            },
        ],
    };
    assert_eq!(
        decode_protobuf(&snappy(&bad_labels))
            .expect_err("bad labels")
            .to_string(),
        r#"loki push: stream 2: bad label string "{a=}": expected a quoted value at offset 3"#
    );
    let bad_time = PushRequest {
        streams: vec![StreamAdapter {
            labels: r#"{a="b"}"#.into(),
            entries: vec![entry(0, 0, "ok", &[]), entry(1, -5, "bad", &[])],
            hash: 0,
        }],
    };
    assert_eq!(
        decode_protobuf(&snappy(&bad_time))
            .expect_err("bad time")
            .to_string(),
        r#"loki push: stream 1, entry 2: timestamp "1s -5ns": out of range"#
    );
}

#[test]
fn protobuf_decompression_is_bounded() {
    // A snappy block header claiming more than the limit is refused before allocating.
    let mut bomb = Vec::new();
    let mut n = LOKI_PUSH_DECOMPRESSED_BYTES_MAX as u64 + 1;
    while n >= 0x80 {
        bomb.push((n as u8) | 0x80);
        n >>= 7;
    }
    bomb.push(n as u8);
    bomb.extend_from_slice(b"\x00\x00");
    let e = decode_protobuf(&bomb).expect_err("too large");
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert_eq!(
        e.to_string(),
        "loki push: snappy: decompressed body is larger than the limit of 67108864 bytes"
    );
}
