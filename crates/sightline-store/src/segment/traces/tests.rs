use sightline_model::{AttrValue, Span, SpanEvent, SpanKind, SpanLink, SpanStatus, StatusCode};

use super::*;

/// A span of trace `t`, span `s` (parent `p`), of `service`, starting at `start_ms`.
pub fn span(t: u8, s: u8, p: Option<u8>, service: &str, start_ms: i64, dur_ms: i64) -> Span {
    let mut trace_id = [0u8; 16];
    trace_id[0] = t;
    trace_id[15] = 1;
    Span {
        trace_id,
        span_id: [s, 0, 0, 0, 0, 0, 0, 1],
        parent_span_id: p.map(|p| [p, 0, 0, 0, 0, 0, 0, 1]),
        trace_state: String::new(),
        name: format!("op{s}"),
        kind: SpanKind::Server,
        start_ns: start_ms * 1_000_000,
        end_ns: (start_ms + dur_ms) * 1_000_000 + 7,
        status: SpanStatus::default(),
        service: service.into(),
        resource: vec![
            ("service.name".into(), AttrValue::String(service.into())),
            ("host.name".into(), AttrValue::String("h1".into())),
        ],
        scope_name: "scope".into(),
        scope_version: "1.0".into(),
        attributes: vec![("http.status_code".into(), AttrValue::Int(200))],
        events: vec![],
        links: vec![],
    }
}

fn rich() -> Span {
    let mut s = span(9, 1, None, "orders", 1_000, 20);
    s.status = SpanStatus {
        code: StatusCode::Error,
        message: "card declined".into(),
    };
    s.kind = SpanKind::Client;
    s.trace_state = "k=v".into();
    s.attributes = vec![
        ("s".into(), AttrValue::String("x".into())),
        ("b".into(), AttrValue::Bool(true)),
        ("f".into(), AttrValue::Double(-1.5)),
        ("i".into(), AttrValue::Int(-42)),
        ("e".into(), AttrValue::Empty),
        ("bytes".into(), AttrValue::Bytes(vec![0, 255])),
        (
            "arr".into(),
            AttrValue::Array(vec![AttrValue::Int(1), AttrValue::String("y".into())]),
        ),
        (
            "kv".into(),
            AttrValue::KvList(vec![("in".into(), AttrValue::Bool(false))]),
        ),
    ];
    s.events = vec![SpanEvent {
        time_ns: s.start_ns + 5,
        name: "exception".into(),
        attributes: vec![(
            "exception.stacktrace".into(),
            AttrValue::String("Traceback…".into()),
        )],
    }];
    s.links = vec![SpanLink {
        trace_id: [3; 16],
        span_id: [4; 8],
        trace_state: String::new(),
        attributes: vec![("why".into(), AttrValue::String("retry".into()))],
    }];
    s
}

fn write(traces: Vec<Vec<Span>>) -> Vec<u8> {
    let mut w = SegmentWriter::new("default");
    for t in traces {
        w.push_trace(t).expect("push");
    }
    w.finish().expect("finish").expect("a segment")
}

fn read_all(file: &[u8]) -> Vec<Span> {
    let footer = footer_of_file(file).expect("footer");
    let mut out = Vec::new();
    for b in &footer.blocks {
        let r = block_range(b);
        out.extend(
            decode_block(
                b,
                &file[r.start as usize..r.end as usize],
                None,
                &mut |_| {},
            )
            .expect("decode"),
        );
    }
    out
}

#[test]
fn every_field_round_trips() {
    // The child starts before its parent: a forward reference within the trace.
    let mut child = span(9, 2, Some(1), "payments", 990, 5);
    child.parent_span_id = Some(rich().span_id);
    let external = span(9, 3, Some(77), "orders", 1_001, 1);
    let file = write(vec![vec![rich(), child.clone(), external.clone()]]);
    let mut got = read_all(&file);
    got.sort_by_key(|s| s.span_id);
    let mut want = vec![rich(), child, external];
    want.sort_by_key(|s| s.span_id);
    assert_eq!(got, want);
}

#[test]
fn blocks_hold_whole_traces_in_id_order_and_lookups_find_them() {
    let mut traces = Vec::new();
    for t in 0..=255u8 {
        traces.push(
            (0..40)
                .map(|s| {
                    span(
                        t,
                        s + 1,
                        (s > 0).then_some(1),
                        "svc",
                        5_000 + i64::from(s),
                        3,
                    )
                })
                .collect::<Vec<_>>(),
        );
    }
    let file = write(traces);
    let footer = footer_of_file(&file).expect("footer");
    assert!(footer.blocks.len() > 1, "{} blocks", footer.blocks.len());
    assert_eq!(footer.spans, 256 * 40);
    for pair in footer.blocks.windows(2) {
        assert!(pair[0].last_trace < pair[1].first_trace);
    }
    for t in [0u8, 17, 200, 255] {
        let id = span(t, 1, None, "svc", 0, 0).trace_id;
        let i = block_for(&footer, &id).expect("block");
        let b = &footer.blocks[i];
        let r = block_range(b);
        let want = |x: &TraceId| *x == id;
        let spans = decode_block(
            b,
            &file[r.start as usize..r.end as usize],
            Some(&want),
            &mut |_| {},
        )
        .expect("decode");
        assert_eq!(spans.len(), 40);
        assert!(spans.iter().all(|s| s.trace_id == id));
    }
    let mut absent = span(0, 1, None, "svc", 0, 0).trace_id;
    absent[15] = 2;
    if let Some(i) = block_for(&footer, &absent) {
        // A bloom false positive: the block is read and holds nothing of it.
        let b = &footer.blocks[i];
        let r = block_range(b);
        let want = |x: &TraceId| *x == absent;
        let spans = decode_block(
            b,
            &file[r.start as usize..r.end as usize],
            Some(&want),
            &mut |_| {},
        )
        .expect("decode");
        assert!(spans.is_empty());
    }
}

#[test]
fn footer_knows_services_operations_and_edges() {
    let file = write(vec![vec![
        span(1, 1, None, "frontend", 0, 10),
        span(1, 2, Some(1), "orders", 1, 5),
        span(1, 3, Some(2), "orders", 2, 1),
    ]]);
    let f = footer_of_file(&file).expect("footer");
    assert_eq!(f.services, vec!["frontend", "orders"]);
    assert_eq!(f.operations.len(), 3);
    assert_eq!(f.blocks[0].edges, vec![(0, 1, 1)]);
    assert_eq!(f.blocks[0].max_duration_ns, 10 * 1_000_000 + 7);
}

#[test]
fn corrupt_blocks_are_errors_not_panics() {
    let file = write(vec![vec![rich()]]);
    let footer = footer_of_file(&file).expect("footer");
    let b = &footer.blocks[0];
    let r = block_range(b);
    let block = &file[r.start as usize..r.end as usize];
    for cut in [0, 1, block.len() / 2, block.len() - 1] {
        assert!(
            decode_block(b, &block[..cut], None, &mut |_| {}).is_err(),
            "cut at {cut}"
        );
    }
    let mut flipped = block.to_vec();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    let _ = decode_block(b, &flipped, None, &mut |_| {});
}
