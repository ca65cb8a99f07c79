//! The seed's scenario as one binary with three roles, instrumented with `sightline-sdk`:
//!
//! - `--role orders`: `GET /api/users/{id}`, and `POST /api/orders`, which validates the
//!   order, reserves stock at the inventory service and charges at the payment service
//!   (both over HTTP with the trace and the request id propagated), then counts
//!   `orders_total{product,country}`, `revenue_total` and the `order_amount` summary;
//! - `--role inventory`: `POST /api/inventory/reserve`;
//! - `--role payment`: `POST /api/payments`.
//!
//! Every role serves `/health/live`, `/health/ready` (Redis and PostgreSQL checks when their
//! URLs are given) and `/health/startup`, `/metrics` on `--metrics-port`, and can fail a
//! share of its requests (`--error-rate`, deterministic: every n-th) and add latency
//! (`--latency-ms`) to feed SLO demos. Traces and logs go to `OTEL_EXPORTER_OTLP_ENDPOINT`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::{Parser, ValueEnum};
use prometheus_client::encoding::EncodeLabelSet;
use serde::Deserialize;
use serde_json::{Value, json};
use sightline_sdk::prometheus_client::metrics::counter::Counter;
use sightline_sdk::prometheus_client::metrics::family::Family;
use sightline_sdk::reqwest_middleware::ClientWithMiddleware;
use sightline_sdk::{Health, HttpLayer, Summary};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Role {
    Orders,
    Inventory,
    Payment,
}

impl Role {
    fn service(self) -> &'static str {
        match self {
            Role::Orders => "orders",
            Role::Inventory => "inventory",
            Role::Payment => "payment",
        }
    }
}

#[derive(Parser, Debug)]
#[command(about = "The orders / inventory / payment example services")]
struct Args {
    #[arg(long, value_enum)]
    role: Role,
    #[arg(long, default_value_t = 8080)]
    port: u16,
    #[arg(long, default_value_t = 9464)]
    metrics_port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    inventory_url: String,
    #[arg(long, default_value = "http://127.0.0.1:8082")]
    payment_url: String,
    #[arg(long)]
    redis_url: Option<String>,
    #[arg(long)]
    database_url: Option<String>,
    /// Share of requests answered 500 (0 to 1), spread evenly.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Added to every request.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OrderLabels {
    product: String,
    country: String,
}

struct App {
    args: Args,
    client: ClientWithMiddleware,
    requests: AtomicU64,
    orders: Family<OrderLabels, Counter>,
    revenue: Counter<f64, std::sync::atomic::AtomicU64>,
    order_amount: Summary,
}

type Shared = Arc<App>;

impl App {
    /// The configured latency, then `Err(500)` for the configured share of requests.
    async fn chaos(&self) -> Result<(), (StatusCode, Json<Value>)> {
        if self.args.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.args.latency_ms)).await;
        }
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let rate = self.args.error_rate.clamp(0.0, 1.0);
        // Fail when the running count of failures due crosses an integer: exactly `rate`.
        if (n as f64 * rate).floor() > ((n - 1) as f64 * rate).floor() {
            tracing::error!(request = n, "injected failure");
            return Err(problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "injected failure",
            ));
        }
        Ok(())
    }
}

fn problem(status: StatusCode, message: &str) -> (StatusCode, Json<Value>) {
    (status, Json(json!({"error": message})))
}

type Reply = Result<(StatusCode, Json<Value>), (StatusCode, Json<Value>)>;

async fn get_user(State(app): State<Shared>, Path(id): Path<u64>) -> Reply {
    app.chaos().await?;
    if id == 0 {
        return Err(problem(StatusCode::NOT_FOUND, "no user 0"));
    }
    tracing::info!(user_id = id, "user fetched");
    Ok((
        StatusCode::OK,
        Json(json!({"id": id, "name": format!("user-{id}")})),
    ))
}

#[derive(Debug, Deserialize)]
struct Order {
    user_id: u64,
    product: String,
    quantity: u32,
    price: f64,
    #[serde(default = "default_country")]
    country: String,
}

fn default_country() -> String {
    "US".into()
}

#[tracing::instrument(skip(app), err)]
async fn call(app: &App, url: String, body: Value) -> Result<Value, String> {
    let r = app
        .client
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("{url} answered {status}: {v}"));
    }
    Ok(v)
}

