use sightline_model::span::{SpanKind, SpanStatus};

use super::*;

const T0: i64 = 1_764_000_000_000; // on a minute

fn slo(yaml: &str) -> SloRuntime {
    let cfg: SloConfig = serde_yaml::from_str(yaml).expect("slo config");
    SloRuntime::new(cfg)
}

fn ratio() -> SloRuntime {
    slo("name: s\nobjective: 99\nsli:\n  errors: 'req{code=\"500\"}'\n  total: req\n")
}

fn data(labels: &[(&str, &str)], points: &[(i64, f64)]) -> SeriesData {
    SeriesData {
        labels: Labels::from_pairs(labels.iter().copied()),
        samples: points
            .iter()
            .map(|&(t, v)| sightline_model::Sample {
                timestamp_ms: t,
                value: v,
            })
            .collect(),
        stale_free: false,
    }
}

fn series(code: &str, points: &[(i64, f64)]) -> SeriesData {
    data(&[("__name__", "req"), ("code", code)], points)
}

fn total(s: &SloRuntime) -> Count {
    let mut sum = Count::default();
    s.counts.buckets.values().for_each(|c| sum.add(*c));
    sum
}

#[test]
fn counter_increases_are_counted_once_with_resets() {
    let mut s = ratio();
    // First read: the first sample of each series is a baseline.
    let all = |pts: &[(i64, f64)], errs: &[(i64, f64)]| {
        let mut t = vec![series("200", pts)];
        t.push(series("500", errs));
        vec![t, vec![series("500", errs)]]
    };
    s.apply(
        T0 + 10_000,
        all(
            &[(T0, 100.0), (T0 + 5_000, 110.0)],
            &[(T0, 1.0), (T0 + 5_000, 2.0)],
        ),
    );
    // total: +10 (200s) +1 (500s) = 11 events, 1 bad.
    assert_eq!(
        total(&s),
        Count {
            good: 10.0,
            total: 11.0
        }
    );
    // The next read overlaps the previous: old samples are not counted again; a counter
    // reset (110 → 5) counts 5.
    s.apply(
        T0 + 70_000,
        all(
            &[(T0, 100.0), (T0 + 5_000, 110.0), (T0 + 65_000, 5.0)],
            &[(T0 + 5_000, 2.0), (T0 + 65_000, 4.0)],
        ),
    );
    // 200s: reset, +5; 500s: +2 in total and +2 errors.
    assert_eq!(
        total(&s),
        Count {
            good: 15.0,
            total: 18.0
        }
    );
    // The later samples went to the later minute.
    assert_eq!(
        s.counts.buckets[&(T0 + 60_000)],
        Count {
            good: 5.0,
            total: 7.0
        }
    );
    // A series first seen after the first read counts from zero.
    let new = SeriesData {
        labels: Labels::from_pairs([("__name__", "req"), ("code", "503")]),
        samples: vec![sightline_model::Sample {
            timestamp_ms: T0 + 80_000,
            value: 3.0,
        }],
        stale_free: false,
    };
    s.apply(T0 + 90_000, vec![vec![new], vec![]]);
    assert_eq!(total(&s).total, 21.0);
}

#[test]
fn latency_reads_the_threshold_bucket_and_says_when_it_is_missing() {
    let mut s = slo("name: l\nobjective: 99\nsli:\n  latency: {metric: d, threshold: 0.25}\n");
    let point = |name: &str, le: Option<&str>, pts: &[(i64, f64)]| {
        let mut pairs = vec![("__name__", name)];
        if let Some(le) = le {
            pairs.push(("le", le));
        }
        data(&pairs, pts)
    };
    s.apply(
        T0,
        vec![vec![point("d_count", None, &[(T0 - 1, 0.0)])], vec![]],
    );
    s.apply(
        T0 + 1_000,
        vec![
            vec![point("d_count", None, &[(T0 + 500, 20.0)])],
            vec![
                point("d_bucket", Some("0.25"), &[(T0 + 500, 18.0)]),
                point("d_bucket", Some("0.5"), &[(T0 + 500, 19.0)]),
            ],
        ],
    );
    // The bucket series is new after the first read: it counts from zero.
    assert_eq!(
        total(&s),
        Count {
            good: 18.0,
            total: 20.0
        }
    );
    assert_eq!(s.last_error, None);
    s.apply(
        T0 + 2_000,
        vec![
            vec![],
            vec![point("d_bucket", Some("0.3"), &[(T0 + 1_500, 1.0)])],
        ],
    );
    assert!(
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("le=\"0.25\""))
    );
}

#[test]
fn probe_samples_are_events() {
    let mut s = slo("name: p\nobjective: 99\nsli: {probe: web}\n");
    let probe = |pts: &[(i64, f64)]| data(&[("__name__", "probe_success"), ("probe", "web")], pts);
    s.apply(
        T0,
        vec![vec![probe(&[(T0 - 2_000, 1.0), (T0 - 1_000, 0.0)])]],
    );
    s.apply(
        T0 + 1_000,
        vec![vec![probe(&[(T0 - 1_000, 0.0), (T0 + 500, 1.0)])]],
    );
    assert_eq!(
        total(&s),
        Count {
            good: 2.0,
            total: 3.0
        }
    );
}

