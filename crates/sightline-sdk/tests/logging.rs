//! The JSON layer: exact flat fields, levels, function names, exceptions, request context.

mod common;

use std::error::Error;
use std::fmt;

use serde_json::{Value, json};
use tracing::Instrument;
use tracing::field::Empty;

fn keys(line: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = line
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[test]
fn fields_are_exact_flat_and_typed() {
    let (subscriber, capture) = common::subscriber("orders");
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(
            order_id = 42u64,
            delta = -3i64,
            amount = 9.5,
            paid = true,
            product = "book",
            country = %"DE",
            tags = ?["a", "b"],
            "Order placed"
        );
    });
    let lines = capture.lines();
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(
        keys(line),
        [
            "amount",
            "country",
            "delta",
            "function",
            "level",
            "line",
            "message",
            "module",
            "order_id",
            "paid",
            "product",
            "service",
            "tags",
            "timestamp"
        ]
    );
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["service"], "orders");
    assert_eq!(line["message"], "Order placed");
    assert_eq!(line["module"], "logging");
    assert_eq!(line["function"], Value::Null);
    assert!(line["line"].as_u64().expect("line number") > 0);
    assert_eq!(line["order_id"], json!(42));
    assert_eq!(line["delta"], json!(-3));
    assert_eq!(line["amount"], json!(9.5));
    assert_eq!(line["paid"], json!(true));
    assert_eq!(line["product"], "book");
    assert_eq!(line["country"], "DE");
    assert_eq!(line["tags"], r#"["a", "b"]"#);
    let ts = line["timestamp"].as_str().expect("timestamp");
    assert_eq!(ts.len(), "2026-11-25T07:17:12.123456Z".len(), "{ts}");
    assert!(
        ts.ends_with('Z') && &ts[10..11] == "T" && &ts[19..20] == ".",
        "{ts}"
    );
}

#[test]
fn levels_map_to_the_seed_names() {
    let (subscriber, capture) = common::subscriber("svc");
    tracing::subscriber::with_default(subscriber, || {
        tracing::trace!("t");
        tracing::debug!("d");
        tracing::info!("i");
        tracing::warn!("w");
        tracing::error!("e");
        tracing::error!(critical = true, "c1");
        tracing::error!(target: "critical", "c2");
        tracing::error!(critical = false, "e2");
    });
    let levels: Vec<(String, String)> = capture
        .lines()
        .iter()
        .map(|l| {
            assert!(l.get("critical").is_none(), "critical field leaked: {l}");
            (
                l["message"].as_str().expect("m").to_owned(),
                l["level"].as_str().expect("l").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("t", "DEBUG"),
        ("d", "DEBUG"),
        ("i", "INFO"),
        ("w", "WARNING"),
        ("e", "ERROR"),
        ("c1", "CRITICAL"),
        ("c2", "CRITICAL"),
        ("e2", "ERROR"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(m, l)| (m.to_string(), l.to_string()))
        .collect();
    assert_eq!(levels, expected);
}

#[tracing::instrument]
fn place_order(quantity: u32) {
    tracing::info!("placing");
}

#[test]
fn function_is_the_innermost_span_but_never_the_request_span() {
    let (subscriber, capture) = common::subscriber("svc");
    tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!("http_request", request_id = "r1");
        request.in_scope(|| {
            tracing::info!("in request");
            place_order(3);
            tracing::info_span!("load_user").in_scope(|| tracing::info!("in load_user"));
        });
    });
    assert_eq!(capture.find("in request")["function"], Value::Null);
    assert_eq!(capture.find("placing")["function"], "place_order");
    assert_eq!(capture.find("placing")["request_id"], "r1");
    // Span fields other than the request context are not copied onto events.
    assert!(capture.find("placing").get("quantity").is_none());
    assert_eq!(capture.find("in load_user")["function"], "load_user");
}

#[derive(Debug)]
struct Outer(Inner);
#[derive(Debug)]
struct Inner;

impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("payment failed")
    }
}
impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection \"refused\"")
    }
}
impl Error for Outer {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}
impl Error for Inner {}

#[test]
fn errors_become_an_exception_object() {
    let (subscriber, capture) = common::subscriber("svc");
    let e = Outer(Inner);
    tracing::subscriber::with_default(subscriber, || {
        tracing::error!(error = &e as &dyn Error, error.type = "PaymentError", order = 7, "typed");
        tracing::error!(error = &e as &dyn Error, "untyped");
        tracing::warn!(error.type = "Lonely", "no error value");
    });
    let typed = capture.find("typed");
    assert_eq!(
        typed["exception"],
        json!({
            "type": "PaymentError",
            "message": "payment failed",
            "backtrace": "payment failed\nCaused by: connection \"refused\"",
        })
    );
    assert_eq!(typed["order"], 7);
    assert!(typed.get("error").is_none() && typed.get("error.type").is_none());
    assert_eq!(capture.find("untyped")["exception"]["type"], "Error");
    let lonely = capture.find("no error value");
    assert_eq!(lonely["error.type"], "Lonely");
    assert!(lonely.get("exception").is_none());
}

#[test]
fn reserved_names_and_context_overrides_never_duplicate_keys() {
    let (subscriber, capture) = common::subscriber("svc");
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("http_request", request_id = "from-span");
        span.in_scope(|| {
            tracing::info!(
                level = 5,
                service = "other",
                request_id = "from-event",
                "clash"
            );
        });
    });
    let raw = capture.raw();
    assert_eq!(raw.len(), 1);
    for key in ["\"level\"", "\"service\"", "\"request_id\""] {
        assert_eq!(raw[0].matches(key).count(), 1, "{key} in {}", raw[0]);
    }
    let line = &capture.lines()[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["fields.level"], 5);
    assert_eq!(line["service"], "svc");
    assert_eq!(line["fields.service"], "other");
    assert_eq!(line["request_id"], "from-event");
}

async fn charge(amount: u64) {
    tokio::task::yield_now().await;
    tracing::info!(amount, "charging");
}

#[tokio::test]
async fn context_follows_awaits_and_instrumented_spawned_tasks() {
    let (_guard, capture) = common::install("svc");
    let span = tracing::info_span!(
        "http_request",
        request_id = "req-1",
        user_id = Empty,
        trace_id = Empty,
        span_id = Empty
    );
    // Recorded after creation, as the HTTP layer does for `X-User-ID`.
    span.record("user_id", 7u64);
    async {
        tracing::info!("before await");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        tracing::info!("after await");
        let task = tokio::spawn(
            async {
                tokio::task::yield_now().await;
                tracing::info!("in spawned task");
            }
            .instrument(tracing::Span::current()),
        );
        task.await.expect("task");
        charge(5)
            .instrument(tracing::info_span!("charge", trace_id = "t-9"))
            .await;
    }
    .instrument(span)
    .await;
    tracing::info!("outside");

    for message in ["before await", "after await", "in spawned task", "charging"] {
        let line = capture.find(message);
        assert_eq!(line["request_id"], "req-1", "{line}");
        assert_eq!(line["user_id"], 7, "{line}");
    }
    let charging = capture.find("charging");
    assert_eq!(charging["trace_id"], "t-9");
    assert_eq!(charging["function"], "charge");
    assert!(capture.find("after await").get("trace_id").is_none());
    let outside = capture.find("outside");
    for key in ["request_id", "user_id", "trace_id", "span_id"] {
        assert!(
            outside.get(key).is_none(),
            "{key} leaked outside: {outside}"
        );
    }
}
