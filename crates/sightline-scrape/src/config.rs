//! `scrape_configs` and `global` in Prometheus' own YAML format, as Prometheus 2.42 reads
//! them: the same fields, defaults and refusals, so an existing `prometheus.yml` section
//! loads unchanged and a file that loads here loads in Prometheus.
//!
//! Deserialising checks each part on its own (durations, relabel rules, label names, file
//! patterns, static addresses), refusing unknown fields as Prometheus' strict YAML does.
//! What needs the whole file is [`validate_scrape_configs`]: job names are unique and each
//! job's timeout, once defaulted from `global`, is not longer than its interval. Fields
//! Prometheus knows but Sightline does not implement (other service discoveries, HTTP
//! authentication, TLS and proxies) are refused by name rather than ignored, so a scrape
//! never silently goes out without the credentials the file asked for.
//!
//! Defaults follow Prometheus: `global.scrape_interval` 1m, `global.scrape_timeout` 10s (or
//! the interval when that is shorter); a job without them takes the global ones, and a job
//! whose interval is shorter than the global timeout gets its interval as timeout.
//! `metrics_path` `/metrics`, `scheme` `http`, `honor_timestamps` true, file discovery
//! refreshed every 5m.
//!
//! `global.external_labels` are parsed and kept for the callers that attach them (remote
//! write, alerts, federation in Prometheus); scraping itself does not add them, and neither
//! does Prometheus.

pub mod duration;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;
use sightline_model::Labels;
use sightline_model::labels::is_valid_label_name;

use crate::relabel::RelabelConfig;

/// `global.scrape_interval` when not given.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
/// `global.scrape_timeout` when not given (capped at the interval).
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// `global.evaluation_interval` when not given.
pub const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);
/// `file_sd_configs[].refresh_interval` when not given.
pub const DEFAULT_FILE_SD_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
pub const DEFAULT_METRICS_PATH: &str = "/metrics";
pub const DEFAULT_SCHEME: &str = "http";

/// The `global` section.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalConfig {
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    /// Parsed for completeness (rule evaluation uses it); scraping does not.
    pub evaluation_interval: Duration,
    pub external_labels: Labels,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
            scrape_timeout: DEFAULT_SCRAPE_TIMEOUT,
            evaluation_interval: DEFAULT_EVALUATION_INTERVAL,
            external_labels: Labels::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobalConfig {
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    scrape_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    scrape_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    evaluation_interval: Option<Duration>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    /// Accepted because Prometheus accepts it; Sightline has no query log.
    #[serde(default)]
    #[allow(dead_code)]
    query_log_file: Option<String>,
}

impl<'de> Deserialize<'de> for GlobalConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Some(raw) = Option::<RawGlobalConfig>::deserialize(deserializer)? else {
            return Ok(Self::default());
        };
        Self::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

impl GlobalConfig {
    fn from_raw(raw: RawGlobalConfig) -> Result<Self, String> {
        check_label_names(raw.external_labels.keys())?;
        let scrape_interval = raw
            .scrape_interval
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_SCRAPE_INTERVAL);
        let scrape_timeout = match raw.scrape_timeout.filter(|d| !d.is_zero()) {
            Some(timeout) if timeout > scrape_interval => {
                return Err(format!(
                    "global scrape timeout greater than scrape interval ({} > {})",
                    duration::format_duration(timeout),
                    duration::format_duration(scrape_interval)
                ));
            }
            Some(timeout) => timeout,
            None => DEFAULT_SCRAPE_TIMEOUT.min(scrape_interval),
        };
        Ok(Self {
            scrape_interval,
            scrape_timeout,
            evaluation_interval: raw
                .evaluation_interval
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_EVALUATION_INTERVAL),
            external_labels: Labels::from_pairs(raw.external_labels),
        })
    }
}

/// A `static_configs` entry, and the shape of a target group in a file_sd file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default, deserialize_with = "deserialize_label_map")]
    pub labels: BTreeMap<String, String>,
}

/// A `file_sd_configs` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSdConfig {
    /// Paths; the last path element may hold one `*` (and `?`, `[…]`) pattern. Relative
    /// paths are relative to the process's directory until [`ScrapeConfig::set_directory`].
    pub files: Vec<String>,
    pub refresh_interval: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileSdConfig {
    #[serde(default)]
    files: Vec<String>,
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    refresh_interval: Option<Duration>,
}

