//! Elasticsearch `_bulk` (`POST /_bulk`, `/{index}/_bulk`), as Filebeat, Logstash, Fluent Bit
//! and Vector send logs to Elasticsearch.
//!
//! The body is NDJSON of action lines, each `index` or `create` followed by its document
//! line. Documents are normalised like NDJSON log objects
//! ([`record_from_json_object`]), plus the
//! stream label `index` naming the target index (the action's `_index`, else the one in
//! the URL path).
//!
//! Like Elasticsearch, this answers per item: a document that does not parse or normalise, a
//! missing or invalid index name, and the unsupported `update` and `delete` (logs are
//! append-only) fail only their own item, with a status and an error type in
//! [`BulkItem`]; the other documents are ingested. Only a body that cannot be read as
//! action/document pairs (a bad action line, a missing document line, no actions at all)
//! fails the whole request, as Elasticsearch answers it with 400.
//!
//! [`bulk_response`] builds Elasticsearch's answer,
//! `{"took":N,"errors":bool,"items":[{"create":{"_index":"x","status":201,...}}]}`.

mod response;
#[cfg(test)]
mod tests;

use sightline_model::LogRecord;

use crate::error::{ErrorKind, IngestError, RecordError};
use crate::logs_common::{JsonValue, json_error_text, record_from_json_object};
use crate::ndjson::for_each_line;
pub use response::bulk_response;

/// The stream label holding the index name.
pub const LABEL_INDEX: &str = "index";

/// Longest index name, in bytes (Elasticsearch's limit).
pub const INDEX_NAME_BYTES_MAX: usize = 255;

/// A bulk action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkAction {
    Index,
    Create,
    Update,
    Delete,
}

impl BulkAction {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "index" => Self::Index,
            "create" => Self::Create,
            "update" => Self::Update,
            "delete" => Self::Delete,
            _ => return None,
        })
    }

    /// The action's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Index => "index",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }

    /// Whether a document line follows the action line.
    fn has_document(self) -> bool {
        !matches!(self, Self::Delete)
    }
}

/// Why one item failed, in Elasticsearch's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkItemError {
    /// Elasticsearch's error type, e.g. `document_parsing_exception`.
    pub error_type: &'static str,
    pub reason: String,
}

/// The outcome of one action, in request order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkItem {
    pub action: BulkAction,
    /// The target index, when one was named.
    pub index: Option<String>,
    /// The `_id` the action gave, if any.
    pub id: Option<String>,
    /// The HTTP status Elasticsearch would give the item: 201, or 400 for an error.
    pub status: u16,
    pub error: Option<BulkItemError>,
    /// The position of the item's record in [`BulkDecoded::records`], when it made one.
    pub record: Option<usize>,
}

/// A decoded bulk request: the records to store and the per-item outcomes to answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BulkDecoded {
    pub records: Vec<LogRecord>,
    pub items: Vec<BulkItem>,
}

impl BulkDecoded {
    /// Whether any item failed (the response's `errors`).
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|i| i.error.is_some())
    }
}

/// An action line waiting for its document line.
struct Pending {
    action: BulkAction,
    index: Option<String>,
    id: Option<String>,
    line_number: usize,
}

/// Decodes a bulk body. `default_index` is the index of the URL path (`/{index}/_bulk`);
/// `now_ns` is the timestamp of documents that carry none.
pub fn decode(
    body: &[u8],
    default_index: Option<&str>,
    now_ns: i64,
) -> Result<BulkDecoded, IngestError> {
    let mut out = BulkDecoded::default();
    let mut pending: Option<Pending> = None;
    for_each_line(body, |line_number, line| {
        let at = || format!("es bulk line {line_number}");
        match pending.take() {
            Some(p) => {
                let item = decode_document(p, line, default_index, now_ns, &mut out.records);
                out.items.push(item);
            }
            None => {
                let p = parse_action(line, line_number)
                    .map_err(|reason| IngestError::record(at(), reason))?;
                if p.action.has_document() {
                    pending = Some(p);
                } else {
                    out.items.push(unsupported(p));
                }
            }
        }
        Ok(())
    })?;
    if let Some(p) = pending {
        let reason =
            RecordError::Invalid(format!("{} action has no document line", p.action.as_str()));
        return Err(IngestError::record(
            format!("es bulk line {}", p.line_number),
            reason,
        ));
    }
    if out.items.is_empty() {
        return Err(IngestError::Malformed {
            op: "es bulk",
            reason: "request body is required".into(),
        });
    }
    Ok(out)
}

