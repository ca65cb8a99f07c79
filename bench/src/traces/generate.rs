//! A deterministic generator of distributed traces, as eight services of a shop instrumented
//! with OpenTelemetry SDKs would export them, cut into OTLP/HTTP protobuf request bodies.
//!
//! The plan ([`Plan`]) fixes how many spans each trace has (5 to 50, smaller ones likelier;
//! the last trace takes what is left) and which traces go in which request (whole traces,
//! about `batch_spans` spans a request). Trace `t` then depends only on the seed, `t` and the
//! time plan, so builder threads can build any request in any order and the harness can tell
//! how many spans any trace has without keeping it.
//!
//! A trace: a `frontend` server span (the root) for one of its routes, then spans added one at
//! a time under an earlier server or internal span (its parent): a call to a downstream
//! service (a client span and, under it, the callee's server span), a SQL statement or a
//! Redis command (client spans), or an internal step. Children lie inside their parents;
//! durations are log-normal (Redis ~0.3 ms, SQL ~2 ms, calls ~15 ms, the root ~60 ms, up to
//! seconds), in nanoseconds. About 2 % of the spans fail: status `ERROR`, an error status
//! code on HTTP spans, and an `exception` event with `exception.type`, `exception.message` and
//! a multi-line `exception.stacktrace` in the style of the service's language.
//!
//! Timestamps: trace `t` starts at `start + t * step + jitter` (`0 <= jitter < step`), so the
//! traces spread evenly over the window and a request holds a slice of time, as a collector's
//! would.
//!
//! A request: one `ResourceSpans` per service with spans in it (attributes `service.name`,
//! `service.version`, `host.name`, `deployment.environment`, `k8s.pod.name`, the SDK's name
//! and language; the pod is one of the service's [`PODS`], chosen per request), each with one
//! `ScopeSpans`.

use anyhow::{Result, ensure};
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

use crate::ingest::{self, Payload, Tally};
use crate::otlp::{kv_int, kv_str};
use crate::rng::{Rng, mix64};

/// The services; the first is the edge every trace starts at.
pub const SERVICES: [&str; 8] = [
    "frontend",
    "orders",
    "payments",
    "inventory",
    "shipping",
    "users",
    "search",
    "notifications",
];

/// The service the search benchmark asks for (`SERVICES[SEARCH_SERVICE]`).
pub const SEARCH_SERVICE: usize = 1;

/// `minDuration` values the search may use, in milliseconds; the harness takes the first that
/// matches a few percent of [`SEARCH_SERVICE`]'s spans (see [`Counts`]).
pub const SEARCH_THRESHOLDS_MS: [u64; 9] = [20, 50, 100, 200, 250, 500, 1_000, 2_000, 5_000];

/// Pods of each service; a request's spans of a service come from one of them.
pub const PODS: u64 = 4;

/// Distinct users (the `user.id` attribute).
const USERS: u64 = 5_000_000;

/// Spans of a trace: `SPANS_MIN ..= SPANS_MIN + SPANS_EXTRA_MAX`.
const SPANS_MIN: u64 = 5;
const SPANS_EXTRA_MAX: u64 = 45;

/// Per mille of spans that fail.
const ERROR_PER_MILLE: u64 = 20;

/// A span with less time than this gets no children (unless it is the root).
const PARENT_MIN_NS: i64 = 200_000;

const MS: f64 = 1e6;

/// Language of each service's SDK (resource `telemetry.sdk.language`, stack trace style).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lang {
    Node,
    Java,
    Go,
}

const LANGS: [Lang; 8] = [
    Lang::Node,
    Lang::Java,
    Lang::Java,
    Lang::Java,
    Lang::Go,
    Lang::Go,
    Lang::Go,
    Lang::Node,
];

const VERSIONS: [&str; 8] = [
    "3.18.2", "2.41.0", "1.9.14", "4.2.7", "0.33.1", "5.0.3", "2.2.0", "1.12.9",
];

/// An HTTP route a service serves: method, `http.route`, and `url.path` with `{}` where the
/// id goes.
struct Route {
    method: &'static str,
    route: &'static str,
    path: &'static str,
}

const fn r(method: &'static str, route: &'static str, path: &'static str) -> Route {
    Route {
        method,
        route,
        path,
    }
}