impl<'de> Deserialize<'de> for FileSdConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawFileSdConfig::deserialize(deserializer)?;
        if raw.files.is_empty() {
            return Err(serde::de::Error::custom(
                "file service discovery config must contain at least one path name",
            ));
        }
        if let Some(bad) = raw.files.iter().find(|f| !is_valid_file_sd_pattern(f)) {
            return Err(serde::de::Error::custom(format!(
                "path name {bad:?} is not valid for file discovery: it must end in .json, .yml \
                 or .yaml, with at most one '*' and only in the last path element"
            )));
        }
        Ok(Self {
            files: raw.files,
            refresh_interval: raw
                .refresh_interval
                .unwrap_or(DEFAULT_FILE_SD_REFRESH_INTERVAL),
        })
    }
}

/// Prometheus' pattern for file_sd paths: `^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$`.
fn is_valid_file_sd_pattern(path: &str) -> bool {
    let stem = [".json", ".yml", ".yaml", ".JSON", ".YML", ".YAML"]
        .iter()
        .find_map(|ext| path.strip_suffix(ext));
    let Some(stem) = stem else {
        return false;
    };
    match stem.split_once('*') {
        None => true,
        Some((_, after)) => !after.contains('/') && !after.contains('*'),
    }
}

/// One `scrape_configs` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeConfig {
    pub job_name: String,
    /// `None`: the global interval.
    pub scrape_interval: Option<Duration>,
    /// `None`: the global timeout, or the interval when that is shorter.
    pub scrape_timeout: Option<Duration>,
    pub metrics_path: String,
    pub scheme: String,
    /// URL parameters; each becomes a `__param_<name>` label holding its first value.
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    /// Most samples a scrape may keep after metric relabeling; more fails it (0: no limit).
    pub sample_limit: u64,
    /// Most targets the job may have after relabeling; more fails all of them (0: no limit).
    pub target_limit: u64,
    /// Most labels a series may have, `__name__` included (0: no limit).
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    /// Largest uncompressed body in bytes; `None` leaves only the crate's own limit.
    pub body_size_limit: Option<u64>,
    pub follow_redirects: bool,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

