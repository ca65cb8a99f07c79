//! USE metrics of the machine (utilisation, saturation, errors), sampled on a background
//! task every 15 s with `sysinfo` (and `/proc/stat` for I/O wait, which `sysinfo` lacks):
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `cpu_utilization_percent` | | all CPUs, since the previous sample |
//! | `cpu_load_average` | `period` (1m, 5m, 15m) | run-queue length, the saturation of CPUs |
//! | `memory_utilization_percent` | | `1 − available / total` |
//! | `memory_available_bytes` | | |
//! | `disk_utilization_percent` | `device` | space used of each mounted disk |
//! | `disk_io_wait_percent` | | CPU time waiting on I/O since the previous sample (Linux) |
//! | `network_errors_total` | `interface` | receive and transmit errors, a counter |

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::Metrics;

/// How often the sampler runs by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

type GaugeF64 = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Period {
    period: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Device {
    device: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Interface {
    interface: String,
}

/// The USE gauges and the state between samples.
pub struct SystemMetrics {
    cpu: GaugeF64,
    load: Family<Period, GaugeF64>,
    memory_utilization: GaugeF64,
    memory_available: GaugeF64,
    disk: Family<Device, GaugeF64>,
    io_wait: GaugeF64,
    net_errors: Family<Interface, Counter>,
    system: sysinfo::System,
    disks: sysinfo::Disks,
    networks: sysinfo::Networks,
    last_cpu_times: Option<(u64, u64)>,
    net_seen: HashMap<String, u64>,
}

impl SystemMetrics {
    /// Registers the gauges in `metrics`.
    pub fn register(metrics: &Metrics) -> Self {
        Self {
            cpu: metrics.register(
                "cpu_utilization_percent",
                "CPU utilisation, all CPUs",
                GaugeF64::default(),
            ),
            load: metrics.register("cpu_load_average", "Load average", Family::default()),
            memory_utilization: metrics.register(
                "memory_utilization_percent",
                "Memory in use, percent of total",
                GaugeF64::default(),
            ),
            memory_available: metrics.register(
                "memory_available_bytes",
                "Memory available",
                GaugeF64::default(),
            ),
            disk: metrics.register(
                "disk_utilization_percent",
                "Disk space used, percent",
                Family::default(),
            ),
            io_wait: metrics.register(
                "disk_io_wait_percent",
                "CPU time waiting on I/O, percent",
                GaugeF64::default(),
            ),
            net_errors: metrics.register(
                "network_errors",
                "Network receive and transmit errors",
                Family::default(),
            ),
            system: sysinfo::System::new(),
            disks: sysinfo::Disks::new_with_refreshed_list(),
            networks: sysinfo::Networks::new_with_refreshed_list(),
            last_cpu_times: None,
            net_seen: HashMap::new(),
        }
    }

    /// Takes one sample.
    pub fn sample(&mut self) {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.cpu.set(f64::from(self.system.global_cpu_usage()));
        let load = sysinfo::System::load_average();
        for (period, v) in [("1m", load.one), ("5m", load.five), ("15m", load.fifteen)] {
            self.load.get_or_create(&Period { period }).set(v);
        }
        let total = self.system.total_memory() as f64;
        let available = self.system.available_memory() as f64;
        self.memory_available.set(available);
        if total > 0.0 {
            self.memory_utilization
                .set(100.0 * (1.0 - available / total));
        }
        self.disks.refresh(true);
        for d in self.disks.list() {
            if d.total_space() > 0 {
                let used = 1.0 - d.available_space() as f64 / d.total_space() as f64;
                let device = d.name().to_string_lossy().into_owned();
                self.disk
                    .get_or_create(&Device { device })
                    .set(100.0 * used);
            }
        }
        if let Some((wait, all)) = cpu_times() {
            if let Some((w0, a0)) = self.last_cpu_times
                && all > a0
            {
                self.io_wait
                    .set(100.0 * wait.saturating_sub(w0) as f64 / (all - a0) as f64);
            }
            self.last_cpu_times = Some((wait, all));
        }
        self.networks.refresh(true);
        for (name, data) in self.networks.list() {
            let errors = data.total_errors_on_received() + data.total_errors_on_transmitted();
            let seen = self.net_seen.entry(name.clone()).or_insert(errors);
            let counter = self.net_errors.get_or_create(&Interface {
                interface: name.clone(),
            });
            counter.inc_by(errors.saturating_sub(*seen));
            *seen = errors;
        }
    }

    /// Samples every `every` until the task is aborted.
    pub async fn run(mut self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            self.sample();
        }
    }
}

/// `(iowait, all)` jiffies from the `cpu` line of `/proc/stat`; `None` off Linux.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let wait = *fields.get(4)?;
    Some((wait, fields.iter().take(8).sum()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_use_metric_is_exposed() {
        let metrics = Metrics::new();
        let mut system = SystemMetrics::register(&metrics);
        system.sample();
        system.sample();
        let text = metrics.render();
        for name in [
            "cpu_utilization_percent",
            "cpu_load_average{period=\"1m\"}",
            "memory_utilization_percent",
            "memory_available_bytes",
            "disk_io_wait_percent",
            "network_errors",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        let available = text
            .lines()
            .find(|l| l.starts_with("memory_available_bytes "))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("a value");
        assert!(available > 0.0);
    }
}