/// Routes of each service, in the order of [`SERVICES`].
const ROUTES: [&[Route]; 8] = [
    &[
        r("GET", "/api/orders/{id}", "/api/orders/{}"),
        r("GET", "/api/orders/{id}", "/api/orders/{}"),
        r("POST", "/api/checkout", "/api/checkout"),
        r("GET", "/api/products/{id}", "/api/products/{}"),
        r("GET", "/api/search", "/api/search"),
        r("GET", "/api/users/{id}/profile", "/api/users/{}/profile"),
        r("GET", "/", "/"),
    ],
    &[
        r("GET", "/orders/{id}", "/orders/{}"),
        r("POST", "/orders", "/orders"),
        r("GET", "/orders", "/orders"),
        r("PUT", "/orders/{id}/status", "/orders/{}/status"),
    ],
    &[
        r("POST", "/charge", "/charge"),
        r("POST", "/refund", "/refund"),
        r("GET", "/payments/{id}", "/payments/{}"),
    ],
    &[
        r("GET", "/stock/{sku}", "/stock/SKU-{}"),
        r("POST", "/reserve", "/reserve"),
    ],
    &[
        r("POST", "/quote", "/quote"),
        r("GET", "/shipments/{id}", "/shipments/{}"),
    ],
    &[
        r("GET", "/users/{id}", "/users/{}"),
        r("POST", "/sessions", "/sessions"),
    ],
    &[
        r("GET", "/search", "/search"),
        r("GET", "/suggest", "/suggest"),
    ],
    &[r("POST", "/email", "/email"), r("POST", "/push", "/push")],
];

/// Whom each service calls (indices into [`SERVICES`]).
const DOWNSTREAM: [&[usize]; 8] = [
    &[1, 1, 1, 5, 6, 3],
    &[2, 3, 4, 5, 7],
    &[5, 7],
    &[],
    &[7],
    &[],
    &[3],
    &[],
];

/// A SQL statement: span name and `db.statement`.
struct Sql {
    name: &'static str,
    statement: &'static str,
}

const fn q(name: &'static str, statement: &'static str) -> Sql {
    Sql { name, statement }
}

/// Each service's SQL (PostgreSQL; `frontend` has no database).
const SQL: [&[Sql]; 8] = [
    &[],
    &[
        q(
            "SELECT orders",
            "SELECT id, user_id, status, total_cents, created_at FROM orders WHERE id = $1",
        ),
        q(
            "SELECT order_items",
            "SELECT sku, quantity, price_cents FROM order_items WHERE order_id = $1",
        ),
        q(
            "INSERT orders",
            "INSERT INTO orders (user_id, status, total_cents) VALUES ($1, $2, $3) RETURNING id",
        ),
        q(
            "UPDATE orders",
            "UPDATE orders SET status = $1, updated_at = now() WHERE id = $2",
        ),
    ],
    &[
        q(
            "INSERT payments",
            "INSERT INTO payments (order_id, amount_cents, provider, state) VALUES ($1, $2, $3, 'pending')",
        ),
        q(
            "SELECT payments",
            "SELECT id, state, amount_cents FROM payments WHERE order_id = $1",
        ),
    ],
    &[
        q(
            "SELECT stock",
            "SELECT sku, available, reserved FROM stock WHERE sku = ANY($1)",
        ),
        q(
            "UPDATE stock",
            "UPDATE stock SET reserved = reserved + $1 WHERE sku = $2 AND available - reserved >= $1",
        ),
    ],
    &[q(
        "SELECT shipments",
        "SELECT id, carrier, tracking_no, eta FROM shipments WHERE order_id = $1",
    )],
    &[
        q(
            "SELECT users",
            "SELECT id, email, name, tier FROM users WHERE id = $1",
        ),
        q(
            "SELECT sessions",
            "SELECT user_id, expires_at FROM sessions WHERE token_hash = $1",
        ),
    ],
    &[q(
        "SELECT products",
        "SELECT id, title, price_cents FROM products WHERE search_vector @@ plainto_tsquery($1) LIMIT 50",
    )],
    &[q(
        "INSERT outbox",
        "INSERT INTO outbox (topic, payload) VALUES ($1, $2)",
    )],
];

/// Internal steps, any service.
const INTERNAL: [&str; 8] = [
    "validate request",
    "serialize response",
    "compute totals",
    "authorize",
    "load feature flags",
    "render template",
    "apply discounts",
    "check fraud score",
];

/// What was generated, for the report and for checking query answers.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub traces: u64,
    pub spans: u64,
    pub error_spans: u64,
    /// Spans of [`SEARCH_SERVICE`].
    pub search_spans: u64,
    /// Of those, the ones lasting at least each of [`SEARCH_THRESHOLDS_MS`].
    pub search_spans_over: [u64; SEARCH_THRESHOLDS_MS.len()],
    /// Traces with at least one of those.
    pub search_traces_over: [u64; SEARCH_THRESHOLDS_MS.len()],
}

