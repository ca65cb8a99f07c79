//! `sightline-bench`: whole-system benchmarks of Sightline.
//!
//! It runs the real server binary on free loopback ports with a temporary data directory,
//! drives it over HTTP like a client would, and measures the server process from `/proc`
//! (CPU seconds, resident memory) and its data directory (bytes on disk). It is a benchmark,
//! not a test: `make test` never runs it. How to run it and what each figure means:
//! `docs/benchmarks.md`.

mod clock;
mod ingest;
mod logs;
mod metrics;
mod otlp;
mod procfs;
mod report;
mod rng;
mod server;
mod traces;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use logs::Via;
use metrics::Peer;

#[derive(Parser, Debug)]
#[command(
    name = "sightline-bench",
    about = "Whole-system benchmarks of the Sightline server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ingest generated service logs, then measure storage, restart and LogQL queries.
    Logs(LogsArgs),
    /// Print the generated lines as NDJSON (the lines `logs` sends), to look at or reuse.
    Generate(GenerateArgs),
    /// Feed the same TSBS-style devops samples by remote write to Sightline, Prometheus and
    /// VictoriaMetrics in turn; compare ingest CPU, bytes per sample, RSS and range queries.
    Metrics(MetricsArgs),
    /// Ingest generated distributed traces by OTLP/HTTP, then measure storage, restart, and
    /// Jaeger's trace-by-id and search latencies.
    Traces(TracesArgs),
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// How many lines.
    #[arg(long, default_value_t = 10)]
    pub lines: u64,
    /// The generator's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Consecutive lines that are one request.
    #[arg(long, default_value_t = 1)]
    pub lines_per_request: u64,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// How many log lines to generate and send.
    #[arg(long, default_value_t = 10_000_000)]
    pub lines: u64,
    /// The protocol to send them with.
    #[arg(long, value_enum, default_value_t = Via::Ndjson)]
    pub via: Via,
    /// The server binary (build it with `cargo build --release -p sightline`).
    #[arg(long, default_value = "target/release/sightline")]
    pub server_bin: PathBuf,
    /// Append the report, as a Markdown section, to this file (e.g. docs/benchmarks.md).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Concurrent client threads sending batches.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Lines per request.
    #[arg(long, default_value_t = 5_000)]
    pub batch_lines: u64,
    /// Gzip request bodies (Content-Encoding: gzip).
    #[arg(long)]
    pub gzip: bool,
    /// The generator's seed: the same seed gives the same lines (timestamps aside).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Consecutive lines that are one request and share its request_id, service and user
    /// (1: every request_id is unique).
    #[arg(long, default_value_t = 1)]
    pub lines_per_request: u64,
    /// Runs of each query (the report gives the first, the minimum and the median).
    #[arg(long, default_value_t = 5)]
    pub query_runs: usize,
    /// Build every request body before timing when they fit in this many MiB; otherwise
    /// the client threads build them as they go.
    #[arg(long, default_value_t = 6_144)]
    pub pregenerate_max_mib: u64,
    /// Where to create the temporary data directory (default: the system's temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Keep the data directory and the server logs afterwards.
    #[arg(long)]
    pub keep_data: bool,
    /// Longest wait, after the restart, for the server's background work to settle.
    #[arg(long, default_value_t = 300)]
    pub settle_timeout_s: u64,
}

