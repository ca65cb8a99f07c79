//! Scrape loops against a real exporter: an axum server on 127.0.0.1 whose exposition the
//! test changes between scrapes, and a sink that forwards every batch to the test.
//!
//! No assert depends on timing: each waits (with a generous deadline) for the first batch
//! that shows a change, and checks what that batch must hold whatever the machine's speed.
//! Intervals are 100–250 ms.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::routing::get;
use sightline_model::{Labels, MetricBatch, is_stale_nan};
use sightline_scrape::scrape::fetch::{ACCEPT_HEADER, SCRAPE_TIMEOUT_HEADER};
use sightline_scrape::{
    GlobalConfig, Health, PrometheusConfig, ScrapeConfig, ScrapeManager, ScrapeOptions,
};
use tokio::sync::mpsc;

/// How long a test waits for an expected batch before failing.
const DEADLINE: Duration = Duration::from_secs(20);

/// What the exporter answers.
#[derive(Clone)]
struct Exposition {
    status: u16,
    body: String,
    content_type: &'static str,
    gzip: bool,
    delay: Duration,
}

#[derive(Clone)]
struct Exporter {
    exposition: Arc<Mutex<Exposition>>,
    requests: Arc<Mutex<Vec<HeaderMap>>>,
}

impl Exporter {
    async fn start(body: &str) -> (Self, SocketAddr) {
        let exporter = Self {
            exposition: Arc::new(Mutex::new(Exposition {
                status: 200,
                body: body.to_string(),
                content_type: "text/plain; version=0.0.4",
                gzip: false,
                delay: Duration::ZERO,
            })),
            requests: Arc::new(Mutex::new(Vec::new())),
        };
        let app = Router::new()
            .route("/metrics", get(serve_metrics))
            .with_state(exporter.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the exporter");
        let addr = listener.local_addr().expect("exporter address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (exporter, addr)
    }

    fn set(&self, change: impl FnOnce(&mut Exposition)) {
        change(&mut self.exposition.lock().expect("exposition lock"));
    }
}

async fn serve_metrics(
    State(exporter): State<Exporter>,
    headers: HeaderMap,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    exporter
        .requests
        .lock()
        .expect("requests lock")
        .push(headers);
    let exposition = exporter.exposition.lock().expect("exposition lock").clone();
    tokio::time::sleep(exposition.delay).await;
    let mut out = HeaderMap::new();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(exposition.content_type),
    );
    let mut body = exposition.body.into_bytes();
    if exposition.gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&body).expect("gzip");
        body = encoder.finish().expect("gzip");
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    (
        StatusCode::from_u16(exposition.status).expect("a status code"),
        out,
        body,
    )
}

/// One batch as `(labels, value, timestamp)` rows.
struct Batch {
    rows: Vec<(Labels, f64, i64)>,
}

impl Batch {
    fn from(batch: MetricBatch) -> Self {
        assert_eq!(batch.tenant.as_str(), "default");
        let rows = batch
            .series
            .into_iter()
            .flat_map(|s| {
                let labels = s.labels;
                s.samples
                    .into_iter()
                    .map(move |sample| (labels.clone(), sample.value, sample.timestamp_ms))
            })
            .collect();
        Self { rows }
    }

    fn find(&self, name: &str) -> Option<&(Labels, f64, i64)> {
        self.rows
            .iter()
            .find(|(labels, _, _)| labels.get("__name__") == Some(name))
    }

    /// The value of the series named `name`, if the batch has it and it is not a marker.
    fn value(&self, name: &str) -> Option<f64> {
        self.find(name).map(|r| r.1).filter(|v| !is_stale_nan(*v))
    }

    fn is_stale(&self, name: &str) -> bool {
        self.find(name).is_some_and(|r| is_stale_nan(r.1))
    }

    fn job(&self) -> Option<&str> {
        self.rows.first().and_then(|r| r.0.get("job"))
    }
}

type Batches = mpsc::UnboundedReceiver<MetricBatch>;

/// A sink forwarding every batch to the returned receiver.
fn channel_sink() -> (
    impl Fn(MetricBatch) -> std::future::Ready<Result<(), String>> + Send + Sync + 'static,
    Batches,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink = move |batch: MetricBatch| {
        let _ = tx.send(batch);
        std::future::ready(Ok(()))
    };
    (sink, rx)
}

