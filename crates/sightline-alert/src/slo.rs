//! One SLO at run time: its per-minute good/total counts, fed from stored samples (counters,
//! histograms, probe results) or from spans as they arrive; its status; its alerts.
//!
//! Counting from samples: every evaluation reads the source's series from a little before
//! the previous evaluation (so samples stored late are still seen) to now, and each series
//! remembers its newest sample already counted, so a sample is counted once. A counter's
//! increase goes to the minute of the sample that shows it; a drop is a reset (the new value
//! is the increase, as Prometheus reads counters). On the first evaluation the first sample
//! of each series is only a baseline; a series that appears later counts from zero.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use sightline_model::span::{Span, StatusCode};
use sightline_model::{
    LabelMatcher, Labels, MetricBatch, Sample, SeriesSamples, SeriesSelection, TenantId,
};
use sightline_query::promql::SeriesData;

use crate::budget::{self, Buckets, Count, MINUTE_MS, Status, Window, minute_of};
use crate::config::{SloConfig, SpanSli};
use crate::state::{Active, AlertSet};

/// How far before the previous evaluation each read starts, for samples stored late.
const OVERLAP_MS: i64 = 2 * MINUTE_MS;
/// What the first evaluation reads.
const FIRST_READ_MS: i64 = 5 * MINUTE_MS;
/// A series not seen this long is forgotten (if it comes back without a reset, its whole
/// value counts: a week makes that rare).
const SERIES_FORGET_MS: i64 = 7 * 24 * 3_600_000;
/// Failing trace ids kept for alert annotations.
const EXEMPLARS_MAX: usize = 5;
pub const DEFAULT_MIN_EVENTS: f64 = 10.0;
pub const DEFAULT_NO_DATA_AFTER: Duration = Duration::from_secs(600);

/// What an SLI is computed from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Counters: `total`, and `errors` (bad) or `good`.
    Ratio {
        total: Vec<LabelMatcher>,
        other: Vec<LabelMatcher>,
        other_is_errors: bool,
    },
    /// A histogram: `_count` is total, `_bucket{le=threshold}` good.
    Latency {
        count: Vec<LabelMatcher>,
        bucket: Vec<LabelMatcher>,
        threshold: f64,
    },
    /// Probe results: one event per `probe_success` sample.
    Probe { success: Vec<LabelMatcher> },
    /// Spans, counted as they are received.
    Spans(SpanSli),
}

impl Source {
    pub fn of(cfg: &SloConfig) -> Source {
        let s = &cfg.sli;
        let named = |name: &str, more: &[LabelMatcher]| {
            let mut m = vec![LabelMatcher::equal("__name__", name)];
            m.extend(more.iter().filter(|m| m.name != "__name__").cloned());
            m
        };
        if let Some(l) = &s.latency {
            let extra = l.selector.as_ref().map_or(&[][..], |s| &s.matchers[..]);
            return Source::Latency {
                count: named(&format!("{}_count", l.metric), extra),
                bucket: named(&format!("{}_bucket", l.metric), extra),
                threshold: l.threshold,
            };
        }
        if let Some(sp) = &s.spans {
            return Source::Spans(sp.clone());
        }
        if let Some(p) = &s.probe {
            return Source::Probe {
                success: vec![
                    LabelMatcher::equal("__name__", "probe_success"),
                    LabelMatcher::equal("probe", p),
                ],
            };
        }
        let total = s
            .total
            .as_ref()
            .map(|t| t.matchers.clone())
            .unwrap_or_default();
        match (&s.errors, &s.good) {
            (Some(e), _) => Source::Ratio {
                total,
                other: e.matchers.clone(),
                other_is_errors: true,
            },
            (None, g) => Source::Ratio {
                total,
                other: g.as_ref().map(|g| g.matchers.clone()).unwrap_or_default(),
                other_is_errors: false,
            },
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Source::Ratio { .. } => "ratio",
            Source::Latency { .. } => "latency",
            Source::Probe { .. } => "probe",
            Source::Spans(_) => "spans",
        }
    }
}

