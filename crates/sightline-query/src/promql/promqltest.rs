//! A runner for test scripts in Prometheus' `promqltest` format, over [`MemorySeries`].
//!
//! The scripts in `testdata/*.test` are our own; their expected values were produced by
//! Prometheus 2.42 with `scripts/promql_oracle.py`, which runs a script's queries against a
//! real `prometheus` and writes its answers back. Commands, separated by blank lines:
//! - `load <interval>` then indented `<series> <values>` lines: value `i` is at
//!   `i × interval`; values are numbers (`Inf`, `NaN` too), `_` (no sample), `stale` (a
//!   staleness marker), `a+bxN` / `a-bxN` (N+1 values, adding `b` each time, as
//!   Prometheus accumulates), `axN` and `_xN` (N copies);
//! - `clear` drops every series;
//! - `eval instant at <time> <expr>` then the expected result, one element a line:
//!   `<labels> <value>` for a vector (compared as a set), a bare `<value>` for a scalar,
//!   `"text"` for a string, `<labels> <v>@<seconds> …` for a range vector; `eval_ordered`
//!   compares a vector in order; nothing under the command means an empty result;
//! - `eval range from <t> to <t> step <d> <expr>` then `<labels> <values>` in the load
//!   notation, one value per step (`_` where the series has none);
//! - `eval_fail instant at …` / `eval_fail range …` expect an error, optionally followed by
//!   `expected_fail_message <text>` (the exact message) or `expected_fail_regexp <re>`.
//!
//! Values are compared exactly (NaN equals NaN), so expected values are written as the
//! shortest decimal that reads back as the answer, as Prometheus prints them.

use std::fmt::Write as _;

use promql_parser::parser::Expr;
use sightline_model::{Labels, METRIC_NAME_LABEL, Sample, TenantId, stale_nan};

use super::{MemorySeries, PromLimits, PromQuery, PromValue, evaluate, format_value};

/// Runs the script `name` from `testdata/`, panicking with every failed case; returns the
/// number of cases.
pub(super) fn run_file(name: &str) -> usize {
    let path = format!("{}/src/promql/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let (cases, failures) = run_script(&text);
    assert!(
        failures.is_empty(),
        "{name}: {} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    cases
}

/// Runs a script; returns the number of `eval` cases and a description of each failure.
pub(super) fn run_script(text: &str) -> (usize, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut src = MemorySeries::new();
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let line_no = i + 1;
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut body = Vec::new();
        while i < lines.len() && lines[i].starts_with([' ', '\t']) && !lines[i].trim().is_empty() {
            let b = lines[i].trim();
            if !b.starts_with('#') {
                body.push(b);
            }
            i += 1;
        }
        let result = if line == "clear" {
            src.clear();
            Ok(())
        } else if let Some(rest) = line.strip_prefix("load ") {
            load(&mut src, rest, &body)
        } else if line.starts_with("eval") {
            cases += 1;
            eval(&src, line, &body)
        } else {
            Err(format!("unknown command {line:?}"))
        };
        if let Err(e) = result {
            failures.push(format!("line {line_no}: {line}\n    {e}"));
        }
    }
    (cases, failures)
}

/// Parses a duration such as `5m`, `1h30m`, `90s`, `100ms`, or seconds as a number.
pub(super) fn parse_duration_ms(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1000.0).round() as i64);
    }
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut total = 0i64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            u => return Err(format!("bad duration unit {u:?} in {s:?}")),
        };
        total += n * unit;
        rest = &rest[unit_len..];
    }
    Ok(if neg { -total } else { total })
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "Inf" | "+Inf" | "inf" => Ok(f64::INFINITY),
        "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
        "NaN" | "nan" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// Expands load notation into one optional value per step.
