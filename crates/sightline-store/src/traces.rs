//! The traces signal: head, segments, and the look-ups over both.
//!
//! As for logs, all state sits behind one lock ([`TraceState`]) so a look-up sees the active
//! head, the frozen heads being flushed and the segments as of one instant, and a span is
//! never seen twice or missed across a flush.
//!
//! A trace by id costs, per segment, one binary search and one bloom probe in the footer
//! (kept in memory) and at most one block read; a search reads the blocks the footers do not
//! rule out, newest first, and stops once no unread block can hold a later match.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use foldhash::HashMap;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use sightline_model::{Span, SpanBatch, StatusCode, TenantId, TraceId, TraceQuery};

use crate::StoreError;
use crate::head::traces::{Operation, TraceHead};
use crate::metrics::StoreMetrics;
use crate::object::Objects;
use crate::segment::SegmentId;
use crate::segment::traces::{self as seg, BlockMeta, SegmentWriter, TraceFooter};

pub use crate::head::traces::Operation as TraceOperation;

pub const SIGNAL: &str = "traces";

pub struct LoadedSegment {
    pub id: SegmentId,
    pub size: u64,
    pub footer: TraceFooter,
}

impl crate::segment::Catalogued for LoadedSegment {
    fn id(&self) -> &SegmentId {
        &self.id
    }
    fn size(&self) -> u64 {
        self.size
    }
}

pub type FrozenHead = crate::signal::Frozen<TraceHead>;
pub type TraceState = crate::signal::SignalState<TraceHead, LoadedSegment>;

/// A call count between two services, for Jaeger's `/api/dependencies`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DependencyLink {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
}

/// The WAL payload of a spans record.
#[derive(Serialize)]
struct WalBatchRef<'a> {
    tenant: &'a str,
    spans: &'a [Span],
}

#[derive(Deserialize)]
struct WalBatch {
    tenant: String,
    spans: Vec<Span>,
}

pub fn encode_wal_batch(batch: &SpanBatch) -> Result<Vec<u8>, StoreError> {
    let estimate: usize = batch
        .spans
        .iter()
        .map(crate::head::traces::span_raw_bytes)
        .sum();
    let value = WalBatchRef {
        tenant: batch.tenant.as_str(),
        spans: &batch.spans,
    };
    postcard::to_extend(&value, Vec::with_capacity(estimate + 64))
        .map_err(|e| StoreError::io("encode wal batch", e))
}

pub fn decode_wal_batch(payload: &[u8]) -> Result<SpanBatch, StoreError> {
    let (tenant, b) =
        crate::signal::decode_wal_payload(payload, "spans", |b: &WalBatch| b.tenant.as_str())?;
    Ok(SpanBatch {
        tenant,
        spans: b.spans,
    })
}

pub struct TraceStore {
    state: Arc<RwLock<TraceState>>,
    objects: Objects,
    metrics: StoreMetrics,
}

/// One block a search will read.
struct BlockWork {
    segment: Arc<LoadedSegment>,
    block: usize,
}

impl BlockWork {
    fn meta(&self) -> &BlockMeta {
        &self.segment.footer.blocks[self.block]
    }
}

impl TraceStore {
    pub fn new(objects: Objects, metrics: StoreMetrics) -> Self {
        Self {
            state: Arc::default(),
            objects,
            metrics,
        }
    }

    pub fn state(&self) -> Arc<RwLock<TraceState>> {
        self.state.clone()
    }

