//! Kubernetes-style health probes: `/health/live`, `/health/ready`, `/health/startup`.
//!
//! # Why
//! The three probes answer different questions and must not be conflated:
//! - **live**: is the process able to make progress? It spawns a task on the Tokio runtime
//!   and waits for it within a timeout; a wedged runtime (all workers blocked) fails it and
//!   the orchestrator restarts the process. Dependencies are deliberately *not* checked: a
//!   database outage must not restart every replica.
//! - **ready**: may traffic be sent here? Every registered dependency check must pass.
//! - **startup**: has start-up finished? A flag the service flips with [`Health::started`].
//!
//! Each answers 200 (`"status": "ok"`) or 503 (`"status": "fail"`) with the JSON body
//! `{"status", "checks": {name: {"status", "error"?, "duration_ms"}}}`.
//!
//! # Invariants
//! - Every check runs under a timeout ([`HealthBuilder::timeout`], default 2 s); a check that
//!   does not answer in time fails with the error `timed out after ...`.
//! - A check's result is cached for [`HealthBuilder::cache_ttl`] (default 2 s), and
//!   concurrent probes of one check wait for the single run in progress, so a probe storm
//!   runs each dependency check at most once per TTL.
//! - Checks of one probe run concurrently, so the probe takes as long as its slowest check.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use serde::Serialize;

/// The outcome of a probe or of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Healthy.
    Ok,
    /// Unhealthy.
    Fail,
}

/// The result of one check, as reported in `checks`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// Whether the check passed.
    pub status: Status,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the check took, in milliseconds.
    pub duration_ms: f64,
}

/// The body of a probe response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// `ok` when every check passed.
    pub status: Status,
    /// Each check by name.
    pub checks: BTreeMap<String, CheckReport>,
}

impl HealthReport {
    fn from_checks(checks: BTreeMap<String, CheckReport>) -> Self {
        let ok = checks.values().all(|c| c.status == Status::Ok);
        HealthReport {
            status: if ok { Status::Ok } else { Status::Fail },
            checks,
        }
    }

    /// The HTTP status the report is served with: 200 or 503.
    pub fn http_status(&self) -> StatusCode {
        match self.status {
            Status::Ok => StatusCode::OK,
            Status::Fail => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for HealthReport {
    fn into_response(self) -> Response {
        (self.http_status(), axum::Json(self)).into_response()
    }
}

type CheckFn = dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync;

/// A registered dependency check with its cached result.
struct Check {
    name: String,
    run: Box<CheckFn>,
    cache: tokio::sync::Mutex<Option<(Instant, CheckReport)>>,
}

/// Configures a [`Health`]: timeouts, cache TTL and dependency checks.
pub struct HealthBuilder {
    timeout: Duration,
    cache_ttl: Duration,
    checks: Vec<Check>,
}

impl std::fmt::Debug for HealthBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthBuilder")
            .field("timeout", &self.timeout)
            .field("cache_ttl", &self.cache_ttl)
            .field(
                "checks",
                &self.checks.iter().map(|c| &c.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for HealthBuilder {
    fn default() -> Self {
        HealthBuilder {
            timeout: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(2),
            checks: Vec::new(),
        }
    }
}

impl HealthBuilder {
    /// The time limit of each check and of the liveness probe (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a check result is reused (default 2 s); zero disables caching.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Adds a readiness check: an async closure returning `Err(reason)` when the dependency
    /// is unusable.
    pub fn check<F, Fut>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.push(Check {
            name: name.into(),
            run: Box::new(move || Box::pin(check())),
            cache: tokio::sync::Mutex::new(None),
        });
        self
    }

    /// Adds a readiness check that opens a TCP connection to `addr` (`host:port`).
    pub fn tcp_check(self, name: impl Into<String>, addr: impl Into<String>) -> Self {
        let addr: Arc<str> = addr.into().into();
        self.check(name, move || tcp(Arc::clone(&addr)))
    }

    /// Adds a readiness check that connects to the host and port of a URL such as
    /// `redis://cache:6379/0` or `postgres://user:pw@db/orders`; see [`url_address`].
    pub fn url_check(self, name: impl Into<String>, url: &str) -> Self {
        self.tcp_check(name, url_address(url))
    }

    /// Adds a readiness check that asks Redis at `url` (`redis://host:port/db`) for `PING`
    /// and wants `+PONG` (or `-NOAUTH`, which proves Redis answers) back.
    pub fn redis_check(self, name: impl Into<String>, url: &str) -> Self {
        let addr: Arc<str> = url_address(url).into();
        self.check(name, move || redis_ping(Arc::clone(&addr)))
    }

    /// Adds a readiness check that asks PostgreSQL at `url`
    /// (`postgres://user:pw@host:port/db`) whether it accepts sessions, as `pg_isready`
    /// does; see [`postgres_hello`].
    pub fn postgres_check(self, name: impl Into<String>, url: &str) -> Self {
        let url: Arc<str> = url.into();
        self.check(name, move || postgres_hello(Arc::clone(&url)))
    }

    /// Builds the shareable [`Health`].
    pub fn build(self) -> Health {
        Health {
            inner: Arc::new(Inner {
                started: AtomicBool::new(false),
                timeout: self.timeout,
                cache_ttl: self.cache_ttl,
                checks: self.checks,
            }),
        }
    }
}

struct Inner {
    started: AtomicBool,
    timeout: Duration,
    cache_ttl: Duration,
    checks: Vec<Check>,
}

/// The health state of a service: the start-up flag and the readiness checks. Cheap to clone.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("started", &self.is_started())
            .field("checks", &self.inner.checks.len())
            .finish()
    }
}

impl Health {
    /// A builder for checks and timeouts.
    pub fn builder() -> HealthBuilder {
        HealthBuilder::default()
    }

    /// Marks start-up as done: `/health/startup` answers 200 from now on.
    pub fn started(&self) {
        self.inner.started.store(true, Ordering::Release);
    }

    /// Whether [`Health::started`] was called.
    pub fn is_started(&self) -> bool {
        self.inner.started.load(Ordering::Acquire)
    }

    /// Liveness: a task spawned on the runtime must run within the timeout.
    pub async fn live(&self) -> HealthReport {
        let start = Instant::now();
        let outcome = tokio::time::timeout(self.inner.timeout, tokio::spawn(async {})).await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("probe task failed: {e}")),
            Err(_) => Some(timed_out(self.inner.timeout)),
        };
        single("runtime", error, start)
    }

