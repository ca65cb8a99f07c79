//! Jaeger's query HTTP API, the one the Jaeger UI and Grafana's Jaeger data source call:
//! `/api/services`, `/api/services/{service}/operations`, `/api/operations`, `/api/traces`,
//! `/api/traces/{traceID}` and `/api/dependencies`.
//!
//! Why: so the tools people already use to look at traces read Sightline's spans without a
//! Jaeger deployment. What: handlers that read the parameters the way jaeger-query does
//! (times in microseconds, Go durations, `tags` as JSON or logfmt), ask the trace store, and
//! answer in jaeger-query's envelope `{"data", "total", "limit", "offset", "errors"}` with
//! spans converted to Jaeger's JSON model as Jaeger's own OTLP translator does: resources
//! become processes, the parent a `CHILD_OF` reference, links `FOLLOWS_FROM` references,
//! events logs, and kind and status the synthetic `span.kind`, `otel.status_code` and
//! `error` tags. Errors use the same envelope: `data` null and
//! `errors: [{"code", "msg"}]`, with the HTTP status of the code.
//!
//! The conversions are pure functions ([`trace_json`], [`parse_tags`], [`search_request`]) so
//! they are tested without a store.

use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};

use sightline_model::duration::parse_duration_ns;
use sightline_model::span::{hex_lower, parse_trace_id_hex};
use sightline_model::{
    AttrValue, NANOS_PER_MILLI, Span, SpanKind, StatusCode, TenantId, TraceId, TraceQuery, now_ns,
};

use crate::params::Params;
use crate::{ApiError, ApiResult, ErrorKind, SharedState, tenant_of};

/// Traces a search returns when the request gives no `limit` (the Jaeger UI's default).
pub const SEARCH_LIMIT_DEFAULT: usize = 20;
/// Most traces one search returns, whatever `limit` asks (the Jaeger UI's largest choice).
pub const SEARCH_LIMIT_MAX: usize = 1_500;
/// How many traces a search fetches from the store at once.
const FETCH_CONCURRENCY: usize = 8;
/// The search window when neither `start` nor `lookback` is given.
const LOOKBACK_DEFAULT_NS: i64 = 3_600 * 1_000_000_000;
/// `/api/dependencies`' window when no `lookback` is given: 24 hours, in milliseconds.
const DEPENDENCIES_LOOKBACK_DEFAULT_MS: i64 = 86_400_000;
const NANOS_PER_MICRO: i64 = 1_000;

/// Every route of this API, to `.merge()` into the server's router.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/services", get(services))
        .route(
            "/api/services/{service}/operations",
            get(service_operations),
        )
        .route("/api/operations", get(operations))
        .route("/api/traces", get(traces))
        .route("/api/traces/{trace_id}", get(trace))
        .route("/api/dependencies", get(dependencies))
}

/// `GET /api/services`: every service's name, sorted.
pub async fn services(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    respond(state, "jaeger_services", &headers, None, services_data).await
}

async fn services_data(st: SharedState, tenant: TenantId, _: Params) -> ApiResult<Value> {
    Ok(envelope(
        json!(st.store()?.traces().services(&tenant)),
        None,
    ))
}

/// `GET /api/services/{service}/operations`: the names of the service's operations, as the
/// Jaeger UI's older endpoint returns them.
pub async fn service_operations(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(service): Path<String>,
) -> Response {
    let f = |st, tenant, _| operation_names(st, tenant, service);
    respond(state, "jaeger_operations", &headers, None, f).await
}

async fn operation_names(st: SharedState, tenant: TenantId, service: String) -> ApiResult<Value> {
    let ops = st.store()?.traces().operations(&tenant);
    let mut names: Vec<String> = ops
        .into_iter()
        .filter(|o| o.service == service)
        .map(|o| o.name)
        .collect();
    names.sort();
    names.dedup();
    Ok(envelope(json!(names), None))
}

/// `GET /api/operations?service=&spanKind=`: `[{"name", "spanKind"}]`, `spanKind` empty for
/// operations of unspecified kind.
pub async fn operations(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    respond(state, "jaeger_operations", &headers, raw, operations_data).await
}

