//! Table tests of what surrounds evaluation: the ranges fetched per selector, tenants,
//! limits, query validation, parse errors and the JSON rendering of results.

use std::time::Duration;

use serde_json::json;
use sightline_model::{Labels, Sample, TenantId, stale_nan};

use super::super::{
    MemorySeries, PromError, PromLimits, PromQuery, PromValue, evaluate, parse, to_prometheus_json,
};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn samples(points: &[(i64, f64)]) -> Vec<Sample> {
    points
        .iter()
        .map(|&(timestamp_ms, value)| Sample {
            timestamp_ms,
            value,
        })
        .collect()
}

/// `up{job="a"}` every minute for an hour, value = minute.
fn source() -> MemorySeries {
    let mut src = MemorySeries::new();
    let points: Vec<(i64, f64)> = (0..=60).map(|m| (m * 60_000, m as f64)).collect();
    src.add(
        labels(&[("__name__", "up"), ("job", "a")]),
        samples(&points),
    );
    src
}

fn instant(expr: &str, t_ms: i64) -> PromQuery {
    PromQuery {
        expr: expr.to_string(),
        start_ms: t_ms,
        end_ms: t_ms,
        step_ms: 0,
    }
}

fn range(expr: &str, start_ms: i64, end_ms: i64, step_ms: i64) -> PromQuery {
    PromQuery {
        expr: expr.to_string(),
        start_ms,
        end_ms,
        step_ms,
    }
}

fn run(src: &MemorySeries, q: &PromQuery) -> Result<PromValue, PromError> {
    evaluate(src, &TenantId::default_tenant(), q, &PromLimits::default())
}

#[test]
fn fetches_each_selector_once_for_the_whole_query() {
    let check = |q: PromQuery, want: &[(i64, i64)]| {
        let src = source();
        run(&src, &q).unwrap_or_else(|e| panic!("{}: {e}", q.expr));
        let got: Vec<(i64, i64)> = src
            .selections()
            .iter()
            .map(|s| (s.start_ms, s.end_ms))
            .collect();
        assert_eq!(got, want, "{}", q.expr);
    };
    check(instant("up", 1_000_000), &[(700_000, 1_000_000)]);
    check(
        range("up", 600_000, 1_200_000, 60_000),
        &[(300_000, 1_200_000)],
    );
    check(
        range("rate(up[5m] offset 1m)", 600_000, 1_200_000, 15_000),
        &[(240_000, 1_140_000)],
    );
    check(
        range("up offset -2m", 600_000, 1_200_000, 60_000),
        &[(420_000, 1_320_000)],
    );
    check(instant("up @ 100", 3_600_000), &[(-200_000, 100_000)]);
    check(
        range("sum_over_time(up[1m] @ end())", 0, 600_000, 60_000),
        &[(540_000, 600_000)],
    );
    check(
        instant("max_over_time(up[10m:1m] offset 5m)", 3_600_000),
        &[(2_400_000, 3_300_000)],
    );
    check(
        instant("max_over_time(rate(up[2m])[10m:])", 3_600_000),
        &[(2_880_000, 3_600_000)],
    );
    check(
        instant("up + up{job=\"a\"}", 60_000),
        &[(-240_000, 60_000), (-240_000, 60_000)],
    );
    check(instant("1 + time()", 60_000), &[]);
}

#[test]
fn answers_only_the_tenant_asked() {
    let mut src = source();
    let other = TenantId::new("other").expect("valid tenant");
    src.add_for(
        other.clone(),
        labels(&[("__name__", "up"), ("job", "b")]),
        samples(&[(0, 5.0)]),
    );
    let got =
        evaluate(&src, &other, &instant("up", 60_000), &PromLimits::default()).expect("query runs");
    let PromValue::Vector(v) = got else {
        panic!("not a vector: {got:?}")
    };
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].labels, labels(&[("__name__", "up"), ("job", "b")]));
    assert_eq!(v[0].v, 5.0);
}

#[test]
fn enforces_limits_with_prometheus_messages() {
    let check = |q: PromQuery, limits: PromLimits, want: &str| {
        let err = evaluate(&source(), &TenantId::default_tenant(), &q, &limits)
            .expect_err("limit applies");
        assert_eq!(err.to_string(), want, "{}", q.expr);
    };
    check(
        instant("sum_over_time(up[1h])", 3_600_000),
        PromLimits {
            samples_max: 60,
            ..PromLimits::default()
        },
        "query processing would load too many samples into memory in query execution",
    );
    check(
        range("up", 0, 3_600_000, 1000),
        PromLimits {
            timeout: Duration::ZERO,
            ..PromLimits::default()
        },
        "query timed out in query execution",
    );
    check(
        range("up", 0, 11_001_000, 1000),
        PromLimits::default(),
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the \
         query resolution (?step=XX)",
    );
    check(
        range("up", 0, 60_000, 0),
        PromLimits::default(),
        "zero or negative query resolution step widths are not accepted. Try a positive integer",
    );
    check(
        range("up", 60_000, 0, 1000),
        PromLimits::default(),
        "end timestamp must not be before start time",
    );
    check(
        range("up[5m]", 0, 60_000, 1000),
        PromLimits::default(),
        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector",
    );
}

