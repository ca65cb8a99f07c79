//! OTLP/JSON traces parsing, with the repairs of [`crate::otlp::logs::json_compat`] (nulls,
//! empty arrays and kvlists, keyless values, string doubles, base64 `traceId`/`spanId`) and
//! three of its own, for what protobuf JSON printers (Python's `MessageToJson`, for one)
//! write and `opentelemetry-proto`'s serde rejects:
//!
//! 1. `kind` and `status.code` as enum names (`"SPAN_KIND_SERVER"`, `"STATUS_CODE_ERROR"`),
//!    or as numbers in strings; an unknown name reads as 0 (unspecified, unset);
//! 2. `parentSpanId` (and ids of a length the common repair does not expect) in base64;
//! 3. an id that is neither hex nor base64: it becomes empty, so that span alone is
//!    rejected (`trace id is 0 bytes, want 16`) instead of the whole request.
//!
//! As for logs, the typed parse runs first and the repair only when it fails.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde_json::Value;

use crate::error::IngestError;
use crate::otlp::logs::json_compat::base64_decode;

const OP: &str = "decode otlp traces json";

/// Reads an enum's name as its number.
type EnumFromName = fn(&str) -> Option<i32>;

/// The id fields of spans and links.
const ID_FIELDS: &[&str] = &["traceId", "spanId", "parentSpanId"];

/// Parses an OTLP/JSON `ExportTraceServiceRequest`, repairing the variants listed above.
pub fn parse_request(body: &[u8]) -> Result<ExportTraceServiceRequest, IngestError> {
    let first_error = match serde_json::from_slice::<ExportTraceServiceRequest>(body) {
        Ok(request) => return Ok(request),
        Err(e) => e,
    };
    let malformed = || IngestError::Malformed {
        op: OP,
        reason: first_error.to_string(),
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return Err(malformed());
    };
    let repaired_common = crate::otlp::logs::json_compat::repair(&mut value);
    let repaired_traces = repair(&mut value);
    if !repaired_common && !repaired_traces {
        return Err(malformed());
    }
    serde_json::from_value(value).map_err(|_| malformed())
}

/// Repairs every object of the tree in place; whether anything changed.
pub fn repair(value: &mut Value) -> bool {
    let mut changed = false;
    match value {
        Value::Array(items) => {
            for item in items {
                changed |= repair(item);
            }
        }
        Value::Object(map) => {
            let enums: [(&str, EnumFromName); 2] = [
                ("kind", |n| SpanKind::from_str_name(n).map(|k| k as i32)),
                ("code", |n| StatusCode::from_str_name(n).map(|c| c as i32)),
            ];
            for (key, from_name) in enums {
                if let Some(Value::String(name)) = map.get(key) {
                    let number = from_name(name)
                        .or_else(|| name.parse::<i32>().ok())
                        .unwrap_or(0);
                    map.insert(key.into(), Value::from(number));
                    changed = true;
                }
            }
            for key in ID_FIELDS {
                if let Some(Value::String(text)) = map.get_mut(*key)
                    && hex::decode(text.as_str()).is_err()
                {
                    *text = base64_decode(text).map(hex::encode).unwrap_or_default();
                    changed = true;
                }
            }
            for v in map.values_mut() {
                changed |= repair(v);
            }
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(fields: &str) -> String {
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"{fields}}}]}}]}}]}}"#
        )
    }

    /// Each repair the module doc lists: the typed parse rejects the input, and
    /// [`parse_request`] reads what was meant.
    #[test]
    fn documented_deviations_fail_typed_and_are_repaired() {
        let check = |body: String, want: &dyn Fn(&ExportTraceServiceRequest) -> bool| {
            assert!(
                serde_json::from_str::<ExportTraceServiceRequest>(&body).is_err(),
                "typed parse accepts {body}"
            );
            let request = parse_request(body.as_bytes()).expect("repaired");
            assert!(want(&request), "repaired wrongly: {body}");
        };
        let first =
            |r: &ExportTraceServiceRequest| r.resource_spans[0].scope_spans[0].spans[0].clone();
        check(span(r#","kind":"SPAN_KIND_CLIENT""#), &|r| {
            first(r).kind == 3
        });
        check(span(r#","kind":"2""#), &|r| first(r).kind == 2);
        check(span(r#","kind":"SPAN_KIND_NEW""#), &|r| first(r).kind == 0);
        check(
            span(r#","status":{"code":"STATUS_CODE_ERROR","message":"m"}"#),
            &|r| first(r).status.is_some_and(|s| s.code == 2),
        );
        check(span(r#","parentSpanId":"7uGbfsPBsXQ=""#), &|r| {
            hex::encode(first(r).parent_span_id) == "eee19b7ec3c1b174"
        });
        check(span(r#","parentSpanId":"not an id!""#), &|r| {
            first(r).parent_span_id.is_empty()
        });
        check(
            span(r#","links":[{"traceId":"zz!","spanId":"eee19b7ec3c1b174"}]"#),
            &|r| first(r).links[0].trace_id.is_empty(),
        );
    }

    #[test]
    fn not_json_is_malformed() {
        let e = parse_request(b"{\"resourceSpans\":").expect_err("truncated");
        assert!(
            e.to_string().starts_with("decode otlp traces json: "),
            "{e}"
        );
    }
}
