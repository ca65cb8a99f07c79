//! PromQL, Prometheus' query language: evaluation of the `promql-parser` AST over any
//! [`SeriesSource`], answering as Prometheus does.
//!
//! - [`parse`] parses (with `promql-parser`) and refuses what Prometheus 2.42 would refuse;
//! - [`evaluate`] answers an instant query (`start_ms == end_ms`) or a range query within
//!   [`PromLimits`]: it first finds every selector and fetches its series once for the
//!   whole query (one [`SeriesSource::select`] each, its range widened by lookback, range,
//!   offset, `@` and subqueries), then evaluates step by step in memory, checking the
//!   timeout between steps and counting loaded samples against `samples_max`;
//! - [`to_prometheus_json`] renders the `data` object of Prometheus' HTTP API, with values
//!   formatted by [`format_value`].
//!
//! Reference version: the compatibility tests compare answers with Debian's `prometheus`
//! package, which is Prometheus 2.42, so where 2.x and 3.x differ we follow 2.42 (the
//! expected values of `promql/testdata/*.test` were produced by a real 2.42):
//! - windows are closed at both ends: a range selector `x[5m]` at `t` reads `[t-5m, t]`, an
//!   instant selector the newest sample in `[t-lookback, t]` (3.x leaves the left end
//!   open);
//! - `holt_winters` (3.x renamed it `double_exponential_smoothing`); no `mad_over_time`,
//!   `sort_by_label`, `limitk`, `limit_ratio` or other post-2.42 functions, which are
//!   refused as Prometheus 2.42 refuses them ("unknown function with name");
//! - `sum`/`avg` aggregations add plainly in input order (`avg` as an incremental mean);
//!   `sum_over_time`, `avg_over_time`, `stddev_over_time`, `stdvar_over_time` and the
//!   regression of `deriv`/`predict_linear` use Kahan–Neumaier summation, as 2.42 does;
//! - `atan2` keeps the metric name (2.42 drops it only for `+ - * / % ^`);
//! - a range function whose outputs collide anywhere in a range query fails with "vector
//!   cannot contain metrics with the same labelset", as 2.42 checks its whole result;
//! - the default subquery step is the global evaluation interval, 1m unless
//!   [`PromLimits::subquery_step_ms`] says otherwise;
//! - in a range query, an `@` range argument of `predict_linear` slides with the step, as
//!   2.42 reads it (see `Evaluator::sliding_at`); every other `@` stays put.
//!
//! Floats are Go's: `^` is Go's `math.Pow` (not correctly rounded: `10^308` is
//! `1.0000000000000006e+308`), `exp`, logarithms, trigonometric and hyperbolic functions
//! are ports of Go's (its `exp` as Go runs it on CPUs with AVX2 and FMA),
//! date functions follow Go's `time` even where it wraps (`year(vector(NaN))`), and
//! [`format_value`] writes what Prometheus' JSON encoder writes (exponent notation below
//! 1e-6 and from 1e21; `count_values` labels never use it).
//!
//! Staleness: a sample whose value is the staleness marker ends its series; an instant
//! selector sees no value at `t` when the newest sample at or before `t` is a marker or
//! older than the lookback, and range windows skip markers.
//!
//! Known gaps: native histograms (`histogram_count`, `histogram_sum`, `histogram_fraction`
//! return nothing, as Prometheus does for float series); `samples_max` counts the samples a
//! query loads, where Prometheus counts the peak it holds during evaluation; query
//! statistics and warnings are not produced; `sort`/`sort_desc` order ties as Go does only
//! for up to 12 elements; `sin`/`cos`/`tan` of 2^29 or more and `log1p` (inside
//! `asinh`/`acosh`/`atanh`) come from the platform's libm. Where Prometheus itself is not
//! deterministic we are, by label order: in range queries 2.42 feeds aggregations in Go map
//! order, so a sum of three or more values can differ in its last bit from run to run. One
//! 2.42 bug is not reproduced: when a selector with `@` sits inside a subquery with `@` and
//! the query starts on the subquery's step grid, 2.42 answers nothing; we answer what `@`
//! means.
//!
//! Layout: `plan` (checks and fetch) → `eval` (+ `eval/binary`, `eval/aggregate`) →
//! `functions` (+ `functions/range`, `functions/histogram`); `gomath` holds the Go float
//! semantics everything shares; `value` the result types and JSON; `source` the storage
//! trait and [`MemorySeries`]. Tests: `promqltest` runs the `testdata/*.test` scripts
//! (Prometheus' `promqltest` format), `tests/` holds the table tests of the API.

