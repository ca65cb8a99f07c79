//! Instrumentation for Rust services built on `tracing`, `tower` and `axum`.
//!
//! - [`logging`]: flat JSON log lines with the request context on every line.
//! - [`http`]: a tower layer giving each request an id, a span, start/end logs and RED
//!   metrics labelled by route template.
//! - [`metrics`]: the Prometheus registry handle, business metrics in one line, `/metrics`.
//! - [`health`]: `/health/live`, `/health/ready` and `/health/startup` with cached,
//!   time-limited dependency checks.
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

pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;

pub use health::Health;
pub use http::HttpLayer;
pub use logging::JsonLayer;
pub use metrics::Metrics;
/// The `prometheus-client` the metrics are built with, so business metric types match.
pub use prometheus_client;