pub(super) fn expand_values(tokens: &[&str]) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for tok in tokens {
        if *tok == "_" {
            out.push(None);
        } else if *tok == "stale" {
            out.push(Some(stale_nan()));
        } else if let Some((head, n)) = tok.rsplit_once('x')
            && let Ok(n) = n.parse::<usize>()
        {
            if head == "_" {
                out.extend(std::iter::repeat_n(None, n));
                continue;
            }
            let split = head
                .char_indices()
                .skip(1)
                .find(|(i, c)| (*c == '+' || *c == '-') && !head[..*i].ends_with(['e', 'E']))
                .map(|(i, _)| i);
            match split {
                Some(at) => {
                    let mut v = parse_value(&head[..at])?;
                    let inc = parse_value(&head[at..])?;
                    for _ in 0..=n {
                        out.push(Some(v));
                        v += inc;
                    }
                }
                None => {
                    let v = parse_value(head)?;
                    out.extend(std::iter::repeat_n(Some(v), n));
                }
            }
        } else {
            out.push(Some(parse_value(tok)?));
        }
    }
    Ok(out)
}

/// Splits `metric{a="b"} rest` into the labels and the rest.
fn split_series(line: &str) -> Result<(Labels, &str), String> {
    let end = match line.find('{') {
        Some(open) if !line[..open].contains(char::is_whitespace) => line[open..]
            .find('}')
            .map(|c| open + c + 1)
            .ok_or_else(|| format!("unclosed labels in {line:?}"))?,
        _ => line.find(char::is_whitespace).unwrap_or(line.len()),
    };
    let (series, rest) = line.split_at(end);
    Ok((parse_labels(series)?, rest.trim()))
}

fn parse_labels(series: &str) -> Result<Labels, String> {
    if series == "{}" {
        return Ok(Labels::default());
    }
    let expr = promql_parser::parser::parse(series).map_err(|e| format!("{series}: {e}"))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("{series}: not a series"));
    };
    let mut pairs: Vec<(String, String)> = vs
        .matchers
        .matchers
        .iter()
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect();
    if let Some(name) = vs.name {
        pairs.push((METRIC_NAME_LABEL.to_string(), name));
    }
    Ok(Labels::from_pairs(pairs))
}

fn load(src: &mut MemorySeries, interval: &str, body: &[&str]) -> Result<(), String> {
    let step = parse_duration_ms(interval.trim())?;
    for line in body {
        let (labels, rest) = split_series(line)?;
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        let samples = expand_values(&tokens)?
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.map(|value| Sample {
                    timestamp_ms: i as i64 * step,
                    value,
                })
            })
            .collect();
        src.add(labels, samples);
    }
    Ok(())
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn render(value: &PromValue) -> String {
    let mut out = String::new();
    match value {
        PromValue::Scalar { v, .. } => out.push_str(&format_value(*v)),
        PromValue::String { s, .. } => out.push_str(&format!("{s:?}")),
        PromValue::Vector(v) => {
            for s in v {
                let _ = write!(out, "\n      {} {}", s.labels, format_value(s.v));
            }
        }
        PromValue::Matrix(m) => {
            for s in m {
                let _ = write!(out, "\n      {}", s.labels);
                for p in &s.points {
                    let _ = write!(
                        out,
                        " {}@{}",
                        format_value(p.value),
                        format_value(p.timestamp_ms as f64 / 1000.0)
                    );
                }
            }
        }
    }
    out
}

fn parse_query(rest: &str) -> Result<(PromQuery, Option<(i64, i64)>), String> {
    if let Some(rest) = rest.strip_prefix("instant at ") {
        let (at, expr) = rest.split_once(' ').ok_or("eval without expression")?;
        let t = parse_duration_ms(at)?;
        let q = PromQuery {
            expr: expr.to_string(),
            start_ms: t,
            end_ms: t,
            step_ms: 0,
        };
        return Ok((q, None));
    }
    let Some(rest) = rest.strip_prefix("range from ") else {
        return Err(format!("unknown eval form {rest:?}"));
    };
    let words: Vec<&str> = rest.splitn(6, ' ').collect();
    if words.len() < 6 || words[1] != "to" || words[3] != "step" {
        return Err("expected: eval range from <t> to <t> step <d> <expr>".into());
    }
    let (start, end, step) = (
        parse_duration_ms(words[0])?,
        parse_duration_ms(words[2])?,
        parse_duration_ms(words[4])?,
    );
    let q = PromQuery {
        expr: words[5].to_string(),
        start_ms: start,
        end_ms: end,
        step_ms: step,
    };
    Ok((q, Some((start, step))))
}

