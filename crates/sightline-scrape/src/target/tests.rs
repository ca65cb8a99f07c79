//! Target building. Cases marked "2.42" reproduce what Prometheus 2.42's `/api/v1/targets`
//! showed for the same configuration.

use super::*;
use crate::config::GlobalConfig;

fn job(yaml: &str) -> ScrapeConfig {
    ScrapeConfig::from_yaml(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn build(config: &ScrapeConfig, discovered: &[(&str, &str)]) -> Result<TargetBuild, TargetError> {
    build_target(labels(discovered), config, &GlobalConfig::default())
}

/// Builds one target and checks its public labels and URL.
fn check(config: &ScrapeConfig, discovered: &[(&str, &str)], want_labels: &str, want_url: &str) {
    match build(config, discovered) {
        Ok(TargetBuild::Active(target)) => {
            assert_eq!(target.labels().to_string(), want_labels, "{discovered:?}");
            assert_eq!(target.url(), want_url, "{discovered:?}");
        }
        other => panic!("{discovered:?}: {other:?}"),
    }
}

#[test]
fn defaults_and_reserved_labels() {
    let config =
        job("{job_name: a, scrape_interval: 1h, static_configs: [{targets: ['127.0.0.1:9']}]}");
    let Ok(TargetBuild::Active(target)) =
        build(&config, &[("__address__", "127.0.0.1:9"), ("env", "x")])
    else {
        panic!()
    };
    // 2.42: discovered labels carry the job's settings.
    assert_eq!(
        target.discovered_labels().to_string(),
        r#"{__address__="127.0.0.1:9", __metrics_path__="/metrics", __scheme__="http", __scrape_interval__="1h", __scrape_timeout__="10s", env="x", job="a"}"#
    );
    assert_eq!(
        target.labels().to_string(),
        r#"{env="x", instance="127.0.0.1:9", job="a"}"#
    );
    assert_eq!(target.url(), "http://127.0.0.1:9/metrics");
    assert_eq!(target.interval(), Duration::from_secs(3600));
    assert_eq!(target.timeout(), Duration::from_secs(10));
}

#[test]
fn addresses_get_the_scheme_port() {
    let config = job("{job_name: b}");
    check(
        &config,
        &[("__address__", "host-a")],
        r#"{instance="host-a:80", job="b"}"#,
        "http://host-a:80/metrics",
    );
    check(
        &config,
        &[("__address__", "h:9100")],
        r#"{instance="h:9100", job="b"}"#,
        "http://h:9100/metrics",
    );
    check(
        &config,
        &[("__address__", "[::1]"), ("__scheme__", "https")],
        r#"{instance="[::1]:443", job="b"}"#,
        "https://[::1]:443/metrics",
    );
    check(
        &config,
        &[("__address__", "[::1]:9")],
        r#"{instance="[::1]:9", job="b"}"#,
        "http://[::1]:9/metrics",
    );
    // Go's SplitHostPort accepts an empty port: none is added.
    check(
        &config,
        &[("__address__", "h:")],
        r#"{instance="h:", job="b"}"#,
        "http://h:/metrics",
    );
    assert_eq!(
        build(&config, &[("__address__", "h"), ("__scheme__", "ftp")]),
        Err(TargetError::InvalidScheme("ftp".into()))
    );
    assert_eq!(build(&config, &[("env", "x")]), Err(TargetError::NoAddress));
    assert_eq!(
        build(&config, &[("__address__", "h:1/x")]),
        Err(TargetError::InvalidAddress("h:1/x".into()))
    );
}

#[test]
fn params_and_url() {
    // 2.42: `params` override a discovered __param_ label; every value reaches the URL.
    let config =
        job("{job_name: b, params: {module: [default], other: ['a b', c]}, metrics_path: /probe}");
    let Ok(TargetBuild::Active(target)) = build(
        &config,
        &[("__address__", "host-a"), ("__param_module", "m1")],
    ) else {
        panic!()
    };
    assert_eq!(target.all_labels().get("__param_module"), Some("default"));
    assert_eq!(target.all_labels().get("__param_other"), Some("a b"));
    assert_eq!(
        target.url(),
        "http://host-a:80/probe?module=default&other=a+b&other=c"
    );
    // A __param_ label set by relabeling replaces the first value, or adds a parameter.
    let config = job("{job_name: b, params: {module: [x, y]}, relabel_configs: [\
         {source_labels: [__address__], target_label: __param_target}, \
         {target_label: __param_module, replacement: 'http_2xx'}, \
         {target_label: __address__, replacement: 'prober:9115'}]}");
    check(
        &config,
        &[("__address__", "example.com/x?")],
        r#"{instance="prober:9115", job="b"}"#,
        "http://prober:9115/metrics?module=http_2xx&module=y&target=example.com%2Fx%3F",
    );
    // Paths are escaped as Go escapes them.
    let config = job("{job_name: b, metrics_path: '/a b/c;d'}");
    check(
        &config,
        &[("__address__", "h:1")],
        r#"{instance="h:1", job="b"}"#,
        "http://h:1/a%20b/c;d",
    );
}

#[test]
fn relabeling_targets() {
    // 2.42: the file_sd example (labelmap, drop, env removed, scheme by address).
    let config = job(r#"
job_name: b
relabel_configs:
  - action: labelmap
    regex: "__meta_(.*)"
    replacement: "m_$1"
  - source_labels: [__address__]
    regex: "host-b.*"
    action: drop
  - source_labels: [env]
    target_label: env
    replacement: ""
    regex: "prod"
  - action: labeldrop
    regex: "m_filepath"
"#);
    let group = TargetGroup {
        source: "targets.json:0".into(),
        targets: vec![
            labels(&[("__address__", "host-a")]),
            labels(&[("__address__", "host-b:9100")]),
        ],
        labels: labels(&[
            ("env", "prod"),
            ("__tmp_x", "t"),
            ("__meta_filepath", "targets.json"),
        ]),
    };
    let (built, errors) = targets_from_group(&group, &config, &GlobalConfig::default());
    assert!(errors.is_empty(), "{errors:?}");
    let [TargetBuild::Active(a), TargetBuild::Dropped(b)] = built.as_slice() else {
        panic!("{built:?}")
    };
    assert_eq!(a.labels().to_string(), r#"{instance="host-a:80", job="b"}"#);
    // Reserved labels other than __meta_* stay on the target, off its series.
    assert_eq!(a.all_labels().get("__tmp_x"), Some("t"));
    assert_eq!(a.all_labels().get("__meta_filepath"), None);
    assert_eq!(b.get("__address__"), Some("host-b:9100"));
    assert_eq!(b.get("__meta_filepath"), Some("targets.json"));
    // A target's own label wins over its group's.
    let group = TargetGroup {
        source: "static/0".into(),
        targets: vec![labels(&[("__address__", "h:1"), ("env", "own")])],
        labels: labels(&[("env", "group")]),
    };
    let (built, _) = targets_from_group(&group, &job("{job_name: j}"), &GlobalConfig::default());
    let [TargetBuild::Active(t)] = built.as_slice() else {
        panic!()
    };
    assert_eq!(t.labels().get("env"), Some("own"));
    // instance set by relabeling is kept.
    let config =
        job("{job_name: j, relabel_configs: [{target_label: instance, replacement: mine}]}");
    check(
        &config,
        &[("__address__", "h:1")],
        r#"{instance="mine", job="j"}"#,
        "http://h:1/metrics",
    );
}

#[test]
fn per_target_interval_and_timeout() {
    let config = job("{job_name: j, scrape_interval: 30s, relabel_configs: [\
         {source_labels: [slow], regex: 'yes', target_label: __scrape_interval__, replacement: 2m}]}");
    let Ok(TargetBuild::Active(t)) = build(&config, &[("__address__", "h:1"), ("slow", "yes")])
    else {
        panic!()
    };
    assert_eq!(t.interval(), Duration::from_secs(120));
    assert_eq!(t.timeout(), Duration::from_secs(10));
    let check_err = |value: &str, want: TargetError| {
        let config = job(&format!(
            "{{job_name: j, relabel_configs: [{{target_label: __scrape_timeout__, replacement: '{value}'}}]}}"
        ));
        assert_eq!(
            build(&config, &[("__address__", "h:1")]),
            Err(want),
            "{value}"
        );
    };
    check_err("0s", TargetError::ZeroTimeout);
    check_err(
        "2m",
        TargetError::TimeoutOverInterval {
            timeout: "2m".into(),
            interval: "1m".into(),
        },
    );
    check_err(
        "soon",
        TargetError::BadTimeout("not a valid duration string: \"soon\"".into()),
    );
}

#[test]
fn errors_name_the_group_and_instance() {
    let group = TargetGroup {
        source: "static/3".into(),
        targets: vec![labels(&[("__address__", "h:1")]), labels(&[("x", "1")])],
        labels: Labels::default(),
    };
    let (built, errors) =
        targets_from_group(&group, &job("{job_name: j}"), &GlobalConfig::default());
    assert_eq!(built.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "instance 1 in group static/3: no address"
    );
}

#[test]
fn go_split_host_port() {
    let check = |text: &str, want: Option<&str>| assert_eq!(split_host_port(text), want, "{text}");
    check("h:80", Some("80"));
    check("[::1]:80", Some("80"));
    check("h", None);
    check("::1", None);
    check("[::1]", None);
    check("[::1]x:80", None);
    check("h]:80", None);
    check("h:", Some(""));
}
