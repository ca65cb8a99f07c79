//! OTLP export over HTTP to a real socket: spans and log records of `tracing` arrive at
//! `/v1/traces` and `/v1/logs` as protobuf when the providers shut down (the guard's flush).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use axum::routing::post;
use tracing_subscriber::prelude::*;

type Seen = Arc<Mutex<Vec<(String, usize)>>>;

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
                        .push((uri.path().to_string(), body.len()));
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
    });
    tokio::task::spawn_blocking(move || providers.shutdown())
        .await
        .expect("shutdown");

    let seen = seen.lock().expect("lock").clone();
    for path in ["/v1/traces", "/v1/logs"] {
        assert!(
            seen.iter().any(|(p, len)| p == path && *len > 0),
            "nothing at {path}: {seen:?}"
        );
    }
}
