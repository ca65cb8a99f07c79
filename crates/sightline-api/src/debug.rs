//! `GET /api/v1/debug/{id}`: the three signals joined around one request.
//!
//! The id is a trace id or a request id. A trace id is looked up directly; a request id is
//! looked for in the logs' structured metadata (`request_id`) and in span attributes
//! (`request_id`, `http.request_id`), and the trace ids the matches carry lead to the trace.
//! The answer holds:
//! - `trace`: the trace in Jaeger's JSON (as `/api/traces/{id}`), or null when its spans
//!   are not held (a trace id still finds the log lines that carry it);
//! - `errors`: its failed spans, earliest first, with the exception each recorded;
//! - `logs`: every log line, of any service, whose `trace_id` is the trace's or whose
//!   `request_id` is the id asked, oldest first, within the trace's time (widened by
//!   [`LOG_SLACK_NS`] each side) or, with no trace, the request's `start`/`end`
//!   (default the last [`DEFAULT_LOOKBACK_NS`]);
//! - `metrics`: for each (service, operation) the trace touched, its span metrics over
//!   [`METRICS_WINDOW_MS`] either side of the trace: requests per second, error ratio and
//!   p99 latency, each a list of `[seconds, "value"]` points as Prometheus writes them.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use sightline_ingest::span_metrics::{CALLS, LATENCY};
use sightline_model::log::LogSelection;
use sightline_model::span::{hex_lower, parse_trace_id_hex};
use sightline_model::{AttrValue, Span, TenantId, TraceId, TraceQuery, now_ns};
use sightline_query::promql::{self, PromLimits, PromQuery};

use crate::params::{Params, handle, parse_time_ns};
use sightline_query::logql::LogSource;

use crate::source::{StoreLogs, StoreSeries};
use crate::{ApiError, ApiResult, SharedState};

/// Log lines this far before a trace's first span and after its last still belong to it.
pub const LOG_SLACK_NS: i64 = 5 * 60 * 1_000_000_000;
/// Without a trace, request ids are looked for this far back.
pub const DEFAULT_LOOKBACK_NS: i64 = 7 * 86_400 * 1_000_000_000;
/// Span metrics are shown this far either side of the trace.
pub const METRICS_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Most log lines returned.
pub const LOG_LINES_MAX: usize = 1_000;

/// `GET /api/v1/debug/{id}?start=&end=`.
pub async fn debug(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    handle(
        state,
        "debug",
        &headers,
        raw,
        Body::empty(),
        |st, tenant, p| async move { lookup(&st, tenant, &id, &p).await },
    )
    .await
}

