//! The three servers the metrics benchmark feeds: Sightline, Prometheus and VictoriaMetrics,
//! each a child process on a free loopback port with its own empty data directory, and how
//! each is started, told to flush, and asked for its version.
//!
//! - **Sightline**: `sightline serve`; remote write at `POST /api/v1/write`; flushes its heads
//!   to segments periodically and on SIGTERM.
//! - **Prometheus** (Debian's `prometheus`): an empty `prometheus.yml` (it scrapes nothing),
//!   `--web.enable-remote-write-receiver`; keeps the last 2–3 hours in its head (WAL plus
//!   memory-mapped `chunks_head`) and cuts a block only once the head spans 3 hours, so its
//!   data directory is measured as it is. With `--web.enable-admin-api`, the harness also has
//!   it write its head as a block (a TSDB snapshot), to measure the format it keeps data in
//!   for good; the snapshot is measured apart and left out of the data directory.
//! - **VictoriaMetrics** (Debian's `victoria-metrics`): `-search.disableCache`, so repeated
//!   queries are computed, not served from its rollup cache (Prometheus and Sightline keep
//!   none), and `-search.latencyOffset=0s`, so the newest samples are queryable at once;
//!   `GET /internal/force_flush` turns its in-memory parts into files. Its `cache/` directory
//!   (caches it saves on shutdown and rebuilds when they are missing) is not counted as data.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::ValueEnum;
use reqwest::blocking::Client;

use crate::report::version_of;
use crate::server::{Launch, Server, free_loopback_addr};

/// Where Prometheus' admin API writes snapshots, under its data directory.
const SNAPSHOTS_DIR: &str = "snapshots";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Peer {
    Sightline,
    Prometheus,
    VictoriaMetrics,
}

/// Where each server's binary is.
pub struct Binaries {
    pub sightline: PathBuf,
    pub prometheus: PathBuf,
    pub victoria_metrics: PathBuf,
}

impl Peer {
    pub const ALL: [Peer; 3] = [Peer::Sightline, Peer::Prometheus, Peer::VictoriaMetrics];

    pub fn title(self) -> &'static str {
        match self {
            Peer::Sightline => "Sightline",
            Peer::Prometheus => "Prometheus",
            Peer::VictoriaMetrics => "VictoriaMetrics",
        }
    }

    /// Its file and directory names.
    pub fn slug(self) -> &'static str {
        match self {
            Peer::Sightline => "sightline",
            Peer::Prometheus => "prometheus",
            Peer::VictoriaMetrics => "victoria-metrics",
        }
    }

    pub fn binary(self, bins: &Binaries) -> &Path {
        match self {
            Peer::Sightline => &bins.sightline,
            Peer::Prometheus => &bins.prometheus,
            Peer::VictoriaMetrics => &bins.victoria_metrics,
        }
    }

    /// The path remote-write bodies go to.
    pub fn write_path(self) -> &'static str {
        "/api/v1/write"
    }

    /// Top-level directories of its data directory left out of the bytes per sample: caches
    /// it rebuilds (VictoriaMetrics' `cache/`) and the harness's own snapshot (Prometheus').
    pub fn cache_dirs(self) -> &'static [&'static str] {
        match self {
            Peer::VictoriaMetrics => &["cache"],
            Peer::Prometheus => &[SNAPSHOTS_DIR],
            Peer::Sightline => &[],
        }
    }

    /// How to install it when it is missing.
    pub fn install_hint(self) -> &'static str {
        match self {
            Peer::Sightline => "cargo build --release -p sightline, or pass --server-bin",
            Peer::Prometheus => "apt-get install -y prometheus, or pass --prometheus-bin",
            Peer::VictoriaMetrics => {
                "apt-get install -y victoria-metrics, or pass --victoria-metrics-bin"
            }
        }
    }

    /// Starts it on an empty `data_dir` (created here), its output to `log_path`; waits until
    /// it is ready.
    pub fn start(
        self,
        bins: &Binaries,
        data_dir: &Path,
        log_path: &Path,
        http: &Client,
    ) -> Result<(Server, Duration)> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("create {}", data_dir.display()))?;
        let bin = self.binary(bins);
        let http_addr = free_loopback_addr()?;
        let mut command = Command::new(bin);
        let (name, ready_path) = match self {
            Peer::Sightline => return Server::start(bin, data_dir, log_path, http),
            Peer::Prometheus => {
                let config = data_dir.with_extension("yml");
                std::fs::write(
                    &config,
                    "global:\n  scrape_interval: 1m\nscrape_configs: []\n",
                )
                .with_context(|| format!("write {}", config.display()))?;
                command
                    .arg(format!("--config.file={}", config.display()))
                    .arg(format!("--storage.tsdb.path={}", data_dir.display()))
                    .arg(format!("--web.listen-address={http_addr}"))
                    .arg("--web.enable-remote-write-receiver")
                    .arg("--web.enable-admin-api");
                ("prometheus", "/-/ready")
            }
            Peer::VictoriaMetrics => {
                command
                    .arg(format!("-httpListenAddr={http_addr}"))
                    .arg(format!("-storageDataPath={}", data_dir.display()))
                    .arg("-search.disableCache")
                    .arg("-search.latencyOffset=0s");
                ("victoria-metrics", "/health")
            }
        };
        Server::spawn(
            Launch {
                name,
                command,
                http_addr,
                ready_path,
            },
            log_path,
            http,
        )
    }

    /// Asks it to make everything it acknowledged searchable and written out, where it has a
    /// way to be asked (VictoriaMetrics); the others need nothing.
    pub fn flush(self, server: &Server, http: &Client) -> Result<()> {
        if self == Peer::VictoriaMetrics {
            let url = format!("{}/internal/force_flush", server.base);
            http.get(&url)
                .send()
                .and_then(|r| r.error_for_status())
                .with_context(|| format!("GET {url}"))?;
        }
        Ok(())
    }

    /// Prometheus only: writes its head as a block, the format it keeps data in for good,
    /// with the admin API's snapshot (`<data>/snapshots/<name>/`), and returns that
    /// directory. The others: none.
    pub fn snapshot_head(
        self,
        server: &Server,
        http: &Client,
        data_dir: &Path,
    ) -> Result<Option<PathBuf>> {
        if self != Peer::Prometheus {
            return Ok(None);
        }
        let url = format!("{}/api/v1/admin/tsdb/snapshot", server.base);
        let answer: serde_json::Value = http
            .post(&url)
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .with_context(|| format!("POST {url}"))?;
        let name = answer["data"]["name"]
            .as_str()
            .with_context(|| format!("POST {url}: no data.name in {answer}"))?;
        Ok(Some(data_dir.join(SNAPSHOTS_DIR).join(name)))
    }

    /// Its version, as it prints it (or as Debian packaged it, for a build that prints none).
    pub fn version(self, bins: &Binaries) -> String {
        let bin = self.binary(bins);
        let printed = match self {
            Peer::Sightline | Peer::Prometheus => version_of(bin, "--version"),
            Peer::VictoriaMetrics => version_of(bin, "-version"),
        };
        if !printed.contains("unknown") && printed.chars().any(|c| c.is_ascii_digit()) {
            return printed;
        }
        Command::new("dpkg-query")
            .args(["-W", "-f", "${Version}", self.slug()])
            .output()
            .ok()
            .filter(|o| o.status.success() && !o.stdout.is_empty())
            .map(|o| {
                format!(
                    "{} {} (Debian package)",
                    self.slug(),
                    String::from_utf8_lossy(&o.stdout).trim()
                )
            })
            .unwrap_or(printed)
    }
}
