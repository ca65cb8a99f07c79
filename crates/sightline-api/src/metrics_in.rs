//! Metrics ingestion over HTTP: Prometheus remote write 1.0, the text exposition format
//! (`/api/v1/import/prometheus`, for backfill), and OTLP/HTTP metrics.
//!
//! As for logs, a handler answers only once the store says the samples are durable. Errors
//! follow what each protocol's clients expect: remote write senders retry 5xx and 429 and
//! drop on other 4xx, so bad data is a 400 that names the series and a full head is a 429.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;

use sightline_ingest::metrics_common::DecodedMetrics;
use sightline_model::{NANOS_PER_MILLI, TenantId, now_ns};

use crate::body::{content_encoding, content_type, read_limited};
use crate::logs_in::{counted, decode, read_body};
use crate::{ApiResult, SharedState, tenant_of};

/// Appends decoded series and counts the samples.
pub async fn store_metrics(
    state: &SharedState,
    tenant: TenantId,
    protocol: &'static str,
    decoded: DecodedMetrics,
    bytes: usize,
) -> ApiResult<usize> {
    let n = decoded.sample_count();
    let store = state.store()?.clone();
    store
        .append_metrics(Arc::new(decoded.into_batch(tenant)))
        .await?;
    state
        .metrics
        .received("metrics", protocol, n as u64, bytes as u64);
    Ok(n)
}

fn now_ms() -> i64 {
    now_ns() / NANOS_PER_MILLI
}

/// `POST /api/v1/write`: a snappy-compressed protobuf `WriteRequest`.
pub async fn remote_write(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let st = state.clone();
    counted(&state, "remote_write", async move {
        let tenant = tenant_of(&headers)?;
        let enc = content_encoding(&headers);
        let snappy = enc.as_deref() == Some("snappy");
        let (data, sent) = if snappy {
            let raw = read_limited(body, &st.limits).await?;
            let n = raw.len();
            (raw, n)
        } else {
            read_body(&st, &headers, body).await?
        };
        let interner = st.store()?.label_interner().clone();
        let decoded = decode(move || {
            sightline_ingest::remote_write::decode(
                &data,
                snappy,
                now_ms(),
                sightline_ingest::remote_write::FUTURE_MS_MAX_DEFAULT,
                &interner,
            )
        })
        .await?;
        if decoded.native_histogram_samples_skipped > 0 {
            tracing::debug!(
                skipped = decoded.native_histogram_samples_skipped,
                "remote write: native histogram samples are not stored"
            );
        }
        store_metrics(&st, tenant, "remote_write", decoded.metrics, sent).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

/// `POST /api/v1/import/prometheus`: the text exposition format (or OpenMetrics); samples
/// without a timestamp take the time of the request.
pub async fn import_prometheus(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let st = state.clone();
    counted(&state, "prometheus_import", async move {
        let tenant = tenant_of(&headers)?;
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (data, sent) = read_body(&st, &headers, body).await?;
        let decoded =
            decode(move || sightline_ingest::prom_text::parse(&data, ctype.as_deref(), now_ms()))
                .await?;
        let n = store_metrics(&st, tenant, "prometheus_import", decoded, sent).await?;
        Ok(Json(serde_json::json!({"status": "success", "accepted": n})).into_response())
    })
    .await
}

/// `POST /v1/metrics`: OTLP/HTTP, protobuf or JSON. Points that cannot be stored (delta
/// temporality, say) are reported as a partial success, as the OTLP spec asks.
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
        let decoded = decode(move || {
            if json {
                sightline_ingest::otlp::metrics::decode_json(&data)
            } else {
                sightline_ingest::otlp::metrics::decode_protobuf(&data)
            }
        })
        .await?;
        let (rejected, message) = (decoded.rejected_data_points, decoded.error_message);
        store_metrics(&st, tenant, "otlp_http", decoded.metrics, sent).await?;
        Ok(otlp_response(json, rejected, message))
    })
    .await
}

/// An `ExportMetricsServiceResponse`, with a partial success when points were rejected.
fn otlp_response(json: bool, rejected: i64, message: String) -> Response {
    use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
    };
    let partial = (rejected > 0 || !message.is_empty()).then(|| ExportMetricsPartialSuccess {
        rejected_data_points: rejected,
        error_message: message.clone(),
    });
    let protobuf = ExportMetricsServiceResponse {
        partial_success: partial,
    }
    .encode_to_vec();
    crate::body::otlp_export_response(json, "rejectedDataPoints", rejected, &message, protobuf)
}
