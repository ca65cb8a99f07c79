//! Store tests against the real WAL, heads and segments on a temporary directory.

use std::ops::ControlFlow;

use sightline_model::log::LogSelection;
use sightline_model::{LabelMatcher, Labels, LogBatch, LogRecord, MatchOp, TenantId};

use super::*;

fn config(dir: &Path) -> StoreConfig {
    StoreConfig::new(dir)
}

fn record(ts: i64, service: &str, line: &str, request_id: &str) -> LogRecord {
    LogRecord {
        timestamp_ns: ts,
        labels: Labels::from_pairs([("service", service), ("level", "info")]).into(),
        line: line.into(),
        metadata: [("request_id", request_id)].into_iter().collect(),
    }
}

fn batch(tenant: &str, records: Vec<LogRecord>) -> Arc<LogBatch> {
    Arc::new(LogBatch {
        tenant: TenantId::new(tenant).expect("tenant"),
        records,
    })
}

fn selection(tenant: &str, service: Option<&str>) -> LogSelection {
    LogSelection {
        tenant: TenantId::new(tenant).expect("tenant"),
        matchers: service
            .map(|s| vec![LabelMatcher::new("service", MatchOp::Eq, s).expect("matcher")])
            .unwrap_or_default(),
        start_ns: i64::MIN,
        end_ns: i64::MAX,
        line_contains: vec![],
        metadata_eq: vec![],
        need_line: true,
        need_metadata: true,
        metadata_fields: None,
    }
}

async fn open(dir: &Path) -> Arc<Store> {
    Store::open(config(dir), StoreMetrics::default())
        .await
        .expect("open")
        .0
}

async fn append(store: &Store, batch: Arc<LogBatch>) {
    store.append_logs(batch).await.expect("append");
}

