//! `sightline slo status` and `sightline silence add|list|expire`, over `/api/v1/slos` and
//! `/api/v1/silences`.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use sightline_model::duration::parse_duration_ns;

use crate::cli::{SilenceAddArgs, SilenceExpireArgs, SilenceListArgs, SloStatusArgs};
use crate::client::Api;

async fn get_data(api: &Api, path: &str) -> Result<Value> {
    let resp = api.send(api.get(path)).await?;
    let v: Value = resp.json().await.context("read the answer")?;
    Ok(v["data"].clone())
}

fn num(v: &Value, digits: usize) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.digits$}"))
}

pub async fn slo_status(args: SloStatusArgs) -> Result<()> {
    let api = Api::new(&args.server)?;
    let data = match &args.name {
        Some(n) => json!([get_data(&api, &format!("/api/v1/slos/{n}")).await?]),
        None => get_data(&api, "/api/v1/slos").await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&data)?);
        return Ok(());
    }
    let slos = data.as_array().cloned().unwrap_or_default();
    if slos.is_empty() {
        println!("no SLOs configured");
        return Ok(());
    }
    let mut rows = vec![
        [
            "NAME",
            "OBJECTIVE",
            "WINDOW",
            "SLI",
            "BUDGET LEFT",
            "MIN LEFT",
            "BURN 5m",
            "BURN 1h",
            "BURN 6h",
            "ALERTS",
        ]
        .map(String::from),
    ];
    for s in &slos {
        let b = &s["error_budget"];
        let alerts: Vec<String> = s["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                format!(
                    "{}({})",
                    a["labels"]["alertname"].as_str().unwrap_or(""),
                    a["labels"]["severity"].as_str().unwrap_or("")
                )
            })
            .collect();
        rows.push([
            s["name"].as_str().unwrap_or("").to_string(),
            format!("{}%", num(&s["objective"], 3)),
            s["window"].as_str().unwrap_or("").to_string(),
            s["sli"]
                .as_f64()
                .map_or("no data".into(), |v| format!("{v:.3}%")),
            format!("{}%", num(&b["remaining_percent"], 1)),
            format!(
                "{} / {}",
                num(&b["remaining_minutes"], 1),
                num(&b["total_minutes"], 1)
            ),
            num(&s["burn_rates"]["5m"], 2),
            num(&s["burn_rates"]["1h"], 2),
            num(&s["burn_rates"]["6h"], 2),
            if alerts.is_empty() {
                "-".into()
            } else {
                alerts.join(" ")
            },
        ]);
    }
    print_table(&rows);
    Ok(())
}

fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

/// `name=value`, `name!=value`, `name=~re`, `name!~re` as an Alertmanager matcher.
fn matcher(text: &str) -> Result<Value> {
    for (op, is_regex, is_equal) in [
        ("!~", true, false),
        ("=~", true, true),
        ("!=", false, false),
        ("=", false, true),
    ] {
        if let Some((name, value)) = text.split_once(op) {
            let value = value.trim().trim_matches('"');
            if name.trim().is_empty() {
                break;
            }
            return Ok(
                json!({"name": name.trim(), "value": value, "isRegex": is_regex, "isEqual": is_equal}),
            );
        }
    }
    bail!("matcher {text:?}: expected name=value, name!=value, name=~regex or name!~regex")
}

pub async fn silence_add(args: SilenceAddArgs) -> Result<()> {
    let api = Api::new(&args.server)?;
    let matchers = args
        .matchers
        .iter()
        .map(|m| matcher(m))
        .collect::<Result<Vec<_>>>()?;
    let ns = parse_duration_ns(&args.duration).context("--duration")?;
    let now = chrono::Utc::now();
    let body = json!({
        "matchers": matchers,
        "startsAt": now,
        "endsAt": now + chrono::Duration::nanoseconds(ns),
        "createdBy": args.author,
        "comment": args.comment,
    });
    let resp = api.send(api.post("/api/v1/silences").json(&body)).await?;
    let v: Value = resp.json().await.context("read the answer")?;
    println!("{}", v["data"]["silenceID"].as_str().unwrap_or(""));
    Ok(())
}

pub async fn silence_list(args: SilenceListArgs) -> Result<()> {
    let api = Api::new(&args.server)?;
    let data = get_data(&api, "/api/v1/silences").await?;
    let mut rows = vec![["ID", "STATE", "MATCHERS", "ENDS", "BY", "COMMENT"].map(String::from)];
    for s in data.as_array().into_iter().flatten() {
        let matchers: Vec<String> = s["matchers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let op = match (m["isRegex"].as_bool(), m["isEqual"].as_bool()) {
                    (Some(true), Some(false)) => "!~",
                    (Some(true), _) => "=~",
                    (_, Some(false)) => "!=",
                    _ => "=",
                };
                format!(
                    "{}{op}{:?}",
                    m["name"].as_str().unwrap_or(""),
                    m["value"].as_str().unwrap_or("")
                )
            })
            .collect();
        rows.push([
            s["id"].as_str().unwrap_or("").to_string(),
            s["status"]["state"].as_str().unwrap_or("").to_string(),
            matchers.join(","),
            s["endsAt"].as_str().unwrap_or("").to_string(),
            s["createdBy"].as_str().unwrap_or("").to_string(),
            s["comment"].as_str().unwrap_or("").to_string(),
        ]);
    }
    print_table(&rows);
    Ok(())
}

pub async fn silence_expire(args: SilenceExpireArgs) -> Result<()> {
    let api = Api::new(&args.server)?;
    api.send(api.delete(&format!("/api/v1/silence/{}", args.id)))
        .await?;
    println!("expired {}", args.id);
    Ok(())
}
