//! `sightline-bench traces`: the traces benchmark, start to end.
//!
//! 1. Plan the traces ([`generate`]: 5 to 50 spans each over eight services, spread over the hour
//!    before now) and build every OTLP/HTTP protobuf body before timing, when they fit.
//! 2. Start the server on an empty data directory; send the bodies to `POST /v1/traces` with
//!    the client threads, reading the server's CPU time before the first request and after
//!    the last answer; check with `/metrics` that it took every span and refused none; wait
//!    until it is idle.
//! 3. Stop it with SIGTERM (it flushes its heads to segments), measure the data directory.
//! 4. Start it again on the same directory (start-up time), wait for its background work to
//!    settle, then time Jaeger's `GET /api/traces/{traceID}` for random generated traces, one
//!    request at a time, checking the number of spans of each answer, and a search
//!    `GET /api/traces?service=orders&minDuration=…&limit=20` over the whole time range,
//!    checking every trace it returns.
//! 5. Print the report and append it to `--out`. A wrong or failed answer is reported, not
//!    fatal (the exit status says so).

mod generate;
mod report;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use reqwest::blocking::Client;
use serde_json::Value;

use generate::{Counts, Plan, SEARCH_SERVICE, SERVICES};
use report::{Latencies, Setting, TracesReport};

use crate::TracesArgs;
use crate::clock::{date_utc, now_ns};
use crate::ingest::{self, Batches as _, Source};
use crate::procfs;
use crate::report::{command_line, git_commit, print_and_append, version_of};
use crate::rng::{Rng, mix64};
use crate::server::{self, Server, Stored};

/// The traces start in this window, ending this long before the run starts.
const WINDOW_NS: i64 = 3_600 * 1_000_000_000;
/// Room at the end of the window for the longest traces (10 s) to end before now.
const WINDOW_MARGIN_NS: i64 = 30 * 1_000_000_000;
/// Traces the search asks for.
const SEARCH_LIMIT: u64 = 20;

