//! One scrape's output, as Prometheus 2.42's scrape loop appends it: the scraped series with
//! the target's labels and `metric_relabel_configs` applied, the checks that fail a scrape,
//! the report series, and the staleness markers. Pure: no I/O, no clock.
//!
//! Per series, in order:
//! 1. target labels are attached: with `honor_labels: false` a scraped label that a target
//!    label overwrites is kept as `exported_<name>` (`exported_exported_<name>` if that is
//!    taken too); with `honor_labels: true` the scraped value wins;
//! 2. `metric_relabel_configs` run; a dropped series counts in
//!    `scrape_samples_scraped` only;
//! 3. the result must have a `__name__` and valid label names, and fit the job's label
//!    limits, or the scrape fails;
//! 4. a sample keeps its own timestamp only with `honor_timestamps` (the default); otherwise,
//!    or without one, it gets the scrape's. A second sample of a series at the same
//!    timestamp is dropped, as the TSDB refuses it.
//!
//! More samples than `sample_limit` after relabeling fail the scrape. A failed scrape
//! (fetch, parse, limit or check) stores none of its samples: its batch holds `up` 0, the
//! other report series, and staleness markers for every series of the last successful scrape.
//!
//! Staleness follows Prometheus: a series of the previous successful scrape that this one
//! lacks gets a marker at this scrape's timestamp. Series whose samples carried their own
//! timestamps are not tracked and never get one. The report series (`up`, …) get markers only
//! when the target goes away ([`SeriesState::end_of_run_markers`]).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sightline_ingest::metrics_common::DecodedMetrics;
use sightline_model::labels::is_valid_label_name;
use sightline_model::{
    Labels, METRIC_NAME_LABEL, MetricMetadata, Sample, SeriesSamples, stale_nan,
};

use crate::config::ScrapeConfig;
use crate::relabel::relabel;

/// The timestamp handed to the parser for samples without one, so they can be told apart
/// from samples with their own; no exposition writes it.
pub(crate) const NO_TIMESTAMP: i64 = i64::MIN;

/// The prefix of a scraped label that a target label displaced.
pub const EXPORTED_LABEL_PREFIX: &str = "exported_";

pub const UP_METRIC: &str = "up";
pub const SCRAPE_DURATION_METRIC: &str = "scrape_duration_seconds";
pub const SCRAPE_SAMPLES_METRIC: &str = "scrape_samples_scraped";
pub const SAMPLES_POST_RELABEL_METRIC: &str = "scrape_samples_post_metric_relabeling";
pub const SERIES_ADDED_METRIC: &str = "scrape_series_added";

/// The report series every scrape writes, in Prometheus' order.
pub const REPORT_METRICS: [&str; 5] = [
    UP_METRIC,
    SCRAPE_DURATION_METRIC,
    SCRAPE_SAMPLES_METRIC,
    SAMPLES_POST_RELABEL_METRIC,
    SERIES_ADDED_METRIC,
];

/// What a scrape loop remembers between scrapes of its target.
#[derive(Clone, Debug, Default)]
pub struct SeriesState {
    /// Final label sets, without their own timestamps, of the last successful scrape: the
    /// series that get a marker when they vanish.
    tracked: HashSet<Labels>,
    /// Every final label set of the last successful scrape (`scrape_series_added` counts the
    /// others).
    seen: HashSet<Labels>,
    /// Metadata as last written: a batch carries metadata only when it changed.
    metadata: Vec<MetricMetadata>,
    /// Whether a scrape was reported, so the report series exist and need end markers.
    reported: bool,
}

/// One scrape's batch content and outcome.
#[derive(Debug, Default)]
pub struct ScrapeOutput {
    pub series: Vec<SeriesSamples>,
    pub metadata: Vec<MetricMetadata>,
    /// `None`: the scrape succeeded (`up` 1).
    pub error: Option<String>,
}

/// Counts for the report series.
#[derive(Default)]
struct Counts {
    scraped: u64,
    post_relabel: u64,
    series_added: u64,
}

/// A scrape's series being collected, merged by final label set.
#[derive(Default)]
struct Collected {
    series: Vec<SeriesSamples>,
    index: HashMap<Labels, usize>,
    tracked: HashSet<Labels>,
}

