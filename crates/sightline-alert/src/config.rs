//! The `slos`, `probes` and `notifiers` sections of the server's YAML file (their meaning is
//! in `docs/alerting.md`).
//!
//! Validation happens while deserializing wherever one field is enough (a selector that is
//! not PromQL, an objective of 120, a duration without a unit), so serde_yaml's error carries
//! the line and column of the bad value. Checks across fields (an SLI with two kinds, two
//! SLOs with one name) run in [`validate`], which finds the line of the offending entry in
//! the text.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{Result, bail};
use serde::{Deserialize, Deserializer};

use sightline_model::LabelMatcher;

use crate::budget::{Budgeting, Window};

/// A PromQL series selector, kept with its text.
#[derive(Clone, Debug)]
pub struct Selector {
    pub text: String,
    pub matchers: Vec<LabelMatcher>,
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let matchers = sightline_query::promql::parse_selector(&text).map_err(|e| {
            serde::de::Error::custom(format!("selector {text:?} is not a PromQL selector: {e}"))
        })?;
        Ok(Self { text, matchers })
    }
}

/// Durations as Prometheus writes them (`30s`, `1h30m`, `30d`).
pub(crate) mod duration {
    use super::*;

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        sightline_model::duration::parse_duration(&text).map_err(serde::de::Error::custom)
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        required(d).map(Some)
    }
}

fn objective<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if !(v > 0.0 && v < 100.0) {
        return Err(serde::de::Error::custom(format!(
            "objective {v} must be a percentage above 0 and below 100, like 99.9"
        )));
    }
    Ok(v)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    pub name: String,
    /// Percent, e.g. 99.9.
    #[serde(deserialize_with = "objective")]
    pub objective: f64,
    /// Rolling window; 30d unless `calendar` is set.
    #[serde(default, deserialize_with = "duration::optional")]
    pub window: Option<Duration>,
    /// `month`: the current calendar month (UTC) instead of a rolling window.
    #[serde(default)]
    pub calendar: Option<Calendar>,
    #[serde(default)]
    pub budgeting: Budgeting,
    /// The tenant whose data the SLI reads; `default` unless set.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Fewest events in the long window for a burn-rate alert (default 10).
    #[serde(default)]
    pub min_events: Option<f64>,
    /// Silence of the source after which `SLONoData` fires (default 10m).
    #[serde(default, deserialize_with = "duration::optional")]
    pub no_data_after: Option<Duration>,
    /// Extra labels on this SLO's alerts.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub sli: SliConfig,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Calendar {
    Month,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliConfig {
    pub errors: Option<Selector>,
    pub good: Option<Selector>,
    pub total: Option<Selector>,
    pub latency: Option<LatencySli>,
    pub spans: Option<SpanSli>,
    pub probe: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySli {
    /// The histogram's name, without `_bucket`.
    pub metric: String,
    /// Seconds; a bucket with this `le` must exist.
    pub threshold: f64,
    /// More matchers for the histogram's series, e.g. `{job="orders"}`.
    #[serde(default)]
    pub selector: Option<Selector>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanSli {
    pub service: String,
    /// The span name; every operation of the service when absent.
    #[serde(default)]
    pub operation: Option<String>,
    /// Spans longer than this are bad; only errors are when absent.
    #[serde(default, deserialize_with = "duration::optional")]
    pub max_duration: Option<Duration>,
}

impl SloConfig {
    pub fn window(&self) -> Window {
        match self.calendar {
            Some(Calendar::Month) => Window::CalendarMonth,
            None => Window::Rolling {
                minutes: self
                    .window
                    .map_or(30 * 1_440, |w| (w.as_secs() / 60) as i64),
            },
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    #[default]
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "liveness",
            ProbeKind::Readiness => "readiness",
            ProbeKind::Startup => "startup",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    pub name: String,
    #[serde(deserialize_with = "http_url")]
    pub url: String,
    #[serde(default)]
    pub kind: ProbeKind,
    #[serde(default, deserialize_with = "duration::optional")]
    pub interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub timeout: Option<Duration>,
    /// Statuses that count as success; any 2xx or 3xx when absent (as Kubernetes).
    #[serde(default)]
    pub expected_status: Option<Vec<u16>>,
    #[serde(default)]
    pub failure_threshold: Option<u32>,
    #[serde(default)]
    pub success_threshold: Option<u32>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub initial_delay: Option<Duration>,
    /// The tenant the probe's samples are written to; `default` unless set.
    #[serde(default)]
    pub tenant: Option<String>,
}

fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    match reqwest::Url::parse(&text) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(text),
        Ok(u) => Err(serde::de::Error::custom(format!(
            "url {text:?}: scheme {:?} is not http or https",
            u.scheme()
        ))),
        Err(e) => Err(serde::de::Error::custom(format!("url {text:?}: {e}"))),
    }
}

fn optional_http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    http_url(d).map(Some)
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NotifierKind {
    Webhook,
    Slack,
    Pagerduty,
    Alertmanager,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: NotifierKind,
    #[serde(default, deserialize_with = "optional_http_url")]
    pub url: Option<String>,
    /// PagerDuty's integration key.
    #[serde(default)]
    pub routing_key: Option<String>,
    /// Label name → regex (anchored); only alerts matching all are sent.
    #[serde(default, rename = "match", deserialize_with = "label_regexes")]
    pub matchers: Vec<(String, regex::Regex)>,
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub group_wait: Option<Duration>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub group_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub repeat_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub resend_delay: Option<Duration>,
    #[serde(default)]
    pub send_resolved: Option<bool>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub timeout: Option<Duration>,
}

fn label_regexes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, regex::Regex)>, D::Error> {
    let raw = BTreeMap::<String, String>::deserialize(d)?;
    raw.into_iter()
        .map(|(name, re)| {
            regex::Regex::new(&format!("^(?:{re})$"))
                .map(|r| (name.clone(), r))
                .map_err(|e| serde::de::Error::custom(format!("match.{name}: {e}")))
        })
        .collect()
}

/// serde_yaml places an error in a nested value at the start of the enclosing entry; this
/// finds the line of the value itself: the first line from `line` on that holds the value
/// the message quotes (its first `"…"` string, else its first number), or `line`.
pub fn refine_line(text: &str, line: usize, message: &str) -> usize {
    let quoted = message
        .split_once('"')
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(v, _)| v.to_string());
    let number = || {
        message
            .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .find(|t| !t.is_empty() && t.parse::<f64>().is_ok())
            .map(str::to_string)
    };
    let Some(needle) = quoted.filter(|q| !q.is_empty()).or_else(number) else {
        return line;
    };
    text.lines()
        .enumerate()
        .skip(line.saturating_sub(1))
        .find(|(_, l)| l.contains(needle.as_str()))
        .map_or(line, |(i, _)| i + 1)
}

