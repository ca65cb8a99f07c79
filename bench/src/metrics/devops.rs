//! A deterministic TSBS-style devops workload, and its samples cut into Prometheus remote
//! write 1.0 request bodies the way a remote-write queue sends them.
//!
//! **Hosts.** `host_0 … host_<N-1>`, each with TSBS's host labels drawn from the seed:
//! `hostname`, `region` (TSBS's nine AWS regions), `datacenter` (the region plus a zone
//! letter), `rack` (0–99), `os`, `arch`, `team`, `service` (0–19), `service_version` (0–1) and
//! `service_environment`.
//!
//! **Series of a host** ([`SERIES_PER_HOST`] = 29):
//! - the ten `cpu_*` gauges of TSBS's `cpu` measurement (`cpu_usage_user`, …), each a random
//!   walk with steps of about N(0, 1), clamped to 0..100, starting anywhere in that range;
//! - `http_requests_total{method, code}`, six counters (GET and POST × 200, 404, 500), each
//!   growing by a noisy per-host rate (GET 200 around 40/s, errors rare, so some counters stay
//!   flat for minutes);
//! - a classic histogram `http_request_duration_seconds` with eleven `le` buckets
//!   (0.005 … 5, `+Inf`), `_sum` and `_count`, taking as many observations a scrape as the
//!   counters grew, spread over the buckets around a fixed latency profile.
//!
//! **Value precision**, as real exporters print them: gauges have at most two decimals
//! (`12.34`: the double nearest to the decimal, as parsing the exposition text gives);
//! counters, buckets and `_count` are whole numbers; `_sum` is in seconds with whole
//! milliseconds (three decimals). TSBS itself emits gauges with full double precision, which
//! no exporter does and which would make every store look worse at compression.
//!
//! **Time.** Scrape round `r` of host `h` is at `start + r * interval + phase(h)`, with a
//! fixed per-host phase in `[0, interval)` (a scraper spreads its targets over the interval)
//! and no jitter, so every round falls in `[start, start + rounds * interval)`.
//!
//! **Bodies.** Series go to `shards` by a hash of the series, as a remote-write queue shards
//! them; a shard's samples are sent in time order (round by round, its series interleaved in
//! each round), at most `batch_samples` a request, one sample per `TimeSeries` as Prometheus'
//! queue manager sends them, labels sorted by name. Batch `k` belongs to shard `k mod
//! shards`, which is how [`crate::ingest`] hands batches to its client threads, so each
//! series' samples arrive in order while shards send concurrently.

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use sightline_ingest::remote_write::proto;

use crate::ingest::{self, Payload, Tally};
use crate::rng::{Rng, mix64};

/// The ten gauges of TSBS's `cpu` measurement, as Prometheus metric names.
pub const CPU_METRICS: [&str; 10] = [
    "cpu_usage_user",
    "cpu_usage_system",
    "cpu_usage_idle",
    "cpu_usage_nice",
    "cpu_usage_iowait",
    "cpu_usage_irq",
    "cpu_usage_softirq",
    "cpu_usage_steal",
    "cpu_usage_guest",
    "cpu_usage_guest_nice",
];

/// `http_requests_total` series of a host: method, code, and the mean rate per second.
const REQUEST_SERIES: [(&str, &str, f64); 6] = [
    ("GET", "200", 40.0),
    ("GET", "404", 2.0),
    ("GET", "500", 0.2),
    ("POST", "200", 10.0),
    ("POST", "404", 0.3),
    ("POST", "500", 0.05),
];

/// Histogram buckets: `le`, the share of observations that fall in the bucket (not
/// cumulative), and a typical duration of those in milliseconds.
const BUCKETS: [(&str, f64, u64); 11] = [
    ("0.005", 0.05, 3),
    ("0.01", 0.10, 8),
    ("0.025", 0.20, 18),
    ("0.05", 0.25, 38),
    ("0.1", 0.18, 75),
    ("0.25", 0.12, 175),
    ("0.5", 0.06, 375),
    ("1", 0.025, 750),
    ("2.5", 0.01, 1_750),
    ("5", 0.004, 3_750),
    ("+Inf", 0.001, 7_500),
];