/// Declares the raw scrape config with the fields Prometheus 2.42 knows and Sightline does
/// not implement, so they can be refused by name.
macro_rules! raw_scrape_config {
    (http: [$($http:ident),* $(,)?], discovery: [$($sd:ident),* $(,)?]) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawScrapeConfig {
            job_name: String,
            #[serde(default, deserialize_with = "duration::deserialize_option")]
            scrape_interval: Option<Duration>,
            #[serde(default, deserialize_with = "duration::deserialize_option")]
            scrape_timeout: Option<Duration>,
            metrics_path: Option<String>,
            scheme: Option<String>,
            #[serde(default, deserialize_with = "null_as_default")]
            params: BTreeMap<String, Vec<String>>,
            #[serde(default)]
            honor_labels: bool,
            honor_timestamps: Option<bool>,
            #[serde(default)]
            sample_limit: u64,
            #[serde(default)]
            target_limit: u64,
            #[serde(default)]
            label_limit: u64,
            #[serde(default)]
            label_name_length_limit: u64,
            #[serde(default)]
            label_value_length_limit: u64,
            body_size_limit: Option<String>,
            follow_redirects: Option<bool>,
            /// Accepted as Prometheus accepts it; the scrape client speaks HTTP/1.1.
            #[allow(dead_code)]
            enable_http2: Option<bool>,
            #[serde(default, deserialize_with = "null_as_default")]
            static_configs: Vec<StaticConfig>,
            #[serde(default, deserialize_with = "null_as_default")]
            file_sd_configs: Vec<FileSdConfig>,
            #[serde(default, deserialize_with = "null_as_default")]
            relabel_configs: Vec<RelabelConfig>,
            #[serde(default, deserialize_with = "null_as_default")]
            metric_relabel_configs: Vec<RelabelConfig>,
            $(#[serde(default)] $http: Option<IgnoredAny>,)*
            $(#[serde(default)] $sd: Option<IgnoredAny>,)*
        }

        impl RawScrapeConfig {
            /// The first field set that Sightline does not implement, and why.
            fn unsupported(&self) -> Option<(&'static str, &'static str)> {
                $(if self.$http.is_some() {
                    return Some((stringify!($http), UNSUPPORTED_HTTP));
                })*
                $(if self.$sd.is_some() {
                    return Some((stringify!($sd), UNSUPPORTED_DISCOVERY));
                })*
                None
            }
        }
    };
}

const UNSUPPORTED_HTTP: &str =
    "Sightline scrapes without authentication, client TLS settings or proxies";
const UNSUPPORTED_DISCOVERY: &str =
    "Sightline discovers targets through static_configs and file_sd_configs only";

raw_scrape_config!(
    http: [
        basic_auth, authorization, oauth2, bearer_token, bearer_token_file, tls_config,
        proxy_url, no_proxy, proxy_from_environment, proxy_connect_header,
    ],
    discovery: [
        azure_sd_configs, consul_sd_configs, digitalocean_sd_configs, docker_sd_configs,
        dockerswarm_sd_configs, dns_sd_configs, ec2_sd_configs, eureka_sd_configs,
        gce_sd_configs, hetzner_sd_configs, http_sd_configs, ionos_sd_configs,
        kubernetes_sd_configs, kuma_sd_configs, lightsail_sd_configs, linode_sd_configs,
        marathon_sd_configs, nerve_sd_configs, nomad_sd_configs, openstack_sd_configs,
        ovhcloud_sd_configs, puppetdb_sd_configs, scaleway_sd_configs, serverset_sd_configs,
        triton_sd_configs, uyuni_sd_configs, vultr_sd_configs,
    ]
);

impl<'de> Deserialize<'de> for ScrapeConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Option::<RawScrapeConfig>::deserialize(deserializer)?
            .ok_or_else(|| serde::de::Error::custom("empty or null scrape config section"))?;
        Self::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

impl ScrapeConfig {
    fn from_raw(raw: RawScrapeConfig) -> Result<Self, String> {
        if raw.job_name.is_empty() {
            return Err("job_name is empty".to_string());
        }
        let job = &raw.job_name;
        if let Some((field, why)) = raw.unsupported() {
            return Err(format!("job {job:?}: {field} is not supported: {why}"));
        }
        // Prometheus catches URLs in static targets, unless relabeling could fix them.
        if raw.relabel_configs.is_empty() {
            for target in raw.static_configs.iter().flat_map(|s| &s.targets) {
                if target.contains('/') {
                    return Err(format!(
                        "job {job:?}: {target:?} is not a valid hostname (a target is \
                         host:port; put the path in metrics_path)"
                    ));
                }
            }
        }
        let body_size_limit = match raw.body_size_limit.as_deref() {
            None => None,
            Some(text) => match parse_bytes(text) {
                Ok(0) => None,
                Ok(bytes) => Some(bytes),
                Err(why) => return Err(format!("job {job:?}: body_size_limit: {why}")),
            },
        };
        Ok(Self {
            scrape_interval: raw.scrape_interval.filter(|d| !d.is_zero()),
            scrape_timeout: raw.scrape_timeout.filter(|d| !d.is_zero()),
            metrics_path: raw
                .metrics_path
                .unwrap_or_else(|| DEFAULT_METRICS_PATH.to_string()),
            scheme: raw.scheme.unwrap_or_else(|| DEFAULT_SCHEME.to_string()),
            params: raw.params,
            honor_labels: raw.honor_labels,
            honor_timestamps: raw.honor_timestamps.unwrap_or(true),
            sample_limit: raw.sample_limit,
            target_limit: raw.target_limit,
            label_limit: raw.label_limit,
            label_name_length_limit: raw.label_name_length_limit,
            label_value_length_limit: raw.label_value_length_limit,
            body_size_limit,
            follow_redirects: raw.follow_redirects.unwrap_or(true),
            static_configs: raw.static_configs,
            file_sd_configs: raw.file_sd_configs,
            relabel_configs: raw.relabel_configs,
            metric_relabel_configs: raw.metric_relabel_configs,
            job_name: raw.job_name,
        })
    }

    /// Parses one job from YAML (mostly for tests and tools).
    pub fn from_yaml(yaml: &str) -> Result<Self, ConfigError> {
        serde_yaml::from_str(yaml).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// The job's scrape interval: its own, else the global one.
    pub fn interval(&self, global: &GlobalConfig) -> Duration {
        self.scrape_interval.unwrap_or(global.scrape_interval)
    }

    /// The job's scrape timeout: its own, else the global one capped at the job's interval.
    pub fn timeout(&self, global: &GlobalConfig) -> Duration {
        self.scrape_timeout
            .unwrap_or_else(|| global.scrape_timeout.min(self.interval(global)))
    }

    /// Resolves relative file_sd paths against `dir` (the directory of the configuration
    /// file), as Prometheus does.
    pub fn set_directory(&mut self, dir: &Path) {
        for file_sd in &mut self.file_sd_configs {
            for file in &mut file_sd.files {
                if Path::new(file.as_str()).is_relative() {
                    *file = dir.join(file.as_str()).to_string_lossy().into_owned();
                }
            }
        }
    }
}

/// Why a configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// YAML syntax, an unknown or unsupported field, or a part that failed its own checks;
    /// the message says where (`scrape_configs[0].relabel_configs[1]: … at line 7 column 9`).
    #[error("parse scrape configuration: {0}")]
    Parse(String),
    #[error("found multiple scrape configs with job name {0:?}")]
    DuplicateJob(String),
    #[error(
        "scrape timeout greater than scrape interval for scrape config with job name {job:?} \
         ({timeout} > {interval})"
    )]
    TimeoutOverInterval {
        job: String,
        timeout: String,
        interval: String,
    },
}