async fn operations_data(st: SharedState, tenant: TenantId, p: Params) -> ApiResult<Value> {
    let service = p
        .get("service")
        .ok_or_else(|| ApiError::bad_data("parameter 'service' is required"))?;
    let kind = p.get("spanKind").map(parse_span_kind).transpose()?;
    let data: Vec<Value> = st
        .store()?
        .traces()
        .operations(&tenant)
        .into_iter()
        .filter(|o| o.service == service && kind.is_none_or(|k| k == o.kind))
        .map(|o| json!({"name": o.name, "spanKind": kind_name(o.kind)}))
        .collect();
    Ok(envelope(Value::Array(data), None))
}

/// `GET /api/traces?service=&operation=&tags=&minDuration=&maxDuration=&start=&end=&limit=
/// &lookback=`, or `?traceID=…&traceID=…` to fetch traces by id (see [`search_request`]).
pub async fn traces(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    respond(state, "jaeger_traces", &headers, raw, traces_data).await
}

async fn traces_data(st: SharedState, tenant: TenantId, p: Params) -> ApiResult<Value> {
    let store = st.store()?.traces();
    let (ids, by_id) = match search_request(tenant.clone(), &p, now_ns())? {
        SearchRequest::Ids(ids) => (ids, true),
        SearchRequest::Query(q) => (store.search(&q).await?, false),
    };
    let tenant = &tenant;
    let fetched: Vec<(TraceId, Vec<Span>)> = futures::stream::iter(ids)
        .map(|id| async move { store.trace(tenant, &id).await.map(|spans| (id, spans)) })
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
    let mut data = Vec::with_capacity(fetched.len());
    let mut errors = Vec::new();
    for (id, spans) in fetched {
        if !spans.is_empty() {
            data.push(trace_json(&spans));
        } else if by_id {
            let id = hex_lower(&id);
            errors.push(json!({"code": 404, "msg": "trace not found", "traceID": id}));
        }
        // A searched trace gone since (retention) is left out silently.
    }
    let errors = Some(errors).filter(|e| !e.is_empty());
    Ok(envelope(Value::Array(data), errors))
}

/// `GET /api/traces/{traceID}`: `{"data": [trace]}`, 404 when there is no such trace, 400
/// when the id is not 1 to 32 hex digits.
pub async fn trace(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(trace_id): Path<String>,
) -> Response {
    let f = |st, tenant, _| trace_data(st, tenant, trace_id);
    respond(state, "jaeger_trace", &headers, None, f).await
}

async fn trace_data(st: SharedState, tenant: TenantId, trace_id: String) -> ApiResult<Value> {
    let id = parse_trace_id(&trace_id)?;
    let spans = st.store()?.traces().trace(&tenant, &id).await?;
    if spans.is_empty() {
        return Err(ApiError::new(ErrorKind::NotFound, "trace not found"));
    }
    Ok(envelope(json!([trace_json(&spans)]), None))
}

/// `GET /api/dependencies?endTs=&lookback=` (both in milliseconds; defaults now and 24h):
/// `[{"parent", "child", "callCount"}]`.
pub async fn dependencies(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    respond(
        state,
        "jaeger_dependencies",
        &headers,
        raw,
        dependencies_data,
    )
    .await
}

async fn dependencies_data(st: SharedState, tenant: TenantId, p: Params) -> ApiResult<Value> {
    let end_ms = int_param(&p, "endTs")?.unwrap_or(now_ns() / NANOS_PER_MILLI);
    let lookback_ms = int_param(&p, "lookback")?.unwrap_or(DEPENDENCIES_LOOKBACK_DEFAULT_MS);
    if lookback_ms < 0 {
        return Err(ApiError::bad_data(
            "parameter 'lookback' must not be negative",
        ));
    }
    let end_ns = end_ms.saturating_add(1).saturating_mul(NANOS_PER_MILLI);
    let start_ns = end_ms
        .saturating_sub(lookback_ms)
        .saturating_mul(NANOS_PER_MILLI);
    let links = st.store()?.traces().dependencies(&tenant, start_ns, end_ns);
    let data: Vec<Value> = links
        .into_iter()
        .map(|d| json!({"parent": d.parent, "child": d.child, "callCount": d.call_count}))
        .collect();
    Ok(envelope(Value::Array(data), None))
}

