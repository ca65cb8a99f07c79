//! `sightline serve`: wires store → api, starts the listeners, runs the background work
//! (flush, compaction, retention), and on SIGTERM/SIGINT stops in reverse: refuse new work,
//! finish requests in flight, flush the heads, exit.
//!
//! The HTTP listener starts before the store opens so `/health/startup` can say "not yet"
//! while a long WAL replays; ingest and queries answer 503 until then.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use sightline_api::{ApiMetrics, AppState, Limits};
use sightline_store::{Store, StoreConfig, StoreMetrics};

use crate::cli::ServeArgs;
use crate::config::{self, DEFAULT_DATA_DIR, DEFAULT_GRPC_ADDR, DEFAULT_HTTP_ADDR, FileConfig};

/// How often the background loop looks at the heads.
const FLUSH_CHECK_INTERVAL: Duration = Duration::from_secs(1);
const COMPACT_INTERVAL: Duration = Duration::from_secs(60);
const RETENTION_INTERVAL: Duration = Duration::from_secs(600);

pub async fn run(args: ServeArgs) -> Result<()> {
    init_tracing();
    let file = match &args.config {
        Some(p) => config::load(p)?,
        None => FileConfig::default(),
    };
    let http_addr = args
        .http_addr
        .clone()
        .or(file.http_addr.clone())
        .unwrap_or(DEFAULT_HTTP_ADDR.into());
    let grpc_addr = args
        .grpc_addr
        .clone()
        .or(file.grpc_addr.clone())
        .unwrap_or(DEFAULT_GRPC_ADDR.into());
    let data_dir = args
        .data_dir
        .clone()
        .or(file.storage.data_dir.clone())
        .unwrap_or(DEFAULT_DATA_DIR.into());

    let mut store_config = StoreConfig::new(&data_dir);
    store_config.object_store_url = file.storage.object_store_url.clone();
    if let Some(r) = file.retention()? {
        store_config.retention = r;
    }
    if let Some(i) = file.flush_interval()? {
        store_config.flush_interval = i;
    }
    if let Some(b) = file.storage.flush_bytes {
        store_config.flush_bytes = b;
    }
    if let Some(b) = file.storage.head_bytes_max {
        store_config.head_bytes_max = b;
    }
    if let Some(n) = file.storage.series_per_tenant_max {
        store_config.series_per_tenant_max = n;
    }
    let mut limits = Limits::default();
    if let Some(v) = file.limits.request_bytes_max {
        limits.request_bytes_max = v;
    }
    if let Some(v) = file.limits.decompressed_bytes_max {
        limits.decompressed_bytes_max = v;
    }
    if let Some(v) = file.limits.query_entries_max {
        limits.query_entries_max = v;
    }
    if let Some(v) = file.limits.query_samples_max {
        limits.query_samples_max = v;
    }

    let mut registry = Registry::default();
    let store_metrics = StoreMetrics::default();
    store_metrics.register(&mut registry);
    let api_metrics = ApiMetrics::default();
    api_metrics.register(&mut registry);
    let alert_metrics = sightline_alert::AlertMetrics::default();
    alert_metrics.register(&mut registry);
    let alerting = sightline_alert::Alerting::new(file.alerting(&data_dir), alert_metrics)
        .context("start alerting")?;
    let state = Arc::new(AppState::new(registry, api_metrics, limits));
    state.set_alerting(alerting.clone());

    let http = TcpListener::bind(&http_addr)
        .await
        .with_context(|| format!("listen on {http_addr} (http)"))?;
    let grpc = TcpListener::bind(&grpc_addr)
        .await
        .with_context(|| format!("listen on {grpc_addr} (grpc)"))?;
    let (stop_tx, stop_rx) = watch::channel(false);

    let http_task = {
        let app = sightline_api::router(state.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            axum::serve(http, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        })
    };
    tracing::info!(%http_addr, %grpc_addr, data_dir = %data_dir.display(), "listening; opening the store");

    let (store, stats) = Store::open(store_config, store_metrics)
        .await
        .with_context(|| format!("open store in {}", data_dir.display()))?;
    tracing::info!(
        checkpoint = stats.checkpoint,
        replayed_records = stats.replay.records,
        torn_tails = stats.replay.torn_tails,
        segments = stats.segments,
        "store open"
    );
    state.set_store(store.clone());

    let grpc_task = {
        let mut stop = stop_rx.clone();
        let service = sightline_api::grpc::logs_service(state.clone());
        let metrics_service = sightline_api::grpc::metrics_service(state.clone());
        let trace_service = sightline_api::grpc::trace_service(state.clone());
        let incoming = tonic::transport::server::TcpIncoming::from(grpc);
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .layer(sightline_api::grpc::bad_protobuf_layer())
                .add_service(service)
                .add_service(metrics_service)
                .add_service(trace_service)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        })
    };
    let background = tokio::spawn(background_loop(store.clone(), stop_rx.clone()));
    let span_metrics = tokio::spawn(span_metrics_loop(
        state.clone(),
        store.clone(),
        file.span_metrics_interval()?,
        stop_rx.clone(),
    ));
    let alert_tasks = alerting.start(
        Arc::new(StoreBackend {
            store: store.clone(),
        }),
        stop_rx.clone(),
    );
    let scraper = start_scraping(&file, &store).await?;
    if let Some(m) = &scraper {
        state.set_scraper(m.clone());
    }

    wait_for_signal().await;
    tracing::info!("shutting down: finishing requests, then flushing");
    state.begin_shutdown();
    let _ = stop_tx.send(true);
    http_task
        .await
        .context("http server task")?
        .context("http server")?;
    grpc_task
        .await
        .context("grpc server task")?
        .context("grpc server")?;
    let _ = background.await;
    let _ = span_metrics.await;
    write_span_metrics(&state, &store).await;
    for t in alert_tasks {
        let _ = t.await;
    }
    if let Err(e) = alerting.save() {
        tracing::warn!(error = %e, "saving alerting state failed");
    }
    if let Some(m) = scraper {
        // Writes the staleness markers of every target before the final flush.
        m.stop().await;
    }
    store.flush().await.context("final flush")?;
    tracing::info!("flushed; bye");
    Ok(())
}

