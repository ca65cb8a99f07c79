//! Sending the generated lines: request bodies by batch, and the client threads that post
//! them while a sampler watches the server's resident memory.
//!
//! Batch `k` holds lines `k * batch_lines ..` and is the same bytes whoever builds it, so
//! bodies can be built before timing (pre-generated, when they fit the memory budget) or by
//! the client threads as they go (the harness's own CPU is then on the same cores as the
//! server's; the server's CPU seconds are measured from `/proc` either way).

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::ValueEnum;
use flate2::Compression;
use flate2::write::GzEncoder;
use prost::Message;
use reqwest::blocking::Client;

use crate::generate::{Counts, Generator, write_ndjson};
use crate::{otlp, procfs};

/// Most attempts of one batch the server answers 429 or 503 to.
const ATTEMPTS_MAX: u32 = 20;

/// How often the sampler reads the server's `VmRSS`.
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(200);

/// How often progress is printed while ingesting.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// `POST /api/v1/logs`, one JSON object a line.
    Ndjson,
    /// `POST /v1/logs`, OTLP/HTTP protobuf.
    Otlp,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Ndjson => "ndjson",
            Via::Otlp => "otlp",
        }
    }

    fn path_and_content_type(self) -> (&'static str, &'static str) {
        match self {
            Via::Ndjson => ("/api/v1/logs", "application/x-ndjson"),
            Via::Otlp => ("/v1/logs", "application/x-protobuf"),
        }
    }
}

/// How to cut the lines into request bodies.
#[derive(Clone, Debug)]
pub struct Batches {
    pub generator: Generator,
    pub via: Via,
    pub lines: u64,
    pub batch_lines: u64,
    pub gzip: bool,
}

/// One request body and what it holds.
pub struct Payload {
    pub body: Bytes,
    pub counts: Counts,
}

impl Batches {
    pub fn count(&self) -> u64 {
        self.lines.div_ceil(self.batch_lines)
    }

    /// The body of batch `k`.
    pub fn build(&self, k: u64) -> Result<Payload> {
        let first = k * self.batch_lines;
        let end = (first + self.batch_lines).min(self.lines);
        let mut counts = Counts::default();
        let mut ndjson = Vec::with_capacity(((end - first) * 400) as usize);
        let body = match self.via {
            Via::Ndjson => {
                for i in first..end {
                    let r = self.generator.record(i);
                    let before = ndjson.len();
                    write_ndjson(&r, &mut ndjson);
                    counts.add(&r, ndjson.len() - before);
                }
                ndjson
            }
            Via::Otlp => {
                let mut records = Vec::with_capacity((end - first) as usize);
                for i in first..end {
                    let r = self.generator.record(i);
                    ndjson.clear();
                    write_ndjson(&r, &mut ndjson);
                    counts.add(&r, ndjson.len());
                    records.push(r);
                }
                otlp::export_request(&records).encode_to_vec()
            }
        };
        let body = if self.gzip {
            let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
            enc.write_all(&body).context("gzip a body")?;
            enc.finish().context("gzip a body")?
        } else {
            body
        };
        Ok(Payload {
            body: Bytes::from(body),
            counts,
        })
    }

