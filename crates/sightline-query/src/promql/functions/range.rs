//! Functions over range vectors: `rate`, `increase`, `delta` (Prometheus' extrapolation),
//! `irate`, `idelta`, `resets`, `changes`, `deriv`, `predict_linear`, `holt_winters` and
//! the `*_over_time` family.
//!
//! Each is applied to every series that has at least one point in its window; all but
//! `last_over_time` drop the metric name. Numerics are Prometheus 2.42's, in the same
//! order: `sum_over_time`, `avg_over_time` (incremental mean), `stddev_over_time`,
//! `stdvar_over_time` and the linear regression of `deriv`/`predict_linear` use
//! Kahan–Neumaier compensated sums; `rate` and friends extrapolate towards the window edges
//! by at most half a sample interval (or the whole gap when under 1.1 intervals), never
//! below a counter's zero point.

use promql_parser::parser::{Call, Expr, SubqueryExpr};
use sightline_model::{Labels, Sample};

use super::absent_labels;
use super::histogram::quantile;
use crate::promql::error::PromError;
use crate::promql::eval::{Elem, Evaluator, Value, unwrap_parens};
use crate::promql::gomath::kahan_sum_inc;
use crate::promql::plan::{at_ms, duration_ms, node_key, offset_ms};

/// A range function, named once per query rather than matched by name at every window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeFn {
    Rate,
    Irate,
    Increase,
    Delta,
    Idelta,
    Resets,
    Changes,
    Deriv,
    PredictLinear,
    HoltWinters,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    QuantileOverTime,
    StddevOverTime,
    StdvarOverTime,
    LastOverTime,
    PresentOverTime,
    AbsentOverTime,
}

impl RangeFn {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "rate" => Self::Rate,
            "irate" => Self::Irate,
            "increase" => Self::Increase,
            "delta" => Self::Delta,
            "idelta" => Self::Idelta,
            "resets" => Self::Resets,
            "changes" => Self::Changes,
            "deriv" => Self::Deriv,
            "predict_linear" => Self::PredictLinear,
            "holt_winters" => Self::HoltWinters,
            "avg_over_time" => Self::AvgOverTime,
            "min_over_time" => Self::MinOverTime,
            "max_over_time" => Self::MaxOverTime,
            "sum_over_time" => Self::SumOverTime,
            "count_over_time" => Self::CountOverTime,
            "quantile_over_time" => Self::QuantileOverTime,
            "stddev_over_time" => Self::StddevOverTime,
            "stdvar_over_time" => Self::StdvarOverTime,
            "last_over_time" => Self::LastOverTime,
            "present_over_time" => Self::PresentOverTime,
            "absent_over_time" => Self::AbsentOverTime,
            _ => return None,
        })
    }
}

/// The range function `name`, or the parse error Prometheus gives for an unknown one.
pub(crate) fn range_fn(name: &str) -> Result<RangeFn, PromError> {
    RangeFn::from_name(name).ok_or_else(|| {
        PromError::Parse(format!(
            "parse error: unknown function with name \"{name}\""
        ))
    })
}

pub(crate) fn is_range_function(name: &str) -> bool {
    RangeFn::from_name(name).is_some()
}

/// Where a range argument's window ends (its `@` time or `t`, minus offset) and its length.
fn window_of(ev: &Evaluator<'_>, arg: &Expr, t: i64) -> (i64, i64) {
    match unwrap_parens(arg) {
        Expr::MatrixSelector(ms) => (
            at_ms(&ms.vs.at, &ev.times).unwrap_or(t) - offset_ms(&ms.vs.offset),
            duration_ms(&ms.range),
        ),
        Expr::Subquery(sq) => (
            at_ms(&sq.at, &ev.times).unwrap_or(t) - offset_ms(&sq.offset),
            duration_ms(&sq.range),
        ),
        _ => (t, 0),
    }
}

/// The node of a range argument with an `@` modifier, whose time 2.42 slides in
/// `predict_linear` (see [`Evaluator::sliding_at`]).
fn sliding_node(arg: &Expr) -> Option<usize> {
    match unwrap_parens(arg) {
        Expr::MatrixSelector(ms) if ms.vs.at.is_some() => Some(node_key(&ms.vs)),
        Expr::Subquery(sq) if sq.at.is_some() => Some(sq as *const SubqueryExpr as usize),
        _ => None,
    }
}