#[test]
fn limits_default_to_prometheus_flags() {
    let l = PromLimits::default();
    assert_eq!(l.timeout, Duration::from_secs(120));
    assert_eq!(l.samples_max, 50_000_000);
    assert_eq!(l.lookback_ms, 300_000);
    assert_eq!(l.points_max, 11_000);
    assert_eq!(l.subquery_step_ms, 60_000);
}

#[test]
fn lookback_is_configurable() {
    let limits = PromLimits {
        lookback_ms: 30_000,
        ..PromLimits::default()
    };
    let got = evaluate(
        &source(),
        &TenantId::default_tenant(),
        &instant("up", 90_001),
        &limits,
    )
    .expect("query runs");
    assert_eq!(got, PromValue::Vector(Vec::new()));
}

#[test]
fn parse_refuses_what_prometheus_2_42_lacks() {
    let check = |expr: &str, want: Result<(), &str>| {
        let got = parse(expr).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(str::to_string), "{expr}");
    };
    check("holt_winters(up[5m], 0.5, 0.5)", Ok(()));
    check("histogram_quantile(0.9, rate(x_bucket[5m]))", Ok(()));
    check(
        "mad_over_time(up[5m])",
        Err("1:1: parse error: unknown function with name \"mad_over_time\""),
    );
    check(
        "sum(up) + sort_by_label(up, \"job\")",
        Err("1:11: parse error: unknown function with name \"sort_by_label\""),
    );
    check(
        "limitk(2, up)",
        Err("1:1: parse error: unknown function with name \"limitk\""),
    );
    check(
        "1 +\n  nonexistent(up)",
        Err("2:3: parse error: unknown function with name \"nonexistent\""),
    );
    check(
        "rate(up)",
        Err("parse error: expected type matrix in call to function 'rate', got vector"),
    );
}

#[test]
fn staleness_marker_ends_a_series() {
    let mut src = MemorySeries::new();
    src.add(
        labels(&[("__name__", "x")]),
        samples(&[(0, 1.0), (60_000, stale_nan()), (120_000, 3.0)]),
    );
    let check = |t_ms: i64, want: Option<f64>| {
        let got = run(&src, &instant("x", t_ms)).expect("query runs");
        let PromValue::Vector(v) = got else {
            panic!("not a vector")
        };
        assert_eq!(v.first().map(|s| s.v), want, "at {t_ms}");
    };
    check(59_999, Some(1.0));
    check(60_000, None);
    check(119_999, None);
    check(120_000, Some(3.0));
    check(420_000, Some(3.0));
    check(420_001, None);
}

#[test]
fn renders_results_as_the_prometheus_api() {
    let src = source();
    let check = |q: PromQuery, want: serde_json::Value| {
        let got = run(&src, &q).unwrap_or_else(|e| panic!("{}: {e}", q.expr));
        assert_eq!(to_prometheus_json(&got), want, "{}", q.expr);
    };
    check(
        instant("up", 90_500),
        json!({"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "job": "a"}, "value": [90.5, "1"]}
        ]}),
    );
    check(
        instant("up / 0", 60_000),
        json!({"resultType": "vector", "result": [
            {"metric": {"job": "a"}, "value": [60.0, "+Inf"]}
        ]}),
    );
    check(
        instant("up[2m]", 120_000),
        json!({"resultType": "matrix", "result": [
            {"metric": {"__name__": "up", "job": "a"}, "values": [[0.0, "0"], [60.0, "1"], [120.0, "2"]]}
        ]}),
    );
    check(
        range("up * 2", 0, 120_000, 60_000),
        json!({"resultType": "matrix", "result": [
            {"metric": {"job": "a"}, "values": [[0.0, "0"], [60.0, "2"], [120.0, "4"]]}
        ]}),
    );
    check(
        range("time()", 0, 60_000, 60_000),
        json!({"resultType": "matrix", "result": [
            {"metric": {}, "values": [[0.0, "0"], [60.0, "60"]]}
        ]}),
    );
    check(
        instant("1e-7", 1000),
        json!({"resultType": "scalar", "result": [1.0, "1e-07"]}),
    );
    check(
        instant("\"hello\"", 1000),
        json!({"resultType": "string", "result": [1.0, "hello"]}),
    );
}

#[test]
fn subquery_step_defaults_to_the_limits_setting() {
    let src = source();
    let limits = PromLimits {
        subquery_step_ms: 120_000,
        ..PromLimits::default()
    };
    let got = evaluate(
        &src,
        &TenantId::default_tenant(),
        &instant("count_over_time(up[10m:])", 3_600_000),
        &limits,
    )
    .expect("query runs");
    let PromValue::Vector(v) = got else {
        panic!("not a vector")
    };
    assert_eq!(v[0].v, 6.0);
}

#[test]
fn a_range_query_with_start_equal_to_end_is_a_matrix() {
    let got = run(&source(), &range("up", 60_000, 60_000, 15_000)).expect("query runs");
    assert!(matches!(got, PromValue::Matrix(_)), "{got:?}");
}
