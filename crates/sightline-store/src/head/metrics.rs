//! The metrics head: per tenant, the series written since the last WAL rotation, with their
//! samples in arrival order, a postings index, metadata and recent exemplars.
//!
//! Invariants: a label set appears once per tenant and its id is its index in `series`;
//! ids are assigned in ascending order, so postings stay sorted. A series' samples are
//! sorted and deduplicated lazily: `sorted` says whether arrival order was already time
//! order, and readers sort a copy when it was not. Any timestamp is accepted (out-of-order
//! and backfilled samples included): segments are partitioned by day and merged by
//! compaction, so order at write time costs nothing later. For one timestamp written twice,
//! the later write wins.
//!
//! **Chunks.** While a series' samples come in time order, every [`CHUNK_SAMPLES`] of them
//! are encoded with the segments' sample codec (`segment::metrics::samples`: delta-of-delta
//! timestamps, decimal or XOR values) into a closed chunk, as Prometheus' head keeps
//! compressed chunks: a scrape-regular series costs a few bytes a sample in memory instead
//! of 16. Only the newest samples, fewer than a chunk, stay as they are. Chunks are in time
//! order and each holds strictly later samples than the one before; once a series has had
//! a sample out of order, it cuts no more chunks (its samples are sorted when read).

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::sync::OnceLock;

use foldhash::HashMap;

use sightline_model::{
    Exemplar, LabelMatcher, Labels, MetricMetadata, Sample, SeriesSamples, TenantId,
};

use crate::StoreError;
use crate::index::Postings;
use crate::segment::PARTITION_SECONDS;
use crate::segment::metrics::SamplesSource;
use crate::segment::metrics::samples as samples_codec;

/// Raw bytes a sample counts for against the flush threshold (what it takes uncompressed,
/// whatever the head holds it in, so flushing keeps the same cadence).
pub const SAMPLE_BYTES: usize = 16;
/// Samples in a closed head chunk.
pub const CHUNK_SAMPLES: usize = 64;
/// Exemplars kept per tenant per head; older ones are dropped first.
pub const EXEMPLARS_MAX: usize = 100_000;
const MS_PER_DAY: i64 = PARTITION_SECONDS * 1000;

#[derive(Default)]
pub struct MetricHead {
    tenants: HashMap<TenantId, TenantSeries>,
    pub raw_bytes: usize,
    pub samples: u64,
}

#[derive(Default)]
pub struct TenantSeries {
    /// Label-set hash → ids with that hash (almost always one), so each label set is held
    /// once, in `series`, not again as a map key.
    index: HashMap<u64, Vec<u32>>,
    /// The address of each series' own label set ([`Labels::addr`]) → its id: a batch whose
    /// labels came from the store's interner is the head's set itself, found without
    /// hashing the labels. The head holds every set keyed here, so no address is reused.
    by_addr: HashMap<usize, u32>,
    series: Vec<HeadSeries>,
    postings: Postings,
    metadata: BTreeMap<String, MetricMetadata>,
    exemplars: VecDeque<(u32, Exemplar)>,
    /// Each id's position among the series sorted by labels, made by the first large
    /// selection after a series was added: a selection returns its series in label order
    /// (what every other source gives and the merge needs) by sorting integers, not sets.
    rank: OnceLock<Vec<u32>>,
}

/// A selection of at least 1/`RANK_SELECTION_SHARE` of a tenant's series is sorted by
/// [`TenantSeries::rank`] (made if need be); a smaller one by comparing its own sets.
const RANK_SELECTION_SHARE: usize = 8;

pub struct HeadSeries {
    pub labels: Labels,
    /// Closed chunks, in time order (see the module docs).
    chunks: Vec<Chunk>,
    /// The samples since the last chunk, in arrival order.
    samples: Vec<Sample>,
    /// Whether every sample (chunks, then `samples`) came in strictly increasing time.
    sorted: bool,
    /// The latest timestamp so far.
    max_ts: Option<i64>,
}

/// [`CHUNK_SAMPLES`] samples in time order, encoded.
struct Chunk {
    min_ts: i64,
    max_ts: i64,
    bytes: Box<[u8]>,
}

impl Chunk {
    /// Fails only if the codec does not read back what it wrote (its round trip is
    /// property-tested): a bug, reported to the query or the flush, never samples missing
    /// without a word.
    fn decode_into(&self, out: &mut Vec<Sample>) -> Result<(), StoreError> {
        let mut r = crate::codec::Reader::new(&self.bytes, "metrics head chunk");
        samples_codec::decode(&mut r, CHUNK_SAMPLES, out).map(|_stale| ())
    }
}