/// The metric names, each once.
pub fn metric_names() -> Vec<&'static str> {
    let mut names = CPU_METRICS.to_vec();
    names.extend([
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
    ]);
    names
}

/// 10 gauges, 6 counters, 11 buckets, `_sum` and `_count`.
pub const SERIES_PER_HOST: usize = CPU_METRICS.len() + REQUEST_SERIES.len() + BUCKETS.len() + 2;

const REGIONS: [&str; 9] = [
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
];
const OSES: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCHES: [&str; 2] = ["x64", "x86"];
const TEAMS: [&str; 4] = ["SF", "NYC", "LON", "CHI"];
const ENVIRONMENTS: [&str; 3] = ["production", "staging", "test"];

/// What to generate.
#[derive(Clone, Debug)]
pub struct Workload {
    pub seed: u64,
    pub hosts: u32,
    /// Milliseconds between a host's scrapes.
    pub interval_ms: i64,
    /// Scrapes of each host.
    pub rounds: u32,
    /// The first round, in milliseconds since the epoch.
    pub start_ms: i64,
}

impl Workload {
    pub fn series(&self) -> u64 {
        u64::from(self.hosts) * SERIES_PER_HOST as u64
    }

    pub fn samples(&self) -> u64 {
        self.series() * u64::from(self.rounds)
    }

    /// Just after the last round.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + i64::from(self.rounds) * self.interval_ms
    }

    /// Where in the interval host `h` is scraped.
    fn phase_ms(&self, host: u32) -> i64 {
        (mix64(self.seed ^ 0x9a5e ^ u64::from(host)) % self.interval_ms as u64) as i64
    }
}

/// Every series' labels and every sample's value.
pub struct Devops {
    pub workload: Workload,
    /// Series `s` is series `s % SERIES_PER_HOST` of host `s / SERIES_PER_HOST`; its labels,
    /// sorted by name, `__name__` included.
    labels: Vec<Vec<(String, String)>>,
    /// The labels of series `s` encoded as the `labels` fields of a `TimeSeries`.
    labels_pb: Vec<Vec<u8>>,
    /// `values[s * rounds + r]`: series `s` at round `r`.
    values: Vec<f64>,
}

impl Devops {
    /// Generates the values of every host on `threads` threads.
    pub fn generate(workload: Workload, threads: usize) -> Result<Devops> {
        ensure!(workload.hosts >= 1, "at least one host");
        ensure!(workload.rounds >= 1, "at least one scrape round");
        ensure!(workload.interval_ms >= 1, "the interval must be positive");
        let rounds = workload.rounds as usize;
        let per_host = SERIES_PER_HOST * rounds;
        let mut values = vec![0.0; workload.hosts as usize * per_host];
        let threads = threads.max(1);
        let hosts_per_thread = (workload.hosts as usize).div_ceil(threads);
        std::thread::scope(|s| {
            for (i, chunk) in values.chunks_mut(hosts_per_thread * per_host).enumerate() {
                let workload = &workload;
                s.spawn(move || {
                    for (j, host_values) in chunk.chunks_mut(per_host).enumerate() {
                        let host = (i * hosts_per_thread + j) as u32;
                        host_walk(workload, host, host_values);
                    }
                });
            }
        });
        let labels: Vec<_> = (0..workload.hosts)
            .flat_map(|h| host_series_labels(&workload, h))
            .collect();
        let labels_pb = labels
            .iter()
            .map(|l| {
                proto::TimeSeries {
                    labels: l
                        .iter()
                        .map(|(name, value)| proto::Label {
                            name: name.clone(),
                            value: value.clone(),
                        })
                        .collect(),
                    ..Default::default()
                }
                .encode_to_vec()
            })
            .collect();
        Ok(Devops {
            workload,
            labels,
            labels_pb,
            values,
        })
    }

    pub fn value(&self, series: usize, round: u32) -> f64 {
        self.values[series * self.workload.rounds as usize + round as usize]
    }

    pub fn timestamp_ms(&self, series: usize, round: u32) -> i64 {
        let host = (series / SERIES_PER_HOST) as u32;
        self.workload.start_ms
            + i64::from(round) * self.workload.interval_ms
            + self.workload.phase_ms(host)
    }
}