mod error;
mod eval;
mod functions;
mod gomath;
mod plan;
mod source;
mod value;

#[cfg(test)]
mod promqltest;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Once, OnceLock};
use std::time::{Duration, Instant};

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Expr, Function};
use sightline_model::{Labels, Sample, TenantId};

pub use error::{PromError, SourceError};
pub use source::{MemorySeries, SeriesData, SeriesSource};
pub use value::{
    InstantSample, PromValue, RangeSeries, format_value, to_prometheus_json, write_prometheus_json,
};

use eval::{Evaluator, Value};
use plan::Times;

/// One query: an instant query when `start_ms == end_ms` (then `step_ms` is ignored),
/// otherwise a range query evaluated at `start_ms, start_ms + step_ms, …` up to `end_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromQuery {
    pub expr: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// 0 (with `start_ms == end_ms`) for an instant query.
    pub step_ms: i64,
}

/// Bounds and settings of one evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromLimits {
    /// Wall time a query may take (Prometheus' `--query.timeout`, 2m).
    pub timeout: Duration,
    /// Samples a query may load (Prometheus' `--query.max-samples`, 50M).
    pub samples_max: usize,
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`, 5m).
    pub lookback_ms: i64,
    /// Most steps of a range query (Prometheus' API allows 11,000).
    pub points_max: usize,
    /// Step of a subquery that names none (the global evaluation interval, 1m).
    pub subquery_step_ms: i64,
}

impl Default for PromLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            samples_max: 50_000_000,
            lookback_ms: 300_000,
            points_max: 11_000,
            subquery_step_ms: 60_000,
        }
    }
}

static REGISTER_FUNCTIONS: Once = Once::new();

/// Teaches the parser Prometheus 2.42 functions it no longer knows.
fn register_functions() {
    REGISTER_FUNCTIONS.call_once(|| {
        // Registration fails only for a name the parser already has, which would then parse.
        let _ = promql_parser::parser::register_extra_functions(vec![Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        )]);
    });
}

/// Parses `expr`, refusing syntax and functions Prometheus 2.42 does not have.
pub fn parse(expr: &str) -> Result<Expr, PromError> {
    register_functions();
    let parsed = promql_parser::parser::parse(expr).map_err(|e| {
        // The parser quotes names with single quotes and gives no position.
        match e
            .strip_prefix("unknown function with name '")
            .and_then(|rest| rest.strip_suffix('\''))
        {
            Some(name) => plan::unknown_function(expr, name),
            None => PromError::Parse(format!("parse error: {e}")),
        }
    })?;
    plan::check_supported(expr, &parsed)?;
    Ok(parsed)
}

/// Queries whose parse is kept, by text.
const PARSED_QUERIES_MAX: usize = 1024;

/// [`parse`], remembered by query text: dashboards and rules ask the same queries over and
/// over, and parsing (promql-parser's LR parser) was near a tenth of a small query's time.
/// Errors are not kept. Sharing one tree between queries is safe: evaluation reads it only.
fn parse_cached(expr: &str) -> Result<Arc<Expr>, PromError> {
    static PARSED: OnceLock<quick_cache::sync::Cache<String, Arc<Expr>>> = OnceLock::new();
    let cache = PARSED.get_or_init(|| quick_cache::sync::Cache::new(PARSED_QUERIES_MAX));
    if let Some(parsed) = cache.get(expr) {
        return Ok(parsed);
    }
    let parsed = Arc::new(parse(expr)?);
    cache.insert(expr.to_string(), parsed.clone());
    Ok(parsed)
}

/// The matchers of a series selector such as a `match[]` parameter (`up{job="a"}`).
pub fn parse_selector(text: &str) -> Result<Vec<sightline_model::LabelMatcher>, PromError> {
    match parse(text)? {
        Expr::VectorSelector(vs) => plan::selector_matchers(&vs),
        _ => Err(PromError::Parse(format!(
            "invalid parameter \"match[]\": {text:?} is not a series selector"
        ))),
    }
}

/// The matchers of every selector in a query, in the order they appear (for the exemplars
/// of the series a query reads).
pub fn query_selectors(text: &str) -> Result<Vec<Vec<sightline_model::LabelMatcher>>, PromError> {
    let expr = parse(text)?;
    let mut out = Vec::new();
    plan::visit_selectors(&expr, &mut |vs| {
        out.push(plan::selector_matchers(vs)?);
        Ok(())
    })?;
    Ok(out)
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
    }
}

/// Evaluates `q` for `tenant` over `src`.
pub fn evaluate(
    src: &dyn SeriesSource,
    tenant: &TenantId,
    q: &PromQuery,
    limits: &PromLimits,
) -> Result<PromValue, PromError> {
    let deadline = Instant::now() + limits.timeout;
    let expr = parse_cached(&q.expr)?;
    // A range query with start == end still answers a matrix, as Prometheus.
    let instant = q.step_ms == 0 && q.start_ms == q.end_ms;
    if !instant {
        if q.end_ms < q.start_ms {
            return Err(PromError::exec(
                "end timestamp must not be before start time",
            ));
        }
        if q.step_ms <= 0 {
            return Err(PromError::exec(
                "zero or negative query resolution step widths are not accepted. Try a \
                 positive integer",
            ));
        }
        let steps = (q.end_ms - q.start_ms) / q.step_ms;
        if usize::try_from(steps).map_or(true, |s| s > limits.points_max) {
            return Err(PromError::exec(format!(
                "exceeded maximum resolution of {} points per timeseries. Try decreasing the \
                 query resolution (?step=XX)",
                group_thousands(limits.points_max)
            )));
        }
        let t = expr.value_type();
        if t != ValueType::Vector && t != ValueType::Scalar {
            return Err(PromError::exec(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                type_name(t)
            )));
        }
    }
    let times = Times {
        start_ms: q.start_ms,
        end_ms: q.end_ms,
        step_ms: if instant { 0 } else { q.step_ms },
        lookback_ms: limits.lookback_ms,
        subquery_step_ms: limits.subquery_step_ms.max(1),
    };
    let fetched = plan::fetch(src, tenant, &expr, &times, limits.samples_max)?;
    let mut ev = Evaluator::new(&fetched, times, deadline);
    ev.check_deadline()?;
    if instant {
        return Ok(match ev.eval(&expr, q.start_ms)? {
            Value::Scalar(v) => PromValue::Scalar {
                t_ms: q.start_ms,
                v,
            },
            Value::String(s) => PromValue::String {
                t_ms: q.start_ms,
                s,
            },
            Value::Vector(v) => PromValue::Vector(
                v.into_iter()
                    .map(|e| InstantSample {
                        labels: e.labels,
                        t_ms: q.start_ms,
                        v: e.v,
                    })
                    .collect(),
            ),
            Value::Matrix(m) => {
                let mut series: Vec<RangeSeries> = m
                    .into_iter()
                    .map(|s| RangeSeries {
                        labels: s.labels,
                        points: s.points.into_vec(),
                    })
                    .collect();
                series.sort_by(|a, b| a.labels.cmp(&b.labels));
                PromValue::Matrix(series)
            }
        });
    }
    let mut series: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    let mut t = q.start_ms;
    while t <= q.end_ms {
        ev.check_deadline()?;
        match ev.eval(&expr, t)? {
            Value::Scalar(v) => series.entry(Labels::default()).or_default().push(Sample {
                timestamp_ms: t,
                value: v,
            }),
            Value::Vector(v) => {
                for e in v {
                    series.entry(e.labels).or_default().push(Sample {
                        timestamp_ms: t,
                        value: e.v,
                    });
                }
            }
            _ => return Err(PromError::exec("range query of a range vector or string")),
        }
        t += q.step_ms;
    }
    Ok(PromValue::Matrix(
        series
            .into_iter()
            .map(|(labels, points)| RangeSeries { labels, points })
            .collect(),
    ))
}

/// `11000` → `11,000`, as Prometheus prints the resolution limit.
fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
