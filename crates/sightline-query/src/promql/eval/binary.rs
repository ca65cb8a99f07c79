//! Binary operators: arithmetic, comparisons (filtering or `bool`), `atan2`, and the set
//! operators, between scalars and vectors, with `on`/`ignoring` and `group_left`/
//! `group_right` vector matching, as Prometheus 2.42 does them.
//!
//! Rules kept here: arithmetic drops the metric name (so does `bool`); a filtering
//! comparison keeps the left value, also when the scalar is on the left; one-to-one results
//! keep only the `on` labels (or lose the `ignoring` ones); `group_x(labels)` copies labels
//! from the "one" side; the "one" side must be unique per match group and one-to-one
//! matching must not match twice, with Prometheus' error messages.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB, TokenId,
};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use sightline_model::{Labels, METRIC_NAME_LABEL};

use super::{Elem, Evaluator, Value, check_unique, drop_name};
use crate::promql::error::PromError;
use crate::promql::gomath::{atan2, go_pow};

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// Whether the operator's result loses the metric name (Prometheus 2.42: arithmetic but
/// not `atan2`).
fn drops_metric_name(op: TokenId) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_MOD | T_POW)
}

/// Applies an arithmetic or comparison operator: the value and whether to keep it.
pub(crate) fn elem_binop(op: TokenId, l: f64, r: f64) -> (f64, bool) {
    match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_MOD => (l % r, true),
        T_POW => (go_pow(l, r), true),
        T_ATAN2 => (atan2(l, r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => (f64::NAN, false),
    }
}

fn scalar_binop(op: TokenId, l: f64, r: f64) -> f64 {
    let (v, keep) = elem_binop(op, l, r);
    if is_comparison(op) {
        return if keep { 1.0 } else { 0.0 };
    }
    v
}

/// How two vectors match.
struct Matching<'m> {
    on: bool,
    names: HashSet<&'m str>,
    card: &'m VectorMatchCardinality,
    include: Vec<&'m str>,
}

impl Matching<'_> {
    /// The labels that decide which elements match, as Prometheus' `MatchLabels`.
    fn match_labels(&self, labels: &Labels) -> Labels {
        Labels::from_pairs(labels.iter().filter(|(k, _)| {
            let listed = self.names.contains(k);
            if self.on {
                listed
            } else {
                !listed && *k != METRIC_NAME_LABEL
            }
        }))
    }

    fn signature(&self, labels: &Labels) -> String {
        let mut sig = String::new();
        for (k, v) in self.match_labels(labels).iter() {
            sig.push_str(k);
            sig.push('\u{ff}');
            sig.push_str(v);
            sig.push('\u{ff}');
        }
        sig
    }
}

pub(super) fn eval(ev: &mut Evaluator<'_>, b: &BinaryExpr, t: i64) -> Result<Value, PromError> {
    let op = b.op.id();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs, t)?;
    let rhs = ev.eval(&b.rhs, t)?;
    let out = match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => return Ok(Value::Scalar(scalar_binop(op, l, r))),
        (Value::Vector(l), Value::Scalar(r)) => vector_scalar(op, l, r, false, return_bool),
        (Value::Scalar(l), Value::Vector(r)) => vector_scalar(op, r, l, true, return_bool),
        (Value::Vector(l), Value::Vector(r)) => {
            let default_card = VectorMatchCardinality::OneToOne;
            let (on, names) = match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
                Some(LabelModifier::Include(ls)) => (true, &ls.labels[..]),
                Some(LabelModifier::Exclude(ls)) => (false, &ls.labels[..]),
                None => (false, &[][..]),
            };
            let card = b.modifier.as_ref().map_or(&default_card, |m| &m.card);
            let matching = Matching {
                on,
                names: names.iter().map(String::as_str).collect(),
                card,
                include: card
                    .labels()
                    .map(|ls| ls.labels.iter().map(String::as_str).collect())
                    .unwrap_or_default(),
            };
            match op {
                T_LAND => set_and(l, r, &matching, false),
                T_LUNLESS => set_and(l, r, &matching, true),
                T_LOR => set_or(l, r, &matching),
                _ => vector_binop(op, l, r, &matching, return_bool)?,
            }
        }
        _ => {
            return Err(PromError::exec(
                "binary operator on a range vector or string",
            ));
        }
    };
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn vector_scalar(op: TokenId, v: Vec<Elem>, s: f64, swap: bool, return_bool: bool) -> Vec<Elem> {
    let mut out = Vec::with_capacity(v.len());
    for e in v {
        let (l, r) = if swap { (s, e.v) } else { (e.v, s) };
        let (mut value, mut keep) = elem_binop(op, l, r);
        if is_comparison(op) && swap {
            value = r;
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            let labels = if drops_metric_name(op) || return_bool {
                drop_name(&e.labels)
            } else {
                e.labels
            };
            out.push(Elem { labels, v: value });
        }
    }
    out
}

