//! OTLP export over HTTP to a real socket: spans and log records of `tracing` arrive at
//! `/v1/traces` and `/v1/logs` as protobuf when the providers shut down (the guard's flush),
//! and a function under `#[tracing::instrument(err)]` that fails is exported as a span with
//! status error and the error as an event.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use axum::routing::post;
use tracing_subscriber::prelude::*;

type Seen = Arc<Mutex<Vec<(String, Bytes)>>>;

#[tracing::instrument(err)]
fn charge(amount: u32) -> Result<u32, String> {
    if amount > 100 {
        Err(format!("card declined for {amount}"))
    } else {
        Ok(amount)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_logs_are_exported_on_shutdown() {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/{*path}",
            post(
                |State(seen): State<Seen>, uri: Uri, body: Bytes| async move {
                    seen.lock()
                        .expect("lock")
                        .push((uri.path().to_string(), body));
                    ""
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let providers =
        sightline_sdk::otel::Providers::new("export-test", Some(&endpoint)).expect("providers");
    let subscriber = tracing_subscriber::registry().with(providers.layers("export-test"));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("place_order", order = 7);
        let _in = span.enter();
        tracing::warn!(order = 7, "payment slow");
        assert!(charge(500).is_err());
        assert_eq!(charge(5), Ok(5));
    });
    tokio::task::spawn_blocking(move || providers.shutdown())
        .await
        .expect("shutdown");

    let seen = seen.lock().expect("lock").clone();
    for path in ["/v1/traces", "/v1/logs"] {
        assert!(
            seen.iter().any(|(p, body)| p == path && !body.is_empty()),
            "nothing at {path}: {seen:?}"
        );
    }

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
    use prost::Message;
    let spans: Vec<_> = seen
        .iter()
        .filter(|(p, _)| p == "/v1/traces")
        .flat_map(|(_, body)| {
            ExportTraceServiceRequest::decode(body.as_ref())
                .expect("OTLP protobuf")
                .resource_spans
        })
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .filter(|s| s.name == "charge")
        .collect();
    assert_eq!(spans.len(), 2, "{spans:?}");
    let status =
        |s: &opentelemetry_proto::tonic::trace::v1::Span| s.status.as_ref().map_or(0, |st| st.code);
    let failed = spans
        .iter()
        .find(|s| status(s) == StatusCode::Error as i32)
        .unwrap_or_else(|| panic!("no charge span with status error: {spans:?}"));
    let event_text = format!("{:?}", failed.events);
    assert!(
        event_text.contains("card declined for 500"),
        "the error is an event of the span: {event_text}"
    );
    assert!(
        spans.iter().any(|s| status(s) != StatusCode::Error as i32),
        "the call that succeeded is not an error: {spans:?}"
    );
}
