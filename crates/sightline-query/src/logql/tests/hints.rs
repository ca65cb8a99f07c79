//! Scan hints: what each query asks of the source, and proof that hints never change answers.

use std::ops::ControlFlow;

use sightline_model::{LabelMatcher, Labels, TenantId};

use super::{SEC, rec_md, source, tenant};
use crate::logql::{
    Direction, Evaluator, LogEntryRef, LogSelection, LogSource, MemorySource, QueryParams,
    SourceError,
};

/// The selections a query scans with, on an empty source.
fn selections(query: &str, params: &QueryParams) -> Vec<LogSelection> {
    let src = MemorySource::new();
    if let Err(e) = Evaluator::new(&src).query(query, params) {
        panic!("{query}: {e}");
    }
    src.selections()
}

fn metric(query: &str) -> LogSelection {
    let mut all = selections(query, &QueryParams::instant(tenant(), 600 * SEC));
    assert_eq!(all.len(), 1, "{query}");
    all.remove(0)
}

/// The selection of a log query; on an empty source it scans every window, which must tile
/// the range newest first with the same hints.
fn log(query: &str) -> LogSelection {
    let all = selections(query, &QueryParams::range(tenant(), 0, 600 * SEC, SEC));
    let mut end = 600 * SEC;
    for s in &all {
        assert_eq!(
            s.end_ns, end,
            "{query}: windows tile the range, newest first"
        );
        assert!(s.start_ns < s.end_ns);
        assert_eq!(
            (
                &s.line_contains,
                &s.metadata_eq,
                s.need_line,
                s.need_metadata
            ),
            (
                &all[0].line_contains,
                &all[0].metadata_eq,
                all[0].need_line,
                all[0].need_metadata
            ),
        );
        end = s.start_ns;
    }
    assert_eq!(end, 0, "{query}: windows reach the start");
    let mut first = all[0].clone();
    (first.start_ns, first.end_ns) = (0, 600 * SEC);
    first
}

#[test]
fn a_backward_log_query_stops_once_its_limit_is_filled() {
    let mut src = MemorySource::new();
    for i in 0..600 {
        src.push(
            tenant(),
            rec_md(i * 1000, &[("a", "b")], &format!("line {i}"), &[]),
        );
    }
    let params = QueryParams::range(tenant(), 0, 600 * SEC, SEC).with_limit(3);
    let got = Evaluator::new(&src)
        .query("{a=\"b\"}", &params)
        .expect("query");
    let crate::logql::QueryValue::Streams(streams) = got.value else {
        panic!("streams")
    };
    let lines: Vec<&str> = streams[0].entries.iter().map(|e| e.line.as_str()).collect();
    assert_eq!(lines, vec!["line 599", "line 598", "line 597"]);
    assert_eq!(
        src.selections().len(),
        1,
        "the newest window held enough lines"
    );
    let forward = params.clone().with_direction(Direction::Forward);
    let got = Evaluator::new(&src)
        .query("{a=\"b\"} |= \"line 59\"", &forward)
        .expect("query");
    let crate::logql::QueryValue::Streams(streams) = got.value else {
        panic!("streams")
    };
    let lines: Vec<&str> = streams[0].entries.iter().map(|e| e.line.as_str()).collect();
    assert_eq!(
        lines,
        vec!["line 59", "line 590", "line 591"],
        "oldest first, across windows"
    );
    assert!(
        src.selections().len() > 3,
        "a rare match makes it read further windows"
    );
}

/// (line_contains, metadata_eq, need_line, need_metadata)
type Want<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], bool, bool);

#[track_caller]
fn check(selection: LogSelection, query: &str, want: Want<'_>) {
    let got = (
        selection.line_contains.clone(),
        selection.metadata_eq.clone(),
        selection.need_line,
        selection.need_metadata,
    );
    let want = (
        want.0.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        want.1
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
        want.2,
        want.3,
    );
    assert_eq!(got, want, "query: {query}");
}

