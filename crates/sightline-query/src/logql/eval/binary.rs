//! Binary operators between metric values, with PromQL's vector matching.
//!
//! - scalar ⊕ scalar is a scalar; vector ⊕ scalar applies to every sample;
//! - vector ⊕ vector pairs samples whose signatures (all labels, only the `on` labels, or all
//!   but the `ignoring` labels) are equal; one-to-one by default, many-to-one with
//!   `group_left`, one-to-many with `group_right`; a match that is not unique on the "one"
//!   side is an error, as in Prometheus;
//! - comparisons filter (keeping the left value) unless `bool` turns them into 0/1;
//! - `and`, `or`, `unless` are set operations on signatures.

use std::collections::{HashMap, HashSet};

use sightline_model::Labels;

use super::Value;
use super::vector::{LabelTable, Vectors};
use crate::logql::ast::{BinOp, BinaryExpr, VectorMatching};
use crate::logql::error::QueryError;

pub(crate) fn evaluate(b: &BinaryExpr, lhs: Value, rhs: Value) -> Result<Value, QueryError> {
    Ok(match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => Value::Scalar(if b.op.is_comparison() {
            f64::from(u8::from(compare(b.op, l, r)))
        } else {
            arithmetic(b.op, l, r)
        }),
        (Value::Vectors(v), Value::Scalar(s)) => Value::Vectors(with_scalar(b, v, s, true)),
        (Value::Scalar(s), Value::Vectors(v)) => Value::Vectors(with_scalar(b, v, s, false)),
        (Value::Vectors(l), Value::Vectors(r)) if b.op.is_set() => {
            Value::Vectors(set_operation(b, l, r))
        }
        (Value::Vectors(l), Value::Vectors(r)) => Value::Vectors(match_vectors(b, l, r)?),
    })
}

fn arithmetic(op: BinOp, l: f64, r: f64) -> f64 {
    match op {
        BinOp::Add => l + r,
        BinOp::Sub => l - r,
        BinOp::Mul => l * r,
        BinOp::Div => l / r,
        BinOp::Mod => l % r,
        BinOp::Pow => l.powf(r),
        _ => f64::NAN,
    }
}

fn compare(op: BinOp, l: f64, r: f64) -> bool {
    match op {
        BinOp::Eq => l == r,
        BinOp::Neq => l != r,
        BinOp::Gt => l > r,
        BinOp::Ge => l >= r,
        BinOp::Lt => l < r,
        BinOp::Le => l <= r,
        _ => false,
    }
}

/// The value of `l op r` for a sample, or `None` when a filtering comparison drops it;
/// `kept` is the value a filtering comparison keeps.
fn apply(b: &BinaryExpr, l: f64, r: f64, kept: f64) -> Option<f64> {
    if !b.op.is_comparison() {
        return Some(arithmetic(b.op, l, r));
    }
    let ok = compare(b.op, l, r);
    if b.return_bool {
        Some(f64::from(u8::from(ok)))
    } else {
        ok.then_some(kept)
    }
}

fn with_scalar(b: &BinaryExpr, mut v: Vectors, s: f64, scalar_right: bool) -> Vectors {
    for step in &mut v.steps {
        step.retain_mut(|(_, value)| {
            let (l, r) = if scalar_right {
                (*value, s)
            } else {
                (s, *value)
            };
            match apply(b, l, r, *value) {
                Some(out) => {
                    *value = out;
                    true
                }
                None => false,
            }
        });
    }
    v
}

fn signature(labels: &Labels, matching: Option<&VectorMatching>) -> Labels {
    match matching {
        None => labels.clone(),
        Some(m) => Labels::from_pairs(
            labels
                .iter()
                .filter(|(k, _)| m.labels.iter().any(|l| l == k) == m.on),
        ),
    }
}

fn signatures(
    table: &mut LabelTable,
    labels: &[Labels],
    matching: Option<&VectorMatching>,
) -> Vec<u32> {
    labels
        .iter()
        .map(|l| table.id(signature(l, matching)))
        .collect()
}

