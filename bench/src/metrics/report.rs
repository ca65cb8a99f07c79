//! The report of a `metrics` run: one column per server, the query latencies and answer
//! checks, and the issue's targets as ratios of Sightline to its peers. Markdown, printed and
//! optionally appended to a file. Units as in [`crate::report`].

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::devops::{SERIES_PER_HOST, SampleCount, Workload};
use super::peers::Peer;
use super::promql::{QueryRun, RangeQuery, SERIES_QUERY, compare, duration_text, samples_query};
use crate::ingest::IngestResult;
use crate::procfs::{self, Machine};
use crate::report::{machine_text, mb, mib, percentile, thousands};

/// The issue's targets, as ratios of Sightline's figure to VictoriaMetrics'.
pub const TARGET_BYTES_PER_SAMPLE_RATIO: f64 = 0.8;
pub const TARGET_INGEST_PER_CPU_RATIO: f64 = 1.5;
pub const TARGET_RSS_RATIO: f64 = 1.0;
/// Sightline's median latency ÷ the faster peer's, per query.
pub const TARGET_QUERY_RATIO: f64 = 1.0;

/// Where and on what the run happened.
pub struct Setting {
    pub machine: Machine,
    pub date_utc: String,
    pub commit: String,
    pub command: String,
    pub data_filesystem: String,
    pub workload: Workload,
    pub shards: usize,
    pub batch_samples: u64,
    pub batches: u64,
    pub pregenerated: bool,
    pub body_bytes: u64,
    pub query_runs: usize,
}

/// A data directory after the server stopped.
pub struct Stored {
    /// Bytes of every file but those under `uncounted`.
    pub bytes: u64,
    pub files: u64,
    /// Its top-level entries and their bytes, largest first.
    pub parts: Vec<(String, u64)>,
    /// Top-level directories left out of `bytes` (caches the server rebuilds), and their bytes.
    pub uncounted: Vec<(String, u64)>,
}

impl Stored {
    /// Measures `dir`, leaving out its top-level directories named in `uncounted`.
    pub fn measure(dir: &Path, uncounted: &[&str]) -> anyhow::Result<Stored> {
        let (bytes, files) = procfs::dir_bytes_and_files(dir)?;
        let mut parts = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let (b, _) = if entry.file_type()?.is_dir() {
                procfs::dir_bytes_and_files(&entry.path())?
            } else {
                (entry.metadata()?.len(), 1)
            };
            parts.push((entry.file_name().to_string_lossy().into_owned(), b));
        }
        parts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let (uncounted, parts): (Vec<_>, Vec<_>) = parts
            .into_iter()
            .partition(|(name, _)| uncounted.contains(&name.as_str()));
        let mut bytes = bytes;
        let mut files = files;
        for (name, b) in &uncounted {
            bytes -= b;
            files -= procfs::dir_bytes_and_files(&dir.join(name))?.1;
        }
        Ok(Stored {
            bytes,
            files,
            parts,
            uncounted,
        })
    }
}

/// Prometheus' head written as a block by the admin API's snapshot.
pub struct Block {
    pub bytes: u64,
    pub files: u64,
    pub cpu_s: f64,
    pub seconds: f64,
}

/// What one server's run measured.
pub struct PeerResult {
    pub version: String,
    pub startup: Duration,
    pub ingest: IngestResult<SampleCount>,
    /// Server CPU from just before the first request to just after the last answer.
    pub cpu_ingest_s: f64,
    /// Server CPU from then until it was idle (the forced flush of VictoriaMetrics included).
    pub cpu_settle_s: f64,
    pub settle_s: f64,
    /// Server CPU of the SIGTERM shutdown (Sightline's final flush).
    pub cpu_stop_s: f64,
    pub stop_s: f64,
    /// `VmHWM` once idle after ingest: the peak through ingest and flush.
    pub peak_rss_bytes: u64,
    pub rss_idle_bytes: u64,
    pub stored: Stored,
    pub series_found: Result<f64, String>,
    pub samples_found: Result<f64, String>,
    /// In the order of the plan.
    pub queries: Vec<QueryRun>,
    pub block: Option<Block>,
}

