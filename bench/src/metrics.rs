//! `sightline-bench metrics`: Sightline against Prometheus and VictoriaMetrics on the same
//! remote-write samples, start to end.
//!
//! 1. Generate the TSBS-style devops workload ([`devops`]) ending now, and, when they fit,
//!    every request body, once: every server gets the same bytes.
//! 2. For each server in turn, alone on the machine (so its CPU time is its own, and the
//!    harness's does not crowd it more than it must on a small machine):
//!    start it on an empty data directory; send every body with the shard threads, reading
//!    the server's CPU time before the first request and after the last answer; ask it to
//!    flush where it can (VictoriaMetrics) and wait until it is idle; read its peak RSS;
//!    count the series and samples it holds with PromQL; time the range queries
//!    ([`promql`]); stop it with SIGTERM (Sightline flushes its heads to segments) and
//!    measure its data directory.
//! 3. Compare every server's answers with Prometheus', print the report and append it to
//!    `--out`. A different answer is reported, not fatal.

mod devops;
mod peers;
mod promql;
mod report;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use reqwest::blocking::Client;

pub use peers::Peer;

use devops::{Batches, Devops, SampleCount, Workload};
use peers::Binaries;
use promql::RangeQuery;
use report::{Block, MetricsReport, PeerResult, Setting, Stored};

use crate::MetricsArgs;
use crate::clock::{date_utc, now_ns};
use crate::ingest::{self, Batches as _, Payload, Source};
use crate::procfs;
use crate::report::{command_line, git_commit, print_and_append};
use crate::server::{self, Server};

pub fn run(args: &MetricsArgs) -> Result<bool> {
    ensure!(args.hosts >= 1, "--hosts must be at least 1");
    ensure!(args.shards >= 1, "--shards must be at least 1");
    ensure!(
        args.interval_ms >= 1_000,
        "--interval must be at least a second"
    );
    ensure!(
        args.duration_ms >= args.interval_ms,
        "--duration must be at least one --interval"
    );
    ensure!(!args.servers.is_empty(), "--servers names none");
    let bins = Binaries {
        sightline: args.server_bin.clone(),
        prometheus: args.prometheus_bin.clone(),
        victoria_metrics: args.victoria_metrics_bin.clone(),
    };
    for peer in &args.servers {
        let bin = peer.binary(&bins);
        ensure!(
            bin.is_file(),
            "no {} binary at {} ({})",
            peer.title(),
            bin.display(),
            peer.install_hint()
        );
    }
    let ticks = procfs::clock_ticks_per_second();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let http = Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(600))
        .pool_max_idle_per_host(args.shards * 2)
        .build()
        .context("build the http client")?;

    // The data ends at the last whole interval before now.
    let now_ms = now_ns()? / 1_000_000;
    let end_ms = now_ms.div_euclid(args.interval_ms) * args.interval_ms;
    let rounds = u32::try_from(args.duration_ms / args.interval_ms).context("--duration")?;
    let workload = Workload {
        seed: args.seed,
        hosts: args.hosts,
        interval_ms: args.interval_ms,
        rounds,
        start_ms: end_ms - i64::from(rounds) * args.interval_ms,
    };
    eprintln!(
        "generating {} hosts × {} series × {} scrapes = {} samples...",
        workload.hosts,
        devops::SERIES_PER_HOST,
        workload.rounds,
        workload.samples()
    );
    let started = Instant::now();
    let devops = Devops::generate(workload.clone(), threads)?;
    let batches = Batches::new(&devops, args.shards, args.batch_samples)?;
    let first = batches.build(0)?;
    let estimate_bytes = first.body.len() as u64 * batches.count();
    drop(first);
    let pregenerated = estimate_bytes <= args.pregenerate_max_mib << 20;
    let payloads = if pregenerated {
        eprintln!(
            "building {} requests (~{} MiB of snappy bodies) on {threads} threads...",
            batches.count(),
            estimate_bytes >> 20
        );
        ingest::build_all(&batches, threads)?
    } else {
        eprintln!(
            "bodies (~{} MiB) exceed --pregenerate-max-mib {}: the shard threads build them while sending",
            estimate_bytes >> 20,
            args.pregenerate_max_mib
        );
        Vec::new()
    };
    eprintln!("generated in {:.1} s", started.elapsed().as_secs_f64());
    let body_bytes = payloads.iter().map(|p| p.body.len() as u64).sum();

    let work = server::work_dir(args.work_dir.as_deref())?;
    eprintln!("work directory: {}", work.path().display());
    let plan = promql::plan(&workload);
    let run = PeerRun {
        args,
        http: &http,
        ticks,
        bins: &bins,
        work: work.path(),
        batches: &batches,
        payloads: &payloads,
        pregenerated,
        plan: &plan,
    };
    let mut peers = Vec::new();
    for &peer in &args.servers {
        eprintln!("— {} —", peer.title());
        let outcome = run.measure(peer).map_err(|e| format!("{e:#}"));
        if let Err(e) = &outcome {
            eprintln!("{} FAILED: {e}", peer.title());
        }
        peers.push((peer, outcome));
    }
    let failed = peers.iter().any(|(_, o)| o.is_err());
    if args.keep_data || failed {
        let kept = work.keep();
        eprintln!(
            "kept the data directories and server logs in {}",
            kept.display()
        );
    }

    let report = MetricsReport {
        setting: Setting {
            machine: procfs::machine(),
            date_utc: date_utc(),
            commit: git_commit(),
            command: command_line(),
            data_filesystem: procfs::filesystem_of(&std::env::temp_dir()),
            workload,
            shards: args.shards,
            batch_samples: args.batch_samples,
            batches: batches.count(),
            pregenerated,
            body_bytes,
            query_runs: args.query_runs,
        },
        plan,
        peers,
    };
    print_and_append(&report.markdown(), args.out.as_deref())?;
    Ok(true)
}