impl HeadSeries {
    fn new(labels: Labels) -> Self {
        Self {
            labels,
            chunks: Vec::new(),
            samples: Vec::new(),
            sorted: true,
            max_ts: None,
        }
    }

    fn push(&mut self, smp: Sample) {
        if self.max_ts.is_some_and(|m| m >= smp.timestamp_ms) {
            self.sorted = false;
        } else {
            self.max_ts = Some(smp.timestamp_ms);
        }
        self.samples.push(smp);
        if self.sorted && self.samples.len() >= CHUNK_SAMPLES {
            let mut bytes = Vec::with_capacity(CHUNK_SAMPLES * 4);
            samples_codec::encode(&self.samples, &mut bytes);
            self.chunks.push(Chunk {
                min_ts: self.samples[0].timestamp_ms,
                max_ts: smp.timestamp_ms,
                bytes: bytes.into_boxed_slice(),
            });
            self.samples = Vec::with_capacity(CHUNK_SAMPLES);
        }
    }

    /// Samples sorted by time, one per timestamp (the last written).
    pub fn sorted_samples(&self) -> Result<Cow<'_, [Sample]>, StoreError> {
        Ok(match (self.sorted, self.chunks.is_empty()) {
            (true, true) => Cow::Borrowed(&self.samples),
            (true, false) => Cow::Owned(self.decoded(i64::MIN, i64::MAX)?),
            (false, _) => Cow::Owned(sort_dedup(self.decoded(i64::MIN, i64::MAX)?)),
        })
    }

    /// The samples of `[start_ms, end_ms]`, sorted by time, one per timestamp.
    pub fn samples_between(&self, start_ms: i64, end_ms: i64) -> Result<Vec<Sample>, StoreError> {
        let all = if self.sorted {
            self.decoded(start_ms, end_ms)?
        } else {
            sort_dedup(self.decoded(i64::MIN, i64::MAX)?)
        };
        let lo = all.partition_point(|x| x.timestamp_ms < start_ms);
        let hi = all.partition_point(|x| x.timestamp_ms <= end_ms);
        if lo == 0 && hi == all.len() {
            return Ok(all);
        }
        Ok(all[lo..hi].to_vec())
    }

    /// The chunks that may hold samples of `[start_ms, end_ms]`, decoded, then the open
    /// samples, in the order they are held.
    fn decoded(&self, start_ms: i64, end_ms: i64) -> Result<Vec<Sample>, StoreError> {
        let chunks: Vec<&Chunk> = self
            .chunks
            .iter()
            .filter(|c| c.max_ts >= start_ms && c.min_ts <= end_ms)
            .collect();
        let mut out = Vec::with_capacity(chunks.len() * CHUNK_SAMPLES + self.samples.len());
        for c in chunks {
            c.decode_into(&mut out)?;
        }
        out.extend_from_slice(&self.samples);
        Ok(out)
    }

    pub fn min_max_ts(&self) -> Option<(i64, i64)> {
        let max = self.max_ts?;
        let open_min = self.samples.iter().map(|s| s.timestamp_ms).min();
        let min = match self.chunks.first() {
            // Chunks are cut only in order, so the first chunk starts the series...
            Some(c) if self.sorted => c.min_ts,
            // ...unless later samples went back in time.
            Some(c) => open_min.map_or(c.min_ts, |m| m.min(c.min_ts)),
            None => open_min?,
        };
        Some((min, max))
    }
}

/// Sorts by time (stable, so arrival order breaks ties) and keeps the last sample of each
/// timestamp.
pub fn sort_dedup(mut samples: Vec<Sample>) -> Vec<Sample> {
    samples.sort_by_key(|s| s.timestamp_ms);
    let mut out: Vec<Sample> = Vec::with_capacity(samples.len());
    for s in samples {
        match out.last_mut() {
            Some(last) if last.timestamp_ms == s.timestamp_ms => *last = s,
            _ => out.push(s),
        }
    }
    out
}

impl MetricHead {
    pub fn is_empty(&self) -> bool {
        self.samples == 0 && self.tenants.values().all(|t| t.metadata.is_empty())
    }

    pub fn tenant(&self, tenant: &TenantId) -> Option<&TenantSeries> {
        self.tenants.get(tenant)
    }

    pub fn tenants(&self) -> impl Iterator<Item = (&TenantId, &TenantSeries)> {
        self.tenants.iter()
    }

