//! What `HttpLayer` adds to a request: the same trivial axum route with and without the
//! layer, driven in-process (no sockets), with the JSON log layer writing to a sink so the
//! two `Request started`/`Request completed` lines are formatted as in production.
//!
//! `cargo bench -p sightline-sdk --bench http_layer`; the overhead is the difference of
//! the two medians (recorded in docs/benchmarks.md).

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use sightline_sdk::{HttpLayer, JsonLayer, Metrics};
use tower::ServiceExt;
use tracing_subscriber::prelude::*;

fn routes() -> Router {
    Router::new().route("/api/users/{id}", get(|| async { "ok" }))
}

fn bench(c: &mut Criterion) {
    let _ = tracing_subscriber::registry()
        .with(JsonLayer::new("bench").with_writer(std::io::sink))
        .try_init();
    sightline_sdk::otel::install_propagator();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let metrics = Metrics::new();
    let bare = routes();
    let layered = routes().layer(HttpLayer::new(&metrics));
    let request = || {
        Request::get("/api/users/42")
            .header("x-request-id", "bench-request")
            .body(Body::empty())
            .expect("request")
    };
    let mut group = c.benchmark_group("http_layer");
    group.bench_function("bare", |b| {
        b.iter(|| {
            rt.block_on(bare.clone().oneshot(request()))
                .expect("response")
        })
    });
    group.bench_function("with_layer", |b| {
        b.iter(|| {
            rt.block_on(layered.clone().oneshot(request()))
                .expect("response")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
