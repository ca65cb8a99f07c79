//! A server under test: the real binary (Sightline, or a peer such as Prometheus), started on
//! free loopback ports with its own data directory, its output in a log file, stopped by its
//! PID with SIGTERM (Sightline flushes its heads to segments on the way out) and killed if the
//! harness gives up on it.

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

/// A server is idle when it used less CPU than this in a second.
pub const IDLE_CPU_PER_SECOND: f64 = 0.05;

/// How to run a server: the command with its flags (loopback address and data directory
/// among them), the `host:port` it will serve HTTP on, and the path that answers 2xx once it
/// is ready.
pub struct Launch {
    pub name: &'static str,
    pub command: Command,
    pub http_addr: String,
    pub ready_path: &'static str,
}

pub struct Server {
    /// For messages: `sightline`, `prometheus`, …
    pub name: &'static str,
    child: Child,
    pub pid: u32,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub log_path: PathBuf,
}

/// What a Sightline data directory holds at one moment.
pub struct Stored {
    pub segment_bytes: u64,
    pub segment_files: u64,
    pub wal_bytes: u64,
}

impl Stored {
    /// Measures `data_dir/segments` and `data_dir/wal`.
    pub fn measure(data_dir: &Path) -> Result<Stored> {
        let (segment_bytes, segment_files) =
            procfs::dir_bytes_and_files(&data_dir.join("segments"))?;
        let (wal_bytes, _) = procfs::dir_bytes_and_files(&data_dir.join("wal"))?;
        Ok(Stored {
            segment_bytes,
            segment_files,
            wal_bytes,
        })
    }
}

/// What a SIGTERM shutdown cost.
pub struct Stopped {
    pub seconds: f64,
    /// CPU seconds the process had used when it exited.
    pub cpu_seconds_total: f64,
}

impl Server {
    /// Starts `bin serve` (Sightline) on free ports and waits until `/health/ready` answers
    /// 200; returns the server and how long that took.
    pub fn start(
        bin: &Path,
        data_dir: &Path,
        log_path: &Path,
        http: &Client,
    ) -> Result<(Server, Duration)> {
        let http_addr = free_loopback_addr()?;
        let grpc_addr = free_loopback_addr()?;
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .arg("--http-addr")
            .arg(&http_addr)
            .arg("--grpc-addr")
            .arg(&grpc_addr)
            .arg("--data-dir")
            .arg(data_dir);
        Server::spawn(
            Launch {
                name: "sightline",
                command,
                http_addr,
                ready_path: "/health/ready",
            },
            log_path,
            http,
        )
    }

    /// Runs `launch.command`, its output to `log_path`, and waits until `ready_path` answers
    /// 2xx; returns the server and how long that took.
    pub fn spawn(launch: Launch, log_path: &Path, http: &Client) -> Result<(Server, Duration)> {
        let Launch {
            name,
            mut command,
            http_addr,
            ready_path,
        } = launch;
        let log =
            File::create(log_path).with_context(|| format!("create {}", log_path.display()))?;
        let log_err = log.try_clone().context("clone log file handle")?;
        let started = Instant::now();
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .with_context(|| format!("start {name} ({:?})", command.get_program()))?;
        let mut server = Server {
            name,
            pid: child.id(),
            child,
            base: format!("http://{http_addr}"),
            log_path: log_path.to_path_buf(),
        };
        server.wait_ready(http, ready_path)?;
        Ok((server, started.elapsed()))
    }

    fn wait_ready(&mut self, http: &Client, ready_path: &str) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}{ready_path}", self.base);
        loop {
            if let Some(status) = self.child.try_wait().context("poll server process")? {
                bail!(
                    "{} exited during start-up ({status}); its log:\n{}",
                    self.name,
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
                    "{} not ready after {READY_TIMEOUT:?}; its log:\n{}",
                    self.name,
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
                    "{} did not exit {STOP_TIMEOUT:?} after SIGTERM; its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let seconds = started.elapsed().as_secs_f64();
        let status = self.child.wait().context("reap server process")?;
        if !status.success() {
            bail!(
                "{} exited with {status} after SIGTERM; its log:\n{}",
                self.name,
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

    /// Waits until the server has used less than [`IDLE_CPU_PER_SECOND`] in a second (at
    /// least two seconds, so background work that starts at once is seen); returns the
    /// seconds waited.
    pub fn wait_idle(&self, ticks_per_second: u64, timeout: Duration) -> Result<f64> {
        let started = Instant::now();
        let mut last = self.cpu_seconds(ticks_per_second)?;
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let now = self.cpu_seconds(ticks_per_second)?;
            let used = now - last;
            last = now;
            if started.elapsed() >= Duration::from_secs(2) && used < IDLE_CPU_PER_SECOND {
                return Ok(started.elapsed().as_secs_f64());
            }
            if started.elapsed() > timeout {
                bail!("{} was still busy after {timeout:?}", self.name);
            }
        }
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("poll server process")? {
            bail!(
                "{} exited ({status}); its log:\n{}",
                self.name,
                self.log_tail()
            );
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

/// `127.0.0.1:<port>` of a port that was free a moment ago.
pub fn free_loopback_addr() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener
        .local_addr()
        .context("read the free port")?
        .to_string())
}

/// The text `/metrics` answers.
fn metrics_text(http: &Client, base: &str) -> Result<String> {
    http.get(format!("{base}/metrics"))
        .send()
        .context("GET /metrics")?
        .error_for_status()
        .context("GET /metrics")?
        .text()
        .context("read /metrics")
}

/// Scrapes `/metrics` into `(name, value)` pairs of the series without labels.
pub fn scrape_metrics(http: &Client, base: &str) -> Result<Vec<(String, f64)>> {
    let text = metrics_text(http, base)?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains('{'))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect())
}

/// The sum over the series of metric `name` whose labels contain `label` (e.g.
/// `signal="traces"`), scraped from `/metrics`.
pub fn scrape_sum(http: &Client, base: &str, name: &str, label: &str) -> Result<f64> {
    let text = metrics_text(http, base)?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let labels = series.strip_prefix(name)?.strip_prefix('{')?;
            labels.contains(label).then(|| value.parse::<f64>().ok())?
        })
        .fold(0.0, |sum, v| sum + v))
}

/// The value of one metric from [`scrape_metrics`].
pub fn metric(metrics: &[(String, f64)], name: &str) -> Option<f64> {
    metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

/// A new temporary directory (`sightline-bench-*`) in `parent`, or in the system's temp dir.
pub fn work_dir(parent: Option<&Path>) -> Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("sightline-bench-");
    match parent {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            builder.tempdir_in(dir)
        }
        None => builder.tempdir(),
    }
    .context("create the temporary work directory")
}
