//! Zipkin v2 JSON (`POST /api/v2/spans`: a JSON array of spans) to [`Span`]s, the same
//! model as OTLP's.
//!
//! The mapping:
//! - `traceId` (16 or 32 hex digits; 64-bit ids left-padded with zeros), `id`, `parentId`
//!   (absent, empty or all zero for a root);
//! - `kind` `CLIENT`, `SERVER`, `PRODUCER`, `CONSUMER`; absent is `Unspecified`;
//! - `timestamp` and `duration` from µs to ns; no `duration` is a zero-length span;
//! - `service` from `localEndpoint.serviceName` ([`SERVICE_UNKNOWN`] without one), which is
//!   also the resource's `service.name`; the local endpoint's address as `net.host.ip` and
//!   `net.host.port`;
//! - `remoteEndpoint` as `net.peer.name` (its `serviceName`), `net.peer.ip` (`ipv4`, else
//!   `ipv6`) and `net.peer.port`;
//! - `tags` as string attributes, sorted by name (non-string values, which some clients
//!   send, as their JSON text), except: `error` makes the status `Error` with the tag's value
//!   as its message, and `otel.status_code` (`OK`, `ERROR`) and `otel.status_description`,
//!   which OpenTelemetry's Zipkin exporters write, set the status;
//! - `annotations` as events named by their `value`, without attributes;
//! - `shared` and `debug`, when true, as the boolean attributes `zipkin.shared` and
//!   `zipkin.debug`.
//!
//! **Rejected, per span, the rest of the body kept**: a span that is not an object of
//! Zipkin's shape, an id that is not hex of the right length or is all zero, an unknown
//! `kind`, no `timestamp`, a negative `duration`, a time past `i64::MAX` ns. The count and
//! reasons are in [`TracesDecoded`], as for OTLP, e.g. `span 3 ("get /api"): traceId "x1" is
//! not 16 or 32 hex digits`. A body that is not a JSON array fails whole, with the line and
//! column of the syntax error.

#[cfg(test)]
mod tests;

use serde::Deserialize;
use serde_json::Value;
use sightline_model::span::{SERVICE_UNKNOWN, parse_span_id_hex, parse_trace_id_hex};
use sightline_model::{AttrValue, Span, SpanEvent, SpanKind, SpanStatus, StatusCode};

use crate::error::{IngestError, excerpt};
use crate::otlp::traces::{Rejections, SERVICE_NAME_ATTRIBUTE, SpanError, TracesDecoded};

const OP: &str = "decode zipkin spans json";

/// The tag Zipkin marks a failed span with; its value is the error message.
pub const ERROR_TAG: &str = "error";

/// One span as Zipkin's v2 API defines it; every field optional, so what is missing is
/// reported by the conversion, by name.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ZipkinSpan {
    trace_id: Option<String>,
    id: Option<String>,
    parent_id: Option<String>,
    name: Option<String>,
    kind: Option<String>,
    timestamp: Option<i64>,
    duration: Option<i64>,
    debug: Option<bool>,
    shared: Option<bool>,
    local_endpoint: Option<Endpoint>,
    remote_endpoint: Option<Endpoint>,
    annotations: Option<Vec<Annotation>>,
    tags: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    service_name: Option<String>,
    ipv4: Option<String>,
    ipv6: Option<String>,
    port: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Annotation {
    timestamp: i64,
    value: String,
}

/// Decodes a Zipkin v2 JSON body: a JSON array of spans.
pub fn decode_json(body: &[u8]) -> Result<TracesDecoded, IngestError> {
    let items: Vec<Value> = serde_json::from_slice(body).map_err(|e| IngestError::Malformed {
        op: OP,
        reason: e.to_string(),
    })?;
    let mut spans = Vec::with_capacity(items.len());
    let mut rejections = Rejections::default();
    for (i, item) in items.into_iter().enumerate() {
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .map(|n| format!(" ({:?})", excerpt(n, 100)))
            .unwrap_or_default();
        let converted = serde_json::from_value::<ZipkinSpan>(item)
            .map_err(|e| SpanError::Invalid(e.to_string()))
            .and_then(convert_span);
        match converted {
            Ok(span) => spans.push(span),
            Err(reason) => rejections.add(format!("span {}{name}: {reason}", i + 1)),
        }
    }
    Ok(TracesDecoded {
        spans,
        rejected_spans: rejections.count,
        error_message: rejections.message(),
    })
}

