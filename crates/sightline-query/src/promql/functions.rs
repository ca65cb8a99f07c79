//! PromQL functions over instant vectors and scalars, and the dispatch to the range-vector
//! functions in `functions/range.rs` and the histogram functions in
//! `functions/histogram.rs`.
//!
//! As in Prometheus 2.42, every function that computes a new value drops the metric name;
//! `label_replace`, `label_join`, `sort` and `sort_desc` (and `last_over_time`) keep it.
//! A function whose output holds the same labels twice fails with "vector cannot contain
//! metrics with the same labelset".

mod histogram;
mod range;

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{Call, Expr};
use sightline_model::Labels;
use sightline_model::labels::is_valid_label_name;

use super::error::PromError;
use super::eval::{Elem, Evaluator, Value, check_unique, drop_name, unwrap_parens};
use super::gomath::{self, go_max, go_min, go_sort, log2, log10};

pub(crate) use histogram::quantile;
pub(crate) use range::{RangeFn, apply as apply_range_function, range_fn};
pub(crate) use range::{avg_over_time_each, is_range_function};

pub(crate) fn call(ev: &mut Evaluator<'_>, c: &Call, t: i64) -> Result<Value, PromError> {
    let args = &c.args.args;
    let name = c.func.name;
    if range::is_range_function(name) {
        return range::call(ev, c, t);
    }
    let out = match name {
        "time" => return Ok(Value::Scalar(t as f64 / 1000.0)),
        "pi" => return Ok(Value::Scalar(std::f64::consts::PI)),
        "scalar" => {
            let v = ev.eval_vector(&args[0], t)?;
            return Ok(Value::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }));
        }
        "vector" => vec![Elem {
            labels: Labels::default(),
            v: ev.eval_scalar(&args[0], t)?,
        }],
        "timestamp" => timestamp(ev, &args[0], t)?,
        "absent" => {
            if ev.eval_vector(&args[0], t)?.is_empty() {
                vec![Elem {
                    labels: absent_labels(&args[0]),
                    v: 1.0,
                }]
            } else {
                Vec::new()
            }
        }
        "sort" | "sort_desc" => {
            let mut v = ev.eval_vector(&args[0], t)?;
            if name == "sort" {
                go_sort(&mut v, |a, b| b.v.is_nan() || a.v < b.v);
            } else {
                go_sort(&mut v, |a, b| b.v.is_nan() || a.v > b.v);
            }
            v
        }
        "label_replace" => label_replace(ev, args, t)?,
        "label_join" => label_join(ev, args, t)?,
        "round" => {
            let v = ev.eval_vector(&args[0], t)?;
            let to_nearest = match args.get(1) {
                Some(a) => ev.eval_scalar(a, t)?,
                None => 1.0,
            };
            let inverse = 1.0 / to_nearest;
            map_values(v, |x| (x * inverse + 0.5).floor() / inverse)
        }
        "clamp" => {
            let v = ev.eval_vector(&args[0], t)?;
            let (min, max) = (ev.eval_scalar(&args[1], t)?, ev.eval_scalar(&args[2], t)?);
            if max < min {
                Vec::new()
            } else {
                map_values(v, |x| go_max(min, go_min(max, x)))
            }
        }
        "clamp_min" | "clamp_max" => {
            let v = ev.eval_vector(&args[0], t)?;
            let bound = ev.eval_scalar(&args[1], t)?;
            if name == "clamp_min" {
                map_values(v, |x| go_max(bound, x))
            } else {
                map_values(v, |x| go_min(bound, x))
            }
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => date_function(ev, name, args.first().map(|a| &**a), t)?,
        "histogram_quantile" => {
            let q = ev.eval_scalar(&args[0], t)?;
            let v = ev.eval_vector(&args[1], t)?;
            histogram::histogram_quantile(q, v)
        }
        // Native-histogram functions: float samples are not histograms, so nothing results.
        "histogram_count" | "histogram_sum" | "histogram_fraction" => {
            for a in args {
                ev.eval(a, t)?;
            }
            Vec::new()
        }
        _ => {
            let f = math_function(name).ok_or_else(|| {
                PromError::Parse(format!(
                    "parse error: unknown function with name \"{name}\""
                ))
            })?;
            map_values(ev.eval_vector(&args[0], t)?, f)
        }
    };
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn map_values(v: Vec<Elem>, f: impl Fn(f64) -> f64) -> Vec<Elem> {
    v.into_iter()
        .map(|e| Elem {
            labels: drop_name(&e.labels),
            v: f(e.v),
        })
        .collect()
}

