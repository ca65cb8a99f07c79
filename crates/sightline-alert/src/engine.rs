//! The loops: each rule group every `interval`, all SLOs every evaluation interval, each probe
//! every its `interval`, each notifier on its own, and the state file.
//!
//! Locks are `std` mutexes held only for in-memory work: PromQL and SLI reads run on
//! blocking threads with no lock held, and their results are applied under the lock after.
//! Rules of a group run in order, each seeing what the previous one recorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use sightline_model::span::Span;
use sightline_model::{Labels, MetricBatch, Sample, SeriesSamples, TenantId};
use sightline_query::promql::{self, PromLimits, PromQuery, PromValue};

use crate::notify::{Notifier, Offered};
use crate::rules::{Rule, RuleGroup, RuleKind};
use crate::silence::{Silence, Silences};
use crate::slo::{SloCounts, SloRuntime};
use crate::state::{Active, AlertSet, AlertState};
use crate::template::Context as TemplateContext;
use crate::{AlertMetrics, Alerting, AlertingConfig, Backend};

const STATE_FILE: &str = "state.json";
const SAVE_CHECK: Duration = Duration::from_secs(5);
/// SLO counts change every evaluation; they are saved this often.
const SLO_SAVE_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Default)]
pub(crate) struct RuleRuntime {
    pub alerts: AlertSet,
    pub health: &'static str,
    pub last_error: Option<String>,
    pub last_eval_ms: Option<i64>,
    pub eval_duration: Duration,
}

pub(crate) struct GroupRuntime {
    pub group: RuleGroup,
    pub rules: Vec<RuleRuntime>,
    pub last_eval_ms: Option<i64>,
    pub eval_duration: Duration,
}

impl GroupRuntime {
    fn key(&self) -> String {
        format!("{}::{}", self.group.file, self.group.name)
    }
}

/// `<state_dir>/state.json`.
#[derive(Default, Serialize, Deserialize)]
pub struct StateFile {
    /// Group key → rule name → alerts.
    #[serde(default)]
    groups: BTreeMap<String, BTreeMap<String, AlertSet>>,
    #[serde(default)]
    slos: BTreeMap<String, SloCounts>,
    #[serde(default)]
    silences: Silences,
}

fn now_ms() -> i64 {
    sightline_model::now_ns() / 1_000_000
}