fn set_operation(b: &BinaryExpr, lhs: Vectors, rhs: Vectors) -> Vectors {
    let matching = b.matching.as_ref();
    let mut sigs = LabelTable::default();
    let left_sig = signatures(&mut sigs, &lhs.labels, matching);
    let right_sig = signatures(&mut sigs, &rhs.labels, matching);
    // `or` merges both label tables; equal label sets share an id, so a series present on
    // the left at some steps and on the right at others comes out as one series.
    let mut table = LabelTable::default();
    let left_ids: Vec<u32> = lhs.labels.into_iter().map(|l| table.id(l)).collect();
    let right_ids: Vec<u32> = if b.op == BinOp::Or {
        rhs.labels.into_iter().map(|l| table.id(l)).collect()
    } else {
        Vec::new()
    };
    let steps = lhs
        .steps
        .into_iter()
        .zip(rhs.steps)
        .map(|(left, right)| match b.op {
            BinOp::Or => {
                let present: HashSet<u32> =
                    left.iter().map(|(id, _)| left_sig[*id as usize]).collect();
                let mut out: Vec<(u32, f64)> = left
                    .into_iter()
                    .map(|(id, v)| (left_ids[id as usize], v))
                    .collect();
                out.extend(
                    right
                        .into_iter()
                        .filter(|(id, _)| !present.contains(&right_sig[*id as usize]))
                        .map(|(id, v)| (right_ids[id as usize], v)),
                );
                out
            }
            op => {
                let present: HashSet<u32> = right
                    .iter()
                    .map(|(id, _)| right_sig[*id as usize])
                    .collect();
                let want = op == BinOp::And;
                left.into_iter()
                    .filter(|(id, _)| present.contains(&left_sig[*id as usize]) == want)
                    .map(|(id, v)| (left_ids[id as usize], v))
                    .collect()
            }
        })
        .collect();
    Vectors {
        labels: table.labels,
        steps,
    }
}

/// Labels of a matched pair, from the "many" side (the left one for one-to-one).
fn result_labels(many: &Labels, one: &Labels, matching: Option<&VectorMatching>) -> Labels {
    let Some(m) = matching else {
        return many.clone();
    };
    let mut out = match &m.group {
        None => signature(many, Some(m)),
        Some(_) => many.clone(),
    };
    if let Some(g) = &m.group {
        for name in &g.include {
            match one.get(name) {
                Some(v) => out.set(name, v),
                None => {
                    out.remove(name);
                }
            }
        }
    }
    out
}

fn match_vectors(b: &BinaryExpr, lhs: Vectors, rhs: Vectors) -> Result<Vectors, QueryError> {
    let matching = b.matching.as_ref();
    let group = matching.and_then(|m| m.group.as_ref());
    let one_to_one = group.is_none();
    // The "one" side is the right one, except with group_right.
    let swapped = group.is_some_and(|g| !g.left);
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let mut sigs = LabelTable::default();
    let many_sig = signatures(&mut sigs, &many.labels, matching);
    let one_sig = signatures(&mut sigs, &one.labels, matching);
    let mut out = LabelTable::default();
    let mut pairs: HashMap<(u32, u32), u32> = HashMap::new();
    let mut steps = Vec::with_capacity(many.steps.len());
    let invalid = |reason: String| QueryError::Invalid { reason };
    for (many_step, one_step) in many.steps.iter().zip(&one.steps) {
        let mut one_by_sig: HashMap<u32, (u32, f64)> = HashMap::with_capacity(one_step.len());
        for &(id, v) in one_step {
            if let Some((other, _)) = one_by_sig.insert(one_sig[id as usize], (id, v)) {
                return Err(invalid(format!(
                    "found duplicate series for the match group {} on the {} hand-side of the \
                     operation: [{}, {}]; many-to-many matching not allowed: matching labels \
                     must be unique on one side",
                    sigs.labels[one_sig[id as usize] as usize],
                    if swapped { "left" } else { "right" },
                    one.labels[other as usize],
                    one.labels[id as usize],
                )));
            }
        }
        let mut matched_sigs: HashSet<u32> = HashSet::new();
        let mut emitted: HashSet<u32> = HashSet::new();
        let mut step_out = Vec::new();
        for &(many_id, many_v) in many_step {
            let sig = many_sig[many_id as usize];
            let Some(&(one_id, one_v)) = one_by_sig.get(&sig) else {
                continue;
            };
            if one_to_one && !matched_sigs.insert(sig) {
                return Err(invalid(format!(
                    "multiple matches for labels {}: many-to-one matching must be explicit \
                     (group_left/group_right)",
                    sigs.labels[sig as usize]
                )));
            }
            let (l, r) = if swapped {
                (one_v, many_v)
            } else {
                (many_v, one_v)
            };
            let Some(value) = apply(b, l, r, l) else {
                continue;
            };
            let out_id = *pairs.entry((many_id, one_id)).or_insert_with(|| {
                out.id(result_labels(
                    &many.labels[many_id as usize],
                    &one.labels[one_id as usize],
                    matching,
                ))
            });
            if !emitted.insert(out_id) {
                return Err(invalid(format!(
                    "multiple matches for labels {}: grouping labels must ensure unique matches",
                    out.labels[out_id as usize]
                )));
            }
            step_out.push((out_id, value));
        }
        steps.push(step_out);
    }
    Ok(Vectors {
        labels: out.labels,
        steps,
    })
}
