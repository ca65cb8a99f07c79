//! What a PromQL query returns, and its rendering as Prometheus' HTTP API renders it.
//!
//! Values are kept free of serde; [`to_prometheus_json`] builds the `data` object of
//! `/api/v1/query` and `/api/v1/query_range` answers: times as seconds (a JSON number with
//! millisecond precision), values as strings formatted by [`format_value`].

use serde_json::Value as Json;
use sightline_model::{Labels, Sample};

/// The result of a query.
#[derive(Clone, Debug, PartialEq)]
pub enum PromValue {
    Scalar {
        t_ms: i64,
        v: f64,
    },
    String {
        t_ms: i64,
        s: String,
    },
    /// An instant query's vector, in the order Prometheus returns it (which is only
    /// meaningful after `sort` or `sort_desc`).
    Vector(Vec<InstantSample>),
    /// A range query's result (every series sorted by labels), or an instant query of a range
    /// vector.
    Matrix(Vec<RangeSeries>),
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    pub labels: Labels,
    pub t_ms: i64,
    pub v: f64,
}

/// One series of a matrix; points ascend in time.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries {
    pub labels: Labels,
    pub points: Vec<Sample>,
}

/// Formats a sample value as Prometheus' API does: the shortest decimal that reads back as
/// `v` (Go's `strconv.FormatFloat` with precision -1), in plain notation unless `|v|` is
/// below 1e-6 or at least 1e21, which get Go's exponent notation (`1e+21`, `1.5e-07`), as
/// Prometheus' JSON encoder chooses; `+Inf`, `-Inf`, `NaN`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        return format_exponent(v);
    }
    format_plain(v)
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)` for finite `v`: the shortest round-trip
/// mantissa, the exponent with a sign and at least two digits (`1e+21`, `-1.5e-07`).
pub(crate) fn format_exponent(v: f64) -> String {
    // Rust's `{:e}` is the shortest round-trip mantissa.
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest round-trip decimal, never an
/// exponent (what `count_values` writes into its label).
pub(crate) fn format_plain(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        // Rust's `Display` for f64 is the shortest round-trip decimal without exponent.
        v.to_string()
    }
}

/// The `data` object of a Prometheus query answer, `{"resultType": …, "result": …}`, as
/// a JSON tree (for tests and callers that embed it): [`write_prometheus_json`]'s text,
/// parsed.
pub fn to_prometheus_json(value: &PromValue) -> Json {
    let mut out = Vec::new();
    write_prometheus_json(value, &mut out);
    serde_json::from_slice(&out).unwrap_or(Json::Null)
}

/// Writes the `data` object of a Prometheus query answer into `out` as JSON text, without
/// building it as a tree first: a thousand-series answer spent a tenth of its query's CPU
/// building and then serialising the tree. Times are seconds (a JSON number with
/// millisecond precision), values strings formatted by [`format_value`].
pub fn write_prometheus_json(value: &PromValue, out: &mut Vec<u8>) {
    match value {
        PromValue::Scalar { t_ms, v } => {
            out.extend_from_slice(br#"{"resultType":"scalar","result":"#);
            put_point(out, *t_ms, *v);
        }
        PromValue::String { t_ms, s } => {
            out.extend_from_slice(br#"{"resultType":"string","result":["#);
            put_time(out, *t_ms);
            out.push(b',');
            put_str(out, s);
            out.push(b']');
        }
        PromValue::Vector(samples) => {
            out.extend_from_slice(br#"{"resultType":"vector","result":"#);
            put_list(out, samples, |out, s| {
                out.extend_from_slice(br#"{"metric":"#);
                put_labels(out, &s.labels);
                out.extend_from_slice(br#","value":"#);
                put_point(out, s.t_ms, s.v);
                out.push(b'}');
            });
        }
        PromValue::Matrix(series) => {
            out.extend_from_slice(br#"{"resultType":"matrix","result":"#);
            put_list(out, series, |out, s| {
                out.extend_from_slice(br#"{"metric":"#);
                put_labels(out, &s.labels);
                out.extend_from_slice(br#","values":"#);
                put_list(out, &s.points, |out, p| {
                    put_point(out, p.timestamp_ms, p.value)
                });
                out.push(b'}');
            });
        }
    }
    out.push(b'}');
}

/// A JSON array of `items`, each written by `put`.
fn put_list<T>(out: &mut Vec<u8>, items: &[T], mut put: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put(out, item);
    }
    out.push(b']');
}

/// Writes JSON that serde_json writes (a string with its escapes, a number).
fn put_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    serde_json::to_writer(&mut *out, v).expect("serialising a string or a number into a Vec");
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_json(out, s);
}

fn put_time(out: &mut Vec<u8>, t_ms: i64) {
    put_json(out, &(t_ms as f64 / 1000.0));
}

fn put_point(out: &mut Vec<u8>, t_ms: i64, v: f64) {
    out.push(b'[');
    put_time(out, t_ms);
    out.push(b',');
    put_str(out, &format_value(v));
    out.push(b']');
}

fn put_labels(out: &mut Vec<u8>, labels: &Labels) {
    out.push(b'{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_str(out, k);
        out.push(b':');
        put_str(out, v);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_values_as_go_does() {
        let check = |v: f64, want: &str| assert_eq!(format_value(v), want, "{v:?}");
        check(1.0, "1");
        check(-0.0, "-0");
        check(0.1, "0.1");
        check(1.0 / 3.0, "0.3333333333333333");
        check(1e21, "1e+21");
        check(1e20, "100000000000000000000");
        check(1e-6, "0.000001");
        check(1e-7, "1e-07");
        check(-1.5e-7, "-1.5e-07");
        check(123456789012345678901234.0, "1.2345678901234569e+23");
        check(1.0000000000000006e308, "1.0000000000000006e+308");
        check(123456789.125, "123456789.125");
        check(f64::INFINITY, "+Inf");
        check(f64::NEG_INFINITY, "-Inf");
        check(f64::NAN, "NaN");
        check(f64::MAX, "1.7976931348623157e+308");
        check(5e-324, "5e-324");
        assert_eq!(format_plain(1e21), "1000000000000000000000");
        assert_eq!(format_plain(-1e-7), "-0.0000001");
        assert_eq!(format_plain(f64::INFINITY), "+Inf");
    }

    #[test]
    fn renders_prometheus_json() {
        let check = |v: PromValue, want: Json| assert_eq!(to_prometheus_json(&v), want);
        check(
            PromValue::Scalar { t_ms: 1500, v: 2.0 },
            json!({"resultType": "scalar", "result": [1.5, "2"]}),
        );
        check(
            PromValue::String {
                t_ms: 1000,
                s: "x".into(),
            },
            json!({"resultType": "string", "result": [1.0, "x"]}),
        );
        check(
            PromValue::Vector(vec![InstantSample {
                labels: Labels::from_pairs([("__name__", "up"), ("job", "a")]),
                t_ms: 1_435_781_451_781,
                v: f64::NAN,
            }]),
            json!({"resultType": "vector", "result": [
                {"metric": {"__name__": "up", "job": "a"}, "value": [1435781451.781, "NaN"]}
            ]}),
        );
        check(
            PromValue::Matrix(vec![RangeSeries {
                labels: Labels::default(),
                points: vec![
                    Sample {
                        timestamp_ms: 0,
                        value: 1.0,
                    },
                    Sample {
                        timestamp_ms: 60_000,
                        value: f64::INFINITY,
                    },
                ],
            }]),
            json!({"resultType": "matrix", "result": [
                {"metric": {}, "values": [[0.0, "1"], [60.0, "+Inf"]]}
            ]}),
        );
        // Escapes, several series, and no points.
        let odd = "say \"hi\"\\\n\u{1}é";
        check(
            PromValue::Matrix(vec![
                RangeSeries {
                    labels: Labels::from_pairs([("a", odd)]),
                    points: vec![],
                },
                RangeSeries {
                    labels: Labels::from_pairs([("b", "2")]),
                    points: vec![Sample {
                        timestamp_ms: -1500,
                        value: -0.0,
                    }],
                },
            ]),
            json!({"resultType": "matrix", "result": [
                {"metric": {"a": odd}, "values": []},
                {"metric": {"b": "2"}, "values": [[-1.5, "-0"]]}
            ]}),
        );
        check(
            PromValue::Vector(vec![]),
            json!({"resultType": "vector", "result": []}),
        );
    }
}
