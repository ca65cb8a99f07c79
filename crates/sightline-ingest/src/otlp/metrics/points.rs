//! One OTLP data point to its Prometheus series: numbers, histograms (explicit and
//! exponential, both as classic `_bucket{le}`/`_sum`/`_count` series) and summaries.
//!
//! A point converts whole or not at all: every function returns all of the point's series,
//! or the reason the point is rejected.
//!
//! Exponential histograms become classic buckets with `le` at each bucket's upper bound,
//! cumulative from the most negative bucket through the zero bucket (`le` = the zero
//! threshold) to the largest positive one, then `+Inf` = the point's count. A scale above
//! [`EXPONENTIAL_SCALE_MAX`], or more than [`EXPONENTIAL_BUCKETS_MAX`] buckets, is first
//! merged down to a coarser scale (as Prometheus downscales native histograms), so one point
//! never makes more than that many series and `le` values stay few and stable. A bound that
//! is not above the previous one folds its count into the previous bucket (whose bound is at
//! least as high); bounds that overflow to infinity fold into `+Inf`. A scale outside OTLP's
//! `-10..=20`, or more than [`HISTOGRAM_BOUNDS_MAX`] explicit bounds, rejects the point.

use opentelemetry_proto::tonic::metrics::v1::exemplar::Value as ExemplarValue;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::{
    DataPointFlags, Exemplar as OtlpExemplar, ExponentialHistogramDataPoint, HistogramDataPoint,
    NumberDataPoint, SummaryDataPoint,
};
use sightline_model::{Exemplar, METRIC_NAME_LABEL, Sample, SeriesSamples, stale_nan};

use super::naming::{attribute_labels, set_label};
use crate::error::RecordError;
use crate::metrics_common::{
    BUCKET_LABEL, EXEMPLAR_LABEL_CHARS_MAX, QUANTILE_LABEL, format_openmetrics_float, series_labels,
};

/// Finest exponential scale kept; finer scales are merged down to it (Prometheus' limit).
pub const EXPONENTIAL_SCALE_MAX: i32 = 8;

/// Coarsest exponential scale OTLP allows; merging stops there.
const EXPONENTIAL_SCALE_MIN: i32 = -10;

/// Most buckets (negative and positive) one exponential point becomes, besides the zero
/// and `+Inf` buckets.
pub const EXPONENTIAL_BUCKETS_MAX: usize = 160;

/// Most explicit bounds on one histogram point (each becomes a series).
pub const HISTOGRAM_BOUNDS_MAX: usize = 4096;

/// Finest exponential scale OTLP allows.
const EXPONENTIAL_SCALE_OTLP_MAX: i32 = 20;

/// What one point became.
pub(crate) struct PointSeries {
    pub series: Vec<SeriesSamples>,
    pub timestamp_ms: i64,
}

/// Builds the series of one point: its labels (attributes, then `base` over them), each
/// series a name, an optional extra label, and one sample.
struct Builder<'a> {
    labels: Vec<(String, String)>,
    timestamp_ms: i64,
    stale: bool,
    series: Vec<SeriesSamples>,
    name: &'a str,
}

impl<'a> Builder<'a> {
    fn new(
        name: &'a str,
        attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
        base: &[(String, String)],
        time_unix_nano: u64,
        flags: u32,
    ) -> Result<Self, RecordError> {
        let mut labels = attribute_labels(attributes);
        for (k, v) in base {
            set_label(&mut labels, k, v.clone());
        }
        Ok(Self {
            labels,
            timestamp_ms: timestamp_ms(time_unix_nano)?,
            stale: flags & DataPointFlags::NoRecordedValueMask as u32 != 0,
            series: Vec::new(),
            name,
        })
    }

