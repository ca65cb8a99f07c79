//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`,
//! `stdvar`, `topk`, `bottomk`, `quantile`, `count_values`) with `by`/`without`, computed
//! in Prometheus 2.42's order so floats come out bit for bit the same.
//!
//! Groups are output in the order their first element arrives. `sum` adds in input order,
//! `avg` keeps Prometheus' incremental mean (with its infinity guards), `stddev`/`stdvar`
//! Welford's update; `topk`/`bottomk` replay Go's `container/heap` so ties keep the same
//! elements, and sort their result as Go's sort does for small inputs.

use std::collections::HashMap;

use promql_parser::parser::token::TokenId;
use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_MAX, T_MIN, T_QUANTILE, T_STDDEV,
    T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, LabelModifier};
use sightline_model::labels::is_valid_label_name;
use sightline_model::{Labels, METRIC_NAME_LABEL};

use super::{Elem, Evaluator, Value};
use crate::promql::error::PromError;
use crate::promql::functions::quantile;
use crate::promql::gomath::go_sort;
use crate::promql::value::{format_exponent, format_plain, format_value};

/// One aggregation node's group keys. Input label sets are recognised by the address of
/// their shared pairs ([`Labels::addr`]; series from storage keep one set for the whole
/// query), each held here so its address cannot be reused; equal keys are interned to one
/// shared set, so groups are found by address.
#[derive(Default)]
pub(crate) struct GroupKeys {
    by_input: HashMap<usize, (Labels, Labels), FastHash>,
    interned: HashMap<Labels, Labels>,
}

/// Addresses need no DoS-resistant hash; this one is a few instructions.
type FastHash = foldhash::fast::RandomState;

/// Inputs remembered per node before the cache starts over (label sets made anew at every
/// step, by a binary operator say, would otherwise pile up).
const GROUP_KEYS_MAX: usize = 1 << 18;

impl GroupKeys {
    pub(super) fn key(&mut self, labels: &Labels, without: bool, grouping: &[String]) -> Labels {
        let addr = labels.addr();
        if let Some((_, key)) = self.by_input.get(&addr) {
            return key.clone();
        }
        if self.by_input.len() >= GROUP_KEYS_MAX {
            self.by_input.clear();
        }
        let key = group_labels(labels, without, grouping);
        let key = match self.interned.get(&key) {
            Some(k) => k.clone(),
            None => {
                let k = key.clone();
                self.interned.insert(key, k.clone());
                k
            }
        };
        self.by_input.insert(addr, (labels.clone(), key.clone()));
        key
    }
}

struct Group {
    labels: Labels,
    acc: Acc,
    heap: Vec<Elem>,
}

/// What a group of the value-only aggregations keeps: the running value, mean and count.
/// The step-by-step path and the rollup path (`rollup_aggregate`) both go through
/// [`Acc::first`], [`Acc::add`] and [`Acc::value`], so they compute alike.
#[derive(Clone, Copy, Debug)]
pub(super) struct Acc {
    value: f64,
    mean: f64,
    count: f64,
}

impl Acc {
    /// A group's state after its first element.
    pub(super) fn first(op: TokenId, v: f64) -> Self {
        let value = match op {
            T_STDDEV | T_STDVAR => 0.0,
            T_GROUP => 1.0,
            _ => v,
        };
        Self {
            value,
            mean: v,
            count: 1.0,
        }
    }

    /// Adds an element to the group for the aggregations that keep no elements; `false`
    /// for those that do (`topk`, `bottomk`, `quantile`) and anything else.
    pub(super) fn add(&mut self, op: TokenId, v: f64) -> bool {
        match op {
            T_SUM => self.value += v,
            T_AVG => {
                self.count += 1.0;
                if self.mean.is_infinite() {
                    if v.is_infinite() && (self.mean > 0.0) == (v > 0.0) {
                        return true;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        return true;
                    }
                }
                self.mean += v / self.count - self.mean / self.count;
            }
            T_GROUP => {}
            T_COUNT | T_COUNT_VALUES => self.count += 1.0,
            T_MAX => {
                if self.value < v || self.value.is_nan() {
                    self.value = v;
                }
            }
            T_MIN => {
                if self.value > v || self.value.is_nan() {
                    self.value = v;
                }
            }
            T_STDDEV | T_STDVAR => {
                self.count += 1.0;
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (v - self.mean);
            }
            _ => return false,
        }
        true
    }

    /// The group's result for the aggregations [`Acc::add`] handles.
    pub(super) fn value(&self, op: TokenId) -> f64 {
        match op {
            T_AVG => self.mean,
            T_COUNT | T_COUNT_VALUES => self.count,
            T_STDVAR => self.value / self.count,
            T_STDDEV => (self.value / self.count).sqrt(),
            _ => self.value,
        }
    }
}

