//! Prometheus rule files: `groups` of alerting and recording rules, read and checked as
//! Prometheus reads them (`promtool check rules` refuses what we refuse).
//!
//! Every error names the file and a line: a bad value (`expr` that is not PromQL, a template
//! that does not parse, a duration without a unit) carries serde_yaml's location; a rule
//! with both `alert` and `record`, or a group name used twice, is located by its name.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Deserializer};

use crate::config::{check_label_name, duration, line_of, yaml_error};
use crate::template::Template;

/// A template as written, parsed once.
#[derive(Clone, Debug)]
pub struct TemplateText {
    pub text: String,
    pub template: Template,
}

impl<'de> Deserialize<'de> for TemplateText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let template = Template::parse(&text).map_err(|e| {
            serde::de::Error::custom(format!("template {text:?} does not parse: {e}"))
        })?;
        Ok(Self { text, template })
    }
}

/// A PromQL expression that parsed.
#[derive(Clone, Debug)]
pub struct Expr(pub String);

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        sightline_query::promql::parse(&text)
            .map_err(|e| serde::de::Error::custom(format!("expr {:?}: {e}", text.trim())))?;
        Ok(Self(text.trim().to_string()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    #[serde(default, deserialize_with = "duration::optional")]
    interval: Option<Duration>,
    #[serde(default)]
    limit: usize,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    alert: Option<String>,
    record: Option<String>,
    expr: Expr,
    #[serde(default, rename = "for", deserialize_with = "duration::optional")]
    for_: Option<Duration>,
    #[serde(default, deserialize_with = "duration::optional")]
    keep_firing_for: Option<Duration>,
    #[serde(default)]
    labels: BTreeMap<String, TemplateText>,
    #[serde(default)]
    annotations: BTreeMap<String, TemplateText>,
}

/// An alerting or recording rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub kind: RuleKind,
    pub name: String,
    pub expr: String,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub labels: Vec<(String, TemplateText)>,
    pub annotations: Vec<(String, TemplateText)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    Alerting,
    Recording,
}

/// A group: its rules run in order, every `interval`.
#[derive(Clone, Debug)]
pub struct RuleGroup {
    pub name: String,
    pub file: String,
    pub interval: Duration,
    /// Most alerts or series one rule may produce; 0 is no limit.
    pub limit: usize,
    pub rules: Vec<Rule>,
}

/// The files matching `patterns` (globs, relative to `dir`), in name order, each read and
/// checked; groups without an interval take `default_interval`.
pub fn load(dir: &Path, patterns: &[String], default_interval: Duration) -> Result<Vec<RuleGroup>> {
    let mut groups = Vec::new();
    let mut names = HashSet::new();
    // Absolute, so the state file knows a group by one name however the server was started.
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    for pattern in patterns {
        let full: PathBuf = dir.join(pattern);
        let text = full.to_string_lossy();
        let paths = glob::glob(&text).with_context(|| format!("rule_files: {pattern:?}"))?;
        let mut paths: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        paths.sort();
        if paths.is_empty() && !pattern.contains(['*', '?', '[']) {
            bail!("rule_files: {} does not exist", full.display());
        }
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("read rule file {}", path.display()))?;
            let file = path.display().to_string();
            for g in parse(&text, &file, default_interval)
                .with_context(|| format!("rule file {file}"))?
            {
                if !names.insert((g.file.clone(), g.name.clone())) {
                    bail!("rule file {file}: group {:?} is loaded twice", g.name);
                }
                groups.push(g);
            }
        }
    }
    Ok(groups)
}