async fn place_order(
    State(app): State<Shared>,
    body: Result<Json<Order>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    let Json(order) =
        body.map_err(|e| problem(StatusCode::UNPROCESSABLE_ENTITY, &e.body_text()))?;
    if order.product.trim().is_empty()
        || order.quantity == 0
        || !order.price.is_finite()
        || order.price <= 0.0
    {
        tracing::warn!(?order, "invalid order");
        return Err(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "product, a quantity above 0 and a price above 0 are required",
        ));
    }
    app.chaos().await?;
    let inventory = format!("{}/api/inventory/reserve", app.args.inventory_url);
    call(
        &app,
        inventory,
        json!({"product": order.product, "quantity": order.quantity}),
    )
    .await
    .map_err(|e| problem(StatusCode::BAD_GATEWAY, &e))?;
    let amount = order.price * f64::from(order.quantity);
    let payment = format!("{}/api/payments", app.args.payment_url);
    let paid = call(
        &app,
        payment,
        json!({"user_id": order.user_id, "amount": amount}),
    )
    .await
    .map_err(|e| problem(StatusCode::BAD_GATEWAY, &e))?;
    app.orders
        .get_or_create(&OrderLabels {
            product: order.product.clone(),
            country: order.country.clone(),
        })
        .inc();
    app.revenue.inc_by(amount);
    app.order_amount.observe(amount);
    let order_id = uuid::Uuid::new_v4().to_string();
    tracing::info!(
        order_id,
        user_id = order.user_id,
        product = order.product,
        amount,
        "order placed"
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({"order_id": order_id, "status": "placed", "payment": paid})),
    ))
}

async fn reserve(State(app): State<Shared>, Json(body): Json<Value>) -> Reply {
    app.chaos().await?;
    let quantity = body["quantity"].as_u64().unwrap_or(0);
    if quantity > 100 {
        return Err(problem(StatusCode::CONFLICT, "not enough stock"));
    }
    tracing::info!(
        product = body["product"].as_str().unwrap_or(""),
        quantity,
        "stock reserved"
    );
    Ok((StatusCode::OK, Json(json!({"reserved": true}))))
}

async fn pay(State(app): State<Shared>, Json(body): Json<Value>) -> Reply {
    app.chaos().await?;
    let payment_id = uuid::Uuid::new_v4().to_string();
    tracing::info!(
        payment_id,
        amount = body["amount"].as_f64().unwrap_or(0.0),
        "payment accepted"
    );
    Ok((StatusCode::OK, Json(json!({"payment_id": payment_id}))))
}

/// SIGINT or SIGTERM (what Kubernetes sends).
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let guard = sightline_sdk::Builder::new(args.role.service())
        .metrics_addr(Some(SocketAddr::new(args.host, args.metrics_port)))
        .init()
        .await?;
    let metrics = guard.metrics();
    let mut health = Health::builder();
    if let Some(url) = &args.redis_url {
        health = health.redis_check("redis", url);
    }
    if let Some(url) = &args.database_url {
        health = health.postgres_check("postgres", url);
    }
    let health = health.build();
    let app = Arc::new(App {
        client: sightline_sdk::client::traced(reqwest::Client::new()),
        requests: AtomicU64::new(0),
        orders: metrics.counter_family("orders", "Orders placed"),
        revenue: metrics.register("revenue", "Revenue of placed orders", Counter::default()),
        order_amount: metrics.summary("order_amount", "Amount of placed orders"),
        args,
    });
    let routes = match app.args.role {
        Role::Orders => Router::new()
            .route("/api/users/{id}", get(get_user))
            .route("/api/orders", post(place_order)),
        Role::Inventory => Router::new().route("/api/inventory/reserve", post(reserve)),
        Role::Payment => Router::new().route("/api/payments", post(pay)),
    };
    let router = routes
        .with_state(app.clone())
        .layer(HttpLayer::new(metrics))
        .merge(health.router());
    let addr = SocketAddr::new(app.args.host, app.args.port);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, role = app.args.role.service(), "listening");
    health.started();
    axum::serve(listener, router)
        .with_graceful_shutdown(stop_signal())
        .await?;
    drop(guard);
    Ok(())
}
