//! Spans in over HTTP: OTLP/HTTP traces (`POST /v1/traces`, protobuf or JSON) and Zipkin v2
//! JSON (`POST /api/v2/spans`).
//!
//! A handler answers once the store says the spans are durable, and only then counts them
//! into the span metrics, so a refused write adds no call. A span that cannot be stored (ids
//! of the wrong length, an end before its start) is rejected alone: OTLP reports it as a
//! partial success; Zipkin, whose API has no such answer, gets 202 when any span was kept
//! and 400 naming the problem when none was. Either way the rejection is counted and logged.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;

use sightline_ingest::otlp::traces::TracesDecoded;
use sightline_model::{SpanBatch, TenantId};

use crate::body::content_type;
use crate::logs_in::{counted, decode, read_body};
use crate::{ApiError, ApiResult, SharedState, tenant_of};

/// Appends decoded spans, counts them and feeds the span metrics; logs the rejected ones.
pub async fn store_spans(
    state: &SharedState,
    tenant: TenantId,
    protocol: &'static str,
    decoded: &mut TracesDecoded,
    bytes: usize,
) -> ApiResult<usize> {
    if decoded.rejected_spans > 0 {
        state
            .metrics
            .rejected_records("traces", protocol, decoded.rejected_spans as u64);
        tracing::warn!(
            protocol,
            tenant = %tenant,
            rejected = decoded.rejected_spans,
            reasons = %decoded.error_message,
            "spans rejected"
        );
    }
    let spans = std::mem::take(&mut decoded.spans);
    let n = spans.len();
    let store = state.store()?.clone();
    let batch = Arc::new(SpanBatch { tenant, spans });
    store.append_spans(batch.clone()).await?;
    state.span_metrics.observe(&batch.tenant, &batch.spans);
    if let Some(alerting) = state.alerting() {
        alerting.observe_spans(&batch.tenant, &batch.spans);
    }
    state
        .metrics
        .received("traces", protocol, n as u64, bytes as u64);
    Ok(n)
}

/// `POST /v1/traces`: OTLP/HTTP, protobuf or JSON.
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
        let mut decoded = decode(move || {
            if json {
                sightline_ingest::otlp::traces::decode_json(&data)
            } else {
                sightline_ingest::otlp::traces::decode_protobuf(&data)
            }
        })
        .await?;
        store_spans(&st, tenant, "otlp_http", &mut decoded, sent).await?;
        Ok(otlp_response(
            json,
            decoded.rejected_spans,
            decoded.error_message,
        ))
    })
    .await
}

/// `POST /api/v2/spans`: Zipkin v2 JSON.
pub async fn zipkin(State(state): State<SharedState>, headers: HeaderMap, body: Body) -> Response {
    let st = state.clone();
    counted(&state, "zipkin", async move {
        let tenant = tenant_of(&headers)?;
        let (data, sent) = read_body(&st, &headers, body).await?;
        let mut decoded = decode(move || sightline_ingest::zipkin::decode_json(&data)).await?;
        if decoded.spans.is_empty() && decoded.rejected_spans > 0 {
            return Err(ApiError::bad_data(format!(
                "no span could be stored: {}",
                decoded.error_message
            )));
        }
        store_spans(&st, tenant, "zipkin", &mut decoded, sent).await?;
        Ok(StatusCode::ACCEPTED.into_response())
    })
    .await
}

/// An `ExportTraceServiceResponse`, with a partial success when spans were rejected.
fn otlp_response(json: bool, rejected: i64, message: String) -> Response {
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceResponse,
    };
    let partial = (rejected > 0 || !message.is_empty()).then(|| ExportTracePartialSuccess {
        rejected_spans: rejected,
        error_message: message.clone(),
    });
    let protobuf = ExportTraceServiceResponse {
        partial_success: partial,
    }
    .encode_to_vec();
    crate::body::otlp_export_response(json, "rejectedSpans", rejected, &message, protobuf)
}
