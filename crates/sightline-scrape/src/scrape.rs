//! The scrape loop of one target: a tokio task that scrapes every interval, turns each scrape
//! into a batch ([`append`]) and hands it to the sink, until the manager stops it.
//!
//! Timing follows Prometheus 2.42:
//! - the first scrape waits for a deterministic offset within the interval, derived from
//!   the target's labels and URL and a per-server seed ([`scrape_offset`]), so targets spread
//!   over the interval and keep their phase across restarts;
//! - scrapes then follow a ticker; a tick missed because a scrape or the sink was slow is
//!   skipped, not caught up;
//! - timestamps within 2 ms of the ideal grid are snapped onto it (for intervals over
//!   200 ms), which keeps the TSDB's delta encoding small;
//! - a sample's timestamp is the scrape's start (the request's send time), not its end.
//!
//! How a loop ends decides the staleness markers ([`LoopSignal`]):
//! - `Removed` (the target left discovery or its job left the configuration): as Prometheus,
//!   wait until the next scrape would have been (its time is the markers' timestamp), then
//!   one more interval and a tenth, so that a target coming straight back can take the
//!   loop's state instead ([`LoopSignal::Handover`]) and no marker lands among fresh samples;
//!   then mark every tracked series and the report series stale. (Prometheus 2.42 does so
//!   for a target that left discovery, but writes nothing when the whole job left the
//!   configuration, because it cancels the job's context first; Sightline marks both);
//! - `Handover`: end at once and give the state (the series to track) to the loop that
//!   replaces this one, e.g. after the job's configuration changed: no markers;
//! - `Shutdown` ([`crate::ScrapeManager::stop`]): mark everything stale at once. Prometheus
//!   writes no markers when it shuts down (it expects to come back within the lookback
//!   window); Sightline's manager is told to stop when scraping stops for good, so it does;
//! - the manager dropped without `stop`: end without markers, as Prometheus at shutdown.

pub mod append;
pub mod fetch;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sightline_ingest::metrics_common::DecodedMetrics;
use sightline_model::{Labels, MetricBatch, SeriesSamples, TenantId};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::config::ScrapeConfig;
use crate::sink::ScrapeSink;
use crate::target::Target;
use append::{NO_TIMESTAMP, SeriesState};
use fetch::{SCRAPE_BODY_BYTES_MAX, fetch};

/// How far off the grid a scrape may start and still be snapped onto it.
pub const SCRAPE_TIMESTAMP_TOLERANCE: Duration = Duration::from_millis(2);

/// A target's health, as the targets API shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Health {
    /// Not scraped yet.
    #[default]
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// The outcome of a target's last scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthState {
    pub health: Health,
    /// Empty after a successful scrape.
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    pub last_scrape_duration: Option<Duration>,
}

/// What the manager tells a loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopSignal {
    Run,
    Removed,
    Handover,
    Shutdown,
}

/// Everything a loop needs.
pub(crate) struct LoopContext {
    pub target: Arc<Target>,
    pub config: Arc<ScrapeConfig>,
    pub client: reqwest::Client,
    pub sink: Arc<dyn ScrapeSink>,
    pub tenant: TenantId,
    pub health: Arc<Mutex<HealthState>>,
    /// An error every scrape reports without scraping (the job's `target_limit` exceeded).
    pub forced_error: Arc<Mutex<Option<String>>>,
    pub jitter_seed: u64,
}