/// Every (ts, line, request_id) the selection finds, sorted.
async fn lines(store: &Store, sel: &LogSelection) -> Vec<(i64, String, String)> {
    let mut out = Vec::new();
    store
        .logs()
        .scan(sel, &mut |_, e| {
            let rid = e
                .metadata
                .iter()
                .find(|(k, _)| k == "request_id")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            out.push((e.timestamp_ns, e.line.to_string(), rid));
            ControlFlow::Continue(())
        })
        .await
        .expect("scan");
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_logs_survive_flush_and_restart_exactly_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path()).await;
    append(
        &store,
        batch(
            "a",
            vec![record(1, "api", "one", "r1"), record(2, "web", "two", "r2")],
        ),
    )
    .await;
    store.flush().await.expect("flush");
    append(&store, batch("a", vec![record(3, "api", "three", "r3")])).await;
    append(
        &store,
        batch("b", vec![record(4, "api", "other tenant", "r4")]),
    )
    .await;
    let want = vec![
        (1, "one".to_string(), "r1".to_string()),
        (3, "three".into(), "r3".into()),
    ];
    assert_eq!(lines(&store, &selection("a", Some("api"))).await, want);
    drop(store);

    // Restart: the flushed record comes from a segment, the other from WAL replay.
    let (store, stats) = Store::open(config(tmp.path()), StoreMetrics::default())
        .await
        .expect("reopen");
    assert_eq!(stats.replay.records, 2, "two batches were not flushed");
    assert_eq!(stats.segments, 1);
    assert_eq!(lines(&store, &selection("a", Some("api"))).await, want);
    assert_eq!(
        lines(&store, &selection("b", None)).await.len(),
        1,
        "tenants are apart"
    );
    store.flush().await.expect("flush");
    drop(store);
    let (store, stats) = Store::open(config(tmp.path()), StoreMetrics::default())
        .await
        .expect("reopen");
    assert_eq!(stats.replay.records, 0, "everything is in segments now");
    assert_eq!(lines(&store, &selection("a", None)).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_above_the_checkpoint_are_dropped_and_replayed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path()).await;
    append(&store, batch("a", vec![record(1, "api", "one", "r1")])).await;
    store.flush().await.expect("flush");
    drop(store);
    // Simulate a crash between writing the segment and writing the checkpoint.
    checkpoint::write(tmp.path(), 0).expect("rewind checkpoint");
    std::fs::write(wal::wal_dir(tmp.path()).join(format!("{:020}.wal", 1)), {
        let mut f = wal::WAL_MAGIC.to_vec();
        let payload = logs::encode_wal_batch(&batch("a", vec![record(1, "api", "one", "r1")]))
            .expect("encode");
        f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&[1]);
        h.update(&payload);
        f.extend_from_slice(&h.finalize().to_le_bytes());
        f.push(1);
        f.extend_from_slice(&payload);
        f
    })
    .expect("restore wal");
    let (store, stats) = Store::open(config(tmp.path()), StoreMetrics::default())
        .await
        .expect("reopen");
    assert_eq!((stats.segments, stats.replay.records), (0, 1));
    assert_eq!(
        lines(&store, &selection("a", None)).await.len(),
        1,
        "once, not twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_merges_segments_and_keeps_every_row() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path()).await;
    for i in 0..5 {
        store
            .append_logs(batch(
                "a",
                vec![record(i, "api", &format!("line {i}"), &format!("r{i}"))],
            ))
            .await
            .expect("append");
        store.flush().await.expect("flush");
    }
    assert_eq!(store.logs().read().segments.len(), 5);
    assert_eq!(store.compact().await.expect("compact"), 1);
    assert_eq!(store.logs().read().segments.len(), 1);
    assert_eq!(lines(&store, &selection("a", None)).await.len(), 5);
    drop(store);
    let (store, stats) = Store::open(config(tmp.path()), StoreMetrics::default())
        .await
        .expect("reopen");
    assert_eq!(stats.segments, 1);
    assert_eq!(lines(&store, &selection("a", None)).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_whole_old_segments() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path()).await;
    let now = sightline_model::now_ns();
    let old = now - 40 * 86_400 * sightline_model::NANOS_PER_SECOND;
    append(
        &store,
        batch(
            "a",
            vec![
                record(old, "api", "old", "r1"),
                record(now, "api", "new", "r2"),
            ],
        ),
    )
    .await;
    store.flush().await.expect("flush");
    assert_eq!(store.logs().read().segments.len(), 2, "two day partitions");
    assert_eq!(store.apply_retention().await.expect("retention"), 1);
    let got = lines(&store, &selection("a", None)).await;
    assert_eq!(got, vec![(now, "new".to_string(), "r2".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_lists_label_sets_in_range() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path()).await;
    append(
        &store,
        batch(
            "a",
            vec![record(10, "api", "x", "r"), record(20, "web", "y", "r")],
        ),
    )
    .await;
    store.flush().await.expect("flush");
    append(&store, batch("a", vec![record(30, "api", "z", "r")])).await;
    let t = TenantId::new("a").expect("tenant");
    assert_eq!(store.logs().streams(&t, &[], 0, 100).len(), 2);
    assert_eq!(store.logs().streams(&t, &[], 15, 25).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_over_many_blocks_see_each_row_once_and_stop_when_asked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path()).await;
    for i in 0..6 {
        let recs = (0..10)
            .map(|j| {
                record(
                    i * 10 + j,
                    "api",
                    &format!("line {i} {j}"),
                    &format!("r{i}-{j}"),
                )
            })
            .collect();
        store.append_logs(batch("a", recs)).await.expect("append");
        store.flush().await.expect("flush");
    }
    let got = lines(&store, &selection("a", None)).await;
    assert_eq!(got.len(), 60);
    assert_eq!(
        got.iter().map(|(ts, _, _)| *ts).collect::<Vec<_>>(),
        (0..60).collect::<Vec<_>>()
    );

    let mut seen = 0;
    store
        .logs()
        .scan(&selection("a", None), &mut |_, _| {
            seen += 1;
            if seen == 15 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await
        .expect("scan");
    assert_eq!(seen, 15, "the scan stops at the first Break");

    // Only the metadata fields asked for are passed.
    let mut sel = selection("a", None);
    sel.metadata_fields = Some(vec!["nothing".into()]);
    let mut with_metadata = 0;
    store
        .logs()
        .scan(&sel, &mut |_, e| {
            with_metadata += usize::from(!e.metadata.is_empty());
            ControlFlow::Continue(())
        })
        .await
        .expect("scan");
    assert_eq!(with_metadata, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_wait_for_a_flush_when_the_head_is_full_and_fail_when_none_comes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(tmp.path());
    cfg.head_bytes_max = 1;
    cfg.head_full_wait = Duration::from_millis(300);
    let (store, _) = Store::open(cfg, StoreMetrics::default())
        .await
        .expect("open");
    store
        .append_logs(batch("a", vec![record(1, "api", "first", "r1")]))
        .await
        .expect("an empty head has room");

    // Full: with no flush the next append fails as overloaded, and nothing of it is kept.
    let err = store
        .append_logs(batch("a", vec![record(2, "api", "refused", "r2")]))
        .await
        .expect_err("head full");
    assert!(matches!(err, StoreError::Overloaded(_)), "{err}");

    // A flush during the wait makes room, and the waiting append goes through.
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append_logs(batch("a", vec![record(3, "api", "third", "r3")]))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.flush().await.expect("flush");
    waiting
        .await
        .expect("join")
        .expect("append after the flush");
    let got: Vec<String> = lines(&store, &selection("a", None))
        .await
        .into_iter()
        .map(|(_, l, _)| l)
        .collect();
    assert_eq!(got, vec!["first".to_string(), "third".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_stats_count_heads_and_segments() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path()).await;
    append(
        &store,
        batch(
            "a",
            vec![
                record(10, "api", "12345", "r"),
                record(20, "web", "xx", "r"),
            ],
        ),
    )
    .await;
    store.flush().await.expect("flush");
    append(&store, batch("a", vec![record(30, "api", "abc", "r")])).await;
    let t = TenantId::new("a").expect("tenant");
    let api = [LabelMatcher::new("service", MatchOp::Eq, "api").expect("matcher")];
    let st = store.logs().stats(&t, &api, 0, 100);
    assert_eq!(
        st,
        logs::IndexStats {
            streams: 1,
            chunks: 1,
            bytes: 8,
            entries: 2
        }
    );
    assert_eq!(store.logs().stats(&t, &[], 0, 100).streams, 2);
    assert_eq!(store.logs().stats(&t, &[], 25, 100).entries, 1);
}

#[test]
fn wal_log_batches_are_the_bytes_postcard_gives() {
    #[derive(serde::Serialize)]
    struct Postcard<'a> {
        tenant: &'a str,
        records: &'a [LogRecord],
    }
    let mut many_fields = record(i64::MIN, "wide", &"x".repeat(300), "r-2");
    for i in 0..200 {
        many_fields.metadata.push(&format!("f{i}"), &"ü".repeat(i));
    }
    let b = batch(
        "tenant-x",
        vec![
            record(-5, "api", "ünï line", "r1"),
            record(i64::MAX, "web", "", ""),
            many_fields,
        ],
    );
    let ours = logs::encode_wal_batch(&b).expect("encode");
    let want = postcard::to_stdvec(&Postcard {
        tenant: b.tenant.as_str(),
        records: &b.records,
    })
    .expect("postcard");
    assert_eq!(ours, want);
    assert_eq!(logs::decode_wal_batch(&ours).expect("decode"), *b);
}
