//! The one normalisation policy for logs, applied by every decoder so all formats agree.
//!
//! A [`LogRecord`](sightline_model::LogRecord) is Loki-shaped; this module decides what of an
//! incoming log goes where:
//!
//! - **Stream labels** are few and low-cardinality: `service` and `level`, plus for OTLP
//!   the resource attributes in [`OTLP_RESOURCE_LABEL_ATTRIBUTES`] with sanitised names.
//!   `service` is [`SERVICE_UNKNOWN`] when absent (the OpenTelemetry convention); `level` is
//!   one of [`LEVELS`] ([`level`] maps the spellings and numbers), or [`LEVEL_UNKNOWN`] when
//!   absent or unrecognised, the original text then kept as metadata `severity_text`. Loki
//!   push keeps its labels as given. Ids (request_id, user_id, ip, …) are never labels.
//! - **The line** is the message, the OTLP body, the Loki line. A JSON log without a
//!   message keeps its whole original text as the line, and only `trace_id`, `span_id` and
//!   `request_id` are copied into metadata, so LogQL's `| json` recovers the rest without
//!   the store holding every field twice.
//! - **Structured metadata** is every other field: names sanitised with
//!   [`sanitize_label_name`](sightline_model::labels::sanitize_label_name) (`.` → `_`),
//!   nested objects flattened with `_` (`exception.type` → `exception_type`), arrays as
//!   compact JSON, numbers and booleans as text, nulls and empty strings dropped, a later
//!   duplicate name replacing an earlier one. `traceId`, `trace.id`, … are named `trace_id`
//!   (likewise `span_id`, `request_id`), and trace and span ids are lowercased.
//! - **The timestamp**, RFC 3339 (or the zone-less Python forms, read as UTC) or an epoch
//!   number whose unit is chosen by magnitude (see [`timestamp`]); absent, the `now_ns` the
//!   caller passes. One that does not parse fails the record, naming the value.
//!
//! In JSON logs (NDJSON, Elasticsearch documents) the fields playing a role are, best first:
//!
//! | role | fields | types |
//! |---|---|---|
//! | line | `message`, `msg` | any but null; non-strings as JSON text |
//! | timestamp | `timestamp`, `time`, `ts`, `@timestamp` | string or number |
//! | level | `level`, `severity`, `levelname`, `lvl`, `log.level` (ECS) | string or number |
//! | service | `service`, `service.name`, `service_name` | string |
//!
//! Names are matched exactly (case-sensitive) on the dotted path of nested objects, so
//! `{"log": {"level": "info"}}` (Elastic Common Schema) is the level field `log.level`. The
//! best field present with a fitting type plays the role (for a repeated key, its last
//! occurrence); the others stay metadata.
//!
//! Limits are checked here, once for all formats: [`LOG_LINE_BYTES_MAX`] for the line and each
//! metadata value, [`LOG_METADATA_PAIRS_MAX`] pairs, [`LOG_STREAM_LABELS_MAX`] labels,
//! [`LABEL_NAME_BYTES_MAX`] and [`LABEL_VALUE_BYTES_MAX`].
//!
//! [`LOG_LINE_BYTES_MAX`]: sightline_model::log::LOG_LINE_BYTES_MAX
//! [`LOG_METADATA_PAIRS_MAX`]: sightline_model::log::LOG_METADATA_PAIRS_MAX
//! [`LOG_STREAM_LABELS_MAX`]: sightline_model::log::LOG_STREAM_LABELS_MAX

pub mod fields;
pub mod json_record;
pub mod json_value;
pub mod level;
pub mod timestamp;

pub use fields::{Metadata, build_labels, check_line};
pub use json_record::record_from_json_object;
pub use json_value::{JsonValue, format_f64, json_error_text};
pub use level::{level_from_severity_number, level_from_text, normalize_level};
pub use timestamp::{timestamp_from_json, timestamp_from_str};

/// The `service` label when a log names no service (OpenTelemetry's convention).
pub const SERVICE_UNKNOWN: &str = "unknown_service";

/// The `level` label when a log has no level, or one that is not recognised.
pub const LEVEL_UNKNOWN: &str = "unknown";

/// The canonical levels, lowest first; the `level` label is one of these or [`LEVEL_UNKNOWN`].
pub const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "fatal"];

/// The stream label names every JSON and OTLP log gets.
pub const LABEL_SERVICE: &str = "service";
pub const LABEL_LEVEL: &str = "level";

/// OTLP resource attributes that become stream labels (with sanitised names, e.g.
/// `k8s_namespace_name`), besides `service.name` which becomes `service`. All are
/// low-cardinality: one value per deployment, not per pod or process.
pub const OTLP_RESOURCE_LABEL_ATTRIBUTES: &[&str] = &[
    "service.namespace",
    "deployment.environment",
    "deployment.environment.name",
    "k8s.namespace.name",
    "k8s.deployment.name",
    "k8s.cluster.name",
    "cloud.region",
];

/// Longest stream label or metadata name, in bytes (Loki's default).
pub const LABEL_NAME_BYTES_MAX: usize = 1024;

/// Longest stream label value, in bytes (Loki's default).
pub const LABEL_VALUE_BYTES_MAX: usize = 2048;

/// The metadata name an unrecognised level's original text is kept under (OpenTelemetry's
/// name for it), so `level="unknown"` loses nothing.
pub const METADATA_SEVERITY_TEXT: &str = "severity_text";
