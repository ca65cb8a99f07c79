//! OTLP export of traces, metrics and logs, and W3C trace context propagation, on the
//! OpenTelemetry crates (re-exported at the crate root so versions never mismatch).
//!
//! Export is on when an endpoint is given ([`crate::Builder::otlp_endpoint`]) or the
//! standard variables name one (`OTEL_EXPORTER_OTLP_ENDPOINT` or a per-signal
//! `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT`), and off when `OTEL_SDK_DISABLED` is
//! `true`. `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` selects gRPC (tonic; the exporter must be
//! built inside a Tokio runtime); anything else HTTP with protobuf. `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES` are honoured by the resource.
//!
//! What goes out: spans of every `tracing` span (through `tracing-opentelemetry`), log
//! records of every `tracing` event (through `opentelemetry-appender-tracing`, except the
//! exporters' own HTTP stack, which would otherwise log about its own exports forever), and
//! the instruments of `opentelemetry::global::meter` (the RED metrics of
//! [`crate::HttpLayer`] are Prometheus metrics on `/metrics`, for scraping).

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{
    ExporterBuildError, LogExporter, MetricExporter, SpanExporter, WithExportConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

const ENDPOINT_VARS: [&str; 4] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
];

/// Targets whose events are not exported as logs: the exporters' own HTTP and gRPC stack.
const NOT_EXPORTED: [&str; 7] = [
    "hyper",
    "h2",
    "tonic",
    "tower",
    "reqwest",
    "opentelemetry",
    "rustls",
];

/// The three OpenTelemetry providers, exporting over OTLP.
#[derive(Clone, Debug)]
pub struct Providers {
    /// Spans.
    pub tracer: SdkTracerProvider,
    /// Metrics of `opentelemetry::global::meter`.
    pub meter: SdkMeterProvider,
    /// Log records.
    pub logger: SdkLoggerProvider,
}

fn grpc_selected() -> bool {
    std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").is_ok_and(|p| p.trim() == "grpc")
}

/// Whether export is wanted: an endpoint given or in the environment, and the SDK enabled.
pub fn export_wanted(endpoint: Option<&str>) -> bool {
    if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return false;
    }
    endpoint.is_some()
        || ENDPOINT_VARS
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|e| !e.is_empty()))
}

impl Providers {
    /// Builds the exporters and providers for `service`; `endpoint` overrides the
    /// environment (for HTTP the signal paths `/v1/traces`, … are appended).
    ///
    /// # Errors
    /// When an exporter cannot be built (a malformed endpoint, or gRPC outside a runtime).
    pub fn new(service: &str, endpoint: Option<&str>) -> Result<Self, ExporterBuildError> {
        let resource = Resource::builder()
            .with_service_name(service.to_string())
            .build();
        let grpc = grpc_selected();
        let url = |path: &str| endpoint.map(|e| format!("{}{path}", e.trim_end_matches('/')));
        macro_rules! exporter {
            ($builder:expr, $path:literal) => {{
                if grpc {
                    let b = $builder.with_tonic();
                    match endpoint {
                        Some(e) => b.with_endpoint(e).build(),
                        None => b.build(),
                    }
                } else {
                    let b = $builder.with_http();
                    match url($path) {
                        Some(e) => b.with_endpoint(e).build(),
                        None => b.build(),
                    }
                }
            }};
        }
        let spans = exporter!(SpanExporter::builder(), "/v1/traces")?;
        let metrics = exporter!(MetricExporter::builder(), "/v1/metrics")?;
        let logs = exporter!(LogExporter::builder(), "/v1/logs")?;
        Ok(Self {
            tracer: SdkTracerProvider::builder()
                .with_resource(resource.clone())
                .with_batch_exporter(spans)
                .build(),
            meter: SdkMeterProvider::builder()
                .with_resource(resource.clone())
                .with_periodic_exporter(metrics)
                .build(),
            logger: SdkLoggerProvider::builder()
                .with_resource(resource)
                .with_batch_exporter(logs)
                .build(),
        })
    }

    /// The `tracing` layers that feed the providers: spans and log records.
    pub fn layers<S>(&self, service: &str) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let spans =
            tracing_opentelemetry::layer().with_tracer(self.tracer.tracer(service.to_string()));
        let logs =
            opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&self.logger)
                .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                    !NOT_EXPORTED.iter().any(|t| m.target().starts_with(t))
                }));
        spans.and_then(logs)
    }

    /// Installs the tracer and meter providers as OpenTelemetry's globals.
    pub fn install_globals(&self) {
        opentelemetry::global::set_tracer_provider(self.tracer.clone());
        opentelemetry::global::set_meter_provider(self.meter.clone());
    }

    /// Flushes and stops the three providers (blocking until the exports finish).
    pub fn shutdown(&self) {
        let _ = self.tracer.shutdown();
        let _ = self.meter.shutdown();
        let _ = self.logger.shutdown();
    }
}

/// Installs W3C `traceparent`/`tracestate` as the global propagator.
pub fn install_propagator() {
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
}

/// Reads trace context from HTTP headers.
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes trace context into HTTP headers.
pub struct HeaderInjector<'a>(pub &'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The parent context a request's headers carry (none when they carry none).
pub fn extract(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Adds the current span's trace context to outgoing headers.
pub fn inject_current(headers: &mut http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers))
    });
}
