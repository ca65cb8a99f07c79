//! Table tests of LogQL end to end: query text in, rendered result out, against a
//! [`MemorySource`] (which applies every scan hint, so a wrong hint fails a test too).
//!
//! Results are rendered as short strings so each case reads as one line:
//! - streams: `{labels} <ts seconds> <line> [metadata]`, in result order;
//! - vectors: `{labels} <value>`;
//! - matrices: `{labels} <t>:<v> <t>:<v> …`, times in seconds.

mod hints;
mod log_query;
mod metric;
mod parse;
mod pipeline;
mod proptests;

use sightline_model::{Labels, LogRecord, TenantId};

use super::{Direction, Evaluator, MemorySource, QueryError, QueryLimits, QueryParams, QueryValue};

pub(super) const SEC: i64 = 1_000_000_000;

pub(super) fn tenant() -> TenantId {
    TenantId::default_tenant()
}

/// A record at `ts_ms` milliseconds.
pub(super) fn rec(ts_ms: i64, labels: &[(&str, &str)], line: &str) -> LogRecord {
    rec_md(ts_ms, labels, line, &[])
}

pub(super) fn rec_md(
    ts_ms: i64,
    labels: &[(&str, &str)],
    line: &str,
    metadata: &[(&str, &str)],
) -> LogRecord {
    LogRecord {
        timestamp_ns: ts_ms * 1_000_000,
        labels: Labels::from_pairs(labels.iter().copied()).into(),
        line: line.to_string(),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

pub(super) fn source(records: Vec<LogRecord>) -> MemorySource {
    MemorySource::with_records(&tenant(), records)
}

/// A number with at most six decimals and no trailing zeros.
pub(super) fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

fn secs(ns: i64) -> String {
    num(ns as f64 / SEC as f64)
}

pub(super) fn render(value: &QueryValue) -> Vec<String> {
    match value {
        QueryValue::Streams(streams) => streams
            .iter()
            .flat_map(|s| {
                s.entries.iter().map(move |e| {
                    let mut out = format!("{} {} {}", s.labels, secs(e.timestamp_ns), e.line);
                    if !e.metadata.is_empty() {
                        let md: Vec<String> =
                            e.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        out.push_str(&format!(" [{}]", md.join(" ")));
                    }
                    out
                })
            })
            .collect(),
        QueryValue::Vector(samples) => samples
            .iter()
            .map(|s| format!("{} {}", s.labels, num(s.value)))
            .collect(),
        QueryValue::Matrix(series) => series
            .iter()
            .map(|s| {
                let points: Vec<String> = s
                    .points
                    .iter()
                    .map(|p| format!("{}:{}", secs(p.timestamp_ns), num(p.value)))
                    .collect();
                format!("{} {}", s.labels, points.join(" "))
            })
            .collect(),
        QueryValue::Scalar(p) => vec![num(p.value)],
    }
}

/// Runs `query` and renders the result, panicking with the query on error.
pub(super) fn run(src: &MemorySource, query: &str, params: &QueryParams) -> Vec<String> {
    match Evaluator::new(src).query(query, params) {
        Ok(result) => render(&result.value),
        Err(e) => panic!("{query}: {e}"),
    }
}

pub(super) fn try_run(
    src: &MemorySource,
    query: &str,
    params: &QueryParams,
    limits: QueryLimits,
) -> Result<Vec<String>, QueryError> {
    Evaluator::new(src)
        .with_limits(limits)
        .query(query, params)
        .map(|r| render(&r.value))
}

/// A log query over `[start_s, end_s)`.
pub(super) fn logs(
    src: &MemorySource,
    query: &str,
    start_s: i64,
    end_s: i64,
    limit: u32,
    direction: Direction,
) -> Vec<String> {
    let params = QueryParams::range(tenant(), start_s * SEC, end_s * SEC, SEC)
        .with_limit(limit)
        .with_direction(direction);
    run(src, query, &params)
}

/// An instant metric query at `t_s` seconds.
pub(super) fn instant(src: &MemorySource, query: &str, t_s: i64) -> Vec<String> {
    run(src, query, &QueryParams::instant(tenant(), t_s * SEC))
}

/// A range metric query, all times in seconds.
pub(super) fn range(
    src: &MemorySource,
    query: &str,
    start_s: i64,
    end_s: i64,
    step_s: i64,
) -> Vec<String> {
    run(
        src,
        query,
        &QueryParams::range(tenant(), start_s * SEC, end_s * SEC, step_s * SEC),
    )
}

/// Asserts a rendered result, showing the query on failure.
#[track_caller]
pub(super) fn assert_lines(query: &str, got: Vec<String>, want: &[&str]) {
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    assert_eq!(got, want, "query: {query}");
}