fn convert_span(z: ZipkinSpan) -> Result<Span, SpanError> {
    let trace_id = required_id(
        z.trace_id,
        "traceId",
        parse_trace_id_hex,
        "16 or 32 hex digits, not all zero",
    )?;
    let span_id = required_id(z.id, "id", parse_span_id_hex, "16 hex digits, not all zero")?;
    let parent_span_id = match z.parent_id.as_deref() {
        None | Some("") => None,
        Some(text) if text.len() <= 16 && text.bytes().all(|b| b == b'0') => None,
        Some(text) => Some(parse_span_id_hex(text).ok_or_else(|| SpanError::BadIdText {
            field: "parentId",
            text: excerpt(text, 40),
            want: "16 hex digits",
        })?),
    };
    let kind = match z.kind.as_deref() {
        None => SpanKind::Unspecified,
        Some("CLIENT") => SpanKind::Client,
        Some("SERVER") => SpanKind::Server,
        Some("PRODUCER") => SpanKind::Producer,
        Some("CONSUMER") => SpanKind::Consumer,
        Some(other) => {
            return Err(SpanError::Invalid(format!(
                "kind {:?} is not one of CLIENT, SERVER, PRODUCER, CONSUMER",
                excerpt(other, 40)
            )));
        }
    };
    let timestamp_us = z
        .timestamp
        .ok_or_else(|| SpanError::Invalid("timestamp is missing".into()))?;
    let start_ns = micros_to_ns("timestamp", timestamp_us)?;
    let duration_ns = micros_to_ns("duration", z.duration.unwrap_or(0))?;
    let end_ns = start_ns
        .checked_add(duration_ns)
        .ok_or(SpanError::TimeOutOfRange {
            field: "duration",
            value: z.duration.unwrap_or(0).unsigned_abs(),
            unit: "µs",
        })?;
    if end_ns < start_ns {
        return Err(SpanError::EndBeforeStart { start_ns, end_ns });
    }

    let local = z.local_endpoint.unwrap_or_default();
    let service = local
        .service_name
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| SERVICE_UNKNOWN.to_string());
    let resource = vec![(
        SERVICE_NAME_ATTRIBUTE.to_string(),
        AttrValue::String(service.clone()),
    )];

    let mut status = SpanStatus::default();
    let mut attributes = Vec::new();
    let mut tags: Vec<(String, Value)> = z.tags.unwrap_or_default().into_iter().collect();
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, value) in tags {
        let text = match value {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        };
        match key.as_str() {
            ERROR_TAG => {
                status.code = StatusCode::Error;
                status.message = text;
            }
            "otel.status_code" => match text.as_str() {
                "ERROR" => status.code = StatusCode::Error,
                "OK" if status.code != StatusCode::Error => status.code = StatusCode::Ok,
                _ => attributes.push((key, AttrValue::String(text))),
            },
            "otel.status_description" if status.message.is_empty() => status.message = text,
            _ => attributes.push((key, AttrValue::String(text))),
        }
    }
    push_endpoint(
        &mut attributes,
        "net.host",
        &local.ipv4,
        &local.ipv6,
        local.port,
    );
    if let Some(remote) = z.remote_endpoint {
        if let Some(name) = remote.service_name.filter(|s| !s.is_empty()) {
            attributes.push(("net.peer.name".into(), AttrValue::String(name)));
        }
        push_endpoint(
            &mut attributes,
            "net.peer",
            &remote.ipv4,
            &remote.ipv6,
            remote.port,
        );
    }
    for (flag, key) in [(z.shared, "zipkin.shared"), (z.debug, "zipkin.debug")] {
        if flag == Some(true) {
            attributes.push((key.into(), AttrValue::Bool(true)));
        }
    }

    let events = z
        .annotations
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            Ok(SpanEvent {
                time_ns: micros_to_ns("annotation timestamp", a.timestamp)?,
                name: a.value,
                attributes: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, SpanError>>()?;

    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: String::new(),
        name: z.name.unwrap_or_default(),
        kind,
        start_ns,
        end_ns,
        status,
        service,
        resource,
        scope_name: String::new(),
        scope_version: String::new(),
        attributes,
        events,
        links: Vec::new(),
    })
}

/// A required id field parsed by `parse`, or why it is not one.
fn required_id<T>(
    text: Option<String>,
    field: &'static str,
    parse: fn(&str) -> Option<T>,
    want: &'static str,
) -> Result<T, SpanError> {
    let text = text.ok_or_else(|| SpanError::Invalid(format!("{field} is missing")))?;
    // Shorter ids are left-padded with zeros, as Zipkin's own server reads them.
    parse(&text).ok_or_else(|| SpanError::BadIdText {
        field,
        text: excerpt(&text, 40),
        want,
    })
}

fn micros_to_ns(field: &'static str, micros: i64) -> Result<i64, SpanError> {
    micros.checked_mul(1_000).ok_or(SpanError::TimeOutOfRange {
        field,
        value: micros.unsigned_abs(),
        unit: "µs",
    })
}

fn push_endpoint(
    attributes: &mut Vec<(String, AttrValue)>,
    prefix: &str,
    ipv4: &Option<String>,
    ipv6: &Option<String>,
    port: Option<i64>,
) {
    if let Some(ip) = ipv4.as_ref().or(ipv6.as_ref()).filter(|s| !s.is_empty()) {
        attributes.push((format!("{prefix}.ip"), AttrValue::String(ip.clone())));
    }
    if let Some(port) = port.filter(|p| *p > 0) {
        attributes.push((format!("{prefix}.port"), AttrValue::Int(port)));
    }
}
