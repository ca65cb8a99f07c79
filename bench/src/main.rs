//! `sightline-bench`: whole-system benchmarks of Sightline.
//!
//! It runs the real server binary on free loopback ports with a temporary data directory,
//! drives it over HTTP like a client would, and measures the server process from `/proc`
//! (CPU seconds, resident memory) and its data directory (bytes on disk). It is a benchmark,
//! not a test: `make test` never runs it. How to run it and what each figure means:
//! `docs/benchmarks.md`.

mod generate;
mod ingest;
mod logs;
mod otlp;
mod procfs;
mod query;
mod report;
mod server;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use ingest::Via;

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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Logs(args) => logs::run(&args),
        Command::Generate(args) => logs::print_lines(&args).map(|()| true),
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
