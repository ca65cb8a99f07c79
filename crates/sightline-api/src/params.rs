//! Query parameters as Loki and Prometheus accept them: times as RFC 3339, Unix seconds
//! (with a fraction) or Unix nanoseconds; steps as durations (`15s`) or seconds (`15`, `0.5`).

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use sightline_model::TenantId;

use crate::body::{content_type, read_limited};
use crate::{ApiError, ApiResult, SharedState, tenant_of};
use sightline_model::NANOS_PER_SECOND;
use sightline_model::duration::parse_duration_ns;

/// Query-string (and, for POST, form body) parameters; repeated keys kept in order.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub async fn read(
        state: &SharedState,
        raw: Option<String>,
        headers: &HeaderMap,
        body: Body,
    ) -> ApiResult<Self> {
        let mut pairs: Vec<(String, String)> = match raw {
            Some(q) => serde_urlencoded::from_str(&q)
                .map_err(|e| ApiError::bad_data(format!("query string: {e}")))?,
            None => Vec::new(),
        };
        if content_type(headers) == "application/x-www-form-urlencoded" {
            let bytes = read_limited(body, &state.limits).await?;
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
                .map_err(|e| ApiError::bad_data(format!("form body: {e}")))?;
            pairs.extend(form);
        }
        Ok(Self(pairs))
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn required(&self, name: &str) -> ApiResult<&str> {
        self.get(name)
            .ok_or_else(|| ApiError::bad_data(format!("missing parameter {name:?}")))
    }

    pub fn time_or(&self, name: &str, default_ns: i64) -> ApiResult<i64> {
        self.get(name)
            .map(|v| parse_time_ns(name, v))
            .unwrap_or(Ok(default_ns))
    }
}

/// JSON text a handler wrote itself (a query result, written without a tree in between).
pub struct JsonText(pub Vec<u8>);

/// What a query handler answers with: a JSON tree, or JSON text.
pub trait Answer {
    fn into_answer(self) -> Response;
}

impl Answer for Value {
    fn into_answer(self) -> Response {
        Json(self).into_response()
    }
}

impl Answer for JsonText {
    fn into_answer(self) -> Response {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.0,
        )
            .into_response()
    }
}

/// The frame of every query handler: reads the tenant and the parameters, runs `f`, times
/// it under `endpoint`, and answers with its JSON or its error (counted as a rejection).
pub async fn handle<F, Fut, A>(
    state: SharedState,
    endpoint: &'static str,
    headers: &HeaderMap,
    raw: Option<String>,
    body: Body,
    f: F,
) -> Response
where
    F: FnOnce(SharedState, TenantId, Params) -> Fut,
    Fut: std::future::Future<Output = ApiResult<A>>,
    A: Answer,
{
    let started = Instant::now();
    let result = async {
        let tenant = tenant_of(headers)?;
        let p = Params::read(&state, raw, headers, body).await?;
        f(state.clone(), tenant, p).await
    }
    .await;
    state
        .metrics
        .query_seconds
        .get_or_create(&crate::metrics::QueryLabels { endpoint })
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(v) => v.into_answer(),
        Err(e) => {
            state.metrics.rejected(endpoint, e.kind.reason());
            e.into_response()
        }
    }
}

/// Parses a time parameter into nanoseconds since the epoch.
pub fn parse_time_ns(name: &str, v: &str) -> Result<i64, ApiError> {
    let v = v.trim();
    if let Ok(n) = v.parse::<i64>() {
        // Loki takes integers as nanoseconds, but a 10-digit integer is clearly seconds.
        return Ok(if n.abs() < 100_000_000_000 {
            n.saturating_mul(NANOS_PER_SECOND)
        } else {
            n
        });
    }
    if let Ok(f) = v.parse::<f64>()
        && f.is_finite()
    {
        return Ok((f * 1e9).round() as i64);
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| {
            ApiError::bad_data(format!(
                "invalid parameter {name:?}: cannot parse {v:?} as a timestamp"
            ))
        })
}

/// Parses a duration parameter (`15s`, `1m`, or a number of seconds) into nanoseconds.
pub fn parse_step_ns(name: &str, v: &str) -> Result<i64, ApiError> {
    let v = v.trim();
    let ns = match v.parse::<f64>() {
        Ok(f) if f.is_finite() => (f * 1e9).round() as i64,
        _ => parse_duration_ns(v)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter {name:?}: {e}")))?,
    };
    if ns <= 0 {
        return Err(ApiError::bad_data(format!(
            "invalid parameter {name:?}: zero or negative query resolution step widths are not accepted"
        )));
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times_and_steps() {
        assert_eq!(
            parse_time_ns("t", "1700000000").ok(),
            Some(1_700_000_000 * NANOS_PER_SECOND)
        );
        assert_eq!(
            parse_time_ns("t", "1700000000.5").ok(),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(
            parse_time_ns("t", "1700000000000000000").ok(),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(
            parse_time_ns("t", "2023-11-14T22:13:20Z").ok(),
            Some(1_700_000_000 * NANOS_PER_SECOND)
        );
        assert!(parse_time_ns("t", "yesterday").is_err());
        assert_eq!(
            parse_step_ns("step", "15s").ok(),
            Some(15 * NANOS_PER_SECOND)
        );
        assert_eq!(
            parse_step_ns("step", "0.5").ok(),
            Some(NANOS_PER_SECOND / 2)
        );
        assert!(parse_step_ns("step", "0").is_err());
    }
}
