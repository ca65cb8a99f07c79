//! The Prometheus HTTP API: `/api/v1/query`, `/query_range`, `/series`, `/labels`,
//! `/label/{name}/values`, `/metadata`, `/query_exemplars`, `/status/buildinfo`, in the
//! shapes Grafana's Prometheus data source, `promtool` and other clients read.
//!
//! PromQL runs on a blocking thread (it is CPU work) against the store through
//! [`StoreSeries`]. Errors follow Prometheus: 400 `bad_data` for a malformed query or
//! parameter, 422 `execution` when evaluation fails, 503 `timeout`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

use sightline_model::{LabelMatcher, Labels, NANOS_PER_MILLI, TenantId, now_ns};
use sightline_query::promql::{self, PromError, PromLimits, PromQuery};

use crate::loki::labels_json;
use crate::params::{JsonText, Params, handle, parse_step_ns, parse_time_ns};
use crate::source::StoreSeries;
use crate::{ApiError, ApiResult, ErrorKind, SharedState};

/// The most points a range query may return per series, as Prometheus.
const POINTS_PER_SERIES_MAX: i64 = 11_000;
/// The longest a query may run; a `timeout` parameter can only shorten it.
pub const QUERY_TIMEOUT_MAX: Duration = Duration::from_secs(120);

fn prom_error(e: PromError) -> ApiError {
    match e {
        PromError::Parse(m) => ApiError::bad_data(m),
        e @ PromError::Timeout(_) => ApiError::new(ErrorKind::Timeout, e.to_string()),
        PromError::Source(s) => ApiError::internal(format!("read series: {s}")),
        e => ApiError::new(ErrorKind::Execution, e.to_string()),
    }
}

/// A time parameter in Prometheus' forms (RFC 3339 or Unix seconds), as milliseconds.
fn time_ms(p: &Params, name: &str, default_ms: i64) -> ApiResult<i64> {
    match p.get(name) {
        None => Ok(default_ms),
        Some(v) => {
            // Prometheus reads a bare number as seconds, whatever its size.
            if let Ok(f) = v.trim().parse::<f64>() {
                if !f.is_finite() {
                    return Err(ApiError::bad_data(format!(
                        "invalid parameter {name:?}: cannot parse {v:?} to a valid timestamp"
                    )));
                }
                return Ok((f * 1000.0).round() as i64);
            }
            Ok(parse_time_ns(name, v)? / NANOS_PER_MILLI)
        }
    }
}

fn limits(p: &Params, state: &SharedState) -> ApiResult<PromLimits> {
    let mut timeout = QUERY_TIMEOUT_MAX;
    if let Some(t) = p.get("timeout") {
        let ns = parse_step_ns("timeout", t)?;
        timeout = timeout.min(Duration::from_nanos(ns as u64));
    }
    Ok(PromLimits {
        timeout,
        samples_max: state.limits.query_samples_max,
        ..PromLimits::default()
    })
}

async fn evaluate(
    state: &SharedState,
    tenant: TenantId,
    q: PromQuery,
    limits: PromLimits,
) -> ApiResult<JsonText> {
    let source = StoreSeries::new(state.store()?.clone());
    // The answer is written on the query's thread too: a large one takes a while.
    let run = move || {
        promql::evaluate(&source, &tenant, &q, &limits).map(|value| {
            let mut out = br#"{"status":"success","data":"#.to_vec();
            promql::write_prometheus_json(&value, &mut out);
            out.push(b'}');
            out
        })
    };
    let text = if tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread
    {
        // On this worker, which hands its other tasks to another first: no thread has to
        // be woken on the answer's path (a small query spent as long waiting for those
        // wake-ups as computing). A panic is an error answer, as from a task.
        tokio::task::block_in_place(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)))
            .map_err(|_| ApiError::internal("query task panicked"))?
    } else {
        tokio::task::spawn_blocking(run)
            .await
            .map_err(|e| ApiError::internal(format!("query task: {e}")))?
    }
    .map_err(prom_error)?;
    Ok(JsonText(text))
}

/// `GET|POST /api/v1/query?query=&time=&timeout=`.
pub async fn query(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    handle(
        state,
        "prom_query",
        &headers,
        raw,
        body,
        |st, tenant, p| async move {
            let expr = p.required("query")?.to_string();
            let t = time_ms(&p, "time", now_ns() / NANOS_PER_MILLI)?;
            let limits = limits(&p, &st)?;
            let q = PromQuery {
                expr,
                start_ms: t,
                end_ms: t,
                step_ms: 0,
            };
            evaluate(&st, tenant, q, limits).await
        },
    )
    .await
}

