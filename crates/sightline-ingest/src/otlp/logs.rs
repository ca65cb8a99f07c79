//! OTLP logs (`POST /v1/logs`, gRPC `LogsService/Export`) to log records.
//!
//! The mapping, by the policy of [`crate::logs_common`]:
//! - labels: `service` from the resource attribute `service.name` ([`SERVICE_UNKNOWN`]
//!   without one), `level` from `severity_number` (else `severity_text`), and the resource
//!   attributes in [`OTLP_RESOURCE_LABEL_ATTRIBUTES`] with sanitised names;
//! - line: the body; a string body as it is, any other kind as compact JSON (bytes as
//!   base64), no body as an empty line;
//! - metadata, later names replacing earlier ones: the other resource attributes, the scope
//!   name as `scope_name`, the record's attributes (kvlists flattened with `_`, arrays as
//!   JSON), `event_name`, `trace_id` and `span_id` as lowercase hex, and `severity_text` when
//!   it names no known level;
//! - timestamp: `time_unix_nano`, else `observed_time_unix_nano`, else the caller's `now_ns`.
//!
//! A record that breaks a limit fails the whole request, with its position:
//! `otlp logs: resource 1, scope 2, record 7: line is ... bytes`.
//!
//! OTLP/JSON goes through `opentelemetry-proto`'s serde derive, which follows the spec for
//! what exporters send (camelCase names, hex ids, 64-bit integers as strings or numbers,
//! integer enums, unknown fields ignored) but rejects a few legal or common variants; see
//! [`json_compat`] for those and how they are repaired.

mod any_value;
pub mod json_compat;
#[cfg(test)]
mod tests;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use std::sync::Arc;

use opentelemetry_proto::tonic::logs::v1::LogRecord as OtlpLogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use sightline_model::{Labels, LogRecord};

use crate::error::{IngestError, RecordError};
use crate::logs_common::fields::{METADATA_SPAN_ID, METADATA_TRACE_ID};
use crate::logs_common::{
    LABEL_LEVEL, LABEL_SERVICE, LEVEL_UNKNOWN, LEVELS, METADATA_SEVERITY_TEXT, Metadata,
    OTLP_RESOURCE_LABEL_ATTRIBUTES, SERVICE_UNKNOWN, build_labels, check_line,
    level_from_severity_number, level_from_text,
};
pub(crate) use any_value::any_value_text;
use any_value::push_attribute;

/// The resource attribute naming the service.
const SERVICE_NAME_ATTRIBUTE: &str = "service.name";

/// The metadata name of the instrumentation scope's name.
pub const METADATA_SCOPE_NAME: &str = "scope_name";

/// The metadata name of an event record's name.
pub const METADATA_EVENT_NAME: &str = "event_name";

/// Decodes an OTLP/HTTP protobuf body (`application/x-protobuf`).
pub fn decode_protobuf(body: &[u8], now_ns: i64) -> Result<Vec<LogRecord>, IngestError> {
    let request = ExportLogsServiceRequest::decode(body).map_err(|e| IngestError::Malformed {
        op: "decode otlp logs protobuf",
        reason: e.to_string(),
    })?;
    from_request(request, now_ns)
}

/// Decodes an OTLP/HTTP JSON body (`application/json`).
pub fn decode_json(body: &[u8], now_ns: i64) -> Result<Vec<LogRecord>, IngestError> {
    let request = json_compat::parse_request(body)?;
    from_request(request, now_ns)
}

/// Converts a decoded request (the gRPC path), taking its strings without copying them.
pub fn from_request(
    request: ExportLogsServiceRequest,
    now_ns: i64,
) -> Result<Vec<LogRecord>, IngestError> {
    let total = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    let mut records = Vec::with_capacity(total);
    for (ri, resource_logs) in request.resource_logs.into_iter().enumerate() {
        let mut resource = ResourceParts::new(resource_logs.resource).map_err(|reason| {
            IngestError::record(format!("otlp logs: resource {}", ri + 1), reason)
        })?;
        for (si, scope_logs) in resource_logs.scope_logs.into_iter().enumerate() {
            let at = |li: Option<usize>| match li {
                None => format!("otlp logs: resource {}, scope {}", ri + 1, si + 1),
                Some(li) => format!(
                    "otlp logs: resource {}, scope {}, record {}",
                    ri + 1,
                    si + 1,
                    li + 1
                ),
            };
            let mut scope_metadata = resource.metadata.clone();
            if let Some(scope) = scope_logs.scope.filter(|s| !s.name.is_empty()) {
                scope_metadata
                    .push_named(METADATA_SCOPE_NAME, &scope.name)
                    .map_err(|reason| IngestError::record(at(None), reason))?;
            }
            for (li, log) in scope_logs.log_records.into_iter().enumerate() {
                let record = convert_record(log, &mut resource, &scope_metadata, now_ns)
                    .map_err(|reason| IngestError::record(at(Some(li)), reason))?;
                records.push(record);
            }
        }
    }
    Ok(records)
}

