//! The logs signal: head, segments, and the queries over both.
//!
//! All of its state sits behind one lock ([`LogState`]) so a query sees the active head, the
//! frozen heads being flushed and the segments as of one instant: a flush swaps a frozen head
//! for its segments in one step, and a row is never seen twice or missed.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use object_store::ObjectStoreExt;
use serde::Deserialize;

use sightline_model::log::{LogEntryRef, LogSelection};
use sightline_model::{LabelMatcher, Labels, LogBatch, LogRecord, TenantId};

use crate::StoreError;
use crate::codec;
use crate::head::logs::LogHead;
use crate::metrics::StoreMetrics;
use crate::object::Objects;
use crate::segment::SegmentId;
use crate::segment::logs::{self as seg, Columns, SegmentFooter, StreamRows};

pub const SIGNAL: &str = "logs";

/// Loki's index statistics of a selector over a time range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub streams: u64,
    /// Blocks (Loki's chunks) holding matching rows; the heads count as none.
    pub chunks: u64,
    pub bytes: u64,
    pub entries: u64,
}

/// A segment in the catalog: its id, size and footer (kept in memory).
impl crate::segment::Catalogued for LoadedSegment {
    fn id(&self) -> &SegmentId {
        &self.id
    }
    fn size(&self) -> u64 {
        self.size
    }
}

pub struct LoadedSegment {
    pub id: SegmentId,
    pub size: u64,
    pub footer: SegmentFooter,
}

pub type FrozenHead = crate::signal::Frozen<LogHead>;
pub type LogState = crate::signal::SignalState<LogHead, LoadedSegment>;

/// Blocks a query's producer task reads and decodes ahead of the query.
const PREFETCH_BLOCKS: usize = 4;
/// Scans of at most this many blocks decode them in line, without a producer task.
const INLINE_BLOCKS_MAX: usize = 2;

/// One block a scan will read.
struct BlockWork {
    segment: Arc<LoadedSegment>,
    selected: Arc<Vec<bool>>,
    block: usize,
    cols: Columns,
}

/// Reads a block's bytes.
async fn fetch_block(
    objects: &Objects,
    metrics: &StoreMetrics,
    w: &BlockWork,
) -> Result<bytes::Bytes, StoreError> {
    let b = &w.segment.footer.blocks[w.block];
    let path = w.segment.id.path();
    let bytes = objects
        .get_range(&path, b.offset..b.offset + u64::from(b.len))
        .await
        .map_err(|e| StoreError::io(&format!("read block of {path}"), e))?;
    metrics.segment_bytes_read.inc_by(bytes.len() as u64);
    Ok(bytes)
}

/// Visits the rows of a decoded block that the selection wants.
fn visit_block(
    w: &BlockWork,
    block: &seg::DecodedBlock,
    sel: &LogSelection,
    wanted: &dyn Fn(&str) -> bool,
    meta: &mut Vec<(String, String)>,
    visit: &mut dyn FnMut(&Labels, &LogEntryRef<'_>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    if !w.cols.metadata {
        meta.clear();
    }
    let mut row = 0usize;
    for run in &w.segment.footer.blocks[w.block].runs {
        let n = run.rows as usize;
        if !w.selected[run.stream as usize] || run.max_ts < sel.start_ns || run.min_ts >= sel.end_ns
        {
            row += n;
            continue;
        }
        let labels = &w.segment.footer.streams[run.stream as usize];
        for r in row..row + n {
            let ts = block.ts[r];
            if ts < sel.start_ns || ts >= sel.end_ns {
                continue;
            }
            if w.cols.metadata {
                block.metadata_into(r, wanted, meta);
            }
            let entry = LogEntryRef {
                timestamp_ns: ts,
                line: block.line(r),
                metadata: meta,
            };
            visit(labels, &entry)?;
        }
        row += n;
    }
    ControlFlow::Continue(())
}