#[test]
fn metric_query_hints() {
    for (query, want) in [
        (
            r#"count_over_time({a="b"}[5m])"#,
            (&[][..], &[][..], false, false),
        ),
        (r#"rate({a="b"}[5m])"#, (&[][..], &[][..], false, false)),
        (
            r#"bytes_over_time({a="b"}[5m])"#,
            (&[][..], &[][..], true, false),
        ),
        (
            r#"count_over_time({a="b"} |= "x" [5m])"#,
            (&["x"][..], &[][..], true, false),
        ),
        (
            r#"sum by (user) (count_over_time({a="b"}[5m]))"#,
            (&[][..], &[][..], false, true),
        ),
        (
            r#"count_over_time({a="b"} | user="u" [5m])"#,
            (&[][..], &[("user", "u")][..], false, true),
        ),
        (
            r#"count_over_time({a="b"} | drop x | user="u" [5m])"#,
            (&[][..], &[][..], false, true),
        ),
        (
            r#"sum_over_time({a="b"} | unwrap n [1m])"#,
            (&[][..], &[][..], false, true),
        ),
        (
            r#"count_over_time({a="b"} | label_format x="{{__line__}}" [1m])"#,
            (&[][..], &[][..], true, true),
        ),
        (
            r#"count_over_time({a="b"} | line_format "constant" |= "c" [1m])"#,
            (&[][..], &[][..], false, true),
        ),
        (
            r#"count_over_time({a="b"} | json | x="y" [1m])"#,
            (&[][..], &[][..], true, true),
        ),
    ] {
        check(metric(query), query, want);
    }
}

#[test]
fn log_query_hints() {
    for (query, want) in [
        (r#"{a="b"}"#, (&[][..], &[][..], true, true)),
        (
            r#"{a="b"} |= "x" |= "y" | json |= "z" | level="error""#,
            (&["x", "y"][..], &[][..], true, true),
        ),
        (
            r#"{a="b"} | user="u1" | trace_id="t", n!="x" | json | k="v""#,
            (
                &[][..],
                &[("user", "u1"), ("trace_id", "t")][..],
                true,
                true,
            ),
        ),
        (
            r#"{a="b"} | user="u1" or user="u2""#,
            (&[][..], &[][..], true, true),
        ),
        (r#"{a="b"} | user="""#, (&[][..], &[][..], true, true)),
        (
            r#"{a="b"} |= "a" or "b" |~ "c" != "d""#,
            (&[][..], &[][..], true, true),
        ),
        (
            r#"{a="b"} | line_format "{{.x}}" |= "x""#,
            (&[][..], &[][..], true, true),
        ),
        (r#"{a="b"} |= """#, (&[][..], &[][..], true, true)),
    ] {
        check(log(query), query, want);
    }
}

#[test]
fn scan_covers_every_window_once() {
    // Instant at 600s, [5m] offset 1m: window (240s, 540s] → scan [240s + 1ns, 540s + 1ns).
    let s = metric(r#"count_over_time({a="b"}[5m] offset 1m)"#);
    assert_eq!((s.start_ns, s.end_ns), (240 * SEC + 1, 540 * SEC + 1));
    // Range 100s..200s step 10s, [30s]: one scan over (70s, 200s].
    let all = selections(
        r#"rate({a="b"}[30s])"#,
        &QueryParams::range(tenant(), 100 * SEC, 200 * SEC, 10 * SEC),
    );
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].start_ns, all[0].end_ns),
        (70 * SEC + 1, 200 * SEC + 1)
    );
    // Two range aggregations scan twice, each once.
    let all = selections(
        r#"rate({a="b"}[1m]) / rate({a="c"}[1m])"#,
        &QueryParams::instant(tenant(), 600 * SEC),
    );
    assert_eq!(all.len(), 2);
}

/// A source that ignores every hint: full lines, full metadata, nothing skipped.
struct IgnoresHints(MemorySource);

impl LogSource for IgnoresHints {
    fn scan_logs(
        &self,
        selection: &LogSelection,
        visit: &mut dyn FnMut(&Labels, &LogEntryRef<'_>) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        let mut plain = selection.clone();
        plain.line_contains.clear();
        plain.metadata_eq.clear();
        plain.need_line = true;
        plain.need_metadata = true;
        plain.metadata_fields = None;
        self.0.scan_logs(&plain, visit)
    }

    fn streams(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Labels>, SourceError> {
        self.0.streams(tenant, matchers, start_ns, end_ns)
    }
}

#[test]
fn hints_never_change_answers() {
    let records = || {
        let mut out = Vec::new();
        for i in 0..60i64 {
            let level = ["info", "warn", "error"][(i % 3) as usize];
            let user = format!("u{}", i % 4);
            let line = format!(
                r#"{{"level":"{level}","user":"{user}","took":"{}ms","msg":"req {i} done"}}"#,
                i * 10
            );
            out.push(rec_md(
                i * 1_000,
                &[("app", if i % 2 == 0 { "api" } else { "web" })],
                &line,
                &[("user", &user), ("level", level)],
            ));
        }
        out
    };
    let hinted = source(records());
    let plain = IgnoresHints(source(records()));
    for query in [
        r#"{app=~".+"} |= "error" | user="u1""#,
        r#"{app="api"} | level="warn" |= "done" | json | took_extracted != "" "#,
        r#"{app=~".+"} | user="u2" or level="info""#,
        r#"{app=~".+"} | json | line_format "{{.msg}}" |= "req 1""#,
        r#"count_over_time({app=~".+"} |= "error" [1m])"#,
        r#"sum by (user) (count_over_time({app=~".+"} | level="info" [1m]))"#,
        r#"bytes_over_time({app="web"} | user="u3" [30s])"#,
        r#"sum by (app) (rate({app=~".+"} | json | level_extracted="error" [1m]))"#,
    ] {
        for params in [
            QueryParams::range(tenant(), 0, 61 * SEC, 10 * SEC).with_direction(Direction::Forward),
            QueryParams::instant(tenant(), 60 * SEC),
        ] {
            let a = Evaluator::new(&hinted).query(query, &params);
            let b = Evaluator::new(&plain).query(query, &params);
            match (a, b) {
                (Ok(a), Ok(b)) => assert_eq!(a.value, b.value, "{query}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{query}"),
                (a, b) => panic!("{query}: {a:?} vs {b:?}"),
            }
        }
    }
}
