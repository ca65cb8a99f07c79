//! Log queries end to end: time range, limit, direction, stream grouping, metadata.

use super::{SEC, assert_lines, logs, rec, rec_md, source, tenant, try_run};
use crate::logql::{Direction, MemorySource, QueryError, QueryLimits, QueryParams};

fn fixture() -> MemorySource {
    let api = &[("app", "api"), ("env", "prod")];
    let web = &[("app", "web"), ("env", "prod")];
    // Deliberately out of time order: a source owes no order.
    source(vec![
        rec(3_000, api, "POST /c 200"),
        rec(1_000, api, "GET /a 200"),
        rec_md(2_000, api, "GET /b 500", &[("trace_id", "t2")]),
        rec(2_500, web, "timeout talking to api"),
        rec(1_500, web, "GET /x 200"),
        rec(9_000, &[("app", "db")], "checkpoint"),
    ])
}

#[test]
fn backward_returns_newest_first_within_the_range() {
    let src = fixture();
    let q = r#"{env="prod"}"#;
    assert_lines(
        q,
        logs(&src, q, 0, 10, 100, Direction::Backward),
        &[
            r#"{app="api", env="prod"} 3 POST /c 200"#,
            r#"{app="api", env="prod"} 2 GET /b 500 [trace_id=t2]"#,
            r#"{app="api", env="prod"} 1 GET /a 200"#,
            r#"{app="web", env="prod"} 2.5 timeout talking to api"#,
            r#"{app="web", env="prod"} 1.5 GET /x 200"#,
        ],
    );
}

#[test]
fn forward_returns_oldest_first() {
    let src = fixture();
    let q = r#"{app="api"}"#;
    assert_lines(
        q,
        logs(&src, q, 0, 10, 100, Direction::Forward),
        &[
            r#"{app="api", env="prod"} 1 GET /a 200"#,
            r#"{app="api", env="prod"} 2 GET /b 500 [trace_id=t2]"#,
            r#"{app="api", env="prod"} 3 POST /c 200"#,
        ],
    );
}

#[test]
fn limit_keeps_the_newest_or_oldest_across_streams() {
    let src = fixture();
    let q = r#"{env="prod"}"#;
    assert_lines(
        q,
        logs(&src, q, 0, 10, 2, Direction::Backward),
        &[
            r#"{app="api", env="prod"} 3 POST /c 200"#,
            r#"{app="web", env="prod"} 2.5 timeout talking to api"#,
        ],
    );
    assert_lines(
        q,
        logs(&src, q, 0, 10, 2, Direction::Forward),
        &[
            r#"{app="api", env="prod"} 1 GET /a 200"#,
            r#"{app="web", env="prod"} 1.5 GET /x 200"#,
        ],
    );
    assert!(logs(&src, q, 0, 10, 0, Direction::Backward).is_empty());
}

#[test]
fn range_is_start_inclusive_end_exclusive() {
    let src = fixture();
    let q = r#"{app="api"}"#;
    assert_lines(
        q,
        logs(&src, q, 2, 3, 100, Direction::Forward),
        &[r#"{app="api", env="prod"} 2 GET /b 500 [trace_id=t2]"#],
    );
}

#[test]
fn pipeline_output_groups_streams_by_final_labels() {
    let src = fixture();
    let q = r#"{env="prod"} |= "GET" | pattern "<method> <path> <status>" | status="200" | line_format "{{.method}} {{.path}}""#;
    assert_lines(
        q,
        logs(&src, q, 0, 10, 100, Direction::Forward),
        &[
            r#"{app="api", env="prod", method="GET", path="/a", status="200"} 1 GET /a"#,
            r#"{app="web", env="prod", method="GET", path="/x", status="200"} 1.5 GET /x"#,
        ],
    );
}

#[test]
fn limit_does_not_depend_on_scan_order() {
    // Many entries, some sharing a timestamp, inserted in a scrambled order.
    let mut records = Vec::new();
    for i in 0..2_000i64 {
        let ts = (i * 7_919) % 2_000;
        let app = if i % 3 == 0 { "a" } else { "b" };
        records.push(rec(
            ts / 2,
            &[("app", app), ("env", "x")],
            &format!("line {ts}"),
        ));
    }
    let forward = source(records.clone());
    records.reverse();
    let backward = source(records);
    let q = r#"{env="x"}"#;
    for direction in [Direction::Forward, Direction::Backward] {
        let a = logs(&forward, q, 0, 10, 5, direction);
        let b = logs(&backward, q, 0, 10, 5, direction);
        assert_eq!(a.len(), 5);
        assert_eq!(a, b, "{direction:?}");
    }
    let newest = logs(&forward, q, 0, 10, 3, Direction::Backward);
    assert!(
        newest
            .iter()
            .all(|l| l.contains(" 0.999 ") || l.contains(" 0.998 ")),
        "{newest:?}"
    );
}

#[test]
fn stats_count_scanned_and_matched_entries() {
    let src = fixture();
    let params = QueryParams::range(tenant(), 0, 10 * SEC, SEC);
    let result = crate::logql::Evaluator::new(&src)
        .query(r#"{app="api"} != "POST""#, &params)
        .expect("query runs");
    assert_eq!(result.stats.entries_scanned, 3);
    assert_eq!(result.stats.entries_matched, 2);
    assert_eq!(result.stats.bytes_scanned, 11 + 10 + 10);
}

#[test]
fn instant_log_queries_and_oversized_limits_are_refused() {
    let src = fixture();
    let err = try_run(
        &src,
        r#"{app="api"}"#,
        &QueryParams::instant(tenant(), SEC),
        QueryLimits::default(),
    )
    .expect_err("instant log query");
    assert!(matches!(err, QueryError::Invalid { .. }), "{err}");
    let err = try_run(
        &src,
        r#"{app="api"}"#,
        &QueryParams::range(tenant(), 2 * SEC, SEC, SEC),
        QueryLimits::default(),
    )
    .expect_err("end before start");
    assert_eq!(
        err.to_string(),
        "invalid query: end timestamp must not be before start time"
    );
    let err = try_run(
        &src,
        r#"{app="api"}"#,
        &QueryParams::range(tenant(), 0, 2 * SEC, SEC).with_limit(6_000),
        QueryLimits::default(),
    )
    .expect_err("limit too large");
    assert_eq!(
        err.to_string(),
        "max entries limit per query exceeded, limit > max_entries_limit (6000 > 5000)"
    );
}

#[test]
fn other_tenants_are_invisible() {
    let mut src = fixture();
    src.push(
        sightline_model::TenantId::new("other").expect("valid tenant"),
        rec(1_000, &[("app", "api"), ("env", "prod")], "secret"),
    );
    let q = r#"{app="api"} |= "secret""#;
    assert!(logs(&src, q, 0, 10, 100, Direction::Backward).is_empty());
}