/// The WAL payload of a logs record, as read back. Written by [`encode_wal_batch`], which
/// lays out the same postcard bytes by hand.
#[derive(Deserialize)]
struct WalBatch {
    tenant: String,
    records: Vec<LogRecord>,
}

/// The WAL payload of a batch: exactly the bytes postcard gives `WalBatch` (a test holds
/// them equal), written by hand because serde's per-field calls were 5% of the ingest
/// CPU. Postcard's layout: varint lengths and counts, zig-zag varint integers, strings as
/// length and UTF-8, structs and tuples as their fields in order, a newtype as its inner value.
pub fn encode_wal_batch(batch: &LogBatch) -> Result<Vec<u8>, StoreError> {
    // Sized up front (payload bytes plus a few bytes of lengths per string), so a large
    // batch is not copied again and again as a doubling buffer grows.
    let estimate: usize = batch
        .records
        .iter()
        .map(|r| {
            let labels = r.labels.iter();
            let label_bytes: usize = labels.map(|(k, v)| k.len() + v.len() + 4).sum();
            r.line.len() + 16 + label_bytes + r.metadata.text_len() + 4 * r.metadata.len()
        })
        .sum();
    let mut out = Vec::with_capacity(estimate + 64);
    let put_str = |out: &mut Vec<u8>, s: &str| codec::put_bytes(out, s.as_bytes());
    put_str(&mut out, batch.tenant.as_str());
    codec::put_uvarint(&mut out, batch.records.len() as u64);
    for r in &batch.records {
        codec::put_ivarint(&mut out, r.timestamp_ns);
        codec::put_uvarint(&mut out, r.labels.len() as u64);
        for (k, v) in r.labels.iter() {
            put_str(&mut out, k);
            put_str(&mut out, v);
        }
        put_str(&mut out, &r.line);
        codec::put_uvarint(&mut out, r.metadata.len() as u64);
        for (k, v) in r.metadata.iter() {
            put_str(&mut out, k);
            put_str(&mut out, v);
        }
    }
    Ok(out)
}

pub fn decode_wal_batch(payload: &[u8]) -> Result<LogBatch, StoreError> {
    let (tenant, b) =
        crate::signal::decode_wal_payload(payload, "logs", |b: &WalBatch| b.tenant.as_str())?;
    Ok(LogBatch {
        tenant,
        records: b.records,
    })
}

pub struct LogStore {
    state: Arc<RwLock<LogState>>,
    objects: Objects,
    metrics: StoreMetrics,
}

impl LogStore {
    pub fn new(objects: Objects, metrics: StoreMetrics) -> Self {
        Self {
            state: Arc::default(),
            objects,
            metrics,
        }
    }

    pub fn state(&self) -> Arc<RwLock<LogState>> {
        self.state.clone()
    }

