//! Evaluating a parsed expression at one step, over series fetched beforehand.
//!
//! Every step is evaluated on its own: `eval(expr, t)` returns the value of `expr` at time
//! `t`. A range query is that for each step; a subquery is that for each of its own steps.
//! Selectors read the series [`super::plan::fetch`] loaded, so no step touches storage.
//! Evaluating per step gives the same answers as Prometheus' whole-range evaluation because
//! Prometheus evaluates step-invariant (`@`) subtrees once only as an optimisation; the one
//! whole-range rule, "vector cannot contain metrics with the same labelset" for range
//! functions, is kept per function node across all steps in `owners`.
//!
//! Cost: per selector and series a cursor remembers the previous step's window, so the
//! next step seeks from there; a subquery keeps its inner steps' values while they are
//! inside some window, so overlapping windows evaluate each inner step once.
//!
//! Windows follow Prometheus 2.42: an instant selector takes the newest sample in
//! `[t - lookback, t]`, a range selector the samples in `[t - range, t]` (both ends
//! inclusive), a subquery the steps at multiples of its step in `[t - range, t]`; a
//! staleness marker is never a value, and hides older samples from instant selectors.

mod aggregate;
mod binary;
mod rollup;
mod rollup_aggregate;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use promql_parser::parser::{Expr, MatrixSelector, SubqueryExpr, VectorSelector};
use sightline_model::{Labels, METRIC_NAME_LABEL, Sample, is_stale_nan};

use super::error::PromError;
use super::functions;
use super::plan::{Fetched, Times, at_ms, duration_ms, node_key, offset_ms};

/// A value during evaluation; labels are shared by `Arc` so steps copy them cheaply.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Scalar(f64),
    String(String),
    Vector(Vec<Elem>),
    Matrix(Vec<RangeElem>),
}

/// One element of an instant vector.
#[derive(Clone, Debug)]
pub(crate) struct Elem {
    pub labels: Labels,
    pub v: f64,
}

/// A window's points: a slice of a fetched series (no copy per step), or points made by the
/// evaluation (subqueries, or windows that had staleness markers to drop).
#[derive(Clone, Debug)]
pub(crate) enum Points {
    Shared(Arc<Vec<Sample>>, std::ops::Range<usize>),
    Owned(Vec<Sample>),
}

impl std::ops::Deref for Points {
    type Target = [Sample];
    fn deref(&self) -> &[Sample] {
        match self {
            Points::Shared(all, r) => &all[r.clone()],
            Points::Owned(v) => v,
        }
    }
}

impl Points {
    pub(crate) fn into_vec(self) -> Vec<Sample> {
        match self {
            Points::Shared(all, r) => all[r].to_vec(),
            Points::Owned(v) => v,
        }
    }

    fn push(&mut self, p: Sample) {
        match self {
            Points::Owned(v) => v.push(p),
            Points::Shared(..) => {
                let mut v = std::mem::replace(self, Points::Owned(Vec::new())).into_vec();
                v.push(p);
                *self = Points::Owned(v);
            }
        }
    }
}

/// One series of a range vector: the points a window holds, ascending, no stale markers.
#[derive(Clone, Debug)]
pub(crate) struct RangeElem {
    pub labels: Labels,
    /// `labels` without the metric name when already at hand (series from storage).
    pub labels_without_name: Option<Labels>,
    /// Whether no other series of the same selector has the same `labels_without_name`.
    pub distinct_without_name: bool,
    pub points: Points,
}

impl RangeElem {
    pub(crate) fn without_name(&self) -> Labels {
        match &self.labels_without_name {
            Some(l) => l.clone(),
            None => drop_name(&self.labels),
        }
    }
}