    /// How many of `series` this head does not hold yet for `tenant`.
    pub fn new_series_count(&self, tenant: &TenantId, series: &[SeriesSamples]) -> usize {
        match self.tenants.get(tenant) {
            None => series.len(),
            Some(t) => series
                .iter()
                .filter(|s| t.find(&s.labels).is_none())
                .count(),
        }
    }

    pub fn series_count(&self, tenant: &TenantId) -> usize {
        self.tenants.get(tenant).map_or(0, |t| t.series.len())
    }

    pub fn append(
        &mut self,
        tenant: &TenantId,
        series: &[SeriesSamples],
        metadata: &[MetricMetadata],
    ) {
        let head = match self.tenants.get_mut(tenant) {
            Some(h) => h,
            None => self.tenants.entry(tenant.clone()).or_default(),
        };
        for m in metadata {
            head.metadata.insert(m.metric_family.clone(), m.clone());
        }
        for s in series {
            let id = match head.find(&s.labels) {
                Some(id) => id,
                None => {
                    let id = head.series.len() as u32;
                    head.postings.add(id, &s.labels);
                    head.by_addr.insert(s.labels.addr(), id);
                    head.index
                        .entry(s.labels.series_hash())
                        .or_default()
                        .push(id);
                    head.series.push(HeadSeries::new(s.labels.clone()));
                    head.rank.take();
                    self.raw_bytes += s
                        .labels
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>();
                    id
                }
            };
            let hs = &mut head.series[id as usize];
            for smp in &s.samples {
                hs.push(*smp);
            }
            self.samples += s.samples.len() as u64;
            self.raw_bytes += s.samples.len() * SAMPLE_BYTES;
            for e in &s.exemplars {
                if head.exemplars.len() >= EXEMPLARS_MAX {
                    head.exemplars.pop_front();
                }
                head.exemplars.push_back((id, e.clone()));
            }
        }
    }

    /// The head split by tenant and day partition, for flushing: each series with the
    /// part of its samples of that day, read when the segment is written; metadata and
    /// exemplars go with every partition of the tenant (exemplars with the day they fall
    /// in).
    pub fn partitions(&self) -> Result<Vec<Partition<'_>>, StoreError> {
        let mut out = Vec::new();
        for (tenant, t) in &self.tenants {
            let mut days: BTreeMap<i64, Partition<'_>> = BTreeMap::new();
            for hs in &t.series {
                let day_of = |ts: i64| ts.div_euclid(MS_PER_DAY);
                let Some((first, last)) = hs.min_max_ts() else {
                    continue;
                };
                if day_of(first) == day_of(last) {
                    // The usual case: one day, the whole series.
                    days.entry(day_of(first))
                        .or_insert_with(|| Partition::new(tenant, day_of(first), t))
                        .series
                        .push((
                            &hs.labels,
                            DayOfSeries {
                                series: hs,
                                day: None,
                            },
                        ));
                    continue;
                }
                // Samples of several days (backfill): the days that have samples.
                let samples = hs.sorted_samples()?;
                let mut start = 0;
                while start < samples.len() {
                    let day = day_of(samples[start].timestamp_ms);
                    start += samples[start..].partition_point(|s| day_of(s.timestamp_ms) == day);
                    days.entry(day)
                        .or_insert_with(|| Partition::new(tenant, day, t))
                        .series
                        .push((
                            &hs.labels,
                            DayOfSeries {
                                series: hs,
                                day: Some(day),
                            },
                        ));
                }
            }
            for (id, e) in &t.exemplars {
                let day = e.timestamp_ms.div_euclid(MS_PER_DAY);
                days.entry(day)
                    .or_insert_with(|| Partition::new(tenant, day, t))
                    .exemplars
                    .push((&t.series[*id as usize].labels, e));
            }
            if days.is_empty() && !t.metadata.is_empty() {
                let day = sightline_model::now_ns().div_euclid(MS_PER_DAY * 1_000_000);
                days.insert(day, Partition::new(tenant, day, t));
            }
            out.extend(days.into_values());
        }
        Ok(out)
    }
}

/// A series' samples of one day partition (`None`: the series has samples of one day only).
pub struct DayOfSeries<'a> {
    series: &'a HeadSeries,
    day: Option<i64>,
}