impl PeerResult {
    fn samples(&self) -> u64 {
        self.ingest.tally.0
    }

    /// Samples per server CPU-second, the whole cost: ingest, settling and shutdown.
    pub fn samples_per_cpu_second(&self) -> f64 {
        self.samples() as f64 / (self.cpu_ingest_s + self.cpu_settle_s + self.cpu_stop_s)
    }

    pub fn samples_per_cpu_second_to_last_answer(&self) -> f64 {
        self.samples() as f64 / self.cpu_ingest_s
    }

    pub fn bytes_per_sample(&self) -> f64 {
        self.stored.bytes as f64 / self.samples() as f64
    }
}

pub struct MetricsReport {
    pub setting: Setting,
    pub plan: Vec<RangeQuery>,
    pub peers: Vec<(Peer, Result<PeerResult, String>)>,
}

/// Milliseconds with two decimals below 10 ms, one above; `-` for none.
fn opt_ms(v: Option<f64>) -> String {
    match v {
        Some(ms) if ms < 10.0 => format!("{ms:.2}"),
        Some(ms) => format!("{ms:.1}"),
        None => "-".into(),
    }
}

fn found(r: &Result<f64, String>) -> String {
    match r {
        Ok(n) => thousands(*n),
        Err(e) => format!("failed: {}", e.lines().next().unwrap_or("")),
    }
}

impl MetricsReport {
    fn result(&self, peer: Peer) -> Option<&PeerResult> {
        self.peers
            .iter()
            .find(|(p, _)| *p == peer)
            .and_then(|(_, r)| r.as_ref().ok())
    }

