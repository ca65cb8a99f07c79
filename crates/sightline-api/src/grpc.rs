//! OTLP over gRPC: the collector services, on their own port (4317 by default).

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::{Request, Response, Status};

use crate::{ApiError, SharedState, logs_in, metrics_in, tenant_of, traces_in};

/// Largest gRPC message accepted, decoded.
pub const GRPC_MESSAGE_BYTES_MAX: usize = 64 << 20;

/// The gRPC response of a service, as tonic's server sends it.
type GrpcResponse = axum::http::Response<tonic::body::Body>;

/// A layer for the gRPC server: tonic's protobuf codec answers a request whose body is not a
/// valid message with `INTERNAL` before any handler runs, but the caller sent bad data, so
/// the answer becomes `INVALID_ARGUMENT` (what the HTTP routes say with a 400), with
/// tonic's message naming the problem kept.
pub fn bad_protobuf_layer() -> tower::util::MapResponseLayer<fn(GrpcResponse) -> GrpcResponse> {
    tower::util::MapResponseLayer::new(bad_protobuf_is_invalid_argument)
}

fn bad_protobuf_is_invalid_argument(mut resp: GrpcResponse) -> GrpcResponse {
    let headers = resp.headers_mut();
    let internal = headers.get("grpc-status").is_some_and(|v| v == "13");
    // grpc-message is percent-encoded.
    let decode_error = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| {
            m.replace("%20", " ")
                .starts_with("failed to decode Protobuf message")
        });
    if internal && decode_error {
        let code = i32::from(tonic::Code::InvalidArgument).to_string();
        if let Ok(v) = axum::http::HeaderValue::from_str(&code) {
            headers.insert("grpc-status", v);
        }
    }
    resp
}

pub struct OtlpLogs {
    state: SharedState,
}

/// The OTLP logs service, accepting gzip.
pub fn logs_service(state: SharedState) -> LogsServiceServer<OtlpLogs> {
    LogsServiceServer::new(OtlpLogs { state })
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
}

#[tonic::async_trait]
impl LogsService for OtlpLogs {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let result = self.export_inner(request).await;
        if let Err(e) = &result {
            self.state.metrics.rejected("otlp_grpc", e.kind.reason());
        }
        result.map_err(Status::from)
    }
}

impl OtlpLogs {
    async fn export_inner(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, ApiError> {
        let headers = request.metadata().clone().into_headers();
        let tenant = tenant_of(&headers)?;
        let req = request.into_inner();
        let bytes = req.encoded_len();
        let records = tokio::task::spawn_blocking(move || {
            sightline_ingest::otlp::logs::from_request(req, sightline_model::now_ns())
        })
        .await
        .map_err(|e| ApiError::internal(format!("decoder task: {e}")))?
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
        logs_in::store_logs(&self.state, tenant, "otlp_grpc", records, bytes).await?;
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

pub struct OtlpMetrics {
    state: SharedState,
}

/// The OTLP metrics service, accepting gzip.
pub fn metrics_service(state: SharedState) -> MetricsServiceServer<OtlpMetrics> {
    MetricsServiceServer::new(OtlpMetrics { state })
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
}

#[tonic::async_trait]
impl MetricsService for OtlpMetrics {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let result = self.export_inner(request).await;
        if let Err(e) = &result {
            self.state.metrics.rejected("otlp_grpc", e.kind.reason());
        }
        result.map_err(Status::from)
    }
}

impl OtlpMetrics {
    async fn export_inner(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, ApiError> {
        let headers = request.metadata().clone().into_headers();
        let tenant = tenant_of(&headers)?;
        let req = request.into_inner();
        let bytes = req.encoded_len();
        let decoded =
            tokio::task::spawn_blocking(move || sightline_ingest::otlp::metrics::from_request(req))
                .await
                .map_err(|e| ApiError::internal(format!("decoder task: {e}")))?;
        let (rejected, message) = (decoded.rejected_data_points, decoded.error_message);
        metrics_in::store_metrics(&self.state, tenant, "otlp_grpc", decoded.metrics, bytes).await?;
        let partial_success =
            (rejected > 0 || !message.is_empty()).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message: message,
            });
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success,
        }))
    }
}

pub struct OtlpTraces {
    state: SharedState,
}

/// The OTLP trace service, accepting gzip.
pub fn trace_service(state: SharedState) -> TraceServiceServer<OtlpTraces> {
    TraceServiceServer::new(OtlpTraces { state })
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
}

#[tonic::async_trait]
impl TraceService for OtlpTraces {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let result = self.export_inner(request).await;
        if let Err(e) = &result {
            self.state.metrics.rejected("otlp_grpc", e.kind.reason());
        }
        result.map_err(Status::from)
    }
}

impl OtlpTraces {
    async fn export_inner(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, ApiError> {
        let headers = request.metadata().clone().into_headers();
        let tenant = tenant_of(&headers)?;
        let req = request.into_inner();
        let bytes = req.encoded_len();
        let mut decoded =
            tokio::task::spawn_blocking(move || sightline_ingest::otlp::traces::from_request(req))
                .await
                .map_err(|e| ApiError::internal(format!("decoder task: {e}")))?;
        traces_in::store_spans(&self.state, tenant, "otlp_grpc", &mut decoded, bytes).await?;
        let (rejected, message) = (decoded.rejected_spans, decoded.error_message);
        let partial_success =
            (rejected > 0 || !message.is_empty()).then_some(ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: message,
            });
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success,
        }))
    }
}
