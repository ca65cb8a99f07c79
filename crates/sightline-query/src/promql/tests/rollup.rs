//! Range functions computed as rollups (all steps of a series at once, on all cores) give
//! bit for bit what the same expression gives as an instant query at each step, which is
//! evaluated step by step.

use std::collections::BTreeMap;

use sightline_model::{Labels, Sample, TenantId, stale_nan};

use super::super::{MemorySeries, PromError, PromLimits, PromQuery, PromValue, evaluate};

const STEP_MS: i64 = 60_000;
const START_MS: i64 = 20 * 60_000;
const END_MS: i64 = 140 * 60_000;

/// 200 counters with resets and gaps, and 200 gauges, one every 10–15 s for 2.5 hours; a
/// few series end with a staleness marker and come back.
fn source() -> MemorySeries {
    let mut src = MemorySeries::new();
    let mut state = 7u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    for i in 0..200 {
        let host = format!("h{i}");
        let (mut counter, mut gauge) = (Vec::new(), Vec::new());
        let (mut c, mut g) = (0.0, 50.0);
        let mut t = (i as i64 % 7) * 1_000;
        while t < 150 * 60_000 {
            c += (next() * 20.0).floor();
            if next() < 0.01 {
                c = 0.0;
            }
            g += next() * 4.0 - 2.0;
            let gap = i % 10 == 3 && (60 * 60_000..70 * 60_000).contains(&t);
            if !gap {
                counter.push(Sample {
                    timestamp_ms: t,
                    value: c,
                });
                gauge.push(Sample {
                    timestamp_ms: t,
                    value: g,
                });
            } else if counter.last().is_some_and(|p| !p.value.is_nan()) {
                counter.push(Sample {
                    timestamp_ms: t,
                    value: stale_nan(),
                });
                gauge.push(Sample {
                    timestamp_ms: t,
                    value: stale_nan(),
                });
            }
            t += 10_000 + (next() * 5_000.0) as i64;
        }
        let job = if i % 2 == 0 { "api" } else { "db" };
        src.add(
            Labels::from_pairs([("__name__", "c"), ("host", host.as_str()), ("job", job)]),
            counter,
        );
        src.add(
            Labels::from_pairs([("__name__", "g"), ("host", host.as_str()), ("job", job)]),
            gauge,
        );
    }
    src
}

fn run(
    src: &MemorySeries,
    expr: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<PromValue, PromError> {
    let q = PromQuery {
        expr: expr.to_string(),
        start_ms,
        end_ms,
        step_ms,
    };
    evaluate(src, &TenantId::default_tenant(), &q, &PromLimits::default())
}

type Points = BTreeMap<(Labels, i64), u64>;

fn by_step_and_labels(value: PromValue) -> Points {
    let mut out = Points::new();
    match value {
        PromValue::Matrix(m) => {
            for s in m {
                for p in s.points {
                    out.insert((s.labels.clone(), p.timestamp_ms), p.value.to_bits());
                }
            }
        }
        PromValue::Vector(v) => {
            for s in v {
                out.insert((s.labels, s.t_ms), s.v.to_bits());
            }
        }
        other => panic!("unexpected {other:?}"),
    }
    out
}

#[test]
fn rollups_equal_step_by_step_evaluation() {
    let src = source();
    let queries = [
        "rate(c[5m])",
        "increase(c[2m])",
        "delta(g[3m])",
        "irate(c[1m])",
        "idelta(g[1m])",
        "resets(c[10m])",
        "changes(g[5m])",
        "deriv(g[5m])",
        "predict_linear(g[10m], 600)",
        "holt_winters(g[5m], 0.3, 0.6)",
        "avg_over_time(g[7m])",
        "min_over_time(g[1m])",
        "max_over_time(g[30s])",
        "sum_over_time(g[5m])",
        "count_over_time(c[4m])",
        "quantile_over_time(0.9, g[10m])",
        "stddev_over_time(g[5m])",
        "stdvar_over_time(g[5m])",
        "last_over_time(c[1m])",
        "present_over_time(c[1m])",
        "rate(c[5m] offset 10m)",
        "max_over_time(g[1h] @ 5400)",
        "sum by (job) (rate(c[5m]))",
        // Aggregations folded over the rollup (`eval/rollup_aggregate.rs`), groups that
        // miss steps (the gaps), and consumers of the groups' order.
        "avg by (job) (avg_over_time(g[7m]))",
        "count without (host) (rate(c[5m]))",
        "min(max_over_time(g[1m]))",
        "max by (host) (min_over_time(g[2m]))",
        "group by (job) (changes(g[5m]))",
        "stddev by (job) (deriv(g[5m]))",
        "stdvar(rate(c[5m]))",
        "sum by (host) (rate(c[1m]))",
        "sum(sum by (host) (rate(c[5m])))",
        "sum(avg by (host) (avg_over_time(g[5m] offset 1m)) * 2)",
        "topk(3, avg by (host) (avg_over_time(g[5m])))",
        "sum by (job) (quantile_over_time(0.5, g[5m]))",
        "rate(c[5m]) / on (host, job) group_left avg_over_time(g[5m])",
    ];
    for q in queries {
        let range = by_step_and_labels(run(&src, q, START_MS, END_MS, STEP_MS).expect(q));
        let mut stepwise = Points::new();
        let mut t = START_MS;
        while t <= END_MS {
            stepwise.extend(by_step_and_labels(run(&src, q, t, t, 0).expect(q)));
            t += STEP_MS;
        }
        assert!(!range.is_empty(), "{q}: no points");
        assert_eq!(range.len(), stepwise.len(), "{q}: points");
        for (key, bits) in &stepwise {
            assert_eq!(
                range.get(key).map(|b| f64::from_bits(*b)),
                Some(f64::from_bits(*bits)),
                "{q} at {key:?}"
            );
        }
    }
}

#[test]
fn rollups_keep_the_duplicate_labelset_error() {
    let mut src = source();
    src.add(
        Labels::from_pairs([("__name__", "d"), ("host", "h1"), ("job", "db")]),
        vec![
            Sample {
                timestamp_ms: 100 * 60_000,
                value: 1.0,
            },
            Sample {
                timestamp_ms: 100 * 60_000 + 15_000,
                value: 2.0,
            },
        ],
    );
    let err = run(
        &src,
        r#"rate({__name__=~"c|d"}[5m])"#,
        START_MS,
        END_MS,
        STEP_MS,
    )
    .expect_err("c and d collide once names are dropped");
    assert!(err.to_string().contains("same labelset"), "{err}");
    let err = run(
        &src,
        "holt_winters(g[5m], 1.5, 0.5)",
        START_MS,
        END_MS,
        STEP_MS,
    )
    .expect_err("bad smoothing factor");
    assert!(err.to_string().contains("smoothing factor"), "{err}");
}
