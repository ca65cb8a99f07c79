//! The store's own metrics, registered into the server's `prometheus-client` registry.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use std::sync::atomic::AtomicU64;

#[derive(Clone)]
pub struct StoreMetrics {
    pub wal_fsync_seconds: Histogram,
    pub wal_replayed_records: Counter,
    pub wal_torn_tails: Counter,
    pub segments: Gauge,
    pub segment_bytes: Gauge,
    pub head_bytes: Gauge,
    pub flushes: Counter,
    pub flush_failures: Counter,
    pub compactions: Counter,
    pub retention_deleted_segments: Counter,
    pub scanned_blocks: Counter,
    pub skipped_blocks: Counter,
    pub segment_bytes_read: Counter<u64, AtomicU64>,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            wal_fsync_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            wal_replayed_records: Counter::default(),
            wal_torn_tails: Counter::default(),
            segments: Gauge::default(),
            segment_bytes: Gauge::default(),
            head_bytes: Gauge::default(),
            flushes: Counter::default(),
            flush_failures: Counter::default(),
            compactions: Counter::default(),
            retention_deleted_segments: Counter::default(),
            scanned_blocks: Counter::default(),
            skipped_blocks: Counter::default(),
            segment_bytes_read: Counter::default(),
        }
    }
}

impl StoreMetrics {
    /// Registers every metric under `sightline_` names.
    pub fn register(&self, r: &mut Registry) {
        r.register_with_unit(
            "sightline_wal_fsync",
            "Time each WAL group commit's write and fdatasync took",
            prometheus_client::registry::Unit::Seconds,
            self.wal_fsync_seconds.clone(),
        );
        r.register(
            "sightline_wal_replayed_records",
            "WAL records replayed at start-up",
            self.wal_replayed_records.clone(),
        );
        r.register(
            "sightline_wal_torn_tails",
            "WAL files whose torn tail was cut off at start-up",
            self.wal_torn_tails.clone(),
        );
        r.register(
            "sightline_store_segments",
            "Segments in the catalog",
            self.segments.clone(),
        );
        r.register_with_unit(
            "sightline_store_segment",
            "Bytes of segments in the catalog",
            prometheus_client::registry::Unit::Bytes,
            self.segment_bytes.clone(),
        );
        r.register_with_unit(
            "sightline_store_head",
            "Raw bytes held in the in-memory head",
            prometheus_client::registry::Unit::Bytes,
            self.head_bytes.clone(),
        );
        r.register(
            "sightline_store_flushes",
            "Head flushes to segments",
            self.flushes.clone(),
        );
        r.register(
            "sightline_store_flush_failures",
            "Head flushes that failed and will be retried",
            self.flush_failures.clone(),
        );
        r.register(
            "sightline_store_compactions",
            "Compactions that merged segments",
            self.compactions.clone(),
        );
        r.register(
            "sightline_store_retention_deleted_segments",
            "Segments deleted by retention",
            self.retention_deleted_segments.clone(),
        );
        r.register(
            "sightline_store_scanned_blocks",
            "Segment blocks read by queries",
            self.scanned_blocks.clone(),
        );
        r.register(
            "sightline_store_skipped_blocks",
            "Segment blocks skipped by time, stream or bloom filter",
            self.skipped_blocks.clone(),
        );
        r.register_with_unit(
            "sightline_store_segment_read",
            "Segment bytes read by queries",
            prometheus_client::registry::Unit::Bytes,
            self.segment_bytes_read.clone(),
        );
    }
}
