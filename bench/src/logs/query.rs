//! The query phase: LogQL through the Loki HTTP API, each query timed over several runs and
//! its answer checked against what the generator produced.
//!
//! A run's time is from sending the request to having read the whole response body (JSON
//! decoding by the harness is not counted). Every run's answer is checked, not only the
//! first, so a cache that answers wrongly the second time is caught.

use std::time::Instant;

use anyhow::{Context, Result};
use reqwest::blocking::Client;
use serde_json::Value;

use super::generate::{Counts, Level, PAYMENTS_TERM};

/// What a query's answer must be.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Exactly `lines` lines, one of them with this text, all in streams of this service.
    Needle {
        line: String,
        service: String,
        lines: u64,
    },
    /// `min(limit, lines)` lines, each containing `term`, all in streams of `service`.
    Term {
        term: String,
        service: String,
        lines: u64,
    },
    /// `min(limit, lines)` lines, all in streams with exactly these label values.
    Stream {
        labels: Vec<(String, String)>,
        lines: u64,
    },
    /// A vector by `level` whose values are these counts and add up to `total`.
    CountByLevel {
        total: u64,
        by_label: Vec<(String, u64)>,
    },
}

#[derive(Clone, Debug)]
pub struct Query {
    pub name: &'static str,
    pub logql: String,
    /// `Some(limit)`: a log query over `[start, end]` (`query_range`); `None`: an instant
    /// metric query at `end` (`query`).
    pub limit: Option<u64>,
    pub start_ns: i64,
    pub end_ns: i64,
    pub expect: Expect,
}

#[derive(Clone, Debug)]
pub struct QueryResult {
    pub name: &'static str,
    pub logql: String,
    /// Each run's milliseconds, in order (the first is the coldest).
    pub runs_ms: Vec<f64>,
    /// `Ok(summary)` or `Err(what was wrong, with the request and the answer)`.
    pub check: std::result::Result<String, String>,
}

impl QueryResult {
    pub fn min_ms(&self) -> Option<f64> {
        self.runs_ms.iter().copied().min_by(f64::total_cmp)
    }

    pub fn median_ms(&self) -> Option<f64> {
        crate::report::median(&self.runs_ms)
    }
}

/// The needle: a request id and what its lines are.
pub struct Needle<'a> {
    pub request_id: &'a str,
    /// The text of one of its lines.
    pub line: &'a str,
    pub service: &'a str,
    /// How many lines carry it.
    pub lines: u64,
}

/// The four queries of the benchmark over data from `start_ns` to `end_ns`.
pub fn plan(
    counts: &Counts,
    needle: Needle<'_>,
    start_ns: i64,
    end_ns: i64,
    now_ns: i64,
) -> Vec<Query> {
    // The instant count's range reaches back past the first line, in whole hours (3h at least).
    let hours = ((now_ns - start_ns) / 3_600_000_000_000 + 1).max(3);
    let by_label: Vec<(String, u64)> = Level::ALL
        .iter()
        .map(|l| (l.label().to_string(), counts.with_label(l.label())))
        .collect();
    vec![
        Query {
            name: "needle by request_id",
            logql: format!("{{service=~\".+\"}} | request_id=\"{}\"", needle.request_id),
            limit: Some(needle.lines.max(10)),
            start_ns,
            end_ns,
            expect: Expect::Needle {
                line: needle.line.to_string(),
                service: needle.service.to_string(),
                lines: needle.lines,
            },
        },
        Query {
            name: "term in one service",
            logql: format!("{{service=\"payments\"}} |= \"{PAYMENTS_TERM}\""),
            limit: Some(100),
            start_ns,
            end_ns,
            expect: Expect::Term {
                term: PAYMENTS_TERM.to_string(),
                service: "payments".to_string(),
                lines: counts.payments_term,
            },
        },
        Query {
            name: "count by level",
            logql: format!("sum by (level) (count_over_time({{service=~\".+\"}}[{hours}h]))"),
            limit: None,
            start_ns,
            end_ns: now_ns,
            expect: Expect::CountByLevel {
                total: counts.lines,
                by_label,
            },
        },
        Query {
            name: "errors of one service",
            logql: "{service=\"orders\", level=\"error\"}".to_string(),
            limit: Some(100),
            start_ns,
            end_ns,
            expect: Expect::Stream {
                labels: vec![
                    ("service".into(), "orders".into()),
                    ("level".into(), "error".into()),
                ],
                lines: counts.orders_error,
            },
        },
    ]
}

