//! One JSON log object to one [`LogRecord`], by the policy in [`crate::logs_common`].
//!
//! Used by NDJSON and Elasticsearch bulk documents. The object is walked once into leaves
//! (scalars and arrays, with dotted paths for nested objects); each leaf may play a role
//! (message, timestamp, level, service) or become metadata. Only the leaves of nested objects
//! allocate a path; a flat log line allocates nothing but the record it builds.

use std::borrow::Cow;
use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::HashMap;
use sightline_model::{Labels, LogRecord};

use super::fields::{Metadata, build_labels, canonical_id_name, check_line};
use super::json_value::JsonValue;
use super::level::normalize_level;
use super::timestamp::timestamp_from_json;
use super::{LABEL_LEVEL, LABEL_SERVICE, LEVEL_UNKNOWN, METADATA_SEVERITY_TEXT, SERVICE_UNKNOWN};
use crate::error::RecordError;

/// What a field can be, besides metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Message,
    Timestamp,
    Level,
    Service,
}

/// The role a field's dotted path plays and its rank (lower wins) among the names that can
/// play that role.
fn role_of(path: &str) -> Option<(Role, u8)> {
    Some(match path {
        "message" => (Role::Message, 0),
        "msg" => (Role::Message, 1),
        "timestamp" => (Role::Timestamp, 0),
        "time" => (Role::Timestamp, 1),
        "ts" => (Role::Timestamp, 2),
        "@timestamp" => (Role::Timestamp, 3),
        "level" => (Role::Level, 0),
        "severity" => (Role::Level, 1),
        "levelname" => (Role::Level, 2),
        "lvl" => (Role::Level, 3),
        "log.level" => (Role::Level, 4),
        "service" => (Role::Service, 0),
        "service.name" => (Role::Service, 1),
        "service_name" => (Role::Service, 2),
        _ => return None,
    })
}

/// Whether a value can play a role: timestamps and levels are strings or numbers, services
/// strings, messages anything but null. A field of the wrong type stays metadata.
fn fits_role(role: Role, value: &JsonValue<'_>) -> bool {
    match (role, value) {
        (_, JsonValue::Null) => false,
        (Role::Message, _) => true,
        (Role::Timestamp | Role::Level, v) => matches!(
            v,
            JsonValue::Str(_) | JsonValue::I64(_) | JsonValue::U64(_) | JsonValue::F64(_)
        ),
        (Role::Service, v) => matches!(v, JsonValue::Str(_)),
    }
}

/// A scalar or array of the object, with its dotted path.
struct Leaf<'v, 'a> {
    path: Cow<'v, str>,
    value: &'v JsonValue<'a>,
}

/// Appends the leaves of `fields` to `out`: nested objects are walked with `prefix.key`
/// paths, nulls are skipped.
fn collect_leaves<'v, 'a>(
    fields: &'v [(Cow<'a, str>, JsonValue<'a>)],
    prefix: Option<&str>,
    out: &mut Vec<Leaf<'v, 'a>>,
) {
    for (key, value) in fields {
        let path: Cow<'v, str> = match prefix {
            None => Cow::Borrowed(key.as_ref()),
            Some(p) => Cow::Owned(format!("{p}.{key}")),
        };
        match value {
            JsonValue::Null => {}
            JsonValue::Object(inner) => collect_leaves(inner, Some(&path), out),
            _ => out.push(Leaf { path, value }),
        }
    }
}

