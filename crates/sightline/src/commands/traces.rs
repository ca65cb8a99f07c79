//! `sightline traces get|search` and `sightline debug`: traces for a person, over the
//! server's Jaeger API and its debug route.
//!
//! A trace prints as a waterfall: one line per span in tree order (children under their
//! parent, earliest first), indented by depth, with its offset from the trace's start, its
//! duration, its service and a bar placing it in the trace's time. `debug` prints the errors
//! first, then the waterfall with the trace's log lines interleaved in time, then the span
//! metrics of the endpoints the trace touched.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use sightline_model::duration::parse_duration_ns;

use crate::cli::{DebugArgs, TracesGetArgs, TracesSearchArgs};
use crate::client::Api;

/// Width of the waterfall's bars.
const BAR_WIDTH: usize = 30;

pub async fn get(args: TracesGetArgs) -> Result<()> {
    let api = Api::new(&args.server)?;
    let resp = api
        .send(api.get(&format!("/api/traces/{}", args.id)))
        .await?;
    let v: Value = resp.json().await.context("read trace")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let trace = v["data"]
        .get(0)
        .context("the server answered with no trace")?;
    print!("{}", waterfall(trace, &[]));
    Ok(())
}

pub async fn search(args: TracesSearchArgs) -> Result<()> {
    let api = Api::new(&args.server)?;
    let now_us = sightline_model::now_ns() / 1_000;
    let since_us = parse_duration_ns(&args.since).context("--since")? / 1_000;
    let mut params = vec![
        ("start", (now_us - since_us).to_string()),
        ("end", now_us.to_string()),
        ("limit", args.limit.to_string()),
    ];
    let optional = [
        ("service", &args.service),
        ("operation", &args.operation),
        ("minDuration", &args.min_duration),
        ("maxDuration", &args.max_duration),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            params.push((k, v.clone()));
        }
    }
    if !args.tags.is_empty() {
        let mut tags = serde_json::Map::new();
        for t in &args.tags {
            let (k, v) = t
                .split_once('=')
                .with_context(|| format!("--tag {t:?}: want key=value"))?;
            tags.insert(k.to_owned(), Value::String(v.to_owned()));
        }
        params.push(("tags", Value::Object(tags).to_string()));
    }
    let resp = api.send(api.get("/api/traces").query(&params)).await?;
    let v: Value = resp.json().await.context("read search results")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let traces = v["data"].as_array().cloned().unwrap_or_default();
    if traces.is_empty() {
        println!("no traces found");
        return Ok(());
    }
    println!(
        "{:<32}  {:<24}  {:>6}  {:>12}  {:>6}  root",
        "trace id", "start", "spans", "duration", "errors"
    );
    for t in &traces {
        let spans = t["spans"].as_array().map(Vec::as_slice).unwrap_or_default();
        let (start, end) = bounds(spans);
        let root = roots(spans)
            .first()
            .map(|s| {
                format!(
                    "{} {}",
                    service_of(t, s),
                    s["operationName"].as_str().unwrap_or("")
                )
            })
            .unwrap_or_default();
        println!(
            "{:<32}  {:<24}  {:>6}  {:>12}  {:>6}  {root}",
            t["traceID"].as_str().unwrap_or(""),
            rfc3339_us(start),
            spans.len(),
            human_us(end - start),
            spans.iter().filter(|s| is_error(s)).count(),
        );
    }
    Ok(())
}

