//! Sparse step vectors, and the vector aggregations (`sum by (…)`, `topk`, …) over them.
//!
//! A [`Vectors`] holds a label table and, per evaluation step, the `(series id, value)` pairs
//! present at that step. Operators look labels up once per series, not once per point:
//! a series' group or matching signature does not change between steps.
//!
//! Invariant: within one step a series id appears at most once.

use std::collections::HashMap;

use sightline_model::Labels;

use super::Steps;
use crate::logql::ast::{Grouping, VectorAggregation, VectorOp};
use crate::logql::value::{Point, Series};

pub(crate) struct Vectors {
    /// Series id → labels.
    pub labels: Vec<Labels>,
    /// Step index → the series present at that step, with their values.
    pub steps: Vec<Vec<(u32, f64)>>,
}

impl Vectors {
    pub fn empty(step_count: usize) -> Self {
        Self {
            labels: Vec::new(),
            steps: vec![Vec::new(); step_count],
        }
    }

    /// One label-less series with value `v` at every step (`vector(v)`, or a scalar result).
    pub fn constant(v: f64, step_count: usize) -> Self {
        Self {
            labels: vec![Labels::default()],
            steps: vec![vec![(0, v)]; step_count],
        }
    }

    pub fn map_values(&mut self, f: impl Fn(f64) -> f64) {
        for step in &mut self.steps {
            for (_, v) in step.iter_mut() {
                *v = f(*v);
            }
        }
    }

    /// Series with at least one point; unsorted.
    pub fn into_series(self, steps: &Steps) -> Vec<Series> {
        let mut points: Vec<Vec<Point>> = vec![Vec::new(); self.labels.len()];
        for (i, step) in self.steps.iter().enumerate() {
            let timestamp_ns = steps.time_ns(i);
            for &(id, value) in step {
                points[id as usize].push(Point {
                    timestamp_ns,
                    value,
                });
            }
        }
        self.labels
            .into_iter()
            .zip(points)
            .filter(|(_, p)| !p.is_empty())
            .map(|(labels, points)| Series { labels, points })
            .collect()
    }
}

/// Interns label sets into dense ids.
#[derive(Default)]
pub(crate) struct LabelTable {
    ids: HashMap<Labels, u32>,
    pub labels: Vec<Labels>,
}

impl LabelTable {
    pub fn id(&mut self, labels: Labels) -> u32 {
        if let Some(&id) = self.ids.get(&labels) {
            return id;
        }
        let id = self.labels.len() as u32;
        self.ids.insert(labels.clone(), id);
        self.labels.push(labels);
        id
    }
}

/// The labels that identify a group: only the `by` labels, or all but the `without` ones;
/// no grouping puts everything in one group.
pub(crate) fn group_labels(labels: &Labels, grouping: Option<&Grouping>) -> Labels {
    match grouping {
        None => Labels::default(),
        Some(g) if g.without => Labels::from_pairs(
            labels
                .iter()
                .filter(|(k, _)| !g.labels.iter().any(|l| l == k)),
        ),
        Some(g) => Labels::from_pairs(
            labels
                .iter()
                .filter(|(k, _)| g.labels.iter().any(|l| l == k)),
        ),
    }
}

#[derive(Clone, Copy, Default)]
struct Acc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
}

impl Acc {
    fn add(&mut self, v: f64) {
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            if v < self.min || self.min.is_nan() {
                self.min = v;
            }
            if v > self.max || self.max.is_nan() {
                self.max = v;
            }
        }
        self.count += 1;
        self.sum += v;
        let delta = v - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (v - self.mean);
    }

    fn result(&self, op: VectorOp) -> f64 {
        match op {
            VectorOp::Sum => self.sum,
            VectorOp::Avg => self.mean,
            VectorOp::Min => self.min,
            VectorOp::Max => self.max,
            VectorOp::Count => self.count as f64,
            VectorOp::Stdvar => self.m2 / self.count as f64,
            VectorOp::Stddev => (self.m2 / self.count as f64).sqrt(),
            VectorOp::Topk | VectorOp::Bottomk | VectorOp::Sort | VectorOp::SortDesc => f64::NAN,
        }
    }
}

pub(crate) fn aggregate(agg: &VectorAggregation, input: Vectors) -> Vectors {
    match agg.op {
        // Ordering only matters for an instant result, which the caller sorts.
        VectorOp::Sort | VectorOp::SortDesc => input,
        VectorOp::Topk | VectorOp::Bottomk => select_k(agg, input),
        op => {
            let mut table = LabelTable::default();
            let group_of: Vec<u32> = input
                .labels
                .iter()
                .map(|l| table.id(group_labels(l, agg.grouping.as_ref())))
                .collect();
            let mut accs = vec![Acc::default(); table.labels.len()];
            let mut touched: Vec<u32> = Vec::new();
            let steps = input
                .steps
                .iter()
                .map(|step| {
                    for &(id, v) in step {
                        let g = group_of[id as usize];
                        let acc = &mut accs[g as usize];
                        if acc.count == 0 {
                            touched.push(g);
                        }
                        acc.add(v);
                    }
                    touched
                        .drain(..)
                        .map(|g| {
                            let acc = std::mem::take(&mut accs[g as usize]);
                            (g, acc.result(op))
                        })
                        .collect()
                })
                .collect();
            Vectors {
                labels: table.labels,
                steps,
            }
        }
    }
}

/// `topk`/`bottomk`: per step and group, the `k` series with the largest (smallest) values,
/// ties broken by labels; NaN never beats a number.
fn select_k(agg: &VectorAggregation, mut input: Vectors) -> Vectors {
    let k = agg.param.unwrap_or(1.0) as usize;
    let top = agg.op == VectorOp::Topk;
    let mut table = LabelTable::default();
    let group_of: Vec<u32> = input
        .labels
        .iter()
        .map(|l| table.id(group_labels(l, agg.grouping.as_ref())))
        .collect();
    let mut members: Vec<Vec<(u32, f64)>> = vec![Vec::new(); table.labels.len()];
    let labels = &input.labels;
    for step in &mut input.steps {
        for &(id, v) in step.iter() {
            members[group_of[id as usize] as usize].push((id, v));
        }
        step.clear();
        for group in &mut members {
            group.sort_by(|a, b| {
                let by_value = match (a.1.is_nan(), b.1.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    (false, false) if top => b.1.total_cmp(&a.1),
                    (false, false) => a.1.total_cmp(&b.1),
                };
                by_value.then_with(|| labels[a.0 as usize].cmp(&labels[b.0 as usize]))
            });
            step.extend(group.drain(..).take(k));
            group.clear();
        }
    }
    input
}
