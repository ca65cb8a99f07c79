//! Sightline's alerting: Prometheus alerting and recording rules, SLOs with error budgets and
//! multi-window burn-rate alerts, HTTP probes, notifiers and silences.
//!
//! [`Alerting`] owns the run-time state of all of them; the server starts its loops
//! ([`Alerting::start`]) over a [`Backend`] (PromQL reads and sample writes, the store in the
//! server) and the HTTP API renders it (`json`). Layout: `config` and `rules` read the YAML;
//! `state` is the alert life cycle; `budget` the SLO arithmetic, `slo` the SLO counts;
//! `engine` the evaluation loops and persistence; `notify`, `silence`, `probe`, `template`.
//!
//! What survives a restart is in `<data_dir>/alerting/state.json` (written atomically: temp
//! file, fsync, rename): pending and firing alerts with their `activeAt`, SLO counts and
//! cursors, silences.

pub mod budget;
pub mod config;
mod engine;
mod json;
pub mod notify;
pub mod probe;
pub mod rules;
pub mod silence;
pub mod slo;
pub mod state;
pub mod template;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use sightline_model::{Labels, MetricBatch};
use sightline_query::promql::SeriesSource;

pub use engine::StateFile;
pub use json::RuleFilter;

/// Everything alerting is configured with.
#[derive(Clone, Debug, Default)]
pub struct AlertingConfig {
    pub evaluation_interval: Duration,
    pub external_labels: Labels,
    /// Prefix of links in notifications (no trailing `/`); empty for relative links.
    pub external_url: String,
    pub groups: Vec<rules::RuleGroup>,
    pub slos: Vec<config::SloConfig>,
    pub probes: Vec<config::ProbeConfig>,
    pub notifiers: Vec<config::NotifierConfig>,
    /// Where `state.json` lives.
    pub state_dir: PathBuf,
}

/// What alerting reads and writes.
pub trait Backend: Send + Sync + 'static {
    /// Stored series, for PromQL and SLI reads; used from blocking threads.
    fn source(&self) -> Arc<dyn SeriesSource>;
    /// Stores samples (recording rules, `ALERTS`, SLO and probe series).
    fn append(&self, batch: MetricBatch) -> BoxFuture<'static, Result<(), String>>;
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifierLabel {
    pub notifier: String,
}

/// Alerting's own metrics, on the server's `/metrics`.
#[derive(Clone, Default)]
pub struct AlertMetrics {
    pub notifications: Family<NotifierLabel, Counter>,
    pub notifications_failed: Family<NotifierLabel, Counter>,
    pub rule_evaluations: Counter,
    pub rule_evaluation_failures: Counter,
}

impl AlertMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sightline_notifications",
            "Notifications sent (each counted once, retries included)",
            self.notifications.clone(),
        );
        registry.register(
            "sightline_notifications_failed",
            "Notifications that failed after every retry",
            self.notifications_failed.clone(),
        );
        registry.register(
            "sightline_rule_evaluations",
            "Rule and SLO evaluations",
            self.rule_evaluations.clone(),
        );
        registry.register(
            "sightline_rule_evaluation_failures",
            "Rule and SLO evaluations that failed",
            self.rule_evaluation_failures.clone(),
        );
    }
}

/// The run-time state of rules, SLOs, probes, silences and notifiers.
pub struct Alerting {
    cfg: AlertingConfig,
    groups: Vec<Mutex<engine::GroupRuntime>>,
    slos: Vec<Mutex<slo::SloRuntime>>,
    probes: Vec<Mutex<probe::ProbeRuntime>>,
    silences: Mutex<silence::Silences>,
    notifiers: Vec<Arc<notify::Notifier>>,
    metrics: AlertMetrics,
    /// Set when alerts or silences changed since the last save.
    dirty: AtomicBool,
    /// Held while `state.json` is written.
    save_lock: Mutex<()>,
}

impl Alerting {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.slos.is_empty() && self.probes.is_empty()
    }
}