pub async fn debug(args: DebugArgs) -> Result<()> {
    let api = Api::new(&args.server)?;
    let resp = api
        .send(api.get(&format!("/api/v1/debug/{}", args.id)))
        .await?;
    let v: Value = resp.json().await.context("read debug answer")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let d = &v["data"];
    let logs = d["logs"].as_array().cloned().unwrap_or_default();
    if d["trace"].is_null() && logs.is_empty() {
        bail!("nothing found for {}: no trace and no log line", args.id);
    }
    let errors = d["errors"].as_array().cloned().unwrap_or_default();
    if !errors.is_empty() {
        println!("Errors ({}):", errors.len());
        for e in &errors {
            let mut line = format!(
                "  ✗ {} {}",
                e["service"].as_str().unwrap_or(""),
                e["operation"].as_str().unwrap_or("")
            );
            let ex = &e["exception"];
            if !ex.is_null() {
                let _ = write!(
                    line,
                    ": {}: {}",
                    ex["type"].as_str().unwrap_or("exception"),
                    ex["message"].as_str().unwrap_or("")
                );
            } else if let Some(m) = e["status_message"].as_str().filter(|m| !m.is_empty()) {
                let _ = write!(line, ": {m}");
            }
            println!("{line}");
            if let Some(st) = ex["stacktrace"].as_str() {
                for l in st.lines().take(12) {
                    println!("      {l}");
                }
            }
        }
        println!();
    }
    if d["trace"].is_null() {
        println!("No trace found; log lines of request {}:", args.id);
        for l in &logs {
            println!("{}", log_line(l));
        }
    } else {
        print!("{}", waterfall(&d["trace"], &logs));
    }
    let metrics = d["metrics"].as_array().cloned().unwrap_or_default();
    if !metrics.is_empty() {
        println!();
        println!(
            "{:<40}  {:>10}  {:>8}  {:>10}",
            "endpoint (around the trace)", "req/s", "errors", "p99"
        );
        for m in &metrics {
            let last = |k: &str| {
                m[k].as_array()
                    .and_then(|pts| pts.last())
                    .and_then(|p| p[1].as_str())
                    .and_then(|s| s.parse::<f64>().ok())
            };
            let endpoint = format!(
                "{} {}",
                m["service"].as_str().unwrap_or(""),
                m["operation"].as_str().unwrap_or("")
            );
            println!(
                "{endpoint:<40}  {:>10}  {:>8}  {:>10}",
                last("requests_per_second").map_or("-".into(), |r| format!("{r:.3}")),
                last("error_ratio").map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
                last("p99_seconds").map_or("-".into(), |s| human_us((s * 1e6) as i64)),
            );
        }
    }
    Ok(())
}

fn is_error(span: &Value) -> bool {
    span["tags"].as_array().is_some_and(|tags| {
        tags.iter()
            .any(|t| t["key"] == "error" && (t["value"] == true || t["value"] == "true"))
    })
}

fn service_of<'a>(trace: &'a Value, span: &Value) -> &'a str {
    span["processID"]
        .as_str()
        .and_then(|p| trace["processes"][p]["serviceName"].as_str())
        .unwrap_or("?")
}

fn parent_of(span: &Value) -> Option<&str> {
    span["references"]
        .as_array()?
        .iter()
        .find(|r| r["refType"] == "CHILD_OF")
        .and_then(|r| r["spanID"].as_str())
}

/// Spans whose parent is not in the trace, earliest first.
fn roots(spans: &[Value]) -> Vec<&Value> {
    let ids: std::collections::HashSet<&str> =
        spans.iter().filter_map(|s| s["spanID"].as_str()).collect();
    let mut r: Vec<&Value> = spans
        .iter()
        .filter(|s| parent_of(s).is_none_or(|p| !ids.contains(p)))
        .collect();
    r.sort_by_key(|s| s["startTime"].as_i64());
    r
}

/// Earliest start and latest end of the spans, in µs.
fn bounds(spans: &[Value]) -> (i64, i64) {
    let start = spans
        .iter()
        .filter_map(|s| s["startTime"].as_i64())
        .min()
        .unwrap_or(0);
    let end = spans
        .iter()
        .filter_map(|s| Some(s["startTime"].as_i64()? + s["duration"].as_i64()?))
        .max()
        .unwrap_or(start);
    (start, end)
}

