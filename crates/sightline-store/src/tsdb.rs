//! The metrics signal: a time-series database of our own over the shared WAL, checkpoint
//! and segment machinery.
//!
//! Like the logs signal, all state sits behind one lock ([`TsdbState`]): the active head,
//! heads frozen by a WAL rotation while their segments are written, and the loaded
//! segments, each with its postings index built at load. A query takes a snapshot under the
//! lock and reads outside it; a flush swaps a frozen head for its segments in one step, so a
//! sample is never seen twice or missed. Where sources overlap (a series in a segment and in
//! the head, or compaction inputs), samples are merged by timestamp and the newest write
//! wins: segments in WAL order, then frozen heads, then the active head.
//!
//! Segment reads go through a cache of decompressed blocks ([`BLOCK_CACHE_BYTES`] at most,
//! keyed by segment path, block and block CRC, so an entry can only ever stand for the
//! bytes it was made from), and the blocks a selection needs are decoded on all cores.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::Deserialize;

use sightline_model::{
    Exemplar, LabelInterner, LabelMatcher, Labels, MetricBatch, MetricMetadata, Sample,
    SeriesSamples, SeriesSelection, TenantId,
};

use crate::StoreError;
use crate::head::metrics::{MetricHead, sort_dedup};
use crate::index::Postings;
use crate::metrics::StoreMetrics;
use crate::object::Objects;
use crate::segment::SegmentId;
use crate::segment::metrics::{self as seg, SegmentFooter, SegmentInput};

pub const SIGNAL: &str = "metrics";

/// A loaded segment: its footer, its series' label sets and their postings.
pub struct LoadedSegment {
    pub id: SegmentId,
    pub size: u64,
    /// The footer without its series' label pairs and symbols, which `labels` holds (as
    /// shared sets, not a copy per segment).
    pub footer: SegmentFooter,
    /// Each series' label set, shared through the store's [`LabelInterner`] with every
    /// other segment that has the series (a series is in every segment its samples were
    /// flushed to) and with the heads.
    pub labels: Vec<Labels>,
    pub postings: Postings,
    /// Whether `labels` is strictly ascending, as every writer makes it: checked once at
    /// load, so a selection need not compare its series again.
    sorted: bool,
}

impl crate::segment::Catalogued for LoadedSegment {
    fn id(&self) -> &SegmentId {
        &self.id
    }
    fn size(&self) -> u64 {
        self.size
    }
}

impl LoadedSegment {
    fn new(id: SegmentId, size: u64, mut footer: SegmentFooter, interner: &LabelInterner) -> Self {
        let labels: Vec<Labels> = (0..footer.series.len())
            .map(|i| interner.intern(footer.labels(i)))
            .collect();
        for s in &mut footer.series {
            s.labels = Vec::new();
        }
        footer.symbols = Vec::new();
        let mut postings = Postings::default();
        for (i, l) in labels.iter().enumerate() {
            postings.add(i as u32, l);
        }
        let sorted = labels.is_sorted_by(|a, b| a < b);
        if !sorted {
            tracing::warn!(segment = %id.path(), "metrics segment lists its series out of order");
        }
        Self {
            id,
            size,
            footer,
            labels,
            postings,
            sorted,
        }
    }

    fn overlaps(&self, tenant: &TenantId, start_ms: i64, end_ms: i64) -> bool {
        &self.id.tenant == tenant && self.footer.max_ts >= start_ms && self.footer.min_ts <= end_ms
    }

    /// Matching series ids with samples in the range.
    fn select(&self, matchers: &[LabelMatcher], start_ms: i64, end_ms: i64) -> Vec<u32> {
        let mut ids = self.postings.select(matchers, |i| &self.labels[i as usize]);
        ids.retain(|&i| {
            let s = &self.footer.series[i as usize];
            s.max_ts >= start_ms && s.min_ts <= end_ms
        });
        ids
    }
}

pub type FrozenHead = crate::signal::Frozen<MetricHead>;
pub type TsdbState = crate::signal::SignalState<MetricHead, LoadedSegment>;

/// The WAL payload of a type-2 metrics record, which named every series by its labels.
/// Records are written by reference now (`series_refs`); type 2 is still replayed.
#[cfg(test)]
#[derive(serde::Serialize)]
struct WalBatchRef<'a> {
    tenant: &'a str,
    series: &'a [SeriesSamples],
    metadata: &'a [MetricMetadata],
}

#[derive(Deserialize)]
struct WalBatch {
    tenant: String,
    series: Vec<SeriesSamples>,
    metadata: Vec<MetricMetadata>,
}

