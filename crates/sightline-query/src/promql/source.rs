//! What PromQL evaluation needs from storage: the samples of the series matching a selector
//! in a time range, and nothing more.
//!
//! The evaluator calls [`SeriesSource::select`] once per selector of a query, for the whole
//! time range the query needs (lookback, ranges, offsets, `@` and subqueries accounted for),
//! then evaluates every step in memory. [`MemorySeries`] is the reference implementation the
//! tests use; store answers must equal its answers.

use std::sync::Mutex;

use sightline_model::matcher::matches_all;
use sightline_model::{Labels, Sample, SeriesSelection, TenantId};

use super::error::SourceError;

/// One series and its samples in the selected range.
///
/// Invariant: timestamps ascend strictly. Samples may include staleness markers
/// ([`sightline_model::is_stale_nan`]); the evaluator interprets them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesData {
    pub labels: Labels,
    pub samples: Vec<Sample>,
    /// `true` when the source knows no sample is a staleness marker (a store tells while
    /// decoding); `false` leaves the evaluator to look.
    pub stale_free: bool,
}

/// Read access to stored metrics.
pub trait SeriesSource: Send + Sync {
    /// The series of `sel.tenant` whose labels satisfy every matcher, each with its samples in
    /// `[sel.start_ms, sel.end_ms]` (both inclusive), in any order. Series without a sample in
    /// the range may be left out.
    fn select(&self, sel: &SeriesSelection) -> Result<Vec<SeriesData>, SourceError>;
}

/// A [`SeriesSource`] over series held in memory, for tests and as the reference answer.
#[derive(Debug, Default)]
pub struct MemorySeries {
    series: Vec<(TenantId, SeriesData)>,
    selections: Mutex<Vec<SeriesSelection>>,
}

impl MemorySeries {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds samples of the default tenant's series `labels`, merged with any already held
    /// (a sample at an existing timestamp replaces the old one).
    pub fn add(&mut self, labels: Labels, samples: Vec<Sample>) {
        self.add_for(TenantId::default_tenant(), labels, samples);
    }

    /// Adds samples of `tenant`'s series `labels`.
    pub fn add_for(&mut self, tenant: TenantId, labels: Labels, samples: Vec<Sample>) {
        let slot = match self
            .series
            .iter_mut()
            .find(|(t, s)| *t == tenant && s.labels == labels)
        {
            Some((_, s)) => s,
            None => {
                self.series.push((
                    tenant,
                    SeriesData {
                        labels,
                        samples: Vec::new(),
                        stale_free: false,
                    },
                ));
                let last = self.series.len() - 1;
                &mut self.series[last].1
            }
        };
        for sample in samples {
            match slot
                .samples
                .binary_search_by_key(&sample.timestamp_ms, |s| s.timestamp_ms)
            {
                Ok(i) => slot.samples[i] = sample,
                Err(i) => slot.samples.insert(i, sample),
            }
        }
    }

    /// Removes every series.
    pub fn clear(&mut self) {
        self.series.clear();
    }

    /// Every selection asked for so far, oldest first.
    pub fn selections(&self) -> Vec<SeriesSelection> {
        self.selections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl SeriesSource for MemorySeries {
    fn select(&self, sel: &SeriesSelection) -> Result<Vec<SeriesData>, SourceError> {
        self.selections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(sel.clone());
        Ok(self
            .series
            .iter()
            .filter(|(t, s)| *t == sel.tenant && matches_all(&sel.matchers, &s.labels))
            .map(|(_, s)| SeriesData {
                labels: s.labels.clone(),
                samples: s
                    .samples
                    .iter()
                    .filter(|p| p.timestamp_ms >= sel.start_ms && p.timestamp_ms <= sel.end_ms)
                    .copied()
                    .collect(),
                stale_free: false,
            })
            .filter(|s| !s.samples.is_empty())
            .collect())
    }
}
