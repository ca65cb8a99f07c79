use sightline_model::{SpanEvent, SpanLink, SpanStatus};

use super::*;

fn span(id: u8, parent: Option<u8>, service: &str) -> Span {
    Span {
        trace_id: [0xab; 16],
        span_id: [0, 0, 0, 0, 0, 0, 0, id],
        parent_span_id: parent.map(|p| [0, 0, 0, 0, 0, 0, 0, p]),
        trace_state: String::new(),
        name: format!("op{id}"),
        kind: SpanKind::Unspecified,
        start_ns: 1_700_000_000_123_456_789,
        end_ns: 1_700_000_000_124_456_789,
        status: SpanStatus::default(),
        service: service.into(),
        resource: vec![
            ("service.name".into(), AttrValue::String(service.into())),
            ("host.name".into(), AttrValue::String("h1".into())),
        ],
        scope_name: String::new(),
        scope_version: String::new(),
        attributes: vec![("http.status_code".into(), AttrValue::Int(500))],
        events: vec![],
        links: vec![],
    }
}

fn tags_of(span: &Value) -> Vec<(String, Value)> {
    span["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["key"].as_str().unwrap_or_default().to_string(),
                t["value"].clone(),
            )
        })
        .collect()
}

fn params(pairs: &[(&str, &str)]) -> Params {
    Params::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn query(pairs: &[(&str, &str)]) -> ApiResult<TraceQuery> {
    match search_request(
        TenantId::default_tenant(),
        &params(pairs),
        10_000_000_000_000,
    )? {
        SearchRequest::Query(q) => Ok(q),
        SearchRequest::Ids(_) => Err(ApiError::internal("expected a query")),
    }
}

#[test]
fn span_fields_and_parent_reference() {
    let root = span(1, None, "api");
    let mut child = span(2, Some(1), "api");
    child.links.push(SpanLink {
        trace_id: [0xcd; 16],
        span_id: [0xef; 8],
        trace_state: String::new(),
        attributes: vec![],
    });
    let t = trace_json(&[root, child]);
    assert_eq!(t["traceID"], "ab".repeat(16));
    assert_eq!(t["warnings"], Value::Null);
    let s0 = &t["spans"][0];
    assert_eq!(s0["spanID"], "0000000000000001");
    assert_eq!(s0["operationName"], "op1");
    assert_eq!(s0["references"], json!([]));
    assert_eq!(s0["startTime"], 1_700_000_000_123_456_i64);
    assert_eq!(s0["duration"], 1_000);
    assert_eq!(s0["flags"], 1);
    assert_eq!(s0["processID"], "p1");
    let s1 = &t["spans"][1];
    assert_eq!(
        s1["references"],
        json!([
            {"refType": "CHILD_OF", "traceID": "ab".repeat(16), "spanID": "0000000000000001"},
            {"refType": "FOLLOWS_FROM", "traceID": "cd".repeat(16), "spanID": "ef".repeat(8)},
        ])
    );
    // Unspecified kind and unset status add no synthetic tags.
    assert_eq!(
        tags_of(s0),
        vec![("http.status_code".to_string(), json!(500))]
    );
    assert_eq!(s0["tags"][0]["type"], "int64");
}

#[test]
fn error_status_kind_and_scope_tags() {
    let mut s = span(1, None, "api");
    s.kind = SpanKind::Server;
    s.status = SpanStatus {
        code: StatusCode::Error,
        message: "boom".into(),
    };
    s.scope_name = "io.opentelemetry.http".into();
    s.scope_version = "1.2".into();
    let j = span_json(&s, "p1");
    let tags = tags_of(&j);
    let keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "http.status_code",
            "span.kind",
            "otel.status_code",
            "otel.status_description",
            "otel.scope.name",
            "otel.scope.version",
            "error",
        ]
    );
    assert_eq!(tags[1].1, "server");
    assert_eq!(tags[2].1, "ERROR");
    assert_eq!(tags[3].1, "boom");
    assert_eq!(
        j["tags"][6],
        json!({"key": "error", "type": "bool", "value": true})
    );

    s.status.code = StatusCode::Ok;
    s.status.message.clear();
    let tags = tags_of(&span_json(&s, "p1"));
    assert!(tags.contains(&("otel.status_code".to_string(), json!("OK"))));
    assert!(!tags.iter().any(|(k, _)| k == "error"));
}