    /// Readiness: every registered check passes (cached for the TTL).
    pub async fn ready(&self) -> HealthReport {
        let runs = self
            .inner
            .checks
            .iter()
            .map(|check| async move { (check.name.clone(), self.run_check(check).await) });
        HealthReport::from_checks(futures::future::join_all(runs).await.into_iter().collect())
    }

    /// Start-up: whether [`Health::started`] was called.
    pub fn startup(&self) -> HealthReport {
        let error = (!self.is_started()).then(|| "start-up not complete".to_owned());
        single("startup", error, Instant::now())
    }

    /// Runs one check unless a fresh cached result exists; concurrent callers share a run.
    async fn run_check(&self, check: &Check) -> CheckReport {
        let mut cache = check.cache.lock().await;
        if let Some((at, report)) = cache.as_ref()
            && at.elapsed() < self.inner.cache_ttl
        {
            return report.clone();
        }
        let start = Instant::now();
        let error = match tokio::time::timeout(self.inner.timeout, (check.run)()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(timed_out(self.inner.timeout)),
        };
        let report = CheckReport {
            status: if error.is_none() {
                Status::Ok
            } else {
                Status::Fail
            },
            error,
            duration_ms: start.elapsed().as_secs_f64() * 1000.0,
        };
        *cache = Some((Instant::now(), report.clone()));
        report
    }

    /// An axum router with `GET /health/live`, `/health/ready` and `/health/startup`.
    pub fn router(&self) -> Router {
        let (live, ready, startup) = (self.clone(), self.clone(), self.clone());
        Router::new()
            .route(
                "/health/live",
                get(move || {
                    let h = live.clone();
                    async move { h.live().await }
                }),
            )
            .route(
                "/health/ready",
                get(move || {
                    let h = ready.clone();
                    async move { h.ready().await }
                }),
            )
            .route(
                "/health/startup",
                get(move || {
                    let h = startup.clone();
                    async move { h.startup() }
                }),
            )
    }
}

fn timed_out(timeout: Duration) -> String {
    format!("timed out after {} ms", timeout.as_millis())
}

/// A report holding the single check `name`.
fn single(name: &str, error: Option<String>, start: Instant) -> HealthReport {
    let report = CheckReport {
        status: if error.is_none() {
            Status::Ok
        } else {
            Status::Fail
        },
        error,
        duration_ms: start.elapsed().as_secs_f64() * 1000.0,
    };
    HealthReport::from_checks(BTreeMap::from([(name.to_owned(), report)]))
}

/// Checks that a TCP connection to `addr` (`host:port`) can be opened, e.g. to Redis or
/// PostgreSQL. The caller's timeout bounds it.
pub async fn tcp(addr: impl AsRef<str>) -> Result<(), String> {
    let addr = addr.as_ref();
    tokio::net::TcpStream::connect(addr)
        .await
        .map(drop)
        .map_err(|e| format!("connect {addr}: {e}"))
}

