//! The report of a `logs` run: Markdown, printed and optionally appended to a file (the
//! "Results" section of `docs/benchmarks.md`). Units as in [`crate::report`].

use std::fmt::Write as _;
use std::time::Duration;

use super::batches::Via;
use super::generate::Counts;
use super::query::QueryResult;
use crate::ingest::IngestResult;
use crate::procfs::Machine;
use crate::report::{machine_text, mb, mib, opt_ms, percentile, thousands};
use crate::server::Stored;

/// The issue's targets, for 10 million lines through NDJSON.
pub const TARGET_LINES_PER_CPU_SECOND: f64 = 250_000.0;
pub const TARGET_COMPRESSION_RATIO: f64 = 15.0;
pub const TARGET_NEEDLE_MS: f64 = 100.0;
pub const TARGET_COUNT_MS: f64 = 500.0;
pub const TARGET_RSS_BYTES: u64 = 1 << 30;
pub const TARGET_LINES: u64 = 10_000_000;

/// Where and on what the run happened.
pub struct Setting {
    pub machine: Machine,
    pub date_utc: String,
    pub commit: String,
    pub server_bin: String,
    pub server_version: String,
    pub data_filesystem: String,
    pub via: Via,
    pub gzip: bool,
    pub lines: u64,
    pub clients: usize,
    pub batch_lines: u64,
    pub pregenerated: bool,
    pub seed: u64,
    pub lines_per_request: u64,
}

pub struct LogsReport {
    pub setting: Setting,
    pub counts: Counts,
    pub ingest: IngestResult<Counts>,
    pub server_cpu_ingest_s: f64,
    pub server_cpu_final_flush_s: f64,
    pub shutdown_s: f64,
    pub peak_rss_bytes: u64,
    pub rss_at_end_bytes: u64,
    pub startup_empty: Duration,
    pub startup_restart: Duration,
    pub stored_after_shutdown: Stored,
    pub settle_s: f64,
    pub stored_settled: Stored,
    pub queries: Vec<QueryResult>,
}

impl LogsReport {
    pub fn lines_per_cpu_second(&self) -> f64 {
        self.counts.lines as f64 / self.server_cpu_ingest_s
    }

    pub fn lines_per_cpu_second_with_flush(&self) -> f64 {
        self.counts.lines as f64 / (self.server_cpu_ingest_s + self.server_cpu_final_flush_s)
    }

    fn ratio(&self, stored: &Stored) -> f64 {
        self.counts.ndjson_bytes as f64 / stored.segment_bytes as f64
    }

    pub fn any_check_failed(&self) -> bool {
        self.queries.iter().any(|q| q.check.is_err())
    }

