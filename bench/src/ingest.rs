//! Sending request bodies to a server: the client threads that post them, while a sampler
//! watches the server's resident memory. What a body holds is the caller's business: logs
//! (`logs/batches.rs`) and remote-write samples (`metrics/devops.rs`) both come through here.
//!
//! Batch `k` is the same bytes whoever builds it, so bodies can be built before timing
//! (pre-generated, when they fit the memory budget) or by the client threads as they go (the
//! harness's own CPU is then on the same cores as the server's; the server's CPU seconds are
//! measured from `/proc` either way).
//!
//! Order: client `c` of `n` sends batches `c, c + n, c + 2n, …`, each after the answer to the
//! one before. A generator that needs the samples of a series to arrive in time order (as a
//! remote-write receiver does) puts each series in one residue class of `k mod n`, the way a
//! remote-write queue shards series. Empty bodies are skipped.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use reqwest::blocking::Client;

use crate::procfs;

/// Most attempts of one batch the server answers 429 or 503 to.
const ATTEMPTS_MAX: u32 = 20;

/// How often the sampler reads the server's `VmRSS`.
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(200);

/// How often progress is printed while ingesting.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

/// What the bodies hold, added up over the batches a server acknowledged.
pub trait Tally: Default + Send + Sync {
    fn merge(&mut self, other: &Self);
}

/// One request body and what it holds.
pub struct Payload<T> {
    pub body: Bytes,
    pub tally: T,
}

/// How to cut a workload into request bodies.
pub trait Batches<T>: Sync {
    /// How many batches.
    fn count(&self) -> u64;
    /// The body of batch `k` (`k < count()`).
    fn build(&self, k: u64) -> Result<Payload<T>>;
}

/// Every body of `batches`, built on `threads` threads.
pub fn build_all<T: Send>(batches: &dyn Batches<T>, threads: usize) -> Result<Vec<Payload<T>>> {
    let count = batches.count();
    let next = AtomicU64::new(0);
    let built: Mutex<Vec<(u64, Payload<T>)>> = Mutex::new(Vec::with_capacity(count as usize));
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= count {
                            return Ok(());
                        }
                        let p = batches.build(k)?;
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

/// Where the client threads get their bodies.
pub enum Source<'a, T> {
    Pregenerated(&'a [Payload<T>]),
    OnTheFly(&'a dyn Batches<T>),
}

impl<T> Source<'_, T> {
    fn count(&self) -> u64 {
        match self {
            Source::Pregenerated(all) => all.len() as u64,
            Source::OnTheFly(batches) => batches.count(),
        }
    }
}

/// What the ingest phase measured.
#[derive(Debug, Default)]
pub struct IngestResult<T> {
    pub wall: Duration,
    pub requests: u64,
    /// Answers of 429 or 503 that were retried.
    pub retries: u64,
    /// Body bytes as sent (compressed, when they are).
    pub sent_bytes: u64,
    pub tally: T,
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

/// The request every body goes in: its path and headers (`Content-Type` among them).
#[derive(Clone, Debug)]
pub struct Request {
    pub path: &'static str,
    pub headers: Vec<(&'static str, &'static str)>,
}

/// Posts every batch with `clients` threads (client `c` sends batches `k ≡ c mod clients` in
/// order); fails on the first answer that is not 2xx (after retries of 429 and 503), naming
/// the batch, the status and the server's message.
pub fn run<T: Tally>(
    to: &Endpoint<'_>,
    request: &Request,
    source: Source<'_, T>,
    clients: usize,
) -> Result<IngestResult<T>> {
    let (http, server_pid) = (to.http, to.pid);
    let url = format!("{}{}", to.base, request.path);
    let clients = clients.max(1);
    let batch_count = source.count();
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let result = Mutex::new(IngestResult::<T>::default());
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
        let workers: Vec<_> = (0..clients as u64)
            .map(|client| {
                let (source, url, done, stop, result) = (&source, &url, &done, &stop, &result);
                s.spawn(move || -> Result<()> {
                    let mut mine = IngestResult::<T>::default();
                    let outcome = (|| -> Result<()> {
                        let mut k = client;
                        while k < batch_count && !stop.load(Ordering::Relaxed) {
                            let built;
                            let payload = match source {
                                Source::Pregenerated(all) => &all[k as usize],
                                Source::OnTheFly(batches) => {
                                    built = batches.build(k)?;
                                    &built
                                }
                            };
                            if !payload.body.is_empty() {
                                post_batch(http, url, request, k, payload, &mut mine)?;
                            }
                            done.fetch_add(1, Ordering::Relaxed);
                            k += clients as u64;
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
                    all.tally.merge(&mine.tally);
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

fn post_batch<T: Tally>(
    http: &Client,
    url: &str,
    request: &Request,
    k: u64,
    payload: &Payload<T>,
    out: &mut IngestResult<T>,
) -> Result<()> {
    for attempt in 1..=ATTEMPTS_MAX {
        let mut req = http.post(url).body(payload.body.clone());
        for (name, value) in &request.headers {
            req = req.header(*name, *value);
        }
        let sent = Instant::now();
        let resp = req.send().with_context(|| {
            format!(
                "POST {url} (batch {k}, {} body bytes; a server may close the connection on a body \
                 over its limit before the client can read its 413: try a smaller batch)",
                payload.body.len()
            )
        })?;
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        let ms = sent.elapsed().as_secs_f64() * 1e3;
        if status.is_success() {
            out.requests += 1;
            out.sent_bytes += payload.body.len() as u64;
            out.tally.merge(&payload.tally);
            out.request_ms.push(ms);
            return Ok(());
        }
        if (status.as_u16() == 429 || status.as_u16() == 503) && attempt < ATTEMPTS_MAX {
            out.retries += 1;
            std::thread::sleep(Duration::from_millis(50 * u64::from(attempt)));
            continue;
        }
        bail!(
            "POST {url} (batch {k}, {} body bytes) answered {status}: {}",
            payload.body.len(),
            text.chars().take(2_000).collect::<String>()
        );
    }
    bail!("POST {url} (batch {k}) still refused after {ATTEMPTS_MAX} attempts")
}