impl SeriesState {
    /// Turns a scrape into its output and advances the state. `scraped` is the parser's
    /// output with [`NO_TIMESTAMP`] for samples without one, or why fetching or parsing
    /// failed.
    pub fn process(
        &mut self,
        config: &ScrapeConfig,
        target_labels: &Labels,
        scraped: Result<DecodedMetrics, String>,
        timestamp_ms: i64,
        duration: Duration,
    ) -> ScrapeOutput {
        let mut counts = Counts::default();
        let mut collected = Collected::default();
        let mut metadata = Vec::new();
        let error = match scraped {
            Err(error) => Some(error),
            Ok(decoded) => {
                metadata = decoded.metadata;
                self.collect(
                    config,
                    target_labels,
                    decoded.series,
                    timestamp_ms,
                    &mut counts,
                    &mut collected,
                )
                .err()
            }
        };
        let mut out = ScrapeOutput::default();
        match error {
            None => {
                out.series = collected.series;
                let vanished = self.tracked.difference(&collected.tracked);
                out.series
                    .extend(vanished.map(|labels| stale_series(labels.clone(), timestamp_ms)));
                self.tracked = collected.tracked;
                self.seen = collected.index.into_keys().collect();
                if metadata != self.metadata {
                    self.metadata = metadata.clone();
                    out.metadata = metadata;
                }
            }
            Some(error) => {
                out.series.extend(
                    self.tracked
                        .drain()
                        .map(|labels| stale_series(labels, timestamp_ms)),
                );
                out.error = Some(error);
            }
        }
        let up = if out.error.is_none() { 1.0 } else { 0.0 };
        let values = [
            up,
            duration.as_secs_f64(),
            counts.scraped as f64,
            counts.post_relabel as f64,
            counts.series_added as f64,
        ];
        for (name, value) in REPORT_METRICS.iter().zip(values) {
            out.series
                .push(report_series(target_labels, name, timestamp_ms, value));
        }
        self.reported = true;
        out
    }

    /// Collects the scraped series; `Err` fails the scrape.
    fn collect(
        &self,
        config: &ScrapeConfig,
        target_labels: &Labels,
        series: Vec<SeriesSamples>,
        timestamp_ms: i64,
        counts: &mut Counts,
        collected: &mut Collected,
    ) -> Result<(), String> {
        let mut limit_exceeded = false;
        for scraped in series {
            counts.scraped += scraped.samples.len() as u64;
            let labels = attach_target_labels(scraped.labels, target_labels, config.honor_labels);
            let Some(labels) = relabel(labels, &config.metric_relabel_configs) else {
                continue;
            };
            check_series(&labels, config)?;
            let is_new = !collected.index.contains_key(&labels) && !self.seen.contains(&labels);
            let slot = match collected.index.get(&labels) {
                Some(i) => *i,
                None => {
                    collected.series.push(SeriesSamples {
                        labels: labels.clone(),
                        ..Default::default()
                    });
                    collected
                        .index
                        .insert(labels.clone(), collected.series.len() - 1);
                    collected.series.len() - 1
                }
            };
            let out = &mut collected.series[slot];
            let mut tracked = false;
            let mut accepted = false;
            for sample in scraped.samples {
                counts.post_relabel += 1;
                if config.sample_limit > 0 && counts.post_relabel > config.sample_limit {
                    limit_exceeded = true;
                } else {
                    accepted = true;
                }
                let own = sample.timestamp_ms != NO_TIMESTAMP && config.honor_timestamps;
                tracked |= !own;
                let at_ms = if own {
                    sample.timestamp_ms
                } else {
                    timestamp_ms
                };
                if out.samples.iter().any(|s| s.timestamp_ms == at_ms) {
                    continue;
                }
                out.samples.push(Sample {
                    timestamp_ms: at_ms,
                    value: sample.value,
                });
            }
            for mut exemplar in scraped.exemplars {
                if exemplar.timestamp_ms == NO_TIMESTAMP {
                    exemplar.timestamp_ms = timestamp_ms;
                }
                out.exemplars.push(exemplar);
            }
            // As in Prometheus, a series counts as added once one of its samples is within
            // the sample limit.
            if is_new && accepted {
                counts.series_added += 1;
            }
            if tracked {
                collected.tracked.insert(labels);
            }
        }
        if limit_exceeded {
            return Err(format!(
                "sample limit exceeded ({} samples after metric relabeling, limit {})",
                counts.post_relabel, config.sample_limit
            ));
        }
        Ok(())
    }

