//! The server's configuration: a YAML file, then `SIGHTLINE_*` variables and flags over it.
//!
//! Every key is optional; an empty file (or none) is the zero-configuration default. Unknown
//! keys are errors, reported with their line and column, so a typo never silently does
//! nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use sightline_model::duration::parse_duration;

pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:4318";
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:4317";
pub const DEFAULT_DATA_DIR: &str = "./sightline-data";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub http_addr: Option<String>,
    pub grpc_addr: Option<String>,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Prometheus' `global` section (scrape interval and timeout defaults).
    #[serde(default)]
    pub global: sightline_scrape::GlobalConfig,
    /// Prometheus' `scrape_configs`, in its own format.
    #[serde(default)]
    pub scrape_configs: Vec<sightline_scrape::ScrapeConfig>,
    /// RED metrics derived from spans.
    #[serde(default)]
    pub span_metrics: SpanMetricsConfig,
    /// Prometheus rule files (globs relative to this file).
    #[serde(default)]
    pub rule_files: Vec<String>,
    #[serde(default)]
    pub slos: Vec<sightline_alert::config::SloConfig>,
    #[serde(default)]
    pub probes: Vec<sightline_alert::config::ProbeConfig>,
    #[serde(default)]
    pub notifiers: Vec<sightline_alert::config::NotifierConfig>,
    /// Prefix of the links in notifications, e.g. `http://sightline.example:4318`.
    pub external_url: Option<String>,
    /// The groups of `rule_files`, read by [`load`].
    #[serde(skip)]
    pub rule_groups: Vec<sightline_alert::rules::RuleGroup>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanMetricsConfig {
    /// How often the span metrics are written as samples, e.g. `15s` (the default).
    pub flush_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: Option<PathBuf>,
    /// `file:///path` or `memory://`; default `<data_dir>/segments`.
    pub object_store_url: Option<String>,
    /// e.g. `30d`.
    pub retention: Option<String>,
    /// e.g. `2m`.
    pub flush_interval: Option<String>,
    pub flush_bytes: Option<usize>,
    pub head_bytes_max: Option<usize>,
    /// Most active series per tenant (a write creating more is refused with 400).
    pub series_per_tenant_max: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub request_bytes_max: Option<usize>,
    pub decompressed_bytes_max: Option<usize>,
    pub query_entries_max: Option<usize>,
    /// Most samples one PromQL query may load.
    pub query_samples_max: Option<usize>,
}

/// Reads and validates a config file; errors name the file, line and column.
pub fn load(path: &Path) -> Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("read config {}", path.display()))?;
    let mut cfg = parse(&text).with_context(|| format!("config {}", path.display()))?;
    // file_sd paths are relative to the config file, as in Prometheus.
    let dir = path.parent().unwrap_or(Path::new("."));
    for s in &mut cfg.scrape_configs {
        s.set_directory(dir);
    }
    cfg.rule_groups =
        sightline_alert::rules::load(dir, &cfg.rule_files, cfg.global.evaluation_interval)
            .with_context(|| format!("config {}", path.display()))?;
    Ok(cfg)
}

pub fn parse(text: &str) -> Result<FileConfig> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    let cfg: FileConfig =
        serde_yaml::from_str(text).map_err(|e| sightline_alert::config::yaml_error(text, &e))?;
    cfg.validate()?;
    sightline_alert::config::validate(text, &cfg.slos, &cfg.probes, &cfg.notifiers)?;
    Ok(cfg)
}

impl FileConfig {
    fn validate(&self) -> Result<()> {
        sightline_scrape::validate_scrape_configs(&self.global, &self.scrape_configs)
            .context("scrape_configs")?;
        for (key, v) in [
            ("storage.retention", &self.storage.retention),
            ("storage.flush_interval", &self.storage.flush_interval),
            (
                "span_metrics.flush_interval",
                &self.span_metrics.flush_interval,
            ),
        ] {
            if let Some(v) = v {
                parse_duration(v).with_context(|| key.to_string())?;
            }
        }
        if let Some(u) = &self.external_url {
            reqwest::Url::parse(u).with_context(|| format!("external_url: {u:?} is not a URL"))?;
        }
        for (key, v) in [
            ("http_addr", &self.http_addr),
            ("grpc_addr", &self.grpc_addr),
        ] {
            if let Some(v) = v {
                v.parse::<std::net::SocketAddr>().with_context(|| {
                    format!("{key}: {v:?} is not an address like 127.0.0.1:4318")
                })?;
            }
        }
        Ok(())
    }

    /// What alerting runs with; `state_dir` is `<data_dir>/alerting`.
    pub fn alerting(&self, data_dir: &Path) -> sightline_alert::AlertingConfig {
        sightline_alert::AlertingConfig {
            evaluation_interval: self.global.evaluation_interval,
            external_labels: self.global.external_labels.clone(),
            external_url: self
                .external_url
                .as_deref()
                .unwrap_or("")
                .trim_end_matches('/')
                .to_string(),
            groups: self.rule_groups.clone(),
            slos: self.slos.clone(),
            probes: self.probes.clone(),
            notifiers: self.notifiers.clone(),
            state_dir: data_dir.join("alerting"),
        }
    }

    pub fn retention(&self) -> Result<Option<Duration>> {
        self.storage
            .retention
            .as_deref()
            .map(parse_duration)
            .transpose()
            .context("storage.retention")
    }

    pub fn flush_interval(&self) -> Result<Option<Duration>> {
        self.storage
            .flush_interval
            .as_deref()
            .map(parse_duration)
            .transpose()
            .context("storage.flush_interval")
    }

    /// How often span metrics are written; 15 s unless set.
    pub fn span_metrics_interval(&self) -> Result<Duration> {
        let every = self
            .span_metrics
            .flush_interval
            .as_deref()
            .map(parse_duration)
            .transpose()
            .context("span_metrics.flush_interval")?
            .unwrap_or(Duration::from_secs(15));
        anyhow::ensure!(
            !every.is_zero(),
            "span_metrics.flush_interval: must be more than 0"
        );
        Ok(every)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_default() {
        let c = parse("").expect("parse");
        assert!(c.http_addr.is_none());
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("storage:\n  data_dir: /x\n  retension: 3d\n").expect_err("unknown key");
        assert!(format!("{e:#}").contains("line 3"), "{e:#}");
        let e = parse("storage:\n  retention: 3 days\n").expect_err("bad duration");
        assert!(format!("{e:#}").contains("storage.retention"), "{e:#}");
    }

    #[test]
    fn reads_every_section() {
        let c = parse("http_addr: 127.0.0.1:9000\nstorage:\n  retention: 7d\n  flush_interval: 30s\nlimits:\n  request_bytes_max: 1024\n")
            .expect("parse");
        assert_eq!(
            c.retention().expect("retention"),
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(c.limits.request_bytes_max, Some(1024));
    }
}
