//! Evaluating a parsed query against a [`LogSource`].
//!
//! Log queries scan `[start, end)` once and keep at most `limit` entries in a bounded heap
//! (the newest for `backward`, the oldest for `forward`), so memory is O(limit) however many
//! lines match. Metric queries evaluate at steps `start, start+step, …, end` (one step for an
//! instant query); each range aggregation scans its source once for all steps
//! (`eval/range.rs`), and the operators above it work step by step on sparse vectors
//! (`eval/vector.rs`, `eval/binary.rs`).
//!
//! Invariants: every entry goes through the full pipeline whatever hints the source used; the
//! limits in [`QueryLimits`] are checked while data is collected, not after.

mod binary;
mod range;
mod vector;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::ops::ControlFlow;

use sightline_model::{Labels, TenantId};

use super::ast::{Expr, LogExpr, MetricExpr, VectorOp};
use super::error::QueryError;
use super::hints::log_query_hints;
use super::parser::parse;
use super::pipeline::{EntryState, Pipeline};
use super::source::{LogSelection, LogSource};
use super::value::{Point, QueryResult, QueryStats, QueryValue, Sample, StreamEntry, StreamResult};
use vector::Vectors;

/// Order of entries in a log query result, and which end of the range `limit` keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first; keeps the oldest `limit` entries.
    Forward,
    /// Newest first; keeps the newest `limit` entries (Loki's default).
    #[default]
    Backward,
}

/// When a query is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryTime {
    /// One evaluation at `time_ns`.
    Instant { time_ns: i64 },
    /// A log query over `[start_ns, end_ns)`, or a metric query at every step from `start_ns`
    /// to `end_ns` inclusive.
    Range {
        start_ns: i64,
        end_ns: i64,
        step_ns: i64,
    },
}

/// Everything about a query but its text.
#[derive(Clone, Debug)]
pub struct QueryParams {
    pub tenant: TenantId,
    pub time: QueryTime,
    /// Most entries a log query returns.
    pub limit: u32,
    pub direction: Direction,
}

/// Entries returned when the caller names no limit, as in Loki.
pub const DEFAULT_LIMIT: u32 = 100;

impl QueryParams {
    pub fn instant(tenant: TenantId, time_ns: i64) -> Self {
        Self {
            tenant,
            time: QueryTime::Instant { time_ns },
            limit: DEFAULT_LIMIT,
            direction: Direction::Backward,
        }
    }

    pub fn range(tenant: TenantId, start_ns: i64, end_ns: i64, step_ns: i64) -> Self {
        Self {
            tenant,
            time: QueryTime::Range {
                start_ns,
                end_ns,
                step_ns,
            },
            limit: DEFAULT_LIMIT,
            direction: Direction::Backward,
        }
    }

    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    pub fn with_direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }
}

/// Bounds on one query's cost; exceeding one is an error, never a silently partial answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    /// Most series in a metric query's result.
    pub max_series: usize,
    /// Most steps of a range query (Prometheus and Loki use 11 000).
    pub max_points_per_series: usize,
    /// Most samples (timestamps or values) a query holds in memory at once.
    pub max_samples: usize,
    /// Largest `limit` a log query may ask for.
    pub max_entries: u32,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_series: 10_000,
            max_points_per_series: 11_000,
            max_samples: 50_000_000,
            max_entries: 5_000,
        }
    }
}

/// Evaluates queries against one source.
pub struct Evaluator<'s> {
    source: &'s dyn LogSource,
    limits: QueryLimits,
}

impl<'s> Evaluator<'s> {
    pub fn new(source: &'s dyn LogSource) -> Self {
        Self {
            source,
            limits: QueryLimits::default(),
        }
    }