fn math_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => gomath::exp,
        "sqrt" => f64::sqrt,
        "ln" => gomath::log,
        "log2" => log2,
        "log10" => log10,
        "sgn" => |x: f64| {
            if x < 0.0 {
                -1.0
            } else if x > 0.0 {
                1.0
            } else {
                x
            }
        },
        "deg" => |x: f64| x * 180.0 / std::f64::consts::PI,
        "rad" => |x: f64| x * std::f64::consts::PI / 180.0,
        "acos" => gomath::acos,
        "acosh" => gomath::acosh,
        "asin" => gomath::asin,
        "asinh" => gomath::asinh,
        "atan" => gomath::atan,
        "atanh" => gomath::atanh,
        "cos" => gomath::cos,
        "cosh" => gomath::cosh,
        "sin" => gomath::sin,
        "sinh" => gomath::sinh,
        "tan" => gomath::tan,
        "tanh" => gomath::tanh,
        _ => return None,
    })
}

/// `timestamp(v)`: the time of each sample, which for a plain selector is the sample's own
/// timestamp and otherwise the evaluation time (Prometheus 2.42 special-cases selectors).
fn timestamp(ev: &mut Evaluator<'_>, arg: &Expr, t: i64) -> Result<Vec<Elem>, PromError> {
    if let Expr::VectorSelector(vs) = unwrap_parens(arg) {
        return Ok(ev
            .instant_selector(vs, t)?
            .into_iter()
            .map(|(labels, _, ts)| Elem {
                labels: drop_name(&labels),
                v: ts as f64 / 1000.0,
            })
            .collect());
    }
    Ok(map_values(ev.eval_vector(arg, t)?, |_| t as f64 / 1000.0))
}

/// The labels `absent`/`absent_over_time` give their one sample: the selector's equality
/// matchers, except the metric name and any label matched more than once or otherwise.
pub(crate) fn absent_labels(arg: &Expr) -> Labels {
    let vs = match arg {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::default(),
    };
    let mut out = Labels::default();
    let mut drop = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == sightline_model::METRIC_NAME_LABEL {
            continue;
        }
        if matches!(m.op, PMatchOp::Equal) && out.get(&m.name).is_none() {
            out.set(&m.name, &m.value);
        } else {
            drop.push(m.name.as_str());
        }
    }
    for name in drop {
        out.remove(name);
    }
    out
}

fn string_arg(e: &Expr) -> Result<&str, PromError> {
    match unwrap_parens(e) {
        Expr::StringLiteral(s) => Ok(&s.val),
        _ => Err(PromError::exec("expected a string literal")),
    }
}