/// Starts the scrape manager when the config has `scrape_configs`; scrapes are appended to
/// the store like any other write.
async fn start_scraping(
    file: &FileConfig,
    store: &Arc<Store>,
) -> Result<Option<sightline_scrape::ScrapeManager>> {
    if file.scrape_configs.is_empty() {
        return Ok(None);
    }
    let sink_store = store.clone();
    let sink = move |batch: sightline_model::MetricBatch| {
        let store = sink_store.clone();
        async move {
            store
                .append_metrics(Arc::new(batch))
                .await
                .map_err(|e| e.to_string())
        }
    };
    let manager = sightline_scrape::ScrapeManager::start(
        file.global.clone(),
        file.scrape_configs.clone(),
        sink,
    )
    .await
    .context("start scraping")?;
    tracing::info!(jobs = file.scrape_configs.len(), "scraping");
    Ok(Some(manager))
}

/// Alerting reads and writes the store.
struct StoreBackend {
    store: Arc<Store>,
}

impl sightline_alert::Backend for StoreBackend {
    fn source(&self) -> Arc<dyn sightline_query::promql::SeriesSource> {
        Arc::new(sightline_api::source::StoreSeries::new(self.store.clone()))
    }

    fn append(
        &self,
        batch: sightline_model::MetricBatch,
    ) -> futures::future::BoxFuture<'static, Result<(), String>> {
        let store = self.store.clone();
        Box::pin(async move {
            if batch.series.is_empty() {
                return Ok(());
            }
            store
                .append_metrics(Arc::new(batch))
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Writes the span metrics as samples every `every`.
async fn span_metrics_loop(
    state: Arc<AppState>,
    store: Arc<Store>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => write_span_metrics(&state, &store).await,
        }
    }
}

async fn write_span_metrics(state: &AppState, store: &Store) {
    let now_ms = sightline_model::now_ns() / 1_000_000;
    for batch in state.span_metrics.snapshot(now_ms) {
        if let Err(e) = store.append_metrics(Arc::new(batch)).await {
            tracing::warn!(error = %e, "writing span metrics failed");
        }
    }
}

async fn background_loop(store: Arc<Store>, mut stop: watch::Receiver<bool>) {
    let mut flush_tick = tokio::time::interval(FLUSH_CHECK_INTERVAL);
    let mut compact_tick = tokio::time::interval(COMPACT_INTERVAL);
    let mut retention_tick = tokio::time::interval(RETENTION_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = flush_tick.tick() => {
                // Failures are logged and counted by the store; the heads stay for a retry.
                let _ = store.maybe_flush().await;
            }
            _ = compact_tick.tick() => {
                if let Err(e) = store.compact().await {
                    tracing::error!(error = %e, "compaction failed");
                }
            }
            _ = retention_tick.tick() => {
                match store.apply_retention().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(segments = n, "retention deleted segments"),
                    Err(e) => tracing::error!(error = %e, "retention failed"),
                }
            }
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGHTLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
