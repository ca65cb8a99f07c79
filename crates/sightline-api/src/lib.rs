//! Sightline's HTTP and gRPC surface. Handlers are thin: they read the request, call an
//! ingest decoder, the store or a query engine, and turn the answer or the error into the
//! shape the caller's tools expect (Loki, Prometheus, OTLP, Elasticsearch).

pub mod alerting;
pub mod body;
pub mod debug;
pub mod error;
pub mod grpc;
pub mod health;
pub mod jaeger;
pub mod logs_in;
pub mod loki;
pub mod metrics;
pub mod metrics_in;
pub mod params;
pub mod prom;
pub mod source;
pub mod tail;
pub mod traces_in;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use prometheus_client::registry::Registry;

use sightline_model::TenantId;
use sightline_store::Store;

pub use error::{ApiError, ApiResult, ErrorKind};
pub use metrics::ApiMetrics;

/// Limits on what one request may carry.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body as sent; more is refused with 413.
    pub request_bytes_max: usize,
    /// Largest body after decompression; more is refused with 413.
    pub decompressed_bytes_max: usize,
    /// Most log entries a log query returns.
    pub query_entries_max: usize,
    /// Most samples a PromQL query may load (Prometheus' `query.max-samples`).
    pub query_samples_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_bytes_max: 16 << 20,
            decompressed_bytes_max: 64 << 20,
            query_entries_max: 5_000,
            query_samples_max: 50_000_000,
        }
    }
}

/// What every handler shares.
pub struct AppState {
    store: OnceLock<Arc<Store>>,
    shutting_down: AtomicBool,
    pub registry: Registry,
    pub metrics: ApiMetrics,
    pub limits: Limits,
    pub tail: tail::TailHub,
    /// RED metrics of the spans stored, written to the TSDB by the server's flush task.
    pub span_metrics: sightline_ingest::span_metrics::SpanMetrics,
    scraper: OnceLock<sightline_scrape::ScrapeManager>,
    alerting: OnceLock<Arc<sightline_alert::Alerting>>,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    /// A state whose store arrives later ([`AppState::set_store`]), so health endpoints answer
    /// while the WAL replays.
    pub fn new(registry: Registry, metrics: ApiMetrics, limits: Limits) -> Self {
        Self {
            store: OnceLock::new(),
            shutting_down: AtomicBool::new(false),
            registry,
            metrics,
            limits,
            tail: tail::TailHub::default(),
            span_metrics: Default::default(),
            scraper: OnceLock::new(),
            alerting: OnceLock::new(),
        }
    }

    /// The scrape manager, when the server scrapes, for `/api/v1/targets`.
    pub fn set_scraper(&self, scraper: sightline_scrape::ScrapeManager) {
        let _ = self.scraper.set(scraper);
    }

    pub fn scraper(&self) -> Option<&sightline_scrape::ScrapeManager> {
        self.scraper.get()
    }

    /// Rules, SLOs, probes and silences, when the server runs them.
    pub fn set_alerting(&self, alerting: Arc<sightline_alert::Alerting>) {
        let _ = self.alerting.set(alerting);
    }

    pub fn alerting(&self) -> Option<&Arc<sightline_alert::Alerting>> {
        self.alerting.get()
    }

    pub fn set_store(&self, store: Arc<Store>) {
        let _ = self.store.set(store);
    }

    /// The store, or 503 while start-up is still replaying the WAL.
    pub fn store(&self) -> ApiResult<&Arc<Store>> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                "server is shutting down",
            ));
        }
        self.store.get().ok_or_else(|| {
            ApiError::new(
                ErrorKind::Unavailable,
                "server is starting: replaying the wal",
            )
        })
    }

    pub fn try_store(&self) -> Option<&Arc<Store>> {
        self.store.get()
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

/// The tenant a request is for: `X-Scope-OrgID`, or `default`.
pub fn tenant_of(headers: &HeaderMap) -> ApiResult<TenantId> {
    match headers.get("x-scope-orgid") {
        None => Ok(TenantId::default_tenant()),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| ApiError::bad_data("X-Scope-OrgID is not ASCII"))?;
            TenantId::new(s.trim()).map_err(|e| ApiError::bad_data(format!("X-Scope-OrgID: {e}")))
        }
    }
}

/// Every HTTP route.
pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/health/startup", get(health::startup))
        .route("/metrics", get(health::metrics))
        .route("/v1/logs", post(logs_in::otlp_http))
        .route("/api/v1/logs", post(logs_in::ndjson))
        .route("/v1/metrics", post(metrics_in::otlp_http))
        .route("/v1/traces", post(traces_in::otlp_http))
        .route("/api/v2/spans", post(traces_in::zipkin))
        .route("/api/v1/write", post(metrics_in::remote_write))
        .route(
            "/api/v1/import/prometheus",
            post(metrics_in::import_prometheus),
        )
        .route("/loki/api/v1/push", post(logs_in::loki_push))
        .route("/_bulk", post(logs_in::es_bulk))
        .route("/{index}/_bulk", post(logs_in::es_bulk_index))
        .route("/loki/api/v1/query", get(loki::query).post(loki::query))
        .route(
            "/loki/api/v1/query_range",
            get(loki::query_range).post(loki::query_range),
        )
        .route("/loki/api/v1/labels", get(loki::labels))
        .route("/loki/api/v1/label/{name}/values", get(loki::label_values))
        .route("/loki/api/v1/series", get(loki::series).post(loki::series))
        .route("/loki/api/v1/tail", get(tail::tail))
        .route(
            "/loki/api/v1/index/stats",
            get(loki::index_stats).post(loki::index_stats),
        )
        .route("/api/v1/query", get(prom::query).post(prom::query))
        .route(
            "/api/v1/query_range",
            get(prom::query_range).post(prom::query_range),
        )
        .route("/api/v1/series", get(prom::series).post(prom::series))
        .route("/api/v1/labels", get(prom::labels).post(prom::labels))
        .route("/api/v1/label/{name}/values", get(prom::label_values))
        .route("/api/v1/metadata", get(prom::metadata))
        .route(
            "/api/v1/query_exemplars",
            get(prom::query_exemplars).post(prom::query_exemplars),
        )
        .route("/api/v1/status/buildinfo", get(prom::buildinfo))
        .route("/api/v1/targets", get(prom::targets))
        .route("/api/v1/debug/{id}", get(debug::debug))
        .route("/ready", get(health::ready))
        .merge(jaeger::routes())
        .merge(alerting::routes())
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
