//! OTLP, the OpenTelemetry protocol: its HTTP bodies (protobuf and JSON) and the messages
//! the gRPC service receives, decoded with `opentelemetry-proto`'s generated types.
//!
//! Logs and metrics live here so far; traces get a sibling module of the same shape.

pub mod logs;
pub mod metrics;