/// Reads one rule file's text.
pub fn parse(text: &str, file: &str, default_interval: Duration) -> Result<Vec<RuleGroup>> {
    let raw: RawFile = serde_yaml::from_str(text).map_err(|e| yaml_error(text, &e))?;
    let mut seen = HashSet::new();
    let mut groups = Vec::with_capacity(raw.groups.len());
    let mut named: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for g in &raw.groups {
        if !seen.insert(g.name.as_str()) {
            let line = line_of(text, "name", &g.name, 1);
            bail!("line {line}: group name {:?} is used twice", g.name);
        }
        if g.name.is_empty() {
            bail!("a group has an empty name");
        }
        let mut rules = Vec::with_capacity(g.rules.len());
        for r in &g.rules {
            let (kind, key, name) = match (&r.alert, &r.record) {
                (Some(a), None) => (RuleKind::Alerting, "alert", a.clone()),
                (None, Some(n)) => (RuleKind::Recording, "record", n.clone()),
                (Some(a), Some(_)) => {
                    let line = line_of(text, "alert", a, 0);
                    bail!("line {line}: a rule has both `alert` and `record`");
                }
                (None, None) => bail!(
                    "group {:?}: a rule has neither `alert` nor `record` (expr {:?})",
                    g.name,
                    r.expr.0
                ),
            };
            let nth = named.entry((key, name.clone())).or_default();
            let line = line_of(text, key, &name, *nth);
            *nth += 1;
            let at = |why: String| anyhow!("line {line}: {key} {name:?}: {why}");
            match kind {
                RuleKind::Recording => {
                    if !is_metric_name(&name) {
                        return Err(at("not a valid metric name".into()));
                    }
                    if !r.annotations.is_empty() || r.for_.is_some() || r.keep_firing_for.is_some()
                    {
                        return Err(at(
                            "recording rules take no `for`, `keep_firing_for` or `annotations`"
                                .into(),
                        ));
                    }
                }
                RuleKind::Alerting if name.is_empty() => return Err(at("empty alert name".into())),
                RuleKind::Alerting => {}
            }
            for (label, t) in &r.labels {
                check_label_name(label).map_err(|e| at(e.to_string()))?;
                if kind == RuleKind::Recording && !t.template.is_literal() {
                    return Err(at(format!(
                        "label {label}: recording rules take no templates"
                    )));
                }
            }
            rules.push(Rule {
                kind,
                name,
                expr: r.expr.0.clone(),
                for_: r.for_.unwrap_or_default(),
                keep_firing_for: r.keep_firing_for.unwrap_or_default(),
                labels: r.labels.clone().into_iter().collect(),
                annotations: r.annotations.clone().into_iter().collect(),
            });
        }
        let interval = g.interval.unwrap_or(default_interval);
        if interval.is_zero() {
            let line = line_of(text, "name", &g.name, 0);
            bail!(
                "line {line}: group {:?}: interval must be more than 0",
                g.name
            );
        }
        groups.push(RuleGroup {
            name: g.name.clone(),
            file: file.to_string(),
            interval,
            limit: g.limit,
            rules,
        });
    }
    Ok(groups)
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn reads_alerting_and_recording_rules() {
        let groups = parse(
            "groups:\n  - name: g\n    interval: 5s\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n      - alert: Down\n        expr: up == 0\n        for: 2m\n        keep_firing_for: 1m\n        labels: {severity: page}\n        annotations:\n          summary: '{{ $labels.instance }} is down'\n  - name: h\n    rules: []\n",
            "r.yml",
            MIN,
        )
        .expect("valid");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].interval, Duration::from_secs(5));
        assert_eq!(groups[1].interval, MIN);
        let down = &groups[0].rules[1];
        assert_eq!(down.kind, RuleKind::Alerting);
        assert_eq!(down.for_, Duration::from_secs(120));
        assert_eq!(down.keep_firing_for, MIN);
        assert_eq!(down.annotations[0].0, "summary");
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse(text, "r.yml", MIN).expect_err("invalid"))
    }

    #[test]
    fn bad_rules_name_their_line() {
        let e = error(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: 'rate(x[5m]'\n",
        );
        assert!(e.contains("line 5"), "{e}");
        let e = error(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: 5 minutes\n",
        );
        assert!(e.contains("line 6"), "{e}");
        let e = error(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations: {x: '{{ if 1 }}'}\n",
        );
        assert!(e.contains("line 6"), "{e}");
        let e = error(
            "groups:\n  - name: g\n    rules:\n      - record: 'bad name'\n        expr: up\n",
        );
        assert!(e.contains("line 4") && e.contains("metric name"), "{e}");
        let e = error("groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n");
        assert!(e.contains("line 4") && e.contains("twice"), "{e}");
        let e = error(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        record: b\n        expr: up\n",
        );
        assert!(e.contains("line 4") && e.contains("both"), "{e}");
        let e = error("groups:\n  - name: g\n    rulez: []\n");
        assert!(e.contains("line 3"), "{e}");
    }
}