    pub fn with_limits(mut self, limits: QueryLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Parses and evaluates `query`.
    pub fn query(&self, query: &str, params: &QueryParams) -> Result<QueryResult, QueryError> {
        self.evaluate(&parse(query)?, params)
    }

    /// Evaluates a parsed query.
    pub fn evaluate(&self, expr: &Expr, params: &QueryParams) -> Result<QueryResult, QueryError> {
        let mut run = Run {
            source: self.source,
            tenant: &params.tenant,
            limits: &self.limits,
            stats: QueryStats::default(),
            samples_held: 0,
        };
        let value = match expr {
            Expr::Log(log) => {
                let QueryTime::Range {
                    start_ns, end_ns, ..
                } = params.time
                else {
                    return Err(QueryError::Invalid {
                        reason: "log queries are not supported as an instant query type, \
                                 please change your query to a range query type"
                            .to_string(),
                    });
                };
                if params.limit > self.limits.max_entries {
                    return Err(QueryError::TooManyEntries {
                        requested: params.limit,
                        limit: self.limits.max_entries,
                    });
                }
                let streams =
                    run.log_query(log, start_ns, end_ns, params.limit, params.direction)?;
                QueryValue::Streams(streams)
            }
            Expr::Metric(metric) => {
                let steps = Steps::new(params.time, self.limits.max_points_per_series)?;
                let value = run.metric(metric, &steps, &[])?;
                to_query_value(
                    value,
                    &steps,
                    params.time,
                    sorted_by_value(metric),
                    &self.limits,
                )?
            }
        };
        Ok(QueryResult {
            value,
            stats: run.stats,
        })
    }
}

/// Evaluates `expr` with default limits.
pub fn evaluate(
    source: &dyn LogSource,
    expr: &Expr,
    params: &QueryParams,
) -> Result<QueryResult, QueryError> {
    Evaluator::new(source).evaluate(expr, params)
}

/// The evaluation times of a metric query: `start + i * step` for `i < count`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Steps {
    pub start_ns: i64,
    pub step_ns: i64,
    pub count: usize,
}

impl Steps {
    fn new(time: QueryTime, max_points: usize) -> Result<Self, QueryError> {
        match time {
            QueryTime::Instant { time_ns } => Ok(Self {
                start_ns: time_ns,
                step_ns: 1,
                count: 1,
            }),
            QueryTime::Range {
                start_ns,
                end_ns,
                step_ns,
            } => {
                let invalid = |reason: &str| QueryError::Invalid {
                    reason: reason.to_string(),
                };
                if step_ns <= 0 {
                    return Err(invalid(
                        "zero or negative query resolution step widths are not accepted; try a positive integer",
                    ));
                }
                if end_ns < start_ns {
                    return Err(invalid("end timestamp must not be before start time"));
                }
                let count = (i128::from(end_ns) - i128::from(start_ns)) / i128::from(step_ns) + 1;
                if count > max_points as i128 {
                    return Err(QueryError::TooManyPoints { limit: max_points });
                }
                Ok(Self {
                    start_ns,
                    step_ns,
                    count: count as usize,
                })
            }
        }
    }

    pub fn time_ns(&self, index: usize) -> i64 {
        // In i128: `step * index` may exceed i64 even though the sum never passes `end`.
        let t = i128::from(self.start_ns) + i128::from(self.step_ns) * index as i128;
        i64::try_from(t).unwrap_or(i64::MAX)
    }

    pub fn end_ns(&self) -> i64 {
        self.time_ns(self.count - 1)
    }
}

/// A metric sub-expression's value.
pub(crate) enum Value {
    Scalar(f64),
    Vectors(Vectors),
}

/// The state of one evaluation.
pub(crate) struct Run<'r> {
    source: &'r dyn LogSource,
    tenant: &'r TenantId,
    limits: &'r QueryLimits,
    stats: QueryStats,
    /// Samples currently held by range aggregations, against `limits.max_samples`.
    samples_held: usize,
}

