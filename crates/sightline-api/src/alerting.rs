//! `/api/v1/rules`, `/api/v1/alerts` (Prometheus' shapes), `/api/v1/slos`, `/api/v1/probes`
//! and silences (Alertmanager's v2 shape): thin handlers over [`sightline_alert::Alerting`].
//! Without alerting configured they answer empty lists, as Prometheus does without rules.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use serde_json::{Value, json};

use sightline_alert::RuleFilter;
use sightline_alert::silence::Silence;

use crate::{ApiError, ApiResult, ErrorKind, SharedState};

fn success(data: Value) -> Json<Value> {
    Json(json!({"status": "success", "data": data}))
}

/// `GET /api/v1/rules?type=alert|record`.
async fn rules(
    State(state): State<SharedState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let filter = match q.get("type").map(String::as_str) {
        None | Some("") => RuleFilter::All,
        Some("alert") => RuleFilter::Alerting,
        Some("record") => RuleFilter::Recording,
        Some(other) => {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"type\": {other:?} is not alert or record"
            )));
        }
    };
    Ok(success(match state.alerting() {
        Some(a) => a.rules_json(filter),
        None => json!({"groups": []}),
    }))
}

/// `GET /api/v1/alerts`.
async fn alerts(State(state): State<SharedState>) -> Json<Value> {
    success(match state.alerting() {
        Some(a) => a.alerts_json(),
        None => json!({"alerts": []}),
    })
}

async fn slos(State(state): State<SharedState>) -> Json<Value> {
    success(state.alerting().map_or(json!([]), |a| a.slos_json()))
}

fn not_found(what: String) -> ApiError {
    ApiError::new(ErrorKind::NotFound, what)
}

async fn slo(State(state): State<SharedState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    state
        .alerting()
        .and_then(|a| a.slo_json(&name))
        .map(success)
        .ok_or_else(|| not_found(format!("no SLO named {name:?}")))
}

async fn probes(State(state): State<SharedState>) -> Json<Value> {
    success(state.alerting().map_or(json!([]), |a| a.probes_json()))
}

async fn silences(State(state): State<SharedState>) -> Json<Value> {
    success(state.alerting().map_or(json!([]), |a| a.silences_json()))
}

/// `POST /api/v1/silences`: a new silence, or an update of one given by `id`.
async fn post_silence(
    State(state): State<SharedState>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let silence: Silence = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_data(format!("silence: invalid JSON: {e}")))?;
    let alerting = state
        .alerting()
        .ok_or_else(|| ApiError::new(ErrorKind::Unavailable, "alerting is not running"))?;
    let id = alerting
        .upsert_silence(silence)
        .await
        .map_err(|(theirs, e)| {
            if theirs {
                ApiError::bad_data(e)
            } else {
                ApiError::internal(e)
            }
        })?;
    Ok(success(json!({"silenceID": id})))
}

async fn get_silence(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state
        .alerting()
        .and_then(|a| a.silence_json(&id))
        .map(success)
        .ok_or_else(|| not_found(format!("silence {id} not found")))
}

async fn delete_silence(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let alerting = state
        .alerting()
        .ok_or_else(|| not_found(format!("silence {id} not found")))?;
    match alerting.expire_silence(&id).await {
        Ok(true) => Ok(success(json!({"silenceID": id}))),
        Ok(false) => Err(not_found(format!("silence {id} not found"))),
        Err(e) => Err(ApiError::internal(e)),
    }
}

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/slos", get(slos))
        .route("/api/v1/slos/{name}", get(slo))
        .route("/api/v1/probes", get(probes))
        .route("/api/v1/silences", get(silences).post(post_silence))
        .route(
            "/api/v1/silence/{id}",
            get(get_silence).delete(delete_silence),
        )
}
