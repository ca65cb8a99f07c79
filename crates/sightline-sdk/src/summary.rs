//! Summaries: quantiles over a sliding time window, plus a running count and sum.
//!
//! # Why this is ours
//! `prometheus-client` has counters, gauges, histograms and info metrics but no summary, and
//! its encoder cannot declare the `summary` type, so a summary cannot be plugged in as one
//! of its metrics. The Prometheus Go and Java clients keep one; a service ported from them
//! expects `name{quantile="0.99"}`, `name_sum` and `name_count`. [`crate::Metrics`] renders
//! the summaries registered with it after `prometheus-client`'s own families, before the
//! OpenMetrics `# EOF` line.
//!
//! # How quantiles are kept
//! Each age bucket is a log-bucketed sketch (the DDSketch scheme): a value `v > 0` falls in
//! bucket `ceil(log_γ v)` with `γ = (1 + α) / (1 − α)`, and a bucket's estimate
//! `2γ^i / (γ + 1)` is within relative error `α` (1 %) of every value in it. Negative values
//! mirror positive ones; values within [`ZERO`] of zero are counted apart. A sketch's size
//! is bounded by the spread of its values (about 2,100 buckets from 1 ns to 1,000 s), not by
//! how many were observed, and observing is a mutex, a logarithm and a map increment.
//!
//! # Invariants
//! - The window is `max_age` long, made of `age_buckets` sketches each covering
//!   `max_age / age_buckets`; an observation goes into the newest only, and a quantile
//!   merges those still inside the window, so it reflects the last `max_age` at most and
//!   `max_age · (1 − 1/age_buckets)` at least.
//! - With no observation in the window a quantile is NaN, as in the Go client.
//! - `_count` and `_sum` are cumulative since start, like a counter; NaN is counted and
//!   summed but has no rank.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Values closer to zero than this are counted as zero.
pub const ZERO: f64 = 1e-9;

/// The relative accuracy of every quantile.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// How a summary is kept: its quantiles and window.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryOptions {
    /// The quantiles exposed, each in `[0, 1]`; default 0.5, 0.9, 0.99.
    pub quantiles: Vec<f64>,
    /// How far back quantiles look; default 10 minutes, as in the Go client.
    pub max_age: Duration,
    /// How many steps the window moves in; default 5.
    pub age_buckets: u32,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        SummaryOptions {
            quantiles: vec![0.5, 0.9, 0.99],
            max_age: Duration::from_secs(600),
            age_buckets: 5,
        }
    }
}

/// A log-bucketed sketch of values; see the [module docs](self).
#[derive(Debug, Default, Clone)]
struct Sketch {
    positive: BTreeMap<i32, u64>,
    negative: BTreeMap<i32, u64>,
    zero: u64,
    count: u64,
}

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

impl Sketch {
    fn insert(&mut self, value: f64) {
        if value.is_nan() {
            return;
        }
        self.count += 1;
        if value.abs() < ZERO {
            self.zero += 1;
            return;
        }
        // `as` saturates: ±inf land in the outermost buckets.
        let index = (value.abs().ln() / gamma().ln()).ceil() as i32;
        let side = if value > 0.0 {
            &mut self.positive
        } else {
            &mut self.negative
        };
        *side.entry(index).or_default() += 1;
    }

    fn merge(&mut self, other: &Sketch) {
        for (side, theirs) in [
            (&mut self.positive, &other.positive),
            (&mut self.negative, &other.negative),
        ] {
            for (&index, &n) in theirs {
                *side.entry(index).or_default() += n;
            }
        }
        self.zero += other.zero;
        self.count += other.count;
    }

    /// The value of rank `q · (count − 1)`, within [`RELATIVE_ACCURACY`]; NaN when empty.
    fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.count - 1) as f64).round() as u64;
        let estimate = |index: i32| 2.0 * gamma().powi(index) / (gamma() + 1.0);
        let mut seen = 0;
        // Ascending order: the most negative first, then zero, then the positives.
        for (&index, &n) in self.negative.iter().rev() {
            seen += n;
            if seen > rank {
                return -estimate(index);
            }
        }
        seen += self.zero;
        if seen > rank {
            return 0.0;
        }
        for (&index, &n) in &self.positive {
            seen += n;
            if seen > rank {
                return estimate(index);
            }
        }
        // Unreachable while counts agree; the largest value is the safe answer.
        self.positive
            .keys()
            .next_back()
            .map_or(0.0, |&i| estimate(i))
    }
}