fn label_replace(
    ev: &mut Evaluator<'_>,
    args: &[Box<Expr>],
    t: i64,
) -> Result<Vec<Elem>, PromError> {
    let dst = string_arg(&args[1])?;
    let repl = string_arg(&args[2])?;
    let src = string_arg(&args[3])?;
    let pattern = string_arg(&args[4])?;
    let re = ev.regex(pattern).map_err(|_| {
        PromError::exec(format!(
            "invalid regular expression in label_replace(): {pattern}"
        ))
    })?;
    if !is_valid_label_name(dst) {
        return Err(PromError::exec(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let v = ev.eval_vector(&args[0], t)?;
    Ok(v.into_iter()
        .map(|e| {
            let value = e.labels.get(src).unwrap_or("");
            let Some(caps) = re.captures(value) else {
                return e;
            };
            let mut res = String::new();
            caps.expand(repl, &mut res);
            let mut l = e.labels.clone();
            l.set(dst, &res);
            Elem { labels: l, v: e.v }
        })
        .collect())
}

fn label_join(ev: &mut Evaluator<'_>, args: &[Box<Expr>], t: i64) -> Result<Vec<Elem>, PromError> {
    let dst = string_arg(&args[1])?;
    let sep = string_arg(&args[2])?;
    let mut srcs = Vec::new();
    for a in &args[3..] {
        let src = string_arg(a)?;
        if !is_valid_label_name(src) {
            return Err(PromError::exec(format!(
                "invalid source label name in label_join(): {src}"
            )));
        }
        srcs.push(src);
    }
    if !is_valid_label_name(dst) {
        return Err(PromError::exec(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let v = ev.eval_vector(&args[0], t)?;
    Ok(v.into_iter()
        .map(|e| {
            let joined: Vec<&str> = srcs.iter().map(|s| e.labels.get(s).unwrap_or("")).collect();
            let mut l = e.labels.clone();
            l.set(dst, &joined.join(sep));
            Elem { labels: l, v: e.v }
        })
        .collect())
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Seconds from Go's absolute zero (year -292277022399) to `unix_secs`, wrapping as Go's
/// `time.Unix(…).UTC()` does for times out of its range (e.g. `int64(NaN)`).
fn go_abs_seconds(unix_secs: i64) -> u64 {
    const UNIX_TO_INTERNAL: i64 = (1969 * 365 + 1969 / 4 - 1969 / 100 + 1969 / 400) * 86_400;
    const INTERNAL_TO_ABSOLUTE: i64 = 9_223_371_966_579_724_800;
    unix_secs
        .wrapping_add(UNIX_TO_INTERNAL)
        .wrapping_add(INTERNAL_TO_ABSOLUTE) as u64
}

/// Go's `absDate`: (year, month 1..=12, day 1..=31, day of year 0-based).
fn go_abs_date(abs: u64) -> (i64, i64, i64, i64) {
    const DAYS_PER_400_YEARS: u64 = 365 * 400 + 97;
    const DAYS_PER_100_YEARS: u64 = 365 * 100 + 24;
    const DAYS_PER_4_YEARS: u64 = 365 * 4 + 1;
    const ABSOLUTE_ZERO_YEAR: i64 = -292_277_022_399;
    let mut d = abs / 86_400;
    let mut n = d / DAYS_PER_400_YEARS;
    let mut y = 400 * n;
    d -= DAYS_PER_400_YEARS * n;
    n = d / DAYS_PER_100_YEARS;
    n -= n >> 2;
    y += 100 * n;
    d -= DAYS_PER_100_YEARS * n;
    n = d / DAYS_PER_4_YEARS;
    y += 4 * n;
    d -= DAYS_PER_4_YEARS * n;
    n = d / 365;
    n -= n >> 2;
    y += n;
    d -= 365 * n;
    let year = (y as i64).wrapping_add(ABSOLUTE_ZERO_YEAR);
    let yday = d as i64;
    let mut day = yday;
    if is_leap(year) {
        if day == 31 + 29 - 1 {
            return (year, 2, 29, yday);
        }
        if day > 31 + 29 - 1 {
            day -= 1;
        }
    }
    let mut month = 1;
    while day >= days_in_month(2001, month) {
        day -= days_in_month(2001, month);
        month += 1;
    }
    (year, month, day + 1, yday)
}

/// A date part of the UTC time `secs` seconds after the epoch, as Go's `time` computes it.
pub(crate) fn date_part(name: &str, secs: i64) -> f64 {
    let abs = go_abs_seconds(secs);
    let (y, m, d, yday) = go_abs_date(abs);
    let v = match name {
        "day_of_month" => d,
        // The absolute zero is a Monday.
        "day_of_week" => ((abs + 86_400) % 604_800 / 86_400) as i64,
        "day_of_year" => yday + 1,
        "days_in_month" => days_in_month(y, m),
        "hour" => (abs % 86_400 / 3600) as i64,
        "minute" => (abs % 3600 / 60) as i64,
        "month" => m,
        _ => y,
    };
    v as f64
}

/// Go's `int64(f)` on amd64: truncation, and the minimum for what does not fit.
fn go_int64(f: f64) -> i64 {
    if f.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

fn date_function(
    ev: &mut Evaluator<'_>,
    name: &str,
    arg: Option<&Expr>,
    t: i64,
) -> Result<Vec<Elem>, PromError> {
    match arg {
        None => Ok(vec![Elem {
            labels: Labels::default(),
            v: date_part(name, t / 1000),
        }]),
        Some(a) => Ok(map_values(ev.eval_vector(a, t)?, |x| {
            date_part(name, go_int64(x))
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_parts_match_go_time() {
        let check = |name: &str, secs: i64, want: f64| {
            assert_eq!(date_part(name, secs), want, "{name}({secs})")
        };
        check("year", 0, 1970.0);
        check("day_of_week", 0, 4.0);
        check("year", 951_782_400, 2000.0); // 2000-02-29
        check("month", 951_782_400, 2.0);
        check("day_of_month", 951_782_400, 29.0);
        check("days_in_month", 951_782_400, 29.0);
        check("day_of_year", 951_782_400, 60.0);
        check("days_in_month", 4_107_456_000, 28.0); // 2100-02-28
        check("hour", 1_700_000_000, 22.0); // 2023-11-14T22:13:20Z
        check("minute", 1_700_000_000, 13.0);
        check("day_of_week", 1_700_000_000, 2.0);
        check("day_of_year", 1_703_980_800, 365.0); // 2023-12-31
        check("year", -1, 1969.0);
        check("day_of_week", -86_400, 3.0);
        check("hour", -1, 23.0);
        // Out of Go's range, dates wrap as Prometheus reports them.
        check("day_of_month", i64::MIN, 4.0);
    }
}