/// What every server's run shares.
struct PeerRun<'a> {
    args: &'a MetricsArgs,
    http: &'a Client,
    ticks: u64,
    bins: &'a Binaries,
    work: &'a Path,
    batches: &'a Batches<'a>,
    payloads: &'a [Payload<SampleCount>],
    pregenerated: bool,
    plan: &'a [RangeQuery],
}

impl PeerRun<'_> {
    /// Prometheus' head written as a block: its bytes, and the CPU and time that took.
    fn snapshot(&self, peer: Peer, server: &Server) -> Result<Option<Block>> {
        let cpu_before = server.cpu_seconds(self.ticks)?;
        let started = Instant::now();
        let data_dir = self.work.join(peer.slug());
        let Some(dir) = peer.snapshot_head(server, self.http, &data_dir)? else {
            return Ok(None);
        };
        let seconds = started.elapsed().as_secs_f64();
        let cpu_s = server.cpu_seconds(self.ticks)? - cpu_before;
        let (bytes, files) = procfs::dir_bytes_and_files(&dir)?;
        eprintln!(
            "wrote its head as a block in {seconds:.1} s: {:.1} MB",
            bytes as f64 / 1e6
        );
        Ok(Some(Block {
            bytes,
            files,
            cpu_s,
            seconds,
        }))
    }

    fn measure(&self, peer: Peer) -> Result<PeerResult> {
        let (http, ticks) = (self.http, self.ticks);
        let workload = self.batches.workload();
        let data_dir = self.work.join(peer.slug());
        let log_path = self.work.join(format!("{}.log", peer.slug()));
        let (mut server, startup) = peer.start(self.bins, &data_dir, &log_path, http)?;
        eprintln!(
            "{} ready in {:.0} ms (pid {}); sending {} samples by remote write...",
            peer.title(),
            startup.as_secs_f64() * 1e3,
            server.pid,
            workload.samples()
        );
        let cpu_start = server.cpu_seconds(ticks)?;
        let source = if self.pregenerated {
            Source::Pregenerated(self.payloads)
        } else {
            Source::OnTheFly(self.batches)
        };
        let endpoint = ingest::Endpoint {
            http,
            base: &server.base,
            pid: server.pid,
        };
        let ingest = ingest::run(
            &endpoint,
            &devops::request(peer.write_path()),
            source,
            self.batches.shard_count(),
        )?;
        let cpu_answered = server.cpu_seconds(ticks)?;
        server.check_alive()?;
        ensure!(
            ingest.tally.0 == workload.samples(),
            "{} acknowledged {} samples, meant {}",
            peer.title(),
            ingest.tally.0,
            workload.samples()
        );
        eprintln!(
            "sent in {:.1} s, server CPU {:.1} s; flushing and waiting until idle...",
            ingest.wall.as_secs_f64(),
            cpu_answered - cpu_start
        );
        peer.flush(&server, http)?;
        let settle_s = server.wait_idle(ticks, Duration::from_secs(self.args.settle_timeout_s))?;
        let cpu_idle = server.cpu_seconds(ticks)?;
        let (rss_idle_bytes, peak_rss_bytes) = procfs::rss_and_peak_bytes(server.pid)?;

        let at_ms = workload.end_ms();
        let count = |q: &str| {
            promql::instant_number(http, &server.base, q, at_ms).map_err(|e| format!("{e:#}"))
        };
        let series_found = count(promql::SERIES_QUERY);
        let samples_found =
            promql::count_samples(http, &server.base, workload).map_err(|e| format!("{e:#}"));
        eprintln!(
            "holds {} series and {} samples; querying...",
            series_found
                .as_ref()
                .map_or_else(|e| e.clone(), |n| n.to_string()),
            samples_found
                .as_ref()
                .map_or_else(|e| e.clone(), |n| n.to_string())
        );
        let mut queries = Vec::new();
        for q in self.plan {
            let r = promql::run(http, &server.base, q, self.args.query_runs);
            match &r.answer {
                Ok(m) => eprintln!(
                    "  {}: median {:.1} ms, {} series",
                    q.name,
                    r.median_ms().unwrap_or(f64::NAN),
                    m.len()
                ),
                Err(e) => eprintln!("  {}: FAILED: {}", q.name, e.lines().next().unwrap_or("")),
            }
            queries.push(r);
        }
        let block = self.snapshot(peer, &server)?;
        server.check_alive()?;
        let cpu_before_stop = server.cpu_seconds(ticks)?;
        let stopped = server.stop(ticks)?;
        let stored = Stored::measure(&data_dir, peer.cache_dirs())?;
        eprintln!(
            "stopped in {:.1} s; data directory {:.1} MB",
            stopped.seconds,
            stored.bytes as f64 / 1e6
        );
        Ok(PeerResult {
            version: peer.version(self.bins),
            startup,
            cpu_ingest_s: cpu_answered - cpu_start,
            cpu_settle_s: cpu_idle - cpu_answered,
            settle_s,
            cpu_stop_s: stopped.cpu_seconds_total - cpu_before_stop,
            stop_s: stopped.seconds,
            peak_rss_bytes,
            rss_idle_bytes,
            stored,
            series_found,
            samples_found,
            queries,
            block,
            ingest,
        })
    }
}