    pub fn markdown(&self) -> String {
        let s = &self.setting;
        let c = &self.counts;
        let i = &self.ingest;
        let wall = i.wall.as_secs_f64();
        let mut o = String::new();
        let _ = writeln!(
            o,
            "### {} — {} lines via {}{}, commit {}\n",
            s.date_utc,
            thousands(s.lines as f64),
            s.via.name(),
            if s.gzip { " (gzip)" } else { "" },
            s.commit
        );
        let _ = writeln!(
            o,
            "Machine: {}; data on {}.  ",
            machine_text(&s.machine),
            s.data_filesystem
        );
        let _ = writeln!(
            o,
            "Server: `{}` ({}). Harness: {} client threads, {} lines a request, bodies {}, seed {}, {} log line(s) per request_id.\n",
            s.server_bin,
            s.server_version,
            s.clients,
            thousands(s.batch_lines as f64),
            if s.pregenerated {
                "built before timing"
            } else {
                "built by the client threads while timing"
            },
            s.seed,
            s.lines_per_request
        );

        let _ = writeln!(o, "| Ingest | |\n|---|---|");
        let _ = writeln!(o, "| lines | {} |", thousands(c.lines as f64));
        let _ = writeln!(
            o,
            "| raw NDJSON | {:.1} MB ({:.0} bytes a line) |",
            mb(c.ndjson_bytes),
            c.ndjson_bytes as f64 / c.lines as f64
        );
        let _ = writeln!(
            o,
            "| sent ({}) | {:.1} MB in {} requests, {} retried |",
            s.via.name(),
            mb(i.sent_bytes),
            i.requests,
            i.retries
        );
        let _ = writeln!(o, "| wall time | {wall:.2} s |");
        let _ = writeln!(
            o,
            "| per wall second | {} lines/s, {:.1} MB/s raw |",
            thousands(c.lines as f64 / wall),
            mb(c.ndjson_bytes) / wall
        );
        let _ = writeln!(
            o,
            "| server CPU while ingesting | {:.2} s ({:.2} cores busy) |",
            self.server_cpu_ingest_s,
            self.server_cpu_ingest_s / wall
        );
        let _ = writeln!(
            o,
            "| per server CPU-second | {} lines, {:.1} MB raw |",
            thousands(self.lines_per_cpu_second()),
            mb(c.ndjson_bytes) / self.server_cpu_ingest_s
        );
        let _ = writeln!(
            o,
            "| final flush at shutdown | {:.2} s CPU, {:.2} s wall |",
            self.server_cpu_final_flush_s, self.shutdown_s
        );
        let _ = writeln!(
            o,
            "| per server CPU-second, final flush included | {} lines |",
            thousands(self.lines_per_cpu_second_with_flush())
        );
        let _ = writeln!(
            o,
            "| request time p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |",
            percentile(&i.request_ms, 0.5),
            percentile(&i.request_ms, 0.99),
            percentile(&i.request_ms, 1.0)
        );
        let _ = writeln!(
            o,
            "| harness CPU while ingesting | {:.2} s |",
            i.client_cpu_seconds
        );

        let mut rss = i.rss_samples.clone();
        rss.sort_unstable();
        let _ = writeln!(o, "\n| Memory (server) | |\n|---|---|");
        let _ = writeln!(
            o,
            "| peak RSS (VmHWM) by the end of ingest | {:.0} MiB |",
            mib(self.peak_rss_bytes)
        );
        let _ = writeln!(
            o,
            "| RSS sampled while ingesting: median / max ({} samples) | {:.0} / {:.0} MiB |",
            rss.len(),
            mib(rss.get(rss.len() / 2).copied().unwrap_or(0)),
            mib(rss.last().copied().unwrap_or(0))
        );
        let _ = writeln!(
            o,
            "| RSS at the end of ingest | {:.0} MiB |",
            mib(self.rss_at_end_bytes)
        );

        let a = &self.stored_after_shutdown;
        let b = &self.stored_settled;
        let _ = writeln!(
            o,
            "\n| Storage | after the shutdown flush | after restart and compaction |\n|---|---|---|"
        );
        let _ = writeln!(
            o,
            "| segment bytes | {:.1} MB in {} files | {:.1} MB in {} files |",
            mb(a.segment_bytes),
            a.segment_files,
            mb(b.segment_bytes),
            b.segment_files
        );
        let _ = writeln!(
            o,
            "| bytes a line | {:.1} | {:.1} |",
            a.segment_bytes as f64 / c.lines as f64,
            b.segment_bytes as f64 / c.lines as f64
        );
        let _ = writeln!(
            o,
            "| raw NDJSON / stored | {:.1} | {:.1} |",
            self.ratio(a),
            self.ratio(b)
        );
        let _ = writeln!(o, "| WAL bytes left | {} | {} |", a.wal_bytes, b.wal_bytes);
        let _ = writeln!(
            o,
            "\nStart-up: {:.0} ms on an empty directory, {:.0} ms on the full one (until `/health/ready`); \
             background work (compaction) settled {:.1} s after the restart.\n",
            self.startup_empty.as_secs_f64() * 1e3,
            self.startup_restart.as_secs_f64() * 1e3,
            self.settle_s
        );

        let _ = writeln!(
            o,
            "| Query | LogQL | first ms | min ms | median ms | check |\n|---|---|---|---|---|---|"
        );
        for q in &self.queries {
            let check = match &q.check {
                Ok(summary) => format!("ok: {summary}"),
                Err(e) => format!("**FAILED**: {}", e.lines().next().unwrap_or("")),
            };
            let _ = writeln!(
                o,
                "| {} | `{}` | {} | {} | {} | {} |",
                q.name,
                q.logql.replace('|', "\\|"),
                opt_ms(q.runs_ms.first().copied()),
                opt_ms(q.min_ms()),
                opt_ms(q.median_ms()),
                check
            );
        }
        for q in &self.queries {
            if let Err(e) = &q.check {
                let _ = writeln!(o, "\nQuery \"{}\" failed:\n\n```\n{e}\n```", q.name);
            }
        }

        let _ = writeln!(o, "\n{}\n", self.targets_markdown());
        o
    }

    fn targets_markdown(&self) -> String {
        let s = &self.setting;
        let mut notes = Vec::new();
        if s.lines < TARGET_LINES {
            notes.push(format!(
                "the targets are for {} lines",
                thousands(TARGET_LINES as f64)
            ));
        }
        if s.via != Via::Ndjson {
            notes.push("the ingest target is for NDJSON".to_string());
        }
        let verdict = |met: bool| if met { "met" } else { "**not met**" };
        let query_ms = |name: &str| {
            self.queries
                .iter()
                .find(|q| q.name == name)
                .and_then(|q| q.median_ms())
        };
        let mut o = String::new();
        let _ = writeln!(
            o,
            "| Target{} | measured | |\n|---|---|---|",
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            }
        );
        let ingest = self.lines_per_cpu_second_with_flush();
        let _ = writeln!(
            o,
            "| ingest ≥ {} lines per server CPU-second (final flush included) | {} | {} |",
            thousands(TARGET_LINES_PER_CPU_SECOND),
            thousands(ingest),
            verdict(ingest >= TARGET_LINES_PER_CPU_SECOND)
        );
        let ratio = self.ratio(&self.stored_settled);
        let _ = writeln!(
            o,
            "| stored ≤ 1/{TARGET_COMPRESSION_RATIO:.0} of raw NDJSON | 1/{ratio:.1} | {} |",
            verdict(ratio >= TARGET_COMPRESSION_RATIO)
        );
        for (name, target) in [
            ("needle by request_id", TARGET_NEEDLE_MS),
            ("count by level", TARGET_COUNT_MS),
        ] {
            let ms = query_ms(name);
            let ok = self
                .queries
                .iter()
                .any(|q| q.name == name && q.check.is_ok());
            let _ = writeln!(
                o,
                "| {name} < {target:.0} ms (median) | {} ms{} | {} |",
                opt_ms(ms),
                if ok { "" } else { ", answer wrong" },
                verdict(ok && ms.is_some_and(|m| m < target))
            );
        }
        let _ = writeln!(
            o,
            "| RSS < {:.0} MiB while ingesting (peak) | {:.0} MiB | {} |",
            mib(TARGET_RSS_BYTES),
            mib(self.peak_rss_bytes),
            verdict(self.peak_rss_bytes < TARGET_RSS_BYTES)
        );
        o
    }
}
