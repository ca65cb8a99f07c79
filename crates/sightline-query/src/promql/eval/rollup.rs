//! Range functions over a range selector in a range query, computed a chunk of steps at a
//! time for every series at once (a "rollup"), on all cores.
//!
//! # Why
//! Evaluated step by step, `rate(x[5m])` over 10,000 series and 120 steps builds 1.2 M
//! window values (an `Arc` clone, a cursor seek and a dispatch on the function name each)
//! on one thread. Which window a step reads depends only on the step, so the values of a
//! series at consecutive steps can be computed in one pass over its samples, and different
//! series on different cores, before the step that needs them asks.
//!
//! # Invariants
//! - Same answers as the step-by-step path: the same windows (`ref_time`, `[rt − range,
//!   rt]`, staleness markers dropped), the same `functions::apply` on the same points in the
//!   same order, the same output labels and the same duplicate-label check.
//! - Taken only where a step's value depends on nothing but the step: the outer steps of a
//!   range query (not inside a subquery, nor under `predict_linear`'s sliding `@`), a plain
//!   range selector as the argument, and number literals as the other arguments.
//! - Memory is bounded: a chunk holds at most [`CELLS_MAX`] values (or one step).

use std::sync::Arc;

use promql_parser::parser::{Call, Expr, MatrixSelector};
use sightline_model::{Labels, Sample, is_stale_nan};

use super::{Cursor, Elem, Evaluator, unwrap_parens};
use crate::promql::error::PromError;
use crate::promql::functions::{RangeFn, apply_range_function, avg_over_time_each, range_fn};
use crate::promql::plan::{duration_ms, node_key, offset_ms};

/// Most values a chunk holds (series × steps): 16 MiB of `Option<f64>`.
const CELLS_MAX: usize = 1 << 20;

/// One range-function node's values for the steps `[first_step, first_step + steps)`.
pub(super) struct Rollup {
    pub(super) first_step: usize,
    pub(super) steps: usize,
    /// Series-major: the value of series `i` at step `first_step + k` is at `i * steps + k`.
    pub(super) values: Vec<Option<f64>>,
    cursors: Vec<Cursor>,
    /// Each series' samples without staleness markers (shared when it has none).
    samples: Vec<Arc<Vec<Sample>>>,
    /// The output labels of each series.
    pub(super) labels: Vec<Labels>,
}