#[derive(Args, Debug)]
pub struct MetricsArgs {
    /// Hosts, each with 29 series (10 cpu gauges, 6 counters, a histogram of 13 series).
    #[arg(long, default_value_t = 1_000)]
    pub hosts: u32,
    /// Simulated time the samples span, ending when the run starts (`2h`, `90m`, `1d`).
    #[arg(long = "duration", value_name = "DURATION", default_value = "2h", value_parser = parse_duration_ms)]
    pub duration_ms: i64,
    /// Time between a host's scrapes.
    #[arg(long = "interval", value_name = "DURATION", default_value = "10s", value_parser = parse_duration_ms)]
    pub interval_ms: i64,
    /// The servers to feed, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sightline,prometheus,victoria-metrics"
    )]
    pub servers: Vec<Peer>,
    /// The Sightline binary (build it with `cargo build --release -p sightline`).
    #[arg(long, default_value = "target/release/sightline")]
    pub server_bin: PathBuf,
    #[arg(long, default_value = "/usr/bin/prometheus")]
    pub prometheus_bin: PathBuf,
    #[arg(long, default_value = "/usr/bin/victoria-metrics")]
    pub victoria_metrics_bin: PathBuf,
    /// Most samples a remote-write request.
    #[arg(long, default_value_t = 5_000)]
    pub batch_samples: u64,
    /// Concurrent senders; series are sharded among them, as a remote-write queue does.
    #[arg(long, default_value_t = 4)]
    pub shards: usize,
    /// Runs of each query (the report gives the median).
    #[arg(long, default_value_t = 5)]
    pub query_runs: usize,
    /// The generator's seed: the same seed gives the same samples (timestamps aside).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Append the report, as a Markdown section, to this file (e.g. docs/benchmarks.md).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Build every request body before timing when they fit in this many MiB; otherwise
    /// the senders build them as they go.
    #[arg(long, default_value_t = 6_144)]
    pub pregenerate_max_mib: u64,
    /// Where to create the temporary data directories (default: the system's temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Keep the data directories and the server logs afterwards.
    #[arg(long)]
    pub keep_data: bool,
    /// Longest wait, after ingest, for a server's background work to settle.
    #[arg(long, default_value_t = 600)]
    pub settle_timeout_s: u64,
}

#[derive(Args, Debug)]
pub struct TracesArgs {
    /// How many spans to generate and send (in traces of 5 to 50 spans).
    #[arg(long, default_value_t = 10_000_000)]
    pub spans: u64,
    /// The server binary (build it with `cargo build --release -p sightline`).
    #[arg(long, default_value = "target/release/sightline")]
    pub server_bin: PathBuf,
    /// Append the report, as a Markdown section, to this file (e.g. docs/benchmarks.md).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Concurrent client threads sending requests.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Spans a request (whole traces, so a few more).
    #[arg(long, default_value_t = 5_000)]
    pub batch_spans: u64,
    /// The generator's seed: the same seed gives the same traces (timestamps aside).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Trace-by-id requests, for random generated traces.
    #[arg(long, default_value_t = 1_000)]
    pub lookups: u64,
    /// Runs of the search.
    #[arg(long, default_value_t = 20)]
    pub search_runs: usize,
    /// Build every request body before timing when they fit in this many MiB; otherwise
    /// the client threads build them as they go.
    #[arg(long, default_value_t = 6_144)]
    pub pregenerate_max_mib: u64,
    /// Where to create the temporary data directory (default: the system's temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Keep the data directory and the server logs afterwards.
    #[arg(long)]
    pub keep_data: bool,
    /// Longest wait, after ingest and after the restart, for the server's background work
    /// to settle.
    #[arg(long, default_value_t = 600)]
    pub settle_timeout_s: u64,
}

/// `10s`, `5m`, `2h`, `1d` (or a sum such as `1h30m`) in milliseconds.
fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let mut total = 0i64;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit_ms = match c {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return Err(format!("{text:?}: unknown unit {c:?} (use s, m, h or d)")),
        };
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("{text:?}: a number must come before {c:?}"))?;
        total += n * unit_ms;
        digits.clear();
    }
    if !digits.is_empty() || total <= 0 {
        return Err(format!(
            "{text:?}: not a duration like 10s, 5m, 2h or 1h30m"
        ));
    }
    Ok(total)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Logs(args) => logs::run(&args),
        Command::Generate(args) => logs::print_lines(&args).map(|()| true),
        Command::Metrics(args) => metrics::run(&args),
        Command::Traces(args) => traces::run(&args),
    };
    match outcome {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("sightline-bench: some query answers were wrong (see the report)");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration_ms("10s"), Ok(10_000));
        assert_eq!(parse_duration_ms("2h"), Ok(7_200_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert!(parse_duration_ms("10").is_err());
        assert!(parse_duration_ms("5x").is_err());
        assert!(parse_duration_ms("0s").is_err());
    }
}