pub(crate) struct Evaluator<'a> {
    fetched: &'a Fetched,
    pub times: Times,
    deadline: Instant,
    /// Per range-function node: output labels → the input series that produced them.
    owners: HashMap<usize, HashMap<Labels, Labels>>,
    /// Per aggregation node: group keys by input label set (see `aggregate::GroupKeys`), so
    /// a range query builds and hashes each series' key once, not at every step.
    pub(crate) group_keys: HashMap<usize, aggregate::GroupKeys>,
    /// Compiled `label_replace` patterns, so a range query compiles each once.
    regexes: HashMap<String, regex::Regex>,
    /// Per subquery node: its inner expression's value at each inner step still in some
    /// window. A value at a time depends on nothing else, so consecutive steps, whose
    /// windows overlap, evaluate each inner step once.
    subquery_steps: HashMap<usize, BTreeMap<i64, Vec<Elem>>>,
    /// Per selector node and series: where the previous step's window started and ended,
    /// so the next (usually later) step seeks from there instead of searching anew.
    cursors: HashMap<usize, Vec<Cursor>>,
    /// First step of the evaluation running now: the query's start, or inside a subquery
    /// its first inner step for the whole query (see [`Evaluator::sliding_at`]).
    eval_start_ms: i64,
    /// A selector or subquery node whose `@` time slides by this much (see
    /// [`Evaluator::sliding_at`]).
    slide: Option<(usize, i64)>,
    /// How many subqueries the evaluation running now is inside.
    subquery_depth: usize,
    /// Per range-function node computed as a rollup: its values for a chunk of steps.
    rollups: HashMap<usize, rollup::Rollup>,
    /// Per aggregation node computed over a rollup: its values for the rollup's chunk.
    aggregate_chunks: HashMap<usize, rollup_aggregate::AggregateChunk>,
}

/// Sample indexes of one series: the first at or after `from_ms` (`lo`) and the first after
/// `to_ms` (`hi`) for the window last read, and how far each moved on that read.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    from_ms: i64,
    to_ms: i64,
    lo: usize,
    hi: usize,
    lo_moved: usize,
    hi_moved: usize,
}

/// The first index `i ≥ start` with `!before(samples[i])`, where `before` holds for a prefix;
/// probes a few samples linearly (consecutive steps move little) before searching.
fn seek(samples: &[Sample], start: usize, before: impl Fn(&Sample) -> bool) -> usize {
    let mut i = start.min(samples.len());
    for _ in 0..8 {
        if i == samples.len() || !before(&samples[i]) {
            return i;
        }
        i += 1;
    }
    i + samples[i..].partition_point(before)
}

/// [`seek`] that looks first at `guess` (where the index moved to the last time, moved
/// as far again: exact for evenly spaced samples and steps) and probes from there, back or
/// forth.
fn seek_near(
    samples: &[Sample],
    start: usize,
    guess: usize,
    before: impl Fn(&Sample) -> bool,
) -> usize {
    let start = start.min(samples.len());
    let g = guess.clamp(start, samples.len());
    if g == start || before(&samples[g - 1]) {
        return seek(samples, g, before);
    }
    // The answer is at most `g - 1`.
    let mut i = g - 1;
    for _ in 0..8 {
        if i == start || before(&samples[i - 1]) {
            return i;
        }
        i -= 1;
    }
    start + samples[start..i].partition_point(before)
}

impl Cursor {
    /// Moves to the window `[from_ms, to_ms]`, returning the index range of its samples.
    fn window(&mut self, samples: &[Sample], from_ms: i64, to_ms: i64) -> (usize, usize) {
        let forward = from_ms >= self.from_ms && to_ms >= self.to_ms;
        let (lo_start, hi_start, lo_guess, hi_guess) = if forward {
            let (lo, hi) = (self.lo, self.hi);
            (lo, hi, lo + self.lo_moved, hi + self.hi_moved)
        } else {
            (0, 0, 0, 0)
        };
        let lo = seek_near(samples, lo_start, lo_guess, |p| p.timestamp_ms < from_ms);
        let hi_start = hi_start.max(lo);
        let hi = seek_near(samples, hi_start, hi_guess.max(lo), |p| {
            p.timestamp_ms <= to_ms
        });
        (self.lo_moved, self.hi_moved) = (lo - lo_start.min(lo), hi - hi_start.min(hi));
        (self.lo, self.hi, self.from_ms, self.to_ms) = (lo, hi, from_ms, to_ms);
        (lo, hi)
    }
}

/// `labels` without the metric name (the same `Arc` when there is none).
pub(crate) fn drop_name(labels: &Labels) -> Labels {
    labels.without(METRIC_NAME_LABEL)
}