#[cfg(test)]
pub fn encode_wal_batch(batch: &MetricBatch) -> Result<Vec<u8>, StoreError> {
    let estimate: usize = batch
        .series
        .iter()
        .map(|s| {
            s.samples.len() * 12
                + s.labels
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 2)
                    .sum::<usize>()
        })
        .sum();
    let value = WalBatchRef {
        tenant: batch.tenant.as_str(),
        series: &batch.series,
        metadata: &batch.metadata,
    };
    postcard::to_extend(&value, Vec::with_capacity(estimate + 64))
        .map_err(|e| StoreError::io("encode wal batch", e))
}

/// A WAL record's batch, its label sets shared through `interner` (the sets the head
/// holds are then the ones decoders find).
pub fn decode_wal_batch(
    payload: &[u8],
    interner: &LabelInterner,
) -> Result<MetricBatch, StoreError> {
    let (tenant, mut b) =
        crate::signal::decode_wal_payload(payload, "metrics", |b: &WalBatch| b.tenant.as_str())?;
    for s in &mut b.series {
        s.labels = interner.intern(std::mem::take(&mut s.labels));
    }
    Ok(MetricBatch {
        tenant,
        series: b.series,
        metadata: b.metadata,
    })
}

/// A series with its samples, as a selection returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectedSeries {
    /// Shared with the segments' label pool: a selection copies no label set it read from
    /// a segment.
    pub labels: Labels,
    /// Sorted by time, one per timestamp.
    pub samples: Vec<Sample>,
    /// `false` when no sample is a staleness marker; `true` when one may be (a source held
    /// one, perhaps overwritten since or out of range). Told by decoding, which sees every
    /// value while it is in cache.
    pub may_hold_stale: bool,
}

pub struct Tsdb {
    state: Arc<RwLock<TsdbState>>,
    objects: Objects,
    metrics: StoreMetrics,
    /// One copy of each series' label set for the heads, the segments and the decoders.
    pool: Arc<LabelInterner>,
    /// Decompressed segment blocks recently read, so repeated and overlapping queries
    /// skip the read, checksum and decompression.
    blocks: BlockCache,
}

/// Decompressed blocks by (segment path, block index, block CRC); the CRC makes a key
/// name one content even if a path were ever reused.
type BlockKey = (Arc<str>, u32, u32);

/// Bytes of decompressed blocks the cache holds at most.
pub const BLOCK_CACHE_BYTES: u64 = 64 << 20;

type BlockCache = quick_cache::sync::Cache<BlockKey, Arc<Vec<u8>>, BlockWeight>;

/// A cached block weighs its decompressed size.
#[derive(Clone, Copy)]
struct BlockWeight;

impl quick_cache::Weighter<BlockKey, Arc<Vec<u8>>> for BlockWeight {
    fn weight(&self, _key: &BlockKey, block: &Arc<Vec<u8>>) -> u64 {
        block.len() as u64
    }
}

/// A block of a selection: decompressed from the cache, or its stored bytes just read.
enum Block {
    Cached(Arc<Vec<u8>>),
    Read(BlockKey, bytes::Bytes),
}

impl Tsdb {
    pub fn new(objects: Objects, metrics: StoreMetrics) -> Self {
        Self {
            state: Arc::default(),
            objects,
            metrics,
            pool: Arc::default(),
            blocks: BlockCache::with_weighter(1024, BLOCK_CACHE_BYTES, BlockWeight),
        }
    }

    /// The label sets every series of this store shares (see [`LabelInterner`]).
    pub fn label_interner(&self) -> &Arc<LabelInterner> {
        &self.pool
    }

    pub fn state(&self) -> Arc<RwLock<TsdbState>> {
        self.state.clone()
    }

