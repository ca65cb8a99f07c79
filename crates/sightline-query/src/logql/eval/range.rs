//! Range aggregations: `count_over_time`, `rate`, `bytes_*`, `absent_over_time` and the
//! unwrapped ones (`sum_over_time`, `quantile_over_time`, …).
//!
//! One scan covers every step: `[first - offset - range, last - offset]`. Per series it keeps
//! only what the operation needs (timestamps; or timestamp and value for bytes and unwrap),
//! never lines; then it sorts each series by time and slides the window across the steps.
//! The window at evaluation time `t` is `(t - offset - range, t - offset]`: left-open, as in
//! Prometheus and Loki. A step whose window holds no sample yields no point.
//!
//! Invariants: an entry carrying `__error__` after the pipeline fails the query (Loki's
//! "pipeline error"); held samples count against `max_samples` as they are collected.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sightline_model::{Labels, MatchOp};

use super::vector::{Vectors, group_labels};
use super::{Run, Steps};
use crate::logql::ast::{RangeAggregation, RangeOp, Unwrap, UnwrapConversion};
use crate::logql::error::QueryError;
use crate::logql::hints::range_hints;
use crate::logql::pipeline::{EntryState, SAMPLE_EXTRACTION_ERR, label_filter_matches};
use crate::logql::source::LogSelection;
use crate::logql::units::{parse_bytes, parse_duration_ns};

/// What each kept entry contributes.
#[derive(Clone, Copy)]
enum Measure<'a> {
    /// Only its timestamp.
    Count,
    /// The byte length of its line.
    Bytes,
    /// An unwrapped label value.
    Unwrap(&'a Unwrap),
}

enum Samples {
    Times(Vec<i64>),
    Values(Vec<(i64, f64)>),
    /// An instant count: the scan range is the one window, so entries are only counted.
    Count(u64),
}

impl Samples {
    /// Samples held in memory (a count holds none).
    fn len(&self) -> usize {
        match self {
            Samples::Times(t) => t.len(),
            Samples::Values(v) => v.len(),
            Samples::Count(_) => 0,
        }
    }
}

struct Collected {
    labels: Labels,
    samples: Samples,
}

impl Run<'_> {
    pub(super) fn range_aggregation(
        &mut self,
        agg: &RangeAggregation,
        steps: &Steps,
        promote: &[String],
    ) -> Result<Vectors, QueryError> {
        let measure = match (&agg.unwrap, agg.op) {
            (Some(u), _) => Measure::Unwrap(u),
            (None, RangeOp::BytesOverTime | RangeOp::BytesRate) => Measure::Bytes,
            (None, _) => Measure::Count,
        };
        let hints = range_hints(agg, promote);
        // One step: the scan range below is exactly its window, so a count needs no times.
        let count_only = steps.count == 1 && agg.op != RangeOp::AbsentOverTime;
        let scan_start = steps
            .start_ns
            .saturating_sub(agg.offset_ns)
            .saturating_sub(agg.range_ns)
            .saturating_add(1);
        let scan_end = steps
            .end_ns()
            .saturating_sub(agg.offset_ns)
            .saturating_add(1);
        let selection = LogSelection {
            tenant: self.tenant.clone(),
            matchers: agg.log.matchers.clone(),
            start_ns: scan_start,
            end_ns: scan_end,
            line_contains: hints.line_contains,
            metadata_eq: hints.metadata_eq,
            need_line: hints.need_line,
            need_metadata: hints.need_metadata,
            metadata_fields: hints.metadata_fields,
        };
        let group_by = agg.grouping.as_ref();
        let mut series: Vec<Collected> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut last_stream: Option<(Labels, Vec<Option<String>>, usize)> = None;
        let mut failure: Option<QueryError> = None;
        let max_samples = self.limits.max_samples;
        let (stats, samples_held) = (&mut self.stats, &mut self.samples_held);
        let held_before = *samples_held;
        self.source.scan_logs(&selection, &mut |labels, entry| {
            stats.entries_scanned += 1;
            stats.bytes_scanned += entry.line.len() as u64;
            let ts = entry.timestamp_ns;
            if ts < scan_start || ts >= scan_end {
                return ControlFlow::Continue(());
            }
            let mut state = EntryState::new(labels, entry.metadata, entry.line);
            if !crate::logql::pipeline::Pipeline::run_stages(&agg.log.stages, &mut state) {
                return ControlFlow::Continue(());
            }
            let value = match measure {
                Measure::Count => 0.0,
                Measure::Bytes => state.line.len() as f64,
                Measure::Unwrap(u) => match unwrap_value(u, &mut state) {
                    Some(v) => v,
                    None => return ControlFlow::Continue(()),
                },
            };
            stats.entries_matched += 1;
            if let Some((error, details)) = state.error() {
                failure = Some(QueryError::Pipeline {
                    error: error.to_string(),
                    details: details.unwrap_or("").to_string(),
                    labels: state.output_labels(promote),
                });
                return ControlFlow::Break(());
            }
            // Entries of one stream usually arrive together. When no stage touched the labels,
            // an entry's series depends only on its stream and its promoted metadata values:
            // if both equal the previous entry's, reuse its series without building labels.
            let cacheable = state.labels_untouched();
            let cached = match &last_stream {
                Some((prev, prev_promoted, slot))
                    if cacheable
                        && prev == labels
                        && promote
                            .iter()
                            .zip(prev_promoted)
                            .all(|(name, v)| state.metadata_value(name) == v.as_deref()) =>
                {
                    Some(*slot)
                }
                _ => None,
            };
            let slot = match cached {
                Some(slot) => slot,
                None => {
                    let key = state.output_labels(promote);
                    let key = match group_by {
                        Some(g) => group_labels(&key, Some(g)),
                        None => key,
                    };
                    let slot = *index.entry(key.clone()).or_insert_with(|| {
                        series.push(Collected {
                            labels: key,
                            samples: match measure {
                                Measure::Count if count_only => Samples::Count(0),
                                Measure::Count => Samples::Times(Vec::new()),
                                _ => Samples::Values(Vec::new()),
                            },
                        });
                        series.len() - 1
                    });
                    if cacheable {
                        let promoted = promote
                            .iter()
                            .map(|name| state.metadata_value(name).map(str::to_string))
                            .collect();
                        last_stream = Some((labels.clone(), promoted, slot));
                    }
                    slot
                }
            };
            match &mut series[slot].samples {
                Samples::Count(n) => {
                    *n += 1;
                    return ControlFlow::Continue(());
                }
                Samples::Times(t) => t.push(ts),
                Samples::Values(v) => v.push((ts, value)),
            }
            *samples_held += 1;
            if *samples_held > max_samples {
                failure = Some(QueryError::TooManySamples { limit: max_samples });
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })?;
        let collected: usize = series.iter().map(|s| s.samples.len()).sum();
        if let Some(e) = failure {
            self.samples_held = held_before;
            return Err(e);
        }
        let out = if agg.op == RangeOp::AbsentOverTime {
            absent(agg, series, steps)
        } else {
            aggregate_windows(agg, series, steps)
        };
        self.samples_held = self.samples_held.saturating_sub(collected);
        Ok(out)
    }
}