    /// The markers to write when the target goes away: every tracked series and the report
    /// series, at `timestamp_ms`. Empty when it was never scraped.
    pub fn end_of_run_markers(
        &mut self,
        target_labels: &Labels,
        timestamp_ms: i64,
    ) -> Vec<SeriesSamples> {
        if !self.reported {
            return Vec::new();
        }
        let mut out: Vec<SeriesSamples> = self
            .tracked
            .drain()
            .map(|labels| stale_series(labels, timestamp_ms))
            .collect();
        out.extend(
            REPORT_METRICS
                .iter()
                .map(|name| report_series(target_labels, name, timestamp_ms, stale_nan())),
        );
        self.reported = false;
        out
    }

    /// Whether any scrape was reported since the last end-of-run markers.
    pub fn was_reported(&self) -> bool {
        self.reported
    }
}

/// A series with one staleness marker.
fn stale_series(labels: Labels, timestamp_ms: i64) -> SeriesSamples {
    SeriesSamples {
        labels,
        samples: vec![Sample {
            timestamp_ms,
            value: stale_nan(),
        }],
        exemplars: Vec::new(),
    }
}

/// A report series: the target's labels and `__name__`.
fn report_series(
    target_labels: &Labels,
    name: &str,
    timestamp_ms: i64,
    value: f64,
) -> SeriesSamples {
    let mut labels = target_labels.clone();
    labels.set(METRIC_NAME_LABEL, name);
    SeriesSamples {
        labels,
        samples: vec![Sample {
            timestamp_ms,
            value,
        }],
        exemplars: Vec::new(),
    }
}

/// Adds the target's labels to a scraped label set (see the module documentation).
pub fn attach_target_labels(scraped: Labels, target_labels: &Labels, honor_labels: bool) -> Labels {
    let mut out = scraped.clone();
    if honor_labels {
        for (name, value) in target_labels.iter() {
            if scraped.get(name).is_none() {
                out.set(name, value);
            }
        }
        return out;
    }
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for (name, value) in target_labels.iter() {
        if let Some(existing) = scraped.get(name) {
            conflicts.push((name.to_string(), existing.to_string()));
        }
        out.set(name, value);
    }
    // Shorter names first, so `job` becomes `exported_job` before `exported_job` itself is
    // moved out of the way.
    conflicts.sort_by_key(|(name, _)| name.len());
    for i in 0..conflicts.len() {
        let mut new_name = conflicts[i].0.clone();
        loop {
            new_name = format!("{EXPORTED_LABEL_PREFIX}{new_name}");
            let taken = scraped.get(&new_name).is_some()
                || target_labels.get(&new_name).is_some()
                || conflicts[..i]
                    .iter()
                    .any(|(earlier, _)| *earlier == new_name);
            if !taken {
                break;
            }
        }
        conflicts[i].0 = new_name;
    }
    for (name, value) in &conflicts {
        out.set(name, value);
    }
    out
}

/// The checks that fail a scrape for one of its series.
fn check_series(labels: &Labels, config: &ScrapeConfig) -> Result<(), String> {
    let Some(name) = labels.get(METRIC_NAME_LABEL) else {
        return Err("missing metric name (__name__ label)".to_string());
    };
    if labels.iter().any(|(n, _)| !is_valid_label_name(n)) {
        return Err(format!("invalid metric name or label names: {labels}"));
    }
    let metric = excerpt(name, 50);
    if config.label_limit > 0 && labels.len() as u64 > config.label_limit {
        return Err(format!(
            "label_limit exceeded (metric: {metric}, number of labels: {}, limit: {})",
            labels.len(),
            config.label_limit
        ));
    }
    for (label, value) in labels.iter() {
        let name_limit = config.label_name_length_limit;
        if name_limit > 0 && label.len() as u64 > name_limit {
            return Err(format!(
                "label_name_length_limit exceeded (metric: {metric}, label name: {}, length: \
                 {}, limit: {name_limit})",
                excerpt(label, 50),
                label.len()
            ));
        }
        let value_limit = config.label_value_length_limit;
        if value_limit > 0 && value.len() as u64 > value_limit {
            return Err(format!(
                "label_value_length_limit exceeded (metric: {metric}, label name: {}, value: \
                 {:?}, length: {}, limit: {value_limit})",
                excerpt(label, 50),
                excerpt(value, 50),
                value.len()
            ));
        }
    }
    Ok(())
}

/// The first `chars` characters of `text`.
fn excerpt(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}