/// The sliding window of one labelled summary.
#[derive(Debug)]
struct Window {
    sketches: Vec<Sketch>,
    /// Index of the sketch taking observations.
    head: usize,
    /// When the head sketch started.
    head_started: Instant,
    step: Duration,
    count: u64,
    sum: f64,
}

impl Window {
    fn new(options: &SummaryOptions, now: Instant) -> Self {
        let buckets = options.age_buckets.max(1);
        Window {
            sketches: vec![Sketch::default(); buckets as usize],
            head: 0,
            head_started: now,
            step: (options.max_age / buckets).max(Duration::from_millis(1)),
            count: 0,
            sum: 0.0,
        }
    }

    /// Moves the head forward past every step that has ended by `now`, clearing the
    /// sketches that fall out of the window.
    fn rotate(&mut self, now: Instant) {
        let len = self.sketches.len();
        let mut steps = 0;
        while now.saturating_duration_since(self.head_started) >= self.step && steps < len {
            self.head = (self.head + 1) % len;
            self.sketches[self.head] = Sketch::default();
            self.head_started += self.step;
            steps += 1;
        }
        if now.saturating_duration_since(self.head_started) >= self.step {
            // Idle for a whole window: every sketch is clear; restart the clock.
            self.head_started = now;
        }
    }

    fn observe(&mut self, value: f64, now: Instant) {
        self.rotate(now);
        self.sketches[self.head].insert(value);
        self.count += 1;
        self.sum += value;
    }

    fn merged(&mut self, now: Instant) -> Sketch {
        self.rotate(now);
        let mut all = Sketch::default();
        for sketch in &self.sketches {
            all.merge(sketch);
        }
        all
    }
}

#[derive(Debug)]
struct Shared {
    options: SummaryOptions,
    label_names: Vec<String>,
    children: Mutex<HashMap<Vec<String>, Summary>>,
}

/// Summaries that share a name and quantiles, one per set of label values. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SummaryFamily {
    shared: Arc<Shared>,
}

impl SummaryFamily {
    /// A family with these label names (empty for a single summary).
    pub fn new(label_names: &[&str], options: SummaryOptions) -> Self {
        SummaryFamily {
            shared: Arc::new(Shared {
                options,
                label_names: label_names.iter().map(|&n| n.to_owned()).collect(),
                children: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The summary for these label values, in the order of the label names; made on first
    /// use. Missing values are empty and extra ones are ignored.
    pub fn with(&self, values: &[&str]) -> Summary {
        let key: Vec<String> = (0..self.shared.label_names.len())
            .map(|i| values.get(i).map_or_else(String::new, |&v| v.to_owned()))
            .collect();
        let mut children = self
            .shared
            .children
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        children
            .entry(key)
            .or_insert_with(|| Summary::new(&self.shared.options))
            .clone()
    }

    /// Appends this family in the OpenMetrics text format.
    pub(crate) fn encode(&self, name: &str, help: &str, out: &mut String) {
        let now = Instant::now();
        let _ = writeln!(out, "# HELP {name} {}", escape(help, false));
        let _ = writeln!(out, "# TYPE {name} summary");
        let children = self
            .shared
            .children
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut rows: Vec<_> = children.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        for (values, summary) in rows {
            let labels: Vec<String> = self
                .shared
                .label_names
                .iter()
                .zip(values)
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v, true)))
                .collect();
            let (sketch, count, sum) = summary.snapshot(now);
            for &q in &self.shared.options.quantiles {
                let mut all = labels.clone();
                all.push(format!("quantile=\"{q}\""));
                let _ = writeln!(
                    out,
                    "{name}{{{}}} {}",
                    all.join(","),
                    float(sketch.quantile(q))
                );
            }
            let braces = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", labels.join(","))
            };
            let _ = writeln!(out, "{name}_sum{braces} {}", float(sum));
            let _ = writeln!(out, "{name}_count{braces} {count}");
        }
    }
}

/// One summary; cheap to clone, and every clone observes into the same window.
#[derive(Debug, Clone)]
pub struct Summary {
    window: Arc<Mutex<Window>>,
}

impl Summary {
    fn new(options: &SummaryOptions) -> Self {
        Summary {
            window: Arc::new(Mutex::new(Window::new(options, Instant::now()))),
        }
    }

    /// Records one value.
    pub fn observe(&self, value: f64) {
        self.observe_at(value, Instant::now());
    }