    pub fn read(&self) -> RwLockReadGuard<'_, TraceState> {
        crate::signal::read(&self.state)
    }

    fn write(&self) -> RwLockWriteGuard<'_, TraceState> {
        crate::signal::write(&self.state)
    }

    /// Loads the segments found under `traces/` (see [`crate::segment::list_live`]).
    pub async fn load_segments(&self, checkpoint: u64) -> Result<(), StoreError> {
        let mut loaded = Vec::new();
        for (id, size) in crate::segment::list_live(&self.objects, SIGNAL, checkpoint).await? {
            let (bytes, crc) =
                crate::segment::read_footer_bytes(&self.objects, &id, size, seg::TRAILER_MAGIC)
                    .await?;
            let footer = seg::decode_footer(&bytes, crc)?;
            loaded.push(Arc::new(LoadedSegment { id, size, footer }));
        }
        self.write().segments = loaded;
        Ok(())
    }

    /// Applies a durable batch to the active head (from the WAL thread or replay).
    pub fn apply(state: &RwLock<TraceState>, batch: &SpanBatch) {
        crate::signal::write(state)
            .active
            .append(&batch.tenant, &batch.spans);
    }

    /// Freezes the active head as of WAL sequence `seq` (called at a rotation).
    pub fn freeze(state: &RwLock<TraceState>, seq: u64) {
        crate::signal::write(state).freeze(seq);
    }

    pub fn head_bytes(&self) -> usize {
        self.read().head_bytes()
    }

    pub fn has_unflushed(&self) -> bool {
        self.read().has_unflushed()
    }

    /// Writes every frozen head as segments, then swaps them in (see `LogStore::flush_frozen`).
    pub async fn flush_frozen(&self) -> Result<(), StoreError> {
        let frozen: Vec<Arc<FrozenHead>> = self.read().frozen.clone();
        for f in frozen {
            let parts = {
                let f = f.clone();
                tokio::task::spawn_blocking(move || {
                    let mut out = Vec::new();
                    for ((tenant, day), spans) in f.head.partitions() {
                        let mut w = SegmentWriter::new(tenant.as_str());
                        for trace in spans.chunk_by(|a, b| a.trace_id == b.trace_id) {
                            w.push_trace(trace.iter().map(|s| (*s).clone()))?;
                        }
                        if let Some(bytes) = w.finish()? {
                            out.push((tenant, day, bytes));
                        }
                    }
                    Ok::<_, StoreError>(out)
                })
                .await
                .map_err(|e| StoreError::io("encode trace segments", e))??
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
        let footer = seg::footer_of_file(&bytes)?;
        self.objects.put_durable(&id.path(), bytes).await?;
        Ok(Arc::new(LoadedSegment { id, size, footer }))
    }

    /// Segment count and bytes, for the store's gauges.
    pub fn segment_totals(&self) -> (usize, u64) {
        let st = self.read();
        (st.segments.len(), st.segments.iter().map(|s| s.size).sum())
    }

    /// Spans on disk, for the benchmark's bytes per span.
    pub fn segment_spans(&self) -> u64 {
        self.read().segments.iter().map(|s| s.footer.spans).sum()
    }

    async fn fetch_block(&self, w: &BlockWork) -> Result<bytes::Bytes, StoreError> {
        let path = w.segment.id.path();
        let bytes = self
            .objects
            .get_range(&path, seg::block_range(w.meta()))
            .await
            .map_err(|e| StoreError::io(&format!("read block of {path}"), e))?;
        self.metrics.segment_bytes_read.inc_by(bytes.len() as u64);
        self.metrics.scanned_blocks.inc();
        Ok(bytes)
    }

    /// Every span of trace `id`, sorted by start; empty when there is none.
    pub async fn trace(&self, tenant: &TenantId, id: &TraceId) -> Result<Vec<Span>, StoreError> {
        let mut out = Vec::new();
        let (frozen, segments) = {
            let st = self.read();
            st.active.trace_into(tenant, id, &mut out);
            (st.frozen.clone(), st.segments.clone())
        };
        for f in &frozen {
            f.head.trace_into(tenant, id, &mut out);
        }
        for s in segments.iter().filter(|s| &s.id.tenant == tenant) {
            let Some(block) = seg::block_for(&s.footer, id) else {
                continue;
            };
            let w = BlockWork {
                segment: s.clone(),
                block,
            };
            let bytes = self.fetch_block(&w).await?;
            let want = |t: &TraceId| t == id;
            out.extend(seg::decode_block(
                w.meta(),
                &bytes,
                Some(&want),
                &mut |_| {},
            )?);
        }
        out.sort_by_key(|s| (s.start_ns, s.span_id));
        Ok(out)
    }

    /// The ids of the traces with a span matching `q`, those with the latest matching span
    /// first, at most `q.limit`.
    pub async fn search(&self, q: &TraceQuery) -> Result<Vec<TraceId>, StoreError> {
        let mut found: HashMap<TraceId, i64> = HashMap::default();
        let (frozen, segments) = {
            let st = self.read();
            st.active.search_into(q, &mut found);
            (st.frozen.clone(), st.segments.clone())
        };
        for f in &frozen {
            f.head.search_into(q, &mut found);
        }
        let mut work = candidate_blocks(&segments, q);
        let blocks: usize = segments.iter().map(|s| s.footer.blocks.len()).sum();
        self.metrics
            .skipped_blocks
            .inc_by(blocks.saturating_sub(work.len()) as u64);
        work.sort_by_key(|w| std::cmp::Reverse(w.meta().max_start_ns));
        for w in &work {
            if q.limit > 0 && found.len() >= q.limit {
                // The limit-th latest start so far: a block starting before it adds nothing.
                let mut starts: Vec<i64> = found.values().copied().collect();
                let (_, kth, _) = starts.select_nth_unstable_by(q.limit - 1, |a, b| b.cmp(a));
                if w.meta().max_start_ns < *kth {
                    break;
                }
            }
            let bytes = self.fetch_block(w).await?;
            let meta = w.meta();
            if q.tags.is_empty() {
                let none = |_: &TraceId| false;
                seg::decode_block(meta, &bytes, Some(&none), &mut |s| {
                    if q.matches_summary(s.service, s.name, s.start_ns, s.duration_ns, s.status) {
                        note(&mut found, s.trace_id, s.start_ns);
                    }
                })?;
            } else {
                for s in seg::decode_block(meta, &bytes, None, &mut |_| {})? {
                    if q.matches(&s) {
                        note(&mut found, s.trace_id, s.start_ns);
                    }
                }
            }
        }
        let mut ids: Vec<(TraceId, i64)> = found.into_iter().collect();
        ids.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        if q.limit > 0 {
            ids.truncate(q.limit);
        }
        Ok(ids.into_iter().map(|(id, _)| id).collect())
    }

    /// Every operation of `tenant` (services and span names with their kinds), sorted.
    pub fn operations(&self, tenant: &TenantId) -> Vec<Operation> {
        let mut out = BTreeSet::new();
        let st = self.read();
        st.active.operations_into(tenant, &mut out);
        for f in &st.frozen {
            f.head.operations_into(tenant, &mut out);
        }
        for s in st.segments.iter().filter(|s| &s.id.tenant == tenant) {
            let f = &s.footer;
            for (svc, name, kind) in &f.operations {
                out.insert(Operation {
                    service: f.services[*svc as usize].clone(),
                    name: name.clone(),
                    kind: seg_kind(*kind),
                });
            }
        }
        out.into_iter().collect()
    }

    /// Every service of `tenant`, sorted.
    pub fn services(&self, tenant: &TenantId) -> Vec<String> {
        let set: BTreeSet<String> = self
            .operations(tenant)
            .into_iter()
            .map(|o| o.service)
            .collect();
        set.into_iter().collect()
    }

    /// Calls between services by spans started in `[start_ns, end_ns)`: from the heads
    /// exactly, from segments by whole blocks that overlap the range.
    pub fn dependencies(
        &self,
        tenant: &TenantId,
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<DependencyLink> {
        let mut edges: BTreeMap<(String, String), u64> = BTreeMap::new();
        let st = self.read();
        st.active
            .dependencies_into(tenant, start_ns, end_ns, &mut edges);
        for f in &st.frozen {
            f.head
                .dependencies_into(tenant, start_ns, end_ns, &mut edges);
        }
        for s in st.segments.iter().filter(|s| &s.id.tenant == tenant) {
            let f = &s.footer;
            for b in &f.blocks {
                if b.max_start_ns < start_ns || b.min_start_ns >= end_ns {
                    continue;
                }
                for (p, c, n) in &b.edges {
                    let key = (
                        f.services[*p as usize].clone(),
                        f.services[*c as usize].clone(),
                    );
                    *edges.entry(key).or_default() += n;
                }
            }
        }
        edges
            .into_iter()
            .map(|((parent, child), call_count)| DependencyLink {
                parent,
                child,
                call_count,
            })
            .collect()
    }

    /// Merges small segments of one tenant and day into one. Returns how many merges ran.
    /// The caller holds the flush lock.
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

    /// Merges segments by trace id, a block of each input in memory at a time.
    async fn merge(&self, inputs: &[Arc<LoadedSegment>]) -> Result<(), StoreError> {
        let Some(id) = crate::segment::merged_id(inputs) else {
            return Ok(());
        };
        let files = crate::segment::read_all(&self.objects, inputs).await?;
        let footers: Vec<TraceFooter> = inputs.iter().map(|s| s.footer.clone()).collect();
        let tenant = id.tenant.clone();
        let bytes =
            tokio::task::spawn_blocking(move || merge_files(tenant.as_str(), &files, &footers))
                .await
                .map_err(|e| StoreError::io("compact trace segments", e))??;
        let Some(bytes) = bytes else {
            return Ok(());
        };
        let out = self.put_segment(id, bytes).await?;
        crate::segment::replace_compacted(&mut self.write().segments, inputs, out);
        crate::segment::delete_all(&self.objects, inputs, "compacted").await
    }

    /// Deletes segments whose newest span started before `cutoff_ns`. Returns how many.
    pub async fn apply_retention(&self, cutoff_ns: i64) -> Result<usize, StoreError> {
        let expired = crate::segment::take_expired(&mut self.write().segments, |s| {
            s.footer.max_start_ns < cutoff_ns
        });
        crate::segment::delete_all(&self.objects, &expired, "expired").await?;
        self.metrics
            .retention_deleted_segments
            .inc_by(expired.len() as u64);
        Ok(expired.len())
    }
}

fn note(found: &mut HashMap<TraceId, i64>, id: TraceId, start_ns: i64) {
    let latest = found.entry(id).or_insert(start_ns);
    *latest = (*latest).max(start_ns);
}

fn seg_kind(bits: u8) -> sightline_model::SpanKind {
    crate::head::traces::kinds_of(1 << bits)
        .next()
        .unwrap_or_default()
}

/// The blocks of `segments` the footers cannot rule out for `q`.
fn candidate_blocks(segments: &[Arc<LoadedSegment>], q: &TraceQuery) -> Vec<BlockWork> {
    let mut out = Vec::new();
    for s in segments {
        let f = &s.footer;
        if s.id.tenant != q.tenant || f.max_start_ns < q.start_ns || f.min_start_ns >= q.end_ns {
            continue;
        }
        let service = match &q.service {
            None => None,
            Some(name) => match f.services.binary_search(name) {
                Ok(i) => Some(i as u32),
                Err(_) => continue,
            },
        };
        // The operations of the footer the query allows, when it names one.
        let operations: Option<Vec<u32>> = q.operation.as_ref().map(|op| {
            f.operations
                .iter()
                .enumerate()
                .filter(|(_, (svc, name, _))| name == op && service.is_none_or(|s| s == *svc))
                .map(|(i, _)| i as u32)
                .collect()
        });
        if operations.as_ref().is_some_and(Vec::is_empty) {
            continue;
        }
        for (block, b) in f.blocks.iter().enumerate() {
            let may = b.max_start_ns >= q.start_ns
                && b.min_start_ns < q.end_ns
                && q.min_duration_ns.is_none_or(|d| b.max_duration_ns >= d)
                && (q.status != Some(StatusCode::Error) || b.has_error)
                && service.is_none_or(|svc| b.services.binary_search(&svc).is_ok())
                && operations
                    .as_ref()
                    .is_none_or(|ops| ops.iter().any(|o| b.operations.binary_search(o).is_ok()));
            if may {
                out.push(BlockWork {
                    segment: s.clone(),
                    block,
                });
            }
        }
    }
    out
}

/// One input of a merge: its blocks in order, one decoded at a time.
struct MergeInput<'a> {
    file: &'a [u8],
    footer: &'a TraceFooter,
    next_block: usize,
    spans: std::collections::VecDeque<Span>,
}

impl MergeInput<'_> {
    /// The trace id at the front, decoding the next block when the current one is used up.
    fn front(&mut self) -> Result<Option<TraceId>, StoreError> {
        while self.spans.is_empty() && self.next_block < self.footer.blocks.len() {
            let meta = &self.footer.blocks[self.next_block];
            let range = seg::block_range(meta);
            let bytes = self
                .file
                .get(range.start as usize..range.end as usize)
                .ok_or_else(|| StoreError::Corrupt("traces segment: block out of bounds".into()))?;
            self.spans = seg::decode_block(meta, bytes, None, &mut |_| {})?.into();
            self.next_block += 1;
        }
        Ok(self.spans.front().map(|s| s.trace_id))
    }

    fn take_trace(&mut self, id: &TraceId, out: &mut Vec<Span>) {
        while self.spans.front().is_some_and(|s| &s.trace_id == id) {
            out.extend(self.spans.pop_front());
        }
    }
}

/// Merges whole segment files into one, by trace id; `None` when they hold no span.
fn merge_files(
    tenant: &str,
    files: &[bytes::Bytes],
    footers: &[TraceFooter],
) -> Result<Option<Vec<u8>>, StoreError> {
    let mut inputs: Vec<MergeInput<'_>> = files
        .iter()
        .zip(footers)
        .map(|(file, footer)| MergeInput {
            file,
            footer,
            next_block: 0,
            spans: Default::default(),
        })
        .collect();
    let mut w = SegmentWriter::new(tenant);
    let mut trace = Vec::new();
    loop {
        let mut min: Option<TraceId> = None;
        for input in &mut inputs {
            if let Some(id) = input.front()? {
                min = Some(min.map_or(id, |m| m.min(id)));
            }
        }
        let Some(id) = min else {
            break;
        };
        for input in &mut inputs {
            input.take_trace(&id, &mut trace);
        }
        w.push_trace(trace.drain(..))?;
    }
    w.finish()
}

#[cfg(test)]
mod tests;
