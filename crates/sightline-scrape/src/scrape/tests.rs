//! One scrape's output, without a network: the parser's output goes straight into
//! [`SeriesState::process`].

use std::time::Duration;

use sightline_ingest::prom_text;
use sightline_model::{Labels, is_stale_nan};

use super::append::{NO_TIMESTAMP, SeriesState, attach_target_labels};
use super::*;
use crate::config::{GlobalConfig, ScrapeConfig};
use crate::target::{TargetBuild, build_target};

fn job(yaml: &str) -> ScrapeConfig {
    ScrapeConfig::from_yaml(yaml).unwrap()
}

fn target_labels() -> Labels {
    Labels::from_pairs([("instance", "h:1"), ("job", "j")])
}

/// Runs one scrape of `body` (or a failure) at `ts` and renders its series as sorted
/// `labels value@ts` lines, `stale` for markers.
fn scrape(
    state: &mut SeriesState,
    config: &ScrapeConfig,
    body: Result<&str, &str>,
    ts: i64,
) -> (Vec<String>, Option<String>) {
    let decoded = body.map_err(str::to_string).and_then(|b| {
        prom_text::parse(b.as_bytes(), None, NO_TIMESTAMP).map_err(|e| e.to_string())
    });
    let out = state.process(
        config,
        &target_labels(),
        decoded,
        ts,
        Duration::from_millis(5),
    );
    let mut lines: Vec<String> = out
        .series
        .iter()
        .flat_map(|s| {
            s.samples.iter().map(move |sample| {
                let value = if is_stale_nan(sample.value) {
                    "stale".to_string()
                } else {
                    sample.value.to_string()
                };
                format!("{} {value}@{}", s.labels, sample.timestamp_ms)
            })
        })
        .filter(|line| !line.contains("scrape_duration_seconds"))
        .collect();
    lines.sort();
    (lines, out.error)
}

fn report(up: u8, scraped: u64, post: u64, added: u64, ts: i64) -> Vec<String> {
    let t = r#"instance="h:1", job="j""#;
    vec![
        format!("{{__name__=\"scrape_samples_post_metric_relabeling\", {t}}} {post}@{ts}"),
        format!("{{__name__=\"scrape_samples_scraped\", {t}}} {scraped}@{ts}"),
        format!("{{__name__=\"scrape_series_added\", {t}}} {added}@{ts}"),
        format!("{{__name__=\"up\", {t}}} {up}@{ts}"),
    ]
}

fn with(mut lines: Vec<&str>, report: Vec<String>) -> Vec<String> {
    let mut all: Vec<String> = lines.drain(..).map(str::to_string).chain(report).collect();
    all.sort();
    all
}

#[test]
fn samples_get_target_labels_and_staleness_follows_series() {
    let config = job("{job_name: j}");
    let mut state = SeriesState::default();
    let (lines, error) = scrape(&mut state, &config, Ok("a 1\nb{x=\"1\"} 2\n"), 1000);
    assert_eq!(error, None);
    assert_eq!(
        lines,
        with(
            vec![
                r#"{__name__="a", instance="h:1", job="j"} 1@1000"#,
                r#"{__name__="b", instance="h:1", job="j", x="1"} 2@1000"#,
            ],
            report(1, 2, 2, 2, 1000)
        )
    );
    // b vanished: a marker at this scrape's timestamp; c is new.
    let (lines, _) = scrape(&mut state, &config, Ok("a 3\nc 4\n"), 2000);
    assert_eq!(
        lines,
        with(
            vec![
                r#"{__name__="a", instance="h:1", job="j"} 3@2000"#,
                r#"{__name__="b", instance="h:1", job="j", x="1"} stale@2000"#,
                r#"{__name__="c", instance="h:1", job="j"} 4@2000"#,
            ],
            report(1, 2, 2, 1, 2000)
        )
    );
    // A failed scrape: up 0 and markers for every series of the last successful one.
    let (lines, error) = scrape(&mut state, &config, Err("connection refused"), 3000);
    assert_eq!(error.as_deref(), Some("connection refused"));
    assert_eq!(
        lines,
        with(
            vec![
                r#"{__name__="a", instance="h:1", job="j"} stale@3000"#,
                r#"{__name__="c", instance="h:1", job="j"} stale@3000"#,
            ],
            report(0, 0, 0, 0, 3000)
        )
    );
    // A second failure has nothing left to mark; recovery counts nothing as added (the
    // series were seen in the last successful scrape).
    let (lines, _) = scrape(&mut state, &config, Err("connection refused"), 4000);
    assert_eq!(lines, report(0, 0, 0, 0, 4000));
    let (lines, _) = scrape(&mut state, &config, Ok("a 5\n"), 5000);
    assert_eq!(
        lines,
        with(
            vec![r#"{__name__="a", instance="h:1", job="j"} 5@5000"#],
            report(1, 1, 1, 0, 5000)
        )
    );
    // End of run: every tracked series and the report series.
    let markers = state.end_of_run_markers(&target_labels(), 6000);
    let mut names: Vec<&str> = markers
        .iter()
        .map(|s| s.labels.get("__name__").unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "a",
            "scrape_duration_seconds",
            "scrape_samples_post_metric_relabeling",
            "scrape_samples_scraped",
            "scrape_series_added",
            "up"
        ]
    );
    assert!(
        markers
            .iter()
            .all(|s| is_stale_nan(s.samples[0].value) && s.samples[0].timestamp_ms == 6000)
    );
    assert!(state.end_of_run_markers(&target_labels(), 7000).is_empty());
}