/// Parses an action line such as `{"create":{"_index":"logs","_id":"1"}}`.
fn parse_action(line: &[u8], line_number: usize) -> Result<Pending, RecordError> {
    let text = std::str::from_utf8(line).map_err(|e| RecordError::Utf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let value = JsonValue::parse(text).map_err(|e| RecordError::Json(json_error_text(&e, true)))?;
    let JsonValue::Object(fields) = &value else {
        return Err(RecordError::Invalid(format!(
            "expected an action object such as {{\"index\":{{}}}}, found {}",
            value.type_name()
        )));
    };
    let [(name, params)] = fields.as_slice() else {
        return Err(RecordError::Invalid(format!(
            "expected an action object with one key, found {} keys",
            fields.len()
        )));
    };
    let action = BulkAction::parse(name).ok_or_else(|| {
        RecordError::Invalid(format!(
            "unknown action {:?}, expected one of create, delete, index, update",
            crate::error::excerpt(name, 64)
        ))
    })?;
    if !matches!(params, JsonValue::Object(_) | JsonValue::Null) {
        return Err(RecordError::Invalid(format!(
            "{name} parameters must be an object, found {}",
            params.type_name()
        )));
    }
    let text_of = |key: &str| {
        params
            .get(key)
            .and_then(JsonValue::scalar_text)
            .map(|t| t.into_owned())
    };
    Ok(Pending {
        action,
        index: text_of("_index"),
        id: text_of("_id"),
        line_number,
    })
}

/// Decodes the document of an `index`, `create` or `update` action into one item (and, on
/// success, one record).
fn decode_document(
    p: Pending,
    line: &[u8],
    default_index: Option<&str>,
    now_ns: i64,
    records: &mut Vec<LogRecord>,
) -> BulkItem {
    let index = p.index.or_else(|| default_index.map(str::to_string));
    let mut item = BulkItem {
        action: p.action,
        index,
        id: p.id,
        status: 201,
        error: None,
        record: None,
    };
    if matches!(p.action, BulkAction::Update) {
        return unsupported_item(item);
    }
    let result = check_index_name(item.index.as_deref()).and_then(|index| {
        let text = std::str::from_utf8(line).map_err(|e| {
            item_error(&RecordError::Utf8 {
                valid_up_to: e.valid_up_to(),
            })
        })?;
        let value = JsonValue::parse(text)
            .map_err(|e| item_error(&RecordError::Json(json_error_text(&e, true))))?;
        record_from_json_object(text, &value, &[(LABEL_INDEX, index)], now_ns)
            .map_err(|e| item_error(&e))
    });
    match result {
        Ok(record) => {
            item.record = Some(records.len());
            records.push(record);
        }
        Err(error) => {
            item.status = 400;
            item.error = Some(error);
        }
    }
    item
}

/// The item of an unsupported action (`update`, `delete`).
fn unsupported(p: Pending) -> BulkItem {
    unsupported_item(BulkItem {
        action: p.action,
        index: p.index,
        id: p.id,
        status: 400,
        error: None,
        record: None,
    })
}

fn unsupported_item(mut item: BulkItem) -> BulkItem {
    item.status = 400;
    item.error = Some(BulkItemError {
        error_type: "action_request_validation_exception",
        reason: format!(
            "{} is not supported: sightline stores logs append-only",
            item.action.as_str()
        ),
    });
    item
}

fn item_error(e: &RecordError) -> BulkItemError {
    BulkItemError {
        error_type: match e.kind() {
            ErrorKind::BadData => "document_parsing_exception",
            ErrorKind::TooLarge => "illegal_argument_exception",
        },
        reason: e.to_string(),
    }
}

/// Checks an index name by Elasticsearch's rules: present, lowercase, at most
/// [`INDEX_NAME_BYTES_MAX`] bytes, not `.`/`..`, not starting with `-`, `_` or `+`, none of
/// `\ / * ? " < > | , #` or spaces.
fn check_index_name(index: Option<&str>) -> Result<&str, BulkItemError> {
    let invalid = |reason: String| BulkItemError {
        error_type: "invalid_index_name_exception",
        reason,
    };
    let Some(index) = index else {
        return Err(BulkItemError {
            error_type: "action_request_validation_exception",
            reason: "index is missing".into(),
        });
    };
    let quoted = crate::error::excerpt(index, 64);
    if index.is_empty() || index == "." || index == ".." {
        return Err(invalid(format!("invalid index name {quoted:?}")));
    }
    if index.len() > INDEX_NAME_BYTES_MAX {
        return Err(invalid(format!(
            "index name {quoted:?} is longer than {INDEX_NAME_BYTES_MAX} bytes"
        )));
    }
    if index.starts_with(['-', '_', '+']) {
        return Err(invalid(format!(
            "index name {quoted:?} must not start with '-', '_' or '+'"
        )));
    }
    if index.chars().any(|c| c.is_uppercase()) {
        return Err(invalid(format!("index name {quoted:?} must be lowercase")));
    }
    if index.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ',', '#', ' ', ':']) {
        return Err(invalid(format!(
            "index name {quoted:?} must not contain any of \\ / * ? \" < > | , # : or spaces"
        )));
    }
    Ok(index)
}