fn set_and(l: Vec<Elem>, r: Vec<Elem>, m: &Matching<'_>, unless: bool) -> Vec<Elem> {
    if l.is_empty() || (r.is_empty() && !unless) {
        return Vec::new();
    }
    let right: HashSet<String> = r.iter().map(|e| m.signature(&e.labels)).collect();
    l.into_iter()
        .filter(|e| right.contains(&m.signature(&e.labels)) != unless)
        .collect()
}

fn set_or(l: Vec<Elem>, r: Vec<Elem>, m: &Matching<'_>) -> Vec<Elem> {
    if l.is_empty() {
        return r;
    }
    if r.is_empty() {
        return l;
    }
    let left: HashSet<String> = l.iter().map(|e| m.signature(&e.labels)).collect();
    let mut out = l;
    out.extend(
        r.into_iter()
            .filter(|e| !left.contains(&m.signature(&e.labels))),
    );
    out
}

fn vector_binop(
    op: TokenId,
    lhs: Vec<Elem>,
    rhs: Vec<Elem>,
    m: &Matching<'_>,
    return_bool: bool,
) -> Result<Vec<Elem>, PromError> {
    let one_to_many = matches!(m.card, VectorMatchCardinality::OneToMany(_));
    let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne);
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let mut one_by_sig: HashMap<String, &Elem> = HashMap::with_capacity(one.len());
    for e in &one {
        let sig = m.signature(&e.labels);
        if let Some(dup) = one_by_sig.get(&sig) {
            return Err(PromError::exec(format!(
                "found duplicate series for the match group {} on the {} hand-side of the \
                 operation: [{}, {}];many-to-many matching not allowed: matching labels must be \
                 unique on one side",
                m.match_labels(&e.labels),
                if one_to_many { "left" } else { "right" },
                e.labels,
                dup.labels
            )));
        }
        one_by_sig.insert(sig, e);
    }
    let mut matched: HashMap<String, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for e in &many {
        let sig = m.signature(&e.labels);
        let Some(other) = one_by_sig.get(&sig) else {
            continue;
        };
        let (vl, vr) = if one_to_many {
            (other.v, e.v)
        } else {
            (e.v, other.v)
        };
        let (mut value, keep) = elem_binop(op, vl, vr);
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut labels = result_labels(&e.labels, &other.labels, op, m);
        if return_bool {
            labels = drop_name(&labels);
        }
        match matched.get_mut(&sig) {
            Some(_) if one_to_one => {
                return Err(PromError::exec(
                    "multiple matches for labels: many-to-one matching must be explicit \
                     (group_left/group_right)",
                ));
            }
            Some(seen) => {
                if !seen.insert(labels.clone()) {
                    return Err(PromError::exec(
                        "multiple matches for matching labels; many-to-one matching must be \
                         explicit (group_left/group_right)",
                    ));
                }
            }
            None => {
                let mut seen = HashSet::new();
                if !one_to_one {
                    seen.insert(labels.clone());
                }
                matched.insert(sig, seen);
            }
        }
        out.push(Elem { labels, v: value });
    }
    Ok(out)
}