impl SamplesSource for DayOfSeries<'_> {
    fn samples(&self) -> Result<Cow<'_, [Sample]>, StoreError> {
        match self.day {
            None => self.series.sorted_samples(),
            Some(day) => Ok(Cow::Owned(
                self.series
                    .samples_between(day * MS_PER_DAY, (day + 1) * MS_PER_DAY - 1)?,
            )),
        }
    }
}

/// One tenant's day of a head, ready to be written as a segment.
pub struct Partition<'a> {
    pub tenant: &'a TenantId,
    pub day: i64,
    pub series: Vec<(&'a Labels, DayOfSeries<'a>)>,
    pub metadata: Vec<&'a MetricMetadata>,
    pub exemplars: Vec<(&'a Labels, &'a Exemplar)>,
}

impl<'a> Partition<'a> {
    fn new(tenant: &'a TenantId, day: i64, t: &'a TenantSeries) -> Self {
        Self {
            tenant,
            day,
            series: Vec::new(),
            metadata: t.metadata.values().collect(),
            exemplars: Vec::new(),
        }
    }
}

impl TenantSeries {
    /// The id of a label set, if the head has it.
    fn find(&self, labels: &Labels) -> Option<u32> {
        if let Some(&id) = self.by_addr.get(&labels.addr()) {
            return Some(id);
        }
        self.index
            .get(&labels.series_hash())?
            .iter()
            .copied()
            .find(|&id| self.series[id as usize].labels == *labels)
    }

    /// The series matching every matcher, sorted by labels.
    pub fn select(&self, matchers: &[LabelMatcher]) -> Vec<&HeadSeries> {
        let mut ids = self
            .postings
            .select(matchers, |id| &self.series[id as usize].labels);
        let labels = |id: u32| &self.series[id as usize].labels;
        if self.rank.get().is_some() || ids.len() * RANK_SELECTION_SHARE >= self.series.len() {
            let rank = self.rank.get_or_init(|| {
                let mut order: Vec<u32> = (0..self.series.len() as u32).collect();
                order.sort_unstable_by(|&a, &b| labels(a).cmp(labels(b)));
                let mut rank = vec![0u32; order.len()];
                for (pos, &id) in order.iter().enumerate() {
                    rank[id as usize] = pos as u32;
                }
                rank
            });
            ids.sort_unstable_by_key(|&id| rank[id as usize]);
        } else {
            ids.sort_unstable_by(|&a, &b| labels(a).cmp(labels(b)));
        }
        ids.into_iter()
            .map(|id| &self.series[id as usize])
            .collect()
    }

    pub fn postings(&self) -> &Postings {
        &self.postings
    }

    pub fn series(&self, id: u32) -> &HeadSeries {
        &self.series[id as usize]
    }

    pub fn metadata(&self) -> impl Iterator<Item = &MetricMetadata> {
        self.metadata.values()
    }

    pub fn exemplars(&self) -> impl Iterator<Item = (&Labels, &Exemplar)> {
        self.exemplars
            .iter()
            .map(|(id, e)| (&self.series[*id as usize].labels, e))
    }
}

impl crate::signal::Head for MetricHead {
    fn is_empty(&self) -> bool {
        MetricHead::is_empty(self)
    }

