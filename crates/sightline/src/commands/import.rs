//! `sightline import logs FILE` (NDJSON to `POST /api/v1/logs`) and `sightline import
//! prometheus FILE` (the text exposition format to `POST /api/v1/import/prometheus`): the
//! file in batches of whole lines, with a progress bar.

use std::io::BufRead;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{ImportArgs, ServerArgs};
use crate::client::Api;

/// Where one kind of import goes.
struct Target {
    path: &'static str,
    content_type: &'static str,
    /// What the server's `accepted` count counts.
    unit: &'static str,
}

pub async fn logs(args: ImportArgs) -> Result<()> {
    let t = Target {
        path: "/api/v1/logs",
        content_type: "application/x-ndjson",
        unit: "log lines",
    };
    lines(&args.file, args.batch_lines, &args.server, &t).await
}

pub async fn prometheus(args: ImportArgs) -> Result<()> {
    let t = Target {
        path: "/api/v1/import/prometheus",
        content_type: "text/plain; version=0.0.4",
        unit: "samples",
    };
    lines(&args.file, args.batch_lines, &args.server, &t).await
}

async fn lines(
    file: &std::path::Path,
    batch_lines: usize,
    server: &ServerArgs,
    t: &Target,
) -> Result<()> {
    let api = Api::new(server)?;
    let (reader, total): (Box<dyn BufRead>, Option<u64>) = if file.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?;
        let len = f.metadata().map(|m| m.len()).ok();
        (Box::new(std::io::BufReader::with_capacity(1 << 20, f)), len)
    };
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let batch_lines = batch_lines.max(1);
    let (mut batch, mut in_batch, mut first_line, mut line_no, mut sent_lines) =
        (Vec::new(), 0usize, 1usize, 0usize, 0u64);
    for line in reader.split(b'\n') {
        let line = line.context("read input")?;
        line_no += 1;
        bar.inc(line.len() as u64 + 1);
        batch.extend_from_slice(&line);
        batch.push(b'\n');
        in_batch += 1;
        if in_batch >= batch_lines {
            sent_lines += send(&api, t, std::mem::take(&mut batch), first_line).await?;
            in_batch = 0;
            first_line = line_no + 1;
            bar.set_message(format!("{sent_lines} {}", t.unit));
        }
    }
    if in_batch > 0 {
        sent_lines += send(&api, t, batch, first_line).await?;
    }
    bar.finish_with_message(format!("{sent_lines} {}", t.unit));
    println!("imported {sent_lines} {} from {}", t.unit, file.display());
    Ok(())
}

async fn send(api: &Api, t: &Target, body: Vec<u8>, first_line: usize) -> Result<u64> {
    let resp = api
        .send(
            api.post(t.path)
                .header("Content-Type", t.content_type)
                .body(body),
        )
        .await
        .with_context(|| format!("batch starting at line {first_line}"))?;
    let v: serde_json::Value = resp.json().await.context("read import response")?;
    Ok(v.get("accepted").and_then(|a| a.as_u64()).unwrap_or(0))
}
