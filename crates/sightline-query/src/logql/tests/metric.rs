//! Metric queries end to end, with values worked out by hand.
//!
//! Fixture (times in seconds):
//! - `{app="api", level="info"}` at 10, 20, 30, 40, 50, 60 with n = 1, 2, 3, 4, 5, 10,
//!   took = 100ms, 200ms, 300ms, 1s, 2s, 10s, size = 1..5KB, 10KB; metadata user=u1 on the
//!   first three, user=u2 on the next two; line lengths 23, 23, 23, 20, 20, 23 (132 bytes);
//! - `{app="api", level="error"}` at 15 and 45 with n = 7 and 9 (42 bytes);
//! - `{app="web", level="info"}` at 30 with n = 100.

use super::{SEC, assert_lines, instant, range, rec, rec_md, source, tenant, try_run};
use crate::logql::{MemorySource, QueryError, QueryLimits, QueryParams};

fn fixture() -> MemorySource {
    let info = &[("app", "api"), ("level", "info")];
    let error = &[("app", "api"), ("level", "error")];
    let web = &[("app", "web"), ("level", "info")];
    source(vec![
        rec_md(60_000, info, "n=10 took=10s size=10KB", &[]),
        rec_md(10_000, info, "n=1 took=100ms size=1KB", &[("user", "u1")]),
        rec_md(20_000, info, "n=2 took=200ms size=2KB", &[("user", "u1")]),
        rec_md(30_000, info, "n=3 took=300ms size=3KB", &[("user", "u1")]),
        rec_md(40_000, info, "n=4 took=1s size=4KB", &[("user", "u2")]),
        rec_md(50_000, info, "n=5 took=2s size=5KB", &[("user", "u2")]),
        rec(45_000, error, "n=9 took=5s size=1KB"),
        rec(15_000, error, "n=7 took=50ms size=1KB"),
        rec(30_000, web, "n=100 took=1ms size=1B"),
    ])
}

/// Instant query at t=60s.
#[track_caller]
fn check(query: &str, want: &[&str]) {
    assert_lines(query, instant(&fixture(), query, 60), want);
}

#[track_caller]
fn check_range(query: &str, start_s: i64, end_s: i64, step_s: i64, want: &[&str]) {
    assert_lines(
        query,
        range(&fixture(), query, start_s, end_s, step_s),
        want,
    );
}

const API_ERROR: &str = r#"{app="api", level="error"}"#;
const API_INFO: &str = r#"{app="api", level="info"}"#;
const WEB: &str = r#"{app="web", level="info"}"#;

fn with(labels: &str, value: &str) -> String {
    format!("{labels} {value}")
}