impl Alerting {
    /// Builds the run-time state, restoring what `<state_dir>/state.json` saved.
    pub fn new(cfg: AlertingConfig, metrics: AlertMetrics) -> Result<Arc<Self>> {
        let mut saved: StateFile = match std::fs::read(cfg.state_dir.join(STATE_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                // Kept aside for a human, never overwritten by the next save.
                let path = cfg.state_dir.join(STATE_FILE);
                let aside = cfg.state_dir.join(format!("{STATE_FILE}.bad"));
                let _ = std::fs::rename(&path, &aside);
                tracing::warn!(error = %e, kept = %aside.display(), "alerting state file unreadable; starting afresh");
                StateFile::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile::default(),
            Err(e) => return Err(e).context("read alerting state"),
        };
        let groups = cfg
            .groups
            .iter()
            .map(|g| {
                let mut rt = GroupRuntime {
                    group: g.clone(),
                    rules: g.rules.iter().map(|_| RuleRuntime::default()).collect(),
                    last_eval_ms: None,
                    eval_duration: Duration::ZERO,
                };
                if let Some(mut saved) = saved.groups.remove(&rt.key()) {
                    for (i, (rule, r)) in g.rules.iter().zip(rt.rules.iter_mut()).enumerate() {
                        if let Some(set) = saved.remove(&rule_key(i, rule)) {
                            r.alerts = set;
                        }
                    }
                }
                rt.rules.iter_mut().for_each(|r| r.health = "unknown");
                Mutex::new(rt)
            })
            .collect();
        let slos = cfg
            .slos
            .iter()
            .map(|c| {
                let mut rt = SloRuntime::new(c.clone());
                if let Some(counts) = saved.slos.remove(&c.name) {
                    rt.restore(counts);
                }
                Mutex::new(rt)
            })
            .collect();
        let probes = cfg
            .probes
            .iter()
            .map(|p| Mutex::new(crate::probe::ProbeRuntime::new(p.clone())))
            .collect();
        let notifiers = cfg
            .notifiers
            .iter()
            .map(|n| {
                Arc::new(Notifier::new(
                    n.clone(),
                    metrics.clone(),
                    &cfg.external_url,
                    cfg.evaluation_interval,
                ))
            })
            .collect();
        Ok(Arc::new(Self {
            groups,
            slos,
            probes,
            silences: Mutex::new(saved.silences),
            notifiers,
            metrics,
            dirty: Default::default(),
            save_lock: Mutex::new(()),
            cfg,
        }))
    }

    pub fn config(&self) -> &AlertingConfig {
        &self.cfg
    }

    /// Starts every loop; they end when `stop` turns true.
    pub fn start(
        self: &Arc<Self>,
        backend: Arc<dyn Backend>,
        stop: watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        for i in 0..self.groups.len() {
            let (me, b, stop) = (self.clone(), backend.clone(), stop.clone());
            tasks.push(tokio::spawn(async move { me.group_loop(i, b, stop).await }));
        }
        if !self.slos.is_empty() {
            let (me, b, stop) = (self.clone(), backend.clone(), stop.clone());
            tasks.push(tokio::spawn(async move { me.slo_loop(b, stop).await }));
        }
        for i in 0..self.probes.len() {
            let (me, b, stop) = (self.clone(), backend.clone(), stop.clone());
            tasks.push(tokio::spawn(async move { me.probe_loop(i, b, stop).await }));
        }
        for n in &self.notifiers {
            tasks.push(tokio::spawn(n.clone().run(stop.clone())));
        }
        tasks.push(tokio::spawn(self.clone().save_loop(stop.clone())));
        tasks
    }

    async fn group_loop(
        &self,
        i: usize,
        backend: Arc<dyn Backend>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut tick = ticker(lock(&self.groups[i]).group.interval);
        while next_tick(&mut tick, &mut stop).await {
            self.eval_group(i, &backend).await;
        }
    }

    async fn slo_loop(&self, backend: Arc<dyn Backend>, mut stop: watch::Receiver<bool>) {
        let mut tick = ticker(self.cfg.evaluation_interval);
        while next_tick(&mut tick, &mut stop).await {
            for i in 0..self.slos.len() {
                self.eval_slo(i, &backend).await;
            }
        }
    }

    /// Evaluates one group's rules in order at one instant.
    pub async fn eval_group(&self, i: usize, backend: &Arc<dyn Backend>) {
        let started = Instant::now();
        let now = now_ms();
        let (rules, tenant, limit) = {
            let g = lock(&self.groups[i]);
            (
                g.group.rules.clone(),
                TenantId::default_tenant(),
                g.group.limit,
            )
        };
        let source = backend.source();
        for (ri, rule) in rules.iter().enumerate() {
            let rule_started = Instant::now();
            self.metrics.rule_evaluations.inc();
            let result = query(&source, &tenant, &rule.expr, now).await;
            let outcome = match result {
                Err(e) => Err(e),
                Ok(samples) if limit > 0 && samples.len() > limit => Err(format!(
                    "rule produced {} results, more than the group's limit {limit}",
                    samples.len()
                )),
                Ok(samples) => match rule.kind {
                    RuleKind::Recording => {
                        let batch = recorded(rule, &tenant, samples, now);
                        backend.append(batch).await.map(|_| None)
                    }
                    RuleKind::Alerting => self.alert_results(rule, samples).map(Some),
                },
            };
            let mut g = lock(&self.groups[i]);
            let r = &mut g.rules[ri];
            r.last_eval_ms = Some(now);
            r.eval_duration = rule_started.elapsed();
            match outcome {
                Ok(results) => {
                    r.health = "ok";
                    r.last_error = None;
                    if let Some(results) = results
                        && r.alerts
                            .update(now, results, rule.for_, rule.keep_firing_for)
                    {
                        self.dirty.store(true, Ordering::Release);
                    }
                }
                Err(e) => {
                    self.metrics.rule_evaluation_failures.inc();
                    tracing::debug!(rule = %rule.name, error = %e, "rule evaluation failed");
                    r.health = "err";
                    r.last_error = Some(e);
                }
            }
        }
        let (offers, alerts_series) = {
            let mut g = lock(&self.groups[i]);
            g.last_eval_ms = Some(now);
            g.eval_duration = started.elapsed();
            let url = format!("{}/api/v1/rules", self.cfg.external_url);
            let sets: Vec<&AlertSet> = g.rules.iter().map(|r| &r.alerts).collect();
            (offers(&sets, &url), alerts_series(&sets, now))
        };
        self.offer(&offers, now);
        if !alerts_series.is_empty() {
            let batch = MetricBatch {
                tenant,
                series: alerts_series,
                metadata: vec![],
            };
            if let Err(e) = backend.append(batch).await {
                tracing::warn!(error = %e, "writing ALERTS failed");
            }
        }
    }

    /// An alerting rule's alerts from its result: labels and annotations expanded.
    fn alert_results(
        &self,
        rule: &Rule,
        samples: Vec<(Labels, f64)>,
    ) -> Result<Vec<Active>, String> {
        let external = self.cfg.external_labels.to_pairs();
        samples
            .into_iter()
            .map(|(mut labels, value)| {
                labels.remove("__name__");
                let own = labels.to_pairs();
                let ctx = TemplateContext {
                    labels: &own,
                    external_labels: &external,
                    value,
                };
                let mut pairs = own.clone();
                for (k, t) in &rule.labels {
                    let v = t
                        .template
                        .expand(&ctx)
                        .map_err(|e| format!("label {k}: {e}"))?;
                    pairs.retain(|(n, _)| n != k);
                    pairs.push((k.clone(), v));
                }
                pairs.retain(|(n, _)| n != "alertname");
                pairs.push(("alertname".into(), rule.name.clone()));
                let annotations = rule
                    .annotations
                    .iter()
                    .map(|(k, t)| {
                        t.template
                            .expand(&ctx)
                            .map(|v| (k.clone(), v))
                            .map_err(|e| format!("annotation {k}: {e}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Active {
                    labels: Labels::from_pairs(pairs),
                    annotations,
                    value,
                })
            })
            .collect()
    }

    /// Reads an SLO's sources, counts, evaluates, stores its series, offers its alerts.
    pub async fn eval_slo(&self, i: usize, backend: &Arc<dyn Backend>) {
        let started = Instant::now();
        let now = now_ms();
        self.metrics.rule_evaluations.inc();
        let selections = lock(&self.slos[i]).selections(now);
        let source = backend.source();
        let fetched = tokio::task::spawn_blocking(move || {
            selections
                .iter()
                .map(|sel| source.select(sel).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        let (batch, offers) = {
            let mut slo = lock(&self.slos[i]);
            match fetched {
                Ok(f) => slo.apply(now, f),
                Err(e) => {
                    self.metrics.rule_evaluation_failures.inc();
                    slo.last_error = Some(e);
                }
            }
            if slo.evaluate(now, &self.cfg.external_url) {
                self.dirty.store(true, Ordering::Release);
            }
            slo.eval_duration = started.elapsed();
            let url = format!("{}/api/v1/slos/{}", self.cfg.external_url, slo.cfg.name);
            let sets: Vec<&AlertSet> = slo.alerts().collect();
            let mut batch = slo.series(now);
            batch.series.extend(alerts_series(&sets, now));
            (batch, offers(&sets, &url))
        };
        self.offer(&offers, now);
        if let Err(e) = backend.append(batch).await {
            tracing::warn!(error = %e, "writing SLO series failed");
        }
    }

    fn offer(&self, offers: &[Offered], now: i64) {
        if offers.is_empty() || self.notifiers.is_empty() {
            return;
        }
        let silences = lock(&self.silences).clone();
        let at = chrono::Utc::now();
        let silenced = |l: &Labels| silences.silenced(l, at);
        for n in &self.notifiers {
            n.offer(offers, &silenced, now);
        }
    }

    async fn probe_loop(
        &self,
        i: usize,
        backend: Arc<dyn Backend>,
        mut stop: watch::Receiver<bool>,
    ) {
        let (delay, interval) = {
            let p = lock(&self.probes[i]);
            (p.initial_delay(), p.interval())
        };
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        let mut tick = ticker(interval);
        while next_tick(&mut tick, &mut stop).await {
            let (client, url) = {
                let p = lock(&self.probes[i]);
                if p.finished() {
                    return;
                }
                p.request()
            };
            let at = now_ms();
            let (answer, took) = crate::probe::run_once(&client, &url).await;
            let batch = lock(&self.probes[i]).record(at, answer, took);
            if let Err(e) = backend.append(batch).await {
                tracing::warn!(error = %e, "writing probe results failed");
            }
        }
    }

    /// Counts spans for span SLIs (called after the spans are stored).
    pub fn observe_spans(&self, tenant: &TenantId, spans: &[Span]) {
        for s in &self.slos {
            lock(s).observe_spans(tenant, spans);
        }
    }

    /// [`Alerting::save`] on a blocking thread (it serialises and fsyncs megabytes).
    async fn save_in_background(self: &Arc<Self>) -> Result<()> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.save())
            .await
            .context("save task")?
    }

    async fn save_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut last_full = Instant::now();
        let mut tick = ticker(SAVE_CHECK);
        while next_tick(&mut tick, &mut stop).await {
            let slo_due = !self.slos.is_empty() && last_full.elapsed() >= SLO_SAVE_INTERVAL;
            if slo_due || self.dirty.load(Ordering::Acquire) {
                last_full = Instant::now();
                if let Err(e) = self.save_in_background().await {
                    tracing::warn!(error = %e, "saving alerting state failed");
                }
            }
        }
    }

    /// Writes `state.json` atomically; one writer at a time.
    pub fn save(&self) -> Result<()> {
        let _one_writer = lock(&self.save_lock);
        self.dirty.store(false, Ordering::Release);
        let mut file = StateFile::default();
        for g in &self.groups {
            let g = lock(g);
            let rules = g
                .group
                .rules
                .iter()
                .zip(&g.rules)
                .enumerate()
                .map(|(i, (rule, r))| (rule_key(i, rule), r.alerts.clone()))
                .collect();
            file.groups.insert(g.key(), rules);
        }
        for s in &self.slos {
            let s = lock(s);
            file.slos.insert(s.cfg.name.clone(), s.counts.clone());
        }
        file.silences = lock(&self.silences).clone();
        let bytes = serde_json::to_vec(&file).context("encode alerting state")?;
        write_atomic(&self.cfg.state_dir, STATE_FILE, &bytes)
    }

    /// Adds or replaces a silence, durably; returns its id. `Err(true, …)` is the caller's
    /// mistake, `Err(false, …)` ours.
    pub async fn upsert_silence(self: &Arc<Self>, s: Silence) -> Result<String, (bool, String)> {
        let id = {
            let mut set = lock(&self.silences);
            set.prune(chrono::Utc::now());
            set.upsert(s, chrono::Utc::now()).map_err(|e| (true, e))?
        };
        self.save_in_background()
            .await
            .map_err(|e| (false, format!("{e:#}")))?;
        Ok(id)
    }

    /// Ends a silence, durably; false when unknown.
    pub async fn expire_silence(self: &Arc<Self>, id: &str) -> Result<bool, String> {
        let found = lock(&self.silences).expire(id, chrono::Utc::now());
        if found {
            self.save_in_background()
                .await
                .map_err(|e| format!("{e:#}"))?;
        }
        Ok(found)
    }
}

/// A rule's key in the state file: its place in the group and its name (two rules may
/// share a name).
fn rule_key(i: usize, rule: &Rule) -> String {
    format!("{i}:{}", rule.name)
}

/// Runs an instant query; the result as samples (a scalar is one sample without labels).
async fn query(
    source: &Arc<dyn sightline_query::promql::SeriesSource>,
    tenant: &TenantId,
    expr: &str,
    t_ms: i64,
) -> Result<Vec<(Labels, f64)>, String> {
    let (source, tenant) = (source.clone(), tenant.clone());
    let q = PromQuery {
        expr: expr.to_string(),
        start_ms: t_ms,
        end_ms: t_ms,
        step_ms: 0,
    };
    let value = tokio::task::spawn_blocking(move || {
        promql::evaluate(&*source, &tenant, &q, &PromLimits::default())
    })
    .await
    .map_err(|e| format!("query task: {e}"))?
    .map_err(|e| e.to_string())?;
    match value {
        PromValue::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
        PromValue::Scalar { v, .. } => Ok(vec![(Labels::default(), v)]),
        _ => Err("rule result is not a vector or a scalar".into()),
    }
}

/// A recording rule's output: each sample renamed, with the rule's labels.
fn recorded(rule: &Rule, tenant: &TenantId, samples: Vec<(Labels, f64)>, t_ms: i64) -> MetricBatch {
    let series = samples
        .into_iter()
        .map(|(labels, v)| {
            let mut pairs = labels.into_pairs();
            pairs.retain(|(n, _)| n != "__name__" && !rule.labels.iter().any(|(k, _)| k == n));
            pairs.push(("__name__".into(), rule.name.clone()));
            pairs.extend(rule.labels.iter().map(|(k, t)| (k.clone(), t.text.clone())));
            SeriesSamples {
                labels: Labels::from_pairs(pairs),
                samples: vec![Sample {
                    timestamp_ms: t_ms,
                    value: v,
                }],
                exemplars: vec![],
            }
        })
        .collect();
    MetricBatch {
        tenant: tenant.clone(),
        series,
        metadata: vec![],
    }
}

/// Firing and resolved alerts, for the notifiers.
fn offers(sets: &[&AlertSet], generator_url: &str) -> Vec<Offered> {
    sets.iter()
        .flat_map(|s| s.all())
        .filter(|a| a.state != AlertState::Pending)
        .map(|a| Offered {
            alert: a.clone(),
            generator_url: generator_url.to_string(),
        })
        .collect()
}

/// `ALERTS{alertname, alertstate, ...} 1` for every pending and firing alert.
fn alerts_series(sets: &[&AlertSet], t_ms: i64) -> Vec<SeriesSamples> {
    sets.iter()
        .flat_map(|s| s.active())
        .map(|a| {
            let mut pairs = a.labels.to_pairs();
            pairs.push(("__name__".into(), "ALERTS".into()));
            pairs.push(("alertstate".into(), a.state.as_str().into()));
            SeriesSamples {
                labels: Labels::from_pairs(pairs),
                samples: vec![Sample {
                    timestamp_ms: t_ms,
                    value: 1.0,
                }],
                exemplars: vec![],
            }
        })
        .collect()
}

fn ticker(period: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Waits for the next tick; false once `stop` turns true.
async fn next_tick(tick: &mut tokio::time::Interval, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = stop.changed() => false,
        _ = tick.tick() => true,
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let tmp: PathBuf = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name)).context("rename state file")?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests;
