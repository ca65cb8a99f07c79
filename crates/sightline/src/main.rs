//! `sightline`: the server and the command line that talks to it.

mod cli;
mod client;
mod commands;
mod config;
mod serve;

use clap::Parser;

/// mimalloc: ingest allocates many short-lived strings per record, where the system
/// allocator measured ~30% slower in the NDJSON decode benchmark. Built with `no_thp`:
/// with transparent huge pages, every re-use of purged memory faulted and zeroed 2 MiB
/// pages, which perf showed as ~15% of ingest CPU (`clear_page_erms`); without them it
/// fell under 1% and peak RSS was lower.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
