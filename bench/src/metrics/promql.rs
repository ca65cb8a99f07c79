//! The query phase of the metrics benchmark: a fixed set of PromQL range queries (TSBS's
//! devops queries where there is one), asked of every server through the Prometheus HTTP API
//! (`GET /api/v1/query_range`), timed over several runs, and the answers compared series by
//! series and point by point with Prometheus', the reference.
//!
//! A run's time is from sending the request to having read the whole response body; JSON
//! decoding by the harness is not counted. The answer kept is the first run's; a later run
//! that answers differently is reported (a cache that goes wrong).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use reqwest::blocking::Client;
use serde_json::Value;

use super::devops::{self, Workload};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// Relative differences up to this are "the last digits" of a double.
const LAST_DIGITS_RELATIVE: f64 = 1e-12;

#[derive(Clone, Debug)]
pub struct RangeQuery {
    pub name: &'static str,
    pub promql: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
}

impl RangeQuery {
    pub fn points(&self) -> i64 {
        (self.end_ms - self.start_ms) / self.step_ms + 1
    }

    /// `1h @ 1m (61 points)`, for the report.
    pub fn range_text(&self) -> String {
        let points = self.points();
        format!(
            "{} @ {} ({points} point{})",
            duration_text(self.end_ms - self.start_ms),
            duration_text(self.step_ms),
            if points == 1 { "" } else { "s" }
        )
    }
}

/// `1h30m`, `10m`, `45s`.
pub fn duration_text(ms: i64) -> String {
    let s = ms / 1_000;
    let (h, m, s) = (s / 3_600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 || out.is_empty() {
        let _ = write!(out, "{s}s");
    }
    out
}

/// Every series the servers hold, counted at the end of the data.
pub const SERIES_QUERY: &str = "count({__name__=~\".+\"})";

/// The samples of one metric, counted at the end of the data; `NAME` stands for the metric
/// name. One query a name, because `count_over_time` drops the name and series of different
/// metrics with the same other labels would then collide (Prometheus refuses that).
pub fn samples_query(w: &Workload) -> String {
    let window_s = (w.end_ms() - w.start_ms) / 1_000 + 60;
    format!("sum(count_over_time(NAME[{window_s}s]))")
}

/// The samples of every metric of the workload, added up.
pub fn count_samples(http: &Client, base: &str, w: &Workload) -> Result<f64> {
    let query = samples_query(w);
    let mut total = 0.0;
    for name in devops::metric_names() {
        total += instant_number(http, base, &query.replace("NAME", name), w.end_ms())?;
    }
    Ok(total)
}

/// The queries over the workload's time span: ranges end at the last whole minute of the
/// data; "last hour" ones start an hour before (or at the data's first step), "whole" ones
/// at the first step boundary in the data.
pub fn plan(w: &Workload) -> Vec<RangeQuery> {
    let end_ms = w.end_ms().div_euclid(MINUTE_MS) * MINUTE_MS;
    let whole = |step_ms: i64| end_ms - (end_ms - w.start_ms).div_euclid(step_ms) * step_ms;
    let last_hour = (end_ms - HOUR_MS).max(whole(MINUTE_MS));
    let host = w.hosts.saturating_sub(1).min(7);
    let eight = (1..=8).map(|i| i.to_string()).collect::<Vec<_>>().join("|");
    let q = |name, promql: String, start_ms, step_ms| RangeQuery {
        name,
        promql,
        start_ms,
        end_ms,
        step_ms,
    };
    vec![
        q(
            "single-groupby-1-1-1",
            format!(
                "max by (hostname) (max_over_time(cpu_usage_user{{hostname=\"host_{host}\"}}[1m]))"
            ),
            last_hour,
            MINUTE_MS,
        ),
        q(
            "single-groupby-1-8-1",
            format!("max(max_over_time(cpu_usage_user{{hostname=~\"host_({eight})\"}}[1m]))"),
            last_hour,
            MINUTE_MS,
        ),
        q(
            "double-groupby-1",
            "avg by (hostname) (avg_over_time(cpu_usage_user[1h]))".into(),
            whole(HOUR_MS),
            HOUR_MS,
        ),
        q(
            "request rate by code",
            "sum by (code) (rate(http_requests_total[5m]))".into(),
            whole(MINUTE_MS),
            MINUTE_MS,
        ),
        q(
            "p99 latency",
            "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"
                .into(),
            whole(MINUTE_MS),
            MINUTE_MS,
        ),
        // By the mean, not TSBS's max: the walks touch 100 often, and ties make topk's
        // answer depend on series order, which differs from run to run even in Prometheus.
        q(
            "top 5 hosts by mean CPU",
            "topk(5, avg by (hostname) (avg_over_time(cpu_usage_user[1h])))".into(),
            whole(10 * MINUTE_MS),
            10 * MINUTE_MS,
        ),
    ]
}

/// A matrix answer: per series (its labels as `{a="1", b="2"}`, sorted by name), its points
/// as `(milliseconds, value as the server printed it)`.
pub type Matrix = BTreeMap<String, Vec<(i64, String)>>;

/// What one server answered to one query.
#[derive(Clone, Debug)]
pub struct QueryRun {
    pub runs_ms: Vec<f64>,
    /// The first run's answer, or what went wrong (with the request and the response).
    pub answer: Result<Matrix, String>,
    /// A later run whose answer differed from the first, if any.
    pub unstable: Option<String>,
}

impl QueryRun {
    pub fn median_ms(&self) -> Option<f64> {
        self.answer
            .is_ok()
            .then(|| crate::report::median(&self.runs_ms))
            .flatten()
    }
}

fn seconds_text(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1_000), ms.rem_euclid(1_000))
}