/// Runs `query` `runs` times; stops at the first run that fails.
pub fn run(http: &Client, base: &str, query: &Query, runs: usize) -> QueryResult {
    let url = request_url(base, query);
    let mut result = QueryResult {
        name: query.name,
        logql: query.logql.clone(),
        runs_ms: Vec::new(),
        check: Ok(String::new()),
    };
    for _ in 0..runs.max(1) {
        let sent = Instant::now();
        let answer = http.get(&url).send().and_then(|r| {
            let status = r.status();
            r.text().map(|t| (status, t))
        });
        let ms = sent.elapsed().as_secs_f64() * 1e3;
        let (status, body) = match answer {
            Ok(a) => a,
            Err(e) => {
                result.check = Err(format!("GET {url}: {e}"));
                return result;
            }
        };
        result.runs_ms.push(ms);
        let check = if status.is_success() {
            check_answer(&query.expect, query.limit, &body).map_err(|e| format!("{e:#}"))
        } else {
            Err(format!("answered {status}"))
        };
        match check {
            Ok(summary) => result.check = Ok(summary),
            Err(what) => {
                let body: String = body.chars().take(2_000).collect();
                result.check = Err(format!(
                    "{what}\n  request: GET {url}\n  response: {status} {body}"
                ));
                return result;
            }
        }
    }
    result
}