async fn lookup(st: &SharedState, tenant: TenantId, id: &str, p: &Params) -> ApiResult<Value> {
    let id = id.trim();
    if id.is_empty() || id.len() > 256 {
        return Err(ApiError::bad_data(
            "the id must be a trace id (hex) or a request id of at most 256 characters",
        ));
    }
    let store = st.store()?.clone();
    let now = now_ns();
    let end = p
        .get("end")
        .map(|v| parse_time_ns("end", v))
        .transpose()?
        .unwrap_or(now);
    let start = p
        .get("start")
        .map(|v| parse_time_ns("start", v))
        .transpose()?
        .unwrap_or(end - DEFAULT_LOOKBACK_NS);

    let mut trace_id: Option<TraceId> = None;
    let mut spans = Vec::new();
    let mut logs = Vec::new();
    if let Some(tid) = parse_trace_id_hex(id).filter(|_| id.len() >= 16) {
        spans = store.traces().trace(&tenant, &tid).await?;
        if spans.is_empty() {
            // A trace whose spans we do not hold (sampled out, not arrived yet): its logs.
            logs = log_lines(st, &tenant, "trace_id", &hex_lower(&tid), start, end).await?;
        }
        if !spans.is_empty() || !logs.is_empty() {
            trace_id = Some(tid);
        }
    }
    // Not a trace we know: a request id, in the logs or in span attributes.
    let request_id = trace_id.is_none().then(|| id.to_owned());
    if let Some(rid) = &request_id {
        logs = log_lines(st, &tenant, "request_id", rid, start, end).await?;
        let from_logs = logs.iter().find_map(|l| {
            l["metadata"]["trace_id"]
                .as_str()
                .and_then(parse_trace_id_hex)
        });
        let found = match from_logs {
            Some(t) => Some(t),
            None => span_with_request_id(st, &tenant, rid, start, end).await?,
        };
        if let Some(t) = found {
            spans = store.traces().trace(&tenant, &t).await?;
            trace_id = Some(t);
        }
    }
    let mut metrics = Vec::new();
    if let Some(tid) = trace_id.filter(|_| !spans.is_empty()) {
        let first = spans.iter().map(|s| s.start_ns).min().unwrap_or(now);
        let last = spans.iter().map(|s| s.end_ns).max().unwrap_or(now);
        let by_trace = log_lines(
            st,
            &tenant,
            "trace_id",
            &hex_lower(&tid),
            first - LOG_SLACK_NS,
            last + LOG_SLACK_NS,
        )
        .await?;
        merge_lines(&mut logs, by_trace);
        metrics = endpoint_metrics(st, &tenant, &spans, first, last).await?;
    }
    Ok(json!({
        "status": "success",
        "data": {
            "id": id,
            "trace_id": trace_id.map(|t| hex_lower(&t)),
            "request_id": request_id,
            "trace": (!spans.is_empty()).then(|| crate::jaeger::trace_json(&spans)),
            "errors": error_spans(&spans),
            "logs": logs,
            "metrics": metrics,
        }
    }))
}

