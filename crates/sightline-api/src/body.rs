//! Reading request bodies within limits: as sent (413 past `request_bytes_max`) and after
//! `Content-Encoding` decompression (413 past `decompressed_bytes_max`).

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::{ApiError, ErrorKind, Limits};

/// Reads the whole body, refusing more than the limit.
pub async fn read_limited(body: Body, limits: &Limits) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorKind::TooLarge,
            format!(
                "request body is over the limit of {} bytes",
                limits.request_bytes_max
            ),
        )
    };
    match Limited::new(body, limits.request_bytes_max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::bad_data(format!("read request body: {e}"))),
    }
}

/// The value of `Content-Encoding`, lowercased, if any.
pub fn content_encoding(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
}

/// The media type of `Content-Type` (no parameters), lowercased; empty when absent.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.split(';').next())
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// An OTLP export response: JSON (`{}` or `{"partialSuccess": {<count_field>: "n",
/// "errorMessage": …}}`, 64-bit counts as strings as OTLP/JSON writes them) or the
/// protobuf the caller encoded, which carries the same partial success.
pub fn otlp_export_response(
    json: bool,
    count_field: &str,
    rejected: i64,
    message: &str,
    protobuf: Vec<u8>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if json {
        let body = if rejected > 0 || !message.is_empty() {
            let mut partial = serde_json::Map::new();
            partial.insert(count_field.to_owned(), rejected.to_string().into());
            partial.insert("errorMessage".to_owned(), message.into());
            serde_json::json!({ "partialSuccess": partial })
        } else {
            serde_json::json!({})
        };
        (
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/x-protobuf")], protobuf).into_response()
    }
}
