//! TSDB tests through the real store: WAL, heads, flush, restart, compaction.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use sightline_model::{
    Exemplar, LabelMatcher, Labels, MatchOp, MetricBatch, MetricMetadata, MetricType, Sample,
    SeriesSamples, SeriesSelection, TenantId,
};

use crate::{Store, StoreConfig, StoreError, StoreMetrics};

async fn open_with(dir: &Path, f: impl FnOnce(&mut StoreConfig)) -> Arc<Store> {
    let mut c = StoreConfig::new(dir);
    f(&mut c);
    Store::open(c, StoreMetrics::default())
        .await
        .expect("open")
        .0
}

fn tenant() -> TenantId {
    TenantId::new("default").expect("tenant")
}

fn series(name: &str, host: &str, samples: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples {
        labels: Labels::from_pairs([("__name__", name), ("host", host)]),
        samples: samples
            .iter()
            .map(|&(t, v)| Sample {
                timestamp_ms: t,
                value: v,
            })
            .collect(),
        exemplars: vec![],
    }
}

fn batch(series: Vec<SeriesSamples>) -> Arc<MetricBatch> {
    Arc::new(MetricBatch {
        tenant: tenant(),
        series,
        metadata: vec![],
    })
}

fn sel(matchers: &[(&str, MatchOp, &str)], start_ms: i64, end_ms: i64) -> SeriesSelection {
    SeriesSelection {
        tenant: tenant(),
        matchers: matchers
            .iter()
            .map(|(n, op, v)| LabelMatcher::new(n, *op, v).expect("matcher"))
            .collect(),
        start_ms,
        end_ms,
    }
}

