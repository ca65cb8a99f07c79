//! Before evaluation: check the query uses only what Prometheus 2.42 knows, find every
//! selector, work out the time range each one needs, and fetch its series once.
//!
//! Invariant: after [`fetch`], every selector node of the expression has an entry in
//! [`Fetched`] (keyed by the node's address, which is stable because the expression is not
//! changed while it is evaluated), its series sorted by labels and its samples restricted to
//! what some step can read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use promql_parser::label::{MatchOp as PMatchOp, Matcher};
use promql_parser::parser::token::{T_LIMIT_RATIO, T_LIMITK};
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};
use sightline_model::any_stale;
use sightline_model::{
    LabelMatcher, Labels, METRIC_NAME_LABEL, MatchOp, Sample, SeriesSelection, TenantId,
};

use super::error::PromError;
use super::eval::drop_name;
use super::source::SeriesSource;

/// Functions of Prometheus 2.42 (the version the compatibility tests run against); the
/// parser knows newer ones, which 2.42 answers with "unknown function".
const FUNCTIONS_2_42: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// One selector's series: labels shared by `Arc` so steps can hand them out cheaply.
#[derive(Debug)]
pub(crate) struct Series {
    pub labels: Labels,
    /// `labels` without the metric name, which most functions return, made once.
    pub labels_without_name: Labels,
    /// Shared, so a range selector's window is a slice of it rather than a copy per step.
    pub samples: Arc<Vec<Sample>>,
    /// Whether any sample is a staleness marker (windows of the others need no filtering).
    pub has_stale: bool,
}

/// One selector's series, sorted by labels.
#[derive(Debug)]
pub(crate) struct Selected {
    pub series: Vec<Series>,
    /// Whether the series stay distinct without their metric names, so a function that
    /// drops names cannot make two of them collide.
    pub distinct_without_name: bool,
}

/// The series of every selector, keyed by the selector node's address.
pub(crate) type Fetched = HashMap<usize, Selected>;

pub(crate) fn node_key(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

/// The times of a query: evaluation steps run from `start_ms` to `end_ms`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Times {
    pub start_ms: i64,
    pub end_ms: i64,
    /// Between steps of a range query; 0 for an instant query.
    pub step_ms: i64,
    pub lookback_ms: i64,
    pub subquery_step_ms: i64,
}

pub(crate) fn duration_ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

/// The fixed evaluation time an `@` modifier sets, if any.
pub(crate) fn at_ms(at: &Option<AtModifier>, times: &Times) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(times.start_ms),
        Some(AtModifier::End) => Some(times.end_ms),
        Some(AtModifier::At(t)) => Some(match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => duration_ms(&d),
            Err(e) => -duration_ms(&e.duration()),
        }),
    }
}

/// Rejects what the parser accepts but Prometheus 2.42 does not.
pub(crate) fn check_supported(text: &str, expr: &Expr) -> Result<(), PromError> {
    match expr {
        Expr::Aggregate(a) => {
            let id = a.op.id();
            if id == T_LIMITK || id == T_LIMIT_RATIO {
                // 2.42's lexer does not know them, so it reads a call of an unknown function.
                return Err(unknown_function(text, &a.op.to_string()));
            }
            if let Some(p) = &a.param {
                check_supported(text, p)?;
            }
            check_supported(text, &a.expr)
        }
        Expr::Unary(u) => check_supported(text, &u.expr),
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier
                && (m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
            {
                return Err(PromError::Parse(
                    "parse error: fill modifiers are not supported".into(),
                ));
            }
            check_supported(text, &b.lhs)?;
            check_supported(text, &b.rhs)
        }
        Expr::Paren(p) => check_supported(text, &p.expr),
        Expr::Subquery(s) => check_supported(text, &s.expr),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(vs) => check_selector(vs),
        Expr::MatrixSelector(ms) => check_selector(&ms.vs),
        Expr::Call(c) => {
            if !FUNCTIONS_2_42.contains(&c.func.name) {
                return Err(unknown_function(text, c.func.name));
            }
            c.args
                .args
                .iter()
                .try_for_each(|a| check_supported(text, a))
        }
        Expr::Extension(_) => Err(PromError::Parse(
            "parse error: extension expressions are not supported".into(),
        )),
    }
}

/// Prometheus' error for a call of a function it does not know, with the call's position.
pub(crate) fn unknown_function(text: &str, name: &str) -> PromError {
    let at = text
        .match_indices(name)
        .find(|(i, _)| text[i + name.len()..].trim_start().starts_with('('))
        .map_or(0, |(i, _)| i);
    let line = text[..at].matches('\n').count() + 1;
    let col = text[..at].rfind('\n').map_or(at, |nl| at - nl - 1) + 1;
    PromError::Parse(format!(
        "{line}:{col}: parse error: unknown function with name \"{name}\""
    ))
}