fn eval(src: &MemorySeries, line: &str, body: &[&str]) -> Result<(), String> {
    let (command, rest) = line.split_once(' ').ok_or("eval without arguments")?;
    let (query, range_steps) = parse_query(rest)?;
    let got = evaluate(
        src,
        &TenantId::default_tenant(),
        &query,
        &PromLimits::default(),
    );
    if command == "eval_fail" {
        let err = match got {
            Ok(v) => return Err(format!("expected an error, got {}", render(&v))),
            Err(e) => e.to_string(),
        };
        for b in body {
            if let Some(want) = b.strip_prefix("expected_fail_message ") {
                if err != want.trim() {
                    return Err(format!("error {err:?}, want {:?}", want.trim()));
                }
            } else if let Some(re) = b.strip_prefix("expected_fail_regexp ") {
                let re = regex::Regex::new(re.trim()).map_err(|e| e.to_string())?;
                if !re.is_match(&err) {
                    return Err(format!("error {err:?} does not match {re}"));
                }
            }
        }
        return Ok(());
    }
    let got = got.map_err(|e| format!("error: {e}"))?;
    let ordered = command == "eval_ordered";
    check_result(&got, body, range_steps, ordered)
        .map_err(|e| format!("{e}\n    got:{}", render(&got)))
}

fn check_result(
    got: &PromValue,
    body: &[&str],
    range_steps: Option<(i64, i64)>,
    ordered: bool,
) -> Result<(), String> {
    match got {
        PromValue::Scalar { v, .. } => {
            let [want] = body else {
                return Err("a scalar result needs one expected value".into());
            };
            let want = parse_value(want)?;
            if !same(*v, want) {
                return Err(format!(
                    "scalar {}, want {}",
                    format_value(*v),
                    format_value(want)
                ));
            }
            Ok(())
        }
        PromValue::String { s, .. } => match body {
            [want] if format!("{s:?}") == *want => Ok(()),
            _ => Err(format!("string {s:?}, want {body:?}")),
        },
        PromValue::Vector(v) => check_vector(v, body, ordered),
        PromValue::Matrix(m) => check_matrix(m, body, range_steps),
    }
}

fn check_vector(v: &[super::InstantSample], body: &[&str], ordered: bool) -> Result<(), String> {
    let mut want = Vec::new();
    for line in body {
        let (labels, value) = split_series(line)?;
        want.push((labels, parse_value(value)?));
    }
    if v.len() != want.len() {
        return Err(format!("{} elements, want {}", v.len(), want.len()));
    }
    let mut wrong = Vec::new();
    for (i, (labels, value)) in want.iter().enumerate() {
        let found = if ordered {
            (v[i].labels == *labels).then_some(&v[i])
        } else {
            v.iter().find(|s| s.labels == *labels)
        };
        match found {
            Some(s) if same(s.v, *value) => {}
            Some(s) => wrong.push(format!(
                "{labels}: {}, want {}",
                format_value(s.v),
                format_value(*value)
            )),
            None => wrong.push(format!("missing {labels} (or out of order)")),
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("\n    "))
    }
}