/// (host, [(t, v)]) of every selected series.
async fn read(store: &Store, s: &SeriesSelection) -> Vec<(String, Vec<(i64, f64)>)> {
    store
        .tsdb()
        .select(s)
        .await
        .expect("select")
        .into_iter()
        .map(|x| {
            (
                x.labels.get("host").unwrap_or("").to_string(),
                x.samples
                    .iter()
                    .map(|s| (s.timestamp_ms, s.value))
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_survive_flush_restart_and_merge_across_sources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let day = 86_400_000;
    {
        let store = open_with(dir.path(), |_| {}).await;
        store
            .append_metrics(batch(vec![
                series("cpu", "a", &[(1000, 1.0), (2000, 2.0)]),
                series("cpu", "b", &[(1000, 10.0)]),
            ]))
            .await
            .expect("append");
        store.flush().await.expect("flush");
        // Out of order, a duplicate timestamp (the later write wins) and another day.
        store
            .append_metrics(batch(vec![
                series("cpu", "a", &[(3000, 3.0), (1500, 1.5), (2000, 20.0)]),
                series("cpu", "a", &[(day + 5, 7.0)]),
                series("mem", "a", &[(1000, 5.0)]),
            ]))
            .await
            .expect("append");
        let all = sel(&[("__name__", MatchOp::Eq, "cpu")], 0, 2 * day);
        let want = vec![
            (
                "a".to_string(),
                vec![
                    (1000, 1.0),
                    (1500, 1.5),
                    (2000, 20.0),
                    (3000, 3.0),
                    (day + 5, 7.0),
                ],
            ),
            ("b".to_string(), vec![(1000, 10.0)]),
        ];
        assert_eq!(read(&store, &all).await, want);
        store.flush().await.expect("flush");
        assert_eq!(read(&store, &all).await, want);
        assert_eq!(store.tsdb().read().segments.len(), 3);
        assert!(store.compact().await.expect("compact") >= 1);
        assert_eq!(read(&store, &all).await, want);
    }
    let store = open_with(dir.path(), |_| {}).await;
    let all = sel(&[("__name__", MatchOp::Eq, "cpu")], 0, 2 * day);
    assert_eq!(read(&store, &all).await.len(), 2);
    let narrow = sel(
        &[
            ("__name__", MatchOp::Re, "cpu|mem"),
            ("host", MatchOp::Neq, "b"),
        ],
        1500,
        2000,
    );
    assert_eq!(
        read(&store, &narrow).await,
        vec![("a".to_string(), vec![(1500, 1.5), (2000, 20.0)])]
    );
    let t = tenant();
    let names: Vec<String> = store
        .tsdb()
        .series(&t, &[], 0, 2 * day)
        .iter()
        .map(|l| l.get("__name__").unwrap_or("").to_string())
        .collect();
    assert_eq!(names, vec!["cpu", "cpu", "mem"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unflushed_samples_metadata_and_exemplars_are_replayed_from_the_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open_with(dir.path(), |_| {}).await;
        let mut s = series("http_requests_total", "a", &[(1000, 1.0)]);
        s.exemplars.push(Exemplar {
            labels: Labels::from_pairs([("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]),
            value: 1.0,
            timestamp_ms: 1000,
        });
        store
            .append_metrics(Arc::new(MetricBatch {
                tenant: tenant(),
                series: vec![s],
                metadata: vec![MetricMetadata {
                    metric_family: "http_requests_total".into(),
                    metric_type: MetricType::Counter,
                    help: "requests".into(),
                    unit: String::new(),
                }],
            }))
            .await
            .expect("append");
    }
    let store = open_with(dir.path(), |_| {}).await;
    let t = tenant();
    assert_eq!(read(&store, &sel(&[], 0, 5000)).await.len(), 1);
    let meta = store.tsdb().metadata(&t);
    assert_eq!(meta["http_requests_total"].metric_type, MetricType::Counter);
    let ex = store.tsdb().exemplars(&t, &[], 0, 5000);
    assert_eq!(ex.len(), 1);
    // Exemplars and metadata are kept in segments too.
    store.flush().await.expect("flush");
    drop(store);
    let store = open_with(dir.path(), |_| {}).await;
    assert_eq!(store.tsdb().exemplars(&t, &[], 0, 5000).len(), 1);
    assert_eq!(store.tsdb().metadata(&t).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_past_the_series_limit_is_refused_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_with(dir.path(), |c| c.series_per_tenant_max = 2).await;
    store
        .append_metrics(batch(vec![series("up", "a", &[(1, 1.0)])]))
        .await
        .expect("first");
    let err = store
        .append_metrics(batch(vec![
            series("up", "a", &[(2, 1.0)]),
            series("up", "b", &[(2, 1.0)]),
            series("up", "c", &[(2, 1.0)]),
        ]))
        .await
        .expect_err("over the limit");
    assert!(matches!(err, StoreError::TooManySeries(_)), "{err}");
    assert_eq!(read(&store, &sel(&[], 0, 10)).await.len(), 1);
    // Known series still take samples.
    store
        .append_metrics(batch(vec![
            series("up", "a", &[(3, 1.0)]),
            series("up", "b", &[(3, 1.0)]),
        ]))
        .await
        .expect("within the limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_metric_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_with(dir.path(), |c| {
        c.retention = std::time::Duration::from_secs(3600)
    })
    .await;
    let now_ms = sightline_model::now_ns() / 1_000_000;
    store
        .append_metrics(batch(vec![
            series("old", "a", &[(now_ms - 3 * 86_400_000, 1.0)]),
            series("new", "a", &[(now_ms, 1.0)]),
        ]))
        .await
        .expect("append");
    store.flush().await.expect("flush");
    assert_eq!(store.apply_retention().await.expect("retention"), 1);
    let names: Vec<String> = store
        .tsdb()
        .series(&tenant(), &[], 0, i64::MAX)
        .iter()
        .map(|l| l.get("__name__").unwrap_or("").to_string())
        .collect();
    assert_eq!(names, vec!["new"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_share_the_label_sets_of_a_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_with(dir.path(), |_| {}).await;
    for t in [1000, 2000] {
        store
            .append_metrics(batch(vec![series("cpu", "a", &[(t, 1.0)])]))
            .await
            .expect("append");
        store.flush().await.expect("flush");
    }
    let st = store.tsdb().read();
    assert_eq!(st.segments.len(), 2);
    assert!(st.segments[0].labels[0].ptr_eq(&st.segments[1].labels[0]));
}

/// A second read of the same blocks comes from the block cache (no bytes read), with the
/// same answer; after compaction the new segment's blocks are read and give it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_reads_come_from_the_block_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = StoreMetrics::default();
    let store = Store::open(StoreConfig::new(dir.path()), metrics.clone())
        .await
        .expect("open")
        .0;
    for round in 0..2_i64 {
        let hosts: Vec<SeriesSamples> = (0..500)
            .map(|h| {
                let points: Vec<(i64, f64)> = (0..100)
                    .map(|i| (round * 1_000_000 + i * 10_000, (h * i) as f64))
                    .collect();
                series("cpu", &format!("h{h:03}"), &points)
            })
            .collect();
        store.append_metrics(batch(hosts)).await.expect("append");
        store.flush().await.expect("flush");
    }
    let all = sel(&[("__name__", MatchOp::Eq, "cpu")], 0, 10_000_000);
    let bytes_read = || metrics.segment_bytes_read.get();
    let first = read(&store, &all).await;
    assert_eq!(first.len(), 500);
    assert!(first.iter().all(|(_, points)| points.len() == 200));
    let after_first = bytes_read();
    assert!(after_first > 0);
    assert_eq!(read(&store, &all).await, first);
    assert_eq!(
        bytes_read(),
        after_first,
        "the second read is served from the cache"
    );
    assert!(store.compact().await.expect("compact") >= 1);
    assert_eq!(read(&store, &all).await, first);
    assert!(
        bytes_read() > after_first,
        "the compacted segment is read anew"
    );
}

/// Series replayed from the WAL and series loaded from segments hold the interner's one
/// set, so a decoder that finds a set there finds the head's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_loaded_series_share_the_interners_sets() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open_with(dir.path(), |_| {}).await;
        store
            .append_metrics(batch(vec![series("cpu", "a", &[(1000, 1.0)])]))
            .await
            .expect("append");
        store.flush().await.expect("flush");
        store
            .append_metrics(batch(vec![series("cpu", "b", &[(2000, 1.0)])]))
            .await
            .expect("append");
    }
    let store = open_with(dir.path(), |_| {}).await;
    let interner = store.label_interner();
    let find = |host: &str| {
        let pairs = [("__name__", "cpu"), ("host", host)];
        interner
            .get(sightline_model::labels::pairs_hash(&pairs), &pairs)
            .expect("interned")
    };
    let st = store.tsdb().read();
    assert!(st.segments[0].labels[0].ptr_eq(&find("a")));
    let head = st.active.tenant(&tenant()).expect("replayed");
    assert!(head.series(0).labels.ptr_eq(&find("b")));
    drop(st);
    assert_eq!(interner.prune(), 2, "both are held");
}

/// WAL files written before records named series by reference (type 2) replay beside
/// files of the new records (type 4), and a file of type-4 records stands on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_and_by_reference_wal_records_replay_across_files() {
    use crate::wal::{RecordType, Wal, wal_dir};
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let wal = Wal::open(&wal_dir(dir.path()), Box::new(|_| {})).expect("wal");
        let old = MetricBatch {
            tenant: tenant(),
            series: vec![series("cpu", "a", &[(1000, 1.0)])],
            metadata: vec![],
        };
        let payload = crate::tsdb::encode_wal_batch(&old).expect("encode");
        wal.append(RecordType::Metrics, payload, Box::new(|| {}))
            .await
            .expect("append");
    }
    {
        let store = open_with(dir.path(), |_| {}).await;
        // Two records in one file: the second names "a" by the number the first defined.
        for t in [2000, 3000] {
            store
                .append_metrics(batch(vec![
                    series("cpu", "a", &[(t, 2.0)]),
                    series("cpu", "b", &[(t, 3.0)]),
                ]))
                .await
                .expect("append");
        }
    }
    {
        // A restart starts a new file; its first record defines the series again.
        let store = open_with(dir.path(), |_| {}).await;
        store
            .append_metrics(batch(vec![series("cpu", "b", &[(4000, 4.0)])]))
            .await
            .expect("append");
    }
    let store = open_with(dir.path(), |_| {}).await;
    let got = read(&store, &sel(&[("__name__", MatchOp::Eq, "cpu")], 0, 10_000)).await;
    assert_eq!(
        got,
        vec![
            ("a".to_string(), vec![(1000, 1.0), (2000, 2.0), (3000, 2.0)]),
            ("b".to_string(), vec![(2000, 3.0), (3000, 3.0), (4000, 4.0)]),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_selection_over_overlapping_segments_and_the_head_keeps_the_last_write() {
    // Enough series and samples to decode on threads, over several blocks a segment, with
    // each round of writes overlapping the one before: the later write must win whichever
    // source holds it.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_with(dir.path(), |_| {}).await;
    let hosts: Vec<String> = (0..1500).map(|h| format!("h{h:04}")).collect();
    let mut want: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    for round in 0..3i64 {
        let mut all = Vec::new();
        for (h, host) in hosts.iter().enumerate() {
            // Every third host skips the middle round: its series is in two sources only.
            if round == 1 && h % 3 == 0 {
                continue;
            }
            let samples: Vec<(i64, f64)> = (round * 40..round * 40 + 60)
                .map(|t| {
                    (
                        t * 1000,
                        (h as f64 * 7919.0 + t as f64) / 7.0 + round as f64,
                    )
                })
                .collect();
            for &(t, v) in &samples {
                want.entry(host.clone()).or_default().insert(t, v);
            }
            all.push(series("cpu", host, &samples));
        }
        store.append_metrics(batch(all)).await.expect("append");
        if round < 2 {
            store.flush().await.expect("flush");
        }
    }
    let segments = store.tsdb().read().segments.clone();
    assert_eq!(segments.len(), 2);
    assert!(
        segments.iter().all(|s| s.footer.blocks.len() > 1),
        "every segment spans several blocks"
    );
    for (start, end) in [(0, i64::MAX), (50_000, 70_000)] {
        let got = read(
            &store,
            &sel(&[("__name__", MatchOp::Eq, "cpu")], start, end),
        )
        .await;
        let want: Vec<(String, Vec<(i64, f64)>)> = want
            .iter()
            .map(|(host, s)| {
                let s: Vec<(i64, f64)> = s.range(start..=end).map(|(&t, &v)| (t, v)).collect();
                (host.clone(), s)
            })
            .collect();
        assert_eq!(got, want, "range {start}..={end}");
    }
}

#[tokio::test]
async fn a_selection_tells_which_series_may_hold_a_staleness_marker() {
    // The query engine skips its own scan for markers on series the store says hold none.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_with(dir.path(), |_| {}).await;
    let stale = sightline_model::stale_nan();
    let flushed = vec![
        series("up", "in-segment", &[(1000, 1.0), (2000, stale)]),
        series("up", "none", &[(1000, 1.0), (2000, 1.0)]),
        series("up", "in-head", &[(1000, 1.0)]),
    ];
    store.append_metrics(batch(flushed)).await.expect("append");
    store.flush().await.expect("flush");
    let in_head = vec![
        series("up", "in-head", &[(3000, stale)]),
        series("up", "none", &[(3000, 0.5)]),
    ];
    store.append_metrics(batch(in_head)).await.expect("append");
    let got = store
        .tsdb()
        .select(&sel(&[("__name__", MatchOp::Eq, "up")], 0, i64::MAX))
        .await
        .expect("select");
    let flags: Vec<(String, bool)> = got
        .iter()
        .map(|s| {
            (
                s.labels.get("host").unwrap_or("").to_string(),
                s.may_hold_stale,
            )
        })
        .collect();
    assert_eq!(
        flags,
        [
            ("in-head".to_string(), true),
            ("in-segment".to_string(), true),
            ("none".to_string(), false),
        ]
    );
}
