//! OTLP/JSON parsing, and repairs where `opentelemetry-proto`'s serde differs from the spec.
//!
//! `opentelemetry-proto` (with `with-serde`) reads what the spec's exporters write: camelCase
//! names, hex trace and span ids, `intValue` and the `*UnixNano` fields as strings or
//! numbers, integer enums, unknown fields ignored. Checked against the spec, it rejects:
//!
//! 1. `"arrayValue": {}` and `"kvlistValue": {}`: an empty array or kvlist as protobuf's JSON
//!    mapping writes it (it omits empty repeated fields), because `ArrayValue` and
//!    `KeyValueList` lack `#[serde(default)]`;
//! 2. `null` for any field, which the protobuf JSON mapping reads as the default value;
//! 3. a `KeyValue` without `key` (the default, empty key);
//! 4. `"doubleValue": "NaN"` (and `"Infinity"`, `"-Infinity"`, numeric strings), the JSON
//!    mapping's spelling of doubles JSON numbers cannot hold;
//! 5. `severityNumber` as an enum name (`"SEVERITY_NUMBER_INFO"`), which the spec forbids but
//!    protobuf JSON printers (Python's `MessageToJson`, for one) write by default;
//! 6. `traceId`/`spanId` in base64, the JSON mapping's default for bytes, which the spec
//!    forbids but generic protobuf JSON printers write.
//!
//! The fast path is the typed parse. Only when it fails is the body parsed as a
//! `serde_json::Value`, repaired and parsed again; if nothing needed repair, or the repaired
//! body still fails, the first error is reported. Field names in snake_case are not
//! repaired: the spec says to ignore unknown fields, and the typed parse does.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::SeverityNumber;
use serde_json::Value;

use crate::error::IngestError;

const OP: &str = "decode otlp logs json";

/// Parses an OTLP/JSON `ExportLogsServiceRequest`, repairing the variants listed above.
pub fn parse_request(body: &[u8]) -> Result<ExportLogsServiceRequest, IngestError> {
    let first_error = match serde_json::from_slice::<ExportLogsServiceRequest>(body) {
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
    if !repair(&mut value) {
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
            let before = map.len();
            map.retain(|_, v| !v.is_null());
            changed |= map.len() != before;
            for key in ["arrayValue", "kvlistValue"] {
                if let Some(Value::Object(inner)) = map.get_mut(key)
                    && !inner.contains_key("values")
                {
                    inner.insert("values".into(), Value::Array(vec![]));
                    changed = true;
                }
            }
            if map.contains_key("value") && !map.contains_key("key") {
                map.insert("key".into(), Value::String(String::new()));
                changed = true;
            }
            if let Some(Value::String(text)) = map.get("doubleValue") {
                let replacement = match text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    Some(n) => ("doubleValue", Value::Number(n)),
                    // NaN and the infinities have no JSON number: keep their name as text.
                    None => ("stringValue", Value::String(text.clone())),
                };
                map.remove("doubleValue");
                map.insert(replacement.0.into(), replacement.1);
                changed = true;
            }
            if let Some(Value::String(name)) = map.get("severityNumber") {
                let number = SeverityNumber::from_str_name(name)
                    .map(|s| s as i32)
                    .or_else(|| name.parse::<i32>().ok())
                    .unwrap_or(0);
                map.insert("severityNumber".into(), Value::from(number));
                changed = true;
            }
            for (key, len) in [("traceId", 16), ("spanId", 8)] {
                if let Some(Value::String(text)) = map.get_mut(key)
                    && hex::decode(text.as_str()).is_err()
                    && let Some(bytes) = base64_decode(text).filter(|b| b.len() == len)
                {
                    *text = hex::encode(bytes);
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

/// Decodes standard or URL-safe base64, padded or not; `None` if `text` is not base64.
/// (Shared by the traces JSON repair.)
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes() {
        assert_eq!(base64_decode("Zm9vYmE=").as_deref(), Some(&b"fooba"[..]));
        assert_eq!(base64_decode("Zm9vYmFy").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(
            base64_decode("W47/95gDgQPSabYzgT/GDA==")
                .map(hex::encode)
                .as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(base64_decode("not base64!"), None);
    }

    /// Each deviation the module doc lists: the typed parse rejects it (if a new
    /// `opentelemetry-proto` accepts one, this says the doc and the repair can shrink) and
    /// [`parse_request`] accepts it.
    #[test]
    fn documented_deviations_fail_typed_and_are_repaired() {
        let rec =
            |r: &str| format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{r}]}}]}}]}}"#);
        let cases = [
            rec(r#"{"attributes":[{"key":"a","value":{"arrayValue":{}}}]}"#),
            rec(r#"{"body":{"kvlistValue":{}}}"#),
            rec(r#"{"attributes":null}"#),
            r#"{"resourceLogs":[{"scopeLogs":null}]}"#.to_string(),
            rec(r#"{"severityText":null}"#),
            rec(r#"{"timeUnixNano":null}"#),
            rec(r#"{"attributes":[{"value":{"stringValue":"x"}}]}"#),
            rec(r#"{"attributes":[{"key":"a","value":{"doubleValue":"NaN"}}]}"#),
            rec(r#"{"attributes":[{"key":"a","value":{"doubleValue":"1.5"}}]}"#),
            rec(r#"{"severityNumber":"SEVERITY_NUMBER_INFO"}"#),
            rec(r#"{"traceId":"W47/95gDgQPSabYzgT/GDA==","spanId":"7uGbfsPBsXQ="}"#),
        ];
        for body in cases {
            assert!(
                serde_json::from_str::<ExportLogsServiceRequest>(&body).is_err(),
                "typed parse accepts {body}"
            );
            assert!(
                parse_request(body.as_bytes()).is_ok(),
                "not repaired: {body}"
            );
        }
    }

    /// What the spec asks of receivers and the typed parse already does.
    #[test]
    fn spec_variants_parse_typed() {
        let rec =
            |r: &str| format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{r}]}}]}}]}}"#);
        let cases = [
            rec(
                r#"{"timeUnixNano":"1544712660300000000","observedTimeUnixNano":1544712660300000000}"#,
            ),
            rec(
                r#"{"attributes":[{"key":"a","value":{"intValue":"10"}},{"key":"b","value":{"intValue":10}}]}"#,
            ),
            rec(r#"{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174"}"#),
            rec(r#"{"severityNumber":9,"flags":1,"droppedAttributesCount":2,"eventName":"e"}"#),
            rec(r#"{"futureField":{"nested":[1]},"body":{"bytesValue":"aGVsbG8="}}"#),
            r#"{"resourceLogs":[{"resource":null}]}"#.to_string(),
        ];
        for body in cases {
            assert!(
                serde_json::from_str::<ExportLogsServiceRequest>(&body).is_ok(),
                "typed parse rejects {body}"
            );
        }
    }

    #[test]
    fn repairs_nothing_in_spec_json() {
        let mut v: Value = serde_json::from_str(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":9,"body":{"stringValue":"x"}}]}]}]}"#)
            .expect("valid json");
        assert!(!repair(&mut v));
    }
}