/// Converts the unwrapped label, runs the post-filters, and removes the label so that its
/// values do not split series. `None` when a post-filter drops the entry.
fn unwrap_value(u: &Unwrap, state: &mut EntryState<'_>) -> Option<f64> {
    let raw = state.get(&u.label).unwrap_or("");
    let converted = match u.conversion {
        UnwrapConversion::Number => raw
            .parse::<f64>()
            .map_err(|_| format!("strconv.ParseFloat: parsing {raw:?}: invalid syntax")),
        UnwrapConversion::Duration => parse_duration_ns(raw)
            .map(|ns| ns as f64 / 1e9)
            .ok_or_else(|| format!("time: invalid duration {raw:?}")),
        UnwrapConversion::Bytes => parse_bytes(raw)
            .map(|b| b as f64)
            .ok_or_else(|| format!("invalid byte size {raw:?}")),
    };
    let value = converted.unwrap_or_else(|details| {
        state.set_error(SAMPLE_EXTRACTION_ERR, details);
        0.0
    });
    for filter in &u.post_filters {
        if !label_filter_matches(filter, state) {
            return None;
        }
    }
    state.delete(&u.label);
    Some(value)
}

/// Calls `visit(step, lo, hi)` for every step whose window holds samples `times[lo..hi]`.
fn for_each_window(
    times: impl Fn(usize) -> i64,
    len: usize,
    steps: &Steps,
    agg: &RangeAggregation,
    mut visit: impl FnMut(usize, usize, usize),
) {
    let (mut lo, mut hi) = (0, 0);
    for step in 0..steps.count {
        let end = steps.time_ns(step).saturating_sub(agg.offset_ns);
        let start = end.saturating_sub(agg.range_ns);
        while lo < len && times(lo) <= start {
            lo += 1;
        }
        hi = hi.max(lo);
        while hi < len && times(hi) <= end {
            hi += 1;
        }
        if hi > lo {
            visit(step, lo, hi);
        }
    }
}

fn aggregate_windows(agg: &RangeAggregation, series: Vec<Collected>, steps: &Steps) -> Vectors {
    let mut out = Vectors::empty(steps.count);
    let range_seconds = agg.range_ns as f64 / 1e9;
    for collected in series {
        let id = out.labels.len() as u32;
        out.labels.push(collected.labels);
        match collected.samples {
            Samples::Count(n) => {
                let count = n as f64;
                let value = if agg.op == RangeOp::Rate {
                    count / range_seconds
                } else {
                    count
                };
                if n > 0 {
                    out.steps[0].push((id, value));
                }
            }
            Samples::Times(mut times) => {
                times.sort_unstable();
                for_each_window(
                    |i| times[i],
                    times.len(),
                    steps,
                    agg,
                    |step, lo, hi| {
                        let count = (hi - lo) as f64;
                        let value = if agg.op == RangeOp::Rate {
                            count / range_seconds
                        } else {
                            count
                        };
                        out.steps[step].push((id, value));
                    },
                );
            }
            Samples::Values(mut values) => {
                values.sort_by_key(|&(ts, _)| ts);
                let prefix: Vec<f64> =
                    if matches!(agg.op, RangeOp::BytesOverTime | RangeOp::BytesRate) {
                        std::iter::once(0.0)
                            .chain(values.iter().scan(0.0, |sum, &(_, v)| {
                                *sum += v;
                                Some(*sum)
                            }))
                            .collect()
                    } else {
                        Vec::new()
                    };
                for_each_window(
                    |i| values[i].0,
                    values.len(),
                    steps,
                    agg,
                    |step, lo, hi| {
                        let value = match agg.op {
                            RangeOp::BytesOverTime => prefix[hi] - prefix[lo],
                            RangeOp::BytesRate => (prefix[hi] - prefix[lo]) / range_seconds,
                            op => over_window(op, agg.param, &values[lo..hi], range_seconds),
                        };
                        out.steps[step].push((id, value));
                    },
                );
            }
        }
    }
    out
}

