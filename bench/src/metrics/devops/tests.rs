use std::collections::HashMap;

use sightline_ingest::remote_write;

use super::*;
use crate::ingest::Batches as _;

fn workload(hosts: u32, rounds: u32) -> Workload {
    Workload {
        seed: 1,
        hosts,
        interval_ms: 10_000,
        rounds,
        start_ms: 1_700_000_000_000,
    }
}

/// Batch `k` as `remote_write::proto` types, built the slow and obvious way.
fn request_of(batches: &Batches<'_>, k: u64) -> proto::WriteRequest {
    let shard = (k % batches.shards.len() as u64) as usize;
    let b = k / batches.shards.len() as u64;
    let series = &batches.shards[shard];
    let total = series.len() as u64 * u64::from(batches.devops.workload.rounds);
    let first = (b * batches.per_batch[shard]).min(total);
    let end = (first + batches.per_batch[shard]).min(total);
    proto::WriteRequest {
        timeseries: (first..end)
            .map(|p| {
                let round = (p / series.len() as u64) as u32;
                let s = series[(p % series.len() as u64) as usize] as usize;
                proto::TimeSeries {
                    labels: batches.devops.labels[s]
                        .iter()
                        .map(|(name, value)| proto::Label {
                            name: name.clone(),
                            value: value.clone(),
                        })
                        .collect(),
                    samples: vec![proto::Sample {
                        value: batches.devops.value(s, round),
                        timestamp: batches.devops.timestamp_ms(s, round),
                    }],
                    ..Default::default()
                }
            })
            .collect(),
        metadata: Vec::new(),
    }
}

#[test]
fn bodies_are_what_remote_write_encode_makes_of_the_samples() {
    let devops = Devops::generate(workload(3, 5), 2).expect("generate");
    let batches = Batches::new(&devops, 2, 7).expect("batches");
    let mut samples = 0;
    for k in 0..batches.count() {
        let built = batches.build(k).expect("build");
        let want = request_of(&batches, k);
        if want.timeseries.is_empty() {
            assert!(built.body.is_empty(), "batch {k}");
            continue;
        }
        let want_body = remote_write::encode(&want).expect("encode");
        assert_eq!(built.body.as_ref(), want_body.as_slice(), "batch {k}");
        assert_eq!(built.tally.0, want.timeseries.len() as u64);
        assert!(built.tally.0 <= 7);
        // And Sightline's own decoder takes it.
        let decoded =
            remote_write::decode(&built.body, true, 1_800_000_000_000, 0, &Default::default())
                .expect("decode");
        assert_eq!(decoded.metrics.sample_count() as u64, built.tally.0);
        samples += built.tally.0;
    }
    assert_eq!(samples, devops.workload.samples());
}

#[test]
fn every_sample_is_sent_once_and_each_series_in_time_order() {
    let devops = Devops::generate(workload(4, 30), 3).expect("generate");
    let shards = 3;
    let batches = Batches::new(&devops, shards, 50).expect("batches");
    assert_eq!(batches.count() % shards as u64, 0);
    // Client c sends batches c, c + shards, …: replay that per client.
    let mut last: HashMap<Vec<(String, String)>, (usize, i64)> = HashMap::new();
    let mut seen = 0;
    for client in 0..shards as u64 {
        let mut k = client;
        while k < batches.count() {
            for ts in request_of(&batches, k).timeseries {
                let labels: Vec<_> = ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
                let t = ts.samples[0].timestamp;
                if let Some((c, prev)) = last.insert(labels.clone(), (client as usize, t)) {
                    assert_eq!(c, client as usize, "{labels:?} in two shards");
                    assert!(t > prev, "{labels:?}: {t} after {prev}");
                }
                seen += 1;
            }
            k += shards as u64;
        }
    }
    assert_eq!(seen, devops.workload.samples());
    assert_eq!(last.len() as u64, devops.workload.series());
}

#[test]
fn generation_is_deterministic() {
    let a = Devops::generate(workload(5, 20), 1).expect("generate");
    let b = Devops::generate(workload(5, 20), 4).expect("generate");
    assert_eq!(a.values, b.values);
    assert_eq!(a.labels, b.labels);
    let c = Devops::generate(
        Workload {
            seed: 2,
            ..workload(5, 20)
        },
        1,
    )
    .expect("generate");
    assert_ne!(a.values, c.values);
}

#[test]
fn values_look_like_an_exporter_printed_them() {
    let w = workload(20, 360);
    let d = Devops::generate(w.clone(), 2).expect("generate");
    let label = |s: usize, name: &str| {
        d.labels[s]
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    for host in 0..w.hosts as usize {
        let base = host * SERIES_PER_HOST;
        assert_eq!(
            label(base, "hostname").as_deref(),
            Some(&*format!("host_{host}"))
        );
        for s in base..base + SERIES_PER_HOST {
            let names: Vec<_> = d.labels[s].iter().map(|(n, _)| n.clone()).collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted, "labels of series {s} sorted");
        }
        for r in 0..w.rounds {
            for s in base..base + CPU_METRICS.len() {
                let v = d.value(s, r);
                assert!((0.0..=100.0).contains(&v), "{v}");
                assert_eq!(
                    v,
                    (v * 100.0).round() / 100.0,
                    "{v} has two decimals at most"
                );
            }
            let buckets = base + CPU_METRICS.len() + REQUEST_SERIES.len();
            for s in base + CPU_METRICS.len()..base + SERIES_PER_HOST {
                if r > 0 {
                    assert!(d.value(s, r) >= d.value(s, r - 1), "counter {s} went down");
                }
            }
            for i in 1..BUCKETS.len() {
                assert!(d.value(buckets + i, r) >= d.value(buckets + i - 1, r));
            }
            let inf = d.value(buckets + BUCKETS.len() - 1, r);
            assert_eq!(
                inf,
                d.value(buckets + BUCKETS.len() + 1, r),
                "+Inf = _count"
            );
            let sum = d.value(buckets + BUCKETS.len(), r);
            assert_eq!(sum, (sum * 1_000.0).round() / 1_000.0, "_sum in whole ms");
        }
        // The walk moves, and the busy counter grows by about 40/s × load.
        assert_ne!(d.value(base, 0), d.value(base, w.rounds - 1));
        let grew = d.value(base + CPU_METRICS.len(), w.rounds - 1);
        assert!(grew > 10.0 * 3_600.0 && grew < 100.0 * 3_600.0, "{grew}");
    }
    let t0 = d.timestamp_ms(0, 0);
    assert!(t0 >= w.start_ms && t0 < w.start_ms + w.interval_ms);
    assert_eq!(d.timestamp_ms(0, 1) - t0, w.interval_ms);
    assert!(d.timestamp_ms(d.labels.len() - 1, w.rounds - 1) < w.end_ms());
}
