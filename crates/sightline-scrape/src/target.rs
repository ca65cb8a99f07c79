//! Targets: what to scrape and which labels its series get, built from discovered target
//! groups as Prometheus 2.42 builds them (`PopulateLabels`).
//!
//! For each discovered target (its own labels, then the group's labels where it has none):
//! 1. the job's settings are added as labels unless discovery set them: `job`,
//!    `__scheme__`, `__metrics_path__`, `__scrape_interval__`, `__scrape_timeout__`; every
//!    `params` entry sets `__param_<name>` to its first value (overriding discovery);
//! 2. `relabel_configs` run; a dropped target is kept aside, with its discovered labels, for
//!    the targets API;
//! 3. `__address__` must be set; an address without a port gets the scheme's (`:80`,
//!    `:443`), as 2.42 does; `__scrape_interval__` and `__scrape_timeout__` are read back
//!    (relabeling may change them per target) and checked;
//! 4. `__meta_*` labels are removed, `instance` defaults to `__address__`.
//!
//! A [`Target`] keeps its other reserved (`__`-prefixed) labels, which make up its scrape
//! URL (`__scheme__://__address____metrics_path__?params`) and its identity; the labels its
//! series get are [`Target::labels`]: those without the `__` prefix.
//!
//! Unlike 2.42, a target whose final label names are not all valid is refused here (only a
//! `labelmap` can produce one); Prometheus would let it through and then fail every scrape.

#[cfg(test)]
mod tests;

use std::time::Duration;

use sightline_model::Labels;
use sightline_model::labels::is_valid_label_name;

use crate::config::duration::{format_duration, parse_duration};
use crate::config::{GlobalConfig, ScrapeConfig, StaticConfig};
use crate::relabel::relabel;

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_LABEL_PREFIX: &str = "__param_";
pub const META_LABEL_PREFIX: &str = "__meta_";
pub const RESERVED_LABEL_PREFIX: &str = "__";
pub const JOB_LABEL: &str = "job";
pub const INSTANCE_LABEL: &str = "instance";

/// Targets from one source: a `static_configs` entry, or one group of a file_sd file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetGroup {
    /// Where the group came from, e.g. `static/0` or `targets.json:2`.
    pub source: String,
    /// One label set per target; discovery sets at least `__address__`.
    pub targets: Vec<Labels>,
    /// Labels of every target of the group (a target's own labels win).
    pub labels: Labels,
}

impl TargetGroup {
    /// The group of a `static_configs` (or file_sd) entry.
    pub fn from_static(source: impl Into<String>, config: &StaticConfig) -> Self {
        Self {
            source: source.into(),
            targets: config
                .targets
                .iter()
                .map(|address| Labels::from_pairs([(ADDRESS_LABEL, address.as_str())]))
                .collect(),
            labels: Labels::from_pairs(config.labels.iter()),
        }
    }
}

/// A target to scrape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// Final labels, reserved ones included (`__meta_*` excepted).
    all_labels: Labels,
    /// Labels before relabeling, as discovery and the job's settings gave them.
    discovered_labels: Labels,
    url: String,
    interval: Duration,
    timeout: Duration,
}

impl Target {
    /// The labels its series get: the final labels without the reserved ones.
    pub fn labels(&self) -> Labels {
        Labels::from_sorted_pairs(
            self.all_labels
                .iter()
                .filter(|(name, _)| !name.starts_with(RESERVED_LABEL_PREFIX))
                .map(|(n, v)| (n.to_string(), v.to_string())),
        )
    }

    /// The final labels, reserved ones (`__address__`, `__param_*`, …) included.
    pub fn all_labels(&self) -> &Labels {
        &self.all_labels
    }

    /// The labels before relabeling.
    pub fn discovered_labels(&self) -> &Labels {
        &self.discovered_labels
    }

    /// The URL a scrape requests.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// What became of one discovered target.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetBuild {
    Active(Target),
    /// Relabeling dropped it; its labels before relabeling.
    Dropped(Labels),
}