/// Waits for the first batch (of `job`, when given) that satisfies `pred`.
async fn wait_for(
    rx: &mut Batches,
    job: Option<&str>,
    what: &str,
    pred: impl Fn(&Batch) -> bool,
) -> Batch {
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            let batch = Batch::from(rx.recv().await.expect("the sink was dropped"));
            if job.is_none_or(|j| batch.job() == Some(j)) && pred(&batch) {
                return batch;
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no batch with {what} within {DEADLINE:?}"))
}

fn configs(yaml: &str) -> (GlobalConfig, Vec<ScrapeConfig>) {
    let config = PrometheusConfig::from_yaml(yaml).expect("a valid configuration");
    (config.global, config.scrape_configs)
}

fn options() -> ScrapeOptions {
    ScrapeOptions {
        file_sd_poll_interval: Duration::from_millis(50),
        ..ScrapeOptions::default()
    }
}

#[tokio::test]
async fn scrapes_marks_vanished_series_failed_scrapes_and_removed_targets() {
    let (exporter, addr) = Exporter::start("# TYPE a gauge\na 1\nb{x=\"y\"} 2\n").await;
    let (global, jobs) = configs(&format!(
        "scrape_configs:\n  - job_name: app\n    scrape_interval: 100ms\n    \
         static_configs: [{{targets: ['{addr}'], labels: {{env: test}}}}]\n"
    ));
    let (sink, mut rx) = channel_sink();
    let manager = ScrapeManager::start_with_options(global.clone(), jobs, sink, options())
        .await
        .unwrap();

    let first = wait_for(&mut rx, None, "a=1", |b| b.value("a") == Some(1.0)).await;
    let (labels, _, ts) = first.find("a").unwrap();
    assert_eq!(
        labels.to_string(),
        format!(r#"{{__name__="a", env="test", instance="{addr}", job="app"}}"#)
    );
    assert_eq!(first.value("b"), Some(2.0));
    assert_eq!(first.value("up"), Some(1.0));
    assert_eq!(first.value("scrape_samples_scraped"), Some(2.0));
    assert_eq!(
        first.value("scrape_samples_post_metric_relabeling"),
        Some(2.0)
    );
    assert_eq!(first.value("scrape_series_added"), Some(2.0));
    assert!(first.value("scrape_duration_seconds").is_some());
    let (up_labels, _, up_ts) = first.find("up").unwrap();
    assert_eq!(up_ts, ts);
    assert_eq!(
        up_labels.to_string(),
        format!(r#"{{__name__="up", env="test", instance="{addr}", job="app"}}"#)
    );

    // The request was Prometheus'.
    let request = exporter.requests.lock().unwrap()[0].clone();
    assert_eq!(request.get(header::ACCEPT).unwrap(), ACCEPT_HEADER);
    assert_eq!(request.get(header::ACCEPT_ENCODING).unwrap(), "gzip");
    assert_eq!(request.get(SCRAPE_TIMEOUT_HEADER).unwrap(), "0.1");

    // b vanishes: the first scrape without it marks it stale, at that scrape's timestamp.
    exporter.set(|e| e.body = "a 3\n".into());
    let batch = wait_for(&mut rx, None, "a=3", |b| b.value("a") == Some(3.0)).await;
    assert!(batch.is_stale("b"), "b should be marked stale");
    assert_eq!(batch.find("b").unwrap().2, batch.find("a").unwrap().2);
    assert_eq!(batch.value("scrape_series_added"), Some(0.0));

    // A failed scrape: up 0, a marked stale.
    exporter.set(|e| e.status = 500);
    let batch = wait_for(&mut rx, None, "up=0", |b| b.value("up") == Some(0.0)).await;
    assert!(
        batch.is_stale("a"),
        "a should be marked stale on a failed scrape"
    );
    let status = manager.targets();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].health, Health::Down);
    assert_eq!(
        status[0].last_error,
        "server returned HTTP status 500 Internal Server Error"
    );

    // Recovery, then the target goes away: its series and report series get markers.
    exporter.set(|e| {
        e.status = 200;
        e.body = "a 5\n".into();
    });
    wait_for(&mut rx, None, "a=5", |b| b.value("a") == Some(5.0)).await;
    let status = manager.targets();
    assert_eq!(status[0].health, Health::Up);
    assert_eq!(status[0].last_error, "");
    assert_eq!(status[0].scrape_url, format!("http://{addr}/metrics"));
    assert!(status[0].last_scrape.is_some());

    let (_, no_targets) = configs(
        "scrape_configs:\n  - job_name: app\n    scrape_interval: 100ms\n    static_configs: []\n",
    );
    manager.apply(global, no_targets).await.unwrap();
    assert!(manager.targets().is_empty());
    let batch = wait_for(&mut rx, None, "end-of-run markers", |b| b.is_stale("up")).await;
    assert!(batch.is_stale("a"));
    assert!(batch.is_stale("scrape_duration_seconds"));
    assert_eq!(batch.value("a"), None);
    manager.stop().await;
}

#[tokio::test]
async fn stop_writes_staleness_markers() {
    let (_exporter, addr) = Exporter::start("a 1\n").await;
    let (global, jobs) = configs(&format!(
        "scrape_configs: [{{job_name: app, scrape_interval: 100ms, static_configs: [{{targets: ['{addr}']}}]}}]"
    ));
    let (sink, mut rx) = channel_sink();
    let manager = ScrapeManager::start_with_options(global.clone(), jobs.clone(), sink, options())
        .await
        .unwrap();
    wait_for(&mut rx, None, "a=1", |b| b.value("a") == Some(1.0)).await;
    manager.stop().await;
    // stop returns once the markers are written: they are in the channel already.
    let mut saw_markers = false;
    while let Ok(batch) = rx.try_recv() {
        let batch = Batch::from(batch);
        if batch.is_stale("up") {
            assert!(batch.is_stale("a"));
            saw_markers = true;
        }
    }
    assert!(saw_markers, "stop wrote no staleness markers");
    assert!(matches!(
        manager.apply(global, jobs).await,
        Err(sightline_scrape::ManagerError::Stopped)
    ));
}

#[tokio::test]
async fn honor_labels_and_metric_relabeling() {
    let body = "m{job=\"theirs\",instance=\"i\"} 1\ngo_goroutines 7\nkeep 2\n";
    let (_exporter, addr) = Exporter::start(body).await;
    let (global, jobs) = configs(&format!(
        r#"
scrape_configs:
  - job_name: plain
    scrape_interval: 100ms
    static_configs: [{{targets: ['{addr}']}}]
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'go_.*'
        action: drop
  - job_name: honored
    scrape_interval: 100ms
    honor_labels: true
    static_configs: [{{targets: ['{addr}']}}]
"#
    ));
    let (sink, mut rx) = channel_sink();
    let manager = ScrapeManager::start_with_options(global, jobs, sink, options())
        .await
        .unwrap();

    let plain = wait_for(&mut rx, Some("plain"), "a scrape of plain", |b| {
        b.value("up") == Some(1.0)
    })
    .await;
    assert_eq!(
        plain.find("m").unwrap().0.to_string(),
        format!(
            r#"{{__name__="m", exported_instance="i", exported_job="theirs", instance="{addr}", job="plain"}}"#
        )
    );
    assert!(
        plain.find("go_goroutines").is_none(),
        "dropped by metric relabeling"
    );
    assert_eq!(plain.value("keep"), Some(2.0));
    assert_eq!(plain.value("scrape_samples_scraped"), Some(3.0));
    assert_eq!(
        plain.value("scrape_samples_post_metric_relabeling"),
        Some(2.0)
    );

    // With honor_labels the scraped job and instance win; the report series keep the
    // target's.
    let honored = wait_for(&mut rx, None, "a scrape of honored", |b| {
        b.find("up")
            .is_some_and(|r| r.0.get("job") == Some("honored"))
    })
    .await;
    assert_eq!(
        honored.find("m").unwrap().0.to_string(),
        r#"{__name__="m", instance="i", job="theirs"}"#
    );
    assert_eq!(honored.value("go_goroutines"), Some(7.0));
    manager.stop().await;
}

#[tokio::test]
async fn gzip_openmetrics_and_failures() {
    let (exporter, addr) = Exporter::start("").await;
    exporter.set(|e| {
        e.body = "# TYPE c counter\nc_total 4 1700000000.5\n# EOF\n".into();
        e.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
        e.gzip = true;
    });
    let (global, jobs) = configs(&format!(
        "scrape_configs: [{{job_name: app, scrape_interval: 250ms, scrape_timeout: 100ms, \
         body_size_limit: 1KB, static_configs: [{{targets: ['{addr}']}}]}}]"
    ));
    let (sink, mut rx) = channel_sink();
    let manager = ScrapeManager::start_with_options(global, jobs, sink, options())
        .await
        .unwrap();
    let batch = wait_for(&mut rx, None, "c_total", |b| b.value("c_total").is_some()).await;
    // OpenMetrics timestamps are seconds; an explicit timestamp is kept.
    assert_eq!(batch.find("c_total").unwrap().2, 1_700_000_000_500);

    // Over the body size limit (checked after decompression).
    exporter.set(|e| e.body = format!("big {}\n# EOF\n", "1".repeat(2000)));
    wait_until_error(&manager, "body size limit exceeded").await;

    // Slower than the timeout.
    exporter.set(|e| {
        e.body = "# EOF\n".into();
        e.delay = Duration::from_millis(400);
    });
    wait_until_error(&manager, "context deadline exceeded").await;

    // A body that does not parse.
    exporter.set(|e| {
        e.delay = Duration::ZERO;
        e.content_type = "text/plain";
        e.gzip = false;
        e.body = "a{ 1\n".into();
    });
    wait_until_error(&manager, "prometheus text line 1").await;
    let batch = wait_for(&mut rx, None, "up=0", |b| b.value("up") == Some(0.0)).await;
    assert_eq!(batch.value("scrape_samples_scraped"), Some(0.0));
    manager.stop().await;
}

/// Waits until the only target's last error contains `piece`.
async fn wait_until_error(manager: &ScrapeManager, piece: &str) {
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            let targets = manager.targets();
            if targets
                .first()
                .is_some_and(|t| t.last_error.contains(piece))
            {
                assert_eq!(targets[0].health, Health::Down);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no scrape error with {piece:?}: {:?}", manager.targets()));
}

#[tokio::test]
async fn file_sd_targets_come_and_go() {
    let (_exporter, addr) = Exporter::start("a 1\n").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    std::fs::write(
        &file,
        format!(r#"[{{"targets": ["{addr}"], "labels": {{"team": "x"}}}}]"#),
    )
    .unwrap();
    let (global, mut jobs) = configs(
        "scrape_configs:\n  - job_name: files\n    scrape_interval: 100ms\n    \
         file_sd_configs: [{files: ['*.json']}]\n    \
         relabel_configs: [{source_labels: [__meta_filepath], regex: '.*/(.*)', target_label: file}]\n",
    );
    jobs[0].set_directory(dir.path());
    let (sink, mut rx) = channel_sink();
    let manager = ScrapeManager::start_with_options(global, jobs, sink, options())
        .await
        .unwrap();

    let batch = wait_for(&mut rx, None, "a=1", |b| b.value("a") == Some(1.0)).await;
    let labels = &batch.find("a").unwrap().0;
    assert_eq!(labels.get("team"), Some("x"));
    assert_eq!(labels.get("file"), Some("targets.json"));
    let status = manager.targets();
    assert_eq!(status.len(), 1);
    assert_eq!(
        status[0].discovered_labels.get("__meta_filepath"),
        Some(file.display().to_string().as_str())
    );

    // A broken file keeps its targets.
    std::fs::write(&file, "[{").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    wait_for(&mut rx, None, "a scrape after the file broke", |b| {
        b.value("a").is_some()
    })
    .await;
    assert_eq!(manager.targets().len(), 1);

    // The target leaves the file: its series get markers.
    std::fs::write(&file, "[]").unwrap();
    let batch = wait_for(&mut rx, None, "end-of-run markers", |b| b.is_stale("up")).await;
    assert!(batch.is_stale("a"));
    assert!(manager.targets().is_empty());
    manager.stop().await;
}

#[tokio::test]
async fn reload_of_a_changed_job_hands_the_series_over() {
    let (exporter, addr) = Exporter::start("a 1\nb 2\n").await;
    let job = |interval: &str| {
        configs(&format!(
            "scrape_configs: [{{job_name: app, scrape_interval: {interval}, static_configs: [{{targets: ['{addr}']}}]}}]"
        ))
    };
    let (global, jobs) = job("100ms");
    let (sink, mut rx) = channel_sink();
    let manager = ScrapeManager::start_with_options(global, jobs, sink, options())
        .await
        .unwrap();
    wait_for(&mut rx, None, "a=1", |b| b.value("a") == Some(1.0)).await;

    // A new interval changes the target's labels (__scrape_interval__) but not its series:
    // the new loop takes the state over, writes no end-of-run markers, and still marks a
    // series that vanishes after the reload.
    let (global, jobs) = job("150ms");
    manager.apply(global, jobs).await.unwrap();
    assert_eq!(
        manager.targets()[0].scrape_interval,
        Duration::from_millis(150)
    );
    exporter.set(|e| e.body = "a 3\n".into());
    let batch = tokio::time::timeout(DEADLINE, async {
        loop {
            let batch = Batch::from(rx.recv().await.expect("the sink was dropped"));
            assert!(!batch.is_stale("up"), "the reload wrote end-of-run markers");
            if batch.value("a") == Some(3.0) {
                return batch;
            }
        }
    })
    .await
    .expect("a=3");
    assert!(batch.is_stale("b"));
    assert_eq!(batch.value("scrape_series_added"), Some(0.0));
    manager.stop().await;
}
