//! Log ingestion over HTTP: NDJSON, OTLP/HTTP, Loki push and Elasticsearch `_bulk`.
//!
//! Each handler reads the body within limits, decompresses it, hands it to its decoder in
//! `sightline-ingest` on a blocking thread (decoding is CPU work), appends the records to the
//! store, and answers only once the store says they are durable.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use prost::Message;

use sightline_ingest::IngestError;
use sightline_model::{LogBatch, LogRecord, TenantId, now_ns};

use crate::body::{content_encoding, content_type, read_limited};
use crate::{ApiError, ApiResult, ErrorKind, SharedState, tenant_of};

pub(crate) fn ingest_error(e: IngestError) -> ApiError {
    let kind = match e.kind() {
        sightline_ingest::ErrorKind::TooLarge => ErrorKind::TooLarge,
        _ => ErrorKind::BadData,
    };
    ApiError::new(kind, e.to_string())
}

/// Reads and decompresses a body; returns it with the size as sent.
pub(crate) async fn read_body(
    state: &SharedState,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<(Bytes, usize)> {
    let raw = read_limited(body, &state.limits).await?;
    let sent = raw.len();
    let enc = content_encoding(headers);
    let data = match enc.as_deref() {
        None | Some("identity") => raw,
        Some(e) => sightline_ingest::compression::decode_body(
            Some(e),
            &raw,
            state.limits.decompressed_bytes_max,
        )
        .map(Bytes::from)
        .map_err(ingest_error)?,
    };
    Ok((data, sent))
}

/// Decodes on a blocking thread, so a large body does not stall the runtime.
pub(crate) async fn decode<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, IngestError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("decoder task: {e}")))?
        .map_err(ingest_error)
}

/// Appends decoded records and counts them.
pub async fn store_logs(
    state: &SharedState,
    tenant: TenantId,
    protocol: &'static str,
    records: Vec<LogRecord>,
    bytes: usize,
) -> ApiResult<usize> {
    let n = records.len();
    let store = state.store()?.clone();
    let batch = std::sync::Arc::new(LogBatch { tenant, records });
    store.append_logs(batch.clone()).await?;
    if state.tail.wants() {
        state.tail.publish(batch);
    }
    state
        .metrics
        .received("logs", protocol, n as u64, bytes as u64);
    Ok(n)
}

/// Runs a handler body and counts a refusal by protocol and reason.
pub(crate) async fn counted<F>(state: &SharedState, protocol: &'static str, f: F) -> Response
where
    F: std::future::Future<Output = ApiResult<Response>>,
{
    match f.await {
        Ok(r) => r,
        Err(e) => {
            state.metrics.rejected(protocol, e.kind.reason());
            e.into_response()
        }
    }
}

/// `POST /api/v1/logs`: one JSON object per line.
pub async fn ndjson(State(state): State<SharedState>, headers: HeaderMap, body: Body) -> Response {
    let st = state.clone();
    counted(&state, "ndjson", async move {
        let tenant = tenant_of(&headers)?;
        let (data, sent) = read_body(&st, &headers, body).await?;
        let records = decode(move || sightline_ingest::ndjson::decode(&data, now_ns())).await?;
        let n = store_logs(&st, tenant, "ndjson", records, sent).await?;
        Ok(Json(serde_json::json!({"status": "success", "accepted": n})).into_response())
    })
    .await
}

/// `POST /v1/logs`: OTLP/HTTP, protobuf or JSON.
pub async fn otlp_http(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let st = state.clone();
    counted(&state, "otlp_http", async move {
        let tenant = tenant_of(&headers)?;
        let json = content_type(&headers) == "application/json";
        let (data, sent) = read_body(&st, &headers, body).await?;
        let records = decode(move || {
            if json {
                sightline_ingest::otlp::logs::decode_json(&data, now_ns())
            } else {
                sightline_ingest::otlp::logs::decode_protobuf(&data, now_ns())
            }
        })
        .await?;
        store_logs(&st, tenant, "otlp_http", records, sent).await?;
        Ok(otlp_success(json))
    })
    .await
}

/// An empty `ExportLogsServiceResponse` in the request's encoding.
fn otlp_success(json: bool) -> Response {
    if json {
        ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
    } else {
        let body =
            opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse::default()
                .encode_to_vec();
        ([(header::CONTENT_TYPE, "application/x-protobuf")], body).into_response()
    }
}

/// `POST /loki/api/v1/push`: JSON, or snappy-compressed protobuf.
pub async fn loki_push(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let st = state.clone();
    counted(&state, "loki_push", async move {
        let tenant = tenant_of(&headers)?;
        let json = content_type(&headers) == "application/json";
        let (data, sent) = read_body(&st, &headers, body).await?;
        let records = decode(move || {
            if json {
                sightline_ingest::loki_push::decode_json(&data)
            } else {
                sightline_ingest::loki_push::decode_protobuf(&data)
            }
        })
        .await?;
        store_logs(&st, tenant, "loki_push", records, sent).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

/// `POST /_bulk`.
pub async fn es_bulk(State(state): State<SharedState>, headers: HeaderMap, body: Body) -> Response {
    es_bulk_for(state, None, headers, body).await
}

/// `POST /{index}/_bulk`.
pub async fn es_bulk_index(
    State(state): State<SharedState>,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    es_bulk_for(state, Some(index), headers, body).await
}

async fn es_bulk_for(
    state: SharedState,
    index: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let st = state.clone();
    counted(&state, "es_bulk", async move {
        let tenant = tenant_of(&headers)?;
        let started = std::time::Instant::now();
        let (data, sent) = read_body(&st, &headers, body).await?;
        let decoded =
            decode(move || sightline_ingest::es_bulk::decode(&data, index.as_deref(), now_ns()))
                .await?;
        store_logs(&st, tenant, "es_bulk", decoded.records, sent).await?;
        let response = sightline_ingest::es_bulk::bulk_response(
            &decoded.items,
            started.elapsed().as_millis() as u64,
        );
        Ok(Json(response).into_response())
    })
    .await
}