    /// Adds series `{name}{suffix}` (with `extra` label) holding `value` and `exemplars`.
    fn push(
        &mut self,
        suffix: &str,
        extra: Option<(&str, String)>,
        value: f64,
        exemplars: Vec<Exemplar>,
    ) -> Result<(), RecordError> {
        let mut pairs = self.labels.clone();
        if let Some((name, value)) = extra {
            set_label(&mut pairs, name, value);
        }
        set_label(
            &mut pairs,
            METRIC_NAME_LABEL,
            format!("{}{suffix}", self.name),
        );
        let labels = series_labels(&mut pairs)?;
        self.series.push(SeriesSamples {
            labels,
            samples: vec![Sample {
                timestamp_ms: self.timestamp_ms,
                value: if self.stale { stale_nan() } else { value },
            }],
            exemplars,
        });
        Ok(())
    }

    fn done(self) -> PointSeries {
        PointSeries {
            series: self.series,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// A gauge's or sum's point; `exemplars` only for monotonic sums (the spec drops the rest).
pub(crate) fn number_point(
    p: &NumberDataPoint,
    name: &str,
    base: &[(String, String)],
    keep_exemplars: bool,
) -> Result<PointSeries, RecordError> {
    let mut builder = Builder::new(name, &p.attributes, base, p.time_unix_nano, p.flags)?;
    let value = match p.value {
        Some(NumberValue::AsDouble(v)) => v,
        Some(NumberValue::AsInt(v)) => v as f64,
        None if builder.stale => 0.0,
        None => return Err(RecordError::Invalid("data point has no value".into())),
    };
    let exemplars = if keep_exemplars {
        p.exemplars
            .iter()
            .filter_map(|e| exemplar(e, builder.timestamp_ms))
            .map(|(_, e)| e)
            .collect()
    } else {
        Vec::new()
    };
    builder.push("", None, value, exemplars)?;
    Ok(builder.done())
}

/// An explicit-bucket histogram's point.
pub(crate) fn histogram_point(
    p: &HistogramDataPoint,
    name: &str,
    base: &[(String, String)],
) -> Result<PointSeries, RecordError> {
    let builder = Builder::new(name, &p.attributes, base, p.time_unix_nano, p.flags)?;
    if p.explicit_bounds.len() > HISTOGRAM_BOUNDS_MAX {
        return Err(RecordError::Invalid(format!(
            "{} explicit bounds, more than the limit of {HISTOGRAM_BOUNDS_MAX}",
            p.explicit_bounds.len()
        )));
    }
    if !p.bucket_counts.is_empty() && p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
        return Err(RecordError::Invalid(format!(
            "{} bucket counts for {} explicit bounds; expected {}",
            p.bucket_counts.len(),
            p.explicit_bounds.len(),
            p.explicit_bounds.len() + 1
        )));
    }
    if p.explicit_bounds.iter().any(|b| b.is_nan())
        || p.explicit_bounds.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(RecordError::Invalid(
            "explicit bounds are not strictly increasing".into(),
        ));
    }
    let mut buckets = Vec::with_capacity(p.explicit_bounds.len());
    let mut cumulative = 0u64;
    for (bound, count) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
        cumulative = cumulative.saturating_add(*count);
        if bound.is_finite() {
            buckets.push((*bound, cumulative as f64));
        }
    }
    emit_histogram(builder, buckets, p.count, p.sum, &p.exemplars)
}

