//! Instrumentation for Rust services built on `tracing`, `tower` and `axum`.
//!
//! - [`init`] / [`Builder`]: one call installing JSON logs, W3C propagation, OTLP export of
//!   traces, logs and metrics, `/metrics` on its own port and USE system metrics; its
//!   [`Guard`] flushes on drop.
//! - [`logging`]: flat JSON log lines with the request context on every line.
//! - [`http`]: a tower layer giving each request an id, a span, start/end logs and RED
//!   metrics labelled by route template.
//! - [`metrics`]: the Prometheus registry handle, business metrics in one line, `/metrics`;
//!   [`summary`]: the summaries `prometheus-client` lacks.
//! - [`health`]: `/health/live`, `/health/ready` and `/health/startup` with cached,
//!   time-limited dependency checks.
//! - [`otel`]: the OpenTelemetry providers and W3C propagation; [`client`]: a reqwest
//!   middleware carrying the trace and the request id to the next service; [`system`]: USE
//!   metrics.
//!
//! The pieces are independent and built on the standard crates (`tracing-subscriber`,
//! `tower`, `prometheus-client`), so each can be adopted on its own.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use sightline_sdk::{Health, HttpLayer, Metrics};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! sightline_sdk::logging::init("orders")?;
//! let metrics = Metrics::new();
//! let orders = metrics.counter("orders_total", "Orders placed");
//! let health = Health::builder().url_check("redis", "redis://cache:6379").build();
//! let app = Router::new()
//!     .route("/api/orders", get(move || async move { orders.inc(); "ok" }))
//!     .layer(HttpLayer::new(&metrics))
//!     .merge(health.router())
//!     .merge(metrics.router());
//! health.started();
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod client;
pub mod health;
pub mod http;
mod init;
pub mod logging;
pub mod metrics;
pub mod otel;
pub mod summary;
pub mod system;

pub use health::Health;
pub use http::HttpLayer;
pub use init::{Builder, DEFAULT_METRICS_PORT, Guard, InitError, init};
pub use logging::JsonLayer;
pub use metrics::Metrics;
/// The `prometheus-client` the metrics are built with, so business metric types match.
pub use prometheus_client;
pub use summary::{Summary, SummaryFamily, SummaryOptions};
/// The OpenTelemetry crates the SDK is built with, one matching set.
pub use {opentelemetry, opentelemetry_sdk, reqwest_middleware, tracing_opentelemetry};
