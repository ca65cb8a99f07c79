//! Unit tests of the text parser: both formats, metadata, exemplars, `_created`, errors.

use super::*;
use crate::ErrorKind;

const TS: i64 = 1_700_000_000_000;
const PROM: Option<&str> = Some("text/plain; version=0.0.4; charset=utf-8");
const OM: Option<&str> = Some("application/openmetrics-text; version=1.0.0; charset=utf-8");

/// Series as `labels value@ts` lines, for compact expectations.
fn lines(decoded: &DecodedMetrics) -> Vec<String> {
    let mut out = Vec::new();
    for s in &decoded.series {
        for sample in &s.samples {
            out.push(format!(
                "{} {}@{}",
                s.labels, sample.value, sample.timestamp_ms
            ));
        }
        for e in &s.exemplars {
            out.push(format!("  # {} {}@{}", e.labels, e.value, e.timestamp_ms));
        }
    }
    out
}

fn check(body: &str, content_type: Option<&str>, want: &[&str]) {
    let decoded = parse(body.as_bytes(), content_type, TS).expect("valid body");
    assert_eq!(lines(&decoded), want, "{body}");
}

fn error_text(body: &str, content_type: Option<&str>) -> String {
    let e = parse(body.as_bytes(), content_type, TS).expect_err("invalid body");
    assert_eq!(e.kind(), ErrorKind::BadData, "{e}");
    e.to_string()
}

