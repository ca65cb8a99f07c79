//! Pipeline tables through the public live-tail API: one entry in, labels and line out.

use sightline_model::Labels;

use crate::logql::{LogEntryRef, compile_log_query};

const STREAM: &[(&str, &str)] = &[("app", "api"), ("level", "info")];

/// Runs the pipeline of `query` on one entry of stream `{app="api", level="info"}` with
/// metadata `trace_id=abc`; renders `{labels} line [metadata]`, or `dropped`.
#[track_caller]
fn check(query: &str, line: &str, want: &str) {
    check_with(query, STREAM, line, &[("trace_id", "abc")], want);
}

#[track_caller]
fn check_with(
    query: &str,
    stream: &[(&str, &str)],
    line: &str,
    metadata: &[(&str, &str)],
    want: &str,
) {
    let (matchers, pipeline) = compile_log_query(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    assert!(!matchers.is_empty());
    let labels = Labels::from_pairs(stream.iter().copied());
    let metadata: Vec<(String, String)> = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let entry = LogEntryRef {
        timestamp_ns: 1,
        line,
        metadata: &metadata,
    };
    let got = match pipeline.process(&labels, &entry) {
        None => "dropped".to_string(),
        Some(p) => {
            let md: Vec<String> = p.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{} {} [{}]", p.labels, p.line, md.join(" "))
        }
    };
    assert_eq!(got, want, "query: {query}\nline: {line}");
}

#[test]
fn line_filters() {
    let line = "GET /api/users 200 12ms";
    check(
        r#"{app="api"} |= "users""#,
        line,
        r#"{app="api", level="info"} GET /api/users 200 12ms [trace_id=abc]"#,
    );
    check(r#"{app="api"} |= "orders""#, line, "dropped");
    check(r#"{app="api"} != "users""#, line, "dropped");
    check(
        r#"{app="api"} |~ "GET /api/(users|orders)""#,
        line,
        r#"{app="api", level="info"} GET /api/users 200 12ms [trace_id=abc]"#,
    );
    check(r#"{app="api"} !~ "\\d{3} \\d+ms""#, line, "dropped");
    check(
        r#"{app="api"} |= "POST" or "200""#,
        line,
        r#"{app="api", level="info"} GET /api/users 200 12ms [trace_id=abc]"#,
    );
    check(r#"{app="api"} != "POST" or "200""#, line, "dropped");
    check(r#"{app="api"} |= "GET" |= "500""#, line, "dropped");
    check(
        r#"{app="api"} |~ "(?i)get""#,
        line,
        r#"{app="api", level="info"} GET /api/users 200 12ms [trace_id=abc]"#,
    );
}

#[test]
fn json_flattens_nested_keys_and_renames_collisions() {
    check(
        r#"{app="api"} | json"#,
        r#"{"level":"error","exception":{"type":"IOError","message":"disk"},"status":503,"tags":["x"],"trace_id":"t9"}"#,
        r#"{app="api", exception_message="disk", exception_type="IOError", level="info", level_extracted="error", status="503", trace_id_extracted="t9"} {"level":"error","exception":{"type":"IOError","message":"disk"},"status":503,"tags":["x"],"trace_id":"t9"} [trace_id=abc]"#,
    );
    check(
        r#"{app="api"} | json code="status", kind="exception.type", first="tags[0]" | line_format "{{.kind}} {{.code}} {{.first}}""#,
        r#"{"exception":{"type":"IOError"},"status":503,"tags":["x","y"]}"#,
        r#"{app="api", code="503", first="x", kind="IOError", level="info"} IOError 503 x [trace_id=abc]"#,
    );
    check(
        r#"{app="api"} | json | exception_type="IOError""#,
        r#"{"exception":{"type":"Timeout"}}"#,
        "dropped",
    );
}

#[test]
fn parser_errors_set_error_labels() {
    check(
        r#"{app="api"} | json"#,
        "not json",
        r#"{__error__="JSONParserErr", __error_details__="expected a JSON object at offset 0", app="api", level="info"} not json [trace_id=abc]"#,
    );
    check(
        r#"{app="api"} | json | __error__="""#,
        "not json",
        "dropped",
    );
    check(
        r#"{app="api"} | json | __error__!="""#,
        r#"{"a":"b"}"#,
        "dropped",
    );
    check(
        r#"{app="api"} | json | __error__="JSONParserErr" | drop __error__, __error_details__"#,
        "{broken",
        r#"{app="api", level="info"} {broken [trace_id=abc]"#,
    );
    check(
        r#"{app="api"} | logfmt --strict"#,
        r#"a=1 b="unterminated"#,
        r#"{__error__="LogfmtParserErr", __error_details__="logfmt syntax error: unterminated quoted value", a="1", app="api", level="info"} a=1 b="unterminated [trace_id=abc]"#,
    );
    check(
        r#"{app="api"} | logfmt | __error__="""#,
        r#"a=1 b="unterminated"#,
        r#"{a="1", app="api", level="info"} a=1 b="unterminated [trace_id=abc]"#,
    );
}

#[test]
fn logfmt_regexp_pattern_and_unpack_extract_labels() {
    check(
        r#"{app="api"} | logfmt"#,
        r#"level=warn msg="slow query" took=1.5s user.id=7 empty="#,
        r#"{app="api", level="info", level_extracted="warn", msg="slow query", took="1.5s", user_id="7"} level=warn msg="slow query" took=1.5s user.id=7 empty= [trace_id=abc]"#,
    );
    check(
        r#"{app="api"} | logfmt took, who="user.id""#,
        "level=warn took=1.5s user.id=7",
        r#"{app="api", level="info", took="1.5s", who="7"} level=warn took=1.5s user.id=7 [trace_id=abc]"#,
    );
    check(
        r#"{app="api"} | regexp "(?P<method>[A-Z]+) (?P<path>\\S+)""#,
        "GET /x 200",
        r#"{app="api", level="info", method="GET", path="/x"} GET /x 200 [trace_id=abc]"#,
    );
    check(
        r#"{app="api"} | pattern "<method> <path> <status>""#,
        "GET /x 200",
        r#"{app="api", level="info", method="GET", path="/x", status="200"} GET /x 200 [trace_id=abc]"#,
    );
    check(
        r#"{app="api"} | unpack"#,
        r#"{"pod":"p1","_entry":"original line","n":3}"#,
        r#"{app="api", level="info", pod="p1"} original line [trace_id=abc]"#,
    );
    check(
        r#"{app="api"} | decolorize"#,
        "\u{1b}[31merror\u{1b}[0m",
        r#"{app="api", level="info"} error [trace_id=abc]"#,
    );
}

#[test]
fn label_filters_compare_strings_numbers_durations_and_bytes() {
    let line = "status=503 took=250ms size=2KB user=bob";
    let kept = r#"{app="api", level="info", size="2KB", status="503", took="250ms", user="bob"} status=503 took=250ms size=2KB user=bob [trace_id=abc]"#;
    for (filter, keep) in [
        (r#"user="bob""#, true),
        (r#"user!="bob""#, false),
        (r#"user=~"b.b""#, true),
        (r#"user=~"b""#, false),
        (r#"user!~"al.*""#, true),
        ("status >= 500", true),
        ("status > 503", false),
        ("status == 503", true),
        ("status = 503", true),
        ("status != 503", false),
        ("status < 600", true),
        ("took > 200ms", true),
        ("took > 1s", false),
        ("took <= 0.25s", true),
        ("size > 1KB", true),
        ("size >= 2KiB", false),
        ("size == 2000B", true),
        ("missing > 1", false),
        (r#"status >= 500 and user="alice""#, false),
        (r#"status >= 500 or user="alice""#, true),
        (r#"user="alice" or (status >= 500, took < 1s)"#, true),
        (r#"user="alice" or status >= 500 and took > 1s"#, false),
        (r#"trace_id="abc""#, true),
        (r#"app="api", level="info""#, true),
    ] {
        let query = format!(r#"{{app="api"}} | logfmt | {filter}"#);
        check(&query, line, if keep { kept } else { "dropped" });
    }
}

#[test]
fn failed_conversions_keep_the_entry_with_label_filter_err() {
    check(
        r#"{app="api"} | logfmt | status > 500"#,
        "status=abc",
        r#"{__error__="LabelFilterErr", __error_details__="strconv.ParseFloat: parsing \"abc\": invalid syntax", app="api", level="info", status="abc"} status=abc [trace_id=abc]"#,
    );
    check(
        r#"{app="api"} | logfmt | took > 1s | __error__="""#,
        "took=soon",
        "dropped",
    );
    check(
        r#"{app="api"} | logfmt | size > 1KB | __error__!="""#,
        "size=3KB",
        "dropped",
    );
}

#[test]
fn line_format_rewrites_the_line() {
    let line = r#"{"level":"error","msg":"  disk full ","path":"/api/v1"}"#;
    for (template, want_line) in [
        // The stream label wins the name; the extracted value is level_extracted.
        ("{{.level}}: {{.msg}}", "info:   disk full "),
        ("{{.level_extracted}}", "error"),
        (
            "{{ .level_extracted | ToUpper }} {{ .msg | TrimSpace }}",
            "ERROR disk full",
        ),
        (
            "{{ ToLower .app }} [{{__line__}}]",
            &format!("api [{line}]"),
        ),
        ("{{.nothing}}", "<no value>"),
        (r#"{{ .nothing | default "-" }}"#, "-"),
        (
            r#"{{ .path | replace "/" "_" | trimPrefix "_" }}"#,
            "api_v1",
        ),
        ("{{ .trace_id }}", "abc"),
    ] {
        let query = format!("{{app=\"api\"}} | json | line_format {template:?}");
        let want = format!(
            r#"{{app="api", level="info", level_extracted="error", msg="  disk full ", path="/api/v1"}} {want_line} [trace_id=abc]"#
        );
        check(&query, line, &want);
    }
    check(
        r#"{app="api"} | line_format "{{.level}}" |= "info""#,
        "unrelated",
        r#"{app="api", level="info"} info [trace_id=abc]"#,
    );
}

#[test]
fn label_format_drop_and_keep_edit_labels() {
    let line = "method=GET status=200";
    check(
        r#"{app="api"} | logfmt | label_format verb=method"#,
        line,
        r#"{app="api", level="info", status="200", verb="GET"} method=GET status=200 [trace_id=abc]"#,
    );
    check(
        r#"{app="api"} | logfmt | label_format call="{{.method}} {{.status}}", level="{{.level | upper}}""#,
        line,
        r#"{app="api", call="GET 200", level="INFO", method="GET", status="200"} method=GET status=200 [trace_id=abc]"#,
    );
    check(
        r#"{app="api"} | logfmt | drop method, level="info", app="web""#,
        line,
        r#"{app="api", status="200"} method=GET status=200 [trace_id=abc]"#,
    );
    check(
        r#"{app="api"} | logfmt | keep app, status"#,
        line,
        r#"{app="api", status="200"} method=GET status=200 []"#,
    );
    check(
        r#"{app="api"} | drop trace_id"#,
        line,
        r#"{app="api", level="info"} method=GET status=200 []"#,
    );
    check(
        r#"{app="api"} | label_format trace=trace_id"#,
        line,
        r#"{app="api", level="info", trace="abc"} method=GET status=200 []"#,
    );
}

#[test]
fn structured_metadata_is_filterable_but_reported_apart() {
    check_with(
        r#"{app="api"} | user_id="7""#,
        STREAM,
        "hello",
        &[("user_id", "7"), ("trace_id", "t")],
        r#"{app="api", level="info"} hello [user_id=7 trace_id=t]"#,
    );
    check_with(
        r#"{app="api"} | user_id="8""#,
        STREAM,
        "hello",
        &[("user_id", "7")],
        "dropped",
    );
    check_with(
        r#"{app="api"} | logfmt"#,
        STREAM,
        "user_id=9",
        &[("user_id", "7")],
        r#"{app="api", level="info", user_id_extracted="9"} user_id=9 [user_id=7]"#,
    );
}

#[test]
fn compile_log_query_refuses_metric_queries() {
    let err = compile_log_query(r#"count_over_time({a="b"}[1m])"#).expect_err("metric query");
    assert!(err.to_string().contains("expected a log query"), "{err}");
}