#[test]
fn log_range_aggregations() {
    let api = |e: &str, i: &str| vec![with(API_ERROR, e), with(API_INFO, i)];
    let cases: Vec<(&str, Vec<String>)> = vec![
        (r#"count_over_time({app="api"}[1m])"#, api("2", "6")),
        (r#"rate({app="api"}[1m])"#, api("0.033333", "0.1")),
        (r#"bytes_over_time({app="api"}[1m])"#, api("42", "132")),
        (r#"bytes_rate({app="api"}[1m])"#, api("0.7", "2.2")),
        (
            r#"count_over_time({app="api"} |= "took=1" [1m])"#,
            api("0", "3")[1..].to_vec(),
        ),
        (
            r#"count_over_time({app="api"}[30s] offset 30s)"#,
            api("1", "3"),
        ),
        (r#"absent_over_time({app="api"}[1m])"#, vec![]),
        (
            r#"absent_over_time({app="none", env="x", job=~".+"}[1m])"#,
            vec![r#"{app="none", env="x"} 1"#.to_string()],
        ),
    ];
    for (query, want) in cases {
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        check(query, &want);
    }
}

#[test]
fn windows_are_left_open() {
    // At 70s the window is (10s, 70s]: the entry at exactly 10s is out, 20s..60s are in.
    let q = r#"count_over_time({app="api", level="info"}[1m])"#;
    assert_lines(q, instant(&fixture(), q, 70), &[&with(API_INFO, "5")]);
    // At 59.999s the entry at 60s is not yet in.
    let q2 = r#"count_over_time({app="api", level="info"}[1m])"#;
    let got = super::run(
        &fixture(),
        q2,
        &QueryParams::instant(tenant(), 60 * SEC - 1),
    );
    assert_lines(q2, got, &[&with(API_INFO, "5")]);
}

#[test]
fn unwrapped_range_aggregations() {
    // `| logfmt n` extracts only n, which unwrap then removes: series stay per stream.
    let unwrap = |op: &str| format!(r#"{op}({{app="api"}} | logfmt n | unwrap n [1m])"#);
    for (op, error, info) in [
        ("sum_over_time", "16", "25"),
        ("avg_over_time", "8", "4.166667"),
        ("min_over_time", "7", "1"),
        ("max_over_time", "9", "10"),
        ("first_over_time", "7", "1"),
        ("last_over_time", "9", "10"),
        ("stddev_over_time", "1", "2.910708"),
        ("stdvar_over_time", "1", "8.472222"),
        ("rate", "0.266667", "0.416667"),
    ] {
        check(
            &unwrap(op),
            &[&with(API_ERROR, error), &with(API_INFO, info)],
        );
    }
    check(
        r#"quantile_over_time(0.5, {app="api"} | logfmt n | unwrap n [1m])"#,
        &[&with(API_ERROR, "8"), &with(API_INFO, "3.5")],
    );
    check(
        r#"quantile_over_time(0.99, {app="api", level="info"} | logfmt n | unwrap n [1m])"#,
        &[&with(API_INFO, "9.75")],
    );
    check(
        r#"sum_over_time({app="api", level="info"} | logfmt took | unwrap duration(took) [1m])"#,
        &[&with(API_INFO, "13.6")],
    );
    check(
        r#"max_over_time({app="api", level="info"} | logfmt size | unwrap bytes(size) [1m])"#,
        &[&with(API_INFO, "10000")],
    );
    check(
        r#"sum_over_time({app=~".+"} | logfmt | unwrap n [1m]) by (level)"#,
        &[r#"{level="error"} 16"#, r#"{level="info"} 125"#],
    );
    check(
        r#"sum_over_time({app=~".+"} | logfmt | unwrap n [1m]) without (app, took, size)"#,
        &[r#"{level="error"} 16"#, r#"{level="info"} 125"#],
    );
    check(
        r#"sum_over_time({app="api"} | logfmt | n > 4 | unwrap n [1m]) by (app)"#,
        &[r#"{app="api"} 31"#],
    );
    check(
        r#"sum_over_time({app="api"} | logfmt | unwrap n | n < 3 [1m]) by (app)"#,
        &[r#"{app="api"} 3"#],
    );
}

#[test]
fn the_unwrapped_label_does_not_split_series() {
    // Without `by`, series keep every label but the unwrapped one: took and size still split.
    check(
        r#"max_over_time({app="api", level="error"} | logfmt | unwrap n [1m])"#,
        &[
            r#"{app="api", level="error", size="1KB", took="50ms"} 7"#,
            r#"{app="api", level="error", size="1KB", took="5s"} 9"#,
        ],
    );
    check(
        r#"sum_over_time({app="api", level="error"} | logfmt | drop took, size | unwrap n [1m])"#,
        &[&with(API_ERROR, "16")],
    );
}

#[test]
fn vector_aggregations() {
    let all = r#"count_over_time({app=~".+"}[1m])"#;
    for (query, want) in [
        (format!("sum({all})"), vec!["{} 9"]),
        (
            format!("sum by (app) ({all})"),
            vec![r#"{app="api"} 8"#, r#"{app="web"} 1"#],
        ),
        (
            format!("sum({all}) by (app)"),
            vec![r#"{app="api"} 8"#, r#"{app="web"} 1"#],
        ),
        (
            format!("sum without (level) ({all})"),
            vec![r#"{app="api"} 8"#, r#"{app="web"} 1"#],
        ),
        (format!("count({all})"), vec!["{} 3"]),
        (format!("avg({all})"), vec!["{} 3"]),
        (format!("min({all})"), vec!["{} 1"]),
        (
            format!("max by (level) ({all})"),
            vec![r#"{level="error"} 2"#, r#"{level="info"} 6"#],
        ),
        (format!("stddev({all})"), vec!["{} 2.160247"]),
        (format!("stdvar({all})"), vec!["{} 4.666667"]),
        (
            format!("topk(1, {all})"),
            vec![r#"{app="api", level="info"} 6"#],
        ),
        (
            format!("bottomk(2, {all})"),
            vec![
                r#"{app="api", level="error"} 2"#,
                r#"{app="web", level="info"} 1"#,
            ],
        ),
        (
            format!("topk by (app) (1, {all})"),
            vec![
                r#"{app="api", level="info"} 6"#,
                r#"{app="web", level="info"} 1"#,
            ],
        ),
        (
            format!("sort_desc({all})"),
            vec![
                r#"{app="api", level="info"} 6"#,
                r#"{app="api", level="error"} 2"#,
                r#"{app="web", level="info"} 1"#,
            ],
        ),
        (
            format!("sort({all})"),
            vec![
                r#"{app="web", level="info"} 1"#,
                r#"{app="api", level="error"} 2"#,
                r#"{app="api", level="info"} 6"#,
            ],
        ),
    ] {
        check(&query, &want);
    }
}

#[test]
fn metadata_becomes_a_series_label_only_when_grouped_by() {
    check(
        r#"sum by (user) (count_over_time({app=~".+"}[1m]))"#,
        &["{} 4", r#"{user="u1"} 3"#, r#"{user="u2"} 2"#],
    );
    check(
        r#"count_over_time({app="api", level="info"}[1m])"#,
        &[&with(API_INFO, "6")],
    );
    check(
        r#"count_over_time({app="api", level="info"} | user="u2" [1m])"#,
        &[&with(API_INFO, "2")],
    );
}

#[test]
fn binary_operations() {
    let api = r#"count_over_time({app="api"}[1m])"#;
    let all = r#"count_over_time({app=~".+"}[1m])"#;
    for (query, want) in [
        (
            format!("{api} * 2"),
            vec![with(API_ERROR, "4"), with(API_INFO, "12")],
        ),
        (
            format!("2 * {api}"),
            vec![with(API_ERROR, "4"), with(API_INFO, "12")],
        ),
        (
            format!("10 - {api}"),
            vec![with(API_ERROR, "8"), with(API_INFO, "4")],
        ),
        (
            format!("{api} ^ 2"),
            vec![with(API_ERROR, "4"), with(API_INFO, "36")],
        ),
        (
            format!("{api} % 4"),
            vec![with(API_ERROR, "2"), with(API_INFO, "2")],
        ),
        (format!("{api} > 3"), vec![with(API_INFO, "6")]),
        (format!("3 < {api}"), vec![with(API_INFO, "6")]),
        (
            format!("{api} > bool 3"),
            vec![with(API_ERROR, "0"), with(API_INFO, "1")],
        ),
        (
            format!("2 + 3 * {api}"),
            vec![with(API_ERROR, "8"), with(API_INFO, "20")],
        ),
        (
            format!("-{api}"),
            vec![with(API_ERROR, "-2"), with(API_INFO, "-6")],
        ),
        (
            format!("{api} / {api}"),
            vec![with(API_ERROR, "1"), with(API_INFO, "1")],
        ),
        (
            format!("{api} - {api} == 0"),
            vec![with(API_ERROR, "0"), with(API_INFO, "0")],
        ),
        (
            format!("{all} / ignoring (app) group_left sum by (level) ({all})"),
            vec![
                with(API_ERROR, "1"),
                with(API_INFO, "0.857143"),
                with(WEB, "0.142857"),
            ],
        ),
        (
            format!("sum by (level) ({all}) / on (level) group_right {all}"),
            vec![
                with(API_ERROR, "1"),
                with(API_INFO, "1.166667"),
                with(WEB, "7"),
            ],
        ),
        (
            format!(r#"{all} and count_over_time({{level="error"}}[1m])"#),
            vec![with(API_ERROR, "2")],
        ),
        (
            format!(r#"{all} unless count_over_time({{level="error"}}[1m])"#),
            vec![with(API_INFO, "6"), with(WEB, "1")],
        ),
        (
            format!(r#"{all} and on (level) count_over_time({{app="web"}}[1m])"#),
            vec![with(API_INFO, "6"), with(WEB, "1")],
        ),
        (
            r#"count_over_time({app="web"}[1m]) or count_over_time({level="error"}[1m])"#
                .to_string(),
            vec![with(API_ERROR, "2"), with(WEB, "1")],
        ),
        (
            r#"sum(count_over_time({app="none"}[1m])) or vector(0)"#.to_string(),
            vec!["{} 0".to_string()],
        ),
        ("vector(2) * 3".to_string(), vec!["{} 6".to_string()]),
    ] {
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        check(&query, &want);
    }
}

#[test]
fn scalars() {
    check("1 + 2 * 3", &["7"]);
    check("2 ^ 3 ^ 2", &["512"]);
    check("-2 ^ 2", &["-4"]);
    check("(1 + 2) * 3 == bool 9", &["1"]);
    check("7 % 4", &["3"]);
    check_range("1 + 1", 0, 20, 10, &["{} 0:2 10:2 20:2"]);
}

#[test]
fn ambiguous_matches_are_errors() {
    let all = r#"count_over_time({app=~".+"}[1m])"#;
    let err = try_run(
        &fixture(),
        &format!("{all} / on (level) {all}"),
        &QueryParams::instant(tenant(), 60 * SEC),
        QueryLimits::default(),
    )
    .expect_err("two info series on each side");
    assert!(
        err.to_string()
            .contains("many-to-many matching not allowed"),
        "{err}"
    );
}

#[test]
fn range_queries_slide_the_window_per_step() {
    check_range(
        r#"count_over_time({app="api", level="info"}[20s])"#,
        20,
        60,
        20,
        &[&with(API_INFO, "20:2 40:2 60:2")],
    );
    check_range(
        r#"count_over_time({app="api", level="info"}[20s])"#,
        0,
        30,
        10,
        &[&with(API_INFO, "10:1 20:2 30:2")],
    );
    check_range(
        r#"count_over_time({app="web"}[10s])"#,
        10,
        60,
        10,
        &[&with(WEB, "30:1")],
    );
    check_range(
        r#"rate({app="api", level="error"}[30s])"#,
        0,
        60,
        15,
        &[&with(
            API_ERROR,
            "15:0.033333 30:0.033333 45:0.033333 60:0.033333",
        )],
    );
    check_range(
        r#"quantile_over_time(0.5, {app="api", level="info"} | logfmt | unwrap n [30s]) by (app)"#,
        30,
        60,
        30,
        &[r#"{app="api"} 30:2 60:5"#],
    );
    check_range(
        r#"sum(count_over_time({app="web"}[10s])) or vector(0)"#,
        10,
        40,
        10,
        &["{} 10:0 20:0 30:1 40:0"],
    );
    check_range(
        r#"count_over_time({app="web"}[10s] offset 10s)"#,
        30,
        50,
        10,
        &[&with(WEB, "40:1")],
    );
    check_range(
        r#"absent_over_time({app="web"}[10s])"#,
        20,
        40,
        10,
        &[r#"{app="web"} 20:1 40:1"#],
    );
    check_range(
        r#"topk(1, count_over_time({app=~".+"}[10s]))"#,
        10,
        30,
        10,
        // Ties go to the smaller labels: error beats info at 20s, api beats web at 30s.
        &[
            r#"{app="api", level="error"} 20:1"#,
            r#"{app="api", level="info"} 10:1 30:1"#,
        ],
    );
}

#[test]
fn pipeline_errors_fail_metric_queries_unless_filtered() {
    let params = QueryParams::instant(tenant(), 60 * SEC);
    let err = try_run(
        &fixture(),
        r#"count_over_time({app="api"} | json [1m])"#,
        &params,
        QueryLimits::default(),
    )
    .expect_err("lines are not json");
    assert!(
        matches!(&err, QueryError::Pipeline { error, .. } if error == "JSONParserErr"),
        "{err}"
    );
    check(
        r#"count_over_time({app="api"} | json | __error__="" [1m])"#,
        &[],
    );
    let err = try_run(
        &fixture(),
        r#"sum_over_time({app="api"} | logfmt | unwrap missing [1m])"#,
        &params,
        QueryLimits::default(),
    )
    .expect_err("no such label");
    assert!(
        matches!(&err, QueryError::Pipeline { error, .. } if error == "SampleExtractionErr"),
        "{err}"
    );
    check(
        r#"sum_over_time({app="api"} | logfmt | unwrap took | __error__="" [1m])"#,
        &[],
    );
}

#[test]
fn limits_are_enforced_with_clear_errors() {
    let src = fixture();
    let all = r#"count_over_time({app=~".+"}[1m])"#;
    let at_60 = QueryParams::instant(tenant(), 60 * SEC);
    let limits = |f: fn(&mut QueryLimits)| {
        let mut l = QueryLimits::default();
        f(&mut l);
        l
    };
    let err = try_run(&src, all, &at_60, limits(|l| l.max_series = 2)).expect_err("3 series");
    assert!(
        matches!(err, QueryError::TooManySeries { limit: 2 }),
        "{err}"
    );
    assert!(
        try_run(
            &src,
            &format!("sum({all})"),
            &at_60,
            limits(|l| l.max_series = 1)
        )
        .is_ok()
    );
    // An instant count holds no samples, only a counter per series; a range query keeps
    // every timestamp until it slides its windows.
    assert!(try_run(&src, all, &at_60, limits(|l| l.max_samples = 5)).is_ok());
    let two_steps = QueryParams::range(tenant(), 30 * SEC, 60 * SEC, 30 * SEC);
    let err = try_run(&src, all, &two_steps, limits(|l| l.max_samples = 5)).expect_err("9 samples");
    assert_eq!(
        err.to_string(),
        "query would hold more than 5 samples in memory; narrow the selector, the pipeline or \
         the time range"
    );
    let fine = QueryParams::range(tenant(), 0, 60 * SEC, 1_000);
    let err = try_run(&src, all, &fine, QueryLimits::default()).expect_err("60M steps");
    assert!(
        matches!(err, QueryError::TooManyPoints { limit: 11_000 }),
        "{err}"
    );
    let backwards = QueryParams::range(tenant(), 60 * SEC, 0, SEC);
    let err = try_run(&src, all, &backwards, QueryLimits::default()).expect_err("end < start");
    assert!(matches!(err, QueryError::Invalid { .. }), "{err}");
    let zero_step = QueryParams::range(tenant(), 0, 60 * SEC, 0);
    assert!(try_run(&src, all, &zero_step, QueryLimits::default()).is_err());
}

#[test]
fn extreme_times_do_not_overflow() {
    let params = QueryParams::range(tenant(), i64::MIN, i64::MAX, i64::MAX);
    let got = try_run(
        &fixture(),
        r#"count_over_time({app="api"}[1h] offset -1h)"#,
        &params,
        QueryLimits::default(),
    )
    .expect("evaluates");
    // Steps at i64::MIN, -1ns and i64::MAX - 1; only the window (-1ns, 1h - 1ns] holds data.
    assert_eq!(
        got,
        [with(API_ERROR, "0:2"), with(API_INFO, "0:6")],
        "{got:?}"
    );
    let at_max = QueryParams::instant(tenant(), i64::MAX);
    assert!(
        try_run(
            &fixture(),
            r#"rate({app="api"}[1y])"#,
            &at_max,
            QueryLimits::default()
        )
        .is_ok()
    );
}