/// Runs the loop until it is signalled, and returns the state for a loop taking over.
pub(crate) async fn run_loop(
    ctx: LoopContext,
    mut state: SeriesState,
    mut signal: watch::Receiver<LoopSignal>,
) -> SeriesState {
    let interval = ctx.target.interval();
    let target_labels = ctx.target.labels();
    let offset = scrape_offset(&ctx.target, ctx.jitter_seed, unix_ns());
    tokio::select! {
        biased;
        stop = signal_change(&mut signal, LoopSignal::Run) => {
            return finish_early(&ctx, state, stop, &target_labels).await;
        }
        () = tokio::time::sleep(offset) => {}
    }
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let interval_ns = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
    let tolerance_ns = SCRAPE_TIMESTAMP_TOLERANCE.as_nanos() as u64;
    let mut aligned_ns = unix_ns();
    let stop = loop {
        tokio::select! {
            biased;
            stop = signal_change(&mut signal, LoopSignal::Run) => break stop,
            _ = ticker.tick() => {}
        }
        let mut scrape_ns = unix_ns();
        if interval_ns > 100 * tolerance_ns {
            while scrape_ns.saturating_sub(aligned_ns) >= interval_ns {
                aligned_ns += interval_ns;
            }
            if scrape_ns.saturating_sub(aligned_ns) <= tolerance_ns {
                scrape_ns = aligned_ns;
            }
        }
        let timestamp_ms = i64::try_from(scrape_ns / 1_000_000).unwrap_or(i64::MAX);
        let started = Instant::now();
        let scraped = tokio::select! {
            biased;
            stop = signal_change(&mut signal, LoopSignal::Run) => break stop,
            scraped = scrape_once(&ctx) => scraped,
        };
        let duration = started.elapsed();
        let output = state.process(&ctx.config, &target_labels, scraped, timestamp_ms, duration);
        if let Some(error) = &output.error {
            tracing::debug!(url = ctx.target.url(), %error, "scrape failed");
        }
        if let Ok(mut health) = ctx.health.lock() {
            *health = HealthState {
                health: if output.error.is_some() {
                    Health::Down
                } else {
                    Health::Up
                },
                last_error: output.error.clone().unwrap_or_default(),
                last_scrape: Some(UNIX_EPOCH + Duration::from_nanos(scrape_ns)),
                last_scrape_duration: Some(duration),
            };
        }
        write(&ctx, output.series, output.metadata).await;
    };
    let Some(stop) = stop else {
        return state;
    };
    match stop {
        LoopSignal::Run | LoopSignal::Handover => state,
        LoopSignal::Shutdown => {
            write_end_markers(&ctx, &mut state, &target_labels, unix_ms()).await;
            state
        }
        LoopSignal::Removed => {
            end_of_run(&ctx, state, &target_labels, &mut ticker, &mut signal).await
        }
    }
}

/// A loop stopped before its first scrape: nothing to mark, unless it took over a state.
async fn finish_early(
    ctx: &LoopContext,
    mut state: SeriesState,
    stop: Option<LoopSignal>,
    target_labels: &Labels,
) -> SeriesState {
    if matches!(stop, Some(LoopSignal::Shutdown | LoopSignal::Removed)) {
        write_end_markers(ctx, &mut state, target_labels, unix_ms()).await;
    }
    state
}

/// Prometheus' end-of-run staleness for a removed target (see the module documentation).
async fn end_of_run(
    ctx: &LoopContext,
    mut state: SeriesState,
    target_labels: &Labels,
    ticker: &mut tokio::time::Interval,
    signal: &mut watch::Receiver<LoopSignal>,
) -> SeriesState {
    if !state.was_reported() {
        return state;
    }
    let mut stale_ms = None;
    for step in 0..3 {
        let wait = async {
            match step {
                0 | 1 => {
                    ticker.tick().await;
                }
                _ => tokio::time::sleep(ctx.target.interval() / 10).await,
            }
        };
        tokio::select! {
            biased;
            stop = signal_change(signal, LoopSignal::Removed) => {
                if stop == Some(LoopSignal::Shutdown) {
                    let at = stale_ms.unwrap_or_else(unix_ms);
                    write_end_markers(ctx, &mut state, target_labels, at).await;
                }
                return state;
            }
            () = wait => {}
        }
        if step == 0 {
            stale_ms = Some(unix_ms());
        }
    }
    let at = stale_ms.unwrap_or_else(unix_ms);
    write_end_markers(ctx, &mut state, target_labels, at).await;
    state
}