/// The labels of a host's series, in the order of the module doc, each sorted by name.
fn host_series_labels(w: &Workload, host: u32) -> Vec<Vec<(String, String)>> {
    let mut rng = Rng::new(mix64(w.seed ^ 0x4057 ^ mix64(u64::from(host))));
    let mut pick = |list: &[&str]| list[rng.below(list.len() as u64) as usize].to_string();
    let region = pick(&REGIONS);
    let zone = pick(&["a", "b", "c"]);
    let os = pick(&OSES);
    let arch = pick(&ARCHES);
    let team = pick(&TEAMS);
    let environment = pick(&ENVIRONMENTS);
    let rack = rng.below(100).to_string();
    let service = rng.below(20).to_string();
    let service_version = rng.below(2).to_string();
    let host_labels = vec![
        ("arch", arch),
        ("datacenter", format!("{region}{zone}")),
        ("hostname", format!("host_{host}")),
        ("os", os),
        ("rack", rack),
        ("region", region),
        ("service", service),
        ("service_environment", environment),
        ("service_version", service_version),
        ("team", team),
    ];
    let series = |name: &str, extra: &[(&str, &str)]| {
        let mut l: Vec<(String, String)> = host_labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .chain(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())))
            .collect();
        l.push(("__name__".into(), name.into()));
        l.sort();
        l
    };
    let mut out = Vec::with_capacity(SERIES_PER_HOST);
    for name in CPU_METRICS {
        out.push(series(name, &[]));
    }
    for (method, code, _) in REQUEST_SERIES {
        out.push(series(
            "http_requests_total",
            &[("method", method), ("code", code)],
        ));
    }
    for (le, _, _) in BUCKETS {
        out.push(series(
            "http_request_duration_seconds_bucket",
            &[("le", le)],
        ));
    }
    out.push(series("http_request_duration_seconds_sum", &[]));
    out.push(series("http_request_duration_seconds_count", &[]));
    out
}

/// About N(0, 1): the sum of three uniforms, centred and scaled.
fn step(rng: &mut Rng) -> f64 {
    (rng.unit() + rng.unit() + rng.unit() - 1.5) * 2.0
}

/// A count with mean `mean`: `mean` ± 30 %, rounded at random so small rates still add up.
fn noisy_count(rng: &mut Rng, mean: f64) -> u64 {
    (mean * (0.7 + 0.6 * rng.unit()) + rng.unit()).floor() as u64
}

/// Fills `out` (the host's series, `rounds` values each) with one host's scrapes.
fn host_walk(w: &Workload, host: u32, out: &mut [f64]) {
    let rounds = w.rounds as usize;
    let mut rng = Rng::new(mix64(w.seed ^ 0x7a1c ^ mix64(u64::from(host) + 1)));
    let mut cpu: Vec<f64> = CPU_METRICS.iter().map(|_| rng.unit() * 100.0).collect();
    let load = 0.5 + rng.unit();
    let interval_s = w.interval_ms as f64 / 1_000.0;
    let mut requests = [0u64; REQUEST_SERIES.len()];
    let mut buckets = [0u64; BUCKETS.len()];
    let mut sum_ms = 0u64;
    let mut count = 0u64;
    let base_requests = CPU_METRICS.len();
    let base_buckets = base_requests + REQUEST_SERIES.len();
    for r in 0..rounds {
        let mut set = |series: usize, v: f64| out[series * rounds + r] = v;
        for (i, c) in cpu.iter_mut().enumerate() {
            *c = (*c + step(&mut rng)).clamp(0.0, 100.0);
            set(i, (*c * 100.0).round() / 100.0);
        }
        let mut observed = 0u64;
        for (i, (_, _, rate)) in REQUEST_SERIES.iter().enumerate() {
            let grew = noisy_count(&mut rng, rate * load * interval_s);
            requests[i] += grew;
            observed += grew;
            set(base_requests + i, requests[i] as f64);
        }
        let mut cumulative = 0u64;
        for (i, (_, share, typical_ms)) in BUCKETS.iter().enumerate() {
            let fell = noisy_count(&mut rng, observed as f64 * share);
            cumulative += fell;
            count += fell;
            sum_ms += fell * typical_ms + rng.below(fell * typical_ms / 4 + 1);
            buckets[i] += cumulative;
            set(base_buckets + i, buckets[i] as f64);
        }
        set(base_buckets + BUCKETS.len(), sum_ms as f64 / 1_000.0);
        set(base_buckets + BUCKETS.len() + 1, count as f64);
    }
}

