//! Golden tests: real payloads under `tests/data/<protocol>/` decoded and compared with the
//! expected records in `<payload>.golden.json` beside them.
//!
//! After an intended change of the output, regenerate the goldens with
//! `SIGHTLINE_UPDATE_GOLDEN=1 cargo test -p sightline-ingest --test golden` and review the
//! diff like code. How the payloads were made is in `tests/data/README.md`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sightline_ingest::{es_bulk, loki_push, ndjson, otlp};
use sightline_model::LogRecord;

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
