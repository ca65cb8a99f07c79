use proptest::prelude::*;

use super::*;
use sightline_model::MatchOp;

fn stream(service: &str, rows: Vec<Row>) -> StreamRows {
    StreamRows {
        labels: Labels::from_pairs([("service", service)]),
        rows,
    }
}

fn row(ts_ns: i64, line: &str, meta: &[(&str, &str)]) -> Row {
    Row {
        ts_ns,
        line: line.into(),
        metadata: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn tenant() -> TenantId {
    TenantId::new("t").expect("tenant")
}

#[test]
fn segment_round_trips_rows_and_sorts_metadata_by_name() {
    let streams = vec![
        stream(
            "api",
            vec![row(10, "a", &[("z", "1"), ("a", "2")]), row(20, "b", &[])],
        ),
        stream("web", vec![row(5, "c", &[("a", "3")])]),
    ];
    let file = encode_segment(&tenant(), &streams).expect("encode");
    let (footer, back) = decode_all(&file).expect("decode");
    assert_eq!((footer.min_ts, footer.max_ts, footer.rows), (5, 20, 3));
    assert_eq!(
        back[0].rows[0].metadata,
        vec![("a".to_string(), "2".to_string()), ("z".into(), "1".into())]
    );
    assert_eq!(back[0].rows[1], streams[0].rows[1]);
    assert_eq!(back[1], streams[1]);
}

#[test]
fn corrupt_segments_are_errors_not_panics() {
    let streams = vec![stream(
        "api",
        vec![row(1, "hello world", &[("request_id", "r1")])],
    )];
    let file = encode_segment(&tenant(), &streams).expect("encode");
    for i in 0..file.len() {
        let mut bad = file.clone();
        bad[i] ^= 0x40;
        let _ = decode_all(&bad);
        let _ = decode_all(&file[..i]);
    }
}

#[test]
fn blooms_prune_blocks_by_needle_and_metadata() {
    let rows: Vec<Row> = (0..100)
        .map(|i| {
            row(
                i,
                &format!("GET /api/users/{i} done"),
                &[("request_id", &format!("req-{i}"))],
            )
        })
        .collect();
    let file = encode_segment(&tenant(), &[stream("api", rows)]).expect("encode");
    let (footer, _) = decode_all(&file).expect("decode");
    let b = &footer.blocks[0];
    let sel = vec![true];
    let may = |lines: &[&str], meta: &[(&str, &str)]| {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        let meta: Vec<(String, String)> = meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        block_may_match(b, &sel, &footer.streams, 0, 1000, &lines, &meta)
    };
    assert!(may(&["/users/42 "], &[("request_id", "req-42")]));
    assert!(!may(&["/nothere/"], &[]));
    assert!(!may(&[], &[("request_id", "req-1000")]));
    assert!(
        !block_may_match(b, &sel, &footer.streams, 100, 200, &[], &[]),
        "time range"
    );
    let none = select_streams(
        &footer.streams,
        &[LabelMatcher::new("service", MatchOp::Eq, "web").expect("m")],
    );
    assert!(
        !block_may_match(b, &none, &footer.streams, 0, 1000, &[], &[]),
        "stream selector"
    );
}

fn arb_row() -> impl Strategy<Value = Row> {
    (
        -1_000_000i64..1_000_000,
        "[a-z0-9 /=-]{0,40}",
        proptest::collection::btree_map("[a-c]", "[a-z0-9-]{0,8}", 0..3),
    )
        .prop_map(|(ts_ns, line, meta)| Row {
            ts_ns,
            line,
            metadata: meta.into_iter().collect(),
        })
}

proptest! {
    #[test]
    fn any_streams_round_trip(
        mut streams in proptest::collection::btree_map("[a-d]{1,3}", proptest::collection::vec(arb_row(), 1..50), 1..5)
    ) {
        let streams: Vec<StreamRows> = std::mem::take(&mut streams)
            .into_iter()
            .map(|(s, mut rows)| {
                rows.sort_by_key(|r| r.ts_ns);
                stream(&s, rows)
            })
            .collect();
        let file = encode_segment(&tenant(), &streams).expect("encode");
        let (_, back) = decode_all(&file).expect("decode");
        prop_assert_eq!(back, streams);
    }

    #[test]
    fn bloom_never_prunes_a_block_holding_the_needle(rows in proptest::collection::vec(arb_row(), 1..40), pick in 0usize..40) {
        let mut rows = rows;
        rows.sort_by_key(|r| r.ts_ns);
        let file = encode_segment(&tenant(), &[stream("s", rows.clone())]).expect("encode");
        let (footer, _) = decode_all(&file).expect("decode");
        let r = &rows[pick % rows.len()];
        let sel = vec![true];
        let needle = r.line.clone();
        let meta: Vec<(String, String)> = r.metadata.iter().take(1).cloned().collect();
        let b = footer.blocks.iter().find(|b| b.min_ts <= r.ts_ns && r.ts_ns <= b.max_ts).expect("block");
        prop_assert!(block_may_match(b, &sel, &footer.streams, r.ts_ns, r.ts_ns + 1, &[needle], &meta));
    }
}