/// What a resource gives each of its records: label pairs and metadata, plus the label set
/// for each level, built once.
struct ResourceParts {
    label_pairs: Vec<(String, String)>,
    metadata: Metadata,
    /// Labels by level: the index in [`LEVELS`], or `LEVELS.len()` for unknown.
    labels_by_level: [Option<Arc<Labels>>; LEVELS.len() + 1],
}

impl ResourceParts {
    fn new(resource: Option<Resource>) -> Result<Self, RecordError> {
        let attributes = resource.map(|r| r.attributes).unwrap_or_default();
        let mut service = None;
        let mut label_pairs = Vec::new();
        let mut metadata = Metadata::with_capacity(attributes.len(), 0);
        for kv in attributes {
            if kv.key == SERVICE_NAME_ATTRIBUTE {
                service = kv.value.and_then(any_value_text);
            } else if OTLP_RESOURCE_LABEL_ATTRIBUTES.contains(&kv.key.as_str()) {
                if let Some(text) = kv.value.and_then(any_value_text) {
                    label_pairs.push((sightline_model::labels::sanitize_label_name(&kv.key), text));
                }
            } else {
                push_attribute(&mut metadata, &kv.key, kv.value, 0)?;
            }
        }
        let service = service
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| SERVICE_UNKNOWN.to_string());
        label_pairs.push((LABEL_SERVICE.to_string(), service));
        // Validate once here, so a bad resource fails at its own position.
        build_labels(label_pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        Ok(Self {
            label_pairs,
            metadata,
            labels_by_level: Default::default(),
        })
    }

    /// The stream labels of a record at `level`.
    fn labels(&mut self, level: Option<&'static str>) -> Result<Arc<Labels>, RecordError> {
        let slot = level
            .and_then(|l| LEVELS.iter().position(|c| *c == l))
            .unwrap_or(LEVELS.len());
        if let Some(labels) = &self.labels_by_level[slot] {
            return Ok(labels.clone());
        }
        let level = level.unwrap_or(LEVEL_UNKNOWN);
        let pairs = self
            .label_pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([(LABEL_LEVEL, level)]);
        let labels = Arc::new(build_labels(pairs)?);
        self.labels_by_level[slot] = Some(labels.clone());
        Ok(labels)
    }
}

fn convert_record(
    log: OtlpLogRecord,
    resource: &mut ResourceParts,
    scope_metadata: &Metadata,
    now_ns: i64,
) -> Result<LogRecord, RecordError> {
    let timestamp_ns = record_timestamp_ns(&log, now_ns)?;
    let (level, keep_severity_text) = match level_from_severity_number(log.severity_number) {
        Some(level) => (Some(level), false),
        None => {
            let level = level_from_text(&log.severity_text);
            (level, level.is_none())
        }
    };
    let labels = resource.labels(level)?;

    let mut metadata = scope_metadata.clone();
    for kv in log.attributes {
        push_attribute(&mut metadata, &kv.key, kv.value, 0)?;
    }
    if !log.event_name.is_empty() {
        metadata.push_named(METADATA_EVENT_NAME, &log.event_name)?;
    }
    if log.trace_id.iter().any(|b| *b != 0) {
        metadata.push_named(METADATA_TRACE_ID, &hex::encode(&log.trace_id))?;
    }
    if log.span_id.iter().any(|b| *b != 0) {
        metadata.push_named(METADATA_SPAN_ID, &hex::encode(&log.span_id))?;
    }
    if keep_severity_text && !log.severity_text.is_empty() {
        metadata.push_named(METADATA_SEVERITY_TEXT, &log.severity_text)?;
    }

    let line = match log.body.and_then(|b| b.value) {
        Some(Value::StringValue(s)) => s,
        Some(other) => {
            any_value_text(opentelemetry_proto::tonic::common::v1::AnyValue { value: Some(other) })
                .unwrap_or_default()
        }
        None => String::new(),
    };
    check_line(&line)?;
    Ok(LogRecord {
        timestamp_ns,
        labels,
        line,
        metadata: metadata.into_pairs(),
    })
}

/// `time_unix_nano`, else `observed_time_unix_nano`, else `now_ns`.
fn record_timestamp_ns(log: &OtlpLogRecord, now_ns: i64) -> Result<i64, RecordError> {
    let ns = match (log.time_unix_nano, log.observed_time_unix_nano) {
        (0, 0) => return Ok(now_ns),
        (0, observed) => observed,
        (time, _) => time,
    };
    i64::try_from(ns).map_err(|_| RecordError::BadTimestamp {
        value: ns.to_string(),
        reason: "out of range",
    })
}