#[test]
fn processes_are_deduplicated() {
    let a1 = span(1, None, "api");
    let a2 = span(2, Some(1), "api");
    let db = span(3, Some(2), "db");
    let mut a3 = span(4, Some(1), "api");
    a3.resource[1].1 = AttrValue::String("h2".into());
    let t = trace_json(&[a1, a2, db, a3]);
    let ids: Vec<&str> = t["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["processID"].as_str())
        .collect();
    assert_eq!(ids, ["p1", "p1", "p2", "p3"]);
    let procs = t["processes"].as_object().map(Map::len);
    assert_eq!(procs, Some(3));
    assert_eq!(
        t["processes"]["p1"],
        json!({"serviceName": "api", "tags": [{"key": "host.name", "type": "string", "value": "h1"}]})
    );
    assert_eq!(t["processes"]["p2"]["serviceName"], "db");
    assert_eq!(t["processes"]["p3"]["tags"][0]["value"], "h2");
}

#[test]
fn events_become_logs() {
    let mut s = span(1, None, "api");
    s.events.push(SpanEvent {
        time_ns: 1_700_000_000_200_000_999,
        name: "exception".into(),
        attributes: vec![
            ("exception.type".into(), AttrValue::String("IOError".into())),
            ("retry".into(), AttrValue::Bool(false)),
        ],
    });
    let j = span_json(&s, "p1");
    assert_eq!(
        j["logs"],
        json!([{
            "timestamp": 1_700_000_000_200_000_i64,
            "fields": [
                {"key": "event", "type": "string", "value": "exception"},
                {"key": "exception.type", "type": "string", "value": "IOError"},
                {"key": "retry", "type": "bool", "value": false},
            ],
        }])
    );
}

#[test]
fn key_value_types() {
    assert_eq!(
        key_value("f", &AttrValue::Double(1.5)),
        json!({"key": "f", "type": "float64", "value": 1.5})
    );
    assert_eq!(
        key_value("f", &AttrValue::Double(f64::NAN))["type"],
        "string"
    );
    assert_eq!(
        key_value("b", &AttrValue::Bytes(b"hello".to_vec())),
        json!({"key": "b", "type": "binary", "value": "aGVsbG8="})
    );
    assert_eq!(
        key_value(
            "a",
            &AttrValue::Array(vec![AttrValue::Int(1), AttrValue::String("x".into())])
        ),
        json!({"key": "a", "type": "string", "value": "[1,\"x\"]"})
    );
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(&[0xff, 0xfe, 0xfd, 0xfc]), "//79/A==");
}