/// Asks `query` `runs` times; stops at the first run that fails.
pub fn run(http: &Client, base: &str, query: &RangeQuery, runs: usize) -> QueryRun {
    let url = format!("{base}/api/v1/query_range");
    let params = [
        ("query", query.promql.clone()),
        ("start", seconds_text(query.start_ms)),
        ("end", seconds_text(query.end_ms)),
        ("step", seconds_text(query.step_ms)),
    ];
    let shown = || format!("GET {url} {params:?}");
    let mut out = QueryRun {
        runs_ms: Vec::new(),
        answer: Err("not run".into()),
        unstable: None,
    };
    for i in 0..runs.max(1) {
        let sent = Instant::now();
        let answer = http.get(&url).query(&params).send().and_then(|r| {
            let status = r.status();
            r.text().map(|t| (status, t))
        });
        let ms = sent.elapsed().as_secs_f64() * 1e3;
        let (status, body) = match answer {
            Ok(a) => a,
            Err(e) => {
                out.answer = Err(format!("{}: {e}", shown()));
                return out;
            }
        };
        let parsed = if status.is_success() {
            parse_matrix(&body).map_err(|e| format!("{e:#}"))
        } else {
            Err(format!("answered {status}"))
        };
        let matrix = match parsed {
            Ok(m) => m,
            Err(what) => {
                let body: String = body.chars().take(1_000).collect();
                out.answer = Err(format!(
                    "{what}\n  request: {}\n  response: {body}",
                    shown()
                ));
                return out;
            }
        };
        out.runs_ms.push(ms);
        if i == 0 {
            out.answer = Ok(matrix);
        } else if let (Ok(first), None) = (&out.answer, &out.unstable)
            && *first != matrix
        {
            out.unstable = Some(format!(
                "run {} answered differently from the first: {}",
                i + 1,
                compare(&matrix, first)
            ));
        }
    }
    out
}

/// The one number of an instant query whose answer is a single sample (`count(…)`,
/// `sum(…)`), at `time_ms`.
pub fn instant_number(http: &Client, base: &str, promql: &str, time_ms: i64) -> Result<f64> {
    let url = format!("{base}/api/v1/query");
    let resp = http
        .get(&url)
        .query(&[("query", promql), ("time", &seconds_text(time_ms))])
        .send()
        .with_context(|| format!("GET {url} {promql}"))?;
    let status = resp.status();
    let body = resp.text().with_context(|| format!("read {url}"))?;
    ensure!(
        status.is_success(),
        "{promql}: answered {status}: {}",
        body.chars().take(500).collect::<String>()
    );
    let v: Value = serde_json::from_str(&body).context("parse the answer as JSON")?;
    let result = v["data"]["result"]
        .as_array()
        .context("no data.result array")?;
    match result.as_slice() {
        [one] => one["value"][1]
            .as_str()
            .context("no value")?
            .parse()
            .context("parse the value"),
        other => bail!("{promql}: {} samples, not one", other.len()),
    }
}

