//! Prometheus-compatible scraping, as Prometheus 2.42 does it: `scrape_configs` in
//! Prometheus' own YAML, target discovery (static and file_sd), relabeling, one scrape loop
//! per target with staleness markers, and target health for `/api/v1/targets`.
//!
//! The data flow follows Prometheus' own layout (discovery → scrape → storage):
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | `scrape_configs` and `global`: parsing, defaults, validation |
//! | [`relabel`] | every relabel action, exactly as 2.42 applies it |
//! | [`discovery`] | static groups, file_sd files (JSON, YAML, globs, re-read on change) |
//! | [`target`] | targets from groups: reserved labels, relabeling, `instance`, the URL |
//! | [`scrape`] | the loop of one target: timing, HTTP, parsing, the batch, staleness |
//! | [`manager`] | all jobs: reconciling targets on changes and reloads, stopping, health |
//! | [`sink`] | where batches go (the server's store) |
//!
//! Invariants:
//! - every batch a sink receives belongs to the manager's tenant (default `default`) and
//!   holds one scrape's output, or one target's end-of-run markers;
//! - a series gets a staleness marker exactly when Prometheus 2.42 writes one (vanished from
//!   a successful scrape, every series on a failed scrape, the target gone), with two
//!   deliberate differences documented in [`scrape`]: [`ScrapeManager::stop`] writes them,
//!   and so does removing a whole job from the configuration;
//! - nothing read from the network or from a file is `unwrap`ped; bodies and files have
//!   named size limits ([`scrape::fetch::SCRAPE_BODY_BYTES_MAX`],
//!   [`discovery::FILE_SD_BYTES_MAX`]).
//!
//! Parsing the exposition is [`sightline_ingest::prom_text`]'s job, shared with imports.

pub mod config;
pub mod discovery;
pub mod manager;
pub mod relabel;
pub mod scrape;
pub mod sink;
pub mod target;

pub use config::{
    ConfigError, FileSdConfig, GlobalConfig, PrometheusConfig, ScrapeConfig, StaticConfig,
    validate_scrape_configs,
};
pub use manager::{DroppedTarget, ManagerError, ScrapeManager, ScrapeOptions, TargetStatus};
pub use relabel::{Action, RelabelConfig, RelabelConfigError, relabel};
pub use scrape::Health;
pub use sink::{ScrapeSink, SinkFuture};
pub use target::{Target, TargetBuild, TargetError, TargetGroup};