/// Returns whether every query answer was right.
pub fn run(args: &TracesArgs) -> Result<bool> {
    ensure!(args.spans >= 1, "--spans must be at least 1");
    ensure!(args.batch_spans >= 1, "--batch-spans must be at least 1");
    ensure!(args.clients >= 1, "--clients must be at least 1");
    let server_bin = args.server_bin.clone();
    ensure!(
        server_bin.is_file(),
        "no server binary at {} (build it with `cargo build --release -p sightline`, or pass --server-bin)",
        server_bin.display()
    );
    let ticks = procfs::clock_ticks_per_second();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let http = Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(args.clients * 2)
        .build()
        .context("build the http client")?;

    let now = now_ns()?;
    let plan = Plan::new(
        args.seed,
        args.spans,
        args.batch_spans,
        now - WINDOW_NS,
        WINDOW_NS - WINDOW_MARGIN_NS,
    );
    let first = plan.build(0)?;
    let estimate_bytes = first.body.len() as u64 * plan.count();
    drop(first);
    let pregenerated = estimate_bytes <= args.pregenerate_max_mib << 20;
    let started = Instant::now();
    let payloads = if pregenerated {
        eprintln!(
            "generating {} spans in {} traces ({} requests, ~{} MiB of bodies) on {threads} threads...",
            args.spans,
            plan.traces(),
            plan.count(),
            estimate_bytes >> 20
        );
        let all = ingest::build_all(&plan, threads)?;
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

    let work = server::work_dir(args.work_dir.as_deref())?;
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    eprintln!("data directory: {}", data_dir.display());
    let setting = Setting {
        machine: procfs::machine(),
        date_utc: date_utc(),
        commit: git_commit(),
        command: command_line(),
        server_bin: server_bin.display().to_string(),
        server_version: version_of(&server_bin, "--version"),
        data_filesystem: procfs::filesystem_of(&data_dir),
        spans: args.spans,
        traces: plan.traces(),
        clients: args.clients,
        batch_spans: args.batch_spans,
        requests: plan.count(),
        pregenerated,
        seed: args.seed,
    };
    let source = if pregenerated {
        Source::Pregenerated(&payloads)
    } else {
        Source::OnTheFly(&plan)
    };
    let outcome = measure(args, &http, ticks, work.path(), &plan, source, setting);
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

fn measure(
    args: &TracesArgs,
    http: &Client,
    ticks: u64,
    work: &Path,
    plan: &Plan,
    source: Source<'_, Counts>,
    setting: Setting,
) -> Result<TracesReport> {
    let data_dir = work.join("data");
    let settle_timeout = Duration::from_secs(args.settle_timeout_s);

    // Ingest into an empty directory.
    let (mut first, startup_empty) = Server::start(
        &args.server_bin,
        &data_dir,
        &work.join("server-1.log"),
        http,
    )?;
    eprintln!(
        "server ready in {:.0} ms (pid {}); sending {} spans to /v1/traces...",
        startup_empty.as_secs_f64() * 1e3,
        first.pid,
        args.spans
    );
    let cpu_before = first.cpu_seconds(ticks)?;
    let endpoint = ingest::Endpoint {
        http,
        base: &first.base,
        pid: first.pid,
    };
    let ingest = ingest::run(&endpoint, &generate::request(), source, args.clients)?;
    let cpu_answered = first.cpu_seconds(ticks)?;
    first.check_alive()?;
    ensure!(
        ingest.tally.spans == args.spans,
        "sent {} spans, meant {}",
        ingest.tally.spans,
        args.spans
    );
    let received = server::scrape_sum(
        http,
        &first.base,
        "sightline_received_records_total",
        "signal=\"traces\"",
    )?;
    let rejected = server::scrape_sum(
        http,
        &first.base,
        "sightline_rejected_records_total",
        "signal=\"traces\"",
    )?;
    eprintln!(
        "sent in {:.1} s, server CPU {:.1} s; it counts {received} spans received, {rejected} rejected; waiting until idle...",
        ingest.wall.as_secs_f64(),
        cpu_answered - cpu_before
    );
    let settle_s = first.wait_idle(ticks, settle_timeout)?;
    let cpu_idle = first.cpu_seconds(ticks)?;
    let (rss_idle_bytes, peak_rss_bytes) = procfs::rss_and_peak_bytes(first.pid)?;
    first.check_alive()?;
    let stopped = first.stop(ticks)?;
    let stored_after_shutdown = Stored::measure(&data_dir)?;
    eprintln!(
        "stopped in {:.1} s; {:.1} MB of segments, {:.1} MB of WAL",
        stopped.seconds,
        stored_after_shutdown.segment_bytes as f64 / 1e6,
        stored_after_shutdown.wal_bytes as f64 / 1e6
    );

    // Restart on the same directory: the queries read segments.
    let (mut second, startup_restart) = Server::start(
        &args.server_bin,
        &data_dir,
        &work.join("server-2.log"),
        http,
    )?;
    eprintln!(
        "restarted in {:.0} ms; waiting for background work to settle...",
        startup_restart.as_secs_f64() * 1e3
    );
    let settle_restart_s = second.wait_idle(ticks, settle_timeout)?;
    let stored_settled = Stored::measure(&data_dir)?;

    eprintln!("{} trace-by-id lookups...", args.lookups);
    let by_id = lookups(http, &second.base, plan, args.seed, args.lookups);
    eprintln!("  {}", by_id.summary_line());
    second.check_alive()?;
    let threshold = ingest.tally.search_threshold();
    let search = match threshold {
        Some((ms, traces)) => {
            let url = format!(
                "/api/traces?service={}&minDuration={ms}ms&limit={SEARCH_LIMIT}&start={}&end={}",
                SERVICES[SEARCH_SERVICE],
                (plan.start_ns() - 1_000_000_000) / 1_000,
                now_ns()? / 1_000
            );
            eprintln!("search: {url} ({traces} traces match)...");
            let r = searches(http, &second.base, &url, ms, traces, args.search_runs);
            eprintln!("  {}", r.summary_line());
            Some((ms, traces, r))
        }
        None => {
            eprintln!("no span of {} to search for", SERVICES[SEARCH_SERVICE]);
            None
        }
    };
    second.check_alive()?;
    second.stop(ticks)?;

    Ok(TracesReport {
        setting,
        counts: ingest.tally.clone(),
        received,
        rejected,
        cpu_ingest_s: cpu_answered - cpu_before,
        cpu_settle_s: cpu_idle - cpu_answered,
        settle_s,
        cpu_stop_s: stopped.cpu_seconds_total - cpu_idle,
        stop_s: stopped.seconds,
        peak_rss_bytes,
        rss_idle_bytes,
        startup_empty,
        startup_restart,
        settle_restart_s,
        stored_after_shutdown,
        stored_settled,
        by_id,
        search,
        ingest,
    })
}

/// `GET /api/traces/{id}` of `count` generated traces picked at random, one after another;
/// each answer must hold the trace with all its spans.
fn lookups(http: &Client, base: &str, plan: &Plan, seed: u64, count: u64) -> Latencies {
    let mut rng = Rng::new(mix64(seed ^ 0x100c_0b51_d000));
    let mut out = Latencies::default();
    for _ in 0..count {
        let t = rng.below(plan.traces());
        let id = plan.trace_id_hex(t);
        let want = plan.spans_of(t);
        let url = format!("{base}/api/traces/{id}");
        let started = Instant::now();
        let answer = get_json(http, &url);
        let ms = started.elapsed().as_secs_f64() * 1e3;
        out.record(
            ms,
            answer.and_then(|v| check_trace(&v, &id, want)),
            &format!("GET /api/traces/{id}"),
        );
    }
    out.finish();
    out
}

/// `url` (a search for traces with a span of the search service lasting at least `min_ms`)
/// `runs` times; each answer must hold `min(limit, matching)` traces, each with such a span.
fn searches(
    http: &Client,
    base: &str,
    url: &str,
    min_ms: u64,
    matching: u64,
    runs: usize,
) -> Latencies {
    let mut out = Latencies::default();
    let want = matching.min(SEARCH_LIMIT);
    for _ in 0..runs {
        let started = Instant::now();
        let answer = get_json(http, &format!("{base}{url}"));
        let ms = started.elapsed().as_secs_f64() * 1e3;
        out.record(
            ms,
            answer.and_then(|v| check_search(&v, want, min_ms)),
            "the search",
        );
    }
    out.finish();
    out
}

/// The JSON of a 200 answer; otherwise the status and the start of the body.
fn get_json(http: &Client, url: &str) -> Result<Value> {
    let resp = http.get(url).send().with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let text = resp.text().with_context(|| format!("read GET {url}"))?;
    if !status.is_success() {
        bail!(
            "answered {status} with {}",
            if text.is_empty() {
                "an empty body (no such route?)".to_string()
            } else {
                text.chars().take(300).collect::<String>()
            }
        );
    }
    serde_json::from_str(&text)
        .with_context(|| format!("not JSON: {}", text.chars().take(300).collect::<String>()))
}

/// The traces of a Jaeger answer (`data`).
fn traces_of(v: &Value) -> Result<&Vec<Value>> {
    v.get("data")
        .and_then(Value::as_array)
        .context("no `data` list in the answer")
}

fn spans_of(trace: &Value) -> Result<&Vec<Value>> {
    trace
        .get("spans")
        .and_then(Value::as_array)
        .context("a trace without a `spans` list")
}

fn check_trace(v: &Value, id: &str, want_spans: u64) -> Result<String> {
    let traces = traces_of(v)?;
    ensure!(
        traces.len() == 1,
        "{} traces in `data`, want 1",
        traces.len()
    );
    let got_id = traces[0].get("traceID").and_then(Value::as_str);
    ensure!(got_id == Some(id), "traceID {got_id:?}, want {id}");
    let spans = spans_of(&traces[0])?.len() as u64;
    ensure!(spans == want_spans, "{spans} spans, want {want_spans}");
    Ok(format!("{spans} spans"))
}

fn check_search(v: &Value, want_traces: u64, min_ms: u64) -> Result<String> {
    let traces = traces_of(v)?;
    ensure!(!traces.is_empty(), "no trace found");
    ensure!(
        traces.len() as u64 == want_traces,
        "{} traces, want {want_traces}",
        traces.len()
    );
    let service = SERVICES[SEARCH_SERVICE];
    for trace in traces {
        let processes = trace
            .get("processes")
            .context("a trace without processes")?;
        let matches = spans_of(trace)?.iter().any(|s| {
            let of_service = s
                .get("processID")
                .and_then(Value::as_str)
                .and_then(|p| processes.get(p))
                .and_then(|p| p.get("serviceName"))
                .and_then(Value::as_str)
                == Some(service);
            let duration_us = s.get("duration").and_then(Value::as_u64).unwrap_or(0);
            of_service && duration_us >= min_ms * 1_000
        });
        ensure!(
            matches,
            "trace {} has no {service} span of at least {min_ms} ms",
            trace.get("traceID").and_then(Value::as_str).unwrap_or("?")
        );
    }
    Ok(format!("{} traces", traces.len()))
}
