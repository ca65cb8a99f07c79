//! The Loki HTTP query API: `/loki/api/v1/query`, `/query_range`, `/labels`,
//! `/label/{name}/values`, `/series`, in the response shapes Grafana's Loki data source reads.
//!
//! Structured metadata follows Loki 3: when the client sends
//! `X-Loki-Response-Encoding-Flags: categorize-labels` (Grafana does), each entry carries
//! `{"structuredMetadata": {…}}` as a third element; otherwise metadata is merged into the
//! stream labels, splitting streams as Loki does.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

use sightline_model::{LabelMatcher, Labels, NANOS_PER_SECOND, TenantId, now_ns};
use sightline_query::logql::{
    self, Direction, Evaluator, QueryError, QueryLimits, QueryParams, QueryResult, QueryValue,
};

use crate::params::{Params, handle, parse_step_ns};
use crate::source::StoreLogs;
use crate::{ApiError, ApiResult, ErrorKind, SharedState};

/// Default look-back of a range query and of tail.
const DEFAULT_RANGE_NS: i64 = 3600 * NANOS_PER_SECOND;
/// Default look-back of the label and series endpoints (as Loki: 6 hours).
const DEFAULT_LABELS_RANGE_NS: i64 = 6 * 3600 * NANOS_PER_SECOND;

impl Params {
    pub fn limit(&self, max: usize) -> ApiResult<u32> {
        let limit = match self.get("limit") {
            None => logql::DEFAULT_LIMIT,
            Some(v) => v
                .parse::<u32>()
                .map_err(|_| ApiError::bad_data(format!("invalid parameter \"limit\": {v:?}")))?,
        };
        if limit as usize > max {
            return Err(ApiError::bad_data(format!(
                "max entries limit per query exceeded, limit > max_entries_limit ({limit} > {max})"
            )));
        }
        Ok(limit)
    }

    pub fn direction(&self) -> ApiResult<Direction> {
        match self
            .get("direction")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("backward") => Ok(Direction::Backward),
            Some("forward") => Ok(Direction::Forward),
            Some(d) => Err(ApiError::bad_data(format!(
                "invalid parameter \"direction\": {d:?} (backward or forward)"
            ))),
        }
    }
}

fn query_error(e: QueryError) -> ApiError {
    match e {
        QueryError::Source(s) => ApiError::internal(format!("scan logs: {s}")),
        other => ApiError::new(ErrorKind::BadData, other.to_string()),
    }
}

/// The evaluator's limits for this server.
pub fn query_limits(state: &SharedState) -> QueryLimits {
    QueryLimits {
        max_entries: u32::try_from(state.limits.query_entries_max).unwrap_or(u32::MAX),
        ..QueryLimits::default()
    }
}

/// Runs a query on a blocking thread against the store.
async fn run_query(
    state: &SharedState,
    query: String,
    params: QueryParams,
) -> ApiResult<QueryResult> {
    let source = StoreLogs::new(state.store()?.clone());
    let limits = query_limits(state);
    tokio::task::spawn_blocking(move || {
        Evaluator::new(&source)
            .with_limits(limits)
            .query(&query, &params)
    })
    .await
    .map_err(|e| ApiError::internal(format!("query task: {e}")))?
    .map_err(query_error)
}

fn categorize_labels(headers: &HeaderMap) -> bool {
    headers
        .get("x-loki-response-encoding-flags")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|f| f.trim() == "categorize-labels"))
}

/// `GET|POST /loki/api/v1/query`: an instant query.
pub async fn query(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    let categorize = categorize_labels(&headers);
    handle(
        state,
        "loki_query",
        &headers,
        raw,
        body,
        |st, tenant, p| async move {
            let q = p.required("query")?.to_string();
            let params = QueryParams::instant(tenant, p.time_or("time", now_ns())?)
                .with_limit(p.limit(st.limits.query_entries_max)?)
                .with_direction(p.direction()?);
            let started = Instant::now();
            let result = run_query(&st, q, params).await?;
            Ok(result_json(result, categorize, started))
        },
    )
    .await
}

