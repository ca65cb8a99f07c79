use proptest::prelude::*;

use super::*;
use sightline_model::MatchOp;

/// A row as plain values, for building inputs and comparing outputs.
type Plain = (i64, String, Vec<(String, String)>);
type PlainStream = (String, Vec<Plain>);

fn row(ts_ns: i64, line: &str, meta: &[(&str, &str)]) -> Plain {
    (
        ts_ns,
        line.into(),
        meta.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn build(streams: &[PlainStream], keys: &mut KeyDict) -> Vec<StreamRows> {
    streams
        .iter()
        .map(|(service, rows)| StreamRows {
            labels: Labels::from_pairs([("service", service.as_str())]),
            rows: {
                let mut out = Rows::default();
                for (ts, line, meta) in rows {
                    let pairs = meta.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                    out.push(*ts, line, pairs, keys);
                }
                out
            },
        })
        .collect()
}

fn plain(streams: &[StreamRows], keys: &KeyDict) -> Vec<PlainStream> {
    streams
        .iter()
        .map(|s| {
            let rows = s
                .rows
                .iter()
                .map(|r| {
                    let meta = r
                        .metadata(keys)
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    (r.ts_ns, r.line().to_string(), meta)
                })
                .collect();
            (s.labels.get("service").unwrap_or("").to_string(), rows)
        })
        .collect()
}

fn encode(streams: &[PlainStream]) -> Vec<u8> {
    let mut keys = KeyDict::default();
    let rows = build(streams, &mut keys);
    let refs: Vec<StreamRef<'_>> = rows.iter().map(|s| s.as_ref(&keys)).collect();
    encode_segment(&tenant(), &refs).expect("encode")
}

fn decode(file: &[u8]) -> (SegmentFooter, Vec<PlainStream>) {
    let mut keys = KeyDict::default();
    let (footer, streams) = decode_all(file, &mut keys).expect("decode");
    (footer, plain(&streams, &keys))
}

fn tenant() -> TenantId {
    TenantId::new("t").expect("tenant")
}

#[test]
fn segment_round_trips_rows_and_sorts_metadata_by_name() {
    let streams = vec![
        (
            "api".to_string(),
            vec![row(10, "a", &[("z", "1"), ("a", "2")]), row(20, "b", &[])],
        ),
        ("web".to_string(), vec![row(5, "c", &[("a", "3")])]),
    ];
    let (footer, back) = decode(&encode(&streams));
    assert_eq!((footer.min_ts, footer.max_ts, footer.rows), (5, 20, 3));
    assert_eq!(back[0].1[0], row(10, "a", &[("a", "2"), ("z", "1")]));
    assert_eq!(back[0].1[1], streams[0].1[1]);
    assert_eq!(back[1], streams[1]);
}

#[test]
fn a_name_given_twice_in_a_row_keeps_its_last_value() {
    let streams = vec![(
        "api".to_string(),
        vec![
            row(1, "a", &[("k", "1"), ("k", "2")]),
            row(2, "b", &[("k", "3")]),
        ],
    )];
    let (_, back) = decode(&encode(&streams));
    assert_eq!(
        back[0].1,
        vec![row(1, "a", &[("k", "2")]), row(2, "b", &[("k", "3")])]
    );
}

/// `file` with its footer's version set to `version` (blocks unchanged).
fn with_version(file: &[u8], version: u32) -> Vec<u8> {
    let tail = &file[file.len() - TRAILER_BYTES..];
    let (offset, len, crc) = decode_trailer(tail, file.len() as u64).expect("trailer");
    let footer_bytes = &file[offset as usize..offset as usize + len as usize];
    let mut footer = decode_footer(footer_bytes, crc).expect("footer");
    footer.version = version;
    let mut out = file[..offset as usize].to_vec();
    let raw = postcard::to_stdvec(&footer).expect("encode footer");
    crate::segment::write_footer(&mut out, &raw, TRAILER_MAGIC).expect("write footer");
    out
}

#[test]
fn version_1_segments_are_still_read_and_unknown_versions_refused() {
    let streams = vec![(
        "api".to_string(),
        vec![row(1, "a", &[("ip", "10.0.3.12"), ("request_id", "r1")])],
    )];
    let file = encode(&streams);
    assert_eq!(decode(&file).0.version, FORMAT_VERSION);
    assert_eq!(decode(&file).1, streams, "addresses come back as written");
    let (footer, back) = decode(&with_version(&file, 1));
    assert_eq!((footer.version, back), (1, streams));
    let err = decode_all(
        &with_version(&file, FORMAT_VERSION + 1),
        &mut KeyDict::default(),
    )
    .expect_err("a newer format");
    assert!(err.to_string().contains("format version 3"), "{err}");
}

#[test]
fn corrupt_segments_are_errors_not_panics() {
    let file = encode(&[(
        "api".to_string(),
        vec![row(1, "hello world", &[("request_id", "r1")])],
    )]);
    let mut keys = KeyDict::default();
    for i in 0..file.len() {
        let mut bad = file.clone();
        bad[i] ^= 0x40;
        let _ = decode_all(&bad, &mut keys);
        let _ = decode_all(&file[..i], &mut keys);
    }
}

#[test]
fn blooms_prune_blocks_by_needle_and_metadata() {
    let rows: Vec<Plain> = (0..100)
        .map(|i| {
            row(
                i,
                &format!("GET /api/users/{i} done"),
                &[("request_id", &format!("req-{i}"))],
            )
        })
        .collect();
    let (footer, _) = decode(&encode(&[("api".to_string(), rows)]));
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

fn arb_row() -> impl Strategy<Value = Plain> {
    (
        -1_000_000i64..1_000_000,
        "[a-z0-9 /=-]{0,40}",
        proptest::collection::btree_map("[a-c]", "[a-z0-9-]{0,8}", 0..3),
    )
        .prop_map(|(ts_ns, line, meta)| (ts_ns, line, meta.into_iter().collect()))
}

proptest! {
    #[test]
    fn any_streams_round_trip(
        streams in proptest::collection::btree_map("[a-d]{1,3}", proptest::collection::vec(arb_row(), 1..50), 1..5)
    ) {
        let streams: Vec<PlainStream> = streams
            .into_iter()
            .map(|(s, mut rows)| {
                rows.sort_by_key(|r| r.0);
                (s, rows)
            })
            .collect();
        let (_, back) = decode(&encode(&streams));
        prop_assert_eq!(back, streams);
    }

    #[test]
    fn bloom_never_prunes_a_block_holding_the_needle(rows in proptest::collection::vec(arb_row(), 1..40), pick in 0usize..40) {
        let mut rows = rows;
        rows.sort_by_key(|r| r.0);
        let (footer, _) = decode(&encode(&[("s".to_string(), rows.clone())]));
        let r = &rows[pick % rows.len()];
        let sel = vec![true];
        let meta: Vec<(String, String)> = r.2.iter().take(1).cloned().collect();
        let b = footer.blocks.iter().find(|b| b.min_ts <= r.0 && r.0 <= b.max_ts).expect("block");
        prop_assert!(block_may_match(b, &sel, &footer.streams, r.0, r.0 + 1, std::slice::from_ref(&r.1), &meta));
    }
}