    pub fn read(&self) -> RwLockReadGuard<'_, LogState> {
        crate::signal::read(&self.state)
    }

    fn write(&self) -> RwLockWriteGuard<'_, LogState> {
        crate::signal::write(&self.state)
    }

    /// Loads the segments found under `logs/`: deletes those above the checkpoint (an
    /// unfinished flush) and those covered by a compacted one (an unfinished compaction).
    pub async fn load_segments(&self, checkpoint: u64) -> Result<(), StoreError> {
        let mut loaded = Vec::new();
        for (id, size) in crate::segment::list_live(&self.objects, SIGNAL, checkpoint).await? {
            let footer = self.read_footer(&id, size).await?;
            loaded.push(Arc::new(LoadedSegment { id, size, footer }));
        }
        let mut st = self.write();
        st.segments = loaded;
        Ok(())
    }

    async fn read_footer(&self, id: &SegmentId, size: u64) -> Result<SegmentFooter, StoreError> {
        let (bytes, crc) =
            crate::segment::read_footer_bytes(&self.objects, id, size, seg::TRAILER_MAGIC).await?;
        seg::decode_footer(&bytes, crc)
    }

    /// Applies a durable batch to the active head (called from the WAL thread or replay).
    /// The batch is borrowed: rows are packed copies, and the records are freed by whoever
    /// holds the batch last (the request), not on the WAL thread.
    pub fn apply(state: &RwLock<LogState>, batch: &LogBatch) {
        crate::signal::write(state)
            .active
            .append(&batch.tenant, &batch.records);
    }

    /// Freezes the active head as of WAL sequence `seq` (called at a rotation).
    pub fn freeze(state: &RwLock<LogState>, seq: u64) {
        crate::signal::write(state).freeze(seq);
    }

    pub fn head_bytes(&self) -> usize {
        self.read().head_bytes()
    }

    pub fn has_unflushed(&self) -> bool {
        self.read().has_unflushed()
    }

    /// Writes every frozen head as segments, then swaps them in. Stops at the first error,
    /// leaving the rest frozen for the next try; rewriting a segment is idempotent because
    /// its name comes from the frozen head's sequence.
    pub async fn flush_frozen(&self) -> Result<(), StoreError> {
        let frozen: Vec<Arc<FrozenHead>> = self.read().frozen.clone();
        for f in frozen {
            let parts = {
                let f = f.clone();
                tokio::task::spawn_blocking(move || {
                    f.head
                        .partitions()
                        .into_iter()
                        .map(|((tenant, day), streams)| {
                            let bytes = seg::encode_segment(&tenant, &streams)?;
                            Ok((tenant, day, bytes))
                        })
                        .collect::<Result<Vec<_>, StoreError>>()
                })
                .await
                .map_err(|e| StoreError::io("encode segments", e))??
            };
            let mut new_segments = Vec::new();
            for (tenant, day, bytes) in parts {
                let id = crate::signal::flushed_id(SIGNAL, tenant, day, f.seq);
                new_segments.push(self.put_segment(id, bytes).await?);
            }
            self.write().swap_flushed(&f, new_segments);
        }
        Ok(())
    }

    async fn put_segment(
        &self,
        id: SegmentId,
        bytes: Vec<u8>,
    ) -> Result<Arc<LoadedSegment>, StoreError> {
        let size = bytes.len() as u64;
        let tail_start = bytes.len().saturating_sub(seg::TRAILER_BYTES);
        let (offset, len, crc) = seg::decode_trailer(&bytes[tail_start..], size)?;
        let footer = seg::decode_footer(
            &bytes[offset as usize..(offset + u64::from(len)) as usize],
            crc,
        )?;
        self.objects.put_durable(&id.path(), bytes).await?;
        Ok(Arc::new(LoadedSegment { id, size, footer }))
    }

    /// Segment count and bytes, for the store's gauges.
    pub fn segment_totals(&self) -> (usize, u64) {
        let st = self.read();
        (st.segments.len(), st.segments.iter().map(|s| s.size).sum())
    }

    /// Visits every entry of the selection, from the heads and the segments.
    pub async fn scan(
        &self,
        sel: &LogSelection,
        visit: &mut dyn FnMut(&Labels, &LogEntryRef<'_>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let (frozen, segments) = {
            let st = self.read();
            if st.active.scan(sel, visit).is_break() {
                return Ok(());
            }
            (st.frozen.clone(), st.segments.clone())
        };
        for f in frozen {
            if f.head.scan(sel, visit).is_break() {
                return Ok(());
            }
        }
        self.scan_segments(segments, sel, visit).await
    }

    /// Visits the matching rows of the segments. Blocks are read and decompressed by a
    /// producer task (its decoding on a blocking thread) up to [`PREFETCH_BLOCKS`] ahead of
    /// the caller, so decoding and the query's own work run on both cores at once.
    async fn scan_segments(
        &self,
        segments: Vec<Arc<LoadedSegment>>,
        sel: &LogSelection,
        visit: &mut dyn FnMut(&Labels, &LogEntryRef<'_>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let wanted = |k: &str| sel.wants_metadata_field(k);
        let mut work: Vec<BlockWork> = Vec::new();
        for s in segments {
            if s.id.tenant != sel.tenant
                || s.footer.max_ts < sel.start_ns
                || s.footer.min_ts >= sel.end_ns
            {
                continue;
            }
            let selected = Arc::new(seg::select_streams(&s.footer.streams, &sel.matchers));
            if !selected.iter().any(|x| *x) {
                continue;
            }
            for (block, b) in s.footer.blocks.iter().enumerate() {
                let may = seg::block_may_match(
                    b,
                    &selected,
                    &s.footer.streams,
                    sel.start_ns,
                    sel.end_ns,
                    &sel.line_contains,
                    &sel.metadata_eq,
                );
                if !may {
                    self.metrics.skipped_blocks.inc();
                    continue;
                }
                // Metadata is decoded only when the block has a field the query reads.
                let cols = Columns {
                    line: sel.need_line,
                    metadata: b.keys.iter().any(|k| wanted(k)),
                };
                work.push(BlockWork {
                    segment: s.clone(),
                    selected: selected.clone(),
                    block,
                    cols,
                });
            }
        }
        if work.is_empty() {
            return Ok(());
        }
        self.metrics.scanned_blocks.inc_by(work.len() as u64);
        let mut meta = Vec::new();
        if work.len() <= INLINE_BLOCKS_MAX {
            // A needle's block or two: a producer task would cost more than it saves.
            for w in &work {
                let bytes = fetch_block(&self.objects, &self.metrics, w).await?;
                let block = seg::decode_block(&w.segment.footer.blocks[w.block], &bytes, w.cols)?;
                if visit_block(w, &block, sel, &wanted, &mut meta, visit).is_break() {
                    break;
                }
            }
            return Ok(());
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel(PREFETCH_BLOCKS);
        let (objects, metrics) = (self.objects.clone(), self.metrics.clone());
        let producer = tokio::spawn(async move {
            for w in work {
                let decoded = match fetch_block(&objects, &metrics, &w).await {
                    Err(e) => Err(e),
                    Ok(bytes) => {
                        let (segment, block, cols) = (w.segment.clone(), w.block, w.cols);
                        tokio::task::spawn_blocking(move || {
                            seg::decode_block(&segment.footer.blocks[block], &bytes, cols)
                        })
                        .await
                        .unwrap_or_else(|e| Err(StoreError::io("decode block", e)))
                    }
                };
                let failed = decoded.is_err();
                if tx.send((w, decoded)).await.is_err() || failed {
                    return;
                }
            }
        });
        let result = async {
            while let Some((w, decoded)) = rx.recv().await {
                let block = decoded?;
                if visit_block(&w, &block, sel, &wanted, &mut meta, visit).is_break() {
                    break;
                }
            }
            Ok(())
        }
        .await;
        // Dropping the receiver stops the producer at its next send.
        drop(rx);
        producer.abort();
        result
    }

    /// What a selector covers in `[start_ns, end_ns)`, for Loki's `/index/stats`: from the
    /// heads exactly, from segments by whole runs of rows that overlap the range, as Loki
    /// counts whole chunks.
    pub fn stats(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> IndexStats {
        let mut out = IndexStats::default();
        let mut streams: std::collections::HashSet<Labels> = std::collections::HashSet::new();
        let st = self.read();
        for head in st.heads() {
            head.stats_into(tenant, matchers, start_ns, end_ns, &mut streams, &mut out);
        }
        for s in &st.segments {
            if &s.id.tenant != tenant || s.footer.max_ts < start_ns || s.footer.min_ts >= end_ns {
                continue;
            }
            let selected = seg::select_streams(&s.footer.streams, matchers);
            for b in &s.footer.blocks {
                let mut touched = false;
                for run in &b.runs {
                    if selected[run.stream as usize]
                        && run.max_ts >= start_ns
                        && run.min_ts < end_ns
                    {
                        touched = true;
                        out.entries += u64::from(run.rows);
                        out.bytes += run.line_bytes;
                        streams.insert(s.footer.streams[run.stream as usize].clone());
                    }
                }
                out.chunks += u64::from(touched);
            }
        }
        out.streams = streams.len() as u64;
        out
    }

    /// The label sets of matching streams with data in `[start_ns, end_ns)`, sorted, once each.
    pub fn streams(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<Labels> {
        let mut out = Vec::new();
        let st = self.read();
        st.active
            .streams_into(tenant, matchers, start_ns, end_ns, &mut out);
        for f in &st.frozen {
            f.head
                .streams_into(tenant, matchers, start_ns, end_ns, &mut out);
        }
        for s in &st.segments {
            if &s.id.tenant != tenant || s.footer.max_ts < start_ns || s.footer.min_ts >= end_ns {
                continue;
            }
            let selected = seg::select_streams(&s.footer.streams, matchers);
            let mut seen = vec![false; selected.len()];
            for run in s.footer.blocks.iter().flat_map(|b| &b.runs) {
                if run.max_ts >= start_ns && run.min_ts < end_ns {
                    seen[run.stream as usize] = true;
                }
            }
            for (i, l) in s.footer.streams.iter().enumerate() {
                if selected[i] && seen[i] {
                    out.push(l.clone());
                }
            }
        }
        let set: BTreeSet<Labels> = out.into_iter().collect();
        set.into_iter().collect()
    }

    /// Merges small segments of one tenant and day into one. Returns how many merges ran.
    /// The caller holds the flush lock, so no flush adds segments meanwhile.
    pub async fn compact(
        &self,
        small_bytes: u64,
        input_bytes_max: u64,
    ) -> Result<usize, StoreError> {
        let segments = self.read().segments.clone();
        let groups = crate::segment::compaction_groups(&segments, small_bytes, input_bytes_max);
        for group in &groups {
            self.merge(group).await?;
            self.metrics.compactions.inc();
        }
        Ok(groups.len())
    }

    async fn merge(&self, inputs: &[Arc<LoadedSegment>]) -> Result<(), StoreError> {
        let Some(id) = crate::segment::merged_id(inputs) else {
            return Ok(());
        };
        let files = crate::segment::read_all(&self.objects, inputs).await?;
        let t = id.tenant.clone();
        let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, StoreError> {
            let mut keys = seg::KeyDict::default();
            let mut decoded: Vec<StreamRows> = Vec::new();
            for f in &files {
                decoded.extend(seg::decode_all(f, &mut keys)?.1);
            }
            let mut merged: BTreeMap<&Labels, Vec<seg::Row<'_>>> = BTreeMap::new();
            for s in &decoded {
                merged.entry(&s.labels).or_default().extend(s.rows.iter());
            }
            let refs: Vec<seg::StreamRef<'_>> = merged
                .into_iter()
                .map(|(labels, mut rows)| {
                    rows.sort_by_key(|r| r.ts_ns);
                    seg::StreamRef {
                        labels,
                        rows,
                        keys: &keys,
                    }
                })
                .collect();
            seg::encode_segment(&t, &refs)
        })
        .await
        .map_err(|e| StoreError::io("compact segments", e))??;
        let out = self.put_segment(id, bytes).await?;
        crate::segment::replace_compacted(&mut self.write().segments, inputs, out);
        crate::segment::delete_all(&self.objects, inputs, "compacted").await
    }

    /// Deletes segments whose newest row is older than `cutoff_ns`. Returns how many.
    pub async fn apply_retention(&self, cutoff_ns: i64) -> Result<usize, StoreError> {
        let expired = crate::segment::take_expired(&mut self.write().segments, |s| {
            s.footer.max_ts < cutoff_ns
        });
        crate::segment::delete_all(&self.objects, &expired, "expired").await?;
        self.metrics
            .retention_deleted_segments
            .inc_by(expired.len() as u64);
        Ok(expired.len())
    }
}
