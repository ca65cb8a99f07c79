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

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

use foldhash::HashMap;

use sightline_model::{
    Exemplar, LabelMatcher, Labels, MetricMetadata, Sample, SeriesSamples, TenantId,
};

use crate::index::Postings;
use crate::segment::PARTITION_SECONDS;

/// Raw bytes a sample counts for against the flush threshold.
pub const SAMPLE_BYTES: usize = 16;
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
}

pub struct HeadSeries {
    pub labels: Labels,
    samples: Vec<Sample>,
    sorted: bool,
}

impl HeadSeries {
    /// Samples sorted by time, one per timestamp (the last written).
    pub fn sorted_samples(&self) -> Cow<'_, [Sample]> {
        if self.sorted {
            Cow::Borrowed(&self.samples)
        } else {
            Cow::Owned(sort_dedup(self.samples.clone()))
        }
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
                    head.series.push(HeadSeries {
                        labels: s.labels.clone(),
                        samples: Vec::new(),
                        sorted: true,
                    });
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
                if hs
                    .samples
                    .last()
                    .is_some_and(|l| l.timestamp_ms >= smp.timestamp_ms)
                {
                    hs.sorted = false;
                }
                hs.samples.push(*smp);
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

    /// The head split by tenant and day partition, for flushing: each series with its
    /// sorted samples of that day; metadata and exemplars go with every partition of the
    /// tenant (exemplars with the day they fall in).
    pub fn partitions(&self) -> Vec<Partition<'_>> {
        let mut out = Vec::new();
        for (tenant, t) in &self.tenants {
            let mut days: BTreeMap<i64, Partition<'_>> = BTreeMap::new();
            for hs in &t.series {
                let samples = hs.sorted_samples();
                let day_of = |s: &Sample| s.timestamp_ms.div_euclid(MS_PER_DAY);
                let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
                    continue;
                };
                if day_of(first) == day_of(last) {
                    // The usual case: one day, written straight from the head (no copy when
                    // the samples arrived in order).
                    days.entry(day_of(first))
                        .or_insert_with(|| Partition::new(tenant, day_of(first), t))
                        .series
                        .push((&hs.labels, samples));
                    continue;
                }
                let mut start = 0;
                while start < samples.len() {
                    let day = day_of(&samples[start]);
                    let end = start + samples[start..].partition_point(|s| day_of(s) == day);
                    days.entry(day)
                        .or_insert_with(|| Partition::new(tenant, day, t))
                        .series
                        .push((&hs.labels, Cow::Owned(samples[start..end].to_vec())));
                    start = end;
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
        out
    }
}

/// One tenant's day of a head, ready to be written as a segment.
pub struct Partition<'a> {
    pub tenant: &'a TenantId,
    pub day: i64,
    pub series: Vec<(&'a Labels, Cow<'a, [Sample]>)>,
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

    /// The series matching every matcher.
    pub fn select(&self, matchers: &[LabelMatcher]) -> Vec<&HeadSeries> {
        self.postings
            .select(matchers, |id| &self.series[id as usize].labels)
            .into_iter()
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

impl HeadSeries {
    pub fn min_max_ts(&self) -> Option<(i64, i64)> {
        if self.sorted {
            Some((
                self.samples.first()?.timestamp_ms,
                self.samples.last()?.timestamp_ms,
            ))
        } else {
            let min = self.samples.iter().map(|s| s.timestamp_ms).min()?;
            let max = self.samples.iter().map(|s| s.timestamp_ms).max()?;
            Some((min, max))
        }
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