/// Why a discovered target could not become a target (it is then neither active nor
/// dropped, as in Prometheus).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("no address")]
    NoAddress,
    #[error("invalid scheme: {0:?}")]
    InvalidScheme(String),
    #[error("{0:?} is not a valid hostname")]
    InvalidAddress(String),
    #[error("error parsing scrape interval: {0}")]
    BadInterval(String),
    #[error("scrape interval cannot be 0")]
    ZeroInterval,
    #[error("error parsing scrape timeout: {0}")]
    BadTimeout(String),
    #[error("scrape timeout cannot be 0")]
    ZeroTimeout,
    #[error("scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})")]
    TimeoutOverInterval { timeout: String, interval: String },
    #[error("{0:?} is not a valid label name")]
    BadLabelName(String),
}

/// A discovered target that failed, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("instance {index} in group {source_name}: {error}")]
pub struct GroupTargetError {
    pub source_name: String,
    pub index: usize,
    pub error: TargetError,
}

/// Builds the targets of `group` for the job `config`.
pub fn targets_from_group(
    group: &TargetGroup,
    config: &ScrapeConfig,
    global: &GlobalConfig,
) -> (Vec<TargetBuild>, Vec<GroupTargetError>) {
    let mut built = Vec::with_capacity(group.targets.len());
    let mut errors = Vec::new();
    for (index, target_labels) in group.targets.iter().enumerate() {
        let mut discovered = target_labels.clone();
        for (name, value) in group.labels.iter() {
            if discovered.get(name).is_none() {
                discovered.set(name, value);
            }
        }
        match build_target(discovered, config, global) {
            Ok(target) => built.push(target),
            Err(error) => errors.push(GroupTargetError {
                source_name: group.source.clone(),
                index,
                error,
            }),
        }
    }
    (built, errors)
}

/// Builds one target from its discovered labels (target and group labels merged).
pub fn build_target(
    mut discovered: Labels,
    config: &ScrapeConfig,
    global: &GlobalConfig,
) -> Result<TargetBuild, TargetError> {
    let defaults = [
        (JOB_LABEL, config.job_name.clone()),
        (
            SCRAPE_INTERVAL_LABEL,
            format_duration(config.interval(global)),
        ),
        (
            SCRAPE_TIMEOUT_LABEL,
            format_duration(config.timeout(global)),
        ),
        (METRICS_PATH_LABEL, config.metrics_path.clone()),
        (SCHEME_LABEL, config.scheme.clone()),
    ];
    for (name, value) in &defaults {
        if discovered.get(name).is_none() {
            discovered.set(name, value);
        }
    }
    for (name, values) in &config.params {
        if let Some(first) = values.first() {
            discovered.set(&format!("{PARAM_LABEL_PREFIX}{name}"), first);
        }
    }
    let Some(mut labels) = relabel(discovered.clone(), &config.relabel_configs) else {
        return Ok(TargetBuild::Dropped(discovered));
    };
    let address = labels.get(ADDRESS_LABEL).unwrap_or("").to_string();
    if address.is_empty() {
        return Err(TargetError::NoAddress);
    }
    let scheme = labels.get(SCHEME_LABEL).unwrap_or("").to_string();
    let address = match address_needs_port(&address) {
        false => address,
        true => match scheme.as_str() {
            "http" | "" => format!("{address}:80"),
            "https" => format!("{address}:443"),
            _ => return Err(TargetError::InvalidScheme(scheme)),
        },
    };
    labels.set(ADDRESS_LABEL, &address);
    if address.contains('/') {
        return Err(TargetError::InvalidAddress(address));
    }
    let interval_text = labels.get(SCRAPE_INTERVAL_LABEL).unwrap_or("");
    let interval =
        parse_duration(interval_text).map_err(|e| TargetError::BadInterval(e.to_string()))?;
    if interval.is_zero() {
        return Err(TargetError::ZeroInterval);
    }
    let timeout_text = labels.get(SCRAPE_TIMEOUT_LABEL).unwrap_or("");
    let timeout =
        parse_duration(timeout_text).map_err(|e| TargetError::BadTimeout(e.to_string()))?;
    if timeout.is_zero() {
        return Err(TargetError::ZeroTimeout);
    }
    if timeout > interval {
        return Err(TargetError::TimeoutOverInterval {
            timeout: timeout_text.to_string(),
            interval: interval_text.to_string(),
        });
    }
    let meta: Vec<String> = labels
        .iter()
        .filter(|(name, _)| name.starts_with(META_LABEL_PREFIX))
        .map(|(name, _)| name.to_string())
        .collect();
    for name in meta {
        labels.remove(&name);
    }
    if labels.get(INSTANCE_LABEL).is_none() {
        labels.set(INSTANCE_LABEL, &address);
    }
    if let Some((bad, _)) = labels.iter().find(|(name, _)| !is_valid_label_name(name)) {
        return Err(TargetError::BadLabelName(bad.to_string()));
    }
    let url = scrape_url(&labels, &config.params);
    Ok(TargetBuild::Active(Target {
        all_labels: labels,
        discovered_labels: discovered,
        url,
        interval,
        timeout,
    }))
}

