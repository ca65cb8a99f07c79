//! Parser tables: what parses (and how it prints back), and what fails with which message.

use crate::logql::ast::{BinOp, Expr, MetricExpr, Stage};
use crate::logql::parse;

/// `query` parses, prints as `want`, and `want` parses back to the same print.
#[track_caller]
fn check(query: &str, want: &str) {
    let expr = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    assert_eq!(expr.to_string(), want, "query: {query}");
    let again = parse(want).unwrap_or_else(|e| panic!("reparse {want}: {e}"));
    assert_eq!(again.to_string(), want, "reparse of: {want}");
}

#[track_caller]
fn check_err(query: &str, want: &str) {
    match parse(query) {
        Ok(expr) => panic!("{query}: parsed as {expr}, want error {want}"),
        Err(e) => assert_eq!(e.to_string(), want, "query: {query}"),
    }
}

#[test]
fn parses_selectors_and_line_filters() {
    check(r#"{app="api"}"#, r#"{app="api"}"#);
    check(
        r#"{ a = "x" , b!="y", c=~"re.*", d!~`r\d` }"#,
        r#"{a="x", b!="y", c=~"re.*", d!~"r\\d"}"#,
    );
    check(r#"{a="x",}"#, r#"{a="x"}"#);
    check(
        r#"{a="x"} |= "err" != "debug" |~ "(?i)fail" !~ `\d+`"#,
        r#"{a="x"} |= "err" != "debug" |~ "(?i)fail" !~ "\\d+""#,
    );
    check(r#"{a="x"} |= "a" or "b""#, r#"{a="x"} |= "a" or "b""#);
    check("{a=\"x\"} # a comment\n |= \"y\"", r#"{a="x"} |= "y""#);
    check(r#"{a="tab\there"}"#, r#"{a="tab\there"}"#);
}

#[test]
fn parses_parsers_and_formatters() {
    check(r#"{a="x"} | json"#, r#"{a="x"} | json"#);
    check(
        r#"{a="x"} | json first="servers[0]", ua="request.headers[\"User-Agent\"]", level"#,
        r#"{a="x"} | json first="servers[0]", ua="request.headers[\"User-Agent\"]", level="level""#,
    );
    check(r#"{a="x"} | logfmt"#, r#"{a="x"} | logfmt"#);
    check(
        r#"{a="x"} | logfmt --strict --keep-empty host, status="code""#,
        r#"{a="x"} | logfmt --strict --keep-empty host="host", status="code""#,
    );
    check(
        r#"{a="x"} | regexp "(?P<method>\\w+) (?P<path>\\S+)""#,
        r#"{a="x"} | regexp "(?P<method>\\w+) (?P<path>\\S+)""#,
    );
    check(
        r#"{a="x"} | pattern "<ip> - <_>""#,
        r#"{a="x"} | pattern "<ip> - <_>""#,
    );
    check(
        r#"{a="x"} | unpack | decolorize"#,
        r#"{a="x"} | unpack | decolorize"#,
    );
    check(
        r#"{a="x"} | line_format "{{.level | ToUpper}} {{__line__}}""#,
        r#"{a="x"} | line_format "{{.level | ToUpper}} {{__line__}}""#,
    );
    check(
        r#"{a="x"} | label_format dst=src, t="{{.a}}-{{.b}}""#,
        r#"{a="x"} | label_format dst=src, t="{{.a}}-{{.b}}""#,
    );
    check(
        r#"{a="x"} | drop b, c="v" | keep a,d"#,
        r#"{a="x"} | drop b, c="v" | keep a, d"#,
    );
}

#[test]
fn parses_label_filters() {
    check(r#"{a="x"} | level="error""#, r#"{a="x"} | level="error""#);
    check(r#"{a="x"} | status >= 500"#, r#"{a="x"} | status >= 500"#);
    check(r#"{a="x"} | status = 200"#, r#"{a="x"} | status == 200"#);
    check(r#"{a="x"} | n > -1.5"#, r#"{a="x"} | n > -1.5"#);
    check(r#"{a="x"} | took > 250ms"#, r#"{a="x"} | took > 250ms"#);
    check(r#"{a="x"} | took <= 1h30m"#, r#"{a="x"} | took <= 1h30m"#);
    check(r#"{a="x"} | size > 20KB"#, r#"{a="x"} | size > 20000B"#);
    check(
        r#"{a="x"} | a="1" and b!="2" or c=~"3.*""#,
        r#"{a="x"} | ((a="1" and b!="2") or c=~"3.*")"#,
    );
    check(
        r#"{a="x"} | a="1" and (b="2" or c="3")"#,
        r#"{a="x"} | (a="1" and (b="2" or c="3"))"#,
    );
    check(
        r#"{a="x"} | a="1", b="2""#,
        r#"{a="x"} | (a="1" and b="2")"#,
    );
    check(r#"{a="x"} | a="1" b="2""#, r#"{a="x"} | (a="1" and b="2")"#);
    check(r#"{a="x"} | __error__="""#, r#"{a="x"} | __error__="""#);
    check(r#"{a="x"} | json="1""#, r#"{a="x"} | json="1""#);
}

#[test]
fn parses_range_aggregations() {
    check(
        r#"count_over_time({a="x"}[5m])"#,
        r#"count_over_time({a="x"} [5m])"#,
    );
    check(
        r#"rate({a="x"} |= "e" [1h30m])"#,
        r#"rate({a="x"} |= "e" [1h30m])"#,
    );
    check(
        r#"bytes_over_time({a="x"}[5m] | json | b="c")"#,
        r#"bytes_over_time({a="x"} | json | b="c" [5m])"#,
    );
    check(
        r#"count_over_time({a="x"}[5m] offset 1h)"#,
        r#"count_over_time({a="x"} [5m] offset 1h)"#,
    );
    check(
        r#"sum_over_time({a="x"} | logfmt | unwrap latency [1m]) by (host)"#,
        r#"sum_over_time({a="x"} | logfmt | unwrap latency [1m]) by (host)"#,
    );
    check(
        r#"quantile_over_time(0.99, {a="x"} | json | unwrap duration(took) | __error__="" [5m]) without (pod)"#,
        r#"quantile_over_time(0.99, {a="x"} | json | unwrap duration(took) | __error__="" [5m]) without (pod)"#,
    );
    check(
        r#"avg_over_time({a="x"} | unwrap bytes(size) [1m])"#,
        r#"avg_over_time({a="x"} | unwrap bytes(size) [1m])"#,
    );
    check(
        r#"rate({a="x"} | unwrap n [1m])"#,
        r#"rate({a="x"} | unwrap n [1m])"#,
    );
    check(
        r#"absent_over_time({a="x"}[1m])"#,
        r#"absent_over_time({a="x"} [1m])"#,
    );
}

#[test]
fn parses_vector_aggregations_and_binary_operators() {
    check(
        r#"sum by (app) (rate({a="x"}[1m]))"#,
        r#"sum by (app) (rate({a="x"} [1m]))"#,
    );
    check(
        r#"sum(rate({a="x"}[1m])) by (app, env)"#,
        r#"sum by (app, env) (rate({a="x"} [1m]))"#,
    );
    check(
        r#"topk(3, count_over_time({a="x"}[1m]))"#,
        r#"topk(3, count_over_time({a="x"} [1m]))"#,
    );
    check(
        r#"avg without (pod) (count_over_time({a="x"}[1m]))"#,
        r#"avg without (pod) (count_over_time({a="x"} [1m]))"#,
    );
    check("1 + 2 * 3", "(1 + (2 * 3))");
    check("(1 + 2) * 3", "((1 + 2) * 3)");
    check("2 ^ 3 ^ 2", "(2 ^ (3 ^ 2))");
    check("-2 ^ 2", "(-((2 ^ 2)))");
    check("1 - -1", "(1 - (-1))");
    check("1 == bool 1", "(1 == bool 1)");
    check(
        r#"sum(rate({a="x"}[1m])) / sum(rate({a="y"}[1m])) > 0.5"#,
        r#"((sum(rate({a="x"} [1m])) / sum(rate({a="y"} [1m]))) > 0.5)"#,
    );
    check(
        r#"rate({a="x"}[1m]) and on (app) rate({a="y"}[1m]) or vector(0)"#,
        r#"((rate({a="x"} [1m]) and on (app) rate({a="y"} [1m])) or vector(0))"#,
    );
    check(
        r#"rate({a="x"}[1m]) / ignoring (level) group_left (team) rate({a="y"}[1m])"#,
        r#"(rate({a="x"} [1m]) / ignoring (level) group_left (team) rate({a="y"} [1m]))"#,
    );
    check(
        r#"sort_desc(sum by (app) (count_over_time({a="x"}[1m])))"#,
        r#"sort_desc(sum by (app) (count_over_time({a="x"} [1m])))"#,
    );
    check("vector(-1)", "vector(-1)");
}

#[test]
fn builds_the_expected_tree() {
    let Ok(Expr::Metric(MetricExpr::Binary(b))) = parse(r#"1 + count_over_time({a="x"}[1m])"#)
    else {
        panic!("want a binary expression");
    };
    assert_eq!(b.op, BinOp::Add);
    assert!(matches!(b.lhs, MetricExpr::Number(v) if v == 1.0));
    let Ok(Expr::Log(log)) = parse(r#"{a="x"} | json | line_format "{{.a}}""#) else {
        panic!("want a log query");
    };
    assert!(
        matches!(log.stages.as_slice(), [Stage::Json(p), Stage::LineFormat(_)] if p.is_empty())
    );
}

#[test]
fn reports_errors_with_position_and_expectation() {
    check_err(
        r#"{app="api", | json}"#,
        r#"parse error at line 1, col 13: unexpected "|", expected label matcher"#,
    );
    check_err(
        "",
        "parse error at line 1, col 1: unexpected end of query, expected expression",
    );
    check_err(
        r#"{app="api""#,
        r#"parse error at line 1, col 11: unexpected end of query, expected "," or "}""#,
    );
    check_err(
        r#"{app~"api"}"#,
        "parse error at line 1, col 5: unexpected character '~'",
    );
    check_err(
        r#"{app=api}"#,
        r#"parse error at line 1, col 6: unexpected "api", expected string"#,
    );
    check_err(
        "{}",
        "parse error at line 1, col 1: queries require at least one regexp or equality matcher \
         that does not have an empty-compatible value; for instance, app=~\".*\" does not meet \
         this requirement, but app=~\".+\" will",
    );
    check_err(
        r#"{a=~".*"}"#,
        "parse error at line 1, col 1: queries require at least one regexp or equality matcher \
         that does not have an empty-compatible value; for instance, app=~\".*\" does not meet \
         this requirement, but app=~\".+\" will",
    );
    check_err(
        r#"{a=~"("}"#,
        r#"parse error at line 1, col 5: invalid regex "(": unclosed group"#,
    );
    check_err(
        "{a=\"x\"}\n  | json | line_format \"{{.a | Nope}}\"",
        "parse error at line 2, col 24: invalid template: function \"Nope\" not defined in template",
    );
    check_err(
        r#"{a="x"} | line_format "{{if .a}}y{{end}}""#,
        "parse error at line 1, col 23: invalid template: unsupported template action {{if}}",
    );
    check_err(
        r#"{a="x"} |"#,
        "parse error at line 1, col 10: unexpected end of query, expected parser, formatter or label filter",
    );
    check_err(
        r#"{a="x"} | status > "5""#,
        r#"parse error at line 1, col 20: unexpected "\"5\"", expected number, duration or byte size"#,
    );
    check_err(
        r#"{a="x"} | unwrap n"#,
        "parse error at line 1, col 11: unwrap is only allowed inside a range aggregation, as in \
         sum_over_time({…} | unwrap latency [5m])",
    );
    check_err(
        r#"count_over_time({a="x"})"#,
        r#"parse error at line 1, col 24: unexpected ")", expected range such as [5m]"#,
    );
    check_err(
        r#"count_over_time({a="x"}[5])"#,
        r#"parse error at line 1, col 25: unexpected "5", expected duration such as 5m"#,
    );
    check_err(
        r#"sum_over_time({a="x"}[5m])"#,
        "parse error at line 1, col 1: sum_over_time requires an unwrap expression, as in | unwrap latency",
    );
    check_err(
        r#"count_over_time({a="x"} | unwrap n [5m])"#,
        "parse error at line 1, col 1: count_over_time does not take an unwrap expression",
    );
    check_err(
        r#"count_over_time({a="x"}[5m]) by (a)"#,
        "parse error at line 1, col 1: grouping not allowed for count_over_time aggregation",
    );
    check_err(
        r#"topk(0, count_over_time({a="x"}[5m]))"#,
        "parse error at line 1, col 6: topk parameter must be a positive integer",
    );
    check_err(
        r#"sum({a="x"})"#,
        "parse error at line 1, col 5: sum needs a metric expression, such as count_over_time(…[5m])",
    );
    check_err(
        r#"{a="x"} + 1"#,
        r#"parse error at line 1, col 9: operator "+" needs metric expressions on both sides, not log queries"#,
    );
    check_err(
        "1 > 2",
        "parse error at line 1, col 3: comparisons between scalars must use bool modifier",
    );
    check_err(
        "1 and 2",
        "parse error at line 1, col 3: set operator \"and\" not allowed with scalars",
    );
    check_err(
        r#"rate({a="x"}[1m]) + bool rate({a="x"}[1m])"#,
        "parse error at line 1, col 19: bool modifier can only be used on comparison operators",
    );
    check_err(
        r#"label_replace({a="x"})"#,
        r#"parse error at line 1, col 1: unknown function "label_replace""#,
    );
    check_err(
        r#"{a="x"} | logfmt --fast"#,
        "parse error at line 1, col 18: unknown logfmt flag --fast, expected --strict or --keep-empty",
    );
    check_err(
        r#"{a="x"} | label_format b=c, b=d"#,
        r#"parse error at line 1, col 29: multiple label name "b" in label_format"#,
    );
    check_err(
        r#"{a="x"} | regexp "(\\w+)""#,
        "parse error at line 1, col 18: regexp has no named capture group",
    );
    check_err(
        r#"{a="x"} | pattern "<a><b>""#,
        "parse error at line 1, col 19: invalid pattern: pattern has consecutive captures",
    );
    check_err(
        r#"sum_over_time({a="x"} | unwrap n | json [1m])"#,
        r#"parse error at line 1, col 36: unexpected "json", expected label filter (only label filters may follow unwrap)"#,
    );
    check_err(
        &format!("{}1{}", "(".repeat(200), ")".repeat(200)),
        "parse error at line 1, col 129: query nested deeper than 128 levels",
    );
}

/// Regression: `Negate` printed without outer parentheses, so `(-x) ^ 0` printed as
/// `-(x) ^ 0`, which parses as `-(x ^ 0)`.
#[test]
fn negated_vector_prints_with_parentheses() {
    check(
        r#"(-(count_over_time({a="x"}[1s]))) ^ 0"#,
        r#"((-(count_over_time({a="x"} [1s]))) ^ 0)"#,
    );
}

/// Regression: a json path key holding `]` printed as `["a0]"]`, which did not parse back.
#[test]
fn json_path_keys_with_brackets_round_trip() {
    check(
        r#"{a="x"} | json first="a0]", q="[\"x\\\"y\"]""#,
        r#"{a="x"} | json first="[\"a0]\"]", q="[\"x\\\"y\"]""#,
    );
}