/// The `line L, column C: message` of a serde_yaml error, with the line of the bad value.
pub fn yaml_error(text: &str, e: &serde_yaml::Error) -> anyhow::Error {
    let message = e.to_string();
    match e.location() {
        Some(l) => {
            let line = refine_line(text, l.line(), &message);
            if line == l.line() {
                anyhow::anyhow!("line {}, column {}: {message}", l.line(), l.column())
            } else {
                anyhow::anyhow!("line {line}: {message}")
            }
        }
        None => anyhow::anyhow!("{message}"),
    }
}

/// Line (1-based) of the `n`-th line of `text` that, trimmed of `- ` and spaces, starts with
/// `key: value` (quotes around the value allowed); 0 when not found.
pub fn line_of(text: &str, key: &str, value: &str, n: usize) -> usize {
    let wanted = |line: &str| {
        let l = line.trim_start().trim_start_matches("- ").trim_start();
        let Some(rest) = l.strip_prefix(key).and_then(|r| r.strip_prefix(':')) else {
            return false;
        };
        let v = rest.trim().trim_matches(|c| c == '"' || c == '\'');
        v == value
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| wanted(l))
        .nth(n)
        .map_or(0, |(i, _)| i + 1)
}

/// Checks across fields; `text` is the file the sections came from, for line numbers.
pub fn validate(
    text: &str,
    slos: &[SloConfig],
    probes: &[ProbeConfig],
    notifiers: &[NotifierConfig],
) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, slo) in slos.iter().enumerate() {
        let nth = slos[..i].iter().filter(|s| s.name == slo.name).count();
        let line = line_of(text, "name", &slo.name, nth);
        let at = |why: String| anyhow::anyhow!("line {line}: slo {:?}: {why}", slo.name);
        if !seen.insert(slo.name.as_str()) {
            return Err(at("another SLO has this name".into()));
        }
        check_name(&slo.name).map_err(at)?;
        if slo.window.is_some() && slo.calendar.is_some() {
            return Err(at("give `window` or `calendar`, not both".into()));
        }
        if let Some(w) = slo.window
            && (w.as_secs() < 3_600 || w.as_secs() % 60 != 0)
        {
            return Err(at("window must be whole minutes and at least 1h".into()));
        }
        let s = &slo.sli;
        let kinds = [
            s.total.is_some() || s.errors.is_some() || s.good.is_some(),
            s.latency.is_some(),
            s.spans.is_some(),
            s.probe.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            1 => {}
            0 => {
                return Err(at(
                    "sli needs one of errors/good + total, latency, spans or probe".into(),
                ));
            }
            _ => {
                return Err(at(
                    "sli has more than one kind (errors/good + total, latency, spans, probe)"
                        .into(),
                ));
            }
        }
        if kinds[0] && (s.total.is_none() || s.errors.is_some() == s.good.is_some()) {
            return Err(at(
                "a ratio sli needs `total` and exactly one of `errors` or `good`".into(),
            ));
        }
        if let Some(l) = &s.latency
            && !(l.threshold.is_finite() && l.threshold > 0.0)
        {
            return Err(at(format!(
                "latency threshold {} must be above 0",
                l.threshold
            )));
        }
        if let Some(p) = &s.probe {
            let Some(probe) = probes.iter().find(|q| q.name == *p) else {
                return Err(at(format!("probe {p:?} is not in `probes`")));
            };
            if probe.tenant != slo.tenant {
                return Err(at(format!(
                    "probe {p:?} writes to another tenant than this SLO reads"
                )));
            }
        }
        if let Some(t) = &slo.tenant {
            sightline_model::TenantId::new(t).map_err(|e| at(e.to_string()))?;
        }
    }
    let mut seen = HashSet::new();
    for (i, p) in probes.iter().enumerate() {
        let nth = probes[..i].iter().filter(|q| q.name == p.name).count()
            + slos.iter().filter(|s| s.name == p.name).count();
        let line = line_of(text, "name", &p.name, nth);
        let at = |why: String| anyhow::anyhow!("line {line}: probe {:?}: {why}", p.name);
        if !seen.insert(p.name.as_str()) {
            return Err(at("another probe has this name".into()));
        }
        check_name(&p.name).map_err(at)?;
        if p.failure_threshold == Some(0) || p.success_threshold == Some(0) {
            return Err(at("thresholds must be at least 1".into()));
        }
        if p.interval.is_some_and(|d| d.is_zero()) || p.timeout.is_some_and(|d| d.is_zero()) {
            return Err(at("interval and timeout must be more than 0".into()));
        }
    }
    let mut seen = HashSet::new();
    for n in notifiers {
        let line = line_of(text, "name", &n.name, 0);
        let at = |why: String| anyhow::anyhow!("line {line}: notifier {:?}: {why}", n.name);
        if !seen.insert(n.name.as_str()) {
            return Err(at("another notifier has this name".into()));
        }
        match n.kind {
            NotifierKind::Pagerduty if n.routing_key.as_deref().is_none_or(str::is_empty) => {
                return Err(at("pagerduty needs `routing_key`".into()));
            }
            NotifierKind::Pagerduty => {}
            _ if n.url.is_none() => return Err(at("`url` is required".into())),
            _ => {}
        }
    }
    Ok(())
}

