//! A borrowed JSON tree: the parsed form of JSON log records, Loki JSON pushes and bulk lines.
//!
//! Why not `serde_json::Value`: its objects are sorted maps (losing the field order metadata
//! keeps) and every string is copied. [`JsonValue`] keeps fields in document order and
//! borrows every string that has no escape from the input, so decoding a typical log line
//! allocates only the tree's vectors. Duplicate keys are all kept; lookups take the last.
//!
//! Depth is bounded by serde_json's recursion limit (128), so walking a tree recursively
//! cannot overflow the stack.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A parsed JSON value borrowing from its input where it can.
#[derive(Clone, Debug, PartialEq)]
pub enum JsonValue<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'a, str>),
    Array(Vec<JsonValue<'a>>),
    /// Fields in document order, duplicates kept.
    Object(Vec<(Cow<'a, str>, JsonValue<'a>)>),
}

impl<'a> JsonValue<'a> {
    /// Parses one JSON document (surrounding whitespace allowed, nothing else).
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The JSON type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::I64(_) | Self::U64(_) | Self::F64(_) => "a number",
            Self::Str(_) => "a string",
            Self::Array(_) => "an array",
            Self::Object(_) => "an object",
        }
    }

    /// The value of `key` in an object (the last one if repeated).
    pub fn get(&self, key: &str) -> Option<&JsonValue<'a>> {
        match self {
            Self::Object(fields) => fields.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a scalar: strings as they are, numbers and booleans as JSON writes them;
    /// `None` for null, arrays and objects.
    pub fn scalar_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Self::Str(s) => Some(Cow::Borrowed(s)),
            Self::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Self::I64(n) => Some(Cow::Owned(n.to_string())),
            Self::U64(n) => Some(Cow::Owned(n.to_string())),
            Self::F64(n) => Some(Cow::Owned(format_f64(*n))),
            Self::Null | Self::Array(_) | Self::Object(_) => None,
        }
    }

    /// Compact JSON text.
    pub fn to_json_text(&self) -> String {
        // Serializing a tree of strings, numbers and containers into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The text of any non-null value: [`Self::scalar_text`] for scalars, compact JSON for
    /// arrays and objects.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Self::Null => None,
            Self::Array(_) | Self::Object(_) => Some(Cow::Owned(self.to_json_text())),
            _ => self.scalar_text(),
        }
    }

    /// Moves a borrowed string out as an owned one (copying only if borrowed).
    pub fn into_owned_string(self) -> Option<String> {
        match self {
            Self::Str(s) => Some(s.into_owned()),
            _ => None,
        }
    }
}

/// A float as serde_json writes it (shortest round-trip form: `1.5`, `3.0`, `1e+21`); `NaN` and the
/// infinities, which JSON cannot hold, by name.
pub fn format_f64(n: f64) -> String {
    match serde_json::Number::from_f64(n) {
        Some(num) => num.to_string(),
        None if n.is_nan() => "NaN".to_string(),
        None if n > 0.0 => "Infinity".to_string(),
        None => "-Infinity".to_string(),
    }
}

/// A serde_json error as text for one line of input: `expected value at column 1`, without
/// serde_json's `line 1` when the input is a single line.
pub fn json_error_text(e: &serde_json::Error, single_line: bool) -> String {
    let text = e.to_string();
    if single_line && e.line() == 1 {
        let suffix = format!(" at line 1 column {}", e.column());
        if let Some(head) = text.strip_suffix(&suffix) {
            return format!("{head} at column {}", e.column());
        }
    }
    text
}

/// A map key or string that borrows from the input when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = JsonValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(JsonValue::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(JsonValue::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(JsonValue::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(JsonValue::I64(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(JsonValue::U64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(JsonValue::F64(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(JsonValue::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(JsonValue::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(JsonValue::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element::<JsonValue<'de>>()? {
            items.push(item);
        }
        Ok(JsonValue::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16).min(64));
        while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
            let value = map.next_value::<JsonValue<'de>>()?;
            fields.push((key, value));
        }
        Ok(JsonValue::Object(fields))
    }
}

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => serializer.serialize_unit(),
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::I64(n) => serializer.serialize_i64(*n),
            Self::U64(n) => serializer.serialize_u64(*n),
            Self::F64(n) => serializer.serialize_f64(*n),
            Self::Str(s) => serializer.serialize_str(s),
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_duplicates_and_borrows() {
        let text = r#"{"b": 1, "a": "x", "b": 2.5, "e": "tab\tbed", "n": null, "arr": [1, "two", {"k": false}]}"#;
        let v = JsonValue::parse(text).expect("valid json");
        let JsonValue::Object(fields) = &v else {
            panic!("not an object: {v:?}");
        };
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "a", "b", "e", "n", "arr"]);
        assert!(matches!(&fields[1].1, JsonValue::Str(Cow::Borrowed("x"))));
        assert!(matches!(&fields[3].1, JsonValue::Str(Cow::Owned(s)) if s == "tab\tbed"));
        assert_eq!(v.get("b"), Some(&JsonValue::F64(2.5)));
        assert_eq!(
            v.get("arr").map(JsonValue::to_json_text).as_deref(),
            Some(r#"[1,"two",{"k":false}]"#)
        );
        assert_eq!(v.get("n").and_then(JsonValue::text), None);
    }

    #[test]
    fn scalar_text_matches_json() {
        let check = |json: &str, want: Option<&str>| {
            let v = JsonValue::parse(json).expect("valid json");
            assert_eq!(v.scalar_text().as_deref(), want, "{json}");
        };
        check("42", Some("42"));
        check("-7", Some("-7"));
        check("18446744073709551615", Some("18446744073709551615"));
        check("3.0", Some("3.0"));
        check("1e21", Some("1e+21"));
        check("0.1", Some("0.1"));
        check("true", Some("true"));
        check(r#""s""#, Some("s"));
        check("null", None);
        check("[]", None);
        assert_eq!(format_f64(f64::NAN), "NaN");
        assert_eq!(format_f64(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn error_text_drops_line_one() {
        let e = JsonValue::parse("  x").expect_err("invalid");
        assert_eq!(json_error_text(&e, true), "expected value at column 3");
        let e = JsonValue::parse("{\n x").expect_err("invalid");
        assert_eq!(
            json_error_text(&e, true),
            "key must be a string at line 2 column 2"
        );
    }
}
