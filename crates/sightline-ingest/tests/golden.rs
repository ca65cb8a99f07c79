//! Golden tests: real payloads under `tests/data/<protocol>/` decoded and compared with the
//! expected records in `<payload>.golden.json` beside them.
//!
//! After an intended change of the output, regenerate the goldens with
//! `SIGHTLINE_UPDATE_GOLDEN=1 cargo test -p sightline-ingest --test golden` and review the
//! diff like code. How the payloads were made is in `tests/data/README.md`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sightline_ingest::metrics_common::DecodedMetrics;
use sightline_ingest::{es_bulk, loki_push, ndjson, otlp, prom_text, remote_write};
use sightline_model::{LogRecord, is_stale_nan};

/// The `now_ns` every golden decodes with, so records without a timestamp are stable.
const NOW_NS: i64 = 1_700_000_000_000_000_000;

fn data_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(relative)
}

fn read(relative: &str) -> Vec<u8> {
    let path = data_path(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A record as the goldens show it: labels in their `{a="b"}` notation, metadata as
/// `name=value` strings in order.
fn record_json(r: &LogRecord) -> Value {
    let metadata: Vec<String> = r.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "timestamp_ns": r.timestamp_ns,
        "labels": r.labels.to_string(),
        "line": r.line,
        "metadata": metadata,
    })
}

fn records_json(records: &[LogRecord]) -> Value {
    Value::Array(records.iter().map(record_json).collect())
}

/// The `now` every metrics golden decodes with, in ms; 2024-01-15T10:31:00Z, a minute after
/// the fixtures' samples.
const NOW_MS: i64 = 1_705_314_660_000;

/// A sample value as the goldens show it: a number, or `NaN`, `StaleNaN`, `+Inf`, `-Inf`.
fn value_json(v: f64) -> Value {
    match v {
        v if is_stale_nan(v) => json!("StaleNaN"),
        v if v.is_nan() => json!("NaN"),
        v if v.is_infinite() => json!(if v > 0.0 { "+Inf" } else { "-Inf" }),
        v => json!(v),
    }
}

/// Series (labels in `{a="b"}` notation, samples as `[ms, value]`, exemplars) and metadata.
fn metrics_json(decoded: &DecodedMetrics) -> Value {
    let series: Vec<Value> = decoded
        .series
        .iter()
        .map(|s| {
            let mut one = json!({
                "labels": s.labels.to_string(),
                "samples": s.samples.iter().map(|x| json!([x.timestamp_ms, value_json(x.value)])).collect::<Vec<_>>(),
            });
            if !s.exemplars.is_empty() {
                one["exemplars"] = s
                    .exemplars
                    .iter()
                    .map(|e| json!({"labels": e.labels.to_string(), "value": value_json(e.value), "timestamp_ms": e.timestamp_ms}))
                    .collect();
            }
            one
        })
        .collect();
    let metadata: Vec<Value> = decoded
        .metadata
        .iter()
        .map(|m| json!({"family": m.metric_family, "type": m.metric_type.as_str(), "help": m.help, "unit": m.unit}))
        .collect();
    json!({"series": series, "metadata": metadata})
}

/// Compares `got` with the golden of `fixture`, or rewrites it when asked to.
fn check_golden(fixture: &str, got: &Value) {
    let path = data_path(&format!("{fixture}.golden.json"));
    let text = serde_json::to_string_pretty(got).expect("serialise golden") + "\n";
    if std::env::var_os("SIGHTLINE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e} (run with SIGHTLINE_UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert!(
        text == want,
        "{fixture} decodes differently from {}:\n{text}",
        path.display()
    );
}

#[test]
fn ndjson_python_service() {
    let fixture = "ndjson/python_service.ndjson";
    let records = ndjson::decode(&read(fixture), NOW_NS).expect("valid fixture");
    assert_eq!(records.len(), 5);
    check_golden(fixture, &records_json(&records));
}

#[test]
fn ndjson_mixed_loggers() {
    let fixture = "ndjson/mixed_loggers.ndjson";
    let records = ndjson::decode(&read(fixture), NOW_NS).expect("valid fixture");
    assert_eq!(records.len(), 10);
    check_golden(fixture, &records_json(&records));
}

#[test]
fn otlp_spec_example_json() {
    let fixture = "otlp/logs_spec_example.json";
    let records = otlp::logs::decode_json(&read(fixture), NOW_NS).expect("valid fixture");
    check_golden(fixture, &records_json(&records));
}

#[test]
fn otlp_python_sdk_protobuf() {
    let fixture = "otlp/python_sdk_logs.pb";
    let records = otlp::logs::decode_protobuf(&read(fixture), NOW_NS).expect("valid fixture");
    assert_eq!(records.len(), 6);
    check_golden(fixture, &records_json(&records));
}

/// Protobuf's generic JSON printer (enum names, base64 ids) decodes to the same records as
/// the protobuf it printed.
#[test]
fn otlp_python_sdk_protojson_matches_protobuf() {
    let from_json = otlp::logs::decode_json(&read("otlp/python_sdk_logs.protojson.json"), NOW_NS)
        .expect("repaired fixture");
    let from_protobuf =
        otlp::logs::decode_protobuf(&read("otlp/python_sdk_logs.pb"), NOW_NS).expect("valid");
    assert_eq!(from_json, from_protobuf);
}