#[test]
fn tags_parse_json_and_logfmt() {
    let want = vec![
        ("error".to_string(), "true".to_string()),
        ("http.status_code".to_string(), "500".to_string()),
    ];
    let mut got = parse_tags(r#"{"http.status_code":"500","error":"true"}"#).ok();
    if let Some(g) = got.as_mut() {
        g.sort();
    }
    assert_eq!(got, Some(want.clone()));
    let mut got = parse_tags(r#"{"http.status_code":500,"error":true}"#).ok();
    if let Some(g) = got.as_mut() {
        g.sort();
    }
    assert_eq!(got, Some(want));
    assert_eq!(
        parse_tags(r#"  http.status_code=500 msg="not \"found\" here"  error "#).ok(),
        Some(vec![
            ("http.status_code".into(), "500".into()),
            ("msg".into(), "not \"found\" here".into()),
            ("error".into(), "true".into()),
        ])
    );
    assert_eq!(parse_tags("").ok(), Some(vec![]));
    assert!(parse_tags(r#"{"a":[1]}"#).is_err());
    assert!(parse_tags(r#"{"a":"#).is_err());
    assert!(parse_tags(r#"a="unterminated"#).is_err());
    assert!(parse_tags("=v").is_err());
}

#[test]
fn trace_ids_parse_or_are_bad_data() {
    assert_eq!(
        parse_trace_id("463AC35C9F6413AD")
            .ok()
            .map(|id| hex_lower(&id)),
        Some("0000000000000000463ac35c9f6413ad".to_string())
    );
    for bad in ["xyz", "", "0", &"1".repeat(33)] {
        let e = parse_trace_id(bad).err();
        assert_eq!(e.map(|e| e.kind), Some(ErrorKind::BadData), "{bad:?}");
    }
    let body = error_json(&ApiError::new(ErrorKind::NotFound, "trace not found"));
    assert_eq!(
        body,
        json!({"data": null, "total": 0, "limit": 0, "offset": 0,
               "errors": [{"code": 404, "msg": "trace not found"}]})
    );
    assert_eq!(
        error_json(&ApiError::bad_data("x"))["errors"][0]["code"],
        400
    );
    assert_eq!(
        envelope(json!(["a", "b"]), None),
        json!({"data": ["a", "b"], "total": 2, "limit": 0, "offset": 0, "errors": null})
    );
}

#[test]
fn search_parameters() {
    let now = 10_000_000_000_000;
    let q = query(&[("service", "api")]).ok();
    assert_eq!(
        q.as_ref().map(|q| (q.start_ns, q.end_ns, q.limit)),
        Some((now - LOOKBACK_DEFAULT_NS, now, SEARCH_LIMIT_DEFAULT))
    );
    let q = query(&[
        ("service", "api"),
        ("operation", "GET /"),
        ("start", "1000"),
        ("end", "2000"),
        ("limit", "5"),
        ("minDuration", "1.5ms"),
        ("maxDuration", "2s"),
        ("tags", r#"{"error":"true"}"#),
        ("tag", "k:v:w"),
        ("lookback", "custom"),
    ]);
    let q = q.ok();
    assert_eq!(
        q.as_ref().and_then(|q| q.operation.as_deref()),
        Some("GET /")
    );
    assert_eq!(
        q.as_ref().map(|q| (q.start_ns, q.end_ns)),
        Some((1_000_000, 2_001_000))
    );
    assert_eq!(q.as_ref().map(|q| q.limit), Some(5));
    assert_eq!(q.as_ref().and_then(|q| q.min_duration_ns), Some(1_500_000));
    assert_eq!(
        q.as_ref().and_then(|q| q.max_duration_ns),
        Some(2_000_000_000)
    );
    assert_eq!(
        q.map(|q| q.tags),
        Some(vec![
            ("error".into(), "true".into()),
            ("k".into(), "v:w".into())
        ])
    );
    let q = query(&[("service", "api"), ("lookback", "2d"), ("limit", "99999")]).ok();
    assert_eq!(
        q.as_ref().map(|q| q.start_ns),
        Some(now - 2 * 86_400 * 1_000_000_000)
    );
    assert_eq!(q.map(|q| q.limit), Some(SEARCH_LIMIT_MAX));

    for bad in [
        vec![],
        vec![("service", "api"), ("limit", "ten")],
        vec![("service", "api"), ("minDuration", "fast")],
        vec![
            ("service", "api"),
            ("minDuration", "2s"),
            ("maxDuration", "1s"),
        ],
        vec![("service", "api"), ("start", "3"), ("end", "1")],
        vec![("service", "api"), ("tags", "{")],
        vec![("service", "api"), ("tag", "novalue")],
    ] {
        let kind = query(&bad).err().map(|e| e.kind);
        assert_eq!(kind, Some(ErrorKind::BadData), "{bad:?}");
    }

    let ids = search_request(
        TenantId::default_tenant(),
        &params(&[("traceID", "abc"), ("traceID", &"ab".repeat(16))]),
        now,
    )
    .ok();
    let want = [parse_trace_id_hex("abc"), Some([0xab; 16])];
    assert_eq!(
        ids,
        Some(SearchRequest::Ids(want.into_iter().flatten().collect()))
    );
    let bad = search_request(
        TenantId::default_tenant(),
        &params(&[("traceID", "zz")]),
        now,
    );
    assert_eq!(bad.err().map(|e| e.kind), Some(ErrorKind::BadData));
}

#[test]
fn span_kinds() {
    assert_eq!(parse_span_kind("server").ok(), Some(SpanKind::Server));
    assert!(parse_span_kind("SERVER").is_err());
    assert_eq!(kind_name(SpanKind::Unspecified), "");
    assert_eq!(kind_name(SpanKind::Client), "client");
}

/// The handlers against a real store: envelopes, statuses and the search path end to end.
#[tokio::test]
async fn handlers_answer_in_jaeger_shape() {
    use std::sync::Arc;

    use axum::http::StatusCode as Http;
    use prometheus_client::registry::Registry;
    use sightline_model::SpanBatch;
    use sightline_store::{Store, StoreConfig, StoreMetrics};

    use crate::{ApiMetrics, AppState, Limits};

    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(StoreConfig::new(dir.path()), StoreMetrics::default())
        .await
        .expect("open store");
    let now = now_ns();
    let mut spans = vec![span(1, None, "api"), span(2, Some(1), "db")];
    for s in &mut spans {
        s.start_ns = now - 60_000_000_000;
        s.end_ns = s.start_ns + 5_000_000;
    }
    spans[0].kind = SpanKind::Server;
    spans[1].kind = SpanKind::Client;
    spans[1].status.code = StatusCode::Error;
    let batch = SpanBatch {
        tenant: TenantId::default_tenant(),
        spans,
    };
    store.append_spans(Arc::new(batch)).await.expect("append");
    let state = Arc::new(AppState::new(
        Registry::default(),
        ApiMetrics::default(),
        Limits::default(),
    ));
    state.set_store(store);
    let st = || State(state.clone());
    let h = HeaderMap::new;
    let q = |s: &str| RawQuery(Some(s.to_string()));
    async fn body(resp: Response) -> (Http, Value) {
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    let (status, v) = body(services(st(), h()).await).await;
    assert_eq!(status, Http::OK);
    assert_eq!(v, envelope(json!(["api", "db"]), None));
    let (_, v) = body(service_operations(st(), h(), Path("api".into())).await).await;
    assert_eq!(v["data"], json!(["op1"]));
    let (_, v) = body(operations(st(), h(), q("service=db&spanKind=client")).await).await;
    assert_eq!(v["data"], json!([{"name": "op2", "spanKind": "client"}]));
    let (status, v) = body(operations(st(), h(), q("service=db&spanKind=odd")).await).await;
    assert_eq!(
        (status, v["errors"][0]["code"].clone()),
        (Http::BAD_REQUEST, json!(400))
    );

    let (status, v) = body(traces(st(), h(), q("service=db&tags=error%3Dtrue")).await).await;
    assert_eq!(status, Http::OK);
    assert_eq!(v["total"], 1);
    assert_eq!(v["data"][0]["traceID"], "ab".repeat(16));
    assert_eq!(v["data"][0]["spans"].as_array().map(Vec::len), Some(2));
    let (_, v) = body(traces(st(), h(), q("service=db&minDuration=1s")).await).await;
    assert_eq!(v["data"], json!([]));
    let (status, v) = body(traces(st(), h(), q("operation=op1")).await).await;
    assert_eq!(status, Http::BAD_REQUEST);
    assert_eq!(v["data"], Value::Null);
    let ids = format!("traceID={}&traceID=cd", "ab".repeat(16));
    let (_, v) = body(traces(st(), h(), q(&ids)).await).await;
    assert_eq!(v["total"], 1);
    assert_eq!(v["errors"][0]["traceID"], format!("{:0>32}", "cd"));

    let (status, v) = body(trace(st(), h(), Path("ab".repeat(16))).await).await;
    assert_eq!((status, v["total"].clone()), (Http::OK, json!(1)));
    let (status, v) = body(trace(st(), h(), Path("cd".into())).await).await;
    assert_eq!(status, Http::NOT_FOUND);
    assert_eq!(
        v,
        error_json(&ApiError::new(ErrorKind::NotFound, "trace not found"))
    );
    let (status, _) = body(trace(st(), h(), Path("not-hex".into())).await).await;
    assert_eq!(status, Http::BAD_REQUEST);

    let (status, v) = body(dependencies(st(), h(), RawQuery(None)).await).await;
    assert_eq!(status, Http::OK);
    assert_eq!(
        v["data"],
        json!([{"parent": "api", "child": "db", "callCount": 1}])
    );
    let (status, _) = body(dependencies(st(), h(), q("endTs=soon")).await).await;
    assert_eq!(status, Http::BAD_REQUEST);
}