pub(super) fn call(ev: &mut Evaluator<'_>, c: &Call, t: i64) -> Result<Value, PromError> {
    let args = &c.args.args;
    let name = c.func.name;
    let matrix_index = usize::from(name == "quantile_over_time");
    let matrix_arg = &args[matrix_index];
    let mut params = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i != matrix_index {
            params.push(ev.eval_scalar(a, t)?);
        }
    }
    if let Some(out) = ev.rollup_step(c, &params, t)? {
        return Ok(Value::Vector(out));
    }
    let (window_end, range_ms) = window_of(ev, matrix_arg, t);
    let matrix = match (name, sliding_node(matrix_arg)) {
        ("predict_linear", Some(node)) => {
            ev.sliding_at(node, t, |ev| ev.eval_matrix(matrix_arg, t))?
        }
        _ => ev.eval_matrix(matrix_arg, t)?,
    };
    if name == "absent_over_time" {
        let out = if matrix.is_empty() {
            vec![Elem {
                labels: absent_labels(unwrap_parens(matrix_arg)),
                v: 1.0,
            }]
        } else {
            Vec::new()
        };
        return Ok(Value::Vector(out));
    }
    let node = c as *const Call as usize;
    let f = range_fn(name)?;
    let mut out = Vec::with_capacity(matrix.len());
    for series in matrix {
        let Some(v) = apply(f, &series.points, window_end, range_ms, t, &params)? else {
            continue;
        };
        let labels: Labels = if name == "last_over_time" {
            series.labels.clone()
        } else {
            series.without_name()
        };
        if !series.distinct_without_name {
            ev.note_owner(node, &labels, &series.labels)?;
        }
        out.push(Elem { labels, v });
    }
    Ok(Value::Vector(out))
}

/// Range function `name` over one window's `points` (non-empty, ascending, no staleness
/// markers), the window ending at `window_end` and `range_ms` long, evaluated at `t` with
/// its scalar `params`; `None` when the function has no value for these points.
pub(crate) fn apply(
    f: RangeFn,
    points: &[Sample],
    window_end: i64,
    range_ms: i64,
    t: i64,
    params: &[f64],
) -> Result<Option<f64>, PromError> {
    Ok(match f {
        RangeFn::Rate => extrapolated_rate(points, window_end, range_ms, true, true),
        RangeFn::Increase => extrapolated_rate(points, window_end, range_ms, true, false),
        RangeFn::Delta => extrapolated_rate(points, window_end, range_ms, false, false),
        RangeFn::Irate => instant_value(points, true),
        RangeFn::Idelta => instant_value(points, false),
        RangeFn::Resets => Some(
            points
                .windows(2)
                .filter(|w| w[1].value < w[0].value)
                .count() as f64,
        ),
        RangeFn::Changes => Some(
            points
                .windows(2)
                .filter(|w| {
                    w[1].value != w[0].value && !(w[1].value.is_nan() && w[0].value.is_nan())
                })
                .count() as f64,
        ),
        RangeFn::Deriv => {
            (points.len() >= 2).then(|| linear_regression(points, points[0].timestamp_ms).0)
        }
        RangeFn::PredictLinear => (points.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(points, t);
            intercept + slope * params[0]
        }),
        RangeFn::HoltWinters => holt_winters(points, params[0], params[1])?,
        RangeFn::AvgOverTime => Some(avg_over_time(points)),
        RangeFn::MinOverTime => Some(points.iter().fold(points[0].value, |m, p| {
            if p.value < m || m.is_nan() {
                p.value
            } else {
                m
            }
        })),
        RangeFn::MaxOverTime => Some(points.iter().fold(points[0].value, |m, p| {
            if p.value > m || m.is_nan() {
                p.value
            } else {
                m
            }
        })),
        RangeFn::SumOverTime => Some(sum_over_time(points)),
        RangeFn::CountOverTime => Some(points.len() as f64),
        RangeFn::QuantileOverTime => Some(quantile(
            params[0],
            points.iter().map(|p| p.value).collect(),
        )),
        RangeFn::StddevOverTime => Some(stdvar_over_time(points).sqrt()),
        RangeFn::StdvarOverTime => Some(stdvar_over_time(points)),
        RangeFn::LastOverTime => points.last().map(|p| p.value),
        RangeFn::PresentOverTime => Some(1.0),
        // Answered by `call` before any window is read.
        RangeFn::AbsentOverTime => {
            return Err(PromError::exec("absent_over_time has no per-window value"));
        }
    })
}

