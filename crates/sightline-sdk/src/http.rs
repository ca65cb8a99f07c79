//! A tower layer for axum servers: request ids, the request span, start/end logs, RED metrics.
//!
//! # Why
//! Every service needs the same per-request plumbing and getting it subtly wrong (labelling
//! by raw path, losing the request id in spawned tasks, leaking the in-flight gauge when a
//! client disconnects) is costly. [`HttpLayer`] does it once:
//!
//! 1. takes the `X-Request-ID` header, or makes a UUID v4 when it is absent or unusable, puts
//!    it in the request extensions as [`RequestId`] and echoes it on the response;
//! 2. opens the request span ([`REQUEST_SPAN_NAME`]) carrying `request_id`, and `user_id`
//!    when an `X-User-ID` header is present (`trace_id` and `span_id` are declared empty for
//!    a tracing bridge to record), so [`crate::logging::JsonLayer`] adds them to every line
//!    logged while the request is handled;
//! 3. logs `Request started` (method, path) and `Request completed` (method, path,
//!    status_code, duration_seconds);
//! 4. records the RED metrics `http_requests_total{method,endpoint,status_code}`,
//!    `http_errors_total{method,endpoint,error_type}` (`client_error` for 4xx,
//!    `server_error` for 5xx), `http_request_duration_seconds{method,endpoint}` (the seed's
//!    buckets, [`crate::metrics::DEFAULT_BUCKETS`], with the request's `trace_id` as the
//!    exemplar) and `http_requests_active{method,endpoint}`;
//! 5. joins the caller's W3C `traceparent` (the server span is its child) and records the
//!    span's `trace_id` and `span_id` for the log lines.
//!
//! # Invariants
//! - `endpoint` is the route template from axum's [`MatchedPath`] (`/api/users/{id}`), never
//!   the raw path, so label cardinality is bounded by the routes; requests no route matched
//!   are labelled `unmatched`. `MatchedPath` is set by the router, so add the layer with
//!   [`axum::Router::layer`], not around the router.
//! - `http_requests_active` is decremented by a drop guard, so a request whose future is
//!   dropped (client gone, timeout) is not counted as active forever.
//! - An error from the inner service (axum's services never fail) counts as status 500.

use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use futures::future::BoxFuture;
use http::{HeaderName, HeaderValue, Method, Request, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tower::{Layer, Service};
use tracing::Instrument;

pub use crate::logging::REQUEST_SPAN_NAME;
use crate::metrics::{Buckets, Metrics};
use prometheus_client::metrics::exemplar::HistogramWithExemplars;

/// The request id header, read from requests and set on responses.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The header whose value becomes the request context's `user_id`.
pub const X_USER_ID: HeaderName = HeaderName::from_static("x-user-id");

/// Longest accepted incoming request id; longer ones are replaced by a fresh UUID.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Endpoint label of requests that no route matched.
pub const UNMATCHED: &str = "unmatched";

tokio::task_local! {
    /// The id of the request the current task handles (spawned tasks do not inherit it).
    static CURRENT_REQUEST_ID: HeaderValue;
}

/// The id of the request being handled by the current task, if any (what
/// [`crate::client::TracePropagation`] forwards).
pub fn current_request_id() -> Option<HeaderValue> {
    CURRENT_REQUEST_ID.try_with(HeaderValue::clone).ok()
}

/// Makes `span` the child of the trace the request's `traceparent` names (a new trace
/// without one) and records `trace_id` and `span_id` on it for the log lines; returns the
/// trace id, for the latency exemplar.
fn join_trace<B>(span: &tracing::Span, req: &Request<B>) -> Option<TraceExemplar> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let parent = crate::otel::extract(req.headers());
    let _ = span.set_parent(parent.clone());
    let own = span.context();
    // Without an OpenTelemetry layer the span has no context of its own: log the caller's.
    let sc = match own.span().span_context() {
        sc if sc.is_valid() => sc.clone(),
        _ => parent.span().span_context().clone(),
    };
    if !sc.is_valid() {
        return None;
    }
    span.record("trace_id", tracing::field::display(sc.trace_id()));
    span.record("span_id", tracing::field::display(sc.span_id()));
    Some(TraceExemplar {
        trace_id: sc.trace_id().to_string(),
    })
}

/// The exemplar of `http_request_duration_seconds`: the trace of the observed request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceExemplar {
    trace_id: String,
}

/// The request id of the current request, stored in the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ids that passed `to_str` (visible ASCII) or generated UUIDs are stored.
        self.0.to_str().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: Cow<'static, str>,
    endpoint: String,
    status_code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    method: Cow<'static, str>,
    endpoint: String,
    error_type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: Cow<'static, str>,
    endpoint: String,
}

/// The HTTP RED metric families, registered once per [`Metrics`].
#[derive(Debug)]
pub(crate) struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<RouteLabels, HistogramWithExemplars<TraceExemplar>, Buckets>,
    active: Family<RouteLabels, Gauge>,
}

