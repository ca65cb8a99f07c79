use super::*;

use crate::silence::SilenceMatcher;

fn config(dir: &Path) -> AlertingConfig {
    let groups = crate::rules::parse(
        "groups:\n  - name: g\n    rules:\n      - alert: Slow\n        expr: up == 0\n        for: 1h\n",
        "rules.yml",
        Duration::from_secs(1),
    )
    .expect("rules");
    AlertingConfig {
        evaluation_interval: Duration::from_secs(1),
        groups,
        state_dir: dir.to_path_buf(),
        ..AlertingConfig::default()
    }
}

#[tokio::test]
async fn pending_alerts_and_silences_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Alerting::new(config(dir.path()), AlertMetrics::default()).expect("alerting");
    {
        let mut g = lock(&a.groups[0]);
        g.rules[0].alerts.update(
            1_000,
            vec![Active {
                labels: Labels::from_pairs([("alertname", "Slow"), ("instance", "a")]),
                annotations: vec![],
                value: 0.0,
            }],
            Duration::from_secs(3_600),
            Duration::ZERO,
        );
    }
    let now = chrono::Utc::now();
    let id = a
        .upsert_silence(Silence {
            id: String::new(),
            matchers: vec![SilenceMatcher {
                name: "alertname".into(),
                value: "Slow".into(),
                is_regex: false,
                is_equal: true,
            }],
            starts_at: now,
            ends_at: now + chrono::Duration::hours(1),
            created_by: "test".into(),
            comment: String::new(),
        })
        .await
        .expect("silence");
    a.save().expect("save");
    drop(a);

    let b = Alerting::new(config(dir.path()), AlertMetrics::default()).expect("restart");
    let g = lock(&b.groups[0]);
    let alert = g.rules[0].alerts.active().next().expect("restored alert");
    assert_eq!(alert.state, AlertState::Pending);
    assert_eq!(
        alert.active_at_ms, 1_000,
        "`for` keeps counting from the first activation"
    );
    assert!(lock(&b.silences).get(&id).is_some());
}

#[test]
fn an_unreadable_state_file_starts_afresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(STATE_FILE), b"{not json").expect("write");
    let a = Alerting::new(config(dir.path()), AlertMetrics::default()).expect("alerting");
    assert_eq!(lock(&a.groups[0]).rules[0].alerts.all().count(), 0);
    assert!(dir.path().join("state.json.bad").exists(), "kept aside");
}