/// Parses a `query_range` answer.
fn parse_matrix(body: &str) -> Result<Matrix> {
    let v: Value = serde_json::from_str(body).context("parse the answer as JSON")?;
    ensure!(v["status"] == "success", "status is not success");
    ensure!(
        v["data"]["resultType"] == "matrix",
        "resultType is {}, not matrix",
        v["data"]["resultType"]
    );
    let mut out = Matrix::new();
    for series in v["data"]["result"]
        .as_array()
        .context("no data.result array")?
    {
        let mut labels: Vec<(&str, &str)> = series["metric"]
            .as_object()
            .context("a series without metric")?
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
            .collect();
        labels.sort();
        let key = format!(
            "{{{}}}",
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut points = Vec::new();
        for p in series["values"]
            .as_array()
            .context("a series without values")?
        {
            let t = p[0].as_f64().context("a point without a timestamp")?;
            let value = p[1].as_str().context("a point without a value")?;
            points.push(((t * 1e3).round() as i64, value.to_string()));
        }
        ensure!(
            out.insert(key.clone(), points).is_none(),
            "series {key} twice"
        );
    }
    Ok(out)
}

/// How `ours` differs from `reference`: `same` or what differs, with the first example.
pub fn compare(ours: &Matrix, reference: &Matrix) -> String {
    let points: usize = reference.values().map(Vec::len).sum();
    let missing: Vec<&String> = reference
        .keys()
        .filter(|k| !ours.contains_key(*k))
        .collect();
    let extra: Vec<&String> = ours
        .keys()
        .filter(|k| !reference.contains_key(*k))
        .collect();
    let mut differ = 0usize;
    let mut last_digits = 0usize;
    let mut largest_relative = 0f64;
    let mut first = None;
    for (key, want) in reference {
        let Some(got) = ours.get(key) else { continue };
        let got: BTreeMap<i64, &String> = got.iter().map(|(t, v)| (*t, v)).collect();
        let want: BTreeMap<i64, &String> = want.iter().map(|(t, v)| (*t, v)).collect();
        for t in want
            .keys()
            .chain(got.keys().filter(|t| !want.contains_key(t)))
        {
            let (g, w) = (got.get(t), want.get(t));
            if g == w {
                continue;
            }
            let relative = match (g.and_then(|g| g.parse::<f64>().ok()), w) {
                (Some(g), Some(w)) => w
                    .parse::<f64>()
                    .map(|w| (g - w).abs() / g.abs().max(w.abs()))
                    .unwrap_or(f64::INFINITY),
                _ => f64::INFINITY,
            };
            if relative <= LAST_DIGITS_RELATIVE {
                last_digits += 1;
            } else {
                differ += 1;
            }
            if relative.is_finite() {
                largest_relative = largest_relative.max(relative);
            }
            if first.is_none() {
                let show = |v: Option<&&String>| v.map_or("none".into(), |v| v.to_string());
                first = Some(format!(
                    "{key} at {}: {} vs {}",
                    seconds_text(*t),
                    show(g),
                    show(w)
                ));
            }
        }
    }
    if missing.is_empty() && extra.is_empty() && differ == 0 && last_digits == 0 {
        return format!("same ({} series, {points} points)", reference.len());
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "{} of {} series missing (e.g. {})",
            missing.len(),
            reference.len(),
            missing[0]
        ));
    }
    if !extra.is_empty() {
        parts.push(format!("{} extra series (e.g. {})", extra.len(), extra[0]));
    }
    if differ > 0 {
        parts.push(format!("{differ} of {points} points differ"));
    }
    if last_digits > 0 {
        parts.push(format!(
            "{last_digits} of {points} points differ in the last digits only"
        ));
    }
    if largest_relative > 0.0 {
        parts.push(format!(
            "largest relative difference {largest_relative:.1e}"
        ));
    }
    if let Some(f) = first {
        parts.push(format!("first: {f}"));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(series: &[(&str, &[(i64, &str)])]) -> Matrix {
        series
            .iter()
            .map(|(k, pts)| {
                (
                    k.to_string(),
                    pts.iter().map(|(t, v)| (*t, v.to_string())).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn compares_answers() {
        let check = |ours: &Matrix, reference: &Matrix, want: &str| {
            let got = compare(ours, reference);
            assert!(
                got.starts_with(want),
                "{got:?} does not start with {want:?}"
            );
        };
        let a = matrix(&[("{a=\"1\"}", &[(1_000, "1.5"), (2_000, "2")])]);
        check(&a, &a, "same (1 series, 2 points)");
        let b = matrix(&[(
            "{a=\"1\"}",
            &[(1_000, "1.5"), (2_000, "2.0000000000000004")],
        )]);
        check(&b, &a, "1 of 2 points differ in the last digits only");
        let c = matrix(&[("{a=\"1\"}", &[(1_000, "1.5")])]);
        check(
            &c,
            &a,
            "1 of 2 points differ; first: {a=\"1\"} at 2.000: none vs 2",
        );
        let d = matrix(&[("{a=\"2\"}", &[(1_000, "1.5")])]);
        check(
            &d,
            &a,
            "1 of 1 series missing (e.g. {a=\"1\"}); 1 extra series",
        );
    }

    #[test]
    fn parses_a_matrix() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"b":"2","a":"1"},"values":[[1700000000.5,"3"],[1700000060,"NaN"]]}]}}"#;
        let m = parse_matrix(body).expect("parse");
        assert_eq!(
            m,
            matrix(&[(
                "{a=\"1\", b=\"2\"}",
                &[(1_700_000_000_500, "3"), (1_700_000_060_000, "NaN")]
            )])
        );
        assert!(parse_matrix(r#"{"status":"error"}"#).is_err());
    }

    #[test]
    fn plans_ranges_inside_the_data() {
        let w = Workload {
            seed: 1,
            hosts: 100,
            interval_ms: 10_000,
            rounds: 720,
            start_ms: 1_700_000_007_000,
        };
        for q in plan(&w) {
            assert!(q.start_ms >= w.start_ms && q.end_ms <= w.end_ms(), "{q:?}");
            assert_eq!((q.end_ms - q.start_ms) % q.step_ms, 0, "{q:?}");
            assert!(q.points() >= 2, "{q:?}");
        }
        assert_eq!(duration_text(3_600_000), "1h");
        assert_eq!(duration_text(5_400_000), "1h30m");
        assert_eq!(duration_text(60_000), "1m");
    }
}