/// Prometheus' check that a function or operator did not produce two equal label sets.
pub(crate) fn check_unique(v: &[Elem]) -> Result<(), PromError> {
    if v.len() < 2 {
        return Ok(());
    }
    // Distinct `Arc`s are checked by content; the fast hasher matters at every step of a
    // range query over many series.
    let mut seen: HashSet<&Labels, foldhash::fast::RandomState> =
        HashSet::with_capacity_and_hasher(v.len(), foldhash::fast::RandomState::default());
    for e in v {
        if !seen.insert(&e.labels) {
            return Err(PromError::exec(
                "vector cannot contain metrics with the same labelset",
            ));
        }
    }
    Ok(())
}

/// The expression inside any parentheses.
pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(fetched: &'a Fetched, times: Times, deadline: Instant) -> Self {
        Self {
            fetched,
            times,
            deadline,
            owners: HashMap::new(),
            group_keys: HashMap::new(),
            regexes: HashMap::new(),
            subquery_steps: HashMap::new(),
            cursors: HashMap::new(),
            eval_start_ms: times.start_ms,
            slide: None,
            subquery_depth: 0,
            rollups: HashMap::new(),
            aggregate_chunks: HashMap::new(),
        }
    }

    /// `pattern` compiled anchored at both ends, as Prometheus anchors its regexes.
    pub(crate) fn regex(&mut self, pattern: &str) -> Result<regex::Regex, regex::Error> {
        if let Some(re) = self.regexes.get(pattern) {
            return Ok(re.clone());
        }
        let re = regex::Regex::new(&format!("^(?:{pattern})$"))?;
        self.regexes.insert(pattern.to_string(), re.clone());
        Ok(re)
    }

    pub(crate) fn check_deadline(&self) -> Result<(), PromError> {
        if Instant::now() > self.deadline {
            return Err(PromError::Timeout("query execution".into()));
        }
        Ok(())
    }

    pub(crate) fn eval(&mut self, e: &Expr, t: i64) -> Result<Value, PromError> {
        match e {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(v) => {
                    let out: Vec<Elem> = v
                        .into_iter()
                        .map(|e| Elem {
                            labels: drop_name(&e.labels),
                            v: -e.v,
                        })
                        .collect();
                    check_unique(&out)?;
                    Ok(Value::Vector(out))
                }
                _ => Err(PromError::exec("unary minus on a range vector or string")),
            },
            Expr::VectorSelector(vs) => Ok(Value::Vector(
                self.instant_selector(vs, t)?
                    .into_iter()
                    .map(|(labels, v, _)| Elem { labels, v })
                    .collect(),
            )),
            Expr::MatrixSelector(ms) => Ok(Value::Matrix(self.range_selector(ms, t)?)),
            Expr::Subquery(sq) => Ok(Value::Matrix(self.subquery(sq, t)?)),
            Expr::Call(c) => functions::call(self, c, t),
            Expr::Aggregate(a) => match self.aggregate_rollup_step(a, t)? {
                Some(v) => Ok(Value::Vector(v)),
                None => aggregate::eval(self, a, t),
            },
            Expr::Binary(b) => binary::eval(self, b, t),
            Expr::Extension(_) => Err(PromError::exec("extension expressions are not supported")),
        }
    }

    pub(crate) fn eval_scalar(&mut self, e: &Expr, t: i64) -> Result<f64, PromError> {
        match self.eval(e, t)? {
            Value::Scalar(v) => Ok(v),
            _ => Err(PromError::exec("expected a scalar")),
        }
    }

    pub(crate) fn eval_vector(&mut self, e: &Expr, t: i64) -> Result<Vec<Elem>, PromError> {
        match self.eval(e, t)? {
            Value::Vector(v) => Ok(v),
            _ => Err(PromError::exec("expected an instant vector")),
        }
    }

    pub(crate) fn eval_matrix(&mut self, e: &Expr, t: i64) -> Result<Vec<RangeElem>, PromError> {
        match self.eval(e, t)? {
            Value::Matrix(m) => Ok(m),
            _ => Err(PromError::exec("expected a range vector")),
        }
    }

    fn selected(&self, vs: &VectorSelector) -> Result<&'a super::plan::Selected, PromError> {
        self.fetched
            .get(&node_key(vs))
            .ok_or_else(|| PromError::exec("internal error: selector was not fetched"))
    }

    /// The time node `node` reads at when evaluated at `t`: its `@` time (slid, see
    /// [`Evaluator::sliding_at`]) or `t`, minus offset.
    fn ref_time(
        &self,
        node: usize,
        at: &Option<promql_parser::parser::AtModifier>,
        offset_ms: i64,
        t: i64,
    ) -> i64 {
        let slide = match self.slide {
            Some((n, by)) if n == node => by,
            _ => 0,
        };
        match at_ms(at, &self.times) {
            Some(at) => at + slide - offset_ms,
            None => t - offset_ms,
        }
    }

    /// Evaluates `f` with the `@` time of node `node` moved by `t` minus the start of the
    /// evaluation running now. This is Prometheus 2.42's answer for the range argument of
    /// `predict_linear`, the one function that reads an `@` range argument step by step:
    /// the window follows the steps while the data loaded stays around the `@` time, so a
    /// range query sees the prediction fade out. Instant queries are unaffected (`t` is the
    /// start); inside a subquery the start is the subquery's first inner step.
    pub(crate) fn sliding_at<T>(
        &mut self,
        node: usize,
        t: i64,
        f: impl FnOnce(&mut Self) -> Result<T, PromError>,
    ) -> Result<T, PromError> {
        let saved = self.slide.replace((node, t - self.eval_start_ms));
        let out = f(self);
        self.slide = saved;
        out
    }

    /// The instant vector `vs` at `t`: (labels, value, the sample's own timestamp).
    pub(crate) fn instant_selector(
        &mut self,
        vs: &VectorSelector,
        t: i64,
    ) -> Result<Vec<(Labels, f64, i64)>, PromError> {
        let rt = self.ref_time(node_key(vs), &vs.at, offset_ms(&vs.offset), t);
        let oldest = rt - self.times.lookback_ms;
        let selected = self.selected(vs)?;
        let cursors = self
            .cursors
            .entry(node_key(vs))
            .or_insert_with(|| vec![Cursor::default(); selected.series.len()]);
        let mut out = Vec::new();
        for (s, cursor) in selected.series.iter().zip(cursors.iter_mut()) {
            let (_, n) = cursor.window(&s.samples, oldest, rt);
            if n == 0 {
                continue;
            }
            let p = s.samples[n - 1];
            if p.timestamp_ms < oldest || is_stale_nan(p.value) {
                continue;
            }
            out.push((s.labels.clone(), p.value, p.timestamp_ms));
        }
        Ok(out)
    }

    fn range_selector(&mut self, ms: &MatrixSelector, t: i64) -> Result<Vec<RangeElem>, PromError> {
        let rt = self.ref_time(node_key(&ms.vs), &ms.vs.at, offset_ms(&ms.vs.offset), t);
        let from = rt - duration_ms(&ms.range);
        let mut out = Vec::new();
        let selected = self.selected(&ms.vs)?;
        let cursors = self
            .cursors
            .entry(node_key(&ms.vs))
            .or_insert_with(|| vec![Cursor::default(); selected.series.len()]);
        for (s, cursor) in selected.series.iter().zip(cursors.iter_mut()) {
            let (lo, hi) = cursor.window(&s.samples, from, rt);
            let points = if s.has_stale {
                Points::Owned(
                    s.samples[lo..hi]
                        .iter()
                        .filter(|p| !is_stale_nan(p.value))
                        .copied()
                        .collect(),
                )
            } else {
                Points::Shared(s.samples.clone(), lo..hi)
            };
            if !points.is_empty() {
                out.push(RangeElem {
                    labels: s.labels.clone(),
                    labels_without_name: Some(s.labels_without_name.clone()),
                    distinct_without_name: selected.distinct_without_name,
                    points,
                });
            }
        }
        Ok(out)
    }

    fn subquery(&mut self, sq: &SubqueryExpr, t: i64) -> Result<Vec<RangeElem>, PromError> {
        let node = sq as *const SubqueryExpr as usize;
        let off = offset_ms(&sq.offset);
        let rt = self.ref_time(node, &sq.at, off, t);
        let step = sq
            .step
            .as_ref()
            .map(duration_ms)
            .filter(|s| *s > 0)
            .unwrap_or(self.times.subquery_step_ms);
        let range = duration_ms(&sq.range);
        let align = |from: i64| {
            let tau = from.div_euclid(step) * step;
            if tau < from { tau + step } else { tau }
        };
        let tau = align(rt - range);
        // The first inner step for the whole query, as Prometheus' inner evaluation starts.
        let inner_start =
            align(at_ms(&sq.at, &self.times).unwrap_or(self.eval_start_ms) - off - range);
        let outer_start = std::mem::replace(&mut self.eval_start_ms, inner_start);
        self.subquery_depth += 1;
        let out = self.eval_subquery_steps(sq, node, tau, rt, step);
        self.subquery_depth -= 1;
        self.eval_start_ms = outer_start;
        out
    }

    /// The inner steps `tau, tau + step, … ≤ rt` of subquery `sq`, as series.
    fn eval_subquery_steps(
        &mut self,
        sq: &SubqueryExpr,
        node: usize,
        mut tau: i64,
        rt: i64,
        step: i64,
    ) -> Result<Vec<RangeElem>, PromError> {
        let mut cache = self.subquery_steps.remove(&node).unwrap_or_default();
        // Inner steps before this window are not needed again by later (later-timed) steps.
        cache = cache.split_off(&tau);
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut out: Vec<RangeElem> = Vec::new();
        while tau <= rt {
            let elems = match cache.get(&tau) {
                Some(elems) => elems.clone(),
                None => {
                    self.check_deadline()?;
                    let elems = match self.eval(&sq.expr, tau)? {
                        Value::Vector(v) => v,
                        Value::Scalar(v) => vec![Elem {
                            labels: Labels::default(),
                            v,
                        }],
                        _ => return Err(PromError::exec("subquery of a range vector or string")),
                    };
                    cache.insert(tau, elems.clone());
                    elems
                }
            };
            for e in elems {
                let point = Sample {
                    timestamp_ms: tau,
                    value: e.v,
                };
                match index.get(&e.labels) {
                    Some(&i) => out[i].points.push(point),
                    None => {
                        index.insert(e.labels.clone(), out.len());
                        out.push(RangeElem {
                            labels: e.labels,
                            labels_without_name: None,
                            distinct_without_name: false,
                            points: Points::Owned(vec![point]),
                        });
                    }
                }
            }
            tau += step;
        }
        self.subquery_steps.insert(node, cache);
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// Records that range-function node `node` turned series `input` into `output`; fails
    /// when two input series produce the same output labels anywhere in the query, as
    /// Prometheus checks over its whole result matrix.
    pub(crate) fn note_owner(
        &mut self,
        node: usize,
        output: &Labels,
        input: &Labels,
    ) -> Result<(), PromError> {
        let owners = self.owners.entry(node).or_default();
        match owners.get(output) {
            Some(prev) if prev != input => Err(PromError::exec(
                "vector cannot contain metrics with the same labelset",
            )),
            Some(_) => Ok(()),
            None => {
                owners.insert(output.clone(), input.clone());
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeking_from_any_guess_finds_the_first_sample_not_before() {
        let samples: Vec<Sample> = (0..40)
            .map(|i| Sample {
                timestamp_ms: i * 10,
                value: 0.0,
            })
            .collect();
        for t in -5..=405 {
            let before = |p: &Sample| p.timestamp_ms < t;
            let want = samples.partition_point(before);
            for start in 0..=want {
                for guess in 0..=45 {
                    assert_eq!(
                        seek_near(&samples, start, guess, before),
                        want,
                        "t {t} start {start} guess {guess}"
                    );
                }
            }
        }
        // A cursor over evenly spaced windows, and one sent back.
        let mut c = Cursor::default();
        for k in 0..30 {
            let (from, to) = (k * 13, k * 13 + 55);
            let want = (
                samples.partition_point(|p| p.timestamp_ms < from),
                samples.partition_point(|p| p.timestamp_ms <= to),
            );
            assert_eq!(c.window(&samples, from, to), want, "window {k}");
        }
        assert_eq!(c.window(&samples, 0, 15), (0, 2));
    }
}
