//! The report of a `traces` run: Markdown, printed and optionally appended to a file (the
//! "Results" section of `docs/benchmarks.md`), with the targets next to the figures.
//! Units as in [`crate::report`].

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;

use super::generate::{Counts, SEARCH_SERVICE, SERVICES};
use crate::ingest::IngestResult;
use crate::procfs::Machine;
use crate::report::{machine_text, mb, mib, percentile, thousands};
use crate::server::Stored;

/// The targets, for 10 million spans.
pub const TARGET_SPANS_PER_SECOND: f64 = 100_000.0;
pub const TARGET_BY_ID_P99_MS: f64 = 20.0;
pub const TARGET_BYTES_PER_SPAN: f64 = 40.0;
pub const TARGET_SPANS: u64 = 10_000_000;

/// Where and on what the run happened.
pub struct Setting {
    pub machine: Machine,
    pub date_utc: String,
    pub commit: String,
    pub command: String,
    pub server_bin: String,
    pub server_version: String,
    pub data_filesystem: String,
    pub spans: u64,
    pub traces: u64,
    pub clients: usize,
    pub batch_spans: u64,
    pub requests: u64,
    pub pregenerated: bool,
    pub seed: u64,
}

/// Times of some requests and whether their answers were right.
#[derive(Debug, Default)]
pub struct Latencies {
    /// Milliseconds, sorted once [`Latencies::finish`]ed.
    pub ms: Vec<f64>,
    pub ok: u64,
    pub failed: u64,
    /// The first wrong answer: what was asked and why it is wrong.
    pub first_failure: Option<String>,
    /// What the last right answer held.
    pub last_ok: Option<String>,
}

impl Latencies {
    pub fn record(&mut self, ms: f64, check: Result<String>, what: &str) {
        self.ms.push(ms);
        match check {
            Ok(summary) => {
                self.ok += 1;
                self.last_ok = Some(summary);
            }
            Err(e) => {
                self.failed += 1;
                if self.first_failure.is_none() {
                    self.first_failure = Some(format!("{what}: {e:#}"));
                }
            }
        }
    }

    pub fn finish(&mut self) {
        self.ms.sort_by(f64::total_cmp);
    }

    pub fn p(&self, q: f64) -> f64 {
        percentile(&self.ms, q)
    }

    pub fn summary_line(&self) -> String {
        let mut s = format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} right, {} wrong",
            self.p(0.5),
            self.p(0.99),
            self.p(1.0),
            self.ok,
            self.failed
        );
        if let Some(f) = &self.first_failure {
            let _ = write!(s, "; first wrong: {f}");
        }
        s
    }

    fn check_text(&self) -> String {
        match &self.first_failure {
            None => format!(
                "ok ({} of {}{})",
                self.ok,
                self.ms.len(),
                self.last_ok
                    .as_ref()
                    .map(|s| format!(", last: {s}"))
                    .unwrap_or_default()
            ),
            Some(f) => format!(
                "**FAILED** {} of {}: {}",
                self.failed,
                self.ms.len(),
                f.replace('|', "\\|")
            ),
        }
    }
}

pub struct TracesReport {
    pub setting: Setting,
    pub counts: Counts,
    pub ingest: IngestResult<Counts>,
    /// What the server's `/metrics` counted after ingest.
    pub received: f64,
    pub rejected: f64,
    /// Server CPU from just before the first request to just after the last answer.
    pub cpu_ingest_s: f64,
    /// Server CPU from then until it was idle.
    pub cpu_settle_s: f64,
    pub settle_s: f64,
    /// Server CPU of the SIGTERM shutdown (the final flush).
    pub cpu_stop_s: f64,
    pub stop_s: f64,
    /// `VmHWM` once idle after ingest: the peak through ingest.
    pub peak_rss_bytes: u64,
    pub rss_idle_bytes: u64,
    pub startup_empty: Duration,
    pub startup_restart: Duration,
    pub settle_restart_s: f64,
    pub stored_after_shutdown: Stored,
    pub stored_settled: Stored,
    pub by_id: Latencies,
    /// The search's `minDuration` (ms), the traces matching it, and its runs.
    pub search: Option<(u64, u64, Latencies)>,
}

impl TracesReport {
    fn spans(&self) -> f64 {
        self.counts.spans as f64
    }

    pub fn spans_per_second(&self) -> f64 {
        self.spans() / self.ingest.wall.as_secs_f64()
    }

    pub fn spans_per_cpu_second(&self) -> f64 {
        self.spans() / self.cpu_ingest_s
    }