impl Counts {
    fn add_trace(&mut self, spans: &[(usize, Span)]) {
        self.traces += 1;
        let mut trace_over = [false; SEARCH_THRESHOLDS_MS.len()];
        for (service, s) in spans {
            self.spans += 1;
            if s.status
                .as_ref()
                .is_some_and(|st| st.code == StatusCode::Error as i32)
            {
                self.error_spans += 1;
            }
            if *service == SEARCH_SERVICE {
                self.search_spans += 1;
                let ns = s.end_time_unix_nano - s.start_time_unix_nano;
                for (i, ms) in SEARCH_THRESHOLDS_MS.iter().enumerate() {
                    if ns >= ms * 1_000_000 {
                        self.search_spans_over[i] += 1;
                        trace_over[i] = true;
                    }
                }
            }
        }
        for (n, over) in self.search_traces_over.iter_mut().zip(trace_over) {
            *n += u64::from(over);
        }
    }

    /// The search's `minDuration` (ms) and how many traces match it: the first threshold
    /// matched by at most 5 % of the search service's spans, or the highest any span reaches.
    pub fn search_threshold(&self) -> Option<(u64, u64)> {
        let all = SEARCH_THRESHOLDS_MS
            .iter()
            .zip(self.search_spans_over)
            .zip(self.search_traces_over);
        let mut reached = None;
        for ((ms, spans), traces) in all {
            if traces == 0 {
                break;
            }
            reached = Some((*ms, traces));
            if spans * 20 <= self.search_spans {
                break;
            }
        }
        reached
    }
}

impl Tally for Counts {
    fn merge(&mut self, o: &Self) {
        self.traces += o.traces;
        self.spans += o.spans;
        self.error_spans += o.error_spans;
        self.search_spans += o.search_spans;
        for i in 0..SEARCH_THRESHOLDS_MS.len() {
            self.search_spans_over[i] += o.search_spans_over[i];
            self.search_traces_over[i] += o.search_traces_over[i];
        }
    }
}

/// The traces' sizes, times and requests.
pub struct Plan {
    seed: u64,
    start_ns: i64,
    step_ns: i64,
    /// Spans of each trace.
    sizes: Vec<u8>,
    /// The first trace of each request, then the number of traces.
    request_starts: Vec<u64>,
}

impl Plan {
    /// `spans` spans in traces starting in `[start_ns, start_ns + window_ns)`, requests of
    /// whole traces holding at least `batch_spans` spans (the last one fewer).
    pub fn new(seed: u64, spans: u64, batch_spans: u64, start_ns: i64, window_ns: i64) -> Self {
        let mut rng = Rng::new(mix64(seed ^ 0x7ace_5175_e5a1));
        let mut sizes = Vec::with_capacity((spans / 16 + 1) as usize);
        let mut request_starts = vec![0];
        let (mut total, mut in_request) = (0u64, 0u64);
        while total < spans {
            let n = (SPANS_MIN + rng.skewed(SPANS_EXTRA_MAX + 1)).min(spans - total);
            sizes.push(n as u8);
            total += n;
            in_request += n;
            if in_request >= batch_spans && total < spans {
                request_starts.push(sizes.len() as u64);
                in_request = 0;
            }
        }
        request_starts.push(sizes.len() as u64);
        let step_ns = (window_ns / sizes.len().max(1) as i64).max(1);
        Self {
            seed,
            start_ns,
            step_ns,
            sizes,
            request_starts,
        }
    }

    pub fn start_ns(&self) -> i64 {
        self.start_ns
    }

    pub fn traces(&self) -> u64 {
        self.sizes.len() as u64
    }

    pub fn spans_of(&self, t: u64) -> u64 {
        u64::from(self.sizes[t as usize])
    }