/// The frame of every handler here: reads the tenant and the query string, runs `f`, times
/// it under `endpoint`, and answers with its JSON or its error in Jaeger's envelope.
async fn respond<F, Fut>(
    state: SharedState,
    endpoint: &'static str,
    headers: &HeaderMap,
    raw: Option<String>,
    f: F,
) -> Response
where
    F: FnOnce(SharedState, TenantId, Params) -> Fut,
    Fut: std::future::Future<Output = ApiResult<Value>>,
{
    let started = Instant::now();
    let result = async {
        let tenant = tenant_of(headers)?;
        let pairs: Vec<(String, String)> = match raw {
            Some(q) => serde_urlencoded::from_str(&q)
                .map_err(|e| ApiError::bad_data(format!("query string: {e}")))?,
            None => Vec::new(),
        };
        f(state.clone(), tenant, Params::from_pairs(pairs)).await
    }
    .await;
    state
        .metrics
        .query_seconds
        .get_or_create(&crate::metrics::QueryLabels { endpoint })
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => {
            state.metrics.rejected(endpoint, e.kind.reason());
            error_response(&e)
        }
    }
}

/// jaeger-query's envelope around `data`; `total` is the number of items when `data` is a
/// list.
pub fn envelope(data: Value, errors: Option<Vec<Value>>) -> Value {
    let total = data.as_array().map_or(0, Vec::len);
    json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors})
}

/// The body of an error in Jaeger's envelope: `data` null, the HTTP status as `code`.
pub fn error_json(e: &ApiError) -> Value {
    let code = e.kind.status().as_u16();
    json!({"data": null, "total": 0, "limit": 0, "offset": 0,
           "errors": [{"code": code, "msg": e.message}]})
}

fn error_response(e: &ApiError) -> Response {
    if e.kind == ErrorKind::Internal {
        tracing::error!(error = %e.message, "jaeger request failed");
    }
    let mut resp = (e.kind.status(), Json(error_json(e))).into_response();
    if matches!(e.kind, ErrorKind::TooManyRequests | ErrorKind::Unavailable) {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    resp
}

/// What `/api/traces` asks for: traces by id, or a search.
#[derive(Debug, PartialEq)]
pub enum SearchRequest {
    Ids(Vec<TraceId>),
    Query(TraceQuery),
}

/// Reads `/api/traces`' parameters as jaeger-query does. With `traceID` (repeatable) only
/// those traces are fetched; otherwise `service` is required, `start`/`end` are microseconds
/// since the epoch (default `end` = now, `start` = `end` - `lookback`, `lookback` defaulting
/// to 1h), `minDuration`/`maxDuration` Go durations, `limit` defaults to
/// [`SEARCH_LIMIT_DEFAULT`], and tags come from `tags` (JSON or logfmt, see [`parse_tags`])
/// and repeated `tag=key:value`.
pub fn search_request(tenant: TenantId, p: &Params, now_ns: i64) -> ApiResult<SearchRequest> {
    let mut ids = p.all("traceID");
    ids.retain(|s| !s.is_empty());
    if !ids.is_empty() {
        let ids = ids.into_iter().map(parse_trace_id);
        return Ok(SearchRequest::Ids(ids.collect::<ApiResult<_>>()?));
    }
    let service = p
        .get("service")
        .ok_or_else(|| ApiError::bad_data("parameter 'service' is required"))?;
    let end_ns = match int_param(p, "end")? {
        // Jaeger's end is inclusive at microsecond precision; the query's is exclusive.
        Some(us) => us.saturating_add(1).saturating_mul(NANOS_PER_MICRO),
        None => now_ns,
    };
    let start_ns = match int_param(p, "start")? {
        Some(us) => us.saturating_mul(NANOS_PER_MICRO),
        None => {
            let lookback = match p.get("lookback") {
                // The UI sends `lookback=custom` along with `start` and `end`.
                None | Some("custom") => LOOKBACK_DEFAULT_NS,
                Some(v) => duration_param("lookback", v)?,
            };
            end_ns.saturating_sub(lookback)
        }
    };
    if start_ns > end_ns {
        return Err(ApiError::bad_data("'start' must not be after 'end'"));
    }
    let limit = match int_param(p, "limit")? {
        None | Some(0) => SEARCH_LIMIT_DEFAULT,
        Some(n) if n < 0 => {
            return Err(ApiError::bad_data("parameter 'limit' must not be negative"));
        }
        Some(n) => usize::try_from(n).map_or(SEARCH_LIMIT_MAX, |n| n.min(SEARCH_LIMIT_MAX)),
    };
    let mut q = TraceQuery::new(tenant, start_ns, end_ns, limit);
    q.service = Some(service.to_string());
    q.operation = p.get("operation").map(str::to_string);
    let duration = |name| p.get(name).map(|v| duration_param(name, v)).transpose();
    q.min_duration_ns = duration("minDuration")?;
    q.max_duration_ns = duration("maxDuration")?;
    if let (Some(min), Some(max)) = (q.min_duration_ns, q.max_duration_ns)
        && max < min
    {
        return Err(ApiError::bad_data(
            "'maxDuration' must be above 'minDuration'",
        ));
    }
    if let Some(text) = p.get("tags") {
        q.tags = parse_tags(text)?;
    }
    for t in p.all("tag").into_iter().filter(|t| !t.is_empty()) {
        let malformed = || ApiError::bad_data(format!("malformed 'tag' {t:?}: not key:value"));
        let (k, v) = t.split_once(':').ok_or_else(malformed)?;
        q.tags.push((k.to_string(), v.to_string()));
    }
    Ok(SearchRequest::Query(q))
}

/// Parses a trace id of 1 to 32 hex digits (shorter ids are 64-bit ids, left-padded).
pub fn parse_trace_id(text: &str) -> ApiResult<TraceId> {
    parse_trace_id_hex(text.trim()).ok_or_else(|| {
        ApiError::bad_data(format!(
            "malformed trace id {text:?}: expected 1 to 32 hex digits, not all zero"
        ))
    })
}

/// Parses the `tags` parameter: a JSON object (`{"http.status_code":"500","error":"true"}`,
/// as the Jaeger UI and Grafana send it; numbers and booleans are taken as their text) or
/// logfmt (`http.status_code=500 error=true`, values may be double-quoted, a bare key means
/// `key=true`).
pub fn parse_tags(text: &str) -> ApiResult<Vec<(String, String)>> {
    let text = text.trim();
    if text.starts_with('{') {
        let obj: Map<String, Value> = serde_json::from_str(text)
            .map_err(|e| ApiError::bad_data(format!("malformed 'tags' parameter: {e}")))?;
        return obj
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                Value::Number(_) | Value::Bool(_) => Ok((k, v.to_string())),
                _ => Err(ApiError::bad_data(format!(
                    "malformed 'tags' parameter: the value of {k:?} is not a string"
                ))),
            })
            .collect();
    }
    parse_logfmt(text)
        .ok_or_else(|| ApiError::bad_data(format!("malformed 'tags' parameter {text:?}")))
}

