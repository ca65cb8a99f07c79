//! Unit tests of `_bulk` decoding: actions, per-item errors, whole-request errors, response.

use serde_json::json;

use super::*;

const NOW_NS: i64 = 1_700_000_000_000_000_000;

fn decode_str(body: &str, default_index: Option<&str>) -> Result<BulkDecoded, IngestError> {
    decode(body.as_bytes(), default_index, NOW_NS)
}

#[test]
fn index_and_create_make_records() {
    let body = concat!(
        "{\"index\":{\"_index\":\"app-logs\",\"_id\":\"1\"}}\n",
        "{\"@timestamp\":\"2024-01-15T10:30:00Z\",\"message\":\"hello\",\"log\":{\"level\":\"warn\"},\"service\":{\"name\":\"api\"},\"host\":{\"name\":\"h1\"}}\n",
        "{\"create\":{}}\n",
        "{\"msg\":\"from the url index\"}\n",
    );
    let decoded = decode_str(body, Some("default-idx")).expect("valid");
    assert!(!decoded.has_errors());
    assert_eq!(decoded.records.len(), 2);
    let r = &decoded.records[0];
    assert_eq!(
        r.labels.to_string(),
        r#"{index="app-logs", level="warn", service="api"}"#
    );
    assert_eq!(r.timestamp_ns, 1_705_314_600_000_000_000);
    assert_eq!(r.line, "hello");
    assert_eq!(r.metadata, [("host_name".to_string(), "h1".to_string())]);
    assert_eq!(decoded.records[1].labels.get("index"), Some("default-idx"));
    assert_eq!(decoded.records[1].timestamp_ns, NOW_NS);
    assert_eq!(decoded.items[0].id.as_deref(), Some("1"));
    assert_eq!(decoded.items[1].record, Some(1));
    assert_eq!(
        bulk_response(&decoded.items, 7),
        json!({"took": 7, "errors": false, "items": [
            {"index": {"_index": "app-logs", "_id": "1", "status": 201, "result": "created", "_version": 1}},
            {"create": {"_index": "default-idx", "status": 201, "result": "created", "_version": 1}},
        ]})
    );
}

#[test]
fn bad_items_fail_alone() {
    let body = concat!(
        "{\"delete\":{\"_index\":\"x\",\"_id\":\"1\"}}\n",
        "{\"update\":{\"_index\":\"x\",\"_id\":\"2\"}}\n",
        "{\"doc\":{\"a\":1}}\n",
        "{\"index\":{}}\n",
        "{\"message\":\"no index\"}\n",
        "{\"index\":{\"_index\":\"Upper\"}}\n",
        "{\"message\":\"bad index\"}\n",
        "{\"index\":{\"_index\":\"x\"}}\n",
        "not json\n",
        "{\"index\":{\"_index\":\"x\"}}\n",
        "{\"message\":\"m\",\"time\":\"noon\"}\n",
        "{\"index\":{\"_index\":\"x\"}}\n",
        "{\"message\":\"good\"}\n",
    );
    let decoded = decode_str(body, None).expect("per-item errors only");
    assert!(decoded.has_errors());
    assert_eq!(decoded.records.len(), 1);
    assert_eq!(decoded.records[0].line, "good");
    let summary: Vec<(u16, Option<&str>)> = decoded
        .items
        .iter()
        .map(|i| (i.status, i.error.as_ref().map(|e| e.error_type)))
        .collect();
    assert_eq!(
        summary,
        [
            (400, Some("action_request_validation_exception")),
            (400, Some("action_request_validation_exception")),
            (400, Some("action_request_validation_exception")),
            (400, Some("invalid_index_name_exception")),
            (400, Some("document_parsing_exception")),
            (400, Some("document_parsing_exception")),
            (201, None),
        ]
    );
    let reasons: Vec<&str> = decoded
        .items
        .iter()
        .filter_map(|i| i.error.as_ref())
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(
        reasons,
        [
            "delete is not supported: sightline stores logs append-only",
            "update is not supported: sightline stores logs append-only",
            "index is missing",
            "index name \"Upper\" must be lowercase",
            "expected ident at column 2",
            "timestamp \"noon\": expected RFC 3339 or epoch number",
        ]
    );
    let response = bulk_response(&decoded.items, 1);
    assert_eq!(response["errors"], json!(true));
    assert_eq!(
        response["items"][0],
        json!({"delete": {"_index": "x", "_id": "1", "status": 400, "error": {
            "type": "action_request_validation_exception",
            "reason": "delete is not supported: sightline stores logs append-only"}}})
    );
}

#[test]
fn malformed_bodies_fail_whole() {
    let error = |body: &str| {
        decode_str(body, Some("x"))
            .expect_err("should fail")
            .to_string()
    };
    assert_eq!(error(""), "es bulk: request body is required");
    assert_eq!(error("\n\n"), "es bulk: request body is required");
    assert_eq!(
        error("{\"index\":{}}\n"),
        "es bulk line 1: index action has no document line"
    );
    assert_eq!(
        error("{\"index\":{}}\n{}\n{\"upsert\":{}}\n{}\n"),
        "es bulk line 3: unknown action \"upsert\", expected one of create, delete, index, update"
    );
    assert_eq!(
        error("nope\n"),
        "es bulk line 1: expected ident at column 2"
    );
    assert_eq!(
        error("{\"index\":{},\"create\":{}}\n{}\n"),
        "es bulk line 1: expected an action object with one key, found 2 keys"
    );
    assert_eq!(
        error("[1]\n"),
        "es bulk line 1: expected an action object such as {\"index\":{}}, found an array"
    );
    assert_eq!(
        error("{\"index\":5}\n{}\n"),
        "es bulk line 1: index parameters must be an object, found a number"
    );
}

#[test]
fn index_name_rules() {
    let check =
        |name: &str, ok: bool| assert_eq!(check_index_name(Some(name)).is_ok(), ok, "{name:?}");
    check("logs-2024.01.15", true);
    check("filebeat-8.12.0", true);
    check(".ds-logs", true);
    check("", false);
    check("..", false);
    check("_x", false);
    check("a b", false);
    check("a/b", false);
    check("Logs", false);
    check(&"a".repeat(INDEX_NAME_BYTES_MAX + 1), false);
}