pub(super) fn eval(ev: &mut Evaluator<'_>, a: &AggregateExpr, t: i64) -> Result<Value, PromError> {
    let op = a.op.id();
    let mut param_f = 0.0;
    let mut value_label = String::new();
    if let Some(p) = &a.param {
        match ev.eval(p, t)? {
            Value::Scalar(v) => param_f = v,
            Value::String(s) => value_label = s,
            _ => {
                return Err(PromError::exec(
                    "aggregation parameter must be a scalar or string",
                ));
            }
        }
    }
    let input = ev.eval_vector(&a.expr, t)?;
    let (without, mut grouping): (bool, Vec<String>) = match &a.modifier {
        Some(LabelModifier::Include(ls)) => (false, ls.labels.clone()),
        Some(LabelModifier::Exclude(ls)) => (true, ls.labels.clone()),
        None => (false, Vec::new()),
    };
    let mut k: usize = 0;
    if op == T_TOPK || op == T_BOTTOMK {
        if !(-9.223_372_036_854_776e18..=9.223_372_036_854_776e18).contains(&param_f) {
            // Go's `%v`: every value out of int64's range prints with an exponent.
            let shown = if param_f.is_finite() {
                format_exponent(param_f)
            } else {
                format_value(param_f)
            };
            return Err(PromError::exec(format!(
                "Scalar value {shown} overflows int64"
            )));
        }
        let k_i = param_f as i64;
        if k_i < 1 {
            return Ok(Value::Vector(Vec::new()));
        }
        k = usize::try_from(k_i).unwrap_or(usize::MAX);
    }
    if op == T_COUNT_VALUES {
        if !is_valid_label_name(&value_label) {
            return Err(PromError::exec(format!(
                "invalid label name {value_label:?}"
            )));
        }
        if !without {
            grouping.push(value_label.clone());
        }
    }
    let mut groups: Vec<Group> = Vec::new();
    // Groups by the address of their interned key.
    let mut index: HashMap<usize, usize, FastHash> = HashMap::default();
    let node = a as *const AggregateExpr as usize;
    let mut keys = ev.group_keys.remove(&node).unwrap_or_default();
    for s in input {
        let labels = if op == T_COUNT_VALUES {
            let mut l = s.labels.clone();
            l.set(&value_label, &format_plain(s.v));
            l
        } else {
            s.labels
        };
        let key = keys.key(&labels, without, &grouping);
        let gi = match index.get(&key.addr()) {
            Some(&i) => i,
            None => {
                index.insert(key.addr(), groups.len());
                let mut g = Group {
                    labels: key,
                    acc: Acc::first(op, s.v),
                    heap: Vec::new(),
                };
                if matches!(op, T_TOPK | T_BOTTOMK | T_QUANTILE) {
                    g.heap.push(Elem {
                        labels: labels.clone(),
                        v: s.v,
                    });
                }
                groups.push(g);
                continue;
            }
        };
        let g = &mut groups[gi];
        if g.acc.add(op, s.v) {
            continue;
        }
        match op {
            T_TOPK => {
                let e = Elem { labels, v: s.v };
                let top = g.heap[0].v;
                if g.heap.len() < k {
                    heap_push(&mut g.heap, e, less_topk);
                } else if top < s.v || (top.is_nan() && !s.v.is_nan()) {
                    g.heap[0] = e;
                    if k > 1 {
                        heap_fix(&mut g.heap, 0, less_topk);
                    }
                }
            }
            T_BOTTOMK => {
                let e = Elem { labels, v: s.v };
                let top = g.heap[0].v;
                if g.heap.len() < k {
                    heap_push(&mut g.heap, e, less_bottomk);
                } else if top > s.v || (top.is_nan() && !s.v.is_nan()) {
                    g.heap[0] = e;
                    if k > 1 {
                        heap_fix(&mut g.heap, 0, less_bottomk);
                    }
                }
            }
            T_QUANTILE => g.heap.push(Elem { labels, v: s.v }),
            _ => return Err(PromError::exec(format!("unsupported aggregation {}", a.op))),
        }
    }
    ev.group_keys.insert(node, keys);
    let mut out = Vec::with_capacity(groups.len());
    for mut g in groups {
        let v = match op {
            T_QUANTILE => quantile(param_f, g.heap.iter().map(|e| e.v).collect()),
            T_TOPK | T_BOTTOMK => {
                // Go sorts the heap with the reversed heap order.
                let less = if op == T_TOPK {
                    less_topk
                } else {
                    less_bottomk
                };
                go_sort(&mut g.heap, |a, b| less(b, a));
                out.extend(g.heap);
                continue;
            }
            _ => g.acc.value(op),
        };
        out.push(Elem {
            labels: g.labels,
            v,
        });
    }
    Ok(Value::Vector(out))
}

