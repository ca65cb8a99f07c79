//! Wire formats to Sightline records: every way a log line or a metric sample can arrive,
//! decoded, validated and normalised into [`sightline_model::LogRecord`]s and
//! [`sightline_model::SeriesSamples`].
//!
//! One module per wire format, each a pure function from bytes to records or a typed error:
//!
//! | module | format | entry points |
//! |---|---|---|
//! | [`ndjson`] | one JSON object a line, as structured loggers print | [`ndjson::decode`] |
//! | [`otlp::logs`] | OTLP logs, protobuf, JSON and gRPC | [`otlp::logs::decode_protobuf`], [`otlp::logs::decode_json`], [`otlp::logs::from_request`] |
//! | [`loki_push`] | Loki's push API, JSON and snappy protobuf | [`loki_push::decode_json`], [`loki_push::decode_protobuf`] |
//! | [`es_bulk`] | Elasticsearch `_bulk` | [`es_bulk::decode`], [`es_bulk::bulk_response`] |
//! | [`compression`] | `Content-Encoding` of any body | [`compression::decode_body`] |
//! | [`remote_write`] | Prometheus remote write 1.0, snappy protobuf | [`remote_write::decode`], [`remote_write::encode`] |
//! | [`prom_text`] | Prometheus text 0.0.4 and OpenMetrics 1.0 (import, scrape) | [`prom_text::parse`], [`prom_text::Parser`] |
//! | [`otlp::metrics`] | OTLP metrics, protobuf, JSON and gRPC | [`otlp::metrics::decode_protobuf`], [`otlp::metrics::decode_json`], [`otlp::metrics::from_request`] |
//! | [`otlp::traces`] | OTLP traces, protobuf, JSON and gRPC, to spans | [`otlp::traces::decode_protobuf`], [`otlp::traces::decode_json`], [`otlp::traces::from_request`] |
//! | [`zipkin`] | Zipkin v2 JSON spans | [`zipkin::decode_json`] |
//!
//! [`logs_common`] holds the one normalisation policy every decoder applies (which fields
//! become stream labels, the line, structured metadata and the timestamp), so a log line
//! carries the same labels whichever way it arrived; [`metrics_common`] holds the metrics
//! decoders' output ([`metrics_common::DecodedMetrics`]), limits and series checks.
//!
//! Invariants every decoder keeps, so the store re-checks none of them:
//! - no input panics a decoder; nothing from the wire is `unwrap`ped;
//! - every record has valid label names, at most [`LOG_STREAM_LABELS_MAX`] labels, a line of
//!   at most [`LOG_LINE_BYTES_MAX`] bytes and at most [`LOG_METADATA_PAIRS_MAX`] metadata
//!   pairs with valid, unique names;
//! - every series has a valid `__name__`, valid and unique label names and the limits of
//!   [`metrics_common`];
//! - every decompressed payload is bounded by a named limit, so a decompression bomb is a
//!   [`ErrorKind::TooLarge`] error, not an out-of-memory.
//!
//! The tenant is not decided here: the caller applies it to the records it gets back.
//!
//! [`LOG_STREAM_LABELS_MAX`]: sightline_model::log::LOG_STREAM_LABELS_MAX
//! [`LOG_LINE_BYTES_MAX`]: sightline_model::log::LOG_LINE_BYTES_MAX
//! [`LOG_METADATA_PAIRS_MAX`]: sightline_model::log::LOG_METADATA_PAIRS_MAX

pub mod compression;
pub mod error;
pub mod es_bulk;
pub mod logs_common;
pub mod loki_push;
pub mod metrics_common;
pub mod ndjson;
pub mod otlp;
pub mod prom_text;
pub mod protowire;
pub mod remote_write;
pub mod span_metrics;
pub mod zipkin;

pub use error::{ErrorKind, IngestError, RecordError};