/// Checks what needs all jobs and the global section: unique job names, and each job's
/// timeout (defaulted) not longer than its interval.
pub fn validate_scrape_configs(
    global: &GlobalConfig,
    configs: &[ScrapeConfig],
) -> Result<(), ConfigError> {
    let mut names = BTreeSet::new();
    for config in configs {
        if !names.insert(config.job_name.as_str()) {
            return Err(ConfigError::DuplicateJob(config.job_name.clone()));
        }
        let (interval, timeout) = (config.interval(global), config.timeout(global));
        if timeout > interval {
            return Err(ConfigError::TimeoutOverInterval {
                job: config.job_name.clone(),
                timeout: duration::format_duration(timeout),
                interval: duration::format_duration(interval),
            });
        }
    }
    Ok(())
}

/// The parts of a Prometheus configuration file that scraping uses; the other sections
/// (`rule_files`, `alerting`, `remote_write`, …) are ignored, so a whole `prometheus.yml`
/// can be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrometheusConfig {
    pub global: GlobalConfig,
    pub scrape_configs: Vec<ScrapeConfig>,
}

#[derive(Deserialize)]
struct RawPrometheusConfig {
    #[serde(default)]
    global: GlobalConfig,
    #[serde(default, deserialize_with = "null_as_default")]
    scrape_configs: Vec<ScrapeConfig>,
}

/// A field where `null` (a key with nothing after it) means its default, as in Go's YAML.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl PrometheusConfig {
    /// Parses and validates.
    pub fn from_yaml(yaml: &str) -> Result<Self, ConfigError> {
        let raw: RawPrometheusConfig =
            serde_yaml::from_str(yaml).map_err(|e| ConfigError::Parse(e.to_string()))?;
        validate_scrape_configs(&raw.global, &raw.scrape_configs)?;
        Ok(Self {
            global: raw.global,
            scrape_configs: raw.scrape_configs,
        })
    }
}

fn check_label_names<'a>(names: impl IntoIterator<Item = &'a String>) -> Result<(), String> {
    match names.into_iter().find(|n| !is_valid_label_name(n)) {
        Some(bad) => Err(format!("{bad:?} is not a valid label name")),
        None => Ok(()),
    }
}

/// A `labels:` map whose names must be valid label names.
fn deserialize_label_map<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Option::<BTreeMap<String, String>>::deserialize(deserializer)?.unwrap_or_default();
    check_label_names(map.keys()).map_err(serde::de::Error::custom)?;
    Ok(map)
}

/// Parses a size as Prometheus' `body_size_limit` does: `0`, or a number with `B`, `KB`,
/// `MB`, `GB`, `TB`, `PB` or `KiB`, `MiB`, … (all powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    if text == "0" {
        return Ok(0);
    }
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 100MB"))?;
    let power = match unit {
        "B" => 0,
        "KB" | "KiB" => 1,
        "MB" | "MiB" => 2,
        "GB" | "GiB" => 3,
        "TB" | "TiB" => 4,
        "PB" | "PiB" => 5,
        _ => return Err(format!("{text:?} has no unit (B, KB, MB, GB, TB, PB)")),
    };
    number
        .checked_mul(1024u64.pow(power))
        .ok_or_else(|| format!("{text:?} is too large"))
}