/// The labels of the group an element with `labels` belongs to.
fn group_labels(labels: &Labels, without: bool, grouping: &[String]) -> Labels {
    let listed = |k: &str| grouping.iter().any(|g| g == k);
    if without {
        Labels::from_pairs(
            labels
                .iter()
                .filter(|(k, _)| !listed(k) && *k != METRIC_NAME_LABEL),
        )
    } else {
        Labels::from_pairs(labels.iter().filter(|(k, _)| listed(k)))
    }
}

/// `topk`'s heap order (Go's `vectorByValueHeap`): smallest on top, NaN below everything.
fn less_topk(a: &Elem, b: &Elem) -> bool {
    a.v.is_nan() || a.v < b.v
}

/// `bottomk`'s heap order (Go's `vectorByReverseValueHeap`).
fn less_bottomk(a: &Elem, b: &Elem) -> bool {
    a.v.is_nan() || a.v > b.v
}

fn heap_up(h: &mut [Elem], mut j: usize, less: fn(&Elem, &Elem) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

fn heap_down(h: &mut [Elem], i0: usize, less: fn(&Elem, &Elem) -> bool) -> bool {
    let n = h.len();
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        if j1 + 1 < n && less(&h[j1 + 1], &h[j1]) {
            j = j1 + 1;
        }
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    i > i0
}

fn heap_push(h: &mut Vec<Elem>, e: Elem, less: fn(&Elem, &Elem) -> bool) {
    h.push(e);
    let last = h.len() - 1;
    heap_up(h, last, less);
}

fn heap_fix(h: &mut [Elem], i: usize, less: fn(&Elem, &Elem) -> bool) {
    if !heap_down(h, i, less) {
        heap_up(h, i, less);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elems(values: &[f64]) -> Vec<Elem> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| Elem {
                labels: Labels::from_pairs([("i", i.to_string())]),
                v,
            })
            .collect()
    }

    /// Replays Prometheus' `topk`: the first element starts the heap, the rest are pushed
    /// until it holds `k`, then replace the top when larger.
    fn topk(k: usize, values: &[f64]) -> Vec<String> {
        let mut input = elems(values).into_iter();
        let mut heap = vec![input.next().expect("one element")];
        for e in input {
            let top = heap[0].v;
            if heap.len() < k {
                heap_push(&mut heap, e, less_topk);
            } else if top < e.v || (top.is_nan() && !e.v.is_nan()) {
                heap[0] = e;
                if k > 1 {
                    heap_fix(&mut heap, 0, less_topk);
                }
            }
        }
        go_sort(&mut heap, |a, b| less_topk(b, a));
        heap.iter()
            .map(|e| format!("{}={}", e.labels.get("i").unwrap_or(""), e.v))
            .collect()
    }

    #[test]
    fn topk_keeps_the_elements_go_heap_keeps() {
        let check = |k: usize, values: &[f64], want: &[&str]| {
            assert_eq!(topk(k, values), want, "topk({k}, {values:?})");
        };
        // Ties keep the heap's order: the later 3 replaced the top and stays first.
        check(2, &[3.0, 1.0, 3.0, 2.0, 3.0], &["2=3", "0=3"]);
        check(3, &[1.0, 5.0, 2.0, 4.0], &["1=5", "3=4", "2=2"]);
        check(2, &[f64::NAN, 1.0, f64::NAN], &["1=1", "0=NaN"]);
        check(1, &[1.0, 1.0, 1.0], &["0=1"]);
    }

    #[test]
    fn groups_by_and_without() {
        let labels = Labels::from_pairs([("__name__", "m"), ("a", "1"), ("b", "2")]);
        let check = |without: bool, grouping: &[&str], want: &[(&str, &str)]| {
            let grouping: Vec<String> = grouping.iter().map(|s| s.to_string()).collect();
            assert_eq!(
                group_labels(&labels, without, &grouping),
                Labels::from_pairs(want.iter().copied())
            );
        };
        check(false, &["a"], &[("a", "1")]);
        check(false, &["a", "missing"], &[("a", "1")]);
        check(false, &["__name__"], &[("__name__", "m")]);
        check(false, &[], &[]);
        check(true, &["a"], &[("b", "2")]);
        check(true, &[], &[("a", "1"), ("b", "2")]);
    }
}