/// An exponential histogram's point, as classic buckets.
pub(crate) fn exponential_point(
    p: &ExponentialHistogramDataPoint,
    name: &str,
    base: &[(String, String)],
) -> Result<PointSeries, RecordError> {
    let builder = Builder::new(name, &p.attributes, base, p.time_unix_nano, p.flags)?;
    if !(EXPONENTIAL_SCALE_MIN..=EXPONENTIAL_SCALE_OTLP_MAX).contains(&p.scale) {
        return Err(RecordError::Invalid(format!(
            "scale {} is outside {EXPONENTIAL_SCALE_MIN}..={EXPONENTIAL_SCALE_OTLP_MAX}",
            p.scale
        )));
    }
    let dense = |b: &Option<_>| match b {
        Some(
            opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets {
                offset,
                bucket_counts,
            },
        ) => (i64::from(*offset), bucket_counts.clone()),
        None => (0, Vec::new()),
    };
    let mut positive = dense(&p.positive);
    let mut negative = dense(&p.negative);
    let mut scale = p.scale;
    while scale > EXPONENTIAL_SCALE_MIN
        && (scale > EXPONENTIAL_SCALE_MAX
            || positive.1.len() + negative.1.len() > EXPONENTIAL_BUCKETS_MAX)
    {
        positive = downscale(positive);
        negative = downscale(negative);
        scale -= 1;
    }
    let zero_threshold = if p.zero_threshold > 0.0 {
        p.zero_threshold
    } else {
        0.0
    };
    let mut bounds: Vec<(f64, u64)> = Vec::with_capacity(positive.1.len() + negative.1.len() + 1);
    let (offset, counts) = &negative;
    for (j, count) in counts.iter().enumerate().rev() {
        bounds.push((-bucket_bound(offset + j as i64, scale), *count));
    }
    bounds.push((zero_threshold, p.zero_count));
    let (offset, counts) = &positive;
    for (j, count) in counts.iter().enumerate() {
        bounds.push((bucket_bound(offset + j as i64 + 1, scale), *count));
    }
    let mut buckets = Vec::with_capacity(bounds.len());
    let mut cumulative = 0u64;
    for (bound, count) in bounds {
        cumulative = cumulative.saturating_add(count);
        if !bound.is_finite() {
            break;
        }
        match buckets.last_mut() {
            Some((last, total)) if bound <= *last => *total = cumulative as f64,
            _ => buckets.push((bound, cumulative as f64)),
        }
    }
    emit_histogram(builder, buckets, p.count, p.sum, &p.exemplars)
}

/// A summary's point: quantile series, `_sum`, `_count`.
pub(crate) fn summary_point(
    p: &SummaryDataPoint,
    name: &str,
    base: &[(String, String)],
) -> Result<PointSeries, RecordError> {
    let mut builder = Builder::new(name, &p.attributes, base, p.time_unix_nano, p.flags)?;
    for q in &p.quantile_values {
        let label = (QUANTILE_LABEL, format_openmetrics_float(q.quantile));
        builder.push("", Some(label), q.value, Vec::new())?;
    }
    builder.push("_sum", None, p.sum, Vec::new())?;
    builder.push("_count", None, p.count as f64, Vec::new())?;
    Ok(builder.done())
}

/// The `_bucket` (each finite bound, then `+Inf`), `_sum` (when set) and `_count` series,
/// each exemplar on the first bucket whose bound is at least its value.
fn emit_histogram(
    mut builder: Builder<'_>,
    buckets: Vec<(f64, f64)>,
    count: u64,
    sum: Option<f64>,
    exemplars: &[OtlpExemplar],
) -> Result<PointSeries, RecordError> {
    let mut by_bucket: Vec<Vec<Exemplar>> = vec![Vec::new(); buckets.len() + 1];
    for (value, e) in exemplars
        .iter()
        .filter_map(|e| exemplar(e, builder.timestamp_ms))
    {
        let i = buckets
            .iter()
            .position(|(bound, _)| value <= *bound)
            .unwrap_or(buckets.len());
        by_bucket[i].push(e);
    }
    let mut by_bucket = by_bucket.into_iter();
    for (bound, cumulative) in &buckets {
        let label = (BUCKET_LABEL, format_openmetrics_float(*bound));
        let exemplars = by_bucket.next().unwrap_or_default();
        builder.push("_bucket", Some(label), *cumulative, exemplars)?;
    }
    let label = (BUCKET_LABEL, format_openmetrics_float(f64::INFINITY));
    let exemplars = by_bucket.next().unwrap_or_default();
    builder.push("_bucket", Some(label), count as f64, exemplars)?;
    if let Some(sum) = sum {
        builder.push("_sum", None, sum, Vec::new())?;
    }
    builder.push("_count", None, count as f64, Vec::new())?;
    Ok(builder.done())
}