fn check_matrix(
    m: &[super::RangeSeries],
    body: &[&str],
    range_steps: Option<(i64, i64)>,
) -> Result<(), String> {
    let mut want = Vec::new();
    for line in body {
        let (labels, rest) = split_series(line)?;
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        let points: Vec<Sample> = match range_steps {
            Some((start, step)) => expand_values(&tokens)?
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    v.map(|value| Sample {
                        timestamp_ms: start + i as i64 * step,
                        value,
                    })
                })
                .collect(),
            None => tokens
                .iter()
                .map(|t| {
                    let (v, at) = t.split_once('@').ok_or("matrix values need @time")?;
                    Ok(Sample {
                        timestamp_ms: parse_duration_ms(at)?,
                        value: parse_value(v)?,
                    })
                })
                .collect::<Result<_, String>>()?,
        };
        want.push((labels, points));
    }
    if m.len() != want.len() {
        return Err(format!("{} series, want {}", m.len(), want.len()));
    }
    for (labels, points) in &want {
        let s = m
            .iter()
            .find(|s| s.labels == *labels)
            .ok_or_else(|| format!("missing {labels}"))?;
        let equal = s.points.len() == points.len()
            && s.points
                .iter()
                .zip(points)
                .all(|(a, b)| a.timestamp_ms == b.timestamp_ms && same(a.value, b.value));
        if !equal {
            let want: Vec<String> = points
                .iter()
                .map(|p| {
                    format!(
                        "{}@{}",
                        format_value(p.value),
                        format_value(p.timestamp_ms as f64 / 1000.0)
                    )
                })
                .collect();
            return Err(format!("{labels}: want {}", want.join(" ")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_load_notation() {
        let check = |input: &str, want: &[Option<f64>]| {
            let tokens: Vec<&str> = input.split_whitespace().collect();
            let got = expand_values(&tokens).expect("valid notation");
            assert_eq!(got.len(), want.len(), "{input}");
            for (g, w) in got.iter().zip(want) {
                match (g, w) {
                    (Some(g), Some(w)) => assert!(same(*g, *w), "{input}: {g} != {w}"),
                    (None, None) => {}
                    _ => panic!("{input}: {got:?} != {want:?}"),
                }
            }
        };
        check("1 _ 3", &[Some(1.0), None, Some(3.0)]);
        check("0+10x2", &[Some(0.0), Some(10.0), Some(20.0)]);
        check("5-1x2 _x2", &[Some(5.0), Some(4.0), Some(3.0), None, None]);
        check("1e3+1e3x1", &[Some(1000.0), Some(2000.0)]);
        check("-2+2x1", &[Some(-2.0), Some(0.0)]);
        check("7x3", &[Some(7.0), Some(7.0), Some(7.0)]);
        check(
            "NaN Inf -Inf",
            &[Some(f64::NAN), Some(f64::INFINITY), Some(f64::NEG_INFINITY)],
        );
        let stale = expand_values(&["stale"]).expect("valid notation");
        assert!(stale[0].is_some_and(sightline_model::is_stale_nan));
    }

    #[test]
    fn parses_durations() {
        let check = |input: &str, want: i64| assert_eq!(parse_duration_ms(input), Ok(want));
        check("0", 0);
        check("10m", 600_000);
        check("1h30m", 5_400_000);
        check("1.5", 1500);
        check("100ms", 100);
        check("-5m", -300_000);
    }

    #[test]
    fn reports_mismatches() {
        let check = |script: &str, want: &str| {
            let (cases, failures) = run_script(script);
            assert_eq!(cases, 1);
            assert_eq!(failures.len(), 1, "{failures:?}");
            assert!(failures[0].contains(want), "{}", failures[0]);
        };
        let load = "load 1m\n  up{job=\"a\"} 1 2\n\n";
        check(
            &format!("{load}eval instant at 1m up\n  up{{job=\"a\"}} 3\n"),
            "want 3",
        );
        check(
            &format!("{load}eval instant at 1m up\n"),
            "1 elements, want 0",
        );
        check(
            &format!("{load}eval_fail instant at 1m up\n"),
            "expected an error",
        );
        check(
            &format!("{load}eval range from 0 to 1m step 1m up\n  up{{job=\"a\"}} 1 3\n"),
            "want 1@0 3@60",
        );
    }
}
