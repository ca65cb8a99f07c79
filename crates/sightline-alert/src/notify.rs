//! Notifiers: where firing and resolved alerts go, beside evaluation and never in it.
//!
//! Evaluation hands every alert it has to [`Notifier::offer`] (a short lock); each notifier's
//! own task ([`Notifier::run`]) decides what is due and sends it, retrying with backoff, so a
//! receiver that is down delays only its own notifications.
//!
//! - `webhook`, `slack`, `pagerduty` group alerts by `group_by` labels as Alertmanager does:
//!   a new group waits `group_wait`, a changed group (an alert fired or resolved) is sent at
//!   most every `group_interval`, an unchanged firing group every `repeat_interval`;
//! - `alertmanager` leaves grouping to the real Alertmanager: each alert is posted to
//!   `/api/v2/alerts` when it fires or resolves and re-sent every `resend_delay` while firing,
//!   with `endsAt` four resend delays ahead, as Prometheus does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value as Json, json};
use tokio::sync::watch;

use sightline_model::Labels;

use crate::AlertMetrics;
use crate::config::{NotifierConfig, NotifierKind};
use crate::state::{Alert, AlertState};

const TICK: Duration = Duration::from_millis(200);
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];
const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// An alert offered for notification, with the link to what raised it.
#[derive(Clone, Debug)]
pub struct Offered {
    pub alert: Alert,
    pub generator_url: String,
}

#[derive(Default)]
struct Group {
    labels: Labels,
    alerts: BTreeMap<Labels, Offered>,
    created_ms: i64,
    last_sent_ms: Option<i64>,
    sent_firing: BTreeSet<Labels>,
    next_try_ms: i64,
}

#[derive(Default)]
struct AmEntry {
    offered: Option<Offered>,
    sent_ms: Option<i64>,
    sent_firing: bool,
}

#[derive(Default)]
struct Pending {
    groups: BTreeMap<String, Group>,
    am: BTreeMap<Labels, AmEntry>,
    am_next_try_ms: i64,
    /// Alerts whose resolution was sent, with their `resolved_at_ms`: evaluation offers a
    /// resolved alert for 15 minutes, and it is news once.
    told_resolved: BTreeMap<Labels, i64>,
}

pub struct Notifier {
    pub cfg: NotifierConfig,
    client: reqwest::Client,
    pending: Mutex<Pending>,
    metrics: AlertMetrics,
    external_url: String,
    eval_interval: Duration,
    /// Alerts that fired before this are unknown to us but may be known to the receiver
    /// (sent by the run before a restart): their resolution is still news.
    started_ms: i64,
}

/// A notification ready to send.
struct Due {
    key: String,
    body: Json,
    /// Alerts sent as firing and as resolved.
    firing: BTreeSet<Labels>,
    resolved: BTreeSet<Labels>,
}

