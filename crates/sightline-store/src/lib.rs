//! Sightline's storage engine: WAL, in-memory heads, segments on object storage, compaction
//! and retention, shared by every signal.
//!
//! The write path: a batch is encoded and appended to the WAL; the WAL thread fsyncs it with
//! whatever else is waiting (group commit), applies it to the signal's head, and only then is
//! the caller's future resolved, so an acknowledged record survives `kill -9`. A flush
//! rotates the WAL (freezing the heads at that point), writes the frozen heads as immutable
//! segments, advances the checkpoint and deletes the WAL files it covers. Start-up loads the
//! segment catalog, replays the WAL above the checkpoint, and only then reports ready.
//!
//! Formats are documented in `docs/formats.md`; each module states its own.

pub mod checkpoint;
pub mod codec;
mod error;
pub mod head;
pub mod index;
pub mod logs;
pub mod metrics;
pub mod object;
pub mod segment;
pub mod series_refs;
pub mod signal;
pub mod traces;
pub mod tsdb;
pub mod wal;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

pub use error::StoreError;
pub use metrics::StoreMetrics;

use sightline_model::{LogBatch, MetricBatch, SpanBatch};

use crate::logs::LogStore;
use crate::traces::TraceStore;
use crate::tsdb::Tsdb;
use crate::wal::{RecordType, Wal};

/// How the store is laid out and when it flushes, compacts and forgets.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    /// Object store URL for segments; `None` is `<data_dir>/segments`.
    pub object_store_url: Option<String>,
    /// Segments whose newest record is older than this are deleted.
    pub retention: Duration,
    /// Flush when the heads hold this many raw bytes…
    pub flush_bytes: usize,
    /// Appends wait while the heads (active and frozen) hold this many raw bytes, and fail
    /// as overloaded after `head_full_wait`: the bound on memory when ingest outruns flush.
    pub head_bytes_max: usize,
    pub head_full_wait: Duration,
    /// …or when the oldest unflushed record is this old.
    pub flush_interval: Duration,
    /// Segments under this size are merged with their neighbours.
    pub compact_small_bytes: u64,
    /// Most segment bytes read by one compaction.
    pub compact_input_bytes_max: u64,
    /// Most series one tenant may have in the heads (about the series written since the
    /// last flushes); a write that would create more is refused.
    pub series_per_tenant_max: usize,
}

impl StoreConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            object_store_url: None,
            retention: Duration::from_secs(30 * 86_400),
            flush_bytes: 64 << 20,
            head_bytes_max: 256 << 20,
            head_full_wait: Duration::from_secs(10),
            flush_interval: Duration::from_secs(120),
            compact_small_bytes: 16 << 20,
            compact_input_bytes_max: 64 << 20,
            series_per_tenant_max: 1_000_000,
        }
    }
}

/// The store: one WAL, one checkpoint, and a part per signal.
pub struct Store {
    config: StoreConfig,
    wal: Wal,
    objects: object::Objects,
    logs: LogStore,
    tsdb: Tsdb,
    traces: TraceStore,
    flush_lock: Mutex<Instant>,
    started: AtomicBool,
    /// Woken after every flush attempt, for appends waiting for head room.
    flushed: tokio::sync::Notify,
    metrics: StoreMetrics,
}

/// What start-up found.
#[derive(Debug, Clone, Default)]
pub struct OpenStats {
    pub checkpoint: u64,
    pub replay: wal::ReplayStats,
    pub segments: usize,
}