async fn exchange(addr: &str, send: &[u8], reply: &mut [u8]) -> Result<usize, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .write_all(send)
        .await
        .map_err(|e| format!("write to {addr}: {e}"))?;
    let n = stream
        .read(reply)
        .await
        .map_err(|e| format!("read from {addr}: {e}"))?;
    if n == 0 {
        return Err(format!("{addr} closed the connection"));
    }
    Ok(n)
}

/// Sends Redis `PING`; the caller's timeout bounds it.
pub async fn redis_ping(addr: impl AsRef<str>) -> Result<(), String> {
    let addr = addr.as_ref();
    let mut reply = [0u8; 64];
    let n = exchange(addr, b"*1\r\n$4\r\nPING\r\n", &mut reply).await?;
    let reply = String::from_utf8_lossy(&reply[..n]);
    if reply.starts_with("+PONG") || reply.starts_with("-NOAUTH") {
        Ok(())
    } else {
        Err(format!("{addr} answered PING with {:?}", reply.trim_end()))
    }
}

/// Asks the PostgreSQL server at `url` (`postgres://user:pw@host:port/db`) whether it
/// accepts sessions, as `pg_isready` does: it sends a protocol 3.0 startup message for the
/// URL's user (default `postgres`) and database (default: the user) and reads the first
/// reply. An authentication request, or any error but "starting up / shutting down /
/// recovering" (SQLSTATE `57P03`) and "too many connections" (`53300`), means the server is
/// up and taking connections; a wrong password is the caller's problem, not a readiness
/// one. The caller's timeout bounds it; no password is ever sent.
pub async fn postgres_hello(url: impl AsRef<str>) -> Result<(), String> {
    let url = url.as_ref();
    let addr = url_address(url);
    let (user, database) = postgres_user_and_database(url);
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
    for (key, value) in [
        ("user", user.as_str()),
        ("database", database.as_str()),
        ("application_name", "health-check"),
    ] {
        for part in [key, value] {
            body.extend_from_slice(part.as_bytes());
            body.push(0);
        }
    }
    body.push(0);
    let mut message = u32::try_from(body.len() + 4)
        .map_err(|_| "startup message too long".to_owned())?
        .to_be_bytes()
        .to_vec();
    message.extend_from_slice(&body);
    let mut reply = [0u8; 512];
    let n = exchange(&addr, &message, &mut reply).await?;
    match reply[0] {
        b'R' => Ok(()),
        b'E' => {
            let (code, text) = postgres_error(&reply[..n]);
            match code.as_str() {
                "57P03" | "53300" => Err(format!("{addr} rejects connections: {text}")),
                _ => Ok(()),
            }
        }
        other => Err(format!("{addr} is not PostgreSQL (answered {other:#04x})")),
    }
}

/// The user and database of a `postgres://` URL, with PostgreSQL's defaults.
fn postgres_user_and_database(url: &str) -> (String, String) {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let user = authority
        .rsplit_once('@')
        .map(|(info, _)| info.split(':').next().unwrap_or_default())
        .filter(|u| !u.is_empty())
        .unwrap_or("postgres");
    let database = path
        .split(['?', '#'])
        .next()
        .filter(|d| !d.is_empty())
        .unwrap_or(user);
    (user.to_owned(), database.to_owned())
}

/// The SQLSTATE (`C`) and message (`M`) fields of an ErrorResponse: after the type byte and
/// length, `(field type, NUL-terminated text)` pairs up to a lone NUL.
fn postgres_error(message: &[u8]) -> (String, String) {
    let (mut code, mut text) = (String::new(), String::new());
    let mut fields = message.get(5..).unwrap_or_default();
    while let [kind, rest @ ..] = fields {
        if *kind == 0 {
            break;
        }
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let value = String::from_utf8_lossy(&rest[..end]).into_owned();
        match kind {
            b'C' => code = value,
            b'M' => text = value,
            _ => {}
        }
        fields = rest.get(end + 1..).unwrap_or_default();
    }
    (code, text)
}

/// The `host:port` of a URL, with the scheme's default port when none is given (`redis`
/// 6379, `rediss` 6380, `postgres`/`postgresql` 5432, `mysql` 3306, `amqp` 5672,
/// `http` 80, `https` 443). A string without `://` is returned as it is.
pub fn url_address(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let has_port = match host_port.rfind(']') {
        Some(end) => host_port[end..].contains(':'),
        None => host_port.contains(':'),
    };
    if has_port {
        return host_port.to_owned();
    }
    let port = match scheme {
        "redis" => 6379,
        "rediss" => 6380,
        "postgres" | "postgresql" => 5432,
        "mysql" => 3306,
        "amqp" => 5672,
        "https" => 443,
        _ => 80,
    };
    format!("{host_port}:{port}")
}