fn check_selector(vs: &VectorSelector) -> Result<(), PromError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(PromError::Parse(
            "parse error: \"or\" inside a selector is not supported".into(),
        ));
    }
    Ok(())
}

/// Calls `f` on every vector selector of `expr` (those inside range selectors too).
pub(crate) fn visit_selectors<'e>(
    expr: &'e Expr,
    f: &mut dyn FnMut(&'e VectorSelector) -> Result<(), PromError>,
) -> Result<(), PromError> {
    match expr {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                visit_selectors(p, f)?;
            }
            visit_selectors(&a.expr, f)
        }
        Expr::Unary(u) => visit_selectors(&u.expr, f),
        Expr::Binary(b) => {
            visit_selectors(&b.lhs, f)?;
            visit_selectors(&b.rhs, f)
        }
        Expr::Paren(p) => visit_selectors(&p.expr, f),
        Expr::Subquery(s) => visit_selectors(&s.expr, f),
        Expr::VectorSelector(vs) => f(vs),
        Expr::MatrixSelector(ms) => f(&ms.vs),
        Expr::Call(c) => c.args.args.iter().try_for_each(|a| visit_selectors(a, f)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
    }
}

/// The matchers of a selector in the model's terms, the metric name included.
pub(crate) fn selector_matchers(vs: &VectorSelector) -> Result<Vec<LabelMatcher>, PromError> {
    let mut out = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        out.push(matcher(METRIC_NAME_LABEL, MatchOp::Eq, name)?);
    }
    for m in &vs.matchers.matchers {
        out.push(convert_matcher(m)?);
    }
    Ok(out)
}

fn convert_matcher(m: &Matcher) -> Result<LabelMatcher, PromError> {
    let op = match m.op {
        PMatchOp::Equal => MatchOp::Eq,
        PMatchOp::NotEqual => MatchOp::Neq,
        PMatchOp::Re(_) => MatchOp::Re,
        PMatchOp::NotRe(_) => MatchOp::Nre,
    };
    matcher(&m.name, op, &m.value)
}

fn matcher(name: &str, op: MatchOp, value: &str) -> Result<LabelMatcher, PromError> {
    LabelMatcher::new(name, op, value)
        .map_err(|e| PromError::Parse(format!("parse error: invalid regular expression: {e}")))
}

/// A selector and the inclusive time range of samples it needs.
struct Need<'e> {
    vs: &'e VectorSelector,
    start_ms: i64,
    end_ms: i64,
}

