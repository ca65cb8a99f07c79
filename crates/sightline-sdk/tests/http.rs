//! The HTTP layer: request ids, request span and logs, RED metrics by route template.

mod common;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use http_body_util::BodyExt;
use serde_json::Value;
use sightline_sdk::http::RequestId;
use sightline_sdk::{HttpLayer, Metrics};
use tower::ServiceExt;

fn app(metrics: &Metrics) -> Router {
    let during = metrics.clone();
    Router::new()
        .route(
            "/api/users/{id}",
            get(|Path(id): Path<u64>| async move {
                tracing::info!(user = id, "fetching user");
                format!("user {id}")
            }),
        )
        .route(
            "/active",
            get(move || {
                let metrics = during.clone();
                async move { metrics.render() }
            }),
        )
        .route(
            "/id",
            get(|axum::Extension(id): axum::Extension<RequestId>| async move {
                id.as_str().to_owned()
            }),
        )
        .route(
            "/hang",
            get(|| async {
                std::future::pending::<()>().await;
                "never"
            }),
        )
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/bad", get(|| async { StatusCode::BAD_REQUEST }))
        .layer(HttpLayer::new(metrics))
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Option<String>, String) {
    let response = app.clone().oneshot(req).await.expect("infallible");
    let status = response.status();
    let id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, id, String::from_utf8(body.to_vec()).expect("utf8"))
}

fn get_req(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let metrics = Metrics::new();
    let app = app(&metrics);
    let given = Request::get("/id")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .expect("request");
    let (_, echoed, body) = send(&app, given).await;
    assert_eq!(echoed.as_deref(), Some("abc-123"));
    assert_eq!(body, "abc-123", "handlers see the id as an extension");

    let (_, generated, body) = send(&app, get_req("/id")).await;
    let generated = generated.expect("generated id");
    let parsed = uuid::Uuid::parse_str(&generated).expect("uuid");
    assert_eq!(parsed.get_version_num(), 4);
    assert_eq!(body, generated);

    let too_long = Request::get("/id")
        .header("x-request-id", "x".repeat(200))
        .body(Body::empty())
        .expect("request");
    let (_, replaced, _) = send(&app, too_long).await;
    assert_eq!(replaced.map(|id| id.len()), Some(36));
}

#[tokio::test]
async fn logs_carry_the_request_context() {
    let (_guard, capture) = common::install("users");
    let metrics = Metrics::new();
    let app = app(&metrics);
    let req = Request::get("/api/users/42?verbose=1")
        .header("x-request-id", "req-7")
        .header("x-user-id", "alice")
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "user 42");

    let started = capture.find("Request started");
    assert_eq!(started["method"], "GET");
    assert_eq!(started["path"], "/api/users/42");
    let handler = capture.find("fetching user");
    let completed = capture.find("Request completed");
    for line in [&started, &handler, &completed] {
        assert_eq!(line["request_id"], "req-7", "{line}");
        assert_eq!(line["user_id"], "alice", "{line}");
        assert_eq!(line["service"], "users");
    }
    assert_eq!(handler["user"], 42);
    assert_eq!(handler["function"], Value::Null);
    assert_eq!(completed["status_code"], 200);
    assert_eq!(completed["path"], "/api/users/42");
    let seconds = completed["duration_seconds"].as_f64().expect("number");
    assert!((0.0..5.0).contains(&seconds));
    assert_eq!(capture.lines().len(), 3);

    // Without `X-User-ID` there is no `user_id` at all.
    send(&app, get_req("/api/users/43")).await;
    let lines = capture.lines();
    let last = lines.last().expect("line");
    assert_eq!(last["message"], "Request completed");
    assert!(last["request_id"].is_string());
    assert!(last.get("user_id").is_none(), "{last}");
}

