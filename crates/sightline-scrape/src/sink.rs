//! Where scraped batches go.
//!
//! A scrape loop hands each scrape's output (samples, the synthetic `up` and `scrape_*`
//! series, staleness markers) to its sink as one [`MetricBatch`] and waits for the returned
//! future before scraping again, so a slow store slows scraping down (ticks are skipped, as
//! Prometheus skips them) instead of piling batches up in memory. An error is logged and the
//! loop goes on; the batch is not retried.
//!
//! The trait is object-safe without `async_trait`: [`ScrapeSink::write`] returns a boxed
//! future. Any `Fn(MetricBatch) -> impl Future<Output = Result<(), String>>` is a sink, so the
//! server can pass a closure over its store:
//!
//! ```ignore
//! let sink = move |batch: MetricBatch| {
//!     let store = store.clone();
//!     async move { store.append_metrics(Arc::new(batch)).await.map_err(|e| e.to_string()) }
//! };
//! ```

use std::future::Future;
use std::pin::Pin;

use sightline_model::MetricBatch;

/// The future a sink returns: `Err` carries a message for the log.
pub type SinkFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// Receives every scrape's batch.
pub trait ScrapeSink: Send + Sync + 'static {
    fn write(&self, batch: MetricBatch) -> SinkFuture;
}

impl<F, Fut> ScrapeSink for F
where
    F: Fn(MetricBatch) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    fn write(&self, batch: MetricBatch) -> SinkFuture {
        Box::pin(self(batch))
    }
}
