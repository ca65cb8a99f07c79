//! OTLP, the OpenTelemetry protocol: its HTTP bodies (protobuf and JSON) and the messages
//! the gRPC service receives, decoded with `opentelemetry-proto`'s generated types.
//!
//! One module per signal, each of the same shape: `decode_protobuf`, `decode_json`,
//! `from_request`.

pub mod logs;
pub mod metrics;
pub mod traces;
