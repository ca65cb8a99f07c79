//! The scrape request, as Prometheus 2.42 sends it: `GET` with its `Accept` header
//! (OpenMetrics preferred, text 0.0.4 next), `Accept-Encoding: gzip`, and
//! `X-Prometheus-Scrape-Timeout-Seconds`, which exporters such as the blackbox exporter read
//! to fit their own work into the scrape.
//!
//! The whole exchange (connect, headers, body) must finish within the target's timeout. Only
//! `200 OK` is a success. The body, after gzip decoding when the target sent it so, must be
//! shorter than the limit (the job's `body_size_limit`, capped by
//! [`SCRAPE_BODY_BYTES_MAX`]); at the limit the scrape fails with `body size limit exceeded`,
//! as in Prometheus (which counts a body of exactly the limit as over it).

use std::time::Duration;

use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT};
use sightline_ingest::compression::decode_body;

/// Largest scrape body, decoded, whatever the job's `body_size_limit` says.
pub const SCRAPE_BODY_BYTES_MAX: usize = 128 * 1024 * 1024;

/// Prometheus 2.42's `Accept` header.
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,\
application/openmetrics-text;version=0.0.1;q=0.75,\
text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The header telling the target how long the scrape may take, in seconds.
pub const SCRAPE_TIMEOUT_HEADER: &str = "X-Prometheus-Scrape-Timeout-Seconds";

/// The `User-Agent` of scrapes.
pub const SCRAPE_USER_AGENT: &str = concat!("Sightline/", env!("CARGO_PKG_VERSION"));

/// A body and its content type.
pub struct Fetched {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
}

/// Scrapes `url`, within `timeout`, refusing bodies of `body_limit_bytes` or more.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    body_limit_bytes: usize,
) -> Result<Fetched, String> {
    match tokio::time::timeout(timeout, fetch_inner(client, url, timeout, body_limit_bytes)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "get {url}: context deadline exceeded (scrape timeout {})",
            crate::config::duration::format_duration(timeout)
        )),
    }
}

async fn fetch_inner(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    body_limit_bytes: usize,
) -> Result<Fetched, String> {
    let request = client
        .get(url)
        .header(ACCEPT, ACCEPT_HEADER)
        .header(ACCEPT_ENCODING, "gzip")
        .header(USER_AGENT, SCRAPE_USER_AGENT)
        .header(SCRAPE_TIMEOUT_HEADER, timeout.as_secs_f64().to_string());
    let mut response = request
        .send()
        .await
        .map_err(|e| format!("get {url}: {}", error_chain(&e)))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(format!(
            "server returned HTTP status {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_string());
    }
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header(CONTENT_TYPE);
    let gzip = header(CONTENT_ENCODING).is_some_and(|e| e.eq_ignore_ascii_case("gzip"));
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("get {url}: read body: {}", error_chain(&e)))?
    {
        if body.len() + chunk.len() >= body_limit_bytes {
            return Err(body_limit_error(body_limit_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    if gzip {
        body = decode_body(Some("gzip"), &body, body_limit_bytes).map_err(|e| match e.kind() {
            sightline_ingest::ErrorKind::TooLarge => body_limit_error(body_limit_bytes),
            _ => format!("get {url}: {e}"),
        })?;
        if body.len() >= body_limit_bytes {
            return Err(body_limit_error(body_limit_bytes));
        }
    }
    Ok(Fetched { body, content_type })
}

fn body_limit_error(limit_bytes: usize) -> String {
    format!("body size limit exceeded (limit {limit_bytes} bytes)")
}

/// An error and its sources, joined as `a: b: c`.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