/// Merges pairs of adjacent buckets: scale s to s - 1.
fn downscale((offset, counts): (i64, Vec<u64>)) -> (i64, Vec<u64>) {
    if counts.is_empty() {
        return (offset >> 1, counts);
    }
    let new_offset = offset >> 1;
    let last = (offset + counts.len() as i64 - 1) >> 1;
    let mut merged = vec![0u64; (last - new_offset + 1) as usize];
    for (j, count) in counts.iter().enumerate() {
        let index = ((offset + j as i64) >> 1) - new_offset;
        merged[index as usize] = merged[index as usize].saturating_add(*count);
    }
    (new_offset, merged)
}

/// `base^index` at `scale`, where `base = 2^(2^-scale)`: the lower bound of positive
/// bucket `index`, the upper bound of bucket `index - 1`.
fn bucket_bound(index: i64, scale: i32) -> f64 {
    (index as f64 * (-f64::from(scale)).exp2()).exp2()
}

/// Milliseconds of a point's `time_unix_nano`, which must be set.
fn timestamp_ms(time_unix_nano: u64) -> Result<i64, RecordError> {
    if time_unix_nano == 0 {
        return Err(RecordError::Invalid(
            "data point has no time_unix_nano".into(),
        ));
    }
    // u64::MAX / 1e6 fits an i64.
    Ok((time_unix_nano / 1_000_000) as i64)
}

/// An exemplar with its value: `trace_id` and `span_id` as lowercase hex, then its filtered
/// attributes while the labels fit [`EXEMPLAR_LABEL_CHARS_MAX`]. `None` without a value.
fn exemplar(e: &OtlpExemplar, point_timestamp_ms: i64) -> Option<(f64, Exemplar)> {
    let value = match e.value? {
        ExemplarValue::AsDouble(v) => v,
        ExemplarValue::AsInt(v) => v as f64,
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if e.trace_id.iter().any(|b| *b != 0) {
        pairs.push(("trace_id".into(), hex::encode(&e.trace_id)));
    }
    if e.span_id.iter().any(|b| *b != 0) {
        pairs.push(("span_id".into(), hex::encode(&e.span_id)));
    }
    let mut chars: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    for (name, text) in attribute_labels(&e.filtered_attributes) {
        let more = name.len() + text.chars().count();
        if chars + more > EXEMPLAR_LABEL_CHARS_MAX || pairs.iter().any(|(n, _)| *n == name) {
            continue;
        }
        chars += more;
        pairs.push((name, text));
    }
    let timestamp_ms = match e.time_unix_nano {
        0 => point_timestamp_ms,
        ns => (ns / 1_000_000) as i64,
    };
    Some((
        value,
        Exemplar {
            labels: sightline_model::Labels::from_pairs(pairs),
            value,
            timestamp_ms,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downscales_by_merging_pairs() {
        assert_eq!(downscale((0, vec![1, 2, 3, 4, 5])), (0, vec![3, 7, 5]));
        assert_eq!(downscale((1, vec![1, 2, 3])), (0, vec![1, 5]));
        assert_eq!(downscale((-3, vec![1, 2, 3, 4])), (-2, vec![1, 5, 4]));
        assert_eq!(downscale((-1, vec![])), (-1, vec![]));
    }

    #[test]
    fn bucket_bounds() {
        assert_eq!(bucket_bound(0, 0), 1.0);
        assert_eq!(bucket_bound(3, 0), 8.0);
        assert_eq!(bucket_bound(-2, 0), 0.25);
        assert_eq!(bucket_bound(1, -1), 4.0);
        assert!((bucket_bound(1, 1) - std::f64::consts::SQRT_2).abs() < 1e-15);
        assert_eq!(bucket_bound(2000, 0), f64::INFINITY);
    }
}
