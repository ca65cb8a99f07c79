//! The `data` of the alerting endpoints: `/api/v1/rules` and `/api/v1/alerts` in Prometheus'
//! shapes (SLO alerts appear as groups named `slo:<name>`), `/api/v1/slos`, `/api/v1/probes`
//! and `/api/v1/silences` (Alertmanager's v2 silence shape).

use serde_json::{Value as Json, json};

use sightline_query::promql::format_value;

use crate::Alerting;
use crate::budget::Status;
use crate::engine::lock;
use crate::notify::{labels_json, pairs_json, rfc3339};
use crate::rules::RuleKind;
use crate::slo::{SloAlert, SloRuntime};
use crate::state::{Alert, AlertSet, AlertState};

/// Which rules `/api/v1/rules?type=` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleFilter {
    All,
    Alerting,
    Recording,
}

fn alert_json(a: &Alert) -> Json {
    let mut v = json!({
        "labels": labels_json(&a.labels),
        "annotations": pairs_json(&a.annotations),
        "state": a.state.as_str(),
        "activeAt": rfc3339(a.active_at_ms),
        "value": format_value(a.value),
    });
    if let Some(k) = a.keep_firing_since_ms {
        v["keepFiringSince"] = json!(rfc3339(k));
    }
    v
}

fn seconds(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

fn last_eval(ms: Option<i64>) -> String {
    ms.map_or("0001-01-01T00:00:00Z".into(), rfc3339)
}

impl Alerting {
    /// `/api/v1/rules`.
    pub fn rules_json(&self, filter: RuleFilter) -> Json {
        let mut groups = Vec::new();
        for g in &self.groups {
            let g = lock(g);
            let rules: Vec<Json> = g
                .group
                .rules
                .iter()
                .zip(&g.rules)
                .filter(|(rule, _)| match filter {
                    RuleFilter::All => true,
                    RuleFilter::Alerting => rule.kind == RuleKind::Alerting,
                    RuleFilter::Recording => rule.kind == RuleKind::Recording,
                })
                .map(|(rule, r)| {
                    let common = json!({
                        "name": rule.name,
                        "query": rule.expr,
                        "labels": pairs_json(&rule.labels.iter().map(|(k, t)| (k.clone(), t.text.clone())).collect::<Vec<_>>()),
                        "health": r.health,
                        "lastError": r.last_error.clone().unwrap_or_default(),
                        "evaluationTime": seconds(r.eval_duration),
                        "lastEvaluation": last_eval(r.last_eval_ms),
                    });
                    let mut v = common;
                    match rule.kind {
                        RuleKind::Recording => v["type"] = json!("recording"),
                        RuleKind::Alerting => {
                            v["type"] = json!("alerting");
                            v["state"] = json!(r.alerts.state().as_str());
                            v["duration"] = json!(seconds(rule.for_));
                            v["keepFiringFor"] = json!(seconds(rule.keep_firing_for));
                            v["annotations"] = pairs_json(
                                &rule
                                    .annotations
                                    .iter()
                                    .map(|(k, t)| (k.clone(), t.text.clone()))
                                    .collect::<Vec<_>>(),
                            );
                            v["alerts"] = json!(r.alerts.active().map(alert_json).collect::<Vec<_>>());
                        }
                    }
                    v
                })
                .collect();
            if rules.is_empty() && filter != RuleFilter::All {
                continue;
            }
            groups.push(json!({
                "name": g.group.name,
                "file": g.group.file,
                "rules": rules,
                "interval": seconds(g.group.interval),
                "limit": g.group.limit,
                "evaluationTime": seconds(g.eval_duration),
                "lastEvaluation": last_eval(g.last_eval_ms),
            }));
        }
        if filter != RuleFilter::Recording {
            for s in &self.slos {
                let s = lock(s);
                let rules: Vec<Json> = s
                    .counts
                    .alerts
                    .iter()
                    .filter_map(|(key, set)| {
                        let kind = SloAlert::ALL.into_iter().find(|k| k.key() == key)?;
                        Some(slo_rule_json(&s, kind, set))
                    })
                    .collect();
                groups.push(json!({
                    "name": format!("slo:{}", s.cfg.name),
                    "file": "sightline-slos",
                    "rules": rules,
                    "interval": seconds(self.cfg.evaluation_interval),
                    "limit": 0,
                    "evaluationTime": seconds(s.eval_duration),
                    "lastEvaluation": last_eval(s.last_eval_ms),
                }));
            }
        }
        json!({ "groups": groups })
    }

    /// `/api/v1/alerts`: pending and firing alerts of rules and SLOs.
    pub fn alerts_json(&self) -> Json {
        let mut alerts = Vec::new();
        for g in &self.groups {
            let g = lock(g);
            alerts.extend(
                g.rules
                    .iter()
                    .flat_map(|r| r.alerts.active())
                    .map(alert_json),
            );
        }
        for s in &self.slos {
            let s = lock(s);
            alerts.extend(s.alerts().flat_map(AlertSet::active).map(alert_json));
        }
        json!({ "alerts": alerts })
    }

    /// `/api/v1/slos`.
    pub fn slos_json(&self) -> Json {
        Json::Array(self.slos.iter().map(|s| slo_json(&lock(s))).collect())
    }

    /// `/api/v1/slos/{name}`; `None` when no SLO has that name.
    pub fn slo_json(&self, name: &str) -> Option<Json> {
        self.slos
            .iter()
            .map(|s| lock(s))
            .find(|s| s.cfg.name == name)
            .map(|s| slo_json(&s))
    }

    /// `/api/v1/probes`.
    pub fn probes_json(&self) -> Json {
        Json::Array(self.probes.iter().map(|p| lock(p).to_json()).collect())
    }

    /// `/api/v1/silences`.
    pub fn silences_json(&self) -> Json {
        let now = chrono::Utc::now();
        Json::Array(
            lock(&self.silences)
                .list()
                .iter()
                .map(|s| s.to_json(now))
                .collect(),
        )
    }

    /// One silence; `None` when unknown.
    pub fn silence_json(&self, id: &str) -> Option<Json> {
        lock(&self.silences)
            .get(id)
            .map(|s| s.to_json(chrono::Utc::now()))
    }
}

fn slo_rule_json(s: &SloRuntime, kind: SloAlert, set: &AlertSet) -> Json {
    json!({
        "type": "alerting",
        "name": kind.alertname(),
        "query": kind.query(),
        "duration": 0,
        "keepFiringFor": 0,
        "labels": {"slo": s.cfg.name, "severity": kind.severity()},
        "annotations": {},
        "alerts": set.active().map(alert_json).collect::<Vec<_>>(),
        "state": set.state().as_str(),
        "health": if s.last_error.is_some() { "err" } else if s.last_eval_ms.is_some() { "ok" } else { "unknown" },
        "lastError": s.last_error.clone().unwrap_or_default(),
        "evaluationTime": seconds(s.eval_duration),
        "lastEvaluation": last_eval(s.last_eval_ms),
    })
}

fn budget_json(st: Option<&Status>, total_minutes: f64) -> Json {
    match st {
        Some(st) => json!({
            "total_minutes": st.total_minutes,
            "used_minutes": st.used_minutes,
            "remaining_minutes": st.remaining_minutes,
            "remaining_percent": st.remaining_ratio * 100.0,
            "exhausted": st.exhausted,
        }),
        None => json!({
            "total_minutes": total_minutes,
            "used_minutes": 0.0,
            "remaining_minutes": total_minutes,
            "remaining_percent": 100.0,
            "exhausted": false,
        }),
    }
}

fn slo_json(s: &SloRuntime) -> Json {
    let st = s.status.as_ref();
    let burn: serde_json::Map<String, Json> = crate::budget::BURN_WINDOWS
        .iter()
        .map(|(w, _)| (w.to_string(), json!(st.and_then(|st| st.burn(w)))))
        .collect();
    let window_minutes = s.window.range(s.last_eval_ms.unwrap_or(0)).2;
    let alerts: Vec<Json> = s
        .alerts()
        .flat_map(AlertSet::all)
        .filter(|a| a.state != AlertState::Inactive)
        .map(alert_json)
        .collect();
    json!({
        "name": s.cfg.name,
        "objective": s.cfg.objective,
        "window": s.window.describe(),
        "budgeting": s.cfg.budgeting,
        "tenant": s.tenant.as_str(),
        "sli_kind": s.kind(),
        "sli": st.and_then(|st| st.sli).map(|v| v * 100.0),
        "events": {
            "good": st.map_or(0.0, |st| st.events.total - st.events.bad()),
            "total": st.map_or(0.0, |st| st.events.total),
        },
        "error_budget": budget_json(st, window_minutes as f64 * (1.0 - s.objective)),
        "burn_rates": burn,
        "alerts": alerts,
        "last_evaluation": s.last_eval_ms.map(rfc3339),
        "last_error": s.last_error,
    })
}