fn request_url(base: &str, q: &Query) -> String {
    match q.limit {
        Some(limit) => format!(
            "{base}/loki/api/v1/query_range?query={}&start={}&end={}&limit={limit}&direction=backward",
            percent_encode(&q.logql),
            q.start_ns,
            q.end_ns
        ),
        None => format!(
            "{base}/loki/api/v1/query?query={}&time={}",
            percent_encode(&q.logql),
            q.end_ns
        ),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A stream's labels, as `(name, value)` pairs.
type Labels = Vec<(String, String)>;

/// The log lines of a `streams` answer, each with its stream's labels.
/// The lines of a streams result, which must number exactly `want`.
fn stream_lines_counted(data: &Value, want: u64) -> Result<Vec<(Labels, String)>> {
    let lines = stream_lines(data)?;
    anyhow::ensure!(
        lines.len() as u64 == want,
        "{} lines, want {want}",
        lines.len()
    );
    Ok(lines)
}

fn stream_lines(data: &Value) -> Result<Vec<(Labels, String)>> {
    anyhow::ensure!(
        data["resultType"] == "streams",
        "resultType is {}, not streams",
        data["resultType"]
    );
    let mut out = Vec::new();
    for stream in data["result"]
        .as_array()
        .context("result is not an array")?
    {
        let labels: Labels = stream["stream"]
            .as_object()
            .context("a stream has no labels object")?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        for value in stream["values"]
            .as_array()
            .context("a stream has no values array")?
        {
            let line = value
                .get(1)
                .and_then(Value::as_str)
                .context("a value has no line")?;
            out.push((labels.clone(), line.to_string()));
        }
    }
    Ok(out)
}

fn label<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn check_answer(expect: &Expect, limit: Option<u64>, body: &str) -> Result<String> {
    let v: Value = serde_json::from_str(body).context("response is not JSON")?;
    anyhow::ensure!(v["status"] == "success", "status is {}", v["status"]);
    let data = &v["data"];
    let limit = limit.unwrap_or(u64::MAX);
    match expect {
        Expect::Needle {
            line,
            service,
            lines: want,
        } => {
            let lines = stream_lines(data)?;
            anyhow::ensure!(
                lines.len() as u64 == *want,
                "{} lines, want exactly {want}",
                lines.len()
            );
            anyhow::ensure!(
                lines.iter().any(|(_, l)| l == line),
                "no line {line:?} among {lines:?}"
            );
            if let Some((labels, _)) = lines
                .iter()
                .find(|(labels, _)| label(labels, "service") != Some(service))
            {
                anyhow::bail!("stream {labels:?}, want service {service}");
            }
            Ok(format!("{want} line(s), the right one(s)"))
        }
        Expect::Term {
            term,
            service,
            lines: want,
        } => {
            let want = (*want).min(limit);
            let lines = stream_lines_counted(data, want)?;
            if let Some((labels, l)) = lines.iter().find(|(labels, l)| {
                !l.contains(term.as_str()) || label(labels, "service") != Some(service)
            }) {
                anyhow::bail!(
                    "line {l:?} of stream {labels:?} lacks {term:?} or is not of {service}"
                );
            }
            Ok(format!("{want} lines, all matching"))
        }
        Expect::Stream {
            labels: want_labels,
            lines: want,
        } => {
            let want = (*want).min(limit);
            let lines = stream_lines_counted(data, want)?;
            for (labels, _) in &lines {
                for (k, v) in want_labels {
                    anyhow::ensure!(
                        label(labels, k) == Some(v.as_str()),
                        "stream {labels:?}, want {k}={v}"
                    );
                }
            }
            Ok(format!("{want} lines, all of the stream"))
        }
        Expect::CountByLevel { total, by_label } => {
            anyhow::ensure!(
                data["resultType"] == "vector",
                "resultType is {}, not vector",
                data["resultType"]
            );
            let mut sum = 0u64;
            let mut got = Vec::new();
            for sample in data["result"]
                .as_array()
                .context("result is not an array")?
            {
                let level = sample["metric"]["level"].as_str().unwrap_or("").to_string();
                let value = sample["value"]
                    .get(1)
                    .and_then(Value::as_str)
                    .context("a sample has no value")?;
                let n: f64 = value
                    .parse()
                    .with_context(|| format!("value {value:?} is not a number"))?;
                sum += n as u64;
                got.push((level, n as u64));
            }
            got.sort();
            let mut want: Vec<(String, u64)> =
                by_label.iter().filter(|(_, n)| *n > 0).cloned().collect();
            want.sort();
            anyhow::ensure!(
                sum == *total,
                "counts add up to {sum}, want {total} (by level {got:?}, want {want:?})"
            );
            anyhow::ensure!(got == want, "by level {got:?}, want {want:?}");
            Ok(format!("{sum} lines in {} levels, each right", got.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_logql() {
        assert_eq!(
            percent_encode("{a=~\".+\"} |= \"x y\""),
            "%7Ba%3D~%22.%2B%22%7D%20%7C%3D%20%22x%20y%22"
        );
    }

    #[test]
    fn checks_a_vector() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"level":"info"},"value":[1,"7"]},{"metric":{"level":"error"},"value":[1,"3"]}]}}"#;
        let expect = Expect::CountByLevel {
            total: 10,
            by_label: vec![("info".into(), 7), ("error".into(), 3), ("debug".into(), 0)],
        };
        assert!(check_answer(&expect, None, body).is_ok());
        let wrong = Expect::CountByLevel {
            total: 11,
            by_label: vec![("info".into(), 8), ("error".into(), 3)],
        };
        assert!(check_answer(&wrong, None, body).is_err());
    }

    #[test]
    fn checks_a_needle() {
        let body = r#"{"status":"success","data":{"resultType":"streams","result":[
            {"stream":{"service":"orders","level":"info"},"values":[["1","hello"]]}]}}"#;
        let expect = Expect::Needle {
            line: "hello".into(),
            service: "orders".into(),
            lines: 1,
        };
        assert!(check_answer(&expect, Some(10), body).is_ok());
    }
}