    /// Spans per server CPU-second, the whole cost: ingest, settling and the final flush.
    pub fn spans_per_cpu_second_all(&self) -> f64 {
        self.spans() / (self.cpu_ingest_s + self.cpu_settle_s + self.cpu_stop_s)
    }

    fn bytes_per_span(&self, s: &Stored) -> f64 {
        (s.segment_bytes + s.wal_bytes) as f64 / self.spans()
    }

    pub fn any_check_failed(&self) -> bool {
        self.by_id.failed > 0
            || self.search.as_ref().is_none_or(|(_, _, r)| r.failed > 0)
            || self.rejected > 0.0
            || self.received != self.spans()
    }

    pub fn markdown(&self) -> String {
        let s = &self.setting;
        let c = &self.counts;
        let i = &self.ingest;
        let wall = i.wall.as_secs_f64();
        let mut o = String::new();
        let _ = writeln!(
            o,
            "### {} — {} spans via OTLP/HTTP protobuf, commit {}\n",
            s.date_utc,
            thousands(s.spans as f64),
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
            "Server: `{}` ({}). Harness: `{}`: {} client threads, {} requests of ~{} spans, bodies {}, seed {}.\n",
            s.server_bin,
            s.server_version,
            s.command,
            s.clients,
            thousands(s.requests as f64),
            thousands(s.batch_spans as f64),
            if s.pregenerated {
                "built before timing"
            } else {
                "built by the client threads while timing"
            },
            s.seed,
        );
        let _ = writeln!(
            o,
            "Workload: {} traces of 5 to 50 spans ({:.1} on average) over {} services, started over the hour before the run; {} error spans ({:.1} %) with an `exception` event and stack trace.\n",
            thousands(s.traces as f64),
            c.spans as f64 / s.traces as f64,
            SERVICES.len(),
            thousands(c.error_spans as f64),
            100.0 * c.error_spans as f64 / c.spans as f64
        );

        let _ = writeln!(o, "| Ingest | |\n|---|---|");
        let _ = writeln!(o, "| spans | {} |", thousands(c.spans as f64));
        let _ = writeln!(
            o,
            "| sent (protobuf) | {:.1} MB in {} requests ({:.0} bytes a span), {} retried |",
            mb(i.sent_bytes),
            i.requests,
            i.sent_bytes as f64 / c.spans as f64,
            i.retries
        );
        let _ = writeln!(
            o,
            "| server's count (`/metrics`) | {} received, {} rejected |",
            thousands(self.received),
            thousands(self.rejected)
        );
        let _ = writeln!(o, "| wall time | {wall:.2} s |");
        let _ = writeln!(
            o,
            "| per wall second | {} spans/s |",
            thousands(self.spans_per_second())
        );
        let _ = writeln!(
            o,
            "| server CPU while ingesting | {:.2} s ({:.2} cores busy) |",
            self.cpu_ingest_s,
            self.cpu_ingest_s / wall
        );
        let _ = writeln!(
            o,
            "| per server CPU-second | {} spans |",
            thousands(self.spans_per_cpu_second())
        );
        let _ = writeln!(
            o,
            "| then until idle | {:.2} s CPU, {:.1} s wall |",
            self.cpu_settle_s, self.settle_s
        );
        let _ = writeln!(
            o,
            "| final flush at shutdown | {:.2} s CPU, {:.2} s wall |",
            self.cpu_stop_s, self.stop_s
        );
        let _ = writeln!(
            o,
            "| per server CPU-second, settling and final flush included | {} spans |",
            thousands(self.spans_per_cpu_second_all())
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
            "| peak RSS (VmHWM) by the time it was idle after ingest | {:.0} MiB |",
            mib(self.peak_rss_bytes)
        );
        let _ = writeln!(
            o,
            "| RSS sampled while ingesting: median / max ({} samples) | {:.0} / {:.0} MiB |",
            rss.len(),
            mib(rss.get(rss.len() / 2).copied().unwrap_or(0)),
            mib(rss.last().copied().unwrap_or(0))
        );
        let _ = writeln!(o, "| RSS once idle | {:.0} MiB |", mib(self.rss_idle_bytes));

        let a = &self.stored_after_shutdown;
        let b = &self.stored_settled;
        let _ = writeln!(
            o,
            "\n| Storage | after the shutdown flush | after restart and settling |\n|---|---|---|"
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
            "| WAL bytes | {:.1} MB | {:.1} MB |",
            mb(a.wal_bytes),
            mb(b.wal_bytes)
        );
        let _ = writeln!(
            o,
            "| segments + WAL, bytes a span | {:.1} | {:.1} |",
            self.bytes_per_span(a),
            self.bytes_per_span(b)
        );
        let _ = writeln!(
            o,
            "| segments only, bytes a span | {:.1} | {:.1} |",
            a.segment_bytes as f64 / self.spans(),
            b.segment_bytes as f64 / self.spans()
        );
        let _ = writeln!(
            o,
            "| protobuf sent / stored (segments + WAL) | {:.1} | {:.1} |",
            i.sent_bytes as f64 / (a.segment_bytes + a.wal_bytes) as f64,
            i.sent_bytes as f64 / (b.segment_bytes + b.wal_bytes) as f64
        );
        let _ = writeln!(
            o,
            "\nStart-up: {:.0} ms on an empty directory, {:.0} ms on the full one (until `/health/ready`); \
             background work settled {:.1} s after the restart.\n",
            self.startup_empty.as_secs_f64() * 1e3,
            self.startup_restart.as_secs_f64() * 1e3,
            self.settle_restart_s
        );

        let _ = writeln!(
            o,
            "| Query (after the restart, one request at a time) | runs | p50 ms | p99 ms | max ms | check |\n|---|---|---|---|---|---|"
        );
        let row = |o: &mut String, name: &str, l: &Latencies| {
            let _ = writeln!(
                o,
                "| {name} | {} | {:.2} | {:.2} | {:.2} | {} |",
                l.ms.len(),
                l.p(0.5),
                l.p(0.99),
                l.p(1.0),
                l.check_text()
            );
        };
        row(
            &mut o,
            "trace by id: `GET /api/traces/{traceID}` of random generated traces",
            &self.by_id,
        );
        match &self.search {
            Some((ms, traces, l)) => row(
                &mut o,
                &format!(
                    "search: `/api/traces?service={}&minDuration={ms}ms&limit=20` over the whole range ({} of {} {} spans last ≥ {ms} ms, in {} traces)",
                    SERVICES[SEARCH_SERVICE],
                    thousands(self.search_spans_over(*ms) as f64),
                    thousands(c.search_spans as f64),
                    SERVICES[SEARCH_SERVICE],
                    thousands(*traces as f64)
                ),
                l,
            ),
            None => {
                let _ = writeln!(
                    o,
                    "| search | 0 | - | - | - | **FAILED**: no {} span to search for |",
                    SERVICES[SEARCH_SERVICE]
                );
            }
        }

        let _ = writeln!(o, "\n{}\n", self.targets_markdown());
        o
    }

