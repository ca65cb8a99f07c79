//! `sightline-bench logs`: the logs benchmark, start to end.
//!
//! 1. Generate the lines' plan (2 hours ending now) and, when they fit, every request body.
//! 2. Start the server on an empty data directory; ingest with the client threads, reading
//!    the server's CPU time before the first and after the last acknowledged request.
//! 3. Stop it with SIGTERM (it flushes its heads to segments), measure the segments.
//! 4. Start it again on the same directory (start-up time), wait for its background work
//!    (compaction) to settle, measure the segments again, then time the queries, which now
//!    read segments only.
//! 5. Print the report and append it to `--out`.

mod batches;
mod generate;
mod otlp;
mod query;
mod report;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use reqwest::blocking::Client;

use batches::Batches;
pub use batches::Via;
use generate::{Generator, write_ndjson};
use report::{LogsReport, Setting};

use crate::clock::{date_utc, now_ns};
use crate::ingest::{self, Batches as _, Source};
use crate::procfs;
use crate::report::{git_commit, print_and_append, version_of};
use crate::server::{self, Server, Stored};
use crate::{GenerateArgs, LogsArgs};

/// The lines' timestamps span this, ending when the run starts.
const SPAN_NS: i64 = 2 * 3_600 * 1_000_000_000;

/// Returns whether every query answer was right.
pub fn run(args: &LogsArgs) -> Result<bool> {
    ensure!(args.lines >= 1, "--lines must be at least 1");
    ensure!(args.batch_lines >= 1, "--batch-lines must be at least 1");
    let server_bin = args.server_bin.clone();
    ensure!(
        server_bin.is_file(),
        "no server binary at {} (build it with `cargo build --release -p sightline`, or pass --server-bin)",
        server_bin.display()
    );
    let ticks = procfs::clock_ticks_per_second();
    let http = Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(args.clients.max(1) * 2)
        .build()
        .context("build the http client")?;

    let now = now_ns()?;
    let generator = Generator::new(
        args.seed,
        args.lines,
        now - SPAN_NS,
        SPAN_NS,
        args.lines_per_request,
    );
    // The first line of a request about 7/13 of the way in; its request has this many lines.
    let lpr = generator.lines_per_request();
    let needle_index = args.lines / lpr * 7 / 13 * lpr;
    let needle = generator.record(needle_index);
    let needle_lines = lpr.min(args.lines - needle_index);
    let batches = Batches {
        generator: generator.clone(),
        via: args.via,
        lines: args.lines,
        batch_lines: args.batch_lines,
        gzip: args.gzip,
    };
    let first = batches.build(0)?;
    let estimate_bytes = first.body.len() as u64 * batches.count();
    let pregenerate = estimate_bytes <= args.pregenerate_max_mib << 20;
    let payloads = if pregenerate {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        eprintln!(
            "generating {} lines ({} requests, ~{} MiB of bodies) on {threads} threads...",
            args.lines,
            batches.count(),
            estimate_bytes >> 20
        );
        let started = Instant::now();
        let all = ingest::build_all(&batches, threads)?;
        eprintln!("generated in {:.1} s", started.elapsed().as_secs_f64());
        all
    } else {
        eprintln!(
            "bodies (~{} MiB) exceed --pregenerate-max-mib {}: the client threads build them while sending",
            estimate_bytes >> 20,
            args.pregenerate_max_mib
        );
        Vec::new()
    };
    drop(first);

    let work = server::work_dir(args.work_dir.as_deref())?;
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    eprintln!("data directory: {}", data_dir.display());

    let outcome = measure(
        args,
        &http,
        ticks,
        &server_bin,
        work.path(),
        &batches,
        &payloads,
        pregenerate,
        (&needle, needle_lines),
    );
    if args.keep_data || outcome.is_err() {
        let kept = work.keep();
        eprintln!(
            "kept the data directory and server logs in {}",
            kept.display()
        );
    }
    let report = outcome?;

    print_and_append(&report.markdown(), args.out.as_deref())?;
    Ok(!report.any_check_failed())
}

/// `sightline-bench generate`: the lines of a run of `--lines`, spanning the 2 hours to now.
pub fn print_lines(args: &GenerateArgs) -> Result<()> {
    let generator = Generator::new(
        args.seed,
        args.lines,
        now_ns()? - SPAN_NS,
        SPAN_NS,
        args.lines_per_request,
    );
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut line = Vec::with_capacity(1_024);
    for i in 0..args.lines {
        line.clear();
        write_ndjson(&generator.record(i), &mut line);
        out.write_all(&line).context("write to stdout")?;
    }
    out.flush().context("write to stdout")
}

