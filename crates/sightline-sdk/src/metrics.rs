//! The Prometheus registry handle: HTTP RED metrics, business metrics, `/metrics`.
//!
//! # Why
//! A service needs one registry that the HTTP layer, its own business code and the
//! `/metrics` endpoint all share. [`Metrics`] is that handle: cheap to clone, it registers a
//! metric in one call and returns the metric itself (which is a cheap, shareable handle in
//! `prometheus-client`), so business code never touches the registry lock after start-up.
//!
//! # Invariants
//! - Counters are exposed with the `_total` suffix; a name passed with it already is not
//!   suffixed twice (`orders_total` and `orders` both expose `orders_total`).
//! - The registry lock is taken only to register and to render, never on the request path.
//! - The text is rendered by `prometheus-client`'s encoder (OpenMetrics text, which
//!   Prometheus scrapes natively), served with [`CONTENT_TYPE`]; summaries, which it lacks,
//!   are ours ([`crate::summary`]) and are rendered after its families, before `# EOF`.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

use crate::http::HttpMetrics;
use crate::summary::{Summary, SummaryFamily, SummaryOptions};

/// The seed's latency buckets, in seconds, used by `http_request_duration_seconds`.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Content type of the rendered exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A histogram family whose histograms all share a set of buckets.
pub type HistogramFamily<L> = Family<L, Histogram, Buckets>;

/// Builds histograms with fixed buckets; the constructor of a [`HistogramFamily`].
#[derive(Debug, Clone)]
pub struct Buckets(Arc<[f64]>);

impl Buckets {
    /// Buckets with these upper bounds (seconds, bytes, ...), in increasing order.
    pub fn new(bounds: impl IntoIterator<Item = f64>) -> Self {
        Buckets(bounds.into_iter().collect())
    }
}

impl Default for Buckets {
    /// The seed's latency buckets, [`DEFAULT_BUCKETS`].
    fn default() -> Self {
        Buckets::new(DEFAULT_BUCKETS)
    }
}

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

impl<S: Clone + std::fmt::Debug> MetricConstructor<HistogramWithExemplars<S>> for Buckets {
    fn new_metric(&self) -> HistogramWithExemplars<S> {
        HistogramWithExemplars::new(self.0.iter().copied())
    }
}

/// A shared Prometheus registry with the HTTP RED metrics registered; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    /// `(name, help, family)` of every summary, in registration order.
    summaries: Arc<Mutex<Vec<(String, String, SummaryFamily)>>>,
    http: Arc<HttpMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry holding the HTTP RED metrics.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http = Arc::new(HttpMetrics::register(&mut registry));
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            summaries: Arc::default(),
            http,
        }
    }

    /// The HTTP RED metrics, shared with [`crate::http::HttpLayer`].
    pub(crate) fn http(&self) -> Arc<HttpMetrics> {
        Arc::clone(&self.http)
    }

    /// Registers any `prometheus-client` metric under `name` and returns it.
    pub fn register<M: Metric + Clone>(&self, name: &str, help: &str, metric: M) -> M {
        self.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .register(name, help, metric.clone());
        metric
    }

    /// Registers a counter; exposed as `<name>_total`.
    pub fn counter(&self, name: &str, help: &str) -> Counter {
        self.register(counter_name(name), help, Counter::default())
    }

    /// Registers a counter family labelled by `L` (a `#[derive(EncodeLabelSet)]` struct or
    /// `Vec<(String, String)>`); exposed as `<name>_total`.
    pub fn counter_family<L>(&self, name: &str, help: &str) -> Family<L, Counter>
    where
        L: EncodeLabelSet + Clone + Eq + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static,
    {
        self.register(counter_name(name), help, Family::default())
    }

    /// Registers an integer gauge.
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        self.register(name, help, Gauge::default())
    }

    /// Registers a floating-point gauge.
    pub fn gauge_f64(&self, name: &str, help: &str) -> Gauge<f64, std::sync::atomic::AtomicU64> {
        self.register(name, help, Gauge::default())
    }

    /// Registers an integer gauge family labelled by `L`.
    pub fn gauge_family<L>(&self, name: &str, help: &str) -> Family<L, Gauge>
    where
        L: EncodeLabelSet + Clone + Eq + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static,
    {
        self.register(name, help, Family::default())
    }

    /// Registers a histogram with the given bucket upper bounds.
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: impl IntoIterator<Item = f64>,
    ) -> Histogram {
        self.register(name, help, Histogram::new(buckets))
    }

    /// Registers a histogram family labelled by `L` with the given buckets.
    pub fn histogram_family<L>(
        &self,
        name: &str,
        help: &str,
        buckets: Buckets,
    ) -> HistogramFamily<L>
    where
        L: EncodeLabelSet + Clone + Eq + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static,
    {
        self.register(name, help, Family::new_with_constructor(buckets))
    }

    /// Registers a summary with the default quantiles (0.5, 0.9, 0.99 over 10 minutes).
    pub fn summary(&self, name: &str, help: &str) -> Summary {
        self.summary_family(name, help, &[], SummaryOptions::default())
            .with(&[])
    }

    /// Registers a summary family with these label names and options; pick a summary with
    /// [`SummaryFamily::with`] and its label values.
    pub fn summary_family(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
        options: SummaryOptions,
    ) -> SummaryFamily {
        let family = SummaryFamily::new(label_names, options);
        self.summaries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name.to_owned(), help.to_owned(), family.clone()));
        family
    }

    /// Renders every registered metric in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        {
            let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            // Encoding into a String cannot fail.
            let _ = prometheus_client::encoding::text::encode_registry(&mut out, &registry);
        }
        for (name, help, family) in self
            .summaries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            family.encode(name, help, &mut out);
        }
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }

    /// An axum router serving [`Metrics::render`] at `GET /metrics`.
    pub fn router(&self) -> Router {
        let metrics = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()).into_response() }
            }),
        )
    }
}

/// `prometheus-client` appends `_total` to counters itself; strip it if the caller gave it.
fn counter_name(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
}
