//! HTTP probes of other services, with Kubernetes' thresholds: a probe turns unhealthy after
//! `failure_threshold` failures in a row and healthy after `success_threshold` successes in
//! a row; the first run waits `initial_delay`; a startup probe stops once healthy.
//!
//! Every run writes blackbox_exporter's series, labelled `probe` (the name), `kind` and
//! `instance` (the URL): `probe_success`, `probe_duration_seconds`,
//! `probe_http_status_code` (0 when no answer came), and `probe_healthy` (the thresholded
//! state, 1 or 0). A `probe:` SLI counts the `probe_success` samples.

use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use sightline_model::{Labels, MetricBatch, Sample, SeriesSamples, TenantId};

use crate::config::{ProbeConfig, ProbeKind};
use crate::notify::rfc3339;

/// The outcome of one run.
#[derive(Clone, Debug)]
pub struct ProbeResult {
    pub at_ms: i64,
    pub success: bool,
    pub status: Option<u16>,
    pub duration: Duration,
    pub error: Option<String>,
}

pub struct ProbeRuntime {
    pub cfg: ProbeConfig,
    pub tenant: TenantId,
    client: reqwest::Client,
    pub last: Option<ProbeResult>,
    successes: u32,
    failures: u32,
    /// `None` until a threshold is reached.
    pub healthy: Option<bool>,
}

impl ProbeRuntime {
    pub fn new(cfg: ProbeConfig) -> Self {
        let tenant = crate::config::tenant_or_default(cfg.tenant.as_deref());
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout.unwrap_or(Duration::from_secs(1)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            cfg,
            tenant,
            client,
            last: None,
            successes: 0,
            failures: 0,
            healthy: None,
        }
    }

    pub fn interval(&self) -> Duration {
        self.cfg.interval.unwrap_or(Duration::from_secs(10))
    }

    pub fn initial_delay(&self) -> Duration {
        self.cfg.initial_delay.unwrap_or_default()
    }

    /// A startup probe is done once healthy.
    pub fn finished(&self) -> bool {
        self.cfg.kind == ProbeKind::Startup && self.healthy == Some(true)
    }

    /// The request, cloneable out of a lock so the run holds none.
    pub fn request(&self) -> (reqwest::Client, String) {
        (self.client.clone(), self.cfg.url.clone())
    }

    fn expected(&self, status: u16) -> bool {
        match &self.cfg.expected_status {
            Some(list) => list.contains(&status),
            None => (200..400).contains(&status),
        }
    }

    /// Records a run's outcome; returns the samples to store.
    pub fn record(
        &mut self,
        at_ms: i64,
        answer: Result<u16, String>,
        took: Duration,
    ) -> MetricBatch {
        let (status, error) = match answer {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e)),
        };
        let success = status.is_some_and(|s| self.expected(s));
        let error = match (success, status, error) {
            (false, Some(s), None) => Some(format!("unexpected status {s}")),
            (_, _, e) => e,
        };
        if success {
            self.successes += 1;
            self.failures = 0;
            if self.successes >= self.cfg.success_threshold.unwrap_or(1) {
                self.healthy = Some(true);
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.failures >= self.cfg.failure_threshold.unwrap_or(3) {
                self.healthy = Some(false);
            }
        }
        self.last = Some(ProbeResult {
            at_ms,
            success,
            status,
            duration: took,
            error,
        });
        let series = |name: &str, v: f64| SeriesSamples {
            labels: Labels::from_pairs([
                ("__name__", name),
                ("probe", self.cfg.name.as_str()),
                ("kind", self.cfg.kind.as_str()),
                ("instance", self.cfg.url.as_str()),
            ]),
            samples: vec![Sample {
                timestamp_ms: at_ms,
                value: v,
            }],
            exemplars: vec![],
        };
        let mut out = vec![
            series("probe_success", if success { 1.0 } else { 0.0 }),
            series("probe_duration_seconds", took.as_secs_f64()),
            series("probe_http_status_code", status.map_or(0.0, f64::from)),
        ];
        if let Some(h) = self.healthy {
            out.push(series("probe_healthy", if h { 1.0 } else { 0.0 }));
        }
        MetricBatch {
            tenant: self.tenant.clone(),
            series: out,
            metadata: vec![],
        }
    }

    pub fn to_json(&self) -> Json {
        let last = self.last.as_ref().map(|r| {
            json!({
                "at": rfc3339(r.at_ms),
                "success": r.success,
                "status_code": r.status,
                "duration_seconds": r.duration.as_secs_f64(),
                "error": r.error,
            })
        });
        json!({
            "name": self.cfg.name,
            "url": self.cfg.url,
            "kind": self.cfg.kind.as_str(),
            "interval_seconds": self.interval().as_secs_f64(),
            "healthy": self.healthy,
            "consecutive_successes": self.successes,
            "consecutive_failures": self.failures,
            "last": last,
        })
    }
}

/// Runs one GET; the status code, or why there was none.
pub async fn run_once(client: &reqwest::Client, url: &str) -> (Result<u16, String>, Duration) {
    let started = Instant::now();
    let answer = match client.get(url).send().await {
        Ok(r) => Ok(r.status().as_u16()),
        Err(e) if e.is_timeout() => Err("timed out".to_string()),
        Err(e) => Err(e.to_string()),
    };
    (answer, started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(failure: u32, success: u32) -> ProbeRuntime {
        let cfg: ProbeConfig = serde_yaml::from_str(&format!(
            "name: p\nurl: http://127.0.0.1:1/\nkind: startup\nfailure_threshold: {failure}\nsuccess_threshold: {success}\n"
        ))
        .expect("config");
        ProbeRuntime::new(cfg)
    }

    #[test]
    fn thresholds_decide_the_state_as_kubernetes_does() {
        let mut p = probe(2, 2);
        let d = Duration::from_millis(3);
        p.record(1, Ok(200), d);
        assert_eq!(p.healthy, None, "one success of two");
        p.record(2, Ok(204), d);
        assert_eq!(p.healthy, Some(true));
        assert!(p.finished(), "a healthy startup probe is done");
        p.record(3, Ok(500), d);
        assert_eq!(p.healthy, Some(true), "one failure of two");
        let batch = p.record(4, Err("connection refused".into()), d);
        assert_eq!(p.healthy, Some(false));
        let value = |name: &str| {
            batch
                .series
                .iter()
                .find(|s| s.labels.get("__name__") == Some(name))
                .map(|s| s.samples[0].value)
        };
        assert_eq!(value("probe_success"), Some(0.0));
        assert_eq!(value("probe_http_status_code"), Some(0.0));
        assert_eq!(value("probe_healthy"), Some(0.0));
        assert_eq!(
            p.last.as_ref().and_then(|l| l.error.clone()).as_deref(),
            Some("connection refused")
        );
    }

    #[test]
    fn expected_status_overrides_2xx_3xx() {
        let mut p = probe(1, 1);
        p.cfg.expected_status = Some(vec![418]);
        p.record(1, Ok(200), Duration::ZERO);
        assert_eq!(p.healthy, Some(false));
        p.record(2, Ok(418), Duration::ZERO);
        assert_eq!(p.healthy, Some(true));
    }
}