/// Log lines whose structured metadata (or label) `field` is `value`, oldest first.
async fn log_lines(
    st: &SharedState,
    tenant: &TenantId,
    field: &str,
    value: &str,
    start_ns: i64,
    end_ns: i64,
) -> ApiResult<Vec<Value>> {
    let sel = LogSelection {
        tenant: tenant.clone(),
        matchers: vec![],
        start_ns,
        end_ns,
        line_contains: vec![],
        metadata_eq: vec![(field.to_owned(), value.to_owned())],
        need_line: true,
        need_metadata: true,
        metadata_fields: None,
    };
    let source = StoreLogs::new(st.store()?.clone());
    let (field, value) = (field.to_owned(), value.to_owned());
    let mut out = tokio::task::spawn_blocking(move || {
        let mut out: Vec<(i64, Value)> = Vec::new();
        source
            .scan_logs(&sel, &mut |labels, e| {
                let hit = e.metadata.iter().any(|(k, v)| *k == field && *v == value)
                    || labels.get(&field) == Some(value.as_str());
                if hit {
                    let metadata: serde_json::Map<String, Value> = e
                        .metadata
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    out.push((
                        e.timestamp_ns,
                        json!({
                            "timestamp": e.timestamp_ns.to_string(),
                            "labels": crate::loki::labels_json(labels),
                            "line": e.line,
                            "metadata": metadata,
                        }),
                    ));
                }
                if out.len() >= LOG_LINES_MAX {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .map(|()| out)
    })
    .await
    .map_err(|e| ApiError::internal(format!("log scan task: {e}")))?
    .map_err(|e| ApiError::internal(format!("log scan: {e}")))?;
    out.sort_by_key(|(ts, _)| *ts);
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

/// Adds `more` to `lines`, once each, keeping them in time order.
fn merge_lines(lines: &mut Vec<Value>, more: Vec<Value>) {
    for l in more {
        if !lines.contains(&l) {
            lines.push(l);
        }
    }
    lines.sort_by_key(|l| {
        l["timestamp"]
            .as_str()
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(0)
    });
}

/// The trace of a span carrying the request id as an attribute, if any.
async fn span_with_request_id(
    st: &SharedState,
    tenant: &TenantId,
    request_id: &str,
    start_ns: i64,
    end_ns: i64,
) -> ApiResult<Option<TraceId>> {
    for key in ["request_id", "http.request_id"] {
        let mut q = TraceQuery::new(tenant.clone(), start_ns, end_ns, 1);
        q.tags = vec![(key.to_owned(), request_id.to_owned())];
        if let Some(t) = st.store()?.traces().search(&q).await?.into_iter().next() {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// The failed spans, earliest first, with what their exception events say.
fn error_spans(spans: &[Span]) -> Vec<Value> {
    spans
        .iter()
        .filter(|s| s.is_error())
        .map(|s| {
            let exception = s.events.iter().find(|e| e.name == "exception").map(|e| {
                let get = |k: &str| {
                    sightline_model::span::find_attribute(&e.attributes, k)
                        .map(AttrValue::to_string)
                };
                json!({
                    "type": get("exception.type"),
                    "message": get("exception.message"),
                    "stacktrace": get("exception.stacktrace"),
                })
            });
            json!({
                "span_id": s.span_id_hex(),
                "service": s.service,
                "operation": s.name,
                "start_ns": s.start_ns.to_string(),
                "duration_ns": s.duration_ns().to_string(),
                "status_message": s.status.message,
                "exception": exception,
            })
        })
        .collect()
}

/// The span metrics of each (service, operation) of the trace around it.
async fn endpoint_metrics(
    st: &SharedState,
    tenant: &TenantId,
    spans: &[Span],
    first_ns: i64,
    last_ns: i64,
) -> ApiResult<Vec<Value>> {
    let endpoints: BTreeSet<(&str, &str)> = spans
        .iter()
        .map(|s| (s.service.as_str(), s.name.as_str()))
        .collect();
    let start_ms = first_ns / 1_000_000 - METRICS_WINDOW_MS;
    let end_ms = last_ns / 1_000_000 + METRICS_WINDOW_MS;
    let mut out = Vec::new();
    for (service, operation) in endpoints {
        let sel = format!(
            "service=\"{}\",operation=\"{}\"",
            escape(service),
            escape(operation)
        );
        let rate = format!("sum(rate({CALLS}{{{sel}}}[5m]))");
        let errors =
            format!("sum(rate({CALLS}{{{sel},status_code=\"STATUS_CODE_ERROR\"}}[5m])) / {rate}");
        let p99 =
            format!("histogram_quantile(0.99, sum by (le) (rate({LATENCY}_bucket{{{sel}}}[5m])))");
        let mut entry = json!({"service": service, "operation": operation});
        for (key, expr) in [
            ("requests_per_second", rate),
            ("error_ratio", errors),
            ("p99_seconds", p99),
        ] {
            entry[key] = range_points(st, tenant, expr, start_ms, end_ms).await?;
        }
        out.push(entry);
    }
    Ok(out)
}

/// A PromQL label value with `\` and `"` escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The points of a one-series range query at a 1-minute step; empty without data.
async fn range_points(
    st: &SharedState,
    tenant: &TenantId,
    expr: String,
    start_ms: i64,
    end_ms: i64,
) -> ApiResult<Value> {
    let source = StoreSeries::new(st.store()?.clone());
    let q = PromQuery {
        expr,
        start_ms,
        end_ms,
        step_ms: 60_000,
    };
    let tenant = tenant.clone();
    let value = tokio::task::spawn_blocking(move || {
        promql::evaluate(&source, &tenant, &q, &PromLimits::default())
    })
    .await
    .map_err(|e| ApiError::internal(format!("query task: {e}")))?
    .map_err(|e| ApiError::internal(format!("span metrics query: {e}")))?;
    let json = promql::to_prometheus_json(&value);
    Ok(json["result"]
        .get(0)
        .map(|series| series["values"].clone())
        .unwrap_or_else(|| json!([])))
}