impl Notifier {
    pub fn new(
        cfg: NotifierConfig,
        metrics: AlertMetrics,
        external_url: &str,
        eval_interval: Duration,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout.unwrap_or(Duration::from_secs(10)))
            .build()
            .unwrap_or_default();
        Self {
            cfg,
            client,
            pending: Mutex::new(Pending::default()),
            metrics,
            external_url: external_url.to_string(),
            eval_interval,
            started_ms: sightline_model::now_ns() / 1_000_000,
        }
    }

    fn group_wait(&self) -> i64 {
        ms(self.cfg.group_wait.unwrap_or(Duration::from_secs(10)))
    }
    fn group_interval(&self) -> i64 {
        ms(self.cfg.group_interval.unwrap_or(Duration::from_secs(60)))
    }
    fn repeat_interval(&self) -> i64 {
        ms(self
            .cfg
            .repeat_interval
            .unwrap_or(Duration::from_secs(4 * 3600)))
    }
    fn resend_delay(&self) -> i64 {
        ms(self.cfg.resend_delay.unwrap_or(Duration::from_secs(60)))
    }
    fn send_resolved(&self) -> bool {
        self.cfg.send_resolved.unwrap_or(true)
    }

    fn accepts(&self, labels: &Labels) -> bool {
        self.cfg
            .matchers
            .iter()
            .all(|(name, re)| re.is_match(labels.get(name).unwrap_or("")))
    }

    /// Takes the alerts of one evaluation (pending ones are ignored, silenced ones dropped).
    pub fn offer(&self, alerts: &[Offered], silenced: &dyn Fn(&Labels) -> bool, now_ms: i64) {
        let Ok(mut p) = self.pending.lock() else {
            return;
        };
        for o in alerts {
            let labels = &o.alert.labels;
            if o.alert.state == AlertState::Pending || !self.accepts(labels) {
                continue;
            }
            // A resolved alert is news only to a notifier that has it as firing (once sent
            // resolved it is forgotten, and later offers of it are ignored).
            let resolved = o.alert.state == AlertState::Inactive;
            if resolved && p.told_resolved.get(labels) == o.alert.resolved_at_ms.as_ref() {
                continue;
            }
            let fired_before_start = o.alert.fired_at_ms.is_some_and(|f| f < self.started_ms);
            if self.cfg.kind == NotifierKind::Alertmanager {
                // Silences are Alertmanager's own here: everything is forwarded, as
                // Prometheus forwards, so a silenced alert is never mistaken for resolved.
                let known = p.am.contains_key(labels);
                if resolved && !known && !fired_before_start {
                    continue;
                }
                let e = p.am.entry(labels.clone()).or_default();
                if resolved && !known {
                    e.sent_firing = true; // the run before the restart sent it
                }
                e.offered = Some(o.clone());
                continue;
            }
            let group_labels = self.group_labels(labels);
            let key = format!("{}:{}", self.cfg.name, group_key(&group_labels));
            if silenced(labels) {
                if let Some(g) = p.groups.get_mut(&key) {
                    g.alerts.remove(labels);
                }
                continue;
            }
            let known = p
                .groups
                .get(&key)
                .is_some_and(|g| g.alerts.contains_key(labels));
            if resolved && !known && !fired_before_start {
                continue;
            }
            let g = p.groups.entry(key).or_insert_with(|| Group {
                labels: group_labels,
                created_ms: now_ms,
                ..Group::default()
            });
            if resolved && !known {
                // Resolved after a restart: the receiver heard it fire from the run before.
                g.last_sent_ms.get_or_insert(0);
                g.sent_firing.insert(labels.clone());
            }
            if resolved && !self.send_resolved() {
                g.alerts.remove(labels);
            } else {
                g.alerts.insert(labels.clone(), o.clone());
            }
        }
    }

    fn group_labels(&self, labels: &Labels) -> Labels {
        let by = self
            .cfg
            .group_by
            .clone()
            .unwrap_or_else(|| vec!["alertname".into()]);
        if by.iter().any(|b| b == "...") {
            return labels.clone();
        }
        Labels::from_pairs(
            by.iter()
                .filter_map(|b| labels.get(b).map(|v| (b.clone(), v.to_string()))),
        )
    }

    /// Runs until `stop`, sending what is due.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tick.tick() => {}
            }
            let now_ms = sightline_model::now_ns() / 1_000_000;
            for due in self.due(now_ms) {
                let ok = self.send(&due.body).await;
                self.sent(&due, ok, sightline_model::now_ns() / 1_000_000);
            }
        }
    }

    fn due(&self, now_ms: i64) -> Vec<Due> {
        let Ok(mut p) = self.pending.lock() else {
            return Vec::new();
        };
        if self.cfg.kind == NotifierKind::Alertmanager {
            return self.due_alertmanager(&mut p, now_ms).into_iter().collect();
        }
        let mut out = Vec::new();
        let (wait, interval, repeat) = (
            self.group_wait(),
            self.group_interval(),
            self.repeat_interval(),
        );
        // A group in flight stays; otherwise a group goes when nothing in it is left to say
        // (with `send_resolved: false` resolved alerts leave at once, and an alert that
        // fires again is then news again).
        p.groups.retain(|_, g| {
            g.next_try_ms == i64::MAX
                || g.alerts
                    .values()
                    .any(|o| o.alert.state == AlertState::Firing)
                || (g.last_sent_ms.is_some() && !g.alerts.is_empty())
        });
        for (key, g) in p.groups.iter_mut() {
            if now_ms < g.next_try_ms {
                continue;
            }
            let firing: BTreeSet<Labels> = g
                .alerts
                .values()
                .filter(|o| o.alert.state == AlertState::Firing)
                .map(|o| o.alert.labels.clone())
                .collect();
            let resolved: BTreeSet<Labels> = g
                .alerts
                .values()
                .filter(|o| o.alert.state == AlertState::Inactive)
                .map(|o| o.alert.labels.clone())
                .collect();
            let is_due = match g.last_sent_ms {
                None => !firing.is_empty() && now_ms - g.created_ms >= wait,
                Some(last) => {
                    let changed = firing != g.sent_firing || !resolved.is_empty();
                    (changed && now_ms - last >= interval)
                        || (!firing.is_empty() && now_ms - last >= repeat)
                }
            };
            if !is_due || (firing.is_empty() && resolved.is_empty()) {
                continue;
            }
            // Until the answer, nothing else is tried for this group.
            g.next_try_ms = i64::MAX;
            let alerts: Vec<&Offered> = g.alerts.values().collect();
            let body = match self.cfg.kind {
                NotifierKind::Webhook => self.webhook_body(key, &g.labels, &alerts),
                NotifierKind::Slack => slack_body(&g.labels, &alerts),
                NotifierKind::Pagerduty => self.pagerduty_body(key, &g.labels, &alerts),
                NotifierKind::Alertmanager => continue,
            };
            out.push(Due {
                key: key.clone(),
                body,
                firing,
                resolved,
            });
        }
        out
    }

    fn due_alertmanager(&self, p: &mut Pending, now_ms: i64) -> Option<Due> {
        if now_ms < p.am_next_try_ms {
            return None;
        }
        let resend = self.resend_delay();
        let valid_ms = 4 * resend.max(ms(self.eval_interval));
        let (mut firing, mut resolved, mut body) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
        // Resolved before ever being sent: nothing to tell.
        p.am.retain(|_, e| {
            e.sent_firing
                || e.offered
                    .as_ref()
                    .is_some_and(|o| o.alert.state == AlertState::Firing)
        });
        for (labels, e) in &p.am {
            let Some(o) = &e.offered else { continue };
            let is_firing = o.alert.state == AlertState::Firing;
            let due = if is_firing {
                !e.sent_firing || e.sent_ms.is_none_or(|s| now_ms - s >= resend)
            } else {
                e.sent_firing
            };
            if !due {
                continue;
            }
            let ends_ms = if is_firing {
                now_ms + valid_ms
            } else {
                o.alert.resolved_at_ms.unwrap_or(now_ms)
            };
            body.push(json!({
                "labels": labels_json(labels),
                "annotations": pairs_json(&o.alert.annotations),
                "startsAt": rfc3339(o.alert.fired_at_ms.unwrap_or(o.alert.active_at_ms)),
                "endsAt": rfc3339(ends_ms),
                "generatorURL": o.generator_url,
            }));
            if is_firing {
                firing.insert(labels.clone());
            } else {
                resolved.insert(labels.clone());
            }
        }
        if body.is_empty() {
            return None;
        }
        p.am_next_try_ms = i64::MAX;
        Some(Due {
            key: String::new(),
            body: Json::Array(body),
            firing,
            resolved,
        })
    }

    fn sent(&self, due: &Due, ok: bool, now_ms: i64) {
        let Ok(mut p) = self.pending.lock() else {
            return;
        };
        if ok {
            let resolved_at: Vec<(Labels, i64)> = due
                .resolved
                .iter()
                .filter_map(|l| {
                    let offered = match self.cfg.kind {
                        NotifierKind::Alertmanager => p.am.get(l).and_then(|e| e.offered.as_ref()),
                        _ => p.groups.get(&due.key).and_then(|g| g.alerts.get(l)),
                    };
                    Some((l.clone(), offered?.alert.resolved_at_ms?))
                })
                .collect();
            p.told_resolved.extend(resolved_at);
            p.told_resolved
                .retain(|_, at| now_ms - *at < crate::state::RESOLVED_RETENTION_MS);
        }
        let retry_ms = if ok {
            0
        } else {
            now_ms + self.group_interval().min(10_000)
        };
        if self.cfg.kind == NotifierKind::Alertmanager {
            p.am_next_try_ms = retry_ms;
            if ok {
                for l in &due.firing {
                    if let Some(e) = p.am.get_mut(l) {
                        e.sent_ms = Some(now_ms);
                        e.sent_firing = true;
                    }
                }
                for l in &due.resolved {
                    p.am.remove(l);
                }
            }
            return;
        }
        let Some(g) = p.groups.get_mut(&due.key) else {
            return;
        };
        g.next_try_ms = retry_ms;
        if ok {
            g.last_sent_ms = Some(now_ms);
            g.sent_firing = due.firing.clone();
            g.alerts.retain(|l, o| {
                !(due.resolved.contains(l) && o.alert.state == AlertState::Inactive)
            });
            if g.alerts.is_empty() {
                p.groups.remove(&due.key);
            }
        }
    }

    /// Posts `body`, retrying with backoff; counts the outcome.
    async fn send(&self, body: &Json) -> bool {
        let url = match (self.cfg.kind, &self.cfg.url) {
            (NotifierKind::Alertmanager, Some(u)) => {
                format!("{}/api/v2/alerts", u.trim_end_matches('/'))
            }
            (NotifierKind::Pagerduty, u) => u.clone().unwrap_or_else(|| PAGERDUTY_URL.into()),
            (_, Some(u)) => u.clone(),
            (_, None) => return false,
        };
        let labels = crate::NotifierLabel {
            notifier: self.cfg.name.clone(),
        };
        self.metrics.notifications.get_or_create(&labels).inc();
        let mut last_error = String::new();
        for (attempt, pause) in std::iter::once(Duration::ZERO).chain(BACKOFF).enumerate() {
            tokio::time::sleep(pause).await;
            match self.client.post(&url).json(body).send().await {
                Ok(r) if r.status().is_success() => return true,
                Ok(r) => last_error = format!("HTTP {}", r.status()),
                Err(e) => last_error = e.to_string(),
            }
            tracing::debug!(notifier = %self.cfg.name, attempt, error = %last_error, "notification failed");
        }
        self.metrics
            .notifications_failed
            .get_or_create(&labels)
            .inc();
        tracing::warn!(notifier = %self.cfg.name, error = %last_error, "notification failed after retries");
        false
    }

    fn webhook_body(&self, key: &str, group: &Labels, alerts: &[&Offered]) -> Json {
        let firing = alerts.iter().any(|o| o.alert.state == AlertState::Firing);
        let label_lists: Vec<Vec<(String, String)>> =
            alerts.iter().map(|o| o.alert.labels.to_pairs()).collect();
        let common_labels = common(label_lists.iter().map(Vec::as_slice));
        let common_annotations = common(alerts.iter().map(|o| &o.alert.annotations[..]));
        json!({
            "version": "4",
            "groupKey": key,
            "truncatedAlerts": 0,
            "status": if firing { "firing" } else { "resolved" },
            "receiver": self.cfg.name,
            "groupLabels": labels_json(group),
            "commonLabels": pairs_json(&common_labels),
            "commonAnnotations": pairs_json(&common_annotations),
            "externalURL": self.external_url,
            "alerts": alerts.iter().map(|o| alert_json(o)).collect::<Vec<_>>(),
        })
    }

    fn pagerduty_body(&self, key: &str, group: &Labels, alerts: &[&Offered]) -> Json {
        let firing: Vec<&&Offered> = alerts
            .iter()
            .filter(|o| o.alert.state == AlertState::Firing)
            .collect();
        let dedup = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes()));
        if firing.is_empty() {
            return json!({
                "routing_key": self.cfg.routing_key,
                "event_action": "resolve",
                "dedup_key": dedup,
            });
        }
        let severity = match firing
            .iter()
            .filter_map(|o| o.alert.labels.get("severity"))
            .next()
        {
            Some("page" | "critical") => "critical",
            Some("warning") => "warning",
            Some("info") => "info",
            _ => "error",
        };
        json!({
            "routing_key": self.cfg.routing_key,
            "event_action": "trigger",
            "dedup_key": dedup,
            "client": "Sightline",
            "client_url": self.external_url,
            "payload": {
                "summary": summary_line(group, alerts),
                "source": "sightline",
                "severity": severity,
                "custom_details": {
                    "firing": firing.iter().map(|o| alert_json(o)).collect::<Vec<_>>(),
                },
            },
        })
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