impl HttpMetrics {
    /// Creates the families and registers them in `registry`.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = HttpMetrics {
            requests: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(Buckets::default()),
            active: Family::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests handled, by method, route template and status code",
            metrics.requests.clone(),
        );
        registry.register(
            "http_errors",
            "HTTP requests answered with a 4xx (client_error) or 5xx (server_error) status",
            metrics.errors.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency in seconds, by method and route template",
            metrics.duration.clone(),
        );
        registry.register(
            "http_requests_active",
            "HTTP requests being handled, by method and route template",
            metrics.active.clone(),
        );
        metrics
    }

    fn finish(
        &self,
        route: RouteLabels,
        status: u16,
        seconds: f64,
        exemplar: Option<TraceExemplar>,
    ) {
        self.duration
            .get_or_create(&route)
            .observe(seconds, exemplar, None);
        let error_type = match status {
            400..=499 => Some("client_error"),
            500..=599 => Some("server_error"),
            _ => None,
        };
        if let Some(error_type) = error_type {
            let labels = ErrorLabels {
                method: route.method.clone(),
                endpoint: route.endpoint.clone(),
                error_type,
            };
            self.errors.get_or_create(&labels).inc();
        }
        let labels = RequestLabels {
            method: route.method,
            endpoint: route.endpoint,
            status_code: status,
        };
        self.requests.get_or_create(&labels).inc();
    }
}

/// Keeps `http_requests_active` incremented while alive.
struct ActiveGuard(Gauge);

impl ActiveGuard {
    fn new(gauge: Gauge) -> Self {
        gauge.inc();
        ActiveGuard(gauge)
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The method as a label value, without allocating for the standard methods.
fn method_label(method: &Method) -> Cow<'static, str> {
    const STANDARD: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    match STANDARD.iter().find(|m| **m == method.as_str()) {
        Some(m) => Cow::Borrowed(m),
        None => Cow::Owned(method.as_str().to_owned()),
    }
}

/// The incoming request id when usable (visible ASCII, 1 to 128 bytes), else a UUID v4.
fn request_id<B>(req: &Request<B>) -> HeaderValue {
    if let Some(value) = req.headers().get(&X_REQUEST_ID)
        && !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_LEN
        && value.to_str().is_ok()
    {
        return value.clone();
    }
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// The tower [`Layer`] adding request ids, the request span, logs and RED metrics; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct HttpLayer {
    metrics: Arc<HttpMetrics>,
}

impl HttpLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        HttpLayer {
            metrics: metrics.http(),
        }
    }
}

impl<S> Layer<S> for HttpLayer {
    type Service = HttpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpService {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The service [`HttpLayer`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct HttpService<S> {
    inner: S,
    metrics: Arc<HttpMetrics>,
}

impl<S, B, RB> Service<Request<B>> for HttpService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<RB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let start = Instant::now();
        let request_id = request_id(&req);
        let route = RouteLabels {
            method: method_label(req.method()),
            endpoint: req
                .extensions()
                .get::<MatchedPath>()
                .map_or(UNMATCHED, MatchedPath::as_str)
                .to_owned(),
        };
        let span = tracing::info_span!(
            target: "sightline_sdk::http",
            REQUEST_SPAN_NAME,
            request_id = request_id.to_str().unwrap_or_default(),
            user_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            // Read by tracing-opentelemetry: the exported span's name, kind and status.
            "otel.name" = format!("{} {}", route.method, route.endpoint),
            "otel.kind" = "server",
            "otel.status_code" = tracing::field::Empty,
            "http.response.status_code" = tracing::field::Empty,
        );
        if let Some(user_id) = req.headers().get(&X_USER_ID).and_then(|v| v.to_str().ok()) {
            span.record("user_id", user_id);
        }
        let exemplar = join_trace(&span, &req);
        let path = req.uri().path().to_owned();
        span.in_scope(|| {
            tracing::info!(method = %route.method, path, "Request started");
        });
        req.extensions_mut().insert(RequestId(request_id.clone()));

        // The inner service was polled ready; take it and leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let active = ActiveGuard::new(self.metrics.active.get_or_create(&route).clone());
        let metrics = Arc::clone(&self.metrics);
        let future =
            CURRENT_REQUEST_ID.scope(request_id.clone(), span.in_scope(|| inner.call(req)));
        Box::pin(
            async move {
                let result = future.await;
                let seconds = start.elapsed().as_secs_f64();
                drop(active);
                let status = match &result {
                    Ok(response) => response.status().as_u16(),
                    Err(_) => 500,
                };
                let span = tracing::Span::current();
                span.record("http.response.status_code", status);
                if status >= 500 {
                    span.record("otel.status_code", "error");
                }
                tracing::info!(
                    method = %route.method,
                    path,
                    status_code = status,
                    duration_seconds = seconds,
                    "Request completed"
                );
                metrics.finish(route, status, seconds, exemplar);
                result.map(|mut response| {
                    response.headers_mut().insert(X_REQUEST_ID, request_id);
                    response
                })
            }
            .instrument(span),
        )
    }
}