    pub fn trace_id(&self, t: u64) -> [u8; 16] {
        let hi = mix64(self.seed ^ mix64(t ^ 0x0007_4ace_1d00)).max(1);
        let lo = mix64(hi ^ t);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&hi.to_be_bytes());
        id[8..].copy_from_slice(&lo.to_be_bytes());
        id
    }

    /// The trace id as Jaeger prints it: 32 lower-case hex digits.
    pub fn trace_id_hex(&self, t: u64) -> String {
        self.trace_id(t)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The spans of trace `t`, each with its service (an index into [`SERVICES`]), parents
    /// before children.
    pub fn trace(&self, t: u64) -> Vec<(usize, Span)> {
        let mut rng = Rng::new(mix64(self.seed.rotate_left(23) ^ mix64(t ^ 0x5ba1_15ed)));
        let trace_id = self.trace_id(t);
        let start = self.start_ns + self.step_ns * t as i64 + rng.below(self.step_ns as u64) as i64;
        let mut b = TraceBuilder {
            trace_id,
            span_seed: u64::from_be_bytes(trace_id[8..].try_into().unwrap_or_default()),
            user_id: (1 + rng.skewed(USERS)).to_string(),
            request_id: rng.uuid_v4(),
            rng,
            spans: Vec::with_capacity(self.spans_of(t) as usize),
            nodes: Vec::with_capacity(self.spans_of(t) as usize),
        };
        b.build(self.spans_of(t) as usize, start);
        b.spans
    }

    /// The request body of request `k` and what it holds.
    fn request(&self, k: u64) -> Payload<Counts> {
        let (first, end) = (
            self.request_starts[k as usize],
            self.request_starts[k as usize + 1],
        );
        let mut counts = Counts::default();
        let mut by_service: [Vec<Span>; 8] = Default::default();
        for t in first..end {
            let spans = self.trace(t);
            counts.add_trace(&spans);
            for (service, span) in spans {
                by_service[service].push(span);
            }
        }
        let resource_spans = by_service
            .into_iter()
            .enumerate()
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: self.resource(service, k),
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope(LANGS[service])),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        let body = ExportTraceServiceRequest { resource_spans }.encode_to_vec();
        Payload {
            body: Bytes::from(body),
            tally: counts,
        }
    }

    /// The resource attributes of `service`'s spans in request `k`.
    fn resource(&self, service: usize, k: u64) -> Vec<KeyValue> {
        let name = SERVICES[service];
        let pod = mix64(self.seed ^ (k << 8) ^ service as u64) % PODS;
        let pod_hash = mix64(self.seed ^ service as u64 ^ (pod << 32));
        let host = mix64(pod_hash);
        vec![
            kv_str("service.name", name),
            kv_str("service.version", VERSIONS[service]),
            kv_str(
                "host.name",
                format!(
                    "ip-10-0-{}-{}.ec2.internal",
                    host % 16,
                    (host >> 8) % 250 + 2
                ),
            ),
            kv_str("deployment.environment", "production"),
            kv_str(
                "k8s.pod.name",
                format!(
                    "{name}-{:010x}-{}",
                    pod_hash & 0xff_ffff_ffff,
                    pod_suffix(pod_hash >> 40)
                ),
            ),
            kv_str("k8s.namespace.name", "shop"),
            kv_str("telemetry.sdk.name", "opentelemetry"),
            kv_str(
                "telemetry.sdk.language",
                match LANGS[service] {
                    Lang::Node => "nodejs",
                    Lang::Java => "java",
                    Lang::Go => "go",
                },
            ),
        ]
    }
}

impl ingest::Batches<Counts> for Plan {
    fn count(&self) -> u64 {
        self.request_starts.len() as u64 - 1
    }

    fn build(&self, k: u64) -> Result<Payload<Counts>> {
        ensure!(k < self.count(), "no request {k}");
        Ok(self.request(k))
    }
}

/// The request every body goes in.
pub fn request() -> ingest::Request {
    ingest::Request {
        path: "/v1/traces",
        headers: vec![("Content-Type", "application/x-protobuf")],
    }
}

fn scope(lang: Lang) -> InstrumentationScope {
    let (name, version) = match lang {
        Lang::Node => ("@opentelemetry/instrumentation-http", "0.57.1"),
        Lang::Java => ("io.opentelemetry.spring-webmvc-6.0", "2.11.0-alpha"),
        Lang::Go => (
            "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
            "0.59.0",
        ),
    };
    InstrumentationScope {
        name: name.to_string(),
        version: version.to_string(),
        ..Default::default()
    }
}

