//! The server under test: the real binary, started on free loopback ports with its own data
//! directory, its output in a log file, stopped with SIGTERM (it flushes its heads to
//! segments on the way out) and killed if the harness gives up on it.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::blocking::Client;

use crate::procfs;

/// How long start-up (WAL replay included) may take before the harness gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a SIGTERM shutdown (the final flush included) may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(600);

pub struct Server {
    child: Child,
    pub pid: u32,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub log_path: PathBuf,
}

/// What a SIGTERM shutdown cost.
pub struct Stopped {
    pub seconds: f64,
    /// CPU seconds the process had used when it exited.
    pub cpu_seconds_total: f64,
}

impl Server {
    /// Starts `bin serve` on free ports and waits until `/health/ready` answers 200; returns
    /// the server and how long that took.
    pub fn start(
        bin: &Path,
        data_dir: &Path,
        log_path: &Path,
        http: &Client,
    ) -> Result<(Server, Duration)> {
        let http_addr = free_loopback_addr()?;
        let grpc_addr = free_loopback_addr()?;
        let log =
            File::create(log_path).with_context(|| format!("create {}", log_path.display()))?;
        let log_err = log.try_clone().context("clone log file handle")?;
        let started = Instant::now();
        let child = Command::new(bin)
            .arg("serve")
            .arg("--http-addr")
            .arg(&http_addr)
            .arg("--grpc-addr")
            .arg(&grpc_addr)
            .arg("--data-dir")
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let mut server = Server {
            pid: child.id(),
            child,
            base: format!("http://{http_addr}"),
            log_path: log_path.to_path_buf(),
        };
        server.wait_ready(http)?;
        Ok((server, started.elapsed()))
    }

    fn wait_ready(&mut self, http: &Client) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/health/ready", self.base);
        loop {
            if let Some(status) = self.child.try_wait().context("poll server process")? {
                bail!(
                    "server exited during start-up ({status}); its log:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(resp) = http.get(&url).timeout(Duration::from_secs(5)).send()
                && resp.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "server not ready after {READY_TIMEOUT:?}; its log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's CPU seconds so far.
    pub fn cpu_seconds(&self, ticks_per_second: u64) -> Result<f64> {
        procfs::cpu_seconds(self.pid, ticks_per_second)
    }

    /// Sends SIGTERM and waits for the process to exit; reads its CPU time while it is a
    /// zombie, before reaping it.
    pub fn stop(mut self, ticks_per_second: u64) -> Result<Stopped> {
        let started = Instant::now();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .context("run kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM {} failed: {status}", self.pid);
        }
        let deadline = started + STOP_TIMEOUT;
        let mut cpu_ticks = 0;
        loop {
            match procfs::state_and_cpu_ticks(self.pid) {
                Ok((state, ticks)) => {
                    cpu_ticks = ticks;
                    if state == 'Z' || state == 'X' {
                        break;
                    }
                }
                Err(_) => break, // already reaped by someone else: keep the last reading
            }
            if Instant::now() > deadline {
                bail!(
                    "server did not exit {STOP_TIMEOUT:?} after SIGTERM; its log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let seconds = started.elapsed().as_secs_f64();
        let status = self.child.wait().context("reap server process")?;
        if !status.success() {
            bail!(
                "server exited with {status} after SIGTERM; its log:\n{}",
                self.log_tail()
            );
        }
        Ok(Stopped {
            seconds,
            cpu_seconds_total: cpu_ticks as f64 / ticks_per_second as f64,
        })
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("poll server process")? {
            bail!("server exited ({status}); its log:\n{}", self.log_tail());
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only when `stop` was not reached (an error on the way): never leave it running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_loopback_addr() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener
        .local_addr()
        .context("read the free port")?
        .to_string())
}

/// Scrapes `/metrics` into `(name, value)` pairs of the series without labels.
pub fn scrape_metrics(http: &Client, base: &str) -> Result<Vec<(String, f64)>> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .context("GET /metrics")?
        .error_for_status()
        .context("GET /metrics")?
        .text()
        .context("read /metrics")?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains('{'))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect())
}

/// The value of one metric from [`scrape_metrics`].
pub fn metric(metrics: &[(String, f64)], name: &str) -> Option<f64> {
    metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}