    fn raw_bytes(&self) -> usize {
        self.raw_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn series_of(samples: &[Sample]) -> HeadSeries {
        let mut hs = HeadSeries::new(Labels::from_pairs([("__name__", "x")]));
        for s in samples {
            hs.push(*s);
        }
        hs
    }

    fn reference_between(samples: &[Sample], start: i64, end: i64) -> Vec<Sample> {
        sort_dedup(samples.to_vec())
            .into_iter()
            .filter(|s| s.timestamp_ms >= start && s.timestamp_ms <= end)
            .collect()
    }

    #[test]
    fn in_order_samples_are_chunked_and_read_back_exactly() {
        let samples: Vec<Sample> = (0..1000)
            .map(|i| Sample {
                timestamp_ms: 10_000 * i,
                // A gauge with two decimals, as exporters print them.
                value: (5000 + (i * 37) % 200) as f64 / 100.0,
            })
            .collect();
        let hs = series_of(&samples);
        assert_eq!(hs.chunks.len(), 1000 / CHUNK_SAMPLES);
        assert_eq!(hs.samples.len(), 1000 % CHUNK_SAMPLES);
        assert_eq!(
            hs.sorted_samples().expect("decode").as_ref(),
            samples.as_slice()
        );
        assert_eq!(hs.min_max_ts(), Some((0, 9_990_000)));
        for (start, end) in [
            (0, 0),
            (5, 640_000),
            (1_000_000, 2_000_005),
            (9_000_000, i64::MAX),
        ] {
            assert_eq!(
                hs.samples_between(start, end).expect("decode"),
                reference_between(&samples, start, end),
                "[{start}, {end}]"
            );
        }
        // Chunks hold a few bytes a sample, not 16.
        let bytes: usize = hs.chunks.iter().map(|c| c.bytes.len()).sum();
        assert!(bytes < 960 * 4, "{bytes} bytes for 960 samples");
    }

    #[test]
    fn a_sample_out_of_order_after_chunks_is_sorted_in_and_wins_its_timestamp() {
        let mut samples: Vec<Sample> = (0..200)
            .map(|i| Sample {
                timestamp_ms: i * 1000,
                value: i as f64,
            })
            .collect();
        samples.push(Sample {
            timestamp_ms: 5000,
            value: -1.0,
        });
        samples.push(Sample {
            timestamp_ms: -7,
            value: f64::NAN,
        });
        let hs = series_of(&samples);
        let got = hs.sorted_samples().expect("decode");
        assert_eq!(got.len(), 201);
        assert_eq!(got[0].timestamp_ms, -7);
        assert_eq!(
            got[6],
            Sample {
                timestamp_ms: 5000,
                value: -1.0
            }
        );
        assert_eq!(hs.min_max_ts(), Some((-7, 199_000)));
    }

    #[test]
    fn selections_come_sorted_by_labels_before_and_after_new_series() {
        use sightline_model::{LabelMatcher, MatchOp};
        let tenant = TenantId::new("t").expect("tenant");
        let mut head = MetricHead::default();
        let add = |head: &mut MetricHead, hosts: &[u32]| {
            let series: Vec<SeriesSamples> = hosts
                .iter()
                .map(|h| SeriesSamples {
                    labels: Labels::from_pairs([
                        ("__name__", if h % 2 == 0 { "a" } else { "b" }),
                        ("host", &format!("h{h}")),
                    ]),
                    samples: vec![Sample {
                        timestamp_ms: 1,
                        value: 1.0,
                    }],
                    exemplars: vec![],
                })
                .collect();
            head.append(&tenant, &series, &[]);
        };
        let check = |head: &MetricHead, matchers: &[LabelMatcher], want: usize| {
            let got = head.tenant(&tenant).expect("tenant").select(matchers);
            assert_eq!(got.len(), want);
            assert!(got.is_sorted_by(|a, b| a.labels < b.labels), "{matchers:?}");
        };
        let one = [LabelMatcher::new("host", MatchOp::Eq, "h7").expect("matcher")];
        let some = [LabelMatcher::new("host", MatchOp::Re, "h1.").expect("matcher")];
        let evens = [LabelMatcher::new("__name__", MatchOp::Eq, "a").expect("matcher")];
        // Arrival order unlike label order: descending hosts, names interleaved.
        add(&mut head, &(0..100).rev().collect::<Vec<_>>());
        check(&head, &some, 10);
        check(&head, &evens, 50);
        check(&head, &one, 1);
        add(&mut head, &(100..140).rev().collect::<Vec<_>>());
        check(&head, &some, 10);
        check(&head, &evens, 70);
        check(&head, &[], 140);
    }

    proptest! {
        #[test]
        fn reads_equal_the_sorted_deduplicated_writes(
            steps in prop::collection::vec((-3i64..40, any::<f64>()), 0..400),
            start in -100i64..5000,
            len in 0i64..5000,
        ) {
            // Mostly forward in time, sometimes back or the same timestamp again.
            let mut t = 0;
            let samples: Vec<Sample> = steps
                .into_iter()
                .map(|(dt, value)| {
                    t += dt;
                    Sample { timestamp_ms: t, value }
                })
                .collect();
            let hs = series_of(&samples);
            let bits = |v: &[Sample]| v.iter().map(|s| (s.timestamp_ms, s.value.to_bits())).collect::<Vec<_>>();
            prop_assert_eq!(bits(&hs.sorted_samples().expect("decode")), bits(&sort_dedup(samples.clone())));
            prop_assert_eq!(
                bits(&hs.samples_between(start, start + len).expect("decode")),
                bits(&reference_between(&samples, start, start + len))
            );
            let reference = sort_dedup(samples.clone());
            prop_assert_eq!(
                hs.min_max_ts(),
                reference.first().map(|f| (f.timestamp_ms, reference[reference.len() - 1].timestamp_ms))
            );
        }
    }
}
