//! OTLP/JSON metrics parsing, with the repairs of [`crate::otlp::logs::json_compat`] (nulls,
//! empty arrays and kvlists, base64 ids, string doubles in attributes) and two of its own,
//! for what protobuf JSON printers (Python's `MessageToJson`, for one) write and
//! `opentelemetry-proto`'s serde rejects or, inside the flattened `oneof`s of a metric's data
//! and a point's value, silently reads as no data or no value at all:
//!
//! 1. `aggregationTemporality` as an enum name (`"AGGREGATION_TEMPORALITY_CUMULATIVE"`);
//! 2. doubles written as numeric strings (`"asDouble": "1.5"`, and `sum`, `min`, `max`,
//!    `zeroThreshold`, `explicitBounds` items), the protobuf JSON mapping's other spelling.
//!
//! Not repairable: `"NaN"` and `"Infinity"` in those fields, as JSON numbers cannot hold them
//! and the generated types read only numbers there; such an `asDouble` point arrives without
//! a value and is rejected as such (summaries' `quantile` and `value` do accept them).
//!
//! As for logs, the typed parse runs first; the repair runs only when it fails or leaves a
//! metric without data or a number point without a value. What is still without data or
//! value after the repair is rejected by the conversion, not here.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use serde_json::Value;

use crate::error::IngestError;

const OP: &str = "decode otlp metrics json";

/// Fields holding doubles that the generated types read only as JSON numbers.
const DOUBLE_FIELDS: &[&str] = &["asDouble", "sum", "min", "max", "zeroThreshold"];

/// Parses an OTLP/JSON `ExportMetricsServiceRequest`, repairing the variants listed above.
pub fn parse_request(body: &[u8]) -> Result<ExportMetricsServiceRequest, IngestError> {
    let first_error = match serde_json::from_slice::<ExportMetricsServiceRequest>(body) {
        Ok(request) if !has_missing_parts(&request) => return Ok(request),
        Ok(request) => {
            // Perhaps string doubles read as nothing: repair and keep whichever is better.
            return Ok(repaired(body)
                .ok()
                .filter(|r| !has_missing_parts(r))
                .unwrap_or(request));
        }
        Err(e) => e,
    };
    repaired(body).map_err(|()| IngestError::Malformed {
        op: OP,
        reason: first_error.to_string(),
    })
}

/// The body parsed as a `Value`, repaired and parsed again; `Err` when it is not JSON,
/// nothing needed repair, or it still does not parse.
fn repaired(body: &[u8]) -> Result<ExportMetricsServiceRequest, ()> {
    let mut value = serde_json::from_slice::<Value>(body).map_err(|_| ())?;
    let repaired_common = crate::otlp::logs::json_compat::repair(&mut value);
    let repaired_metrics = repair(&mut value);
    if !repaired_common && !repaired_metrics {
        return Err(());
    }
    serde_json::from_value(value).map_err(|_| ())
}

/// Whether a metric has no data, or a gauge or sum point no value (and is not flagged as
/// having none): what the typed parse makes of a oneof it could not read.
fn has_missing_parts(request: &ExportMetricsServiceRequest) -> bool {
    let mut metrics = request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics);
    metrics.any(|m| {
        let points = match &m.data {
            None => return true,
            Some(Data::Gauge(g)) => &g.data_points,
            Some(Data::Sum(s)) => &s.data_points,
            Some(_) => return false,
        };
        points.iter().any(|p| p.value.is_none() && p.flags & 1 == 0)
    })
}

