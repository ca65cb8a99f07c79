//! `sightline logs query` and `sightline logs tail`, over the Loki API.

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use serde_json::Value;

use sightline_model::duration::parse_duration_ns;

use crate::cli::{LogsQueryArgs, LogsTailArgs};
use crate::client::Api;

fn now_ns() -> i64 {
    sightline_model::now_ns()
}

pub async fn query(args: LogsQueryArgs) -> Result<()> {
    let api = Api::new(&args.server)?;
    // One reading of the clock, so `start` is exactly `--since` before `end` and a metric
    // query's last step lands on `end`.
    let now = now_ns();
    let end = match &args.end {
        Some(e) => e.clone(),
        None => now.to_string(),
    };
    let start = match &args.start {
        Some(s) => s.clone(),
        None => (now - parse_duration_ns(&args.since).context("--since")?).to_string(),
    };
    let mut params = vec![
        ("query", args.query.clone()),
        ("start", start),
        ("end", end),
        ("limit", args.limit.to_string()),
        (
            "direction",
            if args.forward { "forward" } else { "backward" }.to_string(),
        ),
    ];
    if let Some(step) = &args.step {
        params.push(("step", step.clone()));
    }
    let resp = api
        .send(api.get("/loki/api/v1/query_range").query(&params))
        .await?;
    let v: Value = resp.json().await.context("read query response")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print_result(&v["data"])
}

fn labels_text(m: &Value) -> String {
    let Some(obj) = m.as_object() else {
        return "{}".into();
    };
    let parts: Vec<String> = obj.iter().map(|(k, v)| format!("{k}={}", v)).collect();
    format!("{{{}}}", parts.join(", "))
}

fn ts_text(ns: &str) -> String {
    let n: i64 = ns.parse().unwrap_or(0);
    chrono::DateTime::from_timestamp_nanos(n).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn print_result(data: &Value) -> Result<()> {
    match data["resultType"].as_str() {
        Some("streams") => {
            let mut lines: Vec<(String, String, String)> = Vec::new();
            for s in data["result"].as_array().into_iter().flatten() {
                let labels = labels_text(&s["stream"]);
                for v in s["values"].as_array().into_iter().flatten() {
                    let ts = v[0].as_str().unwrap_or("0").to_string();
                    lines.push((ts, labels.clone(), v[1].as_str().unwrap_or("").to_string()));
                }
            }
            lines.sort_by(|a, b| {
                a.0.parse::<i64>()
                    .unwrap_or(0)
                    .cmp(&b.0.parse::<i64>().unwrap_or(0))
            });
            for (ts, labels, line) in &lines {
                println!("{} {labels} {line}", ts_text(ts));
            }
            eprintln!("{} lines", lines.len());
        }
        Some("matrix") => {
            for s in data["result"].as_array().into_iter().flatten() {
                println!("{}", labels_text(&s["metric"]));
                for p in s["values"].as_array().into_iter().flatten() {
                    let t = p[0].as_f64().unwrap_or(0.0);
                    let when = chrono::DateTime::from_timestamp_nanos((t * 1e9) as i64)
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    println!("  {when}  {}", p[1].as_str().unwrap_or(""));
                }
            }
        }
        Some("vector") => {
            for s in data["result"].as_array().into_iter().flatten() {
                println!(
                    "{}  {}",
                    labels_text(&s["metric"]),
                    s["value"][1].as_str().unwrap_or("")
                );
            }
        }
        Some("scalar") => println!("{}", data["result"][1].as_str().unwrap_or("")),
        other => bail!("unexpected result type {other:?}"),
    }
    Ok(())
}

pub async fn tail(args: LogsTailArgs) -> Result<()> {
    let api = Api::new(&args.server)?;
    let since = parse_duration_ns(&args.since).context("--since")?;
    let ws_base = api.base.replacen("http", "ws", 1);
    let start = (now_ns() - since).to_string();
    let url = reqwest::Url::parse_with_params(
        &format!("{ws_base}/loki/api/v1/tail"),
        [("query", args.query.as_str()), ("start", start.as_str())],
    )
    .context("build tail url")?;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        url.as_str(),
    )
    .context("build tail request")?;
    if let Some(t) = api.tenant() {
        req.headers_mut()
            .insert("X-Scope-OrgID", t.parse().context("tenant header")?);
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .with_context(|| format!("connect to {url}"))?;
    while let Some(msg) = ws.next().await {
        let msg = msg.context("tail connection")?;
        let text = match msg {
            tokio_tungstenite::tungstenite::Message::Text(t) => t.to_string(),
            tokio_tungstenite::tungstenite::Message::Close(f) => {
                if let Some(f) = f {
                    bail!("server closed the tail: {}", f.reason);
                }
                return Ok(());
            }
            _ => continue,
        };
        let v: Value = serde_json::from_str(&text).context("tail frame")?;
        for s in v["streams"].as_array().into_iter().flatten() {
            let labels = labels_text(&s["stream"]);
            for e in s["values"].as_array().into_iter().flatten() {
                println!(
                    "{} {labels} {}",
                    ts_text(e[0].as_str().unwrap_or("0")),
                    e[1].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}
