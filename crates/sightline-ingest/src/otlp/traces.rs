//! OTLP traces (`POST /v1/traces`, gRPC `TraceService/Export`) to [`Span`]s.
//!
//! The mapping is one to one, OTLP's model being Sightline's:
//! - ids as bytes; an empty or all-zero `parent_span_id` is a root (`None`);
//! - `kind` and `status.code` by their enum numbers (unknown numbers are `Unspecified` and
//!   `Unset`); times from `u64` ns to `i64` ns;
//! - `service` from the resource attribute `service.name` ([`SERVICE_UNKNOWN`] without one);
//!   every resource attribute, `service.name` included, in `resource`;
//! - attributes, events and links with values of every `AnyValue` type as [`AttrValue`]s,
//!   in the order sent; an exception recorded with `record_exception` is an event named
//!   `exception` whose `exception.type`, `exception.message`, `exception.stacktrace` (and
//!   `exception.escaped`) attributes are kept as they are.
//!
//! **Rejected, per span, the rest of the request kept** (OTLP's partial success): a trace id
//! that is not 16 bytes or is all zero, a span id that is not 8 bytes or is all zero, a
//! parent span id of any length but 0 or 8, an end before the start, a time past `i64::MAX`
//! ns. Their count is [`TracesDecoded::rejected_spans`] and the first
//! [`REJECTION_REASONS_MAX`] reasons are [`TracesDecoded::error_message`], e.g.
//! `span "checkout" (resource 1, scope 1, span 3): trace id is 15 bytes, want 16`. A link
//! whose ids are invalid is dropped and the span kept. Only a body that is not an OTLP
//! request at all fails whole.
//!
//! Not kept: `flags`, the `dropped_*_count`s, schema URLs, scope attributes.

pub mod json_compat;
#[cfg(test)]
mod tests;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;
use prost::Message;
use sightline_model::span::SERVICE_UNKNOWN;
use sightline_model::{
    AttrValue, Span, SpanEvent, SpanId, SpanKind, SpanLink, SpanStatus, StatusCode, TraceId,
};

use crate::error::{IngestError, excerpt};

/// Most reasons kept in [`TracesDecoded::error_message`]; the rest are counted.
pub const REJECTION_REASONS_MAX: usize = 8;

/// The resource attribute naming the service.
pub const SERVICE_NAME_ATTRIBUTE: &str = "service.name";

/// A converted request: spans to store, and what was rejected, for OTLP's partial success
/// response (`rejected_spans`, `error_message`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TracesDecoded {
    pub spans: Vec<Span>,
    pub rejected_spans: i64,
    /// Empty when nothing was rejected.
    pub error_message: String,
}

/// Why one span was rejected; shared by every span decoder.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    #[error("trace id is {bytes} bytes, want 16")]
    TraceIdLength { bytes: usize },
    #[error("trace id is all zero")]
    TraceIdZero,
    #[error("span id is {bytes} bytes, want 8")]
    SpanIdLength { bytes: usize },
    #[error("span id is all zero")]
    SpanIdZero,
    #[error("parent span id is {bytes} bytes, want 8 or none")]
    ParentSpanIdLength { bytes: usize },
    #[error("span ends at {end_ns} ns, before it starts at {start_ns} ns")]
    EndBeforeStart { start_ns: i64, end_ns: i64 },
    #[error("{field} {value} {unit} is out of range")]
    TimeOutOfRange {
        field: &'static str,
        value: u64,
        unit: &'static str,
    },
    /// An id that is not hex of the right length, as text formats carry it.
    #[error("{field} {text:?} is not {want}")]
    BadIdText {
        field: &'static str,
        text: String,
        want: &'static str,
    },
    /// Any other shape error of a text format, e.g. `timestamp is missing`.
    #[error("{0}")]
    Invalid(String),
}

/// Decodes an OTLP/HTTP protobuf body (`application/x-protobuf`).
pub fn decode_protobuf(body: &[u8]) -> Result<TracesDecoded, IngestError> {
    let request = ExportTraceServiceRequest::decode(body).map_err(|e| IngestError::Malformed {
        op: "decode otlp traces protobuf",
        reason: e.to_string(),
    })?;
    Ok(from_request(request))
}

/// Decodes an OTLP/HTTP JSON body (`application/json`).
pub fn decode_json(body: &[u8]) -> Result<TracesDecoded, IngestError> {
    Ok(from_request(json_compat::parse_request(body)?))
}

/// Converts a decoded request (the gRPC path), taking its strings without copying them.
/// Never fails: what cannot be converted is counted and explained in the result.
pub fn from_request(request: ExportTraceServiceRequest) -> TracesDecoded {
    let total = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    let mut spans = Vec::with_capacity(total);
    let mut rejections = Rejections::default();
    for (ri, resource_spans) in request.resource_spans.into_iter().enumerate() {
        let resource = attributes(
            resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default(),
        );
        let service = match sightline_model::span::find_attribute(&resource, SERVICE_NAME_ATTRIBUTE)
        {
            Some(AttrValue::String(s)) if !s.is_empty() => s.clone(),
            _ => SERVICE_UNKNOWN.to_string(),
        };
        for (si, scope_spans) in resource_spans.scope_spans.into_iter().enumerate() {
            let (scope_name, scope_version) = scope_spans
                .scope
                .map(|s| (s.name, s.version))
                .unwrap_or_default();
            for (pi, otlp_span) in scope_spans.spans.into_iter().enumerate() {
                let name = otlp_span.name.clone();
                let context = SpanContext {
                    service: &service,
                    resource: &resource,
                    scope_name: &scope_name,
                    scope_version: &scope_version,
                };
                match convert_span(otlp_span, &context) {
                    Ok(span) => spans.push(span),
                    Err(reason) => rejections.add(format!(
                        "span {:?} (resource {}, scope {}, span {}): {reason}",
                        excerpt(&name, 100),
                        ri + 1,
                        si + 1,
                        pi + 1
                    )),
                }
            }
        }
    }
    TracesDecoded {
        spans,
        rejected_spans: rejections.count,
        error_message: rejections.message(),
    }
}

