//! Configuration parsing and validation. Messages marked "2.42" are those `promtool check
//! config` of Prometheus 2.42 prints for the same file.

use super::*;

/// Parses a whole file; `want` is `Ok(())` or a piece of the error message.
fn check(yaml: &str, want: Result<(), &str>) {
    let got = PrometheusConfig::from_yaml(yaml);
    match (got, want) {
        (Ok(_), Ok(())) => {}
        (Err(e), Err(piece)) => assert!(e.to_string().contains(piece), "{yaml}\n{e}"),
        (got, want) => panic!("{yaml}\ngot {got:?}, want {want:?}"),
    }
}

#[test]
fn defaults() {
    let config = PrometheusConfig::from_yaml(
        "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['h:1']}]\n",
    )
    .unwrap();
    assert_eq!(config.global, GlobalConfig::default());
    let job = &config.scrape_configs[0];
    assert_eq!(job.interval(&config.global), Duration::from_secs(60));
    assert_eq!(job.timeout(&config.global), Duration::from_secs(10));
    assert_eq!(job.metrics_path, "/metrics");
    assert_eq!(job.scheme, "http");
    assert!(job.honor_timestamps);
    assert!(!job.honor_labels);
    assert!(job.follow_redirects);
    assert_eq!(job.static_configs[0].targets, ["h:1"]);

    // A job interval shorter than the global timeout caps its timeout.
    let config = PrometheusConfig::from_yaml(
        "global: {scrape_interval: 15s}\nscrape_configs: [{job_name: a, scrape_interval: 5s}]",
    )
    .unwrap();
    let job = &config.scrape_configs[0];
    assert_eq!(job.timeout(&config.global), Duration::from_secs(5));
    assert_eq!(config.global.scrape_timeout, Duration::from_secs(10));
    // The global timeout is capped by the global interval.
    let config = PrometheusConfig::from_yaml("global: {scrape_interval: 5s}").unwrap();
    assert_eq!(config.global.scrape_timeout, Duration::from_secs(5));
}

#[test]
fn full_job() {
    let yaml = r#"
global:
  scrape_interval: 15s
  scrape_timeout: 5s
  evaluation_interval: 30s
  external_labels: {cluster: eu-1}
rule_files: [rules.yml]
scrape_configs:
  - job_name: node
    scrape_interval: 1m30s
    scrape_timeout: 20s
    metrics_path: /probe
    scheme: https
    params: {module: [http_2xx]}
    honor_labels: true
    honor_timestamps: false
    sample_limit: 1000
    target_limit: 10
    label_limit: 30
    label_name_length_limit: 100
    label_value_length_limit: 200
    body_size_limit: 10MB
    follow_redirects: false
    enable_http2: false
    static_configs:
      - targets: ['a:9100', 'b:9100']
        labels: {env: prod, port: 9100}
    file_sd_configs:
      - files: ['targets/*.json', 'more.yml']
        refresh_interval: 1m
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_.*
        action: drop
"#;
    let config = PrometheusConfig::from_yaml(yaml).unwrap();
    assert_eq!(config.global.scrape_interval, Duration::from_secs(15));
    assert_eq!(config.global.evaluation_interval, Duration::from_secs(30));
    assert_eq!(config.global.external_labels.get("cluster"), Some("eu-1"));
    let job = &config.scrape_configs[0];
    assert_eq!(job.scrape_interval, Some(Duration::from_secs(90)));
    assert_eq!(job.timeout(&config.global), Duration::from_secs(20));
    assert_eq!(job.params["module"], ["http_2xx"]);
    assert!(job.honor_labels && !job.honor_timestamps && !job.follow_redirects);
    assert_eq!(
        (job.sample_limit, job.target_limit, job.label_limit),
        (1000, 10, 30)
    );
    assert_eq!(job.body_size_limit, Some(10 * 1024 * 1024));
    assert_eq!(job.static_configs[0].labels["port"], "9100");
    assert_eq!(
        job.file_sd_configs[0].refresh_interval,
        Duration::from_secs(60)
    );
    assert_eq!(job.relabel_configs.len(), 1);
    assert_eq!(job.metric_relabel_configs.len(), 1);
}