/// `GET|POST /api/v1/query_range?query=&start=&end=&step=&timeout=`.
pub async fn query_range(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    handle(state, "prom_query_range", &headers, raw, body, |st, tenant, p| async move {
        let expr = p.required("query")?.to_string();
        p.required("start")?;
        p.required("end")?;
        let start = time_ms(&p, "start", 0)?;
        let end = time_ms(&p, "end", 0)?;
        if end < start {
            return Err(ApiError::bad_data("end timestamp must not be before start time"));
        }
        let step_ms = parse_step_ns("step", p.required("step")?)? / NANOS_PER_MILLI;
        if step_ms <= 0 {
            return Err(ApiError::bad_data(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if (end - start) / step_ms > POINTS_PER_SERIES_MAX {
            return Err(ApiError::bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        let limits = limits(&p, &st)?;
        let q = PromQuery { expr, start_ms: start, end_ms: end, step_ms };
        evaluate(&st, tenant, q, limits).await
    })
    .await
}

/// The matchers of each `match[]` selector (Prometheus series selectors).
fn match_params(p: &Params) -> ApiResult<Vec<Vec<LabelMatcher>>> {
    p.all("match[]")
        .into_iter()
        .map(|s| promql::parse_selector(s).map_err(prom_error))
        .collect()
}

/// `[start, end]` of a metadata query; absent means all time, as Prometheus.
fn range(p: &Params) -> ApiResult<(i64, i64)> {
    Ok((time_ms(p, "start", i64::MIN)?, time_ms(p, "end", i64::MAX)?))
}

/// Label sets of the series matching any of `selectors` (every series when there are none).
fn series_of(
    st: &SharedState,
    tenant: &TenantId,
    selectors: &[Vec<LabelMatcher>],
    start: i64,
    end: i64,
) -> ApiResult<Vec<Labels>> {
    let tsdb = st.store()?.tsdb();
    if selectors.is_empty() {
        return Ok(tsdb.series(tenant, &[], start, end));
    }
    let mut all = std::collections::BTreeSet::new();
    for m in selectors {
        all.extend(tsdb.series(tenant, m, start, end));
    }
    Ok(all.into_iter().collect())
}

/// A `limit` parameter (0 or absent: none).
fn limit(p: &Params) -> ApiResult<usize> {
    match p.get("limit") {
        None => Ok(usize::MAX),
        Some(v) => match v.parse::<usize>() {
            Ok(0) => Ok(usize::MAX),
            Ok(n) => Ok(n),
            Err(_) => Err(ApiError::bad_data(format!(
                "invalid parameter \"limit\": {v:?}"
            ))),
        },
    }
}

/// `GET|POST /api/v1/series?match[]=&start=&end=`.
pub async fn series(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    handle(
        state,
        "prom_series",
        &headers,
        raw,
        body,
        |st, tenant, p| async move {
            let selectors = match_params(&p)?;
            if selectors.is_empty() {
                return Err(ApiError::bad_data("no match[] parameter provided"));
            }
            let (start, end) = range(&p)?;
            let limit = limit(&p)?;
            let data: Vec<Value> = series_of(&st, &tenant, &selectors, start, end)?
                .iter()
                .take(limit)
                .map(labels_json)
                .collect();
            Ok(json!({"status": "success", "data": data}))
        },
    )
    .await
}

/// `GET|POST /api/v1/labels?match[]=&start=&end=`.
pub async fn labels(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    handle(
        state,
        "prom_labels",
        &headers,
        raw,
        body,
        |st, tenant, p| async move {
            let selectors = match_params(&p)?;
            let (start, end) = range(&p)?;
            let mut names = std::collections::BTreeSet::new();
            for l in series_of(&st, &tenant, &selectors, start, end)? {
                names.extend(l.iter().map(|(k, _)| k.to_string()));
            }
            let data: Vec<String> = names.into_iter().take(limit(&p)?).collect();
            Ok(json!({"status": "success", "data": data}))
        },
    )
    .await
}

/// `GET /api/v1/label/{name}/values?match[]=&start=&end=`.
pub async fn label_values(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    handle(
        state,
        "prom_label_values",
        &headers,
        raw,
        body,
        |st, tenant, p| async move {
            if !sightline_model::labels::is_valid_label_name(&name) {
                return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
            }
            let selectors = match_params(&p)?;
            let (start, end) = range(&p)?;
            let mut values = std::collections::BTreeSet::new();
            for l in series_of(&st, &tenant, &selectors, start, end)? {
                if let Some(v) = l.get(&name) {
                    values.insert(v.to_string());
                }
            }
            let data: Vec<String> = values.into_iter().take(limit(&p)?).collect();
            Ok(json!({"status": "success", "data": data}))
        },
    )
    .await
}

/// `GET /api/v1/metadata?metric=&limit=&limit_per_metric=`.
pub async fn metadata(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    handle(
        state,
        "prom_metadata",
        &headers,
        raw,
        body,
        |st, tenant, p| async move {
            let all = st.store()?.tsdb().metadata(&tenant);
            let metric = p.get("metric");
            let mut data = Map::new();
            for (name, m) in all
                .iter()
                .filter(|(n, _)| metric.is_none_or(|x| x == n.as_str()))
                .take(limit(&p)?)
            {
                data.insert(
                    name.clone(),
                    json!([{"type": m.metric_type.as_str(), "help": m.help, "unit": m.unit}]),
                );
            }
            Ok(json!({"status": "success", "data": data}))
        },
    )
    .await
}

/// `GET|POST /api/v1/query_exemplars?query=&start=&end=`: the exemplars of the series every
/// selector of the query names.
pub async fn query_exemplars(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    handle(
        state,
        "prom_query_exemplars",
        &headers,
        raw,
        body,
        |st, tenant, p| async move {
            let selectors = promql::query_selectors(p.required("query")?).map_err(prom_error)?;
            let now = now_ns() / NANOS_PER_MILLI;
            let end = time_ms(&p, "end", now)?;
            let start = time_ms(&p, "start", end - 3_600_000)?;
            if end < start {
                return Err(ApiError::bad_data(
                    "end timestamp must not be before start time",
                ));
            }
            let tsdb = st.store()?.tsdb();
            let mut by_series: BTreeMap<Labels, Vec<sightline_model::Exemplar>> = BTreeMap::new();
            for m in &selectors {
                for (l, ex) in tsdb.exemplars(&tenant, m, start, end) {
                    by_series.insert(l, ex);
                }
            }
            let data: Vec<Value> = by_series
                .iter()
                .map(|(l, ex)| {
                    json!({
                        "seriesLabels": labels_json(l),
                        "exemplars": ex.iter().map(|e| json!({
                            "labels": labels_json(&e.labels),
                            "value": promql::format_value(e.value),
                            "timestamp": e.timestamp_ms as f64 / 1000.0,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            Ok(json!({"status": "success", "data": data}))
        },
    )
    .await
}

/// `GET /api/v1/status/buildinfo`.
pub async fn buildinfo(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    handle(
        state,
        "prom_buildinfo",
        &headers,
        raw,
        body,
        |_, _, _| async move {
            Ok(json!({"status": "success", "data": {
                "version": env!("CARGO_PKG_VERSION"),
                "revision": "",
                "branch": "",
                "buildUser": "",
                "buildDate": "",
                "goVersion": "",
                "application": "sightline",
            }}))
        },
    )
    .await
}

/// `GET /api/v1/targets?state=active|dropped|any`: the scrape targets, in Prometheus'
/// shape (empty lists when the server does not scrape).
pub async fn targets(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Response {
    handle(state, "prom_targets", &headers, raw, body, |st, _, p| async move {
        let which = p.get("state").unwrap_or("any");
        if !matches!(which, "active" | "dropped" | "any") {
            return Err(ApiError::bad_data(format!("invalid parameter \"state\": {which:?}")));
        }
        let (mut active, mut dropped) = (Vec::new(), Vec::new());
        if let Some(m) = st.scraper() {
            use sightline_scrape::config::duration::format_duration;
            if which != "dropped" {
                for t in m.targets() {
                    let last_scrape = t.last_scrape.map_or_else(
                        || "0001-01-01T00:00:00Z".to_string(),
                        |at| chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    );
                    active.push(json!({
                        "discoveredLabels": labels_json(&t.discovered_labels),
                        "labels": labels_json(&t.labels),
                        "scrapePool": t.job,
                        "scrapeUrl": t.scrape_url,
                        "globalUrl": t.scrape_url,
                        "lastError": t.last_error,
                        "lastScrape": last_scrape,
                        "lastScrapeDuration": t.last_scrape_duration.map_or(0.0, |d| d.as_secs_f64()),
                        "health": t.health.as_str(),
                        "scrapeInterval": format_duration(t.scrape_interval),
                        "scrapeTimeout": format_duration(t.scrape_timeout),
                    }));
                }
            }
            if which != "active" {
                for t in m.dropped_targets() {
                    dropped.push(json!({"discoveredLabels": labels_json(&t.discovered_labels)}));
                }
            }
        }
        Ok(json!({"status": "success", "data": {"activeTargets": active, "droppedTargets": dropped}}))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_seconds_or_rfc3339() {
        let p = |q: &str| Params::from_pairs(serde_urlencoded::from_str(q).expect("pairs"));
        assert_eq!(
            time_ms(&p("time=1700000000.5"), "time", 0).ok(),
            Some(1_700_000_000_500)
        );
        assert_eq!(
            time_ms(&p("time=2023-11-14T22:13:20Z"), "time", 0).ok(),
            Some(1_700_000_000_000)
        );
        assert_eq!(time_ms(&p(""), "time", 7).ok(), Some(7));
        assert!(time_ms(&p("time=soon"), "time", 0).is_err());
    }
}
