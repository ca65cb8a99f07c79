//! Property tests of the span decoders: no input panics one, errors are `BadData`, and every
//! span that decodes keeps the model's invariants (non-zero ids, a parent that is `None`
//! rather than zero, an end not before the start, a service); a generated span with one bad
//! field is rejected alone.

use proptest::prelude::*;
#[path = "support/mutate.rs"]
mod mutate;
use mutate::{mutate, mutations};
use sightline_ingest::otlp::traces::TracesDecoded;
use sightline_ingest::{ErrorKind, IngestError, otlp, zipkin};

const OTLP_PB_FIXTURE: &[u8] = include_bytes!("data/otlp/python_sdk_traces.pb");
const OTLP_JSON_FIXTURE: &[u8] = include_bytes!("data/otlp/python_sdk_traces.json");
const OTLP_PROTOJSON_FIXTURE: &[u8] = include_bytes!("data/otlp/python_sdk_traces.protojson.json");
const ZIPKIN_FIXTURE: &[u8] = include_bytes!("data/zipkin/handle_order.json");

fn check_outcome(result: Result<TracesDecoded, IngestError>) {
    match result {
        Ok(decoded) => {
            for s in &decoded.spans {
                assert_ne!(s.trace_id, [0; 16]);
                assert_ne!(s.span_id, [0; 8]);
                assert_ne!(s.parent_span_id, Some([0; 8]));
                assert!(s.start_ns <= s.end_ns, "{} > {}", s.start_ns, s.end_ns);
                assert!(!s.service.is_empty());
            }
            assert!(decoded.rejected_spans >= 0);
            assert_eq!(
                decoded.rejected_spans == 0,
                decoded.error_message.is_empty()
            );
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::BadData);
            let text = e.to_string();
            assert!(!text.is_empty() && !text.ends_with('.'), "message {text:?}");
        }
    }
}

fn decode_all(bytes: &[u8]) {
    check_outcome(otlp::traces::decode_protobuf(bytes));
    check_outcome(otlp::traces::decode_json(bytes));
    check_outcome(zipkin::decode_json(bytes));
}

/// A Zipkin span as JSON, each field either valid or one of the bad values a decoder must
/// reject alone.
fn zipkin_span() -> impl Strategy<Value = serde_json::Value> {
    (
        prop_oneof![3 => "[0-9a-f]{16}|[0-9a-f]{32}", 1 => ".{0,40}"],
        prop_oneof![3 => "[0-9a-f]{16}", 1 => ".{0,20}"],
        prop::option::of(prop_oneof![3 => "[0-9a-f]{16}", 1 => ".{0,20}"]),
        prop::option::of(prop::sample::select(vec![
            "CLIENT", "SERVER", "PRODUCER", "CONSUMER", "client", "",
        ])),
        prop::option::of(any::<i64>()),
        prop::option::of(any::<i64>()),
        prop::collection::btree_map("[a-z.]{1,12}", ".{0,12}", 0..4),
    )
        .prop_map(
            |(trace_id, id, parent_id, kind, timestamp, duration, tags)| {
                let mut span =
                    serde_json::json!({"traceId": trace_id, "id": id, "name": "op", "tags": tags});
                if let Some(p) = parent_id {
                    span["parentId"] = p.into();
                }
                if let Some(k) = kind {
                    span["kind"] = k.into();
                }
                if let Some(t) = timestamp {
                    span["timestamp"] = t.into();
                }
                if let Some(d) = duration {
                    span["duration"] = d.into();
                }
                span
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        decode_all(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[{}\\[\\]\":,0-9a-zA-Z\\\\ \n.eE+-]{0,400}") {
        decode_all(text.as_bytes());
    }

    #[test]
    fn mutated_fixtures_never_panic(edits in mutations()) {
        check_outcome(otlp::traces::decode_protobuf(&mutate(OTLP_PB_FIXTURE, &edits)));
        check_outcome(otlp::traces::decode_json(&mutate(OTLP_JSON_FIXTURE, &edits)));
        check_outcome(otlp::traces::decode_json(&mutate(OTLP_PROTOJSON_FIXTURE, &edits)));
        check_outcome(zipkin::decode_json(&mutate(ZIPKIN_FIXTURE, &edits)));
    }

    /// Every generated span is either kept or counted: nothing is lost silently, and one bad
    /// span never takes the others with it.
    #[test]
    fn zipkin_spans_are_kept_or_counted(spans in prop::collection::vec(zipkin_span(), 0..8)) {
        let body = serde_json::Value::Array(spans.clone()).to_string();
        let decoded = zipkin::decode_json(body.as_bytes()).expect("a json array");
        prop_assert_eq!(decoded.spans.len() as i64 + decoded.rejected_spans, spans.len() as i64);
        check_outcome(Ok(decoded));
    }
}