/// Normalises one JSON log object. `raw` is its original text (the line when the object has
/// no message); `extra_labels` are added to the stream labels (Elasticsearch's `index`);
/// `now_ns` is the timestamp when the object has none.
pub fn record_from_json_object(
    raw: &str,
    value: &JsonValue<'_>,
    extra_labels: &[(&str, &str)],
    now_ns: i64,
) -> Result<LogRecord, RecordError> {
    let JsonValue::Object(fields) = value else {
        return Err(RecordError::NotAnObject {
            found: value.type_name(),
        });
    };
    let mut leaves = Vec::with_capacity(fields.len());
    collect_leaves(fields, None, &mut leaves);

    // The chosen leaf and its rank, per role.
    let mut chosen: [Option<(usize, u8)>; 4] = [None; 4];
    for (i, leaf) in leaves.iter().enumerate() {
        if let Some((role, rank)) = role_of(&leaf.path)
            && fits_role(role, leaf.value)
        {
            let slot = &mut chosen[role as usize];
            if slot.is_none_or(|(_, best)| rank <= best) {
                *slot = Some((i, rank));
            }
        }
    }
    let leaf_of = |role: Role| chosen[role as usize].map(|(i, _)| &leaves[i]);

    let timestamp_ns = match leaf_of(Role::Timestamp) {
        Some(leaf) => timestamp_from_json(leaf.value)?,
        None => now_ns,
    };
    let (level, level_text) = match leaf_of(Role::Level) {
        Some(leaf) => normalize_level(leaf.value),
        None => (None, None),
    };
    let service = leaf_of(Role::Service)
        .and_then(|leaf| leaf.value.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(SERVICE_UNKNOWN);
    let base = [
        (LABEL_SERVICE, service),
        (LABEL_LEVEL, level.unwrap_or(LEVEL_UNKNOWN)),
    ];
    let labels = if extra_labels.is_empty() {
        recent_labels(&base)?
    } else {
        recent_labels(&[&base[..], extra_labels].concat())?
    };

    let message = leaf_of(Role::Message);
    let mut metadata = Metadata::with_capacity(leaves.len(), raw.len());
    let line = match message {
        Some(leaf) => {
            let consumed = |i: usize| chosen.iter().any(|c| c.is_some_and(|(j, _)| j == i));
            for (i, leaf) in leaves.iter().enumerate() {
                if consumed(i) {
                    continue;
                }
                if let Some(text) = leaf.value.text() {
                    metadata.push_field(&leaf.path, &text)?;
                }
            }
            if let Some(text) = level_text {
                metadata.push_named(METADATA_SEVERITY_TEXT, &text)?;
            }
            leaf.value.text().map(Cow::into_owned).unwrap_or_default()
        }
        None => {
            // The whole object is the line; only the ids the debugging view needs are copied.
            for leaf in &leaves {
                if let Some(name) = canonical_id_name(&leaf.path)
                    && let Some(text) = leaf.value.scalar_text()
                {
                    metadata.push_id(name, &text)?;
                }
            }
            raw.trim().to_string()
        }
    };
    check_line(&line)?;
    Ok(LogRecord {
        timestamp_ns,
        labels,
        line,
        metadata: metadata.into_pairs(),
    })
}

/// Label sets built lately on this thread, by the hash of the pairs they came from. Lines
/// of one body fall in few streams: a hit is an `Arc` clone instead of a validated, sorted
/// set of fresh strings. Bounded: cleared when full.
const RECENT_LABELS_MAX: usize = 4096;

thread_local! {
    static RECENT_LABELS: RefCell<HashMap<u64, Arc<Labels>>> = RefCell::new(HashMap::default());
}

/// The label set of `pairs` (as [`build_labels`] makes it), from [`RECENT_LABELS`] when it
/// is there. Only sets whose pairs are all distinct and non-empty are kept, so a hit is
/// checked by looking each pair up.
fn recent_labels(pairs: &[(&str, &str)]) -> Result<Arc<Labels>, RecordError> {
    let key = foldhash::fast::FixedState::with_seed(0).hash_one(pairs);
    let same =
        |l: &Labels| l.len() == pairs.len() && pairs.iter().all(|(k, v)| l.get(k) == Some(v));
    let hit = RECENT_LABELS.with_borrow(|m| m.get(&key).filter(|l| same(l)).cloned());
    if let Some(labels) = hit {
        return Ok(labels);
    }
    let labels = Arc::new(build_labels(pairs.iter().copied())?);
    if same(&labels) {
        RECENT_LABELS.with_borrow_mut(|m| {
            if m.len() >= RECENT_LABELS_MAX {
                m.clear();
            }
            m.insert(key, labels.clone());
        });
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_NS: i64 = 1_700_000_000_000_000_000;

    fn decode(text: &str) -> Result<LogRecord, RecordError> {
        let value = JsonValue::parse(text).expect("valid json");
        record_from_json_object(text, &value, &[], NOW_NS)
    }

    fn pairs(record: &LogRecord) -> Vec<(&str, &str)> {
        record.metadata.iter().collect()
    }

    #[test]
    fn python_logger_line() {
        let text = r#"{"timestamp": "2024-01-15T10:30:00.123456Z", "level": "INFO", "service": "api-service", "message": "User login successful", "module": "auth", "function": "login", "line": 42, "user_id": 12345, "ip_address": "192.168.1.1", "session_id": "abc-123", "request_id": "6f1c...uuid", "trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736", "exception": {"type": "ValueError", "message": "bad", "traceback": "Traceback (most recent call last):\n ..."}}"#;
        let r = decode(text).expect("valid record");
        assert_eq!(r.timestamp_ns, 1_705_314_600_123_456_000);
        assert_eq!(
            r.labels.to_string(),
            r#"{level="info", service="api-service"}"#
        );
        assert_eq!(r.line, "User login successful");
        assert_eq!(
            pairs(&r),
            [
                ("module", "auth"),
                ("function", "login"),
                ("line", "42"),
                ("user_id", "12345"),
                ("ip_address", "192.168.1.1"),
                ("session_id", "abc-123"),
                ("request_id", "6f1c...uuid"),
                ("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
                ("exception_type", "ValueError"),
                ("exception_message", "bad"),
                (
                    "exception_traceback",
                    "Traceback (most recent call last):\n ..."
                ),
            ]
        );
    }

    #[test]
    fn defaults_when_fields_are_absent() {
        let r = decode(r#"{"msg": "hi", "tags": ["a", 1], "ok": true, "none": null, "x.y": 1.5}"#)
            .expect("valid");
        assert_eq!(r.timestamp_ns, NOW_NS);
        assert_eq!(
            r.labels.to_string(),
            r#"{level="unknown", service="unknown_service"}"#
        );
        assert_eq!(r.line, "hi");
        assert_eq!(
            pairs(&r),
            [("tags", r#"["a",1]"#), ("ok", "true"), ("x_y", "1.5")]
        );
    }

    #[test]
    fn no_message_keeps_the_object_as_the_line() {
        let text = r#" {"ts": 1705314600, "lvl": "warning", "service.name": "web", "traceId": "ABC", "spanId": "DEF", "request_id": "r1", "user": "u"} "#;
        let r = decode(text).expect("valid");
        assert_eq!(r.line, text.trim());
        assert_eq!(r.timestamp_ns, 1_705_314_600_000_000_000);
        assert_eq!(r.labels.to_string(), r#"{level="warn", service="web"}"#);
        assert_eq!(
            pairs(&r),
            [
                ("trace_id", "abc"),
                ("span_id", "def"),
                ("request_id", "r1")
            ]
        );
    }

    #[test]
    fn ecs_nested_fields_and_role_precedence() {
        let text = r#"{"@timestamp": "2024-01-15T10:30:00Z", "log": {"level": "ERROR", "logger": "app"}, "service": {"name": "shop", "version": "1.2"}, "message": "boom", "msg": "other", "time": "2024-01-15T10:30:01Z"}"#;
        let r = decode(text).expect("valid");
        assert_eq!(
            r.timestamp_ns, 1_705_314_601_000_000_000,
            "time outranks @timestamp"
        );
        assert_eq!(r.labels.to_string(), r#"{level="error", service="shop"}"#);
        assert_eq!(r.line, "boom");
        assert_eq!(
            pairs(&r),
            [
                ("_timestamp", "2024-01-15T10:30:00Z"),
                ("log_logger", "app"),
                ("service_version", "1.2"),
                ("msg", "other")
            ]
        );
    }

    #[test]
    fn unrecognised_level_is_kept_as_severity_text() {
        let r = decode(r#"{"message": "m", "level": "LOUD"}"#).expect("valid");
        assert_eq!(r.labels.get("level"), Some("unknown"));
        assert_eq!(pairs(&r), [("severity_text", "LOUD")]);
        let r = decode(r#"{"message": "m", "level": 40}"#).expect("valid");
        assert_eq!(r.labels.get("level"), Some("warn"));
    }

    #[test]
    fn wrong_types_stay_metadata() {
        let r = decode(r#"{"message": 42, "service": 7, "time": true}"#).expect("valid");
        assert_eq!(r.line, "42");
        assert_eq!(r.labels.get("service"), Some("unknown_service"));
        assert_eq!(pairs(&r), [("service", "7"), ("time", "true")]);
    }

    #[test]
    fn errors() {
        let e = decode(r#"{"message": "m", "timestamp": "yesterday"}"#).expect_err("bad time");
        assert_eq!(
            e.to_string(),
            r#"timestamp "yesterday": expected RFC 3339 or epoch number"#
        );
        let e = decode("[1]").expect_err("not an object");
        assert_eq!(e.to_string(), "expected a json object, found an array");
        let big = format!(
            r#"{{"message": "{}"}}"#,
            "x".repeat(sightline_model::log::LOG_LINE_BYTES_MAX + 1)
        );
        assert!(matches!(decode(&big), Err(RecordError::LineTooLong { .. })));
    }

    #[test]
    fn repeated_keys_later_wins() {
        let r = decode(r#"{"message": "first", "level": "info", "message": "second", "level": "error", "a": 1, "a": 2}"#)
            .expect("valid");
        assert_eq!(r.line, "second");
        assert_eq!(r.labels.get("level"), Some("error"));
        assert_eq!(
            pairs(&r),
            [("message", "first"), ("level", "info"), ("a", "2")]
        );
    }

    #[test]
    fn extra_labels_are_added() {
        let text = r#"{"message": "m"}"#;
        let value = JsonValue::parse(text).expect("valid json");
        let r =
            record_from_json_object(text, &value, &[("index", "logs-app")], NOW_NS).expect("valid");
        assert_eq!(r.labels.get("index"), Some("logs-app"));
    }
}
