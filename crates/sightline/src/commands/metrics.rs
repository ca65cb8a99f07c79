//! `sightline metrics query`: PromQL over the Prometheus API. An instant query prints a
//! table; a range query prints each series as a one-line chart with its minimum, maximum and
//! last value.

use anyhow::{Context, Result};
use serde_json::Value;

use sightline_model::duration::parse_duration_ns;

use crate::cli::MetricsQueryArgs;
use crate::client::Api;

/// Points a range query asks for when no step is given.
const DEFAULT_POINTS: i64 = 60;
/// The chart's glyphs, lowest to highest.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub async fn query(args: MetricsQueryArgs) -> Result<()> {
    let api = Api::new(&args.server)?;
    let now_s = sightline_model::now_ns() as f64 / 1e9;
    let end = args.end.clone().unwrap_or_else(|| format!("{now_s:.3}"));
    let range = args.since.is_some() || args.start.is_some();
    let (path, params) = if range {
        let start = match (&args.start, &args.since) {
            (Some(s), _) => s.clone(),
            (None, since) => {
                let since = since.as_deref().unwrap_or_default();
                let end_s: f64 = end.parse().context("--since needs --end in Unix seconds")?;
                let since_s = parse_duration_ns(since).context("--since")? as f64 / 1e9;
                format!("{:.3}", end_s - since_s)
            }
        };
        let step = match &args.step {
            Some(s) => s.clone(),
            None => {
                let (s, e): (f64, f64) = (
                    start.parse().context("give --step with RFC 3339 times")?,
                    end.parse().context("give --step with RFC 3339 times")?,
                );
                format!("{:.3}", ((e - s) / DEFAULT_POINTS as f64).max(1.0))
            }
        };
        (
            "/api/v1/query_range",
            vec![
                ("query", args.query.clone()),
                ("start", start),
                ("end", end),
                ("step", step),
            ],
        )
    } else {
        (
            "/api/v1/query",
            vec![("query", args.query.clone()), ("time", end)],
        )
    };
    let resp = api.send(api.get(path).query(&params)).await?;
    let v: Value = resp.json().await.context("read query response")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print!("{}", render(&v["data"]));
    Ok(())
}

fn labels_text(m: &Value) -> String {
    let Some(obj) = m.as_object() else {
        return "{}".into();
    };
    let name = obj.get("__name__").and_then(Value::as_str).unwrap_or("");
    let parts: Vec<String> = obj
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("{name}{{{}}}", parts.join(", "))
}

fn value_of(point: &Value) -> f64 {
    point[1]
        .as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

/// A one-line chart of `values` (NaN drawn as a space).
pub fn sparkline(values: &[f64]) -> String {
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    values
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                ' '
            } else if hi <= lo {
                BARS[3]
            } else {
                let i = ((v - lo) / (hi - lo) * (BARS.len() - 1) as f64).round() as usize;
                BARS[i.min(BARS.len() - 1)]
            }
        })
        .collect()
}

/// The text a person reads for a query's `data`.
pub fn render(data: &Value) -> String {
    let mut out = String::new();
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("vector") => {
            for s in result.as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{}  {}\n",
                    labels_text(&s["metric"]),
                    s["value"][1].as_str().unwrap_or("")
                ));
            }
        }
        Some("matrix") => {
            for s in result.as_array().into_iter().flatten() {
                let values: Vec<f64> = s["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(value_of)
                    .collect();
                let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
                let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
                let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let last = values.last().copied().unwrap_or(f64::NAN);
                out.push_str(&format!(
                    "{}\n  {}  min {min} max {max} last {last}\n",
                    labels_text(&s["metric"]),
                    sparkline(&values)
                ));
            }
        }
        Some("scalar") | Some("string") => {
            out.push_str(&format!("{}\n", result[1].as_str().unwrap_or("")));
        }
        _ => out.push_str(&format!("{data}\n")),
    }
    if out.is_empty() {
        out.push_str("no data\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_spans_the_range_and_leaves_gaps() {
        assert_eq!(sparkline(&[0.0, 1.0, f64::NAN, 7.0]), "▁▂ █");
        assert_eq!(sparkline(&[2.0, 2.0]), "▄▄");
    }

    #[test]
    fn renders_vectors_and_matrices() {
        let v: Value = serde_json::json!({"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "job": "a"}, "value": [1.0, "1"]}]});
        assert_eq!(render(&v), "up{job=\"a\"}  1\n");
        let m: Value = serde_json::json!({"resultType": "matrix", "result": [
            {"metric": {"job": "a"}, "values": [[1.0, "1"], [2.0, "3"]]}]});
        assert_eq!(render(&m), "{job=\"a\"}\n  ▁█  min 1 max 3 last 3\n");
    }
}