/// An unwrapped aggregation over one non-empty window, in time order.
fn over_window(op: RangeOp, param: Option<f64>, window: &[(i64, f64)], range_seconds: f64) -> f64 {
    let n = window.len() as f64;
    let values = window.iter().map(|&(_, v)| v);
    match op {
        RangeOp::SumOverTime => values.sum(),
        RangeOp::Rate => values.sum::<f64>() / range_seconds,
        RangeOp::AvgOverTime => values.sum::<f64>() / n,
        RangeOp::MinOverTime => {
            values.fold(f64::NAN, |m, v| if v < m || m.is_nan() { v } else { m })
        }
        RangeOp::MaxOverTime => {
            values.fold(f64::NAN, |m, v| if v > m || m.is_nan() { v } else { m })
        }
        RangeOp::StdvarOverTime | RangeOp::StddevOverTime => {
            let mean = values.clone().sum::<f64>() / n;
            let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            if op == RangeOp::StddevOverTime {
                var.sqrt()
            } else {
                var
            }
        }
        RangeOp::QuantileOverTime => quantile(param.unwrap_or(f64::NAN), values.collect()),
        RangeOp::FirstOverTime => window[0].1,
        RangeOp::LastOverTime => window[window.len() - 1].1,
        // Counted without values; not reached.
        RangeOp::CountOverTime
        | RangeOp::BytesOverTime
        | RangeOp::BytesRate
        | RangeOp::AbsentOverTime => n,
    }
}

/// Prometheus' `quantile`: linear interpolation between the closest ranks; `q < 0` is -Inf,
/// `q > 1` is +Inf.
fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if q.is_nan() || values.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let rank = q * (values.len() - 1) as f64;
    let lower = rank.floor() as usize;
    let weight = rank - rank.floor();
    // Two order statistics in O(n) rather than a sort: the lower one, then the least value
    // above it (itself when it is the last).
    let (_, &mut low, above) = values.select_nth_unstable_by(lower, f64::total_cmp);
    let high = above.iter().copied().min_by(f64::total_cmp).unwrap_or(low);
    low * (1.0 - weight) + high * weight
}

/// `absent_over_time`: 1 at each step where no series has a sample in the window, labelled
/// with the selector's equality matchers (a name matched twice is left out).
fn absent(agg: &RangeAggregation, series: Vec<Collected>, steps: &Steps) -> Vectors {
    let mut times: Vec<i64> = series
        .into_iter()
        .flat_map(|c| match c.samples {
            Samples::Times(t) => t,
            Samples::Values(v) => v.into_iter().map(|(ts, _)| ts).collect(),
            // One step: a non-empty count stands for a time at the window's end.
            Samples::Count(n) => {
                vec![steps.start_ns.saturating_sub(agg.offset_ns); n.min(1) as usize]
            }
        })
        .collect();
    times.sort_unstable();
    let equalities: Vec<(&str, &str)> = agg
        .log
        .matchers
        .iter()
        .filter(|m| m.op == MatchOp::Eq)
        .map(|m| (m.name.as_str(), m.value.as_str()))
        .collect();
    let labels = Labels::from_pairs(
        equalities
            .iter()
            .filter(|(name, _)| equalities.iter().filter(|(n, _)| n == name).count() == 1)
            .copied(),
    );
    let mut present = vec![false; steps.count];
    for_each_window(
        |i| times[i],
        times.len(),
        steps,
        agg,
        |step, _, _| {
            present[step] = true;
        },
    );
    let mut out = Vectors::empty(steps.count);
    out.labels.push(labels);
    for (step, seen) in present.into_iter().enumerate() {
        if !seen {
            out.steps[step].push((0, 1.0));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantile_interpolates_like_prometheus() {
        let v = vec![1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(0.5, v.clone()), 2.5);
        assert_eq!(quantile(0.0, v.clone()), 1.0);
        assert_eq!(quantile(1.0, v.clone()), 4.0);
        assert!((quantile(0.99, v.clone()) - 3.97).abs() < 1e-9);
        assert_eq!(quantile(-1.0, v.clone()), f64::NEG_INFINITY);
        assert_eq!(quantile(2.0, v), f64::INFINITY);
    }
}