/// The newest sample counted of one series.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Seen {
    t_ms: i64,
    v: f64,
}

/// What survives a restart.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SloCounts {
    pub buckets: Buckets,
    /// The previous evaluation's time; `None` before the first.
    pub cursor_ms: Option<i64>,
    /// Per role of the source (total, then good or errors), per series.
    series: Vec<Vec<(Labels, Seen)>>,
    pub last_event_ms: Option<i64>,
    pub started_ms: Option<i64>,
    /// The SLI definition the cursors belong to ([`SloRuntime::definition`]).
    #[serde(default)]
    definition: String,
    /// Alerts of each SLO alert kind, by [`SloAlert::key`].
    pub alerts: Vec<(String, AlertSet)>,
}

/// The alerts every SLO has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SloAlert {
    BurnPage,
    BurnTicket,
    Budget50,
    Budget75,
    Budget100,
    NoData,
}

impl SloAlert {
    pub const ALL: [SloAlert; 6] = [
        SloAlert::BurnPage,
        SloAlert::BurnTicket,
        SloAlert::Budget50,
        SloAlert::Budget75,
        SloAlert::Budget100,
        SloAlert::NoData,
    ];

    pub fn key(self) -> &'static str {
        match self {
            SloAlert::BurnPage => "burn-page",
            SloAlert::BurnTicket => "burn-ticket",
            SloAlert::Budget50 => "budget-50",
            SloAlert::Budget75 => "budget-75",
            SloAlert::Budget100 => "budget-100",
            SloAlert::NoData => "no-data",
        }
    }

    pub fn alertname(self) -> &'static str {
        match self {
            SloAlert::BurnPage | SloAlert::BurnTicket => "SLOBurnRateHigh",
            SloAlert::Budget50 | SloAlert::Budget75 | SloAlert::Budget100 => {
                "SLOErrorBudgetConsumed"
            }
            SloAlert::NoData => "SLONoData",
        }
    }

    pub fn severity(self) -> &'static str {
        match self {
            SloAlert::BurnPage | SloAlert::Budget100 => "page",
            SloAlert::BurnTicket => "ticket",
            SloAlert::Budget50 | SloAlert::NoData => "warning",
            SloAlert::Budget75 => "critical",
        }
    }

    /// The condition, as shown in `/api/v1/rules`.
    pub fn query(self) -> &'static str {
        match self {
            SloAlert::BurnPage => {
                "burn_rate(1h) > 14.4 and burn_rate(5m) > 14.4 or burn_rate(6h) > 6 and burn_rate(30m) > 6"
            }
            SloAlert::BurnTicket => {
                "burn_rate(1d) > 3 and burn_rate(2h) > 3 or burn_rate(3d) > 1 and burn_rate(6h) > 1"
            }
            SloAlert::Budget50 => "error_budget_used >= 50%",
            SloAlert::Budget75 => "error_budget_used >= 75%",
            SloAlert::Budget100 => "error_budget_used >= 100%",
            SloAlert::NoData => "no events from the SLI's source for no_data_after",
        }
    }
}

pub struct SloRuntime {
    pub cfg: SloConfig,
    pub tenant: TenantId,
    pub source: Source,
    pub window: Window,
    /// The objective as a ratio.
    pub objective: f64,
    pub counts: SloCounts,
    pub status: Option<Status>,
    pub last_error: Option<String>,
    pub last_eval_ms: Option<i64>,
    pub eval_duration: Duration,
    exemplars: VecDeque<String>,
}

impl SloRuntime {
    pub fn new(cfg: SloConfig) -> Self {
        let tenant = crate::config::tenant_or_default(cfg.tenant.as_deref());
        let source = Source::of(&cfg);
        let window = cfg.window();
        let objective = cfg.objective / 100.0;
        let mut counts = SloCounts::default();
        for kind in SloAlert::ALL {
            counts
                .alerts
                .push((kind.key().to_string(), AlertSet::default()));
        }
        let mut rt = Self {
            cfg,
            tenant,
            source,
            window,
            objective,
            counts,
            status: None,
            last_error: None,
            last_eval_ms: None,
            eval_duration: Duration::ZERO,
            exemplars: VecDeque::new(),
        };
        rt.counts.definition = rt.definition();
        rt
    }