#[test]
fn explicit_timestamps() {
    let mut state = SeriesState::default();
    let config = job("{job_name: j}");
    let (lines, _) = scrape(&mut state, &config, Ok("a 1 500\nb 2\n"), 1000);
    assert!(lines.contains(&r#"{__name__="a", instance="h:1", job="j"} 1@500"#.to_string()));
    // a had its own timestamp: it gets no marker when it vanishes; b does.
    let (lines, _) = scrape(&mut state, &config, Ok(""), 2000);
    assert_eq!(
        lines,
        with(
            vec![r#"{__name__="b", instance="h:1", job="j"} stale@2000"#],
            report(1, 0, 0, 0, 2000)
        )
    );
    // honor_timestamps: false uses the scrape's timestamp, and tracks the series.
    let config = job("{job_name: j, honor_timestamps: false}");
    let mut state = SeriesState::default();
    let (lines, _) = scrape(&mut state, &config, Ok("a 1 500\n"), 1000);
    assert!(lines.contains(&r#"{__name__="a", instance="h:1", job="j"} 1@1000"#.to_string()));
    let (lines, _) = scrape(&mut state, &config, Ok(""), 2000);
    assert!(lines.contains(&r#"{__name__="a", instance="h:1", job="j"} stale@2000"#.to_string()));
}

#[test]
fn honor_labels() {
    let scraped = Labels::from_pairs([
        ("__name__", "m"),
        ("job", "theirs"),
        ("exported_job", "x"),
        ("instance", "i2"),
    ]);
    let target = Labels::from_pairs([("instance", "h:1"), ("job", "j")]);
    assert_eq!(
        attach_target_labels(scraped.clone(), &target, false).to_string(),
        r#"{__name__="m", exported_exported_job="theirs", exported_instance="i2", exported_job="x", instance="h:1", job="j"}"#
    );
    assert_eq!(
        attach_target_labels(scraped, &target, true).to_string(),
        r#"{__name__="m", exported_job="x", instance="i2", job="theirs"}"#
    );
    let plain = Labels::from_pairs([("__name__", "m"), ("a", "1")]);
    assert_eq!(
        attach_target_labels(plain, &target, false).to_string(),
        r#"{__name__="m", a="1", instance="h:1", job="j"}"#
    );
}

#[test]
fn metric_relabeling_and_limits() {
    let config = job(
        "{job_name: j, metric_relabel_configs: [{source_labels: [__name__], regex: 'go_.*', action: drop}]}",
    );
    let mut state = SeriesState::default();
    let (lines, _) = scrape(&mut state, &config, Ok("go_x 1\nkeep 2\n"), 1000);
    assert_eq!(
        lines,
        with(
            vec![r#"{__name__="keep", instance="h:1", job="j"} 2@1000"#],
            report(1, 2, 1, 1, 1000)
        )
    );
    // sample_limit counts after relabeling; over it the scrape fails and marks the rest.
    let config = job(
        "{job_name: j, sample_limit: 2, metric_relabel_configs: [{source_labels: [__name__], regex: 'go_.*', action: drop}]}",
    );
    let mut state = SeriesState::default();
    let (_, error) = scrape(&mut state, &config, Ok("go_x 1\na 1\nb 2\n"), 1000);
    assert_eq!(error, None);
    let (lines, error) = scrape(&mut state, &config, Ok("a 1\nb 2\nc 3\n"), 2000);
    assert_eq!(
        error.as_deref(),
        Some("sample limit exceeded (3 samples after metric relabeling, limit 2)")
    );
    assert_eq!(
        lines,
        with(
            vec![
                r#"{__name__="a", instance="h:1", job="j"} stale@2000"#,
                r#"{__name__="b", instance="h:1", job="j"} stale@2000"#,
            ],
            report(0, 3, 3, 0, 2000)
        )
    );
    // Relabeling away __name__ fails the scrape.
    let config =
        job("{job_name: j, metric_relabel_configs: [{action: labeldrop, regex: __name__}]}");
    let (_, error) = scrape(&mut SeriesState::default(), &config, Ok("a 1\n"), 1000);
    assert_eq!(
        error.as_deref(),
        Some("missing metric name (__name__ label)")
    );
    let config = job("{job_name: j, label_limit: 3}");
    let (_, error) = scrape(
        &mut SeriesState::default(),
        &config,
        Ok("a{x=\"1\"} 1\n"),
        1000,
    );
    assert_eq!(
        error.as_deref(),
        Some("label_limit exceeded (metric: a, number of labels: 4, limit: 3)")
    );
    let config = job("{job_name: j, label_value_length_limit: 3}");
    let (_, error) = scrape(
        &mut SeriesState::default(),
        &config,
        Ok("a{x=\"long\"} 1\n"),
        1000,
    );
    assert!(
        error
            .unwrap()
            .starts_with("label_value_length_limit exceeded")
    );
}

#[test]
fn parse_errors_fail_the_scrape() {
    let config = job("{job_name: j}");
    let mut state = SeriesState::default();
    scrape(&mut state, &config, Ok("a 1\n"), 1000);
    let (lines, error) = scrape(&mut state, &config, Ok("a{ 1\n"), 2000);
    assert!(error.unwrap().contains("line 1"));
    assert!(lines.contains(&r#"{__name__="a", instance="h:1", job="j"} stale@2000"#.to_string()));
}

#[test]
fn duplicate_samples_keep_the_first() {
    let config = job("{job_name: j, metric_relabel_configs: [{action: labeldrop, regex: x}]}");
    let mut state = SeriesState::default();
    let (lines, _) = scrape(
        &mut state,
        &config,
        Ok("a{x=\"1\"} 1\na{x=\"2\"} 2\n"),
        1000,
    );
    assert_eq!(
        lines,
        with(
            vec![r#"{__name__="a", instance="h:1", job="j"} 1@1000"#],
            report(1, 2, 2, 1, 1000)
        )
    );
}

#[test]
fn metadata_only_when_it_changes() {
    let config = job("{job_name: j}");
    let mut state = SeriesState::default();
    let body = "# TYPE a counter\na_total 1\n";
    let run = |state: &mut SeriesState, body: &str| {
        let decoded =
            prom_text::parse(body.as_bytes(), None, NO_TIMESTAMP).map_err(|e| e.to_string());
        state
            .process(&config, &target_labels(), decoded, 1, Duration::ZERO)
            .metadata
            .len()
    };
    assert_eq!(run(&mut state, body), 1);
    assert_eq!(run(&mut state, body), 0);
    assert_eq!(run(&mut state, "# TYPE a gauge\na 1\n"), 1);
}

#[test]
fn offsets_are_deterministic_and_within_the_interval() {
    let config = job("{job_name: j, scrape_interval: 10s}");
    let target = |address: &str| {
        let labels = Labels::from_pairs([("__address__", address)]);
        match build_target(labels, &config, &GlobalConfig::default()) {
            Ok(TargetBuild::Active(t)) => t,
            other => panic!("{other:?}"),
        }
    };
    let (a, b) = (target("a:1"), target("b:1"));
    let seed = jitter_seed(&Labels::from_pairs([("cluster", "x")]), "host");
    let now_ns = 1_700_000_000_123_456_789;
    let offset_a = scrape_offset(&a, seed, now_ns);
    assert_eq!(offset_a, scrape_offset(&a, seed, now_ns));
    assert!(offset_a <= Duration::from_secs(10));
    assert_ne!(offset_a, scrape_offset(&b, seed, now_ns));
    // The phase is fixed: waiting the offset lands on the same point of the grid.
    let phase = |now: u64, offset: Duration| (now + offset.as_nanos() as u64) % 10_000_000_000;
    let later = now_ns + 3_333_333_333;
    assert_eq!(
        phase(now_ns, offset_a),
        phase(later, scrape_offset(&a, seed, later))
    );
}

#[test]
fn prometheus_hashes() {
    // Reference values of Go's xxhash.Sum64 and fnv-1a 64.
    assert_eq!(labels_hash(&Labels::default()), 0xef46_db37_51d8_e999);
    assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
}