/// `GET|POST /loki/api/v1/query_range`.
pub async fn query_range(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    let categorize = categorize_labels(&headers);
    handle(
        state,
        "loki_query_range",
        &headers,
        raw,
        body,
        |st, tenant, p| async move {
            let q = p.required("query")?.to_string();
            let end = p.time_or("end", now_ns())?;
            let start = p.time_or("start", end - DEFAULT_RANGE_NS)?;
            if end < start {
                return Err(ApiError::bad_data(
                    "invalid time range: end timestamp must not be before start time",
                ));
            }
            let step = match p.get("step") {
                Some(s) => parse_step_ns("step", s)?,
                // Loki's default: the range over 250 points, at least a second.
                None => (((end - start) / NANOS_PER_SECOND) / 250).max(1) * NANOS_PER_SECOND,
            };
            let params = QueryParams::range(tenant, start, end, step)
                .with_limit(p.limit(st.limits.query_entries_max)?)
                .with_direction(p.direction()?);
            let started = Instant::now();
            let result = run_query(&st, q, params).await?;
            Ok(result_json(result, categorize, started))
        },
    )
    .await
}

/// A label set as a JSON object, as the Loki and Prometheus APIs write one.
pub(crate) fn labels_json(labels: &Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect(),
    )
}

fn pairs_json(pairs: &[(String, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Prometheus' float text: shortest round-trip digits, `NaN`, `+Inf`, `-Inf`.
pub fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// Seconds as the JSON number Loki and Prometheus use (millisecond precision).
fn seconds_json(ts_ns: i64) -> Value {
    let ms = ts_ns.div_euclid(1_000_000);
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    }
}

/// The `data` object of a query response.
pub fn result_json(result: QueryResult, categorize: bool, started: Instant) -> Value {
    let (result_type, result_value) = match result.value {
        QueryValue::Streams(streams) => ("streams", streams_json(streams, categorize)),
        QueryValue::Vector(samples) => (
            "vector",
            Value::Array(
                samples
                    .iter()
                    .map(|s| json!({"metric": labels_json(&s.labels), "value": [seconds_json(s.timestamp_ns), float_text(s.value)]}))
                    .collect(),
            ),
        ),
        QueryValue::Matrix(series) => (
            "matrix",
            Value::Array(
                series
                    .iter()
                    .map(|s| {
                        let values: Vec<Value> =
                            s.points.iter().map(|p| json!([seconds_json(p.timestamp_ns), float_text(p.value)])).collect();
                        json!({"metric": labels_json(&s.labels), "values": values})
                    })
                    .collect(),
            ),
        ),
        QueryValue::Scalar(p) => ("scalar", json!([seconds_json(p.timestamp_ns), float_text(p.value)])),
    };
    let secs = started.elapsed().as_secs_f64();
    let per_sec = |n: u64| {
        if secs > 0.0 {
            (n as f64 / secs) as u64
        } else {
            n
        }
    };
    let stats = json!({
        "summary": {
            "execTime": secs,
            "totalLinesProcessed": result.stats.entries_scanned,
            "totalBytesProcessed": result.stats.bytes_scanned,
            "linesProcessedPerSecond": per_sec(result.stats.entries_scanned),
            "bytesProcessedPerSecond": per_sec(result.stats.bytes_scanned),
            "totalEntriesReturned": result.stats.entries_matched,
        }
    });
    let mut data = Map::new();
    data.insert("resultType".into(), json!(result_type));
    data.insert("result".into(), result_value);
    data.insert("stats".into(), stats);
    if categorize && result_type == "streams" {
        data.insert("encodingFlags".into(), json!(["categorize-labels"]));
    }
    json!({"status": "success", "data": Value::Object(data)})
}

fn streams_json(streams: Vec<logql::StreamResult>, categorize: bool) -> Value {
    // With categorize-labels, the stream is the stream's own labels, and what the pipeline
    // added ("parsed") and the structured metadata travel with each entry. Without it,
    // metadata joins the stream labels (labels win a clash), splitting streams as Loki does.
    // Either way entries regroup under their label sets in the order they came.
    let mut grouped: BTreeMap<Labels, Vec<Value>> = BTreeMap::new();
    let mut order: Vec<Labels> = Vec::new();
    for s in streams {
        for e in s.entries {
            let mut labels = s.labels.clone();
            let mut value = vec![json!(e.timestamp_ns.to_string()), json!(e.line)];
            if categorize {
                for (k, _) in &e.parsed {
                    labels.remove(k);
                }
                let mut extra = Map::new();
                if !e.metadata.is_empty() {
                    extra.insert("structuredMetadata".into(), pairs_json(&e.metadata));
                }
                if !e.parsed.is_empty() {
                    extra.insert("parsed".into(), pairs_json(&e.parsed));
                }
                if !extra.is_empty() {
                    value.push(Value::Object(extra));
                }
            } else {
                for (k, v) in &e.metadata {
                    if labels.get(k).is_none() {
                        labels.set(k, v);
                    }
                }
            }
            grouped
                .entry(labels.clone())
                .or_insert_with(|| {
                    order.push(labels);
                    Vec::new()
                })
                .push(Value::Array(value));
        }
    }
    Value::Array(
        order
            .into_iter()
            .filter_map(|l| {
                grouped
                    .remove(&l)
                    .map(|values| json!({"stream": labels_json(&l), "values": values}))
            })
            .collect(),
    )
}

/// Parses a stream selector such as `{service="api"}`.
pub fn parse_selector(text: &str) -> ApiResult<Vec<LabelMatcher>> {
    match logql::parse(text).map_err(|e| ApiError::bad_data(e.to_string()))? {
        logql::ast::Expr::Log(log) if log.stages.is_empty() => Ok(log.matchers),
        _ => Err(ApiError::bad_data(format!(
            "{text:?} is not a stream selector such as {{service=\"api\"}}"
        ))),
    }
}

/// The streams matching a list of selectors (all when empty) in the request's range.
async fn matching_streams(
    state: &SharedState,
    tenant: TenantId,
    p: &Params,
    selectors: Vec<&str>,
) -> ApiResult<Vec<Labels>> {
    let end = p.time_or("end", now_ns())?;
    let start = p.time_or("start", end - DEFAULT_LABELS_RANGE_NS)?;
    let selectors: Vec<Vec<LabelMatcher>> = if selectors.is_empty() {
        vec![Vec::new()]
    } else {
        selectors
            .into_iter()
            .map(parse_selector)
            .collect::<ApiResult<_>>()?
    };
    let store = state.store()?.clone();
    let mut out = BTreeSet::new();
    for m in selectors {
        out.extend(
            store
                .logs()
                .streams(&tenant, &m, start, end.saturating_add(1)),
        );
    }
    Ok(out.into_iter().collect())
}

/// `GET /loki/api/v1/labels`.
pub async fn labels(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    handle(
        state,
        "loki_labels",
        &headers,
        raw,
        body,
        |st, tenant, p| async move {
            let selectors = p.get("query").into_iter().collect();
            let streams = matching_streams(&st, tenant, &p, selectors).await?;
            let names: BTreeSet<&str> = streams
                .iter()
                .flat_map(|l| l.iter().map(|(k, _)| k))
                .collect();
            Ok(json!({"status": "success", "data": names}))
        },
    )
    .await
}

/// `GET /loki/api/v1/label/{name}/values`.
pub async fn label_values(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    handle(
        state,
        "loki_label_values",
        &headers,
        raw,
        body,
        |st, tenant, p| async move {
            let selectors = p.get("query").into_iter().collect();
            let streams = matching_streams(&st, tenant, &p, selectors).await?;
            let values: BTreeSet<&str> = streams.iter().filter_map(|l| l.get(&name)).collect();
            Ok(json!({"status": "success", "data": values}))
        },
    )
    .await
}

/// `GET|POST /loki/api/v1/series?match[]=…`.
pub async fn series(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    handle(
        state,
        "loki_series",
        &headers,
        raw,
        body,
        |st, tenant, p| async move {
            let mut selectors = p.all("match[]");
            selectors.extend(p.all("match"));
            let streams = matching_streams(&st, tenant, &p, selectors).await?;
            let data: Vec<Value> = streams.iter().map(labels_json).collect();
            Ok(json!({"status": "success", "data": data}))
        },
    )
    .await
}

/// `GET /loki/api/v1/index/stats?query=…`: streams, chunks (blocks), bytes and entries a
/// query's selector covers, as Grafana asks before running a query. The pipeline is ignored,
/// as in Loki: these are index figures.
pub async fn index_stats(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    handle(state, "loki_index_stats", &headers, raw, body, |st, tenant, p| async move {
        let (matchers, _) = logql::compile_log_query(p.required("query")?)
            .map_err(|e| ApiError::bad_data(e.to_string()))?;
        let end = p.time_or("end", now_ns())?;
        let start = p.time_or("start", end - DEFAULT_RANGE_NS)?;
        let s = st.store()?.logs().stats(&tenant, &matchers, start, end.saturating_add(1));
        Ok(json!({"streams": s.streams, "chunks": s.chunks, "bytes": s.bytes, "entries": s.entries}))
    })
    .await
}