    fn search_spans_over(&self, ms: u64) -> u64 {
        super::generate::SEARCH_THRESHOLDS_MS
            .iter()
            .position(|t| *t == ms)
            .map_or(0, |i| self.counts.search_spans_over[i])
    }

    fn targets_markdown(&self) -> String {
        let verdict = |met: bool| if met { "met" } else { "**not met**" };
        let mut o = String::new();
        let _ = writeln!(
            o,
            "| Target{} | measured | |\n|---|---|---|",
            if self.setting.spans < TARGET_SPANS {
                format!(
                    " (the targets are for {} spans)",
                    thousands(TARGET_SPANS as f64)
                )
            } else {
                String::new()
            }
        );
        let rate = self.spans_per_second();
        let _ = writeln!(
            o,
            "| ingest ≥ {} spans/s | {} spans/s ({} per server CPU-second) | {} |",
            thousands(TARGET_SPANS_PER_SECOND),
            thousands(rate),
            thousands(self.spans_per_cpu_second()),
            verdict(rate >= TARGET_SPANS_PER_SECOND)
        );
        let p99 = self.by_id.p(0.99);
        let right = self.by_id.failed == 0 && !self.by_id.ms.is_empty();
        let _ = writeln!(
            o,
            "| trace by id p99 < {TARGET_BY_ID_P99_MS:.0} ms | {p99:.2} ms{} | {} |",
            if right { "" } else { ", answers wrong" },
            verdict(right && p99 < TARGET_BY_ID_P99_MS)
        );
        let bytes = self.bytes_per_span(&self.stored_after_shutdown);
        let _ = writeln!(
            o,
            "| ≤ {TARGET_BYTES_PER_SPAN:.0} bytes a span on disk (segments + WAL after the shutdown flush) | {bytes:.1} | {} |",
            verdict(bytes <= TARGET_BYTES_PER_SPAN)
        );
        o
    }
}