/// Prometheus' `extrapolatedRate` for `rate`, `increase` and `delta` over the window
/// `[window_end - range_ms, window_end]`.
fn extrapolated_rate(
    points: &[Sample],
    window_end: i64,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let mut result = last.value - first.value;
    // Most windows hold no reset: a pass without branches or a running sum tells, and
    // only a window with one pays for the ordered sum Prometheus does.
    if is_counter && has_decrease(points) {
        let mut prev = first.value;
        for p in &points[1..] {
            if p.value < prev {
                result += prev;
            }
            prev = p.value;
        }
    }
    let range_start = window_end - range_ms;
    let mut duration_to_start = (first.timestamp_ms - range_start) as f64 / 1000.0;
    let duration_to_end = (window_end - last.timestamp_ms) as f64 / 1000.0;
    let sampled_interval = (last.timestamp_ms - first.timestamp_ms) as f64 / 1000.0;
    let average_between = sampled_interval / (points.len() - 1) as f64;
    if is_counter && result > 0.0 && first.value >= 0.0 {
        let duration_to_zero = sampled_interval * (first.value / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = average_between * 1.1;
    let mut extrapolate_to = sampled_interval;
    extrapolate_to += if duration_to_start < threshold {
        duration_to_start
    } else {
        average_between / 2.0
    };
    extrapolate_to += if duration_to_end < threshold {
        duration_to_end
    } else {
        average_between / 2.0
    };
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// Whether some point's value is below the one before it, without branching on each.
fn has_decrease(points: &[Sample]) -> bool {
    points
        .windows(2)
        .fold(false, |any, w| any | (w[1].value < w[0].value))
}

/// `irate` and `idelta`: from the last two points only.
fn instant_value(points: &[Sample], is_rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (prev, last) = (points[points.len() - 2], points[points.len() - 1]);
    let mut v = if is_rate && last.value < prev.value {
        last.value
    } else {
        last.value - prev.value
    };
    let interval = last.timestamp_ms - prev.timestamp_ms;
    if interval == 0 {
        return None;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares slope and intercept (at `intercept_ms`), x in seconds.
fn linear_regression(points: &[Sample], intercept_ms: i64) -> (f64, f64) {
    let init_y = points[0].value;
    let mut const_y = true;
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    for (i, p) in points.iter().enumerate() {
        if const_y && i > 0 && p.value != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.timestamp_ms - intercept_ms) as f64 / 1e3;
        (sum_x, c_x) = kahan_sum_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_sum_inc(p.value, sum_y, c_y);
        (sum_xy, c_xy) = kahan_sum_inc(x * p.value, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_sum_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

fn holt_winters(points: &[Sample], sf: f64, tf: f64) -> Result<Option<f64>, PromError> {
    if sf <= 0.0 || sf >= 1.0 {
        return Err(PromError::exec(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
        )));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(PromError::exec(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
        )));
    }
    if points.len() < 2 {
        return Ok(None);
    }
    let (mut s0, mut s1) = (0.0, points[0].value);
    let mut b = points[1].value - points[0].value;
    for (i, p) in points.iter().enumerate().skip(1) {
        let x = sf * p.value;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Ok(Some(s1))
}

fn sum_over_time(points: &[Sample]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for p in points {
        (sum, c) = kahan_sum_inc(p.value, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

fn avg_over_time(points: &[Sample]) -> f64 {
    let mut mean = MeanState::default();
    for p in points {
        mean.add(p.value);
    }
    mean.value()
}

/// `avg_over_time`'s running state: Prometheus 2.42's incremental mean, Kahan-compensated.
#[derive(Clone, Copy, Default)]
struct MeanState {
    mean: f64,
    count: f64,
    c: f64,
}

impl MeanState {
    #[inline(always)]
    fn add(&mut self, v: f64) {
        self.count += 1.0;
        if self.mean.is_infinite() {
            if v.is_infinite() && (self.mean > 0.0) == (v > 0.0) {
                return;
            }
            if !v.is_infinite() && !v.is_nan() {
                return;
            }
        }
        (self.mean, self.c) =
            kahan_sum_inc(v / self.count - self.mean / self.count, self.mean, self.c);
    }

    fn value(&self) -> f64 {
        if self.mean.is_infinite() {
            self.mean
        } else {
            self.mean + self.c
        }
    }
}

/// Windows `avg_over_time` takes together: each sample's update waits on the one before
/// (two divisions and a compensated sum), so one window at a time leaves the CPU idle for
/// most of each update; four independent windows fill that time.
const MEAN_LANES: usize = 4;

/// [`MeanState`]s of [`MEAN_LANES`] windows updated together: each lane does exactly the
/// operations `MeanState::add` does, but both arms of each choice are computed and one is
/// selected, without a branch, so the lanes' divisions issue as packed instructions.
#[derive(Clone, Copy, Default)]
struct MeanLanes {
    mean: [f64; MEAN_LANES],
    count: [f64; MEAN_LANES],
    c: [f64; MEAN_LANES],
}

impl MeanLanes {
    #[inline(always)]
    fn add(&mut self, v: [f64; MEAN_LANES]) {
        let lanes = self
            .mean
            .iter_mut()
            .zip(&mut self.count)
            .zip(&mut self.c)
            .zip(v);
        for (((mean_l, count_l), c_l), x) in lanes {
            let (mean, c) = (*mean_l, *c_l);
            let count = *count_l + 1.0;
            let inc = x / count - mean / count;
            // `kahan_sum_inc(inc, mean, c)`, both arms.
            let t = mean + inc;
            let c_big = c + ((mean - t) + inc);
            let c_small = c + ((inc - t) + mean);
            let c_new = if mean.abs() >= inc.abs() {
                c_big
            } else {
                c_small
            };
            // `MeanState::add`'s early returns: an infinite mean stays unless `x` is NaN or
            // the other infinity.
            let skip = mean.is_infinite()
                & ((x.is_infinite() & ((mean > 0.0) == (x > 0.0)))
                    | (!x.is_infinite() & !x.is_nan()));
            *count_l = count;
            *mean_l = if skip { mean } else { t };
            *c_l = if skip { c } else { c_new };
        }
    }

    fn lane(&self, l: usize) -> MeanState {
        MeanState {
            mean: self.mean[l],
            count: self.count[l],
            c: self.c[l],
        }
    }
}

/// `avg_over_time` of each window, into `out` (cleared first): the same value, bit for
/// bit, as one at a time.
pub(crate) fn avg_over_time_each(windows: &[&[Sample]], out: &mut Vec<f64>) {
    out.clear();
    for lanes in windows.chunks(MEAN_LANES) {
        let mut together = MeanLanes::default();
        let (shared, from) = match lanes {
            &[a, b, c, d] => {
                let n = a.len().min(b.len()).min(c.len()).min(d.len());
                for j in 0..n {
                    together.add([a[j].value, b[j].value, c[j].value, d[j].value]);
                }
                (true, n)
            }
            _ => (false, 0),
        };
        for (l, w) in lanes.iter().enumerate() {
            let mut st = if shared {
                together.lane(l)
            } else {
                MeanState::default()
            };
            for p in &w[from..] {
                st.add(p.value);
            }
            out.push(st.value());
        }
    }
}

fn stdvar_over_time(points: &[Sample]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in points {
        count += 1.0;
        let delta = p.value - (mean + c_mean);
        (mean, c_mean) = kahan_sum_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_sum_inc(delta * (p.value - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => -1e6..1e6f64,
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(f64::NAN),
            1 => Just(f64::MAX),
        ]
    }

    proptest! {
        #[test]
        fn windows_taken_together_average_as_one_at_a_time(
            windows in proptest::collection::vec(proptest::collection::vec(value(), 1..40), 0..11)
        ) {
            let samples: Vec<Vec<Sample>> = windows
                .iter()
                .map(|w| {
                    w.iter()
                        .enumerate()
                        .map(|(i, &value)| Sample { timestamp_ms: i as i64, value })
                        .collect()
                })
                .collect();
            let refs: Vec<&[Sample]> = samples.iter().map(Vec::as_slice).collect();
            let mut got = Vec::new();
            avg_over_time_each(&refs, &mut got);
            let want: Vec<u64> = refs.iter().map(|w| avg_over_time(w).to_bits()).collect();
            let got: Vec<u64> = got.iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(got, want);
        }
    }
}