fn span(service: &str, name: &str, ms: i64, error: bool) -> Span {
    let end_ns = (T0 + 1_000) * 1_000_000;
    Span {
        trace_id: [7; 16],
        span_id: [1; 8],
        parent_span_id: None,
        trace_state: String::new(),
        name: name.into(),
        kind: SpanKind::Server,
        start_ns: end_ns - ms * 1_000_000,
        end_ns,
        status: SpanStatus {
            code: if error {
                StatusCode::Error
            } else {
                StatusCode::Ok
            },
            message: String::new(),
        },
        service: service.into(),
        resource: vec![],
        scope_name: String::new(),
        scope_version: String::new(),
        attributes: vec![],
        events: vec![],
        links: vec![],
    }
}

#[test]
fn spans_are_bad_when_failed_or_slow() {
    let mut s = slo(
        "name: sp\nobjective: 99\nsli:\n  spans: {service: orders, operation: 'POST /o', max_duration: 500ms}\n",
    );
    let tenant = TenantId::default_tenant();
    s.observe_spans(
        &tenant,
        &[
            span("orders", "POST /o", 100, false),
            span("orders", "POST /o", 500, false), // at the limit: good
            span("orders", "POST /o", 501, false),
            span("orders", "POST /o", 10, true),
            span("orders", "GET /o", 900, true), // another operation
            span("billing", "POST /o", 900, true), // another service
        ],
    );
    s.observe_spans(
        &TenantId::new("other").expect("tenant"),
        &[span("orders", "POST /o", 1, true)],
    );
    assert_eq!(
        total(&s),
        Count {
            good: 2.0,
            total: 4.0
        }
    );
    s.evaluate(T0 + 1_000, "");
    let ann = s.annotations(
        SloAlert::BurnPage,
        s.status.as_ref().expect("status"),
        "http://x",
    );
    let debug = ann
        .iter()
        .find(|(k, _)| k == "debug_url")
        .expect("debug link");
    assert_eq!(
        debug.1,
        format!("http://x/api/v1/debug/{}", "07".repeat(16))
    );
}

fn burst(s: &mut SloRuntime, good: f64, total: f64) {
    s.counts.buckets.insert(T0, Count { good, total });
}

fn firing(s: &SloRuntime) -> Vec<(String, String)> {
    s.alerts()
        .flat_map(AlertSet::active)
        .map(|a| {
            (
                a.labels.get("alertname").unwrap_or("").to_string(),
                a.labels.get("severity").unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn fast_burn_pages_but_not_on_three_requests() {
    let mut s = slo("name: a\nobjective: 99.9\nsli: {spans: {service: x}}\n");
    burst(&mut s, 2.0, 3.0);
    s.evaluate(T0 + 1_000, "");
    assert!(
        !firing(&s).iter().any(|(n, _)| n == "SLOBurnRateHigh"),
        "1 failure in 3 requests is under the low-traffic guard: {:?}",
        firing(&s)
    );
    burst(&mut s, 950.0, 1_000.0);
    s.evaluate(T0 + 2_000, "");
    let f = firing(&s);
    assert!(
        f.contains(&("SLOBurnRateHigh".into(), "page".into())),
        "{f:?}"
    );
    assert!(
        f.contains(&("SLOBurnRateHigh".into(), "ticket".into())),
        "{f:?}"
    );
    assert!(
        f.contains(&("SLOErrorBudgetConsumed".into(), "page".into())),
        "{f:?}"
    );
    let st = s.status.as_ref().expect("status");
    assert!((st.burn("5m").expect("burn") - 50.0).abs() < 1e-9);
    // Errors stop; after enough good traffic the page resolves.
    s.counts.buckets.insert(
        T0 + 60_000,
        Count {
            good: 1e6,
            total: 1e6,
        },
    );
    s.evaluate(T0 + 61_000, "");
    assert!(!firing(&s).contains(&("SLOBurnRateHigh".into(), "page".into())));
}

#[test]
fn no_data_fires_when_the_source_is_silent() {
    let mut s = slo("name: n\nobjective: 99\nno_data_after: 1m\nsli: {spans: {service: x}}\n");
    s.evaluate(T0, "");
    assert!(firing(&s).is_empty());
    s.evaluate(T0 + 60_000, "");
    assert_eq!(
        firing(&s),
        vec![("SLONoData".to_string(), "warning".to_string())]
    );
}

#[test]
fn counts_survive_a_save_and_restore() {
    let mut s = ratio();
    burst(&mut s, 5.0, 10.0);
    s.counts.cursor_ms = Some(T0);
    let json = serde_json::to_string(&s.counts).expect("encode");
    let mut back = ratio();
    back.restore(serde_json::from_str(&json).expect("decode"));
    assert_eq!(back.counts.buckets, s.counts.buckets);
    assert_eq!(back.counts.cursor_ms, Some(T0));
    assert_eq!(back.counts.alerts.len(), SloAlert::ALL.len());
    // A changed SLI keeps the buckets but starts its cursors afresh.
    let mut changed =
        slo("name: s\nobjective: 99\nsli:\n  errors: 'req{code=~\"5..\"}'\n  total: req\n");
    changed.restore(serde_json::from_str(&json).expect("decode"));
    assert_eq!(changed.counts.buckets, s.counts.buckets);
    assert_eq!(changed.counts.cursor_ms, None);
}