/// Applies this module's repairs to every object of the tree; whether anything changed.
pub fn repair(value: &mut Value) -> bool {
    let mut changed = false;
    match value {
        Value::Array(items) => {
            for item in items {
                changed |= repair(item);
            }
        }
        Value::Object(map) => {
            if let Some(Value::String(name)) = map.get("aggregationTemporality") {
                let number = AggregationTemporality::from_str_name(name)
                    .map(|t| t as i32)
                    .or_else(|| name.parse::<i32>().ok())
                    .unwrap_or(0);
                map.insert("aggregationTemporality".into(), Value::from(number));
                changed = true;
            }
            for field in DOUBLE_FIELDS {
                if let Some(slot) = map.get_mut(*field) {
                    changed |= number_from_string(slot);
                }
            }
            if let Some(Value::Array(bounds)) = map.get_mut("explicitBounds") {
                for bound in bounds {
                    changed |= number_from_string(bound);
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

/// Replaces a string holding a finite number with the number.
fn number_from_string(slot: &mut Value) -> bool {
    let Value::String(text) = slot else {
        return false;
    };
    match text
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        Some(n) => {
            *slot = Value::Number(n);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge(point: &str) -> String {
        format!(
            r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"g","gauge":{{"dataPoints":[{point}]}}}}]}}]}}]}}"#
        )
    }

    fn first_value(request: &ExportMetricsServiceRequest) -> Option<f64> {
        use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as V;
        match &request.resource_metrics[0].scope_metrics[0].metrics[0].data {
            Some(Data::Gauge(g)) => match g.data_points[0].value? {
                V::AsDouble(v) => Some(v),
                V::AsInt(v) => Some(v as f64),
            },
            _ => None,
        }
    }

    /// A string double is read as no value by the typed parse, and repaired.
    #[test]
    fn string_doubles_keep_their_value() {
        let body = gauge(r#"{"timeUnixNano":"1","asDouble":"1.5"}"#);
        let typed: ExportMetricsServiceRequest =
            serde_json::from_str(&body).expect("typed parse accepts it");
        assert_eq!(first_value(&typed), None);
        let repaired = parse_request(body.as_bytes()).expect("repaired");
        assert_eq!(first_value(&repaired), Some(1.5));
        // NaN cannot be repaired: the point stays without a value.
        let nan = parse_request(gauge(r#"{"timeUnixNano":"1","asDouble":"NaN"}"#).as_bytes())
            .expect("parses");
        assert_eq!(first_value(&nan), None);
    }

    /// Each deviation the module doc lists: the typed parse rejects it or loses the data, and
    /// [`parse_request`] keeps it.
    #[test]
    fn documented_deviations_fail_typed_and_are_repaired() {
        let cases = [
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"s","sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE","isMonotonic":true,"dataPoints":[]}}]}]}]}"#.to_string(),
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":{"aggregationTemporality":2,"dataPoints":[{"sum":"3","explicitBounds":["1","2"]}]}}]}]}]}"#.to_string(),
            gauge(r#"{"timeUnixNano":"1","asInt":"3","attributes":null}"#),
            gauge(r#"{"timeUnixNano":"1","asInt":"3","exemplars":[{"asDouble":1,"traceId":"W47/95gDgQPSabYzgT/GDA=="}]}"#),
        ];
        for body in cases {
            let typed = serde_json::from_str::<ExportMetricsServiceRequest>(&body);
            assert!(
                typed.as_ref().map_or(true, has_missing_parts),
                "typed parse accepts {body}"
            );
            let repaired = parse_request(body.as_bytes()).expect("repaired");
            assert!(!has_missing_parts(&repaired), "not repaired: {body}");
        }
    }

    #[test]
    fn what_stays_rejected() {
        for body in ["42", "{", r#"{"resourceMetrics":{}}"#] {
            let e = parse_request(body.as_bytes()).expect_err("rejected");
            assert!(
                e.to_string().starts_with("decode otlp metrics json: "),
                "{e}"
            );
        }
    }

    #[test]
    fn spec_variants_parse_typed() {
        let cases = [
            gauge(r#"{"timeUnixNano":"1544712660300000000","asDouble":1.5}"#),
            gauge(r#"{"timeUnixNano":1544712660300000000,"asInt":"10"}"#),
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"s","summary":{"dataPoints":[{"quantileValues":[{"quantile":0.5,"value":"NaN"}]}]}}]}]}]}"#.to_string(),
        ];
        for body in cases {
            assert!(
                serde_json::from_str::<ExportMetricsServiceRequest>(&body).is_ok(),
                "typed parse rejects {body}"
            );
        }
    }
}