/// Prometheus' `resultMetric`: the labels of a matched pair's result.
fn result_labels(many: &Labels, one: &Labels, op: TokenId, m: &Matching<'_>) -> Labels {
    let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne);
    if !drops_metric_name(op) && m.include.is_empty() && !one_to_one {
        return many.clone();
    }
    let mut l: Labels = Labels::from_pairs(many.iter().filter(|(k, _)| {
        if drops_metric_name(op) && *k == METRIC_NAME_LABEL {
            return false;
        }
        if one_to_one {
            return m.names.contains(k) == m.on;
        }
        true
    }));
    for name in &m.include {
        match one.get(name) {
            Some(v) => l.set(name, v),
            None => {
                l.remove(name);
            }
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_operators_follow_go() {
        let check = |op: TokenId, l: f64, r: f64, want: (f64, bool)| {
            let got = elem_binop(op, l, r);
            let same = got.1 == want.1
                && (got.0.to_bits() == want.0.to_bits() || (got.0.is_nan() && want.0.is_nan()));
            assert!(same, "{l} op{op} {r}: {got:?}, want {want:?}");
        };
        check(T_DIV, 1.0, 0.0, (f64::INFINITY, true));
        check(T_DIV, -1.0, 0.0, (f64::NEG_INFINITY, true));
        check(T_DIV, 0.0, 0.0, (f64::NAN, true));
        check(T_MOD, -7.0, 3.0, (-1.0, true));
        check(T_MOD, 5.0, 0.0, (f64::NAN, true));
        check(T_MOD, 3.0, f64::INFINITY, (3.0, true));
        check(T_POW, 2.0, 10.0, (1024.0, true));
        check(T_EQLC, 2.0, 2.0, (2.0, true));
        check(T_NEQ, f64::NAN, f64::NAN, (f64::NAN, true));
        check(T_EQLC, f64::NAN, f64::NAN, (f64::NAN, false));
        check(T_GTR, 1.0, 2.0, (1.0, false));
        check(T_LTE, 2.0, 2.0, (2.0, true));
        assert_eq!(scalar_binop(T_GTE, 1.0, 2.0), 0.0);
        assert_eq!(scalar_binop(T_LSS, 1.0, 2.0), 1.0);
        assert!(drops_metric_name(T_POW) && !drops_metric_name(T_ATAN2));
        assert!(!drops_metric_name(T_GTR) && !drops_metric_name(T_LAND));
    }

    #[test]
    fn result_labels_follow_matching() {
        let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
        let many = l(&[("__name__", "req"), ("job", "a"), ("path", "/x")]);
        let one = l(&[("__name__", "info"), ("job", "a"), ("version", "2")]);
        let check = |on: bool, names: &[&str], card: VectorMatchCardinality, op, want: Labels| {
            let m = Matching {
                on,
                names: names.iter().copied().collect(),
                card: &card,
                include: card
                    .labels()
                    .map(|ls| ls.labels.iter().map(String::as_str).collect())
                    .unwrap_or_default(),
            };
            assert_eq!(result_labels(&many, &one, op, &m), want);
        };
        use VectorMatchCardinality::*;
        check(true, &["job"], OneToOne, T_ADD, l(&[("job", "a")]));
        check(true, &["job"], OneToOne, T_GTR, l(&[("job", "a")]));
        check(
            false,
            &["path"],
            OneToOne,
            T_GTR,
            l(&[("__name__", "req"), ("job", "a")]),
        );
        check(
            true,
            &["job"],
            ManyToOne(promql_parser::label::Labels::new(vec!["version"])),
            T_MUL,
            l(&[("job", "a"), ("path", "/x"), ("version", "2")]),
        );
        check(
            true,
            &["job"],
            ManyToOne(promql_parser::label::Labels::new(vec!["path"])),
            T_GTR,
            l(&[("__name__", "req"), ("job", "a")]),
        );
    }
}