/// Five characters as in the name of a Kubernetes pod.
fn pod_suffix(mut x: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
            x /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// A span of the trace being built, as a possible parent.
struct Node {
    service: usize,
    start: i64,
    end: i64,
    /// A server or internal span (a client span's only child is the callee's server span).
    caller: bool,
}

struct TraceBuilder {
    trace_id: [u8; 16],
    span_seed: u64,
    user_id: String,
    request_id: String,
    rng: Rng,
    spans: Vec<(usize, Span)>,
    nodes: Vec<Node>,
}

/// What a new span is.
struct NewSpan {
    service: usize,
    parent: Option<usize>,
    name: String,
    kind: SpanKind,
    start: i64,
    end: i64,
    attributes: Vec<KeyValue>,
    error: bool,
}

impl TraceBuilder {
    fn build(&mut self, n: usize, start: i64) {
        let duration = self
            .lognormal(60.0 * MS, 1.2)
            .clamp(5.0 * MS, 10_000.0 * MS) as i64;
        let route = self.pick_route(0);
        self.server_span(0, None, route, start, start + duration);
        while self.spans.len() < n {
            let p = self.pick_parent();
            let service = self.nodes[p].service;
            let left = n - self.spans.len();
            let roll = self.rng.below(100);
            if roll < 45 && left >= 2 && !DOWNSTREAM[service].is_empty() {
                self.call(p);
            } else if roll < 70 && !SQL[service].is_empty() {
                self.sql(p);
            } else if roll < 85 {
                self.redis(p);
            } else {
                self.internal(p);
            }
        }
    }

    fn lognormal(&mut self, median_ns: f64, sigma: f64) -> f64 {
        median_ns * (sigma * self.rng.normal()).exp()
    }

    fn pick<'a, T>(&mut self, list: &'a [T]) -> &'a T {
        &list[self.rng.below(list.len() as u64) as usize]
    }

    fn pick_route(&mut self, service: usize) -> &'static Route {
        let routes = ROUTES[service];
        &routes[self.rng.below(routes.len() as u64) as usize]
    }

    /// A server or internal span with time for children; the root when a few tries find none.
    fn pick_parent(&mut self) -> usize {
        for _ in 0..8 {
            let i = self.rng.below(self.nodes.len() as u64) as usize;
            let n = &self.nodes[i];
            if n.caller && n.end - n.start >= PARENT_MIN_NS {
                return i;
            }
        }
        0
    }

    /// A stretch of `parent`'s time for a child that would like `want_ns`.
    fn place(&mut self, parent: usize, want_ns: f64) -> (i64, i64) {
        let (ps, pe) = (self.nodes[parent].start, self.nodes[parent].end);
        let start = ps + ((pe - ps) as f64 * 0.5 * self.rng.unit()) as i64;
        let room = (pe - start) as f64 * (0.5 + 0.45 * self.rng.unit());
        let duration = (want_ns.min(room) as i64).clamp(1, pe - start);
        (start, start + duration)
    }

    fn error(&mut self) -> bool {
        self.rng.below(1_000) < ERROR_PER_MILLE
    }

    fn url_path(&mut self, route: &Route) -> String {
        if route.path.contains("{}") {
            let id = 1 + self.rng.below(90_000_000);
            route.path.replacen("{}", &id.to_string(), 1)
        } else {
            route.path.to_string()
        }
    }

    fn status_code(&mut self, route: &Route, error: bool) -> i64 {
        if error {
            *self.pick(&[500, 500, 502, 503, 504])
        } else if route.method == "POST" {
            201
        } else {
            200
        }
    }

    fn server_span(
        &mut self,
        service: usize,
        parent: Option<usize>,
        route: &Route,
        start: i64,
        end: i64,
    ) {
        let error = self.error();
        let status = self.status_code(route, error);
        let path = self.url_path(route);
        let attributes = vec![
            kv_str("http.method", route.method),
            kv_str("http.route", route.route),
            kv_str("url.path", path),
            kv_int("http.status_code", status),
            kv_str("user.id", self.user_id.clone()),
            kv_str("request_id", self.request_id.clone()),
        ];
        self.push(NewSpan {
            service,
            parent,
            name: format!("{} {}", route.method, route.route),
            kind: SpanKind::Server,
            start,
            end,
            attributes,
            error,
        });
    }

    /// A call from `parent`'s service to a downstream one: a client span, and under it the
    /// callee's server span (network time on either side).
    fn call(&mut self, parent: usize) {
        let caller = self.nodes[parent].service;
        let callee = *self.pick(DOWNSTREAM[caller]);
        let route = self.pick_route(callee);
        let want = self.lognormal(15.0 * MS, 1.2);
        let (start, end) = self.place(parent, want);
        let error = self.error();
        let status = self.status_code(route, error);
        let path = self.url_path(route);
        let attributes = vec![
            kv_str("http.method", route.method),
            kv_str("url.path", path),
            kv_str(
                "net.peer.name",
                format!("{}.shop.svc.cluster.local", SERVICES[callee]),
            ),
            kv_int("net.peer.port", 8080),
            kv_int("http.status_code", status),
        ];
        let client = self.push(NewSpan {
            service: caller,
            parent: Some(parent),
            name: format!("{} {}", route.method, route.route),
            kind: SpanKind::Client,
            start,
            end,
            attributes,
            error,
        });
        let d = end - start;
        let net = |rng: &mut Rng| ((30_000 + rng.below(400_000)) as i64).min(d / 10);
        let s_start = start + net(&mut self.rng);
        let s_end = (end - net(&mut self.rng)).max(s_start + 1).min(end);
        self.server_span(callee, Some(client), route, s_start, s_end);
    }

    fn sql(&mut self, parent: usize) {
        let service = self.nodes[parent].service;
        let sql = self.pick(SQL[service]);
        let want = self.lognormal(2.0 * MS, 1.0);
        let (start, end) = self.place(parent, want);
        let error = self.error();
        let attributes = vec![
            kv_str("db.system", "postgresql"),
            kv_str("db.name", SERVICES[service]),
            kv_str("db.statement", sql.statement),
            kv_str(
                "net.peer.name",
                format!("{}-db.shop.internal", SERVICES[service]),
            ),
            kv_int("net.peer.port", 5432),
        ];
        self.push(NewSpan {
            service,
            parent: Some(parent),
            name: sql.name.to_string(),
            kind: SpanKind::Client,
            start,
            end,
            attributes,
            error,
        });
    }

    fn redis(&mut self, parent: usize) {
        let service = self.nodes[parent].service;
        let (command, key) = match self.rng.below(4) {
            0 => ("SET", format!("session:{}", self.request_id)),
            1 => ("GET", format!("user:{}:profile", self.user_id)),
            2 => ("GET", format!("cart:{}", self.user_id)),
            _ => ("GET", format!("product:{}", 1 + self.rng.below(200_000))),
        };
        let want = self.lognormal(0.3 * MS, 0.6);
        let (start, end) = self.place(parent, want);
        let error = self.error();
        let attributes = vec![
            kv_str("db.system", "redis"),
            kv_str("db.statement", format!("{command} {key}")),
            kv_str("net.peer.name", "redis-master.shop.svc.cluster.local"),
            kv_int("net.peer.port", 6379),
        ];
        self.push(NewSpan {
            service,
            parent: Some(parent),
            name: format!("redis {command}"),
            kind: SpanKind::Client,
            start,
            end,
            attributes,
            error,
        });
    }

    fn internal(&mut self, parent: usize) {
        let service = self.nodes[parent].service;
        let name = *self.pick(&INTERNAL);
        let want = self.lognormal(1.0 * MS, 1.2);
        let (start, end) = self.place(parent, want);
        let error = self.error();
        self.push(NewSpan {
            service,
            parent: Some(parent),
            name: name.to_string(),
            kind: SpanKind::Internal,
            start,
            end,
            attributes: vec![kv_str("code.namespace", SERVICES[service])],
            error,
        });
    }

    fn span_id(&self, index: usize) -> Vec<u8> {
        mix64(self.span_seed ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .max(1)
            .to_be_bytes()
            .to_vec()
    }

    /// Adds the span (with its failure, when it fails); returns its index.
    fn push(&mut self, s: NewSpan) -> usize {
        let index = self.spans.len();
        let (status, events) = if s.error {
            let at = s.start + ((s.end - s.start) as f64 * (0.5 + 0.5 * self.rng.unit())) as i64;
            let (event, message) = self.exception(s.service, &s.name, at);
            (
                Some(Status {
                    message,
                    code: StatusCode::Error as i32,
                }),
                vec![event],
            )
        } else {
            (None, Vec::new())
        };
        let span = Span {
            trace_id: self.trace_id.to_vec(),
            span_id: self.span_id(index),
            parent_span_id: s.parent.map(|p| self.span_id(p)).unwrap_or_default(),
            name: s.name,
            kind: s.kind as i32,
            start_time_unix_nano: s.start as u64,
            end_time_unix_nano: s.end as u64,
            attributes: s.attributes,
            events,
            status,
            ..Default::default()
        };
        self.nodes.push(Node {
            service: s.service,
            start: s.start,
            end: s.end,
            caller: matches!(s.kind, SpanKind::Server | SpanKind::Internal),
        });
        self.spans.push((s.service, span));
        index
    }

    /// The `exception` event of a failing span, and the status message.
    fn exception(&mut self, service: usize, span_name: &str, at: i64) -> (Event, String) {
        let svc = SERVICES[service];
        let class = {
            let mut c = svc.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        };
        let ms = 1_000 * (1 + self.rng.below(30));
        let id = 1 + self.rng.below(90_000_000);
        let (line_a, line_b, line_c) = (
            20 + self.rng.below(300),
            20 + self.rng.below(300),
            20 + self.rng.below(300),
        );
        let (type_name, message, stack) = match (LANGS[service], self.rng.below(3)) {
            (Lang::Java, 0) => {
                let message = format!(
                    "HikariPool-1 - Connection is not available, request timed out after {ms}ms."
                );
                let stack = format!(
                    "java.sql.SQLTransientConnectionException: {message}\n\
                     \tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)\n\
                     \tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:197)\n\
                     \tat com.zaxxer.hikari.HikariDataSource.getConnection(HikariDataSource.java:100)\n\
                     \tat com.shop.{svc}.repository.{class}Repository.findById({class}Repository.java:{line_a})\n\
                     \tat com.shop.{svc}.service.{class}Service.handle({class}Service.java:{line_b})\n\
                     \tat com.shop.{svc}.api.{class}Controller.get({class}Controller.java:{line_c})\n\
                     \tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)\n\
                     \tat jakarta.servlet.http.HttpServlet.service(HttpServlet.java:658)"
                );
                ("java.sql.SQLTransientConnectionException", message, stack)
            }
            (Lang::Java, 1) => {
                let message = format!("Read timed out after {ms} ms ({span_name})");
                let stack = format!(
                    "java.net.SocketTimeoutException: {message}\n\
                     \tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)\n\
                     \tat java.base/java.net.Socket$SocketInputStream.read(Socket.java:1099)\n\
                     \tat okhttp3.internal.http1.Http1ExchangeCodec.readResponseHeaders(Http1ExchangeCodec.kt:180)\n\
                     \tat com.shop.{svc}.client.DownstreamClient.execute(DownstreamClient.java:{line_a})\n\
                     \tat com.shop.{svc}.service.{class}Service.handle({class}Service.java:{line_b})\n\
                     \tat com.shop.{svc}.api.{class}Controller.post({class}Controller.java:{line_c})"
                );
                ("java.net.SocketTimeoutException", message, stack)
            }
            (Lang::Java, _) => {
                let message = format!("{class} {id} is in state CANCELLED, expected PAID");
                let stack = format!(
                    "java.lang.IllegalStateException: {message}\n\
                     \tat com.shop.{svc}.domain.{class}.transition({class}.java:{line_a})\n\
                     \tat com.shop.{svc}.service.{class}Service.handle({class}Service.java:{line_b})\n\
                     \tat com.shop.{svc}.api.{class}Controller.put({class}Controller.java:{line_c})\n\
                     \tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)"
                );
                ("java.lang.IllegalStateException", message, stack)
            }
            (Lang::Go, 0) => {
                let message = format!(
                    "dial tcp 10.0.{}.{}:5432: connect: connection refused",
                    id % 16,
                    id % 250 + 2
                );
                let stack = format!(
                    "goroutine {} [running]:\n\
                     github.com/shop/{svc}/internal/store.(*Store).Get(0xc000{:06x}, {{0x1c4e7a8, 0xc0001a2b40}})\n\
                     \t/app/internal/store/store.go:{line_a} +0x1f4\n\
                     github.com/shop/{svc}/internal/api.(*Handler).serve(0xc0000b6000, {{0x1c52f60, 0xc0003d21c0}}, 0xc00045e000)\n\
                     \t/app/internal/api/handler.go:{line_b} +0x2b8\n\
                     net/http.HandlerFunc.ServeHTTP(0xc000123450, {{0x1c52f60, 0xc0003d21c0}}, 0xc00045e000)\n\
                     \t/usr/local/go/src/net/http/server.go:2220 +0x29\n\
                     net/http.serverHandler.ServeHTTP({{0xc0002f8000}}, {{0x1c52f60, 0xc0003d21c0}}, 0xc00045e000)\n\
                     \t/usr/local/go/src/net/http/server.go:3210 +0x8e",
                    1_000 + id % 90_000,
                    id & 0xff_ffff
                );
                ("*net.OpError", message, stack)
            }
            (Lang::Go, _) => {
                let message = "context deadline exceeded".to_string();
                let stack = format!(
                    "goroutine {} [running]:\n\
                     github.com/shop/{svc}/internal/client.(*Client).Do(0xc0001d4000, {{0x1c4e7a8, 0xc0002a8f00}}, 0xc0004b2000)\n\
                     \t/app/internal/client/client.go:{line_a} +0x3c5\n\
                     github.com/shop/{svc}/internal/api.(*Handler).serve(0xc0000b6000, {{0x1c52f60, 0xc0003d21c0}}, 0xc00045e000)\n\
                     \t/app/internal/api/handler.go:{line_b} +0x2b8\n\
                     net/http.HandlerFunc.ServeHTTP(0xc000123450, {{0x1c52f60, 0xc0003d21c0}}, 0xc00045e000)\n\
                     \t/usr/local/go/src/net/http/server.go:2220 +0x29",
                    1_000 + id % 90_000
                );
                ("context.deadlineExceededError", message, stack)
            }
            (Lang::Node, 0) => {
                let message = "Cannot read properties of undefined (reading 'items')".to_string();
                let stack = format!(
                    "TypeError: {message}\n    \
                     at renderCart (/app/src/pages/cart.js:{line_a}:17)\n    \
                     at handle (/app/src/routes/{svc}.js:{line_b}:12)\n    \
                     at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)\n    \
                     at next (/app/node_modules/express/lib/router/route.js:149:13)\n    \
                     at process.processTicksAndRejections (node:internal/process/task_queues:105:5)"
                );
                ("TypeError", message, stack)
            }
            (Lang::Node, _) => {
                let message = format!("upstream responded 503 after {ms} ms ({span_name})");
                let stack = format!(
                    "Error: {message}\n    \
                     at ClientRequest.<anonymous> (/app/src/lib/upstream.js:{line_a}:11)\n    \
                     at ClientRequest.emit (node:events:519:28)\n    \
                     at HTTPParser.parserOnIncomingClient (node:_http_client:702:27)\n    \
                     at async handle (/app/src/routes/{svc}.js:{line_b}:20)"
                );
                ("Error", message, stack)
            }
        };
        let event = Event {
            time_unix_nano: at as u64,
            name: "exception".to_string(),
            attributes: vec![
                kv_str("exception.type", type_name),
                kv_str("exception.message", message.clone()),
                kv_str("exception.stacktrace", stack),
            ],
            ..Default::default()
        };
        (event, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Batches as _;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    fn plan(spans: u64) -> Plan {
        Plan::new(3, spans, 500, 1_700_000_000_000_000_000, 3_600_000_000_000)
    }

    #[test]
    fn plans_every_span_in_whole_traces() {
        let p = plan(10_007);
        let sizes: u64 = (0..p.traces()).map(|t| p.spans_of(t)).sum();
        assert_eq!(sizes, 10_007);
        assert!((0..p.traces() - 1).all(|t| (5..=50).contains(&p.spans_of(t))));
        let mut counts = Counts::default();
        for k in 0..p.count() {
            counts.merge(&p.build(k).expect("build").tally);
        }
        assert_eq!((counts.spans, counts.traces), (10_007, p.traces()));
        assert!(counts.error_spans > 0 && counts.error_spans < 10_007 / 20);
    }

    #[test]
    fn traces_are_trees_in_time_and_deterministic() {
        let p = plan(5_000);
        for t in 0..p.traces() {
            let spans = p.trace(t);
            assert_eq!(spans.len() as u64, p.spans_of(t));
            let again = p.trace(t);
            assert!(spans.iter().zip(&again).all(|(a, b)| a.1 == b.1));
            assert_eq!(spans[0].1.parent_span_id, Vec::<u8>::new());
            for (i, (_, s)) in spans.iter().enumerate().skip(1) {
                let parent = spans[..i]
                    .iter()
                    .find(|(_, q)| q.span_id == s.parent_span_id)
                    .expect("the parent is an earlier span");
                assert!(s.start_time_unix_nano >= parent.1.start_time_unix_nano);
                assert!(s.end_time_unix_nano <= parent.1.end_time_unix_nano);
                assert!(s.end_time_unix_nano > s.start_time_unix_nano);
                assert_eq!(s.trace_id, p.trace_id(t).to_vec());
            }
        }
    }

    #[test]
    fn error_spans_carry_an_exception() {
        let p = plan(20_000);
        let failed: Vec<Span> = (0..p.traces())
            .flat_map(|t| p.trace(t))
            .map(|(_, s)| s)
            .filter(|s| s.status.is_some())
            .collect();
        assert!(!failed.is_empty());
        for s in failed {
            let e = &s.events[0];
            assert_eq!(e.name, "exception");
            let stack = e
                .attributes
                .iter()
                .find(|a| a.key == "exception.stacktrace")
                .and_then(|a| a.value.as_ref()?.value.as_ref());
            assert!(matches!(stack, Some(Value::StringValue(t)) if t.lines().count() > 3));
        }
    }

    #[test]
    fn picks_a_search_threshold() {
        let p = plan(50_000);
        let mut counts = Counts::default();
        for k in 0..p.count() {
            counts.merge(&p.build(k).expect("build").tally);
        }
        let (ms, traces) = counts.search_threshold().expect("a threshold");
        assert!(traces > 0 && ms >= 20, "{ms} ms, {traces} traces");
    }
}
