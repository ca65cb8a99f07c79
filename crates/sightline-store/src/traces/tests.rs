//! The trace store against the real WAL, heads and segments on a temporary directory.

use std::path::Path;

use sightline_model::{StatusCode, TraceQuery};

use super::*;
use crate::segment::traces::tests::span;
use crate::{Store, StoreConfig, StoreMetrics};

async fn open(dir: &Path) -> Arc<Store> {
    Store::open(StoreConfig::new(dir), StoreMetrics::default())
        .await
        .expect("open")
        .0
}

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

/// Trace `t`: a `frontend` root of `dur_ms` calling `orders`, which calls itself.
fn trace(t: u8, start_ms: i64, dur_ms: i64) -> Vec<Span> {
    vec![
        span(t, 1, None, "frontend", start_ms, dur_ms),
        span(t, 2, Some(1), "orders", start_ms + 1, 3),
        span(t, 3, Some(2), "orders", start_ms + 2, 1),
    ]
}

async fn append(store: &Store, spans: Vec<Span>) {
    let batch = Arc::new(SpanBatch {
        tenant: tenant(),
        spans,
    });
    store.append_spans(batch).await.expect("append");
}

fn id(t: u8) -> TraceId {
    span(t, 1, None, "x", 0, 0).trace_id
}

fn query() -> TraceQuery {
    TraceQuery::new(tenant(), 0, i64::MAX, 20)
}

/// The same answers from the head, after a flush, after compaction and after a restart.
#[tokio::test]
async fn lookups_and_searches_agree_across_head_segments_compaction_and_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path()).await;
    append(&store, trace(1, 1_000, 50)).await;
    append(&store, trace(2, 2_000, 500)).await;
    let check = |store: Arc<Store>, spans_of_1: usize| async move {
        let t = store.traces();
        let one = t.trace(&tenant(), &id(1)).await.expect("trace");
        assert_eq!(one.len(), spans_of_1);
        assert_eq!(one[0].parent_span_id, None);
        assert!(t.trace(&tenant(), &id(3)).await.expect("trace").is_empty());
        let mut q = query();
        q.min_duration_ns = Some(100_000_000);
        assert_eq!(t.search(&q).await.expect("search"), vec![id(2)]);
        let mut q = query();
        q.service = Some("orders".into());
        assert_eq!(t.search(&q).await.expect("search"), vec![id(2), id(1)]);
        q.limit = 1;
        assert_eq!(t.search(&q).await.expect("search"), vec![id(2)]);
        let mut q = query();
        q.tags = vec![("http.status_code".into(), "200".into())];
        q.operation = Some("op3".into());
        assert_eq!(t.search(&q).await.expect("search").len(), 2);
        q.tags = vec![("http.status_code".into(), "500".into())];
        assert!(t.search(&q).await.expect("search").is_empty());
        assert_eq!(t.services(&tenant()), vec!["frontend", "orders"]);
        assert_eq!(t.operations(&tenant()).len(), 3);
        let deps = t.dependencies(&tenant(), 0, i64::MAX);
        assert_eq!(
            deps,
            vec![DependencyLink {
                parent: "frontend".into(),
                child: "orders".into(),
                call_count: 2,
            }]
        );
    };
    check(store.clone(), 3).await;
    store.flush().await.expect("flush");
    assert_eq!(store.traces().read().segments.len(), 1);
    check(store.clone(), 3).await;
    // A second segment with more spans of trace 1: compaction merges them by trace.
    let mut late = span(1, 3, Some(2), "orders", 1_010, 2);
    late.span_id[7] = 9;
    late.status.code = StatusCode::Error;
    append(&store, vec![late]).await;
    store.flush().await.expect("flush");
    assert_eq!(store.compact().await.expect("compact"), 1);
    assert_eq!(store.traces().read().segments.len(), 1);
    assert_eq!(store.traces().segment_spans(), 7);
    let mut q = query();
    q.status = Some(StatusCode::Error);
    assert_eq!(
        store.traces().search(&q).await.expect("search"),
        vec![id(1)]
    );
    check(store.clone(), 4).await;
    drop(store);
    let store = open(dir.path()).await;
    assert_eq!(
        store
            .traces()
            .trace(&tenant(), &id(1))
            .await
            .expect("trace")
            .len(),
        4
    );
    check(store, 4).await;
}

#[tokio::test]
async fn unflushed_spans_survive_a_restart_through_the_wal() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path()).await;
    append(&store, trace(7, 1_000, 5)).await;
    drop(store);
    let store = open(dir.path()).await;
    assert_eq!(
        store
            .traces()
            .trace(&tenant(), &id(7))
            .await
            .expect("trace")
            .len(),
        3
    );
}

#[tokio::test]
async fn search_stops_at_the_limit_without_reading_older_blocks() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path()).await;
    for t in 0..5u8 {
        append(&store, trace(t, 1_000 * i64::from(t), 5)).await;
        store.flush().await.expect("flush");
    }
    let mut q = query();
    q.limit = 2;
    let before = store.metrics.scanned_blocks.get();
    assert_eq!(
        store.traces().search(&q).await.expect("search"),
        vec![id(4), id(3)]
    );
    assert_eq!(store.metrics.scanned_blocks.get() - before, 2);
}