#[test]
fn prometheus_text_samples() {
    check(
        "# HELP http_requests_total The total number of HTTP requests.\n\
         # TYPE http_requests_total counter\n\
         http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
         http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
         \n\
         # A normal comment.\n\
         msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
         metric_without_timestamp_and_labels 12.47\n\
         something_weird{problem=\"division by zero\"} +Inf -3982045\n\
         nan_value NaN\n\
         neg\t-Inf\n",
        PROM,
        &[
            r#"{__name__="http_requests_total", code="200", method="post"} 1027@1395066363000"#,
            r#"{__name__="http_requests_total", code="400", method="post"} 3@1395066363000"#,
            r#"{__name__="msdos_file_access_time_seconds", error="Cannot find file:\n\"FILE.TXT\"", path="C:\\DIR\\FILE.TXT"} 1458255915@1700000000000"#,
            r#"{__name__="metric_without_timestamp_and_labels"} 12.47@1700000000000"#,
            r#"{__name__="something_weird", problem="division by zero"} inf@-3982045"#,
            r#"{__name__="nan_value"} NaN@1700000000000"#,
            r#"{__name__="neg"} -inf@1700000000000"#,
        ],
    );
}

#[test]
fn metadata_of_families() {
    let body = "# HELP a_total Help with \\\\ and \\n.\n# TYPE a_total counter\na_total 1\n\
                # TYPE b gauge\nb 2\n# HELP c Only help.\nc 3\n# UNIT d_seconds seconds\n\
                # TYPE d_seconds untyped\nd_seconds 4\n";
    let decoded = parse(body.as_bytes(), PROM, TS).expect("valid");
    let meta = |family: &str, metric_type, help: &str, unit: &str| MetricMetadata {
        metric_family: family.into(),
        metric_type,
        help: help.into(),
        unit: unit.into(),
    };
    assert_eq!(
        decoded.metadata,
        [
            meta("a_total", MetricType::Counter, "Help with \\ and \n.", ""),
            meta("b", MetricType::Gauge, "", ""),
            meta("c", MetricType::Unknown, "Only help.", ""),
            meta("d_seconds", MetricType::Unknown, "", "seconds"),
        ]
    );
}

#[test]
fn histograms_and_summaries_normalise_le_and_quantile() {
    check(
        "# TYPE rpc_seconds histogram\n\
         rpc_seconds_bucket{le=\"0.05\"} 24054\n\
         rpc_seconds_bucket{le=\"1\"} 33444\n\
         rpc_seconds_bucket{le=\"1e6\"} 33445\n\
         rpc_seconds_bucket{le=\"+Inf\"} 144320\n\
         rpc_seconds_sum 53423\n\
         rpc_seconds_count 144320\n\
         # TYPE rpc_duration_seconds summary\n\
         rpc_duration_seconds{quantile=\"0\"} 3102\n\
         rpc_duration_seconds{quantile=\"0.5\"} 4773\n\
         rpc_duration_seconds_sum 1.7560473e+07\n\
         # TYPE other gauge\n\
         other{le=\"1\",quantile=\"1\"} 1\n",
        PROM,
        &[
            r#"{__name__="rpc_seconds_bucket", le="0.05"} 24054@1700000000000"#,
            r#"{__name__="rpc_seconds_bucket", le="1.0"} 33444@1700000000000"#,
            r#"{__name__="rpc_seconds_bucket", le="1e+06"} 33445@1700000000000"#,
            r#"{__name__="rpc_seconds_bucket", le="+Inf"} 144320@1700000000000"#,
            r#"{__name__="rpc_seconds_sum"} 53423@1700000000000"#,
            r#"{__name__="rpc_seconds_count"} 144320@1700000000000"#,
            r#"{__name__="rpc_duration_seconds", quantile="0.0"} 3102@1700000000000"#,
            r#"{__name__="rpc_duration_seconds", quantile="0.5"} 4773@1700000000000"#,
            r#"{__name__="rpc_duration_seconds_sum"} 17560473@1700000000000"#,
            r#"{__name__="other", le="1", quantile="1"} 1@1700000000000"#,
        ],
    );
}

#[test]
fn openmetrics_counters_created_and_exemplars() {
    check(
        "# TYPE acme_http_router_request_seconds summary\n\
         # UNIT acme_http_router_request_seconds seconds\n\
         # HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.\n\
         acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n\
         acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0\n\
         acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0\n\
         # TYPE foo counter\n\
         foo_total 17.0 1520879607.789 # {id=\"counter-test\"} 5\n\
         foo_created 1520872607.123\n\
         # TYPE bar histogram\n\
         bar_bucket{le=\"0.01\"} 0\n\
         bar_bucket{le=\"0.1\"} 8 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n\
         bar_bucket{le=\"+Inf\"} 17 # {} 2 1520879607.7\n\
         # TYPE mystery_created gauge\n\
         mystery_created 1.0\n\
         # EOF\n",
        OM,
        &[
            r#"{__name__="acme_http_router_request_seconds_sum", method="GET", path="/api/v1"} 9036.32@1700000000000"#,
            r#"{__name__="acme_http_router_request_seconds_count", method="GET", path="/api/v1"} 807283@1700000000000"#,
            r#"{__name__="foo_total"} 17@1520879607789"#,
            r#"  # {id="counter-test"} 5@1520879607789"#,
            r#"{__name__="bar_bucket", le="0.01"} 0@1700000000000"#,
            r#"{__name__="bar_bucket", le="0.1"} 8@1700000000000"#,
            r#"  # {trace_id="KOO5S4vxi0o"} 0.67@1700000000000"#,
            r#"{__name__="bar_bucket", le="+Inf"} 17@1700000000000"#,
            r#"  # {} 2@1520879607700"#,
            r#"{__name__="mystery_created"} 1@1700000000000"#,
        ],
    );
}

#[test]
fn long_exemplars_are_dropped() {
    let body = format!(
        "# TYPE c counter\nc_total 1 # {{trace_id=\"{}\"}} 1\n# EOF\n",
        "a".repeat(EXEMPLAR_LABEL_CHARS_MAX)
    );
    let decoded = parse(body.as_bytes(), OM, TS).expect("valid");
    assert_eq!(decoded.sample_count(), 1);
    assert_eq!(decoded.exemplar_count(), 0);
}

#[test]
fn consecutive_lines_of_a_series_share_it() {
    let body = "up{job=\"a\"} 1 1000\nup{job=\"a\"} 0 2000\nup{job=\"b\",x=\"\"} 1 1000\n\
                up{job=\"b\"} 1 2000\nup{job=\"a\"} 1 3000\n";
    let decoded = parse(body.as_bytes(), PROM, TS).expect("valid");
    let shape: Vec<(String, usize)> = decoded
        .series
        .iter()
        .map(|s| (s.labels.to_string(), s.samples.len()))
        .collect();
    assert_eq!(
        shape,
        [
            (r#"{__name__="up", job="a"}"#.to_string(), 2),
            (r#"{__name__="up", job="b"}"#.to_string(), 2),
            (r#"{__name__="up", job="a"}"#.to_string(), 1),
        ]
    );
}

#[test]
fn chunks_parse_like_the_whole_body() {
    let body = "# HELP a A.\n# TYPE a counter\na_total{x=\"1\"} 1 1000\na_total{x=\"1\"} 2 2000\n\
                # TYPE b gauge\nb 3\nb 4 5000\n";
    let whole = parse(body.as_bytes(), PROM, TS).expect("valid");
    for cut in 0..body.len() {
        let mut parser = Parser::new(TextFormat::Prometheus, TS);
        let mut out = DecodedMetrics::default();
        let first = complete_lines_len(&body.as_bytes()[..cut]);
        parser
            .parse_chunk(&body.as_bytes()[..first], &mut out)
            .expect("first chunk");
        parser
            .parse_chunk(&body.as_bytes()[first..], &mut out)
            .expect("second chunk");
        parser.finish(&mut out).expect("finish");
        assert_eq!(out, whole, "cut at {cut}");
    }
    let mut parser = Parser::new(TextFormat::Prometheus, TS);
    let mut out = DecodedMetrics::default();
    parser
        .parse_chunk(b"a 1\nb 2\n", &mut out)
        .expect("valid chunk");
    let e = parser
        .parse_chunk(b"c 3\nd{ 4\n", &mut out)
        .expect_err("bad line");
    assert!(e.to_string().starts_with("prometheus text line 4: "), "{e}");
}

#[test]
fn detects_the_format() {
    let detect = |ct: Option<&str>, body: &str| TextFormat::detect(ct, body.as_bytes());
    assert_eq!(detect(OM, "a 1\n"), Ok(TextFormat::OpenMetrics));
    assert_eq!(detect(PROM, "a 1\n# EOF\n"), Ok(TextFormat::Prometheus));
    assert_eq!(detect(Some("TEXT/PLAIN"), ""), Ok(TextFormat::Prometheus));
    assert_eq!(detect(None, "a 1\n# EOF\n\n"), Ok(TextFormat::OpenMetrics));
    assert_eq!(detect(None, "a 1\n"), Ok(TextFormat::Prometheus));
    assert_eq!(
        detect(Some("application/octet-stream"), "# EOF"),
        Ok(TextFormat::OpenMetrics)
    );
    let e = detect(
        Some("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily"),
        "",
    )
    .expect_err("protobuf");
    assert!(e.to_string().contains("protobuf exposition"), "{e}");
    // Without a content type, an OpenMetrics body's timestamps are read as seconds.
    let decoded = parse(b"a 1 1520879607.5\n# EOF\n", None, TS).expect("valid");
    assert_eq!(decoded.series[0].samples[0].timestamp_ms, 1_520_879_607_500);
}

#[test]
fn empty_bodies() {
    for body in ["", "\n", "  \n\r\n", "# just a comment\n"] {
        let decoded = parse(body.as_bytes(), PROM, TS).expect("valid");
        assert_eq!(decoded, DecodedMetrics::default(), "{body:?}");
    }
    assert_eq!(
        parse(b"# EOF\n", OM, TS).expect("valid"),
        DecodedMetrics::default()
    );
}

#[test]
fn error_messages_name_line_and_column() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        (
            "a 1\nhttp_requests_total{code:\"200\"} 1\n",
            PROM,
            r#"prometheus text line 2: expected '=' after label name "code", found ":\"200\"} 1" at column 25"#,
        ),
        (
            "a 1\n\n1abc 2\n",
            PROM,
            r#"prometheus text line 3: expected a metric name, found "1abc 2" at column 1"#,
        ),
        (
            "a{b=\"c\"}1\n",
            PROM,
            r#"prometheus text line 1: expected a blank before the value, found "1" at column 9"#,
        ),
        (
            "a\n",
            PROM,
            "prometheus text line 1: expected a blank before the value, found end of line at column 2",
        ),
        (
            "a one\n",
            PROM,
            r#"prometheus text line 1: expected a value, found "one" at column 6"#,
        ),
        (
            "a 1 1.5\n",
            PROM,
            r#"prometheus text line 1: expected a timestamp, found "1.5" at column 8"#,
        ),
        (
            "a 1 2 3\n",
            PROM,
            r#"prometheus text line 1: unexpected "3" after the sample at column 7"#,
        ),
        (
            "a{x=\"1\",x=\"2\"} 1\n",
            PROM,
            r#"prometheus text line 1: duplicate label name "x""#,
        ),
        (
            "a{__name__=\"b\"} 1\n",
            PROM,
            r#"prometheus text line 1: duplicate label name "__name__""#,
        ),
        (
            "# TYPE a histogramm\n",
            PROM,
            r#"prometheus text line 1: unknown metric type "histogramm" at column 10"#,
        ),
        (
            "# HELP 1a x\n",
            PROM,
            r#"prometheus text line 1: expected a metric name, found "1a x" at column 8"#,
        ),
        (
            "{\"a.b\"} 1\n",
            PROM,
            "prometheus text line 1: quoted metric names are not supported at column 1",
        ),
        (
            "a 1\n",
            OM,
            "openmetrics line 1: body does not end with # EOF",
        ),
        (
            "a 1\n# EOF\nb 2\n",
            OM,
            "openmetrics line 3: unexpected line after # EOF (line 2)",
        ),
        (
            "a_total 1 # trace 1\n# EOF\n",
            OM,
            r#"openmetrics line 1: expected an exemplar's labels, found "trace 1" at column 13"#,
        ),
        (
            "a_total 1 # {a=\"b\"}\n# EOF\n",
            OM,
            "openmetrics line 1: expected a blank before the exemplar value, found end of line at column 20",
        ),
        (
            "a_total 1 # {a=\"b\"} 1 2 3\n# EOF\n",
            OM,
            r#"openmetrics line 1: unexpected "3" after the exemplar at column 25"#,
        ),
        (
            "é 1\n",
            PROM,
            r#"prometheus text line 1: expected a metric name, found "é 1" at column 1"#,
        ),
    ];
    for (body, content_type, want) in cases {
        assert_eq!(&error_text(body, *content_type), want, "{body:?}");
    }
}

#[test]
fn invalid_utf8_names_line_and_byte() {
    let e = parse(b"a 1\nb{x=\"\xff\"} 2\n", PROM, TS).expect_err("not utf-8");
    assert_eq!(
        e.to_string(),
        "prometheus text line 2: invalid utf-8 at byte 5"
    );
}

#[test]
fn limits_are_too_large() {
    let labels: Vec<String> = (0..SERIES_LABELS_MAX)
        .map(|i| format!("l{i}=\"v\""))
        .collect();
    let body = format!("a{{{}}} 1\n", labels.join(","));
    let e = parse(body.as_bytes(), PROM, TS).expect_err("too many labels");
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert_eq!(
        e.to_string(),
        "prometheus text line 1: 129 labels, more than the limit of 128"
    );
}
