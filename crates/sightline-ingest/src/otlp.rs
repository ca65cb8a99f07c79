//! OTLP, the OpenTelemetry protocol: its HTTP bodies (protobuf and JSON) and the messages
//! the gRPC service receives, decoded with `opentelemetry-proto`'s generated types.
//!
//! Only logs live here so far; metrics and traces get sibling modules of the same shape.

pub mod logs;