fn group_key(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}

/// The pairs every list shares.
fn common<'a>(mut lists: impl Iterator<Item = &'a [(String, String)]>) -> Vec<(String, String)> {
    let Some(first) = lists.next() else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = first.to_vec();
    for l in lists {
        out.retain(|p| l.contains(p));
    }
    out
}

pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

pub fn labels_json(labels: &Labels) -> Json {
    pairs_json(&labels.to_pairs())
}

pub fn pairs_json(pairs: &[(String, String)]) -> Json {
    Json::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

pub fn fingerprint(labels: &Labels) -> String {
    format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(group_key(labels).as_bytes())
    )
}

fn alert_json(o: &Offered) -> Json {
    let a = &o.alert;
    let firing = a.state == AlertState::Firing;
    json!({
        "status": if firing { "firing" } else { "resolved" },
        "labels": labels_json(&a.labels),
        "annotations": pairs_json(&a.annotations),
        "startsAt": rfc3339(a.fired_at_ms.unwrap_or(a.active_at_ms)),
        "endsAt": match a.resolved_at_ms {
            Some(r) if !firing => rfc3339(r),
            _ => "0001-01-01T00:00:00Z".to_string(),
        },
        "generatorURL": o.generator_url,
        "fingerprint": fingerprint(&a.labels),
    })
}

fn summary_line(group: &Labels, alerts: &[&Offered]) -> String {
    let firing = alerts
        .iter()
        .filter(|o| o.alert.state == AlertState::Firing)
        .count();
    let status = if firing > 0 {
        format!("FIRING:{firing}")
    } else {
        "RESOLVED".into()
    };
    let values: Vec<&str> = group.iter().map(|(_, v)| v).collect();
    format!("[{status}] {}", values.join(" "))
}

fn slack_body(group: &Labels, alerts: &[&Offered]) -> Json {
    let mut text = summary_line(group, alerts);
    for o in alerts {
        let a = &o.alert;
        let summary = a
            .annotations
            .iter()
            .find(|(k, _)| k == "summary")
            .map_or(String::new(), |(_, v)| format!(": {v}"));
        let state = if a.state == AlertState::Firing {
            "firing"
        } else {
            "resolved"
        };
        text.push_str(&format!(
            "\n• {} ({state}){summary} <{}|source>",
            a.labels.get("alertname").unwrap_or(""),
            o.generator_url
        ));
    }
    json!({ "text": text })
}

#[cfg(test)]
mod tests;
