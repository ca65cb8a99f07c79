//! The server's own health endpoints and `/metrics`.
//!
//! - live: the async runtime schedules and answers (this handler ran); 200 unless the
//!   process is wedged, which a prober sees as a time-out.
//! - ready: start-up has finished, the server is not shutting down, and the WAL and data
//!   directories and the object store are writable (a probe is written and removed).
//! - startup: WAL replay has finished.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::SharedState;

fn answer(checks: Vec<(&str, Result<(), String>)>) -> Response {
    let ok = checks.iter().all(|(_, r)| r.is_ok());
    let mut map = Map::new();
    for (name, r) in checks {
        let v = match r {
            Ok(()) => json!({"status": "ok"}),
            Err(e) => json!({"status": "fail", "error": e}),
        };
        map.insert(name.to_string(), v);
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"status": if ok { "ok" } else { "fail" }, "checks": Value::Object(map)});
    (status, Json(body)).into_response()
}

pub async fn live() -> Response {
    answer(vec![("runtime", Ok(()))])
}

pub async fn startup(State(state): State<SharedState>) -> Response {
    let replay = match state.try_store() {
        Some(s) if s.is_started() => Ok(()),
        _ => Err("wal replay has not finished".to_string()),
    };
    answer(vec![("wal_replay", replay)])
}

pub async fn ready(State(state): State<SharedState>) -> Response {
    let started = match state.try_store() {
        Some(s) if s.is_started() => Ok(()),
        _ => Err("wal replay has not finished".to_string()),
    };
    let shutdown = if state.is_shutting_down() {
        Err("shutting down".to_string())
    } else {
        Ok(())
    };
    let writable = match state.try_store() {
        Some(s) => s.check_writable().await.map_err(|e| e.to_string()),
        None => Err("store not open".to_string()),
    };
    answer(vec![
        ("startup", started),
        ("shutdown", shutdown),
        ("storage_writable", writable),
    ])
}

pub async fn metrics(State(state): State<SharedState>) -> Response {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &state.registry) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encode metrics: {e}"),
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