    pub fn read(&self) -> RwLockReadGuard<'_, TsdbState> {
        crate::signal::read(&self.state)
    }

    fn write(&self) -> RwLockWriteGuard<'_, TsdbState> {
        crate::signal::write(&self.state)
    }

    /// Loads the segments found under `metrics/` (leftovers deleted, see `segment::list_live`).
    pub async fn load_segments(&self, checkpoint: u64) -> Result<(), StoreError> {
        let mut loaded = Vec::new();
        for (id, size) in crate::segment::list_live(&self.objects, SIGNAL, checkpoint).await? {
            let (bytes, crc) =
                crate::segment::read_footer_bytes(&self.objects, &id, size, seg::TRAILER_MAGIC)
                    .await?;
            let pool = self.pool.clone();
            let seg = tokio::task::spawn_blocking(move || {
                seg::decode_footer(&bytes, crc).map(|f| LoadedSegment::new(id, size, f, &pool))
            })
            .await
            .map_err(|e| StoreError::io("load metrics segment", e))??;
            loaded.push(Arc::new(seg));
        }
        let mut st = self.write();
        st.segments = loaded;
        Ok(())
    }

    /// Applies a durable batch to the active head (from the WAL thread or replay).
    pub fn apply(state: &RwLock<TsdbState>, batch: &MetricBatch) {
        crate::signal::write(state)
            .active
            .append(&batch.tenant, &batch.series, &batch.metadata);
    }

    /// Freezes the active head as of WAL sequence `seq` (at a rotation).
    pub fn freeze(state: &RwLock<TsdbState>, seq: u64) {
        crate::signal::write(state).freeze(seq);
    }

    pub fn head_bytes(&self) -> usize {
        self.read().head_bytes()
    }

    pub fn has_unflushed(&self) -> bool {
        self.read().has_unflushed()
    }

    /// Series the tenant has in the heads now plus those of `series` that are new: what a
    /// per-tenant series limit is checked against. Series of the frozen heads count too, so
    /// a flush does not reset the count mid-stream. Label sets are looked up only when the
    /// batch could pass `limit` (the common case costs no hashing).
    pub fn series_after(&self, tenant: &TenantId, series: &[SeriesSamples], limit: usize) -> usize {
        let st = self.read();
        let current = st
            .heads()
            .map(|h| h.series_count(tenant))
            .max()
            .unwrap_or(0);
        if current + series.len() <= limit {
            return current;
        }
        current + st.active.new_series_count(tenant, series)
    }

    /// Writes every frozen head as segments, then swaps them in (see `LogStore::flush_frozen`
    /// for the failure rules, which are the same).
    pub async fn flush_frozen(&self) -> Result<(), StoreError> {
        let frozen: Vec<Arc<FrozenHead>> = self.read().frozen.clone();
        for f in frozen {
            let parts = {
                let f = f.clone();
                tokio::task::spawn_blocking(move || {
                    f.head
                        .partitions()?
                        .into_iter()
                        .map(|mut p| {
                            p.series.sort_by(|a, b| a.0.cmp(b.0));
                            let input = SegmentInput {
                                tenant: p.tenant.as_str(),
                                series: p.series,
                                metadata: p.metadata.clone(),
                                exemplars: p.exemplars.clone(),
                            };
                            Ok((p.tenant.clone(), p.day, seg::encode_segment(&input)?))
                        })
                        .collect::<Result<Vec<_>, StoreError>>()
                })
                .await
                .map_err(|e| StoreError::io("encode metrics segments", e))??
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
        let footer = seg::footer_of(&bytes)?;
        self.objects.put_durable(&id.path(), bytes).await?;
        let pool = self.pool.clone();
        let loaded =
            tokio::task::spawn_blocking(move || LoadedSegment::new(id, size, footer, &pool))
                .await
                .map_err(|e| StoreError::io("index metrics segment", e))?;
        Ok(Arc::new(loaded))
    }

    /// Label sets of the series matching `matchers` with samples in the range, sorted.
    pub fn series(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<Labels> {
        let mut out: BTreeSet<Labels> = BTreeSet::new();
        let st = self.read();
        for s in st
            .segments
            .iter()
            .filter(|s| s.overlaps(tenant, start_ms, end_ms))
        {
            for id in s.select(matchers, start_ms, end_ms) {
                out.insert(s.labels[id as usize].clone());
            }
        }
        for head in st.heads() {
            let Some(t) = head.tenant(tenant) else {
                continue;
            };
            for hs in t.select(matchers) {
                if hs
                    .min_max_ts()
                    .is_some_and(|(lo, hi)| hi >= start_ms && lo <= end_ms)
                {
                    out.insert(hs.labels.clone());
                }
            }
        }
        out.into_iter().collect()
    }

    /// Metadata of every metric family the tenant has (newest wins), by family name.
    pub fn metadata(&self, tenant: &TenantId) -> BTreeMap<String, MetricMetadata> {
        let mut out = BTreeMap::new();
        let st = self.read();
        let mut segments: Vec<&Arc<LoadedSegment>> = st
            .segments
            .iter()
            .filter(|s| &s.id.tenant == tenant)
            .collect();
        segments.sort_by_key(|s| s.id.seq_hi);
        for s in segments {
            for m in &s.footer.metadata {
                out.insert(m.metric_family.clone(), m.clone());
            }
        }
        for head in st.heads() {
            if let Some(t) = head.tenant(tenant) {
                for m in t.metadata() {
                    out.insert(m.metric_family.clone(), m.clone());
                }
            }
        }
        out
    }

    /// Exemplars of matching series in the range, by series, sorted by time.
    pub fn exemplars(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<(Labels, Vec<Exemplar>)> {
        let mut out: BTreeMap<Labels, Vec<Exemplar>> = BTreeMap::new();
        let in_range = |e: &Exemplar| e.timestamp_ms >= start_ms && e.timestamp_ms <= end_ms;
        let st = self.read();
        for s in st
            .segments
            .iter()
            .filter(|s| s.overlaps(tenant, start_ms, end_ms))
        {
            for (i, e) in &s.footer.exemplars {
                let l = &s.labels[*i as usize];
                if in_range(e) && sightline_model::matcher::matches_all(matchers, l) {
                    out.entry((*l).clone()).or_default().push(e.clone());
                }
            }
        }
        for head in st.heads() {
            let Some(t) = head.tenant(tenant) else {
                continue;
            };
            for (l, e) in t.exemplars() {
                if in_range(e) && sightline_model::matcher::matches_all(matchers, l) {
                    out.entry(l.clone()).or_default().push(e.clone());
                }
            }
        }
        out.into_iter()
            .map(|(l, mut v)| {
                v.sort_by_key(|e| e.timestamp_ms);
                v.dedup_by(|a, b| a.timestamp_ms == b.timestamp_ms && a.labels == b.labels);
                (l, v)
            })
            .collect()
    }

    /// Merges small segments of one tenant and day. Returns how many merges ran. The caller
    /// holds the flush lock.
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
            let mut series: BTreeMap<Labels, Vec<Vec<Sample>>> = BTreeMap::new();
            let mut metadata: BTreeMap<String, MetricMetadata> = BTreeMap::new();
            let mut exemplars: Vec<(Labels, Exemplar)> = Vec::new();
            for f in &files {
                let (footer, all) = seg::decode_all(f)?;
                for m in &footer.metadata {
                    metadata.insert(m.metric_family.clone(), m.clone());
                }
                for (i, e) in footer.exemplars {
                    exemplars.push((all[i as usize].0.clone(), e));
                }
                for (l, s) in all {
                    series.entry(l).or_default().push(s);
                }
            }
            let series: Vec<(Labels, Vec<Sample>)> = series
                .into_iter()
                .map(|(l, p)| (l, merge_parts(p)))
                .collect();
            let input = SegmentInput {
                tenant: t.as_str(),
                series: series.iter().map(|(l, s)| (l, s.as_slice())).collect(),
                metadata: metadata.values().collect(),
                exemplars: exemplars.iter().map(|(l, e)| (l, e)).collect(),
            };
            seg::encode_segment(&input)
        })
        .await
        .map_err(|e| StoreError::io("compact metrics segments", e))??;
        let out = self.put_segment(id, bytes).await?;
        crate::segment::replace_compacted(&mut self.write().segments, inputs, out);
        crate::segment::delete_all(&self.objects, inputs, "compacted").await
    }

    /// Deletes segments whose newest sample is older than `cutoff_ms`. Returns how many.
    pub async fn apply_retention(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        let expired = crate::segment::take_expired(&mut self.write().segments, |s| {
            s.footer.max_ts < cutoff_ms
        });
        crate::segment::delete_all(&self.objects, &expired, "expired").await?;
        self.metrics
            .retention_deleted_segments
            .inc_by(expired.len() as u64);
        Ok(expired.len())
    }

    /// Forgets label sets nothing holds any more: no head, segment or batch in flight
    /// (after a flush, compaction or retention, once what they dropped is gone).
    pub fn prune_labels(&self) {
        self.pool.prune();
    }

    /// Segment count and bytes, for the store's gauges.
    pub fn segment_totals(&self) -> (usize, u64) {
        let st = self.read();
        (st.segments.len(), st.segments.iter().map(|s| s.size).sum())
    }
}

fn self_select(s: &LoadedSegment, sel: &SeriesSelection) -> Vec<u32> {
    s.select(&sel.matchers, sel.start_ms, sel.end_ms)
}

/// Merges sorted sample runs from sources in write order: by time, and for a timestamp in
/// several runs the value of the last run wins.
fn merge_parts(mut parts: Vec<Vec<Sample>>) -> Vec<Sample> {
    if parts.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    // Runs that follow one another in time (the usual case: each flush holds later
    // samples) are concatenated; overlapping ones are sorted, the later write winning.
    let ordered = parts.windows(2).all(|w| match (w[0].last(), w[1].first()) {
        (Some(a), Some(b)) => a.timestamp_ms < b.timestamp_ms,
        _ => true,
    });
    if ordered {
        return parts.concat();
    }
    sort_dedup(parts.into_iter().flatten().collect())
}

mod select;
#[cfg(test)]
mod tests;
