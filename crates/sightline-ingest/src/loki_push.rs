//! Loki's push API (`POST /loki/api/v1/push`): JSON, and snappy-compressed protobuf.
//!
//! Both carry streams, each a label set and its entries (timestamp, line, optional
//! structured metadata). Unlike the other formats, Loki's labels are kept as given: the
//! client chose them, and Loki users query by them. They are only validated (names
//! `[a-zA-Z_][a-zA-Z0-9_]*`, at least one label, the size limits of
//! [`crate::logs_common`]). Metadata names are sanitised, values kept as given.
//!
//! - JSON: `{"streams":[{"stream":{"app":"api"},"values":[["<ns>","line",{"k":"v"}]]}]}`;
//!   the timestamp is a string (or integer) of epoch nanoseconds, the metadata object
//!   optional, its scalar values taken as text.
//! - Protobuf: a `logproto.PushRequest` ([`proto`]) compressed as one snappy block, at most
//!   [`LOKI_PUSH_DECOMPRESSED_BYTES_MAX`] once decompressed; labels as a string such as
//!   `{app="api"}` ([`label_string`]).
//!
//! Errors name the stream and entry, counting from 1:
//! `loki push: stream 2: bad label string "{a=}": expected a quoted value at offset 3`.

pub mod label_string;
pub mod proto;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use prost::Message;
use sightline_model::labels::sanitize_label_name;
use sightline_model::{Labels, LogRecord};

use crate::compression::decompress_snappy_block;
use crate::error::{IngestError, RecordError, excerpt};
use crate::logs_common::{JsonValue, Metadata, build_labels, check_line, json_error_text};
use label_string::parse_label_string;
use proto::PushRequest;

/// Largest decompressed protobuf push.
pub const LOKI_PUSH_DECOMPRESSED_BYTES_MAX: usize = 64 * 1024 * 1024;

const OP: &str = "loki push";

/// Decodes a JSON push body.
pub fn decode_json(body: &[u8]) -> Result<Vec<LogRecord>, IngestError> {
    let malformed = |reason: String| IngestError::Malformed {
        op: "loki push: json",
        reason,
    };
    let text = std::str::from_utf8(body)
        .map_err(|e| malformed(format!("invalid utf-8 at byte {}", e.valid_up_to())))?;
    let root = JsonValue::parse(text).map_err(|e| malformed(json_error_text(&e, false)))?;
    if !matches!(root, JsonValue::Object(_)) {
        return Err(malformed(format!(
            "expected an object with \"streams\", found {}",
            root.type_name()
        )));
    }
    let streams = match root.get("streams") {
        None | Some(JsonValue::Null) => return Ok(vec![]),
        Some(JsonValue::Array(streams)) => streams,
        Some(other) => {
            return Err(malformed(format!(
                "\"streams\" must be an array, found {}",
                other.type_name()
            )));
        }
    };
    let mut records = Vec::new();
    for (si, stream) in streams.iter().enumerate() {
        let at = || format!("{OP}: stream {}", si + 1);
        let labels =
            json_stream_labels(stream).map_err(|reason| IngestError::record(at(), reason))?;
        let values = match stream.get("values") {
            None | Some(JsonValue::Null) => continue,
            Some(JsonValue::Array(values)) => values,
            Some(other) => {
                let reason = RecordError::Invalid(format!(
                    "\"values\" must be an array, found {}",
                    other.type_name()
                ));
                return Err(IngestError::record(at(), reason));
            }
        };
        records.reserve(values.len());
        for (ei, entry) in values.iter().enumerate() {
            let record = json_entry(&labels, entry).map_err(|reason| {
                IngestError::record(format!("{OP}: stream {}, entry {}", si + 1, ei + 1), reason)
            })?;
            records.push(record);
        }
    }
    Ok(records)
}

/// Decodes a protobuf push body: a snappy block holding a `PushRequest`.
pub fn decode_protobuf(body: &[u8]) -> Result<Vec<LogRecord>, IngestError> {
    let raw = decompress_snappy_block(body, LOKI_PUSH_DECOMPRESSED_BYTES_MAX, OP)?;
    let push = PushRequest::decode(raw.as_slice()).map_err(|e| IngestError::Malformed {
        op: "loki push: protobuf",
        reason: e.to_string(),
    })?;
    let total = push.streams.iter().map(|s| s.entries.len()).sum();
    let mut records = Vec::with_capacity(total);
    for (si, stream) in push.streams.into_iter().enumerate() {
        let labels = proto_stream_labels(&stream.labels)
            .map_err(|reason| IngestError::record(format!("{OP}: stream {}", si + 1), reason))?;
        for (ei, entry) in stream.entries.into_iter().enumerate() {
            let at = || format!("{OP}: stream {}, entry {}", si + 1, ei + 1);
            let ts = entry.timestamp.unwrap_or_default();
            let timestamp_ns = ts.to_ns().ok_or_else(|| {
                let value = format!("{}s {}ns", ts.seconds, ts.nanos);
                IngestError::record(
                    at(),
                    RecordError::BadTimestamp {
                        value,
                        reason: "out of range",
                    },
                )
            })?;
            let metadata = entry
                .structured_metadata
                .into_iter()
                .map(|p| (p.name, p.value));
            let record = entry_record(&labels, timestamp_ns, entry.line, metadata)
                .map_err(|reason| IngestError::record(at(), reason))?;
            records.push(record);
        }
    }
    Ok(records)
}

