//! OTLP over gRPC: the collector services, on their own port (4317 by default).

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;
use tonic::{Request, Response, Status};

use crate::{ApiError, SharedState, logs_in, tenant_of};

/// Largest gRPC message accepted, decoded.
pub const GRPC_MESSAGE_BYTES_MAX: usize = 64 << 20;

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