/// Walks `expr` evaluated at times `[lo, hi]`, collecting what each selector needs.
fn collect<'e>(expr: &'e Expr, lo: i64, hi: i64, times: &Times, out: &mut Vec<Need<'e>>) {
    let shifted = |at: &Option<AtModifier>, offset: &Option<Offset>| {
        let off = offset_ms(offset);
        match at_ms(at, times) {
            Some(t) => (t - off, t - off),
            None => (lo.saturating_sub(off), hi.saturating_sub(off)),
        }
    };
    match expr {
        Expr::VectorSelector(vs) => {
            let (a, b) = shifted(&vs.at, &vs.offset);
            out.push(Need {
                vs,
                start_ms: a.saturating_sub(times.lookback_ms),
                end_ms: b,
            });
        }
        Expr::MatrixSelector(ms) => {
            let (a, b) = shifted(&ms.vs.at, &ms.vs.offset);
            out.push(Need {
                vs: &ms.vs,
                start_ms: a.saturating_sub(duration_ms(&ms.range)),
                end_ms: b,
            });
        }
        Expr::Subquery(sq) => {
            let (a, b) = shifted(&sq.at, &sq.offset);
            collect(
                &sq.expr,
                a.saturating_sub(duration_ms(&sq.range)),
                b,
                times,
                out,
            );
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                collect(p, lo, hi, times, out);
            }
            collect(&a.expr, lo, hi, times, out);
        }
        Expr::Unary(u) => collect(&u.expr, lo, hi, times, out),
        Expr::Binary(b) => {
            collect(&b.lhs, lo, hi, times, out);
            collect(&b.rhs, lo, hi, times, out);
        }
        Expr::Paren(p) => collect(&p.expr, lo, hi, times, out),
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .for_each(|a| collect(a, lo, hi, times, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Fetches the series of every selector of `expr`, one `select` per selector, counting
/// samples against `samples_max`.
pub(crate) fn fetch(
    src: &dyn SeriesSource,
    tenant: &TenantId,
    expr: &Expr,
    times: &Times,
    samples_max: usize,
) -> Result<Fetched, PromError> {
    let mut needs = Vec::new();
    collect(expr, times.start_ms, times.end_ms, times, &mut needs);
    let mut fetched = Fetched::with_capacity(needs.len());
    let mut samples_total: usize = 0;
    for need in needs {
        let sel = SeriesSelection {
            tenant: tenant.clone(),
            matchers: selector_matchers(need.vs)?,
            start_ms: need.start_ms,
            end_ms: need.end_ms,
        };
        let mut series: Vec<Series> = src
            .select(&sel)?
            .into_iter()
            .map(|s| {
                let in_range =
                    |p: &Sample| p.timestamp_ms >= need.start_ms && p.timestamp_ms <= need.end_ms;
                // A source returns the asked range already; filter only when it did not.
                // Timestamps ascend (`SeriesData`'s invariant): the ends tell.
                let within =
                    s.samples.first().is_none_or(in_range) && s.samples.last().is_none_or(in_range);
                let samples: Vec<Sample> = if within {
                    s.samples
                } else {
                    s.samples.into_iter().filter(in_range).collect()
                };
                let labels = s.labels;
                Series {
                    labels_without_name: drop_name(&labels),
                    labels,
                    has_stale: !s.stale_free && any_stale(&samples),
                    samples: Arc::new(samples),
                }
            })
            .filter(|s| !s.samples.is_empty())
            .collect();
        samples_total =
            samples_total.saturating_add(series.iter().map(|s| s.samples.len()).sum::<usize>());
        if samples_total > samples_max {
            return Err(PromError::TooManySamples("query execution".into()));
        }
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let mut without_name: Vec<&Labels> =
            series.iter().map(|s| &s.labels_without_name).collect();
        without_name.sort();
        let distinct_without_name = without_name.windows(2).all(|w| w[0] != w[1]);
        fetched.insert(
            node_key(need.vs),
            Selected {
                series,
                distinct_without_name,
            },
        );
    }
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn times() -> Times {
        Times {
            start_ms: 1000,
            end_ms: 5000,
            step_ms: 1000,
            lookback_ms: 300_000,
            subquery_step_ms: 60_000,
        }
    }

    #[test]
    fn offsets_and_at_resolve_to_milliseconds() {
        assert_eq!(offset_ms(&None), 0);
        assert_eq!(
            offset_ms(&Some(Offset::Pos(Duration::from_secs(90)))),
            90_000
        );
        assert_eq!(offset_ms(&Some(Offset::Neg(Duration::from_millis(5)))), -5);
        let t = times();
        assert_eq!(at_ms(&None, &t), None);
        assert_eq!(at_ms(&Some(AtModifier::Start), &t), Some(1000));
        assert_eq!(at_ms(&Some(AtModifier::End), &t), Some(5000));
        let before_epoch = SystemTime::UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(at_ms(&Some(AtModifier::At(before_epoch)), &t), Some(-1500));
    }

    #[test]
    fn selector_matchers_include_the_metric_name() {
        let check = |query: &str, want: &[(&str, MatchOp, &str)]| {
            let Ok(Expr::VectorSelector(vs)) = promql_parser::parser::parse(query) else {
                panic!("{query} is not a selector")
            };
            let got: Vec<(String, MatchOp, String)> = selector_matchers(&vs)
                .expect("valid matchers")
                .into_iter()
                .map(|m| (m.name, m.op, m.value))
                .collect();
            let want: Vec<(String, MatchOp, String)> = want
                .iter()
                .map(|(n, op, v)| (n.to_string(), *op, v.to_string()))
                .collect();
            assert_eq!(got, want, "{query}");
        };
        check("up", &[("__name__", MatchOp::Eq, "up")]);
        check(
            "up{job=~\"a|b\", env!=\"dev\"}",
            &[
                ("__name__", MatchOp::Eq, "up"),
                ("job", MatchOp::Re, "a|b"),
                ("env", MatchOp::Neq, "dev"),
            ],
        );
        check(
            "{__name__=~\"x.*\", i!~\"1\"}",
            &[("__name__", MatchOp::Re, "x.*"), ("i", MatchOp::Nre, "1")],
        );
    }

    #[test]
    fn positions_unknown_functions() {
        let check = |text: &str, name: &str, want: &str| {
            assert_eq!(unknown_function(text, name).to_string(), want);
        };
        check(
            "foo(x)",
            "foo",
            "1:1: parse error: unknown function with name \"foo\"",
        );
        check(
            "foo_total + foo (x)",
            "foo",
            "1:13: parse error: unknown function with name \"foo\"",
        );
    }
}