/// The tenant an SLO or probe names, `default` when none (validation has checked it).
pub fn tenant_or_default(tenant: Option<&str>) -> sightline_model::TenantId {
    tenant
        .and_then(|t| sightline_model::TenantId::new(t).ok())
        .unwrap_or_else(sightline_model::TenantId::default_tenant)
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err("names are letters, digits and - _ . : only".into());
    }
    Ok(())
}

/// Fails unless `name` is a valid label name (used for rule labels).
pub fn check_label_name(name: &str) -> Result<()> {
    if !sightline_model::labels::is_valid_label_name(name) {
        bail!("{name:?} is not a valid label name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        #[serde(default)]
        slos: Vec<SloConfig>,
        #[serde(default)]
        probes: Vec<ProbeConfig>,
        #[serde(default)]
        notifiers: Vec<NotifierConfig>,
    }

    fn check(text: &str) -> Result<Doc> {
        let doc: Doc = serde_yaml::from_str(text).map_err(|e| yaml_error(text, &e))?;
        validate(text, &doc.slos, &doc.probes, &doc.notifiers)?;
        Ok(doc)
    }

    #[test]
    fn a_good_config_reads() {
        let doc = check(
            "slos:\n  - name: a\n    objective: 99.9\n    sli:\n      errors: 'x{code=~\"5..\"}'\n      total: x\n  - name: b\n    objective: 99\n    calendar: month\n    sli:\n      probe: p\nprobes:\n  - name: p\n    url: http://127.0.0.1:1/health\nnotifiers:\n  - name: n\n    type: webhook\n    url: http://127.0.0.1:2/\n",
        )
        .expect("valid");
        assert_eq!(doc.slos[0].window(), Window::Rolling { minutes: 43_200 });
        assert_eq!(doc.slos[1].window(), Window::CalendarMonth);
    }

    #[test]
    fn bad_values_name_their_line() {
        let e = check("slos:\n  - name: a\n    objective: 120\n    sli: {probe: p}\n")
            .expect_err("objective");
        assert!(format!("{e:#}").contains("line 3"), "{e:#}");
        let e = check("slos:\n  - name: a\n    objective: 99\n    sli:\n      total: 'x{'\n")
            .expect_err("selector");
        assert!(format!("{e:#}").contains("line 5"), "{e:#}");
        let e = check(
            "slos:\n  - name: ok\n    objective: 99\n    sli: {spans: {service: s}}\n  - name: two\n    objective: 99\n    sli:\n      spans: {service: s}\n      probe: p\n",
        )
        .expect_err("two kinds");
        assert!(format!("{e:#}").contains("line 5"), "{e:#}");
        assert!(format!("{e:#}").contains("more than one kind"), "{e:#}");
        let e = check("slos:\n  - name: a\n    objective: 99\n    sli: {probe: nope}\n")
            .expect_err("unknown probe");
        assert!(format!("{e:#}").contains("not in `probes`"), "{e:#}");
        let e = check("probes:\n  - name: p\n    url: ftp://x/\n").expect_err("scheme");
        assert!(format!("{e:#}").contains("line 3"), "{e:#}");
        let e = check("notifiers:\n  - name: pd\n    type: pagerduty\n").expect_err("key");
        assert!(format!("{e:#}").contains("routing_key"), "{e:#}");
    }
}