fn parse_logfmt(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            return None;
        }
        if chars.next_if_eq(&'=').is_none() {
            out.push((key, "true".to_string()));
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return None;
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        out.push((key, value));
    }
}

/// An integer parameter, `None` when absent or empty.
fn int_param(p: &Params, name: &str) -> ApiResult<Option<i64>> {
    p.get(name)
        .map(|v| {
            v.trim().parse::<i64>().map_err(|e| {
                ApiError::bad_data(format!("unable to parse param '{name}': {v:?}: {e}"))
            })
        })
        .transpose()
}

fn duration_param(name: &str, v: &str) -> ApiResult<i64> {
    let bad = |why: String| ApiError::bad_data(format!("unable to parse param '{name}': {why}"));
    match parse_duration_ns(v) {
        Ok(ns) if ns >= 0 => Ok(ns),
        Ok(_) => Err(bad(format!("{v:?} is negative"))),
        Err(e) => Err(bad(e.to_string())),
    }
}

fn parse_span_kind(text: &str) -> ApiResult<SpanKind> {
    Ok(match text {
        "unspecified" => SpanKind::Unspecified,
        "internal" => SpanKind::Internal,
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        _ => {
            return Err(ApiError::bad_data(format!(
                "unsupported spanKind {text:?}: expected server, client, producer, consumer, \
                 internal or unspecified"
            )));
        }
    })
}

/// Jaeger's name of a kind: the lowercase name, empty for unspecified.
fn kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "",
        k => k.as_str(),
    }
}

