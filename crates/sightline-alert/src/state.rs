//! The life of an alert, as Prometheus runs it: a rule's result makes an alert *pending*;
//! after `for` it is *firing*; when the result no longer holds it stays firing for
//! `keep_firing_for`, then is *resolved* (kept 15 minutes so notifiers can say so).
//!
//! One [`AlertSet`] per alerting rule (rule files and SLOs alike). Alerts are keyed by their
//! label set; invariants: `fired_at_ms` is set exactly when the state is firing or the alert
//! was resolved after firing, `resolved_at_ms` exactly when inactive.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use sightline_model::Labels;

/// How long a resolved alert is kept for notifications (Prometheus' `resolvedRetention`).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Vec<(String, String)>,
    pub state: AlertState,
    /// Saved as Prometheus writes values (`"+Inf"`, `"NaN"` included), which JSON numbers
    /// cannot hold.
    #[serde(with = "value_text")]
    pub value: f64,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    /// When the condition last held.
    pub last_seen_ms: i64,
    /// Set while firing only because of `keep_firing_for`.
    pub keep_firing_since_ms: Option<i64>,
}

mod value_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&sightline_query::promql::format_value(*v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "+Inf" => Ok(f64::INFINITY),
            "-Inf" => Ok(f64::NEG_INFINITY),
            _ => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// One evaluation's result for one alert: its labels, annotations and value.
pub struct Active {
    pub labels: Labels,
    pub annotations: Vec<(String, String)>,
    pub value: f64,
}

/// The alerts of one rule.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "Vec<Alert>", into = "Vec<Alert>")]
pub struct AlertSet {
    alerts: BTreeMap<Labels, Alert>,
}

impl From<Vec<Alert>> for AlertSet {
    fn from(alerts: Vec<Alert>) -> Self {
        Self {
            alerts: alerts.into_iter().map(|a| (a.labels.clone(), a)).collect(),
        }
    }
}

impl From<AlertSet> for Vec<Alert> {
    fn from(set: AlertSet) -> Self {
        set.alerts.into_values().collect()
    }
}

impl AlertSet {
    /// Applies one evaluation at `now_ms`; returns whether any alert changed state.
    pub fn update(
        &mut self,
        now_ms: i64,
        results: Vec<Active>,
        for_: Duration,
        keep_firing_for: Duration,
    ) -> bool {
        let for_ms = for_.as_millis() as i64;
        let keep_ms = keep_firing_for.as_millis() as i64;
        let mut changed = false;
        let mut seen = Vec::with_capacity(results.len());
        for r in results {
            seen.push(r.labels.clone());
            match self.alerts.get_mut(&r.labels) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.annotations = r.annotations;
                    a.value = r.value;
                    a.last_seen_ms = now_ms;
                    a.keep_firing_since_ms = None;
                    if a.state == AlertState::Pending && now_ms - a.active_at_ms >= for_ms {
                        a.state = AlertState::Firing;
                        a.fired_at_ms = Some(now_ms);
                        changed = true;
                    }
                }
                _ => {
                    let firing = for_ms == 0;
                    self.alerts.insert(
                        r.labels.clone(),
                        Alert {
                            labels: r.labels,
                            annotations: r.annotations,
                            state: if firing {
                                AlertState::Firing
                            } else {
                                AlertState::Pending
                            },
                            value: r.value,
                            active_at_ms: now_ms,
                            fired_at_ms: firing.then_some(now_ms),
                            resolved_at_ms: None,
                            last_seen_ms: now_ms,
                            keep_firing_since_ms: None,
                        },
                    );
                    changed = true;
                }
            }
        }
        seen.sort();
        self.alerts.retain(|labels, a| {
            if seen.binary_search(labels).is_ok() {
                return true;
            }
            match a.state {
                AlertState::Pending => {
                    changed = true;
                    false
                }
                AlertState::Firing
                    if keep_ms > 0
                        && now_ms - *a.keep_firing_since_ms.get_or_insert(now_ms) < keep_ms =>
                {
                    true
                }
                AlertState::Firing => {
                    a.state = AlertState::Inactive;
                    a.resolved_at_ms = Some(now_ms);
                    a.keep_firing_since_ms = None;
                    changed = true;
                    true
                }
                AlertState::Inactive => a
                    .resolved_at_ms
                    .is_some_and(|r| now_ms - r < RESOLVED_RETENTION_MS),
            }
        });
        changed
    }

    /// Every alert: pending, firing and recently resolved.
    pub fn all(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    /// Pending and firing alerts.
    pub fn active(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .values()
            .filter(|a| a.state != AlertState::Inactive)
    }

    /// The rule's state: its most advanced alert's.
    pub fn state(&self) -> AlertState {
        self.active()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(instance: &str) -> Active {
        Active {
            labels: Labels::from_pairs([("alertname", "A"), ("instance", instance)]),
            annotations: vec![],
            value: 1.0,
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn pending_then_firing_then_resolved() {
        let mut set = AlertSet::default();
        assert!(set.update(0, vec![active("a")], 2 * S, Duration::ZERO));
        assert_eq!(set.state(), AlertState::Pending);
        assert!(!set.update(1_000, vec![active("a")], 2 * S, Duration::ZERO));
        assert!(set.update(2_000, vec![active("a")], 2 * S, Duration::ZERO));
        assert_eq!(set.state(), AlertState::Firing);
        assert!(set.update(3_000, vec![], 2 * S, Duration::ZERO));
        assert_eq!(set.state(), AlertState::Inactive);
        let a = set.all().next().expect("kept while resolved");
        assert_eq!(a.resolved_at_ms, Some(3_000));
        assert_eq!(a.fired_at_ms, Some(2_000));
        // Dropped after the retention.
        set.update(3_000 + RESOLVED_RETENTION_MS, vec![], 2 * S, Duration::ZERO);
        assert_eq!(set.all().count(), 0);
    }

    #[test]
    fn a_pending_alert_that_clears_is_forgotten() {
        let mut set = AlertSet::default();
        set.update(0, vec![active("a")], 10 * S, Duration::ZERO);
        set.update(1_000, vec![], 10 * S, Duration::ZERO);
        assert_eq!(set.all().count(), 0);
    }

    #[test]
    fn non_finite_values_survive_json() {
        let mut set = AlertSet::default();
        let mut a = active("a");
        a.value = f64::INFINITY;
        set.update(0, vec![a], Duration::ZERO, Duration::ZERO);
        let json = serde_json::to_string(&set).expect("encode");
        let back: AlertSet = serde_json::from_str(&json).expect("decode");
        assert_eq!(back.all().next().map(|a| a.value), Some(f64::INFINITY));
    }

    #[test]
    fn keep_firing_for_holds_a_cleared_alert() {
        let mut set = AlertSet::default();
        set.update(0, vec![active("a")], Duration::ZERO, 5 * S);
        assert_eq!(set.state(), AlertState::Firing);
        set.update(1_000, vec![], Duration::ZERO, 5 * S);
        assert_eq!(set.state(), AlertState::Firing);
        let a = set.active().next().expect("firing");
        assert_eq!(
            a.keep_firing_since_ms,
            Some(1_000),
            "since the first failing evaluation"
        );
        set.update(5_000, vec![], Duration::ZERO, 5 * S);
        assert_eq!(set.state(), AlertState::Firing);
        set.update(6_000, vec![], Duration::ZERO, 5 * S);
        assert_eq!(set.state(), AlertState::Inactive);
    }

    #[test]
    fn a_resolved_alert_that_returns_starts_again() {
        let mut set = AlertSet::default();
        set.update(0, vec![active("a")], Duration::ZERO, Duration::ZERO);
        set.update(1_000, vec![], Duration::ZERO, Duration::ZERO);
        set.update(2_000, vec![active("a")], Duration::ZERO, Duration::ZERO);
        let a = set.active().next().expect("firing again");
        assert_eq!(a.active_at_ms, 2_000);
        assert_eq!(a.resolved_at_ms, None);
    }
}