    /// What the cursors depend on: the tenant and the source. When a restart brings a
    /// changed SLI, the saved per-series cursors are dropped and the next read is a first
    /// read again (a baseline), so a widened selector does not count history as new events.
    fn definition(&self) -> String {
        let m = |ms: &[LabelMatcher]| {
            ms.iter()
                .map(|m| format!("{}{:?}{:?}", m.name, m.op, m.value))
                .collect::<Vec<_>>()
                .join(",")
        };
        let source = match &self.source {
            Source::Ratio {
                total,
                other,
                other_is_errors,
            } => format!("ratio {} {} {other_is_errors}", m(total), m(other)),
            Source::Latency {
                count,
                bucket,
                threshold,
            } => format!("latency {} {} {threshold}", m(count), m(bucket)),
            Source::Probe { success } => format!("probe {}", m(success)),
            Source::Spans(s) => format!("spans {s:?}"),
        };
        format!("{} {source}", self.tenant.as_str())
    }

    /// Takes over counts saved by an earlier run (alert sets of unknown kinds are dropped).
    pub fn restore(&mut self, mut saved: SloCounts) {
        let definition = self.definition();
        if saved.definition != definition {
            saved.series.clear();
            saved.cursor_ms = None;
            saved.definition = definition;
        }
        let alerts = std::mem::take(&mut self.counts.alerts);
        self.counts = saved;
        let mut restored = std::mem::take(&mut self.counts.alerts);
        self.counts.alerts = alerts
            .into_iter()
            .map(
                |(k, set)| match restored.iter().position(|(rk, _)| *rk == k) {
                    Some(i) => restored.swap_remove(i),
                    None => (k, set),
                },
            )
            .collect();
    }