/// What a resource and scope give each of their spans.
struct SpanContext<'a> {
    service: &'a str,
    resource: &'a [(String, AttrValue)],
    scope_name: &'a str,
    scope_version: &'a str,
}

fn convert_span(span: OtlpSpan, context: &SpanContext<'_>) -> Result<Span, SpanError> {
    let id_of_trace = trace_id(&span.trace_id)?;
    let id_of_span = span_id(&span.span_id)?;
    let parent_span_id = match span.parent_span_id.len() {
        0 => None,
        8 if span.parent_span_id.iter().all(|b| *b == 0) => None,
        8 => span_id_bytes(&span.parent_span_id),
        bytes => return Err(SpanError::ParentSpanIdLength { bytes }),
    };
    let start_ns = time_ns("start time", span.start_time_unix_nano)?;
    let end_ns = time_ns("end time", span.end_time_unix_nano)?;
    if end_ns < start_ns {
        return Err(SpanError::EndBeforeStart { start_ns, end_ns });
    }
    let events = span
        .events
        .into_iter()
        .map(|e| {
            Ok(SpanEvent {
                time_ns: time_ns("event time", e.time_unix_nano)?,
                name: e.name,
                attributes: attributes(e.attributes),
            })
        })
        .collect::<Result<Vec<_>, SpanError>>()?;
    let links = span
        .links
        .into_iter()
        .filter_map(|l| {
            Some(SpanLink {
                trace_id: trace_id(&l.trace_id).ok()?,
                span_id: span_id(&l.span_id).ok()?,
                trace_state: l.trace_state,
                attributes: attributes(l.attributes),
            })
        })
        .collect();
    let status = span
        .status
        .map(|s| SpanStatus {
            code: StatusCode::from_otlp(s.code),
            message: s.message,
        })
        .unwrap_or_default();
    Ok(Span {
        trace_id: id_of_trace,
        span_id: id_of_span,
        parent_span_id,
        trace_state: span.trace_state,
        name: span.name,
        kind: SpanKind::from_otlp(span.kind),
        start_ns,
        end_ns,
        status,
        service: context.service.to_string(),
        resource: context.resource.to_vec(),
        scope_name: context.scope_name.to_string(),
        scope_version: context.scope_version.to_string(),
        attributes: attributes(span.attributes),
        events,
        links,
    })
}

/// A valid trace id: 16 bytes, not all zero.
pub fn trace_id(bytes: &[u8]) -> Result<TraceId, SpanError> {
    let id: TraceId = bytes
        .try_into()
        .map_err(|_| SpanError::TraceIdLength { bytes: bytes.len() })?;
    if id == [0; 16] {
        return Err(SpanError::TraceIdZero);
    }
    Ok(id)
}

/// A valid span id: 8 bytes, not all zero.
pub fn span_id(bytes: &[u8]) -> Result<SpanId, SpanError> {
    let id = span_id_bytes(bytes).ok_or(SpanError::SpanIdLength { bytes: bytes.len() })?;
    if id == [0; 8] {
        return Err(SpanError::SpanIdZero);
    }
    Ok(id)
}

fn span_id_bytes(bytes: &[u8]) -> Option<SpanId> {
    bytes.try_into().ok()
}

fn time_ns(field: &'static str, value: u64) -> Result<i64, SpanError> {
    i64::try_from(value).map_err(|_| SpanError::TimeOutOfRange {
        field,
        value,
        unit: "ns",
    })
}

/// OTLP key-values as model attributes, in order.
pub fn attributes(kvs: Vec<KeyValue>) -> Vec<(String, AttrValue)> {
    kvs.into_iter()
        .map(|kv| (kv.key, kv.value.map_or(AttrValue::Empty, attr_value)))
        .collect()
}

/// An OTLP `AnyValue` as a model value; an unset value (or a profiles-only string index) is
/// [`AttrValue::Empty`].
pub fn attr_value(value: AnyValue) -> AttrValue {
    match value.value {
        None | Some(Value::StringValueStrindex(_)) => AttrValue::Empty,
        Some(Value::StringValue(s)) => AttrValue::String(s),
        Some(Value::BoolValue(b)) => AttrValue::Bool(b),
        Some(Value::IntValue(n)) => AttrValue::Int(n),
        Some(Value::DoubleValue(n)) => AttrValue::Double(n),
        Some(Value::BytesValue(b)) => AttrValue::Bytes(b),
        Some(Value::ArrayValue(a)) => {
            AttrValue::Array(a.values.into_iter().map(attr_value).collect())
        }
        Some(Value::KvlistValue(l)) => AttrValue::KvList(attributes(l.values)),
    }
}

/// Rejected spans: a count and the first [`REJECTION_REASONS_MAX`] reasons.
#[derive(Default)]
pub(crate) struct Rejections {
    pub(crate) count: i64,
    reasons: Vec<String>,
    more: usize,
}

impl Rejections {
    /// Counts one rejected span.
    pub(crate) fn add(&mut self, reason: String) {
        self.count += 1;
        if self.reasons.len() < REJECTION_REASONS_MAX {
            self.reasons.push(reason);
        } else {
            self.more += 1;
        }
    }

    /// The reasons joined with `; `, and how many more there were.
    pub(crate) fn message(&self) -> String {
        let mut text = self.reasons.join("; ");
        if self.more > 0 {
            text.push_str(&format!("; and {} more", self.more));
        }
        text
    }
}