impl Evaluator<'_> {
    /// The value of range-function call `c` at outer step `t` when it can be computed as a
    /// rollup (see the [module docs](self)); `None` to evaluate it step by step.
    pub(crate) fn rollup_step(
        &mut self,
        c: &Call,
        params: &[f64],
        t: i64,
    ) -> Result<Option<Vec<Elem>>, PromError> {
        let Some(k) = self.rollup_chunk(c, params, t)? else {
            return Ok(None);
        };
        let Some(r) = self.rollups.get(&(c as *const Call as usize)) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for (i, labels) in r.labels.iter().enumerate() {
            if let Some(v) = r.values[i * r.steps + k] {
                out.push(Elem {
                    labels: labels.clone(),
                    v,
                });
            }
        }
        Ok(Some(out))
    }

    /// When call `c` at outer step `t` can be computed as a rollup, makes sure the chunk
    /// holding `t` is in `self.rollups` (keyed by the call's address) and returns `t`'s
    /// index in it; `None` to evaluate the call step by step.
    pub(super) fn rollup_chunk(
        &mut self,
        c: &Call,
        params: &[f64],
        t: i64,
    ) -> Result<Option<usize>, PromError> {
        let name = c.func.name;
        let step_ms = self.times.step_ms;
        if step_ms <= 0
            || self.subquery_depth > 0
            || self.slide.is_some()
            || t < self.times.start_ms
            || t > self.times.end_ms
            || (t - self.times.start_ms) % step_ms != 0
            || name == "absent_over_time"
        {
            return Ok(None);
        }
        let matrix_index = usize::from(name == "quantile_over_time");
        let Some(Expr::MatrixSelector(ms)) =
            c.args.args.get(matrix_index).map(|a| unwrap_parens(a))
        else {
            return Ok(None);
        };
        if name == "predict_linear" && ms.vs.at.is_some() {
            return Ok(None);
        }
        let literal_params =
            c.args.args.iter().enumerate().all(|(i, a)| {
                i == matrix_index || matches!(unwrap_parens(a), Expr::NumberLiteral(_))
            });
        if !literal_params {
            return Ok(None);
        }
        let node = c as *const Call as usize;
        let step = usize::try_from((t - self.times.start_ms) / step_ms).unwrap_or(usize::MAX);
        let in_chunk = |r: &Rollup| step >= r.first_step && step < r.first_step + r.steps;
        if !self.rollups.get(&node).is_some_and(in_chunk) {
            self.compute_chunk(node, name, ms, params, step)?;
        }
        Ok(self.rollups.get(&node).map(|r| step - r.first_step))
    }

    /// Computes node `node`'s values for the chunk of steps starting at `first_step`.
    fn compute_chunk(
        &mut self,
        node: usize,
        name: &str,
        ms: &MatrixSelector,
        params: &[f64],
        first_step: usize,
    ) -> Result<(), PromError> {
        self.check_deadline()?;
        let selected = self.selected(&ms.vs)?;
        let mut rollup = match self.rollups.remove(&node) {
            Some(r) => r,
            None => Rollup {
                first_step,
                steps: 0,
                values: Vec::new(),
                cursors: vec![Cursor::default(); selected.series.len()],
                samples: selected
                    .series
                    .iter()
                    .map(|s| {
                        if s.has_stale {
                            Arc::new(
                                s.samples
                                    .iter()
                                    .filter(|p| !is_stale_nan(p.value))
                                    .copied()
                                    .collect(),
                            )
                        } else {
                            s.samples.clone()
                        }
                    })
                    .collect(),
                labels: selected
                    .series
                    .iter()
                    .map(|s| {
                        if name == "last_over_time" {
                            s.labels.clone()
                        } else {
                            s.labels_without_name.clone()
                        }
                    })
                    .collect(),
            },
        };
        let series = rollup.samples.len();
        let step_ms = self.times.step_ms;
        let last_step = usize::try_from((self.times.end_ms - self.times.start_ms) / step_ms)
            .unwrap_or(usize::MAX);
        let steps = (CELLS_MAX / series.max(1))
            .clamp(1, 256)
            .min(last_step - first_step + 1);
        // The window every step of the chunk reads: where it ends and the evaluation time.
        let vs_node = node_key(&ms.vs);
        let offset = offset_ms(&ms.vs.offset);
        let range_ms = duration_ms(&ms.range);
        let windows: Vec<(i64, i64)> = (first_step..first_step + steps)
            .map(|k| {
                let t = self.times.start_ms + k as i64 * step_ms;
                (self.ref_time(vs_node, &ms.vs.at, offset, t), t)
            })
            .collect();
        rollup.first_step = first_step;
        rollup.steps = steps;
        rollup.values.clear();
        rollup.values.resize(series * steps, None);

        let f = range_fn(name)?;
        let job = |samples: &[Arc<Vec<Sample>>],
                   cursors: &mut [Cursor],
                   values: &mut [Option<f64>]|
         -> Result<(), PromError> {
            // `avg_over_time` takes all the job's windows together, across series too
            // (`avg_over_time_each`), then writes each mean to its cell.
            if f == RangeFn::AvgOverTime {
                let mut cells: Vec<usize> = Vec::new();
                let mut points: Vec<&[Sample]> = Vec::new();
                for (i, (s, cursor)) in samples.iter().zip(cursors.iter_mut()).enumerate() {
                    for (k, &(rt, _)) in windows.iter().enumerate() {
                        let (lo, hi) = cursor.window(s, rt - range_ms, rt);
                        if lo < hi {
                            cells.push(i * steps + k);
                            points.push(&s[lo..hi]);
                        }
                    }
                }
                let mut means = Vec::with_capacity(points.len());
                avg_over_time_each(&points, &mut means);
                for (&cell, &v) in cells.iter().zip(&means) {
                    values[cell] = Some(v);
                }
                return Ok(());
            }
            for ((s, cursor), out) in samples
                .iter()
                .zip(cursors.iter_mut())
                .zip(values.chunks_mut(steps))
            {
                for (&(rt, t), slot) in windows.iter().zip(out.iter_mut()) {
                    let (lo, hi) = cursor.window(s, rt - range_ms, rt);
                    if lo < hi {
                        *slot = apply_range_function(f, &s[lo..hi], rt, range_ms, t, params)?;
                    }
                }
            }
            Ok(())
        };
        let threads = sightline_model::parallel::cores();
        let work = series * steps + rollup.samples.iter().map(|s| s.len()).sum::<usize>();
        // Work: windows plus the series' samples.
        if threads < 2 || work < sightline_model::parallel::PARALLEL_MIN_WORK {
            job(&rollup.samples, &mut rollup.cursors, &mut rollup.values)?;
        } else {
            let per_thread = series.div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = rollup
                    .samples
                    .chunks(per_thread)
                    .zip(rollup.cursors.chunks_mut(per_thread))
                    .zip(rollup.values.chunks_mut(per_thread * steps))
                    .map(|((samples, cursors), values)| {
                        scope.spawn(|| job(samples, cursors, values))
                    })
                    .collect();
                handles
                    .into_iter()
                    .try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            })?;
        }
        if !selected.distinct_without_name {
            for (i, s) in selected.series.iter().enumerate() {
                if rollup.values[i * steps..(i + 1) * steps]
                    .iter()
                    .any(Option::is_some)
                {
                    self.note_owner(node, &rollup.labels[i], &s.labels)?;
                }
            }
        }
        self.rollups.insert(node, rollup);
        Ok(())
    }
}
