//! Generated records as an OTLP `ExportLogsServiceRequest`, as an OpenTelemetry SDK's
//! logging bridge would send them: one `ResourceLogs` per service (resource attribute
//! `service.name`), `severity_number` and `severity_text`, the message as a string body,
//! and the other fields as attributes (`code.*` and `exception.*` by the semantic
//! conventions, the application's own fields under their own names).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::generate::Record;
use crate::otlp::kv;

fn log_record(r: &Record) -> LogRecord {
    let mut attributes = vec![
        kv("code.namespace", Value::StringValue(r.module.to_string())),
        kv("code.function", Value::StringValue(r.function.to_string())),
        kv("code.lineno", Value::IntValue(i64::from(r.line))),
        kv("user_id", Value::IntValue(r.user_id as i64)),
        kv("ip_address", Value::StringValue(r.ip_address.clone())),
        kv("session_id", Value::StringValue(r.session_id.clone())),
        kv("request_id", Value::StringValue(r.request_id.clone())),
        kv(
            "duration_ms",
            Value::DoubleValue(r.duration_us as f64 / 1_000.0),
        ),
    ];
    if let Some(e) = &r.exception {
        attributes.push(kv(
            "exception.type",
            Value::StringValue(e.type_name.to_string()),
        ));
        attributes.push(kv(
            "exception.message",
            Value::StringValue(e.message.clone()),
        ));
        attributes.push(kv(
            "exception.stacktrace",
            Value::StringValue(e.traceback.clone()),
        ));
    }
    LogRecord {
        time_unix_nano: r.timestamp_ns as u64,
        severity_number: r.level.severity_number(),
        severity_text: r.level.text().to_string(),
        body: Some(AnyValue {
            value: Some(Value::StringValue(r.message.clone())),
        }),
        attributes,
        ..Default::default()
    }
}

/// One request holding `records`, grouped by service in order of first appearance.
pub fn export_request(records: &[Record]) -> ExportLogsServiceRequest {
    let mut resource_logs: Vec<(&str, Vec<LogRecord>)> = Vec::new();
    for r in records {
        let i = match resource_logs.iter().position(|(s, _)| *s == r.service) {
            Some(i) => i,
            None => {
                resource_logs.push((r.service, Vec::new()));
                resource_logs.len() - 1
            }
        };
        resource_logs[i].1.push(log_record(r));
    }
    ExportLogsServiceRequest {
        resource_logs: resource_logs
            .into_iter()
            .map(|(service, log_records)| ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", Value::StringValue(service.to_string()))],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}