impl Run<'_> {
    /// `promote`: metadata fields an enclosing `by`/`on` names, which become series labels.
    fn metric(
        &mut self,
        expr: &MetricExpr,
        steps: &Steps,
        promote: &[String],
    ) -> Result<Value, QueryError> {
        match expr {
            MetricExpr::Number(v) => Ok(Value::Scalar(*v)),
            MetricExpr::VectorOf(v) => Ok(Value::Vectors(Vectors::constant(*v, steps.count))),
            MetricExpr::Negate(inner) => Ok(match self.metric(inner, steps, promote)? {
                Value::Scalar(v) => Value::Scalar(-v),
                Value::Vectors(mut vs) => {
                    vs.map_values(|v| -v);
                    Value::Vectors(vs)
                }
            }),
            MetricExpr::Range(agg) => {
                let mut promote = promote.to_vec();
                if let Some(g) = agg.grouping.as_ref().filter(|g| !g.without) {
                    promote.extend(g.labels.iter().cloned());
                }
                Ok(Value::Vectors(
                    self.range_aggregation(agg, steps, &promote)?,
                ))
            }
            MetricExpr::Vector(agg) => {
                let mut promote = promote.to_vec();
                if let Some(g) = agg.grouping.as_ref().filter(|g| !g.without) {
                    promote.extend(g.labels.iter().cloned());
                }
                let Value::Vectors(input) = self.metric(&agg.expr, steps, &promote)? else {
                    return Err(QueryError::Invalid {
                        reason: format!("{} needs a vector, not a scalar", agg.op.name()),
                    });
                };
                Ok(Value::Vectors(vector::aggregate(agg, input)))
            }
            MetricExpr::Binary(b) => {
                let mut promote = promote.to_vec();
                if let Some(m) = b.matching.as_ref().filter(|m| m.on) {
                    promote.extend(m.labels.iter().cloned());
                }
                let lhs = self.metric(&b.lhs, steps, &promote)?;
                let rhs = self.metric(&b.rhs, steps, &promote)?;
                binary::evaluate(b, lhs, rhs)
            }
        }
    }

    fn log_query(
        &mut self,
        expr: &LogExpr,
        start_ns: i64,
        end_ns: i64,
        limit: u32,
        direction: Direction,
    ) -> Result<Vec<StreamResult>, QueryError> {
        if end_ns < start_ns {
            return Err(QueryError::Invalid {
                reason: "end timestamp must not be before start time".to_string(),
            });
        }
        let limit = limit as usize;
        if limit == 0 || end_ns == start_ns {
            return Ok(Vec::new());
        }
        let hints = log_query_hints(expr);
        let selection = LogSelection {
            tenant: self.tenant.clone(),
            matchers: expr.matchers.clone(),
            start_ns,
            end_ns,
            line_contains: hints.line_contains,
            metadata_eq: hints.metadata_eq,
            need_line: hints.need_line,
            need_metadata: hints.need_metadata,
            metadata_fields: hints.metadata_fields,
        };
        let pipeline = Pipeline::new(expr.stages.clone());
        let mut heap = BoundedHeap::new(direction, limit);
        let stats = &mut self.stats;
        // Newest (or oldest) first, in growing windows: once `limit` entries are kept,
        // nothing in the windows further out can displace them, so the scan stops there
        // rather than reading the whole range for a page of recent lines.
        for (lo, hi) in scan_windows(start_ns, end_ns, direction) {
            let mut selection = selection.clone();
            (selection.start_ns, selection.end_ns) = (lo, hi);
            self.source.scan_logs(&selection, &mut |labels, entry| {
                stats.entries_scanned += 1;
                stats.bytes_scanned += entry.line.len() as u64;
                let ts = entry.timestamp_ns;
                if ts < lo || ts >= hi || !heap.may_admit(ts) {
                    return ControlFlow::Continue(());
                }
                let mut state = EntryState::new(labels, entry.metadata, entry.line);
                if !pipeline.run(&mut state) {
                    return ControlFlow::Continue(());
                }
                stats.entries_matched += 1;
                heap.push(HeapItem {
                    timestamp_ns: ts,
                    labels: state.output_labels(&[]),
                    metadata: state.output_metadata(),
                    parsed: state.output_parsed(),
                    line: state.line.into_owned(),
                });
                ControlFlow::Continue(())
            })?;
            if heap.is_full() {
                break;
            }
        }
        let mut streams: BTreeMap<Labels, Vec<StreamEntry>> = BTreeMap::new();
        for item in heap.into_sorted() {
            streams.entry(item.labels).or_default().push(StreamEntry {
                timestamp_ns: item.timestamp_ns,
                line: item.line,
                metadata: item.metadata,
                parsed: item.parsed,
            });
        }
        Ok(streams
            .into_iter()
            .map(|(labels, entries)| StreamResult { labels, entries })
            .collect())
    }
}

/// A kept log entry; ordered by time, then labels, line and metadata, so which entries a
/// limit keeps never depends on scan order.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct HeapItem {
    timestamp_ns: i64,
    labels: Labels,
    line: String,
    metadata: Vec<(String, String)>,
    parsed: Vec<(String, String)>,
}

/// At most `limit` entries: the greatest (`Newest`) or least (`Oldest`); the root is always
/// the kept entry that would go first.
enum BoundedHeap {
    Newest(BinaryHeap<Reverse<HeapItem>>, usize),
    Oldest(BinaryHeap<HeapItem>, usize),
}