/// Whether Prometheus would add a default port: the address has none, and adding one makes
/// it a valid `host:port` (Go's `net.SplitHostPort`).
fn address_needs_port(address: &str) -> bool {
    split_host_port(address).is_none() && split_host_port(&format!("{address}:1234")).is_some()
}

/// Go's `net.SplitHostPort`, reduced to whether it succeeds, with the port.
fn split_host_port(text: &str) -> Option<&str> {
    let colon = text.rfind(':')?;
    // Where Go starts looking for a stray `[` and a stray `]`.
    let (open_from, close_from) = if text.starts_with('[') {
        let close = text.find(']')?;
        if close + 1 != colon {
            return None;
        }
        (1, close + 1)
    } else {
        if text[..colon].contains(':') {
            return None;
        }
        (0, 0)
    };
    if text[open_from..].contains('[') || text[close_from..].contains(']') {
        return None;
    }
    Some(&text[colon + 1..])
}

/// The scrape URL from the final labels and the job's params: each `__param_<name>`
/// replaces the first value of `<name>` (or adds it).
fn scrape_url(labels: &Labels, params: &std::collections::BTreeMap<String, Vec<String>>) -> String {
    let mut query = params.clone();
    for (name, value) in labels.iter() {
        if let Some(param) = name.strip_prefix(PARAM_LABEL_PREFIX) {
            let values = query.entry(param.to_string()).or_default();
            match values.first_mut() {
                Some(first) => *first = value.to_string(),
                None => values.push(value.to_string()),
            }
        }
    }
    let scheme = labels.get(SCHEME_LABEL).unwrap_or("");
    let address = labels.get(ADDRESS_LABEL).unwrap_or("");
    let path = labels.get(METRICS_PATH_LABEL).unwrap_or("");
    let mut url = format!("{scheme}://{address}");
    if !path.is_empty() && !path.starts_with('/') {
        url.push('/');
    }
    escape_into(&mut url, path, is_path_safe, false);
    let mut first = true;
    for (name, values) in &query {
        for value in values {
            url.push(if first { '?' } else { '&' });
            first = false;
            escape_into(&mut url, name, is_unreserved, true);
            url.push('=');
            escape_into(&mut url, value, is_unreserved, true);
        }
    }
    url
}

/// RFC 3986 unreserved characters: never escaped.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Characters Go leaves as they are in a URL path.
fn is_path_safe(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'@'
        )
}

/// Percent-encodes `text` into `out` as Go's `url` package does; in a query, a space
/// becomes `+`.
fn escape_into(out: &mut String, text: &str, safe: fn(u8) -> bool, query: bool) {
    for b in text.bytes() {
        if safe(b) {
            out.push(char::from(b));
        } else if query && b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}