    fn observe_at(&self, value: f64, now: Instant) {
        self.lock().observe(value, now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The quantile `q` of the values observed in the window; NaN when there are none.
    pub fn quantile(&self, q: f64) -> f64 {
        self.lock().merged(Instant::now()).quantile(q)
    }

    /// How many values were observed since start.
    pub fn count(&self) -> u64 {
        self.lock().count
    }

    /// The sum of the values observed since start.
    pub fn sum(&self) -> f64 {
        self.lock().sum
    }

    fn snapshot(&self, now: Instant) -> (Sketch, u64, f64) {
        let mut window = self.lock();
        (window.merged(now), window.count, window.sum)
    }
}

/// OpenMetrics escaping: backslash and newline, and in label values the double quote.
fn escape(text: &str, quote: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(estimate: f64, exact: f64) -> bool {
        (estimate - exact).abs() <= RELATIVE_ACCURACY * exact.abs() + 1e-12
    }

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut sketch = Sketch::default();
        for i in 1..=10_000 {
            sketch.insert(f64::from(i) / 1000.0);
        }
        for (q, exact) in [(0.0, 0.001), (0.5, 5.0005), (0.9, 9.0001), (0.99, 9.9001)] {
            let got = sketch.quantile(q);
            assert!(within(got, exact), "q{q}: {got} vs {exact}");
        }
        assert!(within(sketch.quantile(1.0), 10.0));
    }

    #[test]
    fn negatives_zero_and_nan() {
        let mut sketch = Sketch::default();
        for v in [-8.0, -2.0, 0.0, 0.0, 3.0, f64::NAN] {
            sketch.insert(v);
        }
        assert_eq!(sketch.count, 5);
        assert!(within(sketch.quantile(0.0), -8.0));
        assert!(within(sketch.quantile(0.25), -2.0));
        assert_eq!(sketch.quantile(0.5), 0.0);
        assert!(within(sketch.quantile(1.0), 3.0));
        assert!(Sketch::default().quantile(0.5).is_nan());
    }

    #[test]
    fn the_window_forgets_old_values_but_count_and_sum_do_not() {
        let options = SummaryOptions {
            quantiles: vec![0.5],
            max_age: Duration::from_secs(50),
            age_buckets: 5,
        };
        let start = Instant::now();
        let summary = Summary::new(&options);
        *summary.lock() = Window::new(&options, start);
        let at = |s: u64| start + Duration::from_secs(s);
        summary.observe_at(100.0, at(0));
        summary.observe_at(100.0, at(5));
        summary.observe_at(1.0, at(45));
        let median = |s| summary.lock().merged(at(s)).quantile(0.5);
        // At 45 s all three are in the window.
        assert!(within(median(45), 100.0));
        // At 50 s the first step (0–10 s) has left: only 1.0 remains.
        assert!(within(median(50), 1.0));
        // A whole idle window later nothing remains.
        assert!(median(200).is_nan());
        assert_eq!(summary.count(), 3);
        assert_eq!(summary.sum(), 201.0);
        // Observing after a long idle time starts a fresh window.
        summary.observe_at(7.0, at(1000));
        assert!(within(median(1000), 7.0));
    }

    #[test]
    fn encodes_openmetrics_summary_lines() {
        let family = SummaryFamily::new(&["country"], SummaryOptions::default());
        family.with(&["DE"]).observe(10.0);
        family.with(&["DE"]).observe(30.0);
        family.with(&["a\"b"]).observe(1.5);
        let mut out = String::new();
        family.encode("order_value", "Order value\nin EUR", &mut out);
        let expected = [
            "# HELP order_value Order value\\nin EUR",
            "# TYPE order_value summary",
            "order_value{country=\"DE\",quantile=\"0.5\"} ",
            "order_value_sum{country=\"DE\"} 40.0",
            "order_value_count{country=\"DE\"} 2",
            "order_value{country=\"a\\\"b\",quantile=\"0.99\"} ",
            "order_value_count{country=\"a\\\"b\"} 1",
        ];
        for line in expected {
            assert!(out.contains(line), "{line:?} missing from\n{out}");
        }
        let single = SummaryFamily::new(&[], SummaryOptions::default());
        let mut out = String::new();
        single.encode("latency", "h", &mut out);
        assert!(
            !out.contains("latency_count"),
            "no child, no samples: {out}"
        );
        single.with(&[]).observe(2.0);
        out.clear();
        single.encode("latency", "h", &mut out);
        assert!(out.contains("latency{quantile=\"0.9\"} "), "{out}");
        assert!(out.contains("latency_count 1\n"), "{out}");
    }
}