    pub fn kind(&self) -> &'static str {
        self.source.kind()
    }

    fn roles(&self) -> Vec<&[LabelMatcher]> {
        match &self.source {
            Source::Ratio { total, other, .. } => vec![total, other],
            Source::Latency { count, bucket, .. } => vec![count, bucket],
            Source::Probe { success } => vec![success],
            Source::Spans(_) => vec![],
        }
    }

    /// The reads this evaluation needs, one per role (none for span SLIs).
    pub fn selections(&self, now_ms: i64) -> Vec<SeriesSelection> {
        let start = self
            .counts
            .cursor_ms
            .map_or(now_ms - FIRST_READ_MS, |c| c.min(now_ms) - OVERLAP_MS);
        self.roles()
            .into_iter()
            .map(|m| SeriesSelection {
                tenant: self.tenant.clone(),
                matchers: m.to_vec(),
                start_ms: start,
                end_ms: now_ms,
            })
            .collect()
    }

    /// Counts what the reads of [`SloRuntime::selections`] returned (in the same order).
    pub fn apply(&mut self, now_ms: i64, fetched: Vec<Vec<SeriesData>>) {
        let first = self.counts.cursor_ms.is_none();
        self.counts.started_ms.get_or_insert(now_ms);
        self.last_error = None;
        if self.counts.series.len() < fetched.len() {
            self.counts.series.resize(fetched.len(), Vec::new());
        }
        for (role, series) in fetched.into_iter().enumerate() {
            let mut seen: HashMap<Labels, Seen> = std::mem::take(&mut self.counts.series[role])
                .into_iter()
                .collect();
            let mut matched_bucket = false;
            for s in series {
                if let Source::Latency { threshold, .. } = &self.source
                    && role == 1
                {
                    let le = s.labels.get("le").and_then(|v| v.parse::<f64>().ok());
                    if le.is_none_or(|le| (le - threshold).abs() > 1e-9 * threshold.abs()) {
                        continue;
                    }
                    matched_bucket = true;
                }
                let prev = seen.get(&s.labels).copied();
                let mut last = prev;
                for sample in &s.samples {
                    if !sample.value.is_finite() {
                        continue;
                    }
                    if last.is_some_and(|l| sample.timestamp_ms <= l.t_ms) {
                        continue;
                    }
                    let minute = minute_of(sample.timestamp_ms);
                    let event = self.event(role, last, sample.value, first);
                    if event != Count::default() {
                        self.counts.buckets.entry(minute).or_default().add(event);
                    }
                    self.counts.last_event_ms = Some(
                        self.counts
                            .last_event_ms
                            .map_or(sample.timestamp_ms, |t| t.max(sample.timestamp_ms)),
                    );
                    last = Some(Seen {
                        t_ms: sample.timestamp_ms,
                        v: sample.value,
                    });
                }
                if let Some(l) = last {
                    seen.insert(s.labels, l);
                }
            }
            if let Source::Latency { threshold, .. } = &self.source
                && role == 1
                && !matched_bucket
                && !seen.is_empty()
            {
                self.last_error = Some(format!("no histogram bucket with le=\"{threshold}\""));
            }
            seen.retain(|_, s| now_ms - s.t_ms < SERIES_FORGET_MS);
            self.counts.series[role] = seen.into_iter().collect();
        }
        self.counts.cursor_ms = Some(now_ms);
    }

    /// The events one sample of `role` stands for.
    fn event(&self, role: usize, last: Option<Seen>, v: f64, first_read: bool) -> Count {
        let increase = match last {
            Some(l) if v >= l.v => v - l.v,
            Some(_) => v,
            None if first_read => 0.0,
            None => v,
        };
        match (&self.source, role) {
            (Source::Probe { .. }, _) => Count {
                good: if v == 1.0 { 1.0 } else { 0.0 },
                total: 1.0,
            },
            // Total: every event good until `errors` says otherwise.
            (
                Source::Ratio {
                    other_is_errors: true,
                    ..
                },
                0,
            ) => Count {
                good: increase,
                total: increase,
            },
            (
                Source::Ratio {
                    other_is_errors: true,
                    ..
                },
                _,
            ) => Count {
                good: -increase,
                total: 0.0,
            },
            (Source::Ratio { .. } | Source::Latency { .. }, 0) => Count {
                good: 0.0,
                total: increase,
            },
            _ => Count {
                good: increase,
                total: 0.0,
            },
        }
    }

    /// Counts received spans (span SLIs only).
    pub fn observe_spans(&mut self, tenant: &TenantId, spans: &[Span]) {
        let Source::Spans(sli) = &self.source else {
            return;
        };
        if *tenant != self.tenant {
            return;
        }
        let max_ns = sli.max_duration.map(|d| d.as_nanos() as i64);
        for span in spans {
            if span.service != sli.service
                || sli.operation.as_ref().is_some_and(|op| *op != span.name)
            {
                continue;
            }
            let bad = span.status.code == StatusCode::Error
                || max_ns.is_some_and(|max| span.duration_ns() > max);
            let end_ms = span.end_ns / 1_000_000;
            self.counts
                .buckets
                .entry(minute_of(end_ms))
                .or_default()
                .add(Count {
                    good: if bad { 0.0 } else { 1.0 },
                    total: 1.0,
                });
            let now_ms = sightline_model::now_ns() / 1_000_000;
            self.counts.last_event_ms =
                Some(self.counts.last_event_ms.map_or(now_ms, |t| t.max(now_ms)));
            if bad {
                self.exemplars.push_front(span.trace_id_hex());
                self.exemplars.truncate(EXEMPLARS_MAX);
            }
        }
    }

    /// Computes the status at `now_ms`, drops buckets no window needs, and updates the
    /// alerts; returns whether an alert changed state.
    pub fn evaluate(&mut self, now_ms: i64, external_url: &str) -> bool {
        let keep_from = minute_of(now_ms) - self.window.max_minutes().max(3 * 1_440) * MINUTE_MS;
        self.counts.buckets = self.counts.buckets.split_off(&keep_from);
        let started = *self.counts.started_ms.get_or_insert(now_ms);
        let status = budget::status(
            &self.counts.buckets,
            self.objective,
            self.window,
            self.cfg.budgeting,
            now_ms,
        );
        let min_events = self.cfg.min_events.unwrap_or(DEFAULT_MIN_EVENTS);
        let no_data_ms = self
            .cfg
            .no_data_after
            .unwrap_or(DEFAULT_NO_DATA_AFTER)
            .as_millis() as i64;
        let burn = |w: &str| status.burn(w).unwrap_or(0.0);
        let pair = |long: &str, short: &str, over: f64| {
            status.events_in(long) >= min_events && burn(long) > over && burn(short) > over
        };
        let used = 1.0 - status.remaining_ratio;
        let enough = status.events.total >= min_events;
        let mut changed = false;
        for i in 0..self.counts.alerts.len() {
            let Some(kind) = SloAlert::ALL
                .into_iter()
                .find(|k| k.key() == self.counts.alerts[i].0)
            else {
                continue;
            };
            let firing = match kind {
                SloAlert::BurnPage => (pair("1h", "5m", 14.4) || pair("6h", "30m", 6.0))
                    .then(|| burn("1h").max(burn("6h"))),
                SloAlert::BurnTicket => (pair("1d", "2h", 3.0) || pair("3d", "6h", 1.0))
                    .then(|| burn("1d").max(burn("3d"))),
                SloAlert::Budget50 => (enough && used >= 0.5).then_some(used),
                SloAlert::Budget75 => (enough && used >= 0.75).then_some(used),
                SloAlert::Budget100 => (enough && used >= 1.0).then_some(used),
                SloAlert::NoData => {
                    let since = self.counts.last_event_ms.unwrap_or(started);
                    (now_ms - since >= no_data_ms).then(|| ((now_ms - since) / 1_000) as f64)
                }
            };
            let results = firing
                .map(|value| Active {
                    labels: self.alert_labels(kind),
                    annotations: self.annotations(kind, &status, external_url),
                    value,
                })
                .into_iter()
                .collect();
            changed |=
                self.counts.alerts[i]
                    .1
                    .update(now_ms, results, Duration::ZERO, Duration::ZERO);
        }
        self.status = Some(status);
        self.last_eval_ms = Some(now_ms);
        changed
    }

    fn alert_labels(&self, kind: SloAlert) -> Labels {
        let mut pairs: Vec<(String, String)> = self
            .cfg
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        pairs.push(("alertname".into(), kind.alertname().into()));
        pairs.push(("slo".into(), self.cfg.name.clone()));
        pairs.push(("severity".into(), kind.severity().into()));
        Labels::from_pairs(pairs)
    }

    fn annotations(&self, kind: SloAlert, s: &Status, external_url: &str) -> Vec<(String, String)> {
        let name = &self.cfg.name;
        let burn = |w: &str| s.burn(w).map_or("n/a".into(), |b| format!("{b:.1}×"));
        let used_pct = (1.0 - s.remaining_ratio) * 100.0;
        let summary = match kind {
            SloAlert::BurnPage | SloAlert::BurnTicket => {
                format!("SLO {name}: error budget burning at {} (1h)", burn("1h"))
            }
            SloAlert::Budget50 | SloAlert::Budget75 | SloAlert::Budget100 => {
                format!("SLO {name}: {used_pct:.0}% of the error budget used")
            }
            SloAlert::NoData => format!("SLO {name}: no data from its source"),
        };
        let left = match s
            .burn("1h")
            .and_then(|b| s.minutes_to_exhaustion(b, self.window_minutes()))
        {
            Some(m) => format!("gone in {} at the 1h burn rate", human_minutes(m)),
            None if s.exhausted => "already spent".into(),
            None => "not burning now".into(),
        };
        let sli = s.sli.map_or("n/a".into(), |v| format!("{:.3}%", v * 100.0));
        let description = format!(
            "Burn rate {} over 5m, {} over 1h, {} over 6h, {} over 1d. SLI {sli} over {} against {}%. \
             {:.1} of {:.1} budget minutes left ({:.1}%): {left}.",
            burn("5m"),
            burn("1h"),
            burn("6h"),
            burn("1d"),
            self.window.describe(),
            self.cfg.objective,
            s.remaining_minutes,
            s.total_minutes,
            s.remaining_ratio * 100.0,
        );
        let mut out = vec![
            ("summary".to_string(), summary),
            ("description".to_string(), description),
        ];
        if !self.exemplars.is_empty() {
            let ids: Vec<&str> = self.exemplars.iter().map(String::as_str).collect();
            out.push(("exemplar_traces".into(), ids.join(",")));
            out.push((
                "debug_url".into(),
                format!("{external_url}/api/v1/debug/{}", ids[0]),
            ));
        }
        if let Some(sel) = self.failing_selector() {
            let q = serde_urlencoded::to_string([("query", sel)]).unwrap_or_default();
            out.push((
                "exemplars_url".into(),
                format!("{external_url}/api/v1/query_exemplars?{q}"),
            ));
        }
        out
    }

    /// The selector of the bad (or all) events, for the exemplars of metric SLIs.
    fn failing_selector(&self) -> Option<String> {
        let s = &self.cfg.sli;
        match &self.source {
            Source::Ratio { .. } => s
                .errors
                .as_ref()
                .or(s.total.as_ref())
                .map(|sel| sel.text.clone()),
            Source::Latency { .. } => s.latency.as_ref().map(|l| {
                let extra = l.selector.as_ref().map_or("", |s| s.text.as_str());
                format!("{}_bucket{extra}", l.metric)
            }),
            _ => None,
        }
    }

    /// The SLO's series at `now_ms`: `slo_sli`, `slo_error_budget_remaining_ratio`,
    /// `slo_burn_rate{window}`, `slo_events_total`, `slo_good_events_total`, `slo_objective`.
    pub fn series(&self, now_ms: i64) -> MetricBatch {
        let mut out = Vec::new();
        let mut push = |name: &str, window: Option<&str>, v: Option<f64>| {
            let Some(v) = v else { return };
            let mut pairs = vec![("__name__", name), ("slo", self.cfg.name.as_str())];
            if let Some(w) = window {
                pairs.push(("window", w));
            }
            out.push(SeriesSamples {
                labels: Labels::from_pairs(pairs),
                samples: vec![Sample {
                    timestamp_ms: now_ms,
                    value: v,
                }],
                exemplars: vec![],
            });
        };
        push("slo_objective", None, Some(self.objective));
        if let Some(s) = &self.status {
            push("slo_sli", None, s.sli);
            push(
                "slo_error_budget_remaining_ratio",
                None,
                Some(s.remaining_ratio),
            );
            push("slo_events_total", None, Some(s.events.total));
            push(
                "slo_good_events_total",
                None,
                Some(s.events.total - s.events.bad()),
            );
            for (w, b) in &s.burn_rates {
                push("slo_burn_rate", Some(w), *b);
            }
        }
        MetricBatch {
            tenant: self.tenant.clone(),
            series: out,
            metadata: vec![],
        }
    }

    pub fn window_minutes(&self) -> i64 {
        self.window.range(self.last_eval_ms.unwrap_or(0)).2
    }

    pub fn alerts(&self) -> impl Iterator<Item = &AlertSet> {
        self.counts.alerts.iter().map(|(_, s)| s)
    }
}

fn human_minutes(m: f64) -> String {
    if m < 90.0 {
        format!("{m:.0}m")
    } else if m < 48.0 * 60.0 {
        format!("{:.1}h", m / 60.0)
    } else {
        format!("{:.1}d", m / 1_440.0)
    }
}

#[cfg(test)]
mod tests;
