//! `histogram_quantile` over classic histograms (`le` buckets) and the `quantile` both it
//! and `quantile_over_time`/`quantile` use, as Prometheus 2.42 computes them.
//!
//! Buckets of one histogram are the series equal but for `le` (and the metric name). They
//! are sorted by upper bound; without a `+Inf` bucket the answer is NaN; buckets with the
//! same bound are merged; counts that decrease are raised to the running maximum (the
//! "monotonicity fix" for buckets scraped at slightly different times); then the quantile
//! is interpolated linearly within its bucket, the lowest bucket starting at 0 unless its
//! bound is at most 0. A rank in the `+Inf` bucket answers the second-highest bound.

use std::collections::HashMap;

use sightline_model::{Labels, METRIC_NAME_LABEL};

use crate::promql::eval::Elem;

const BUCKET_LABEL: &str = "le";

/// The φ-quantile of `values`, interpolating between the closest ranks; NaN when empty,
/// ±Inf for φ outside [0, 1].
pub(crate) fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Merge buckets with equal bounds.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => merged.push(b),
        }
    }
    let mut buckets = merged;
    let mut max = f64::NEG_INFINITY;
    for b in &mut buckets {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1].partition_point(|b| b.1 < rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let mut start = 0.0;
    let end = buckets[b].0;
    let mut count = buckets[b].1;
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// Go's `strconv.ParseFloat` for bucket bounds, as far as bounds use it.
fn parse_bound(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s
            .trim_start_matches('+')
            .parse()
            .ok()
            .filter(|_| !s.is_empty()),
    }
}

pub(super) fn histogram_quantile(q: f64, v: Vec<Elem>) -> Vec<Elem> {
    let mut order: Vec<Labels> = Vec::new();
    let mut groups: HashMap<Labels, Vec<(f64, f64)>> = HashMap::new();
    for e in v {
        let Some(bound) = e.labels.get(BUCKET_LABEL).and_then(parse_bound) else {
            continue;
        };
        let mut key = e.labels.clone();
        key.remove(BUCKET_LABEL);
        key.remove(METRIC_NAME_LABEL);
        groups
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push((bound, e.v));
    }
    order
        .into_iter()
        .filter_map(|labels| {
            let buckets = groups.remove(&labels)?;
            Some(Elem {
                v: bucket_quantile(q, buckets),
                labels,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let check = |q: f64, values: &[f64], want: f64| {
            let got = quantile(q, values.to_vec());
            assert!(
                got == want || (got.is_nan() && want.is_nan()),
                "quantile({q}, {values:?}) = {got}, want {want}"
            );
        };
        check(0.5, &[1.0, 2.0, 3.0, 4.0], 2.5);
        check(0.0, &[3.0, 1.0, 2.0], 1.0);
        check(1.0, &[3.0, 1.0, 2.0], 3.0);
        check(
            0.9,
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
            9.1,
        );
        check(-1.0, &[1.0], f64::NEG_INFINITY);
        check(2.0, &[1.0], f64::INFINITY);
        check(0.5, &[], f64::NAN);
        check(0.5, &[f64::NAN, 1.0, 2.0], 1.0);
    }

    #[test]
    fn bucket_quantiles_follow_prometheus() {
        let check = |q: f64, buckets: &[(f64, f64)], want: f64| {
            let got = bucket_quantile(q, buckets.to_vec());
            assert!(
                got == want || (got.is_nan() && want.is_nan()),
                "{q} {buckets:?}: {got}, want {want}"
            );
        };
        let inf = f64::INFINITY;
        check(0.5, &[(1.0, 10.0), (2.0, 20.0), (inf, 20.0)], 1.0);
        check(0.75, &[(1.0, 10.0), (2.0, 20.0), (inf, 20.0)], 1.5);
        check(0.99, &[(1.0, 10.0), (2.0, 20.0), (inf, 30.0)], 2.0);
        check(0.5, &[(1.0, 10.0), (2.0, 20.0)], f64::NAN);
        check(0.5, &[(inf, 10.0)], f64::NAN);
        check(0.5, &[(1.0, 0.0), (inf, 0.0)], f64::NAN);
        check(0.1, &[(-1.0, 10.0), (inf, 20.0)], -1.0);
        // A decreasing count is raised to the running maximum.
        check(
            0.5,
            &[(1.0, 10.0), (2.0, 8.0), (3.0, 20.0), (inf, 20.0)],
            1.0,
        );
        check(
            0.75,
            &[(1.0, 10.0), (2.0, 8.0), (3.0, 20.0), (inf, 20.0)],
            2.5,
        );
    }
}