#[test]
fn refusals() {
    let job = |body: &str| format!("scrape_configs:\n  - job_name: a\n{body}");
    check(
        &job("    scrape_interval: 1.5s\n"),
        Err("not a valid duration string: \"1.5s\""),
    ); // 2.42
    check(
        &job("    scrape_interval: 10s\n    scrape_timeout: 20s\n"),
        Err(
            "scrape timeout greater than scrape interval for scrape config with job name \"a\"", // 2.42
        ),
    );
    check(
        "global: {scrape_interval: 10s, scrape_timeout: 20s}",
        Err("global scrape timeout greater than scrape interval"),
    );
    check(
        "scrape_configs: [{job_name: a}, {job_name: a}]",
        Err("found multiple scrape configs with job name \"a\""), // 2.42
    );
    check("scrape_configs: [{job_name: ''}]", Err("job_name is empty"));
    check(
        "scrape_configs: [{scrape_interval: 1s}]",
        Err("missing field `job_name`"),
    );
    check(
        "scrape_configs: [null]",
        Err("empty or null scrape config section"),
    );
    check(
        &job("    static_configs: [{targets: ['localhost:1/x']}]\n"),
        Err(
            "\"localhost:1/x\" is not a valid hostname", // 2.42
        ),
    );
    // With relabeling a URL-like target may be fixed later (blackbox exporter style).
    check(
        &job(
            "    static_configs: [{targets: ['http://x/y']}]\n    relabel_configs: [{target_label: __address__, replacement: 'p:1'}]\n",
        ),
        Ok(()),
    );
    check(
        &job(
            "    relabel_configs:\n      - source_labels: [a]\n        action: foo\n        target_label: x\n",
        ),
        Err("unknown relabel action \"foo\""),
    );
    check(
        &job("    relabel_configs:\n      -\n"),
        Err("empty or null relabeling rule"),
    ); // 2.42
    check(
        &job("    metric_relabel_configs: [{source_labels: [a], regex: '((', target_label: x}]\n"),
        Err("invalid relabel regex"),
    );
    check(
        &job("    scrape_intervall: 1m\n"),
        Err("unknown field `scrape_intervall`"),
    );
    check(
        &job("    static_configs: [{targets: [a], label: {x: y}}]\n"),
        Err("unknown field `label`"),
    );
    check(
        &job("    static_configs: [{targets: [a], labels: {1x: y}}]\n"),
        Err("\"1x\" is not a valid label name"),
    );
    check(
        "global: {external_labels: {a-b: x}}",
        Err("\"a-b\" is not a valid label name"),
    );
    check(
        "global: {evaluation_intervall: 1m}",
        Err("unknown field `evaluation_intervall`"),
    );
    check(
        &job("    kubernetes_sd_configs: [{role: pod}]\n"),
        Err(
            "job \"a\": kubernetes_sd_configs is not supported: Sightline discovers targets through static_configs and file_sd_configs only",
        ),
    );
    check(
        &job("    basic_auth: {username: u, password: p}\n"),
        Err("job \"a\": basic_auth is not supported"),
    );
    check(
        &job("    file_sd_configs: [{files: ['t.txt']}]\n"),
        Err("path name \"t.txt\" is not valid for file discovery"),
    );
    check(
        &job("    file_sd_configs: [{files: ['*/t.json']}]\n"),
        Err("is not valid for file discovery"),
    );
    check(
        &job("    file_sd_configs: [{files: []}]\n"),
        Err("file service discovery config must contain at least one path name"),
    );
    check(
        &job("    body_size_limit: 10\n"),
        Err("body_size_limit: \"10\" has no unit"),
    );
    // Errors say where.
    check(
        &job("    relabel_configs: [{action: nope}]\n"),
        Err("line 3"),
    );
}

#[test]
fn accepted_as_prometheus_accepts() {
    let job = |body: &str| format!("scrape_configs:\n  - job_name: a\n{body}");
    check(&job("    scheme: ftp\n"), Ok(())); // 2.42 accepts it (the target then fails)
    check(
        &job("    relabel_configs:\n    metric_relabel_configs:\n"),
        Ok(()),
    );
    check(
        &job("    file_sd_configs: [{files: ['dir/t-*.yml', 'x.JSON']}]\n"),
        Ok(()),
    );
    check(&job("    body_size_limit: 0\n"), Ok(()));
    check("global:\nscrape_configs:\n", Ok(()));
    check(
        "alerting: {alertmanagers: []}\nremote_write: [{url: 'http://x'}]\n",
        Ok(()),
    );
}

#[test]
fn file_sd_paths_resolve_against_the_config_directory() {
    let mut job = ScrapeConfig::from_yaml(
        "{job_name: a, file_sd_configs: [{files: ['t/*.json', '/abs/x.yml']}]}",
    )
    .unwrap();
    job.set_directory(Path::new("/etc/sightline"));
    assert_eq!(
        job.file_sd_configs[0].files,
        ["/etc/sightline/t/*.json", "/abs/x.yml"]
    );
}

#[test]
fn sizes() {
    let check = |text: &str, want: Result<u64, ()>| {
        assert_eq!(parse_bytes(text).map_err(|_| ()), want, "{text}");
    };
    check("0", Ok(0));
    check("512B", Ok(512));
    check("10KB", Ok(10 * 1024));
    check("10KiB", Ok(10 * 1024));
    check("3MB", Ok(3 << 20));
    check("1GB", Ok(1 << 30));
    check("10", Err(()));
    check("MB", Err(()));
    check("1.5MB", Err(()));
}