/// Samples acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleCount(pub u64);

impl Tally for SampleCount {
    fn merge(&mut self, other: &Self) {
        self.0 += other.0;
    }
}

/// The samples cut into remote-write bodies by shard; see the module doc.
pub struct Batches<'a> {
    devops: &'a Devops,
    /// The series of each shard, ascending.
    shards: Vec<Vec<u32>>,
    /// Samples a batch of each shard (its last batches may hold fewer, or none).
    per_batch: Vec<u64>,
    batches_per_shard: u64,
}

impl<'a> Batches<'a> {
    pub fn new(devops: &'a Devops, shard_count: usize, batch_samples: u64) -> Result<Self> {
        ensure!(shard_count >= 1, "at least one shard");
        ensure!(batch_samples >= 1, "at least one sample a batch");
        let series = devops.labels.len();
        let mut shards = vec![Vec::new(); shard_count];
        for s in 0..series {
            let shard = mix64(s as u64 ^ 0x5a4d) % shard_count as u64;
            shards[shard as usize].push(s as u32);
        }
        let rounds = u64::from(devops.workload.rounds);
        let largest = shards.iter().map(Vec::len).max().unwrap_or(0) as u64;
        let batches_per_shard = (largest * rounds).div_ceil(batch_samples).max(1);
        let per_batch = shards
            .iter()
            .map(|s| (s.len() as u64 * rounds).div_ceil(batches_per_shard).max(1))
            .collect();
        Ok(Batches {
            devops,
            shards,
            per_batch,
            batches_per_shard,
        })
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn workload(&self) -> &Workload {
        &self.devops.workload
    }
}

impl ingest::Batches<SampleCount> for Batches<'_> {
    fn count(&self) -> u64 {
        self.batches_per_shard * self.shards.len() as u64
    }

    fn build(&self, k: u64) -> Result<Payload<SampleCount>> {
        let shard = (k % self.shards.len() as u64) as usize;
        let b = k / self.shards.len() as u64;
        let series = &self.shards[shard];
        let total = series.len() as u64 * u64::from(self.devops.workload.rounds);
        let first = (b * self.per_batch[shard]).min(total);
        let end = (first + self.per_batch[shard]).min(total);
        if first == end {
            return Ok(Payload {
                body: Bytes::new(),
                tally: SampleCount(0),
            });
        }
        let mut pb = Vec::with_capacity((end - first) as usize * 260);
        let mut sample = Vec::with_capacity(24);
        for p in first..end {
            let round = (p / series.len() as u64) as u32;
            let s = series[(p % series.len() as u64) as usize] as usize;
            sample.clear();
            prost::encoding::message::encode(
                2,
                &proto::Sample {
                    value: self.devops.value(s, round),
                    timestamp: self.devops.timestamp_ms(s, round),
                },
                &mut sample,
            );
            let labels = &self.devops.labels_pb[s];
            encode_key(1, WireType::LengthDelimited, &mut pb);
            encode_varint((labels.len() + sample.len()) as u64, &mut pb);
            pb.extend_from_slice(labels);
            pb.extend_from_slice(&sample);
        }
        let body = snap::raw::Encoder::new()
            .compress_vec(&pb)
            .context("snappy-compress a remote-write body")?;
        Ok(Payload {
            body: Bytes::from(body),
            tally: SampleCount(end - first),
        })
    }
}

/// The remote-write 1.0 request.
pub fn request(path: &'static str) -> ingest::Request {
    ingest::Request {
        path,
        headers: vec![
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
            ("User-Agent", "sightline-bench"),
        ],
    }
}

#[cfg(test)]
mod tests;