/// One trace in Jaeger's JSON model: `{"traceID", "spans", "processes", "warnings"}`, one
/// process (`p1`, `p2`, … in order of first use) per distinct service and resource. `spans`
/// must not be empty and all be of one trace.
pub fn trace_json(spans: &[Span]) -> Value {
    let mut processes: Vec<(&str, &[(String, AttrValue)])> = Vec::new();
    let mut out = Vec::with_capacity(spans.len());
    for span in spans {
        let key = (span.service.as_str(), span.resource.as_slice());
        let index = match processes.iter().position(|p| *p == key) {
            Some(i) => i,
            None => {
                processes.push(key);
                processes.len() - 1
            }
        };
        out.push(span_json(span, &format!("p{}", index + 1)));
    }
    let processes: Map<String, Value> = processes
        .into_iter()
        .enumerate()
        .map(|(i, (service, resource))| {
            let tags: Vec<Value> = resource
                .iter()
                .filter(|(k, _)| k != "service.name")
                .map(|(k, v)| key_value(k, v))
                .collect();
            (
                format!("p{}", i + 1),
                json!({"serviceName": service, "tags": tags}),
            )
        })
        .collect();
    let trace_id = spans.first().map(Span::trace_id_hex).unwrap_or_default();
    json!({"traceID": trace_id, "spans": out, "processes": processes, "warnings": null})
}

/// One span in Jaeger's JSON model, its process being `process_id`.
pub fn span_json(span: &Span, process_id: &str) -> Value {
    let trace_id = span.trace_id_hex();
    let mut references = Vec::with_capacity(span.links.len() + 1);
    if let Some(parent) = span.parent_span_id_hex() {
        references.push(json!({"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent}));
    }
    for link in &span.links {
        references.push(json!({
            "refType": "FOLLOWS_FROM",
            "traceID": hex_lower(&link.trace_id),
            "spanID": hex_lower(&link.span_id),
        }));
    }
    let mut tags: Vec<Value> = span
        .attributes
        .iter()
        .map(|(k, v)| key_value(k, v))
        .collect();
    let mut text_tag = |key: &str, value: &str| {
        tags.push(json!({"key": key, "type": "string", "value": value}));
    };
    if span.kind != SpanKind::Unspecified {
        text_tag("span.kind", span.kind.as_str());
    }
    match span.status.code {
        StatusCode::Unset => {}
        StatusCode::Ok => text_tag("otel.status_code", "OK"),
        StatusCode::Error => text_tag("otel.status_code", "ERROR"),
    }
    if !span.status.message.is_empty() {
        text_tag("otel.status_description", &span.status.message);
    }
    if !span.scope_name.is_empty() {
        text_tag("otel.scope.name", &span.scope_name);
    }
    if !span.scope_version.is_empty() {
        text_tag("otel.scope.version", &span.scope_version);
    }
    if span.is_error() {
        tags.push(json!({"key": "error", "type": "bool", "value": true}));
    }
    let logs: Vec<Value> = span
        .events
        .iter()
        .map(|e| {
            let mut fields = Vec::with_capacity(e.attributes.len() + 1);
            if !e.name.is_empty() {
                fields.push(json!({"key": "event", "type": "string", "value": e.name}));
            }
            fields.extend(e.attributes.iter().map(|(k, v)| key_value(k, v)));
            json!({"timestamp": micros(e.time_ns), "fields": fields})
        })
        .collect();
    json!({
        "traceID": trace_id,
        "spanID": span.span_id_hex(),
        "flags": 1,
        "operationName": span.name,
        "references": references,
        "startTime": micros(span.start_ns),
        "duration": micros(span.duration_ns()),
        "tags": tags,
        "logs": logs,
        "processID": process_id,
        "warnings": null,
    })
}

/// A Jaeger `KeyValue`: `{"key", "type", "value"}`. Bytes are `binary` as base64 (as Go
/// marshals `[]byte`); arrays, kvlists and non-finite doubles are strings of their text.
pub fn key_value(key: &str, value: &AttrValue) -> Value {
    let (kind, v) = match value {
        AttrValue::Bool(b) => ("bool", json!(b)),
        AttrValue::Int(n) => ("int64", json!(n)),
        AttrValue::Double(f) if f.is_finite() => ("float64", json!(f)),
        AttrValue::Bytes(b) => ("binary", json!(base64(b))),
        other => ("string", json!(other.to_string())),
    };
    json!({"key": key, "type": kind, "value": v})
}

/// Nanoseconds as whole microseconds, rounded down.
fn micros(ns: i64) -> i64 {
    ns.div_euclid(NANOS_PER_MICRO)
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