/// The trace as an indented tree, with `logs` (debug's log lines) interleaved by time.
fn waterfall(trace: &Value, logs: &[Value]) -> String {
    let spans = trace["spans"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let (start, end) = bounds(spans);
    let total = (end - start).max(1);
    let services: std::collections::BTreeSet<&str> =
        spans.iter().map(|s| service_of(trace, s)).collect();
    let errors = spans.iter().filter(|s| is_error(s)).count();
    let mut out = format!(
        "Trace {} · {} spans · {} services · {} · {} error{}\n",
        trace["traceID"].as_str().unwrap_or(""),
        spans.len(),
        services.len(),
        human_us(total),
        errors,
        if errors == 1 { "" } else { "s" },
    );
    let mut children: HashMap<&str, Vec<&Value>> = HashMap::new();
    for s in spans {
        if let Some(p) = parent_of(s) {
            children.entry(p).or_default().push(s);
        }
    }
    for c in children.values_mut() {
        c.sort_by_key(|s| s["startTime"].as_i64());
    }
    // Depth-first, earliest child first.
    let mut order: Vec<(usize, &Value)> = Vec::new();
    let mut stack: Vec<(usize, &Value)> = roots(spans).into_iter().rev().map(|s| (0, s)).collect();
    while let Some((depth, s)) = stack.pop() {
        order.push((depth, s));
        if let Some(c) = s["spanID"].as_str().and_then(|id| children.get(id)) {
            stack.extend(c.iter().rev().map(|c| (depth + 1, *c)));
        }
    }
    let mut logs: Vec<(i64, &Value)> = logs
        .iter()
        .map(|l| {
            let ns = l["timestamp"].as_str().and_then(|t| t.parse::<i64>().ok());
            (ns.unwrap_or(0) / 1_000, l)
        })
        .collect();
    logs.sort_by_key(|(us, _)| *us);
    let mut next_log = 0;
    for (depth, s) in order {
        let s_start = s["startTime"].as_i64().unwrap_or(start);
        while next_log < logs.len() && logs[next_log].0 < s_start {
            let _ = writeln!(out, "{}", log_line(logs[next_log].1));
            next_log += 1;
        }
        let dur = s["duration"].as_i64().unwrap_or(0);
        let from = ((s_start - start) as f64 / total as f64 * BAR_WIDTH as f64) as usize;
        let len = ((dur as f64 / total as f64 * BAR_WIDTH as f64).ceil() as usize).max(1);
        let from = from.min(BAR_WIDTH - 1);
        let len = len.min(BAR_WIDTH - from);
        let bar = format!(
            "{}{}{}",
            " ".repeat(from),
            "█".repeat(len),
            " ".repeat(BAR_WIDTH - from - len)
        );
        let _ = writeln!(
            out,
            "{:>10} │{bar}│ {}{} {} [{}]{}",
            format!("+{}", human_us(s_start - start)),
            "  ".repeat(depth),
            s["operationName"].as_str().unwrap_or(""),
            human_us(dur),
            service_of(trace, s),
            if is_error(s) { " ✗ error" } else { "" },
        );
    }
    for (_, l) in &logs[next_log..] {
        let _ = writeln!(out, "{}", log_line(l));
    }
    out
}

/// A log line of the debug answer: time, service and level, the line.
fn log_line(l: &Value) -> String {
    let ns = l["timestamp"]
        .as_str()
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or(0);
    let label = |k: &str| l["labels"][k].as_str().unwrap_or("").to_owned();
    format!(
        "{:>10} │ log {} {} {}: {}",
        "",
        rfc3339_us(ns / 1_000),
        label("service"),
        label("level"),
        l["line"].as_str().unwrap_or("")
    )
}

/// A duration in µs as a person reads it: `850µs`, `12.3ms`, `1.25s`.
fn human_us(us: i64) -> String {
    match us {
        u if u < 1_000 => format!("{u}µs"),
        u if u < 1_000_000 => format!("{:.1}ms", u as f64 / 1e3),
        u => format!("{:.2}s", u as f64 / 1e6),
    }
}

fn rfc3339_us(us: i64) -> String {
    use chrono::TimeZone;
    chrono::Utc
        .timestamp_micros(us)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| us.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn span(id: &str, parent: Option<&str>, start: i64, dur: i64, error: bool) -> Value {
        json!({
            "spanID": id,
            "operationName": format!("op-{id}"),
            "references": parent.map(|p| vec![json!({"refType": "CHILD_OF", "spanID": p})]).unwrap_or_default(),
            "startTime": start,
            "duration": dur,
            "processID": "p1",
            "tags": if error { vec![json!({"key": "error", "type": "bool", "value": true})] } else { vec![] },
        })
    }

    #[test]
    fn waterfall_indents_children_in_time_order_and_interleaves_logs() {
        let trace = json!({
            "traceID": "abc",
            "processes": {"p1": {"serviceName": "orders"}},
            "spans": [
                span("c2", Some("r"), 1_300, 100, true),
                span("r", None, 1_000, 1_000, false),
                span("c1", Some("r"), 1_100, 100, false),
                span("g", Some("c1"), 1_150, 10, false),
            ],
        });
        let logs = vec![
            json!({"timestamp": "1200000", "labels": {"service": "orders", "level": "error"}, "line": "card declined"}),
        ];
        let text = waterfall(&trace, &logs);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("4 spans") && lines[0].contains("1 error"),
            "{text}"
        );
        assert!(lines[1].contains("│ op-r 1.0ms [orders]"), "{text}");
        assert!(lines[2].contains("│   op-c1 100µs"), "{text}");
        assert!(lines[3].contains("│     op-g 10µs"), "{text}");
        assert!(
            lines[4].contains("log") && lines[4].contains("card declined"),
            "{text}"
        );
        assert!(
            lines[5].contains("op-c2") && lines[5].ends_with("✗ error"),
            "{text}"
        );
    }

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(human_us(850), "850µs");
        assert_eq!(human_us(12_340), "12.3ms");
        assert_eq!(human_us(1_250_000), "1.25s");
    }
}
