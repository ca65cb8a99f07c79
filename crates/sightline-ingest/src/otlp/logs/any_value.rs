//! OTLP `AnyValue`s as text: for the line, label values and flattened metadata.
//!
//! Strings stay as they are; integers, doubles and booleans are written as JSON writes
//! them; bytes as standard base64 (as OTLP/JSON encodes them); arrays and kvlists as compact
//! JSON with fields in their original order. As metadata, kvlists are flattened with `_`
//! (`http: {method: GET}` → `http_method=GET`) down to [`FLATTEN_DEPTH_MAX`] levels, below
//! which the rest is kept as JSON text.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;

use crate::error::RecordError;
use crate::logs_common::{JsonValue, Metadata, format_f64};

/// Deepest kvlist nesting flattened into metadata names.
pub const FLATTEN_DEPTH_MAX: usize = 16;

/// The text of a value; `None` when it has none (unset, or a profiles-only string index).
pub fn any_value_text(value: AnyValue) -> Option<String> {
    match value.value? {
        Value::StringValue(s) => Some(s),
        Value::BoolValue(b) => Some(b.to_string()),
        Value::IntValue(n) => Some(n.to_string()),
        Value::DoubleValue(n) => Some(format_f64(n)),
        Value::BytesValue(b) => Some(base64_encode(&b)),
        v @ (Value::ArrayValue(_) | Value::KvlistValue(_)) => Some(to_json(&v).to_json_text()),
        Value::StringValueStrindex(_) => None,
    }
}

/// Adds an attribute to `metadata` under `path`, flattening kvlists.
pub fn push_attribute(
    metadata: &mut Metadata,
    path: &str,
    value: Option<AnyValue>,
    depth: usize,
) -> Result<(), RecordError> {
    match value.and_then(|v| v.value) {
        Some(Value::KvlistValue(list)) if depth < FLATTEN_DEPTH_MAX => {
            for kv in list.values {
                push_attribute(metadata, &format!("{path}.{}", kv.key), kv.value, depth + 1)?;
            }
            Ok(())
        }
        Some(v) => match any_value_text(AnyValue { value: Some(v) }) {
            Some(text) => metadata.push_field(path, &text),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

/// A value as a JSON tree borrowing its strings.
fn to_json(value: &Value) -> JsonValue<'_> {
    match value {
        Value::StringValue(s) => JsonValue::Str(Cow::Borrowed(s)),
        Value::BoolValue(b) => JsonValue::Bool(*b),
        Value::IntValue(n) => JsonValue::I64(*n),
        Value::DoubleValue(n) if n.is_finite() => JsonValue::F64(*n),
        Value::DoubleValue(n) => JsonValue::Str(Cow::Owned(format_f64(*n))),
        Value::BytesValue(b) => JsonValue::Str(Cow::Owned(base64_encode(b))),
        Value::ArrayValue(array) => {
            JsonValue::Array(array.values.iter().map(optional_to_json).collect())
        }
        Value::KvlistValue(list) => JsonValue::Object(
            list.values
                .iter()
                .map(|kv| {
                    (
                        Cow::Borrowed(kv.key.as_str()),
                        kv.value.as_ref().map_or(JsonValue::Null, optional_to_json),
                    )
                })
                .collect(),
        ),
        Value::StringValueStrindex(_) => JsonValue::Null,
    }
}

fn optional_to_json(value: &AnyValue) -> JsonValue<'_> {
    value.value.as_ref().map_or(JsonValue::Null, to_json)
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValue, KeyValueList};

    use super::*;

    fn av(v: Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    fn kv(key: &str, v: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(av(v)),
            key_strindex: 0,
        }
    }

    #[test]
    fn texts() {
        let check = |v: Value, want: &str| assert_eq!(any_value_text(av(v)).as_deref(), Some(want));
        check(Value::StringValue("s".into()), "s");
        check(Value::IntValue(-3), "-3");
        check(Value::DoubleValue(637.704), "637.704");
        check(Value::DoubleValue(f64::NAN), "NaN");
        check(Value::BoolValue(true), "true");
        check(Value::BytesValue(b"hello".to_vec()), "aGVsbG8=");
        check(
            Value::ArrayValue(ArrayValue {
                values: vec![
                    av(Value::StringValue("a".into())),
                    av(Value::IntValue(1)),
                    AnyValue { value: None },
                ],
            }),
            r#"["a",1,null]"#,
        );
        check(
            Value::KvlistValue(KeyValueList {
                values: vec![
                    kv("z", Value::BoolValue(false)),
                    kv("a", Value::DoubleValue(1.0)),
                ],
            }),
            r#"{"z":false,"a":1.0}"#,
        );
        assert_eq!(any_value_text(AnyValue { value: None }), None);
    }

    #[test]
    fn kvlists_flatten_into_metadata() {
        let mut m = Metadata::default();
        let nested = Value::KvlistValue(KeyValueList {
            values: vec![
                kv("method", Value::StringValue("GET".into())),
                kv(
                    "response",
                    Value::KvlistValue(KeyValueList {
                        values: vec![kv("status_code", Value::IntValue(200))],
                    }),
                ),
            ],
        });
        push_attribute(&mut m, "http", Some(av(nested)), 0).expect("within limits");
        push_attribute(&mut m, "unset", None, 0).expect("within limits");
        assert_eq!(
            m.into_pairs(),
            [("http_method", "GET"), ("http_response_status_code", "200")]
        );
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in vectors {
            assert_eq!(base64_encode(input.as_bytes()), want);
        }
    }
}