    pub fn markdown(&self) -> String {
        let s = &self.setting;
        let w = &s.workload;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "### {} — metrics: {} samples by remote write to {}, commit {}\n",
            s.date_utc,
            thousands(w.samples() as f64),
            self.peers
                .iter()
                .map(|(p, _)| p.title())
                .collect::<Vec<_>>()
                .join(", "),
            s.commit
        );
        let _ = writeln!(
            o,
            "Machine: {}; data on {}.  ",
            machine_text(&s.machine),
            s.data_filesystem
        );
        let _ = writeln!(o, "Command: `{}`  ", s.command);
        let _ = writeln!(
            o,
            "Workload: TSBS-style devops, {} hosts × {SERIES_PER_HOST} series (10 `cpu_*` gauges, \
             6 `http_requests_total` counters, an 11-bucket histogram with `_sum` and `_count`) = \
             {} active series, {} scrapes each, {} apart, the last ending at the start of the run; \
             seed {}. Gauges random-walk in 0..100 with at most 2 decimals; counters and buckets \
             are whole numbers; `_sum` has whole milliseconds.  ",
            thousands(f64::from(w.hosts)),
            thousands(w.series() as f64),
            thousands(f64::from(w.rounds)),
            duration_text(w.interval_ms),
            w.seed
        );
        let _ = writeln!(
            o,
            "Sending: remote write 1.0 (snappy protobuf, one sample a `TimeSeries`), {} requests \
             of at most {} samples from {} concurrent senders, series sharded among them and each \
             series in time order; {}. Each server ran alone, one after the other, on the same \
             bodies; queries ran {} times each on the live server once it was idle after ingest.\n",
            thousands(s.batches as f64),
            thousands(s.batch_samples as f64),
            s.shards,
            if s.pregenerated {
                format!("{:.1} MB of bodies built before timing", mb(s.body_bytes))
            } else {
                "bodies built by the senders while timing".into()
            },
            s.query_runs
        );
        self.servers_table(&mut o);
        self.queries_table(&mut o);
        self.targets_table(&mut o);
        o
    }

    fn servers_table(&self, o: &mut String) {
        let _ = write!(o, "| |");
        for (p, _) in &self.peers {
            let _ = write!(o, " {} |", p.title());
        }
        let _ = write!(o, "\n|---|");
        for _ in &self.peers {
            let _ = write!(o, "---|");
        }
        let _ = writeln!(o);
        let row = |o: &mut String, name: &str, cell: &dyn Fn(&PeerResult) -> String| {
            let _ = write!(o, "| {name} |");
            for (_, r) in &self.peers {
                let text = match r {
                    Ok(r) => cell(r),
                    Err(_) => "-".into(),
                };
                let _ = write!(o, " {text} |");
            }
            let _ = writeln!(o);
        };
        row(o, "version", &|r| r.version.clone());
        row(o, "start-up on an empty directory", &|r| {
            format!("{:.0} ms", r.startup.as_secs_f64() * 1e3)
        });
        row(
            o,
            "samples acknowledged",
            &|r| thousands(r.samples() as f64),
        );
        let samples_query = samples_query(&self.setting.workload);
        row(
            o,
            &format!("samples found: `{samples_query}`, added up over the metric names"),
            &|r| found(&r.samples_found),
        );
        row(o, &format!("series found: `{SERIES_QUERY}`"), &|r| {
            found(&r.series_found)
        });
        row(o, "ingest wall time", &|r| {
            let wall = r.ingest.wall.as_secs_f64();
            format!(
                "{wall:.1} s ({} samples/s)",
                thousands(r.samples() as f64 / wall)
            )
        });
        row(o, "server CPU to the last answer", &|r| {
            format!(
                "{:.1} s ({:.2} cores busy)",
                r.cpu_ingest_s,
                r.cpu_ingest_s / r.ingest.wall.as_secs_f64()
            )
        });
        row(o, "server CPU after it, until idle", &|r| {
            format!("{:.1} s (idle after {:.0} s)", r.cpu_settle_s, r.settle_s)
        });
        row(o, "server CPU of the SIGTERM shutdown", &|r| {
            format!("{:.1} s ({:.1} s wall)", r.cpu_stop_s, r.stop_s)
        });
        row(o, "**samples per server CPU-second** (all three)", &|r| {
            format!("**{}**", thousands(r.samples_per_cpu_second()))
        });
        row(
            o,
            "samples per server CPU-second to the last answer",
            &|r| thousands(r.samples_per_cpu_second_to_last_answer()),
        );
        row(o, "request time p50 / p99 / max", &|r| {
            let ms = &r.ingest.request_ms;
            format!(
                "{:.0} / {:.0} / {:.0} ms",
                percentile(ms, 0.5),
                percentile(ms, 0.99),
                percentile(ms, 1.0)
            )
        });
        row(o, "requests retried (429, 503)", &|r| {
            r.ingest.retries.to_string()
        });
        row(o, "data directory after shutdown", &|r| {
            let parts: Vec<String> = r
                .stored
                .parts
                .iter()
                .take(4)
                .map(|(name, b)| format!("{name} {:.1}", mb(*b)))
                .collect();
            let uncounted: Vec<String> = r
                .stored
                .uncounted
                .iter()
                .map(|(name, b)| format!("; `{name}/` {:.1} MB not counted", mb(*b)))
                .collect();
            format!(
                "{:.1} MB in {} files ({}{})",
                mb(r.stored.bytes),
                r.stored.files,
                parts.join(", "),
                uncounted.concat()
            )
        });
        row(o, "**bytes per sample**", &|r| {
            format!("**{:.3}**", r.bytes_per_sample())
        });
        if self
            .peers
            .iter()
            .any(|(_, r)| r.as_ref().is_ok_and(|r| r.block.is_some()))
        {
            row(
                o,
                "head written as a block (admin API snapshot)",
                &|r| match &r.block {
                    Some(b) => format!(
                        "{:.1} MB in {} files, {:.3} bytes per sample; {:.1} s CPU, {:.1} s wall",
                        mb(b.bytes),
                        b.files,
                        b.bytes as f64 / r.samples() as f64,
                        b.cpu_s,
                        b.seconds
                    ),
                    None => "-".into(),
                },
            );
        }
        row(o, "**peak RSS** (VmHWM, ingest and flush)", &|r| {
            format!("**{:.0} MiB**", mib(r.peak_rss_bytes))
        });
        row(o, "RSS when idle after ingest", &|r| {
            format!("{:.0} MiB", mib(r.rss_idle_bytes))
        });
        let series = self.setting.workload.series() as f64;
        row(o, "peak RSS per active series", &|r| {
            format!("{:.0} bytes", r.peak_rss_bytes as f64 / series)
        });
        row(o, "harness CPU while sending", &|r| {
            format!("{:.1} s", r.ingest.client_cpu_seconds)
        });
        for (p, r) in &self.peers {
            if let Err(e) = r {
                let _ = writeln!(o, "\n{} failed:\n\n```\n{e}\n```", p.title());
            }
        }
        let _ = writeln!(
            o,
            "\nServer CPU is the server process's own user + system time (`/proc/<pid>/stat`); \
             samples per CPU-second divide by all three CPU rows. Bytes per sample are the data \
             directory after the SIGTERM shutdown divided by the samples."
        );
        let has = |p: Peer| self.peers.iter().any(|(q, _)| *q == p);
        if has(Peer::Prometheus) {
            let _ = writeln!(
                o,
                "Prometheus' directory is its WAL and memory-mapped head chunks as they are: it \
                 compacts its head into a block only once the head spans 3 hours, so its bytes \
                 per sample are not those of its compressed blocks; the row \"head written as a \
                 block\" gives those (a snapshot through its admin API, after the queries, not \
                 counted in the data directory)."
            );
        }
        if has(Peer::VictoriaMetrics) {
            let _ = writeln!(
                o,
                "VictoriaMetrics ran with `-search.disableCache` (no rollup cache, as the others \
                 keep none) and `-search.latencyOffset=0s`, and was asked to \
                 `/internal/force_flush` after ingest; its `cache/` directory is not counted."
            );
        }
        let _ = writeln!(o);
    }

    fn queries_table(&self, o: &mut String) {
        let reference = self.result(Peer::Prometheus);
        let _ = write!(o, "| Query | PromQL | range @ step |");
        for (p, _) in &self.peers {
            let _ = write!(o, " {} median ms |", p.title());
        }
        let compared: Vec<Peer> = self
            .peers
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| *p != Peer::Prometheus && reference.is_some())
            .collect();
        for p in &compared {
            let _ = write!(o, " {} vs Prometheus |", p.title());
        }
        let _ = write!(o, "\n|---|---|---|");
        for _ in 0..self.peers.len() + compared.len() {
            let _ = write!(o, "---|");
        }
        let _ = writeln!(o);
        let mut details = Vec::new();
        for (i, q) in self.plan.iter().enumerate() {
            let _ = write!(
                o,
                "| {} | `{}` | {} |",
                q.name,
                q.promql.replace('|', "\\|"),
                q.range_text()
            );
            for (p, r) in &self.peers {
                let cell = match r.as_ref().map(|r| &r.queries[i]) {
                    Ok(run) => match &run.answer {
                        Ok(_) => opt_ms(run.median_ms()),
                        Err(e) => {
                            details.push(format!("{} failed \"{}\":\n{e}", p.title(), q.name));
                            "**failed**".into()
                        }
                    },
                    Err(_) => "-".into(),
                };
                let _ = write!(o, " {cell} |");
                if let Ok(Some(u)) = r.as_ref().map(|r| &r.queries[i].unstable) {
                    details.push(format!("{} \"{}\": {u}", p.title(), q.name));
                }
            }
            for p in &compared {
                let cell = match (
                    self.result(*p).map(|r| &r.queries[i].answer),
                    reference.map(|r| &r.queries[i].answer),
                ) {
                    (Some(Ok(ours)), Some(Ok(theirs))) => {
                        let c = compare(ours, theirs);
                        if c.starts_with("same") {
                            c
                        } else {
                            details.push(format!(
                                "{} \"{}\" differs from Prometheus: {c}",
                                p.title(),
                                q.name
                            ));
                            "**differs**".into()
                        }
                    }
                    _ => "-".into(),
                };
                let _ = write!(o, " {cell} |");
            }
            let _ = writeln!(o);
        }
        if !details.is_empty() {
            let _ = writeln!(o, "\n```");
            for d in details {
                let _ = writeln!(o, "{d}");
            }
            let _ = writeln!(o, "```");
        }
        let _ = writeln!(o);
    }

    fn targets_table(&self, o: &mut String) {
        let (Some(ours), Some(vm)) = (
            self.result(Peer::Sightline),
            self.result(Peer::VictoriaMetrics),
        ) else {
            let _ = writeln!(
                o,
                "The targets (ratios of Sightline to VictoriaMetrics) need both in the run.\n"
            );
            return;
        };
        let verdict = |met: bool| if met { "met" } else { "**not met**" };
        let _ = writeln!(
            o,
            "| Target (issue 3): Sightline ÷ its peer | Sightline | peer | ratio | |\n|---|---|---|---|---|"
        );
        let ratio = ours.bytes_per_sample() / vm.bytes_per_sample();
        let _ = writeln!(
            o,
            "| bytes per sample ≤ {TARGET_BYTES_PER_SAMPLE_RATIO} × VictoriaMetrics' | {:.3} | {:.3} | {ratio:.2} | {} |",
            ours.bytes_per_sample(),
            vm.bytes_per_sample(),
            verdict(ratio <= TARGET_BYTES_PER_SAMPLE_RATIO)
        );
        let ratio = ours.samples_per_cpu_second() / vm.samples_per_cpu_second();
        let _ = writeln!(
            o,
            "| samples per CPU-second ≥ {TARGET_INGEST_PER_CPU_RATIO} × VictoriaMetrics' | {} | {} | {ratio:.2} | {} |",
            thousands(ours.samples_per_cpu_second()),
            thousands(vm.samples_per_cpu_second()),
            verdict(ratio >= TARGET_INGEST_PER_CPU_RATIO)
        );
        let ratio = ours.peak_rss_bytes as f64 / vm.peak_rss_bytes as f64;
        let _ = writeln!(
            o,
            "| peak RSS ≤ VictoriaMetrics' | {:.0} MiB | {:.0} MiB | {ratio:.2} | {} |",
            mib(ours.peak_rss_bytes),
            mib(vm.peak_rss_bytes),
            verdict(ratio <= TARGET_RSS_RATIO)
        );
        let prometheus = self.result(Peer::Prometheus);
        for (i, q) in self.plan.iter().enumerate() {
            let peers = [prometheus, Some(vm)];
            let faster = peers
                .iter()
                .flatten()
                .filter_map(|r| r.queries[i].median_ms())
                .min_by(f64::total_cmp);
            let same = match (
                &ours.queries[i].answer,
                prometheus.map(|p| &p.queries[i].answer),
            ) {
                (Ok(a), Some(Ok(b))) => Some(compare(a, b).starts_with("same")),
                _ => None,
            };
            let mine = ours.queries[i].median_ms();
            let (ratio, met) = match (mine, faster) {
                (Some(m), Some(f)) => (
                    format!("{:.2}", m / f),
                    m / f <= TARGET_QUERY_RATIO && same != Some(false),
                ),
                _ => ("-".into(), false),
            };
            let _ = writeln!(
                o,
                "| {}: median ≤ the faster peer's{} | {} ms | {} ms | {ratio} | {} |",
                q.name,
                match same {
                    Some(true) => ", answer = Prometheus'",
                    Some(false) => ", answer **differs** from Prometheus'",
                    None => "",
                },
                opt_ms(mine),
                opt_ms(faster),
                verdict(met)
            );
        }
        let _ = writeln!(o);
    }
}