#[test]
fn loki_push_json() {
    let fixture = "loki_push/push.json";
    let records = loki_push::decode_json(&read(fixture)).expect("valid fixture");
    check_golden(fixture, &records_json(&records));
}

#[test]
fn loki_push_protobuf() {
    let fixture = "loki_push/push.pb.snappy";
    let records = loki_push::decode_protobuf(&read(fixture)).expect("valid fixture");
    assert_eq!(records.len(), 3);
    check_golden(fixture, &records_json(&records));
}

#[test]
fn es_bulk_filebeat() {
    let fixture = "es_bulk/filebeat.ndjson";
    let decoded =
        es_bulk::decode(&read(fixture), Some("logs-default"), NOW_NS).expect("valid fixture");
    let got = json!({
        "records": records_json(&decoded.records),
        "response": es_bulk::bulk_response(&decoded.items, 0),
    });
    check_golden(fixture, &got);
}

#[test]
fn prom_text_python_client() {
    let fixture = "prom_text/python_client.prom";
    let decoded = prom_text::parse(&read(fixture), Some("text/plain; version=0.0.4"), NOW_MS)
        .expect("valid fixture");
    check_golden(fixture, &metrics_json(&decoded));
}

#[test]
fn prom_text_python_client_openmetrics() {
    let fixture = "prom_text/python_client.om.txt";
    let decoded = prom_text::parse(
        &read(fixture),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        NOW_MS,
    )
    .expect("valid fixture");
    check_golden(fixture, &metrics_json(&decoded));
}

/// The same registry in both formats: the same samples, except what only OpenMetrics has
/// (exemplars, info and stateset families) and the `_created` gauges only 0.0.4 keeps.
#[test]
fn prom_text_formats_agree() {
    let prom = prom_text::parse(&read("prom_text/python_client.prom"), None, NOW_MS)
        .expect("valid fixture");
    let om = prom_text::parse(&read("prom_text/python_client.om.txt"), None, NOW_MS)
        .expect("valid fixture");
    let key = |d: &DecodedMetrics| {
        let mut v: Vec<String> = d
            .series
            .iter()
            .filter(|s| {
                !s.labels
                    .get("__name__")
                    .is_some_and(|n| n.ends_with("_created"))
            })
            .map(|s| format!("{} {:?}", s.labels, s.samples))
            .collect();
        v.sort();
        v
    };
    let om_series = key(&om);
    for series in key(&prom) {
        assert!(om_series.contains(&series), "{series} only in 0.0.4");
    }
}

#[test]
fn prom_text_handwritten() {
    let fixture = "prom_text/handwritten.prom";
    let decoded = prom_text::parse(&read(fixture), None, NOW_MS).expect("valid fixture");
    check_golden(fixture, &metrics_json(&decoded));
}

#[test]
fn remote_write_request() {
    let fixture = "remote_write/write_request.pb.snappy";
    let decoded = remote_write::decode(
        &read(fixture),
        true,
        NOW_MS,
        remote_write::FUTURE_MS_MAX_DEFAULT,
        &Default::default(),
    )
    .expect("valid fixture");
    let mut got = metrics_json(&decoded.metrics);
    got["native_histogram_samples_skipped"] = json!(decoded.native_histogram_samples_skipped);
    got["exemplars_dropped"] = json!(decoded.exemplars_dropped);
    check_golden(fixture, &got);
}

fn otlp_metrics_json(decoded: &otlp::metrics::OtlpMetricsDecoded) -> Value {
    let mut got = metrics_json(&decoded.metrics);
    got["rejected_data_points"] = json!(decoded.rejected_data_points);
    got["error_message"] = json!(decoded.error_message);
    got
}

#[test]
fn otlp_python_sdk_metrics_protobuf() {
    let fixture = "otlp/python_sdk_metrics.pb";
    let decoded = otlp::metrics::decode_protobuf(&read(fixture)).expect("valid fixture");
    assert_eq!(decoded.rejected_data_points, 0, "{}", decoded.error_message);
    check_golden(fixture, &otlp_metrics_json(&decoded));
}

/// Protobuf's generic JSON printer (enum names, base64 ids, 64-bit integers as strings)
/// decodes to the same series as the protobuf it printed.
#[test]
fn otlp_python_sdk_metrics_protojson_matches_protobuf() {
    let from_json =
        otlp::metrics::decode_json(&read("otlp/python_sdk_metrics.protojson.json")).expect("valid");
    let from_protobuf =
        otlp::metrics::decode_protobuf(&read("otlp/python_sdk_metrics.pb")).expect("valid");
    assert_eq!(from_json, from_protobuf);
}

/// Delta sums and histograms are rejected with a reason; the gauge still lands.
#[test]
fn otlp_python_sdk_metrics_delta() {
    let fixture = "otlp/python_sdk_metrics_delta.pb";
    let decoded = otlp::metrics::decode_protobuf(&read(fixture)).expect("valid fixture");
    assert!(decoded.rejected_data_points > 0);
    check_golden(fixture, &otlp_metrics_json(&decoded));
}