/// The labels of a protobuf stream, from its label string.
fn proto_stream_labels(text: &str) -> Result<Arc<Labels>, RecordError> {
    let pairs = parse_label_string(text).map_err(|reason| RecordError::BadLabelString {
        text: excerpt(text, 200),
        reason,
    })?;
    stream_labels(pairs)
}

/// The labels of a JSON stream, from its `stream` object of strings.
fn json_stream_labels(stream: &JsonValue<'_>) -> Result<Arc<Labels>, RecordError> {
    if !matches!(stream, JsonValue::Object(_)) {
        return Err(RecordError::Invalid(format!(
            "expected an object, found {}",
            stream.type_name()
        )));
    }
    let fields = match stream.get("stream") {
        None | Some(JsonValue::Null) => return Err(RecordError::NoLabels),
        Some(JsonValue::Object(fields)) => fields,
        Some(other) => {
            return Err(RecordError::Invalid(format!(
                "\"stream\" must be an object, found {}",
                other.type_name()
            )));
        }
    };
    let mut pairs = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        let JsonValue::Str(value) = value else {
            return Err(RecordError::Invalid(format!(
                "label {name:?} must be a string, found {}",
                value.type_name()
            )));
        };
        pairs.push((name.to_string(), value.to_string()));
    }
    stream_labels(pairs)
}

/// A stream's label set: valid names, at least one non-empty label.
fn stream_labels(pairs: Vec<(String, String)>) -> Result<Arc<Labels>, RecordError> {
    let labels = build_labels(pairs)?;
    if labels.is_empty() {
        return Err(RecordError::NoLabels);
    }
    Ok(Arc::new(labels))
}

/// One JSON entry: `[ts, line]` or `[ts, line, {metadata}]`.
fn json_entry(labels: &Arc<Labels>, entry: &JsonValue<'_>) -> Result<LogRecord, RecordError> {
    let shape = || {
        RecordError::Invalid("expected [timestamp, line] or [timestamp, line, {metadata}]".into())
    };
    let JsonValue::Array(items) = entry else {
        return Err(shape());
    };
    let (ts, line, metadata) = match items.as_slice() {
        [ts, line] => (ts, line, None),
        [ts, line, metadata] => (ts, line, Some(metadata)),
        _ => return Err(shape()),
    };
    let timestamp_ns = json_timestamp_ns(ts)?;
    let Some(line) = line.as_str() else {
        return Err(RecordError::Invalid(format!(
            "line must be a string, found {}",
            line.type_name()
        )));
    };
    let mut pairs = Vec::new();
    match metadata {
        None | Some(JsonValue::Null) => {}
        Some(JsonValue::Object(fields)) => {
            for (name, value) in fields {
                match value {
                    JsonValue::Null => {}
                    JsonValue::Array(_) | JsonValue::Object(_) => {
                        return Err(RecordError::Invalid(format!(
                            "structured metadata {name:?} must be a string, found {}",
                            value.type_name()
                        )));
                    }
                    scalar => pairs.push((
                        name.to_string(),
                        scalar.scalar_text().unwrap_or_default().into_owned(),
                    )),
                }
            }
        }
        Some(other) => {
            return Err(RecordError::Invalid(format!(
                "structured metadata must be an object, found {}",
                other.type_name()
            )));
        }
    }
    entry_record(labels, timestamp_ns, line.to_string(), pairs)
}

/// A JSON entry's timestamp: a string or integer of epoch nanoseconds.
fn json_timestamp_ns(ts: &JsonValue<'_>) -> Result<i64, RecordError> {
    let parsed = match ts {
        JsonValue::Str(s) => s.parse::<i64>().ok(),
        JsonValue::I64(n) => Some(*n),
        JsonValue::U64(n) => i64::try_from(*n).ok(),
        _ => None,
    };
    parsed.ok_or_else(|| RecordError::BadTimestamp {
        value: excerpt(&ts.text().unwrap_or_default(), 64),
        reason: "expected a string of epoch nanoseconds",
    })
}

/// A record of a stream, within the limits; metadata names sanitised.
fn entry_record<I>(
    labels: &Arc<Labels>,
    timestamp_ns: i64,
    line: String,
    metadata: I,
) -> Result<LogRecord, RecordError>
where
    I: IntoIterator<Item = (String, String)>,
{
    check_line(&line)?;
    let mut pairs = Metadata::default();
    for (name, value) in metadata {
        pairs.push_named(&sanitize_label_name(&name), &value)?;
    }
    Ok(LogRecord {
        timestamp_ns,
        labels: labels.clone(),
        line,
        metadata: pairs.into_pairs(),
    })
}
