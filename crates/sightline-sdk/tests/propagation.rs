//! W3C trace context and request ids across two in-process services over real sockets:
//! a caller's `traceparent` reaches the first service's span, its traced client carries the
//! same trace (and the request id) to the second service, and both log the trace id.

mod common;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use opentelemetry::trace::TracerProvider as _;
use sightline_sdk::{HttpLayer, JsonLayer, Metrics};
use tracing_subscriber::prelude::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "current_thread")]
async fn a_trace_and_a_request_id_continue_across_services() {
    sightline_sdk::otel::install_propagator();
    // Spans get OpenTelemetry contexts (no exporter: nothing leaves the process).
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let capture = common::Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(JsonLayer::new("test").with_writer(capture.clone()))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let metrics = Metrics::new();
    let downstream = serve(
        Router::new()
            .route(
                "/stock",
                get(|headers: HeaderMap| async move {
                    tracing::info!("checking stock");
                    let get = |h: &str| {
                        headers
                            .get(h)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    format!("{} {}", get("traceparent"), get("x-request-id"))
                }),
            )
            .layer(HttpLayer::new(&metrics)),
    )
    .await;
    let client = sightline_sdk::client::traced(reqwest::Client::new());
    let upstream = serve(
        Router::new()
            .route(
                "/order",
                get(move || {
                    let (client, url) = (client.clone(), format!("{downstream}/stock"));
                    async move {
                        let r = client.get(url).send().await.expect("downstream");
                        r.text().await.expect("body")
                    }
                }),
            )
            .layer(HttpLayer::new(&metrics)),
    )
    .await;

    let answer = reqwest::Client::new()
        .get(format!("{upstream}/order"))
        .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
        .header("x-request-id", "req-42")
        .send()
        .await
        .expect("upstream")
        .text()
        .await
        .expect("body");
    let (traceparent, request_id) = answer.split_once(' ').expect("two fields");
    assert!(traceparent.starts_with(&format!("00-{TRACE}-")), "{answer}");
    assert!(
        !traceparent.contains("00f067aa0ba902b7"),
        "a new parent span: {answer}"
    );
    assert_eq!(request_id, "req-42");

    let lines = capture.lines();
    let stock = lines
        .iter()
        .find(|l| l["message"] == "checking stock")
        .expect("downstream log line");
    assert_eq!(stock["trace_id"], TRACE, "{stock}");
    assert_eq!(stock["request_id"], "req-42", "{stock}");
    let completed: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "Request completed")
        .collect();
    assert_eq!(completed.len(), 2);
    assert!(
        completed.iter().all(|l| l["trace_id"] == TRACE),
        "{completed:?}"
    );
}