/// Waits until the signal is no longer `from`; `None` when the manager is gone.
async fn signal_change(
    signal: &mut watch::Receiver<LoopSignal>,
    from: LoopSignal,
) -> Option<LoopSignal> {
    loop {
        let current = *signal.borrow_and_update();
        if current != from {
            return Some(current);
        }
        if signal.changed().await.is_err() {
            return None;
        }
    }
}

/// Fetches and parses one scrape.
async fn scrape_once(ctx: &LoopContext) -> Result<DecodedMetrics, String> {
    let forced = ctx.forced_error.lock().ok().and_then(|f| f.clone());
    if let Some(error) = forced {
        return Err(error);
    }
    let limit = ctx
        .config
        .body_size_limit
        .and_then(|l| usize::try_from(l).ok())
        .map_or(SCRAPE_BODY_BYTES_MAX, |l| l.min(SCRAPE_BODY_BYTES_MAX));
    let target = &ctx.target;
    let fetched = fetch(&ctx.client, target.url(), target.timeout(), limit).await?;
    sightline_ingest::prom_text::parse(&fetched.body, fetched.content_type.as_deref(), NO_TIMESTAMP)
        .map_err(|e| e.to_string())
}

async fn write_end_markers(
    ctx: &LoopContext,
    state: &mut SeriesState,
    target_labels: &Labels,
    timestamp_ms: i64,
) {
    let markers = state.end_of_run_markers(target_labels, timestamp_ms);
    if !markers.is_empty() {
        write(ctx, markers, Vec::new()).await;
    }
}

async fn write(
    ctx: &LoopContext,
    series: Vec<SeriesSamples>,
    metadata: Vec<sightline_model::MetricMetadata>,
) {
    let batch = MetricBatch {
        tenant: ctx.tenant.clone(),
        series,
        metadata,
    };
    if let Err(error) = ctx.sink.write(batch).await {
        tracing::warn!(url = ctx.target.url(), %error, "writing a scrape failed");
    }
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn unix_ms() -> i64 {
    i64::try_from(unix_ns() / 1_000_000).unwrap_or(i64::MAX)
}

/// FNV-1a, 64 bits, over the concatenation of `parts`.
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// Prometheus' hash of a label set: xxHash64 of `name\xffvalue\xff…`.
pub fn labels_hash(labels: &Labels) -> u64 {
    let mut hasher = xxhash_rust::xxh64::Xxh64::new(0);
    for (name, value) in labels.iter() {
        hasher.update(name.as_bytes());
        hasher.update(b"\xff");
        hasher.update(value.as_bytes());
        hasher.update(b"\xff");
    }
    hasher.digest()
}

/// Prometheus' target hash: FNV-1a of the label hash (16 decimal digits) and the URL.
pub fn target_hash(target: &Target) -> u64 {
    let labels = format!("{:016}", labels_hash(target.all_labels()));
    fnv1a64(&[labels.as_bytes(), target.url().as_bytes()])
}

/// The per-server seed of scrape offsets: FNV-1a of the external labels and the host name,
/// as Prometheus derives it, so two servers scraping the same targets do so at different
/// moments.
pub fn jitter_seed(external_labels: &Labels, hostname: &str) -> u64 {
    fnv1a64(&[external_labels.to_string().as_bytes(), hostname.as_bytes()])
}

/// How long to wait before the first scrape of `target`: its place in the interval grid.
pub fn scrape_offset(target: &Target, jitter_seed: u64, now_ns: u64) -> Duration {
    let interval = u64::try_from(target.interval().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    let base = interval - now_ns % interval;
    let offset = (target_hash(target) ^ jitter_seed) % interval;
    let mut next = base + offset;
    if next > interval {
        next -= interval;
    }
    Duration::from_nanos(next)
}