impl BoundedHeap {
    fn new(direction: Direction, limit: usize) -> Self {
        match direction {
            Direction::Backward => Self::Newest(BinaryHeap::with_capacity(limit + 1), limit),
            Direction::Forward => Self::Oldest(BinaryHeap::with_capacity(limit + 1), limit),
        }
    }

    fn is_full(&self) -> bool {
        match self {
            Self::Newest(h, limit) => h.len() >= *limit,
            Self::Oldest(h, limit) => h.len() >= *limit,
        }
    }

    /// Whether an entry at `ts` could be kept; false lets the caller skip the pipeline.
    fn may_admit(&self, ts: i64) -> bool {
        match self {
            Self::Newest(h, limit) => {
                h.len() < *limit || h.peek().is_some_and(|w| ts >= w.0.timestamp_ns)
            }
            Self::Oldest(h, limit) => {
                h.len() < *limit || h.peek().is_some_and(|w| ts <= w.timestamp_ns)
            }
        }
    }

    fn push(&mut self, item: HeapItem) {
        match self {
            Self::Newest(h, limit) => {
                h.push(Reverse(item));
                if h.len() > *limit {
                    h.pop();
                }
            }
            Self::Oldest(h, limit) => {
                h.push(item);
                if h.len() > *limit {
                    h.pop();
                }
            }
        }
    }

    /// The kept entries in result order: newest first for `Newest`, oldest first otherwise.
    fn into_sorted(self) -> Vec<HeapItem> {
        match self {
            Self::Newest(h, _) => h.into_sorted_vec().into_iter().map(|r| r.0).collect(),
            Self::Oldest(h, _) => h.into_sorted_vec(),
        }
    }
}

/// The windows a log query scans `[start_ns, end_ns)` in: from the end backward (or from the
/// start forward), the first 1/64 of the range, each next one four times the size of the
/// last, so a query that fills its limit early reads little, and one that needs the whole
/// range reads it in at most 4 scans (a block spanning several windows is read once for each).
fn scan_windows(start_ns: i64, end_ns: i64, direction: Direction) -> Vec<(i64, i64)> {
    let mut width = ((end_ns - start_ns) / 64).max(1);
    let mut out = Vec::new();
    let (mut lo, mut hi) = (start_ns, end_ns);
    while lo < hi {
        match direction {
            Direction::Backward => {
                let cut = hi.saturating_sub(width).max(lo);
                out.push((cut, hi));
                hi = cut;
            }
            Direction::Forward => {
                let cut = lo.saturating_add(width).min(hi);
                out.push((lo, cut));
                lo = cut;
            }
        }
        width = width.saturating_mul(4);
    }
    out
}

/// Whether the result is ordered by value (`sort`, `sort_desc` at the top) rather than labels.
fn sorted_by_value(expr: &MetricExpr) -> Option<bool> {
    match expr {
        MetricExpr::Vector(v) if v.op == VectorOp::Sort => Some(false),
        MetricExpr::Vector(v) if v.op == VectorOp::SortDesc => Some(true),
        _ => None,
    }
}

fn to_query_value(
    value: Value,
    steps: &Steps,
    time: QueryTime,
    by_value_desc: Option<bool>,
    limits: &QueryLimits,
) -> Result<QueryValue, QueryError> {
    let vectors = match (value, time) {
        (Value::Scalar(v), QueryTime::Instant { time_ns }) => {
            return Ok(QueryValue::Scalar(Point {
                timestamp_ns: time_ns,
                value: v,
            }));
        }
        (Value::Scalar(v), QueryTime::Range { .. }) => Vectors::constant(v, steps.count),
        (Value::Vectors(vs), _) => vs,
    };
    let mut series = vectors.into_series(steps);
    if series.len() > limits.max_series {
        return Err(QueryError::TooManySeries {
            limit: limits.max_series,
        });
    }
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    match time {
        QueryTime::Instant { .. } => {
            let mut samples: Vec<Sample> = series
                .into_iter()
                .filter_map(|s| {
                    let point = s.points.last().copied()?;
                    Some(Sample {
                        labels: s.labels,
                        timestamp_ns: point.timestamp_ns,
                        value: point.value,
                    })
                })
                .collect();
            if let Some(desc) = by_value_desc {
                samples.sort_by(|a, b| {
                    let order = a.value.total_cmp(&b.value);
                    if desc { order.reverse() } else { order }
                });
            }
            Ok(QueryValue::Vector(samples))
        }
        QueryTime::Range { .. } => Ok(QueryValue::Matrix(series)),
    }
}