#[allow(clippy::too_many_arguments)]
fn measure(
    args: &LogsArgs,
    http: &Client,
    ticks: u64,
    server_bin: &Path,
    work: &Path,
    batches: &Batches,
    payloads: &[ingest::Payload<generate::Counts>],
    pregenerated: bool,
    (needle, needle_lines): (&generate::Record, u64),
) -> Result<LogsReport> {
    let data_dir = work.join("data");
    let setting = Setting {
        machine: procfs::machine(),
        date_utc: date_utc(),
        commit: git_commit(),
        server_bin: server_bin.display().to_string(),
        server_version: version_of(server_bin, "--version"),
        data_filesystem: procfs::filesystem_of(&data_dir),
        via: args.via,
        gzip: args.gzip,
        lines: args.lines,
        clients: args.clients,
        batch_lines: args.batch_lines,
        pregenerated,
        seed: args.seed,
        lines_per_request: args.lines_per_request,
    };

    // Ingest into an empty directory.
    let (mut first, startup_empty) =
        Server::start(server_bin, &data_dir, &work.join("server-1.log"), http)?;
    eprintln!(
        "server ready in {:.0} ms (pid {}); ingesting via {}...",
        startup_empty.as_secs_f64() * 1e3,
        first.pid,
        args.via.name()
    );
    let cpu_before = first.cpu_seconds(ticks)?;
    let source = if pregenerated {
        Source::Pregenerated(payloads)
    } else {
        Source::OnTheFly(batches)
    };
    let endpoint = ingest::Endpoint {
        http,
        base: &first.base,
        pid: first.pid,
    };
    let ingest = ingest::run(
        &endpoint,
        &args.via.request(args.gzip),
        source,
        args.clients,
    )?;
    let cpu_after = first.cpu_seconds(ticks)?;
    let (rss_at_end_bytes, peak_rss_bytes) = procfs::rss_and_peak_bytes(first.pid)?;
    first.check_alive()?;
    ensure!(
        ingest.tally.lines == args.lines,
        "sent {} lines, meant {}",
        ingest.tally.lines,
        args.lines
    );
    eprintln!(
        "ingested in {:.2} s; server CPU {:.2} s; stopping it (final flush)...",
        ingest.wall.as_secs_f64(),
        cpu_after - cpu_before
    );
    let stopped = first.stop(ticks)?;
    let stored_after_shutdown = Stored::measure(&data_dir)?;
    ensure!(
        stored_after_shutdown.segment_bytes > 0,
        "no segment bytes in {} after the shutdown flush",
        data_dir.join("segments").display()
    );

    // Restart on the same directory: queries read segments.
    let (mut second, startup_restart) =
        Server::start(server_bin, &data_dir, &work.join("server-2.log"), http)?;
    eprintln!(
        "restarted in {:.0} ms; waiting for background work to settle...",
        startup_restart.as_secs_f64() * 1e3
    );
    let settle_s = second.wait_idle(ticks, Duration::from_secs(args.settle_timeout_s))?;
    let stored_settled = Stored::measure(&data_dir)?;
    if let Ok(m) = server::scrape_metrics(http, &second.base) {
        eprintln!(
            "settled after {settle_s:.1} s: {} segments, {} compactions",
            server::metric(&m, "sightline_store_segments").unwrap_or(f64::NAN),
            server::metric(&m, "sightline_store_compactions_total").unwrap_or(f64::NAN)
        );
    }

    let plan = query::plan(
        &ingest.tally,
        query::Needle {
            request_id: &needle.request_id,
            line: &needle.message,
            service: needle.service,
            lines: needle_lines,
        },
        batches.generator.start_ns() - 1_000_000_000,
        now_ns()?,
        now_ns()?,
    );
    let mut queries = Vec::new();
    for q in &plan {
        eprintln!("query: {}", q.logql);
        let r = query::run(http, &second.base, q, args.query_runs);
        if let Err(e) = &r.check {
            eprintln!("  FAILED: {e}");
        }
        queries.push(r);
    }
    second.check_alive()?;
    second.stop(ticks)?;

    Ok(LogsReport {
        setting,
        counts: ingest.tally.clone(),
        server_cpu_ingest_s: cpu_after - cpu_before,
        server_cpu_final_flush_s: stopped.cpu_seconds_total - cpu_after,
        shutdown_s: stopped.seconds,
        peak_rss_bytes,
        rss_at_end_bytes,
        startup_empty,
        startup_restart,
        stored_after_shutdown,
        settle_s,
        stored_settled,
        queries,
        ingest,
    })
}