impl Store {
    /// Opens the store: loads segments, replays the WAL, starts the WAL writer.
    pub async fn open(
        config: StoreConfig,
        metrics: StoreMetrics,
    ) -> Result<(Arc<Self>, OpenStats), StoreError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| StoreError::io("create data dir", e))?;
        let objects = object::open(&config.data_dir, config.object_store_url.as_deref())?;
        let checkpoint = checkpoint::read(&config.data_dir)?;
        let logs = LogStore::new(objects.clone(), metrics.clone());
        logs.load_segments(checkpoint).await?;
        let tsdb = Tsdb::new(objects.clone(), metrics.clone());
        tsdb.load_segments(checkpoint).await?;
        let traces = TraceStore::new(objects.clone(), metrics.clone());
        traces.load_segments(checkpoint).await?;
        let wal_dir = wal::wal_dir(&config.data_dir);
        std::fs::create_dir_all(&wal_dir).map_err(|e| StoreError::io("create wal dir", e))?;
        let state = logs.state();
        let tsdb_state = tsdb.state();
        let traces_state = traces.state();
        let interner = tsdb.label_interner().clone();
        let mut by_ref = series_refs::RefReplay::default();
        let replay = {
            let wal_dir = wal_dir.clone();
            tokio::task::spawn_blocking(move || {
                wal::replay(&wal_dir, checkpoint, &mut |rec| {
                    match rec.record_type {
                        RecordType::Logs => {
                            LogStore::apply(&state, &logs::decode_wal_batch(&rec.payload)?)
                        }
                        RecordType::Metrics => Tsdb::apply(
                            &tsdb_state,
                            &tsdb::decode_wal_batch(&rec.payload, &interner)?,
                        ),
                        RecordType::MetricsByRef => Tsdb::apply(
                            &tsdb_state,
                            &by_ref.decode(rec.seq, &rec.payload, &interner)?,
                        ),
                        RecordType::Spans => TraceStore::apply(
                            &traces_state,
                            &traces::decode_wal_batch(&rec.payload)?,
                        ),
                    }
                    Ok(())
                })
            })
            .await
            .map_err(|e| StoreError::io("replay wal", e))??
        };
        metrics.wal_replayed_records.inc_by(replay.records);
        metrics.wal_torn_tails.inc_by(replay.torn_tails);
        let fsync = metrics.wal_fsync_seconds.clone();
        let wal = Wal::open(&wal_dir, Box::new(move |s| fsync.observe(s)))?;
        let stats = OpenStats {
            checkpoint,
            replay,
            segments: logs.read().segments.len()
                + tsdb.read().segments.len()
                + traces.read().segments.len(),
        };
        let store = Arc::new(Self {
            config,
            wal,
            objects,
            logs,
            tsdb,
            traces,
            flush_lock: Mutex::new(Instant::now()),
            started: AtomicBool::new(true),
            flushed: tokio::sync::Notify::new(),
            metrics,
        });
        store.update_gauges();
        Ok((store, stats))
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    pub fn logs(&self) -> &LogStore {
        &self.logs
    }

    pub fn tsdb(&self) -> &Tsdb {
        &self.tsdb
    }

    pub fn traces(&self) -> &TraceStore {
        &self.traces
    }

    /// The label sets of every series the store holds, for decoders to find them by.
    pub fn label_interner(&self) -> &Arc<sightline_model::LabelInterner> {
        self.tsdb.label_interner()
    }

    fn head_bytes(&self) -> usize {
        self.logs.head_bytes() + self.tsdb.head_bytes() + self.traces.head_bytes()
    }

    fn update_gauges(&self) {
        let (ls, lb) = self.logs.segment_totals();
        let (ms, mb) = self.tsdb.segment_totals();
        let (ts, tb) = self.traces.segment_totals();
        self.metrics.segments.set((ls + ms + ts) as i64);
        self.metrics.segment_bytes.set((lb + mb + tb) as i64);
        self.metrics.head_bytes.set(self.head_bytes() as i64);
    }

    /// Whether start-up (WAL replay) has finished.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Appends a batch of logs; resolves once it is durable and queryable.
    pub async fn append_logs(&self, batch: Arc<LogBatch>) -> Result<(), StoreError> {
        if batch.records.is_empty() {
            return Ok(());
        }
        self.wait_for_head_room().await?;
        let payload = logs::encode_wal_batch(&batch)?;
        let state = self.logs.state();
        self.wal
            .append(
                RecordType::Logs,
                payload,
                Box::new(move || LogStore::apply(&state, &batch)),
            )
            .await
    }

    /// Appends a batch of metrics; resolves once it is durable and queryable. A batch that
    /// would take the tenant past its series limit is refused whole, before the WAL.
    pub async fn append_metrics(&self, batch: Arc<MetricBatch>) -> Result<(), StoreError> {
        if batch.series.is_empty() && batch.metadata.is_empty() {
            return Ok(());
        }
        let series = self.tsdb.series_after(
            &batch.tenant,
            &batch.series,
            self.config.series_per_tenant_max,
        );
        if series > self.config.series_per_tenant_max {
            return Err(StoreError::TooManySeries(format!(
                "tenant {} would have {series} active series, over its limit of {}",
                batch.tenant, self.config.series_per_tenant_max
            )));
        }
        self.wait_for_head_room().await?;
        let state = self.tsdb.state();
        let (applied, encoded) = (batch.clone(), batch.clone());
        let estimate = batch.sample_count() * 16 + batch.series.len() * 4;
        let result = self
            .wal
            .append_with_refs(
                RecordType::MetricsByRef,
                Box::new(move |refs| series_refs::encode(&encoded, refs)),
                estimate,
                Box::new(move || Tsdb::apply(&state, &applied)),
            )
            .await;
        // The batch is freed here, on the caller's task, not on the WAL thread that every
        // write waits for.
        drop(batch);
        result
    }

    /// Appends a batch of spans; resolves once it is durable and searchable.
    pub async fn append_spans(&self, batch: Arc<SpanBatch>) -> Result<(), StoreError> {
        if batch.spans.is_empty() {
            return Ok(());
        }
        self.wait_for_head_room().await?;
        let payload = traces::encode_wal_batch(&batch)?;
        let state = self.traces.state();
        let applied = batch.clone();
        let result = self
            .wal
            .append(
                RecordType::Spans,
                payload,
                Box::new(move || TraceStore::apply(&state, &applied)),
            )
            .await;
        drop(batch);
        result
    }

    /// Waits while the heads are full, so ingest slows to what flushing sustains instead of
    /// growing memory without bound.
    async fn wait_for_head_room(&self) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + self.config.head_full_wait;
        loop {
            let flushed = self.flushed.notified();
            let head_bytes = self.head_bytes();
            if head_bytes < self.config.head_bytes_max {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, flushed).await.is_err() {
                return Err(StoreError::Overloaded(format!(
                    "the in-memory head holds {head_bytes} bytes, over its limit of {}, and flushing is behind",
                    self.config.head_bytes_max
                )));
            }
        }
    }

    /// Flushes if the heads are over the size threshold or older than the interval.
    pub async fn maybe_flush(&self) -> Result<bool, StoreError> {
        let head_bytes = self.head_bytes();
        self.metrics.head_bytes.set(head_bytes as i64);
        let due = {
            let last = self.flush_lock.lock().await;
            head_bytes > 0
                && (head_bytes >= self.config.flush_bytes
                    || last.elapsed() >= self.config.flush_interval)
        };
        if due {
            self.flush().await?;
        }
        Ok(due)
    }

    /// Writes everything in the heads to segments and advances the checkpoint.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let mut last = self.flush_lock.lock().await;
        let result = self.flush_locked().await;
        match &result {
            Ok(()) => {
                *last = Instant::now();
                self.metrics.flushes.inc();
                self.tsdb.prune_labels();
            }
            Err(e) => {
                self.metrics.flush_failures.inc();
                tracing::error!(error = %e, "flush failed; the heads stay in memory and the WAL keeps them");
            }
        }
        self.update_gauges();
        self.flushed.notify_waiters();
        result
    }

    async fn flush_locked(&self) -> Result<(), StoreError> {
        if !self.logs.has_unflushed() && !self.tsdb.has_unflushed() && !self.traces.has_unflushed()
        {
            return Ok(());
        }
        let (state, tsdb_state) = (self.logs.state(), self.tsdb.state());
        let traces_state = self.traces.state();
        let sealed = self
            .wal
            .rotate(Box::new(move |seq| {
                LogStore::freeze(&state, seq);
                Tsdb::freeze(&tsdb_state, seq);
                TraceStore::freeze(&traces_state, seq);
            }))
            .await?;
        self.logs.flush_frozen().await?;
        self.tsdb.flush_frozen().await?;
        self.traces.flush_frozen().await?;
        checkpoint::write(&self.config.data_dir, sealed)?;
        wal::remove_through(&wal::wal_dir(&self.config.data_dir), sealed)?;
        Ok(())
    }

    /// Merges small segments; runs under the flush lock.
    pub async fn compact(&self) -> Result<usize, StoreError> {
        let _g = self.flush_lock.lock().await;
        let (small, max) = (
            self.config.compact_small_bytes,
            self.config.compact_input_bytes_max,
        );
        let merges = self.logs.compact(small, max).await?
            + self.tsdb.compact(small, max).await?
            + self.traces.compact(small, max).await?;
        self.tsdb.prune_labels();
        self.update_gauges();
        Ok(merges)
    }

    /// Deletes segments past retention.
    pub async fn apply_retention(&self) -> Result<usize, StoreError> {
        let _g = self.flush_lock.lock().await;
        let cutoff = sightline_model::now_ns()
            - i64::try_from(self.config.retention.as_nanos()).unwrap_or(i64::MAX);
        let deleted = self.logs.apply_retention(cutoff).await?
            + self.tsdb.apply_retention(cutoff / 1_000_000).await?
            + self.traces.apply_retention(cutoff).await?;
        self.tsdb.prune_labels();
        self.update_gauges();
        Ok(deleted)
    }

    /// Checks, for readiness, that the WAL directory and the data directory take a file and
    /// the object store takes an object (each written and removed again).
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let dirs = [
            wal::wal_dir(&self.config.data_dir),
            self.config.data_dir.clone(),
        ];
        tokio::task::spawn_blocking(move || {
            for dir in dirs {
                let probe = dir.join(".ready-probe");
                std::fs::write(&probe, b"ok")
                    .and_then(|_| std::fs::remove_file(&probe))
                    .map_err(|e| StoreError::io(&format!("write to {}", dir.display()), e))?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .map_err(|e| StoreError::io("probe directories", e))??;
        use object_store::ObjectStoreExt;
        let probe = object_store::path::Path::from("_sightline/ready-probe");
        self.objects
            .put(&probe, bytes::Bytes::from_static(b"ok").into())
            .await
            .map_err(|e| StoreError::io("write to the object store", e))?;
        self.objects
            .delete(&probe)
            .await
            .map_err(|e| StoreError::io("delete from the object store", e))
    }
}

#[cfg(test)]
mod tests;
