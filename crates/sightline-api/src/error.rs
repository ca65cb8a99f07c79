//! The one place errors become HTTP statuses: `{"status":"error","errorType":…,"error":…}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What kind of failure, independent of the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller sent something malformed or invalid.
    BadData,
    /// A well-formed query failed to evaluate (Prometheus' 422 `execution`).
    Execution,
    NotFound,
    /// A body or batch over a limit.
    TooLarge,
    /// Over a rate or concurrency limit; retry later.
    TooManyRequests,
    /// Not ready, or shutting down; retry later.
    Unavailable,
    Timeout,
    /// Our fault.
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadData => StatusCode::BAD_REQUEST,
            Self::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `errorType` of the Prometheus API.
    pub fn error_type(self) -> &'static str {
        match self {
            Self::BadData => "bad_data",
            Self::Execution => "execution",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::TooManyRequests => "too_many_requests",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
        }
    }

    /// The label value of `sightline_http_rejected_requests_total{reason}`.
    pub fn reason(self) -> &'static str {
        self.error_type()
    }

    pub fn grpc_code(self) -> tonic::Code {
        match self {
            Self::BadData | Self::Execution => tonic::Code::InvalidArgument,
            Self::NotFound => tonic::Code::NotFound,
            Self::TooLarge => tonic::Code::ResourceExhausted,
            Self::TooManyRequests => tonic::Code::ResourceExhausted,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::Timeout => tonic::Code::DeadlineExceeded,
            Self::Internal => tonic::Code::Internal,
        }
    }
}

/// An error on its way to the caller.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_data(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadData, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl From<sightline_store::StoreError> for ApiError {
    fn from(e: sightline_store::StoreError) -> Self {
        use sightline_store::StoreError as E;
        let kind = match &e {
            E::TooLarge(_) => ErrorKind::TooLarge,
            // Retrying cannot succeed, so not a 429 that remote-write clients would retry.
            E::TooManySeries(_) => ErrorKind::BadData,
            E::Closed => ErrorKind::Unavailable,
            E::Overloaded(_) => ErrorKind::TooManyRequests,
            E::Io(_) | E::Corrupt(_) => ErrorKind::Internal,
        };
        Self::new(kind, format!("store: {e}"))
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        tonic::Status::new(e.kind.grpc_code(), e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.kind == ErrorKind::Internal {
            tracing::error!(error = %self.message, "request failed");
        }
        let body = serde_json::json!({
            "status": "error",
            "errorType": self.kind.error_type(),
            "error": self.message,
        });
        let mut resp = (self.kind.status(), Json(body)).into_response();
        if matches!(
            self.kind,
            ErrorKind::TooManyRequests | ErrorKind::Unavailable
        ) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