#[tokio::test]
async fn a_dropped_request_is_no_longer_active() {
    let metrics = Metrics::new();
    let app = app(&metrics);
    let pending = app.clone().oneshot(get_req("/hang"));
    let outcome = tokio::time::timeout(std::time::Duration::from_millis(20), pending).await;
    assert!(outcome.is_err(), "the handler never answers");
    let text = metrics.render();
    assert!(
        text.contains(r#"http_requests_active{method="GET",endpoint="/hang"} 0"#),
        "{text}"
    );
    assert!(!text.contains(r#"http_requests_total{method="GET",endpoint="/hang""#));
}

#[tokio::test]
async fn red_metrics_use_the_route_template() {
    let metrics = Metrics::new();
    let app = app(&metrics);
    for uri in ["/api/users/1", "/api/users/2", "/fail", "/bad", "/nope"] {
        send(&app, get_req(uri)).await;
    }
    let (_, _, during) = send(&app, get_req("/active")).await;
    assert!(
        during.contains(r#"http_requests_active{method="GET",endpoint="/active"} 1"#),
        "{during}"
    );

    let text = metrics.render();
    for expected in [
        r#"http_requests_total{method="GET",endpoint="/api/users/{id}",status_code="200"} 2"#,
        r#"http_requests_total{method="GET",endpoint="/fail",status_code="500"} 1"#,
        r#"http_requests_total{method="GET",endpoint="/bad",status_code="400"} 1"#,
        r#"http_requests_total{method="GET",endpoint="unmatched",status_code="404"} 1"#,
        r#"http_errors_total{method="GET",endpoint="/fail",error_type="server_error"} 1"#,
        r#"http_errors_total{method="GET",endpoint="/bad",error_type="client_error"} 1"#,
        r#"http_errors_total{method="GET",endpoint="unmatched",error_type="client_error"} 1"#,
        "# TYPE http_request_duration_seconds histogram",
        r#"http_request_duration_seconds_count{method="GET",endpoint="/api/users/{id}"} 2"#,
        r#"http_requests_active{method="GET",endpoint="/api/users/{id}"} 0"#,
        r#"http_requests_active{method="GET",endpoint="/active"} 0"#,
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    for le in [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf",
    ] {
        let bucket = format!(
            r#"http_request_duration_seconds_bucket{{le="{le}",method="GET",endpoint="/api/users/{{id}}"}} 2"#
        );
        assert!(text.contains(&bucket), "missing {bucket} in\n{text}");
    }
    assert!(
        !text.contains("/api/users/1"),
        "raw path leaked into labels"
    );
    assert!(!text.contains("http_errors_total{method=\"GET\",endpoint=\"/api/users"));
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct OrderLabels {
    product: String,
    country: String,
}

#[tokio::test]
async fn business_metrics_and_the_metrics_endpoint() {
    let metrics = Metrics::new();
    let orders = metrics.counter_family::<OrderLabels>("orders_total", "Orders placed");
    let logins = metrics.counter("logins", "Logins");
    let queue = metrics.gauge("queue_depth", "Jobs waiting");
    let temperature = metrics.gauge_f64("temperature_celsius", "Temperature");
    let sizes = metrics.histogram("order_size", "Items per order", [1.0, 5.0, 10.0]);
    let by_region = metrics.histogram_family::<Vec<(String, String)>>(
        "checkout_seconds",
        "Checkout time",
        sightline_sdk::metrics::Buckets::new([0.1, 1.0]),
    );
    let stock = metrics.gauge_family::<Vec<(String, String)>>("stock", "Items in stock");
    let basket = metrics.summary("basket_value", "Value of a basket");
    let by_country = metrics.summary_family(
        "delivery_days",
        "Days to deliver",
        &["country"],
        sightline_sdk::SummaryOptions::default(),
    );
    for v in 1..=100 {
        basket.observe(f64::from(v));
    }
    by_country.with(&["FR"]).observe(2.0);
    orders
        .get_or_create(&OrderLabels {
            product: "book".into(),
            country: "DE".into(),
        })
        .inc();
    logins.inc_by(3);
    queue.set(4);
    temperature.set(21.5);
    sizes.observe(3.0);
    by_region
        .get_or_create(&vec![("region".into(), "eu".into())])
        .observe(0.5);
    stock
        .get_or_create(&vec![("sku".into(), "b1".into())])
        .set(9);

    let response = metrics
        .router()
        .oneshot(get_req("/metrics"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        sightline_sdk::metrics::CONTENT_TYPE
    );
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8(body.to_vec()).expect("utf8");
    for expected in [
        r#"orders_total{product="book",country="DE"} 1"#,
        "logins_total 3",
        "queue_depth 4",
        "temperature_celsius 21.5",
        "order_size_count 1",
        r#"checkout_seconds_bucket{le="1.0",region="eu"} 1"#,
        r#"stock{sku="b1"} 9"#,
        "# TYPE basket_value summary",
        "basket_value_count 100\n",
        "basket_value_sum 5050.0\n",
        r#"delivery_days{country="FR",quantile="0.99"} "#,
        r#"delivery_days_count{country="FR"} 1"#,
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    assert!(
        text.ends_with("\n# EOF\n"),
        "# EOF ends the exposition:\n{text}"
    );
    let median: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"basket_value{quantile="0.5"} "#))
        .expect("median line")
        .parse()
        .expect("a number");
    assert!((median - 50.5).abs() <= 1.0, "median {median}");
    assert!(!text.contains("orders_total_total"));
    // Families without samples (no request served yet) are left out of the exposition.
    assert!(!text.contains("http_requests"));
}