    /// Every body, built on `threads` threads.
    pub fn build_all(&self, threads: usize) -> Result<Vec<Payload>> {
        let next = AtomicU64::new(0);
        let built: Mutex<Vec<(u64, Payload)>> =
            Mutex::new(Vec::with_capacity(self.count() as usize));
        std::thread::scope(|s| -> Result<()> {
            let workers: Vec<_> = (0..threads.max(1))
                .map(|_| {
                    s.spawn(|| -> Result<()> {
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            if k >= self.count() {
                                return Ok(());
                            }
                            let p = self.build(k)?;
                            built
                                .lock()
                                .map_err(|_| anyhow!("a builder thread panicked"))?
                                .push((k, p));
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join()
                    .map_err(|_| anyhow!("a builder thread panicked"))??;
            }
            Ok(())
        })?;
        let mut built = built
            .into_inner()
            .map_err(|_| anyhow!("a builder thread panicked"))?;
        built.sort_by_key(|(k, _)| *k);
        Ok(built.into_iter().map(|(_, p)| p).collect())
    }
}

/// Where the client threads get their bodies.
pub enum Source<'a> {
    Pregenerated(&'a [Payload]),
    OnTheFly(&'a Batches),
}

/// What the ingest phase measured.
#[derive(Debug, Default)]
pub struct IngestResult {
    pub wall: Duration,
    pub requests: u64,
    /// Answers of 429 or 503 that were retried.
    pub retries: u64,
    /// Body bytes as sent (after gzip, when on).
    pub sent_bytes: u64,
    pub counts: Counts,
    /// Time of each request, from send to answer, sorted.
    pub request_ms: Vec<f64>,
    /// `VmRSS` samples taken while ingesting.
    pub rss_samples: Vec<u64>,
    /// The harness's own CPU seconds while ingesting.
    pub client_cpu_seconds: f64,
}

/// The server to send to.
pub struct Endpoint<'a> {
    pub http: &'a Client,
    /// `http://host:port`.
    pub base: &'a str,
    /// Its process, for the memory sampler.
    pub pid: u32,
}

/// Posts every batch with `clients` threads; fails on the first answer that is not 2xx
/// (after retries of 429 and 503), naming the batch, the status and the server's message.
pub fn run(
    to: &Endpoint<'_>,
    via: Via,
    gzip: bool,
    source: Source<'_>,
    batch_count: u64,
    clients: usize,
) -> Result<IngestResult> {
    let (http, server_pid) = (to.http, to.pid);
    let (path, content_type) = via.path_and_content_type();
    let url = format!("{}{path}", to.base);
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let result = Mutex::new(IngestResult::default());
    let ticks = procfs::clock_ticks_per_second();
    let self_cpu_before = procfs::cpu_seconds(std::process::id(), ticks)?;
    let started = Instant::now();

    std::thread::scope(|s| -> Result<()> {
        let sampler = s.spawn(|| {
            let mut samples = Vec::new();
            let mut last_progress = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if let Ok((rss, _)) = procfs::rss_and_peak_bytes(server_pid) {
                    samples.push(rss);
                }
                if last_progress.elapsed() >= PROGRESS_INTERVAL {
                    last_progress = Instant::now();
                    eprintln!(
                        "  {:.0} s: {} of {batch_count} requests answered, server RSS {} MiB",
                        started.elapsed().as_secs_f64(),
                        done.load(Ordering::Relaxed),
                        samples.last().copied().unwrap_or(0) >> 20
                    );
                }
                std::thread::sleep(RSS_SAMPLE_INTERVAL);
            }
            samples
        });
        let workers: Vec<_> = (0..clients.max(1))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let mut mine = IngestResult::default();
                    let outcome = (|| -> Result<()> {
                        while !stop.load(Ordering::Relaxed) {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            if k >= batch_count {
                                break;
                            }
                            let built;
                            let payload = match &source {
                                Source::Pregenerated(all) => &all[k as usize],
                                Source::OnTheFly(batches) => {
                                    built = batches.build(k)?;
                                    &built
                                }
                            };
                            post_batch(http, &url, content_type, gzip, k, payload, &mut mine)?;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(())
                    })();
                    if outcome.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    let mut all = result
                        .lock()
                        .map_err(|_| anyhow!("a client thread panicked"))?;
                    all.requests += mine.requests;
                    all.retries += mine.retries;
                    all.sent_bytes += mine.sent_bytes;
                    all.counts.merge(&mine.counts);
                    all.request_ms.extend(mine.request_ms);
                    outcome
                })
            })
            .collect();
        let mut first_error = None;
        for w in workers {
            let r = w.join().map_err(|_| anyhow!("a client thread panicked"))?;
            if let (Err(e), None) = (r, &first_error) {
                first_error = Some(e);
            }
        }
        let wall = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        let samples = sampler
            .join()
            .map_err(|_| anyhow!("the rss sampler panicked"))?;
        let mut all = result
            .lock()
            .map_err(|_| anyhow!("a client thread panicked"))?;
        all.wall = wall;
        all.rss_samples = samples;
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })?;

    let mut result = result
        .into_inner()
        .map_err(|_| anyhow!("a client thread panicked"))?;
    result.client_cpu_seconds = procfs::cpu_seconds(std::process::id(), ticks)? - self_cpu_before;
    result.request_ms.sort_by(f64::total_cmp);
    Ok(result)
}

fn post_batch(
    http: &Client,
    url: &str,
    content_type: &str,
    gzip: bool,
    k: u64,
    payload: &Payload,
    out: &mut IngestResult,
) -> Result<()> {
    for attempt in 1..=ATTEMPTS_MAX {
        let mut req = http
            .post(url)
            .header("Content-Type", content_type)
            .body(payload.body.clone());
        if gzip {
            req = req.header("Content-Encoding", "gzip");
        }
        let sent = Instant::now();
        let resp = req.send().with_context(|| {
            format!(
                "POST {url} (batch {k}, {} body bytes; a server may close the connection on a body \
                 over its limit before the client can read its 413: try a smaller --batch-lines)",
                payload.body.len()
            )
        })?;
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        let ms = sent.elapsed().as_secs_f64() * 1e3;
        if status.is_success() {
            out.requests += 1;
            out.sent_bytes += payload.body.len() as u64;
            out.counts.merge(&payload.counts);
            out.request_ms.push(ms);
            return Ok(());
        }
        if (status.as_u16() == 429 || status.as_u16() == 503) && attempt < ATTEMPTS_MAX {
            out.retries += 1;
            std::thread::sleep(Duration::from_millis(50 * u64::from(attempt)));
            continue;
        }
        bail!(
            "POST {url} (batch {k}: {} lines, {} body bytes) answered {status}: {}",
            payload.counts.lines,
            payload.body.len(),
            text.chars().take(2_000).collect::<String>()
        );
    }
    bail!("POST {url} (batch {k}) still refused after {ATTEMPTS_MAX} attempts")
}
