//! One call to set a service up: [`init`] (or [`Builder`] for options) installs
//!
//! - JSON structured logs on standard output ([`crate::JsonLayer`]), filtered by `RUST_LOG`
//!   (default `info`);
//! - W3C trace context propagation, and OTLP export of traces, logs and metrics when an
//!   endpoint is configured ([`crate::otel`]);
//! - a Prometheus `/metrics` endpoint on its own port (default 9464, `METRICS_PORT`) serving
//!   the returned [`Metrics`];
//! - USE system metrics sampled every 15 s ([`crate::system`]).
//!
//! It returns a [`Guard`]: keep it for the life of the service; dropping it stops the
//! background tasks and flushes the exporters, so the last spans and logs are not lost.
//! Call it from within a Tokio runtime.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing_subscriber::prelude::*;

use crate::otel::{self, Providers};
use crate::{JsonLayer, Metrics};

/// The default port of the `/metrics` endpoint (OpenTelemetry's Prometheus exporter's).
pub const DEFAULT_METRICS_PORT: u16 = 9464;

/// Why set-up failed.
#[derive(Debug)]
pub enum InitError {
    /// A global `tracing` subscriber was already installed.
    Subscriber(tracing_subscriber::util::TryInitError),
    /// An OTLP exporter could not be built.
    Exporter(opentelemetry_otlp::ExporterBuildError),
    /// The metrics port could not be bound.
    MetricsListener(std::io::Error),
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitError::Subscriber(e) => write!(f, "install the tracing subscriber: {e}"),
            InitError::Exporter(e) => write!(f, "build the OTLP exporters: {e}"),
            InitError::MetricsListener(e) => write!(f, "listen for /metrics: {e}"),
        }
    }
}

impl std::error::Error for InitError {}

/// Options of [`init`]; every one has a default.
#[derive(Clone, Debug)]
pub struct Builder {
    service: String,
    metrics_addr: Option<SocketAddr>,
    otlp_endpoint: Option<String>,
    system_metrics: Option<Duration>,
}

impl Builder {
    /// Options for `service` (the `service` of log lines and `service.name` of exports).
    pub fn new(service: &str) -> Self {
        let port = std::env::var("METRICS_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(DEFAULT_METRICS_PORT);
        Self {
            service: service.to_string(),
            metrics_addr: Some(SocketAddr::from(([0, 0, 0, 0], port))),
            otlp_endpoint: None,
            system_metrics: Some(crate::system::DEFAULT_INTERVAL),
        }
    }

    /// Where `/metrics` listens; `None` serves none (mount [`Metrics::router`] yourself).
    pub fn metrics_addr(mut self, addr: Option<SocketAddr>) -> Self {
        self.metrics_addr = addr;
        self
    }

    /// The OTLP endpoint (e.g. `http://127.0.0.1:4318`), over the environment's.
    pub fn otlp_endpoint(mut self, endpoint: &str) -> Self {
        self.otlp_endpoint = Some(endpoint.to_string());
        self
    }

    /// How often system metrics are sampled; `None` samples none.
    pub fn system_metrics(mut self, every: Option<Duration>) -> Self {
        self.system_metrics = every;
        self
    }

    /// Installs everything: JSON logs, propagation, OTLP export when configured, `/metrics`
    /// and system metrics.
    ///
    /// # Errors
    /// When a subscriber is already installed, an exporter cannot be built, or the metrics
    /// port cannot be bound.
    pub async fn init(self) -> Result<Guard, InitError> {
        otel::install_propagator();
        let providers = if otel::export_wanted(self.otlp_endpoint.as_deref()) {
            let p = Providers::new(&self.service, self.otlp_endpoint.as_deref())
                .map_err(InitError::Exporter)?;
            p.install_globals();
            Some(p)
        } else {
            None
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        tracing_subscriber::registry()
            .with(filter)
            .with(JsonLayer::new(&self.service))
            .with(providers.as_ref().map(|p| p.layers(&self.service)))
            .try_init()
            .map_err(InitError::Subscriber)?;
        let metrics = Metrics::new();
        let mut tasks = Vec::new();
        if let Some(addr) = self.metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(InitError::MetricsListener)?;
            let router = metrics.router();
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            }));
        }
        if let Some(every) = self.system_metrics {
            let sampler = crate::system::SystemMetrics::register(&metrics);
            tasks.push(tokio::spawn(sampler.run(every)));
        }
        Ok(Guard {
            metrics,
            providers,
            tasks,
        })
    }
}

/// [`Builder::new`]`(service).init()`: everything with its defaults.
///
/// # Errors
/// As [`Builder::init`].
pub async fn init(service: &str) -> Result<Guard, InitError> {
    Builder::new(service).init().await
}

/// What [`init`] set up; dropping it stops the background tasks and flushes the exporters.
pub struct Guard {
    metrics: Metrics,
    providers: Option<Providers>,
    tasks: Vec<JoinHandle<()>>,
}

impl Guard {
    /// The registry served on `/metrics`: register business metrics here.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether OTLP export is on.
    pub fn exporting(&self) -> bool {
        self.providers.is_some()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(p) = self.providers.take() {
            // The exporters block while flushing; off the async threads when inside a
            // multi-threaded runtime.
            match tokio::runtime::Handle::try_current() {
                Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(|| p.shutdown());
                }
                _ => p.shutdown(),
            }
        }
    }
}
