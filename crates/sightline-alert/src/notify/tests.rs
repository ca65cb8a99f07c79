use super::*;

use crate::state::{Active, AlertSet};

fn notifier(yaml: &str) -> Notifier {
    let cfg: NotifierConfig = serde_yaml::from_str(yaml).expect("notifier config");
    Notifier::new(
        cfg,
        AlertMetrics::default(),
        "http://sightline",
        Duration::from_secs(1),
    )
}

fn offered(set: &AlertSet) -> Vec<Offered> {
    set.all()
        .map(|a| Offered {
            alert: a.clone(),
            generator_url: "http://sightline/api/v1/rules".into(),
        })
        .collect()
}

fn fire(set: &mut AlertSet, now: i64, names: &[&str]) {
    let results = names
        .iter()
        .map(|n| Active {
            labels: Labels::from_pairs([("alertname", "A"), ("instance", *n)]),
            annotations: vec![("summary".into(), format!("{n} down"))],
            value: 1.0,
        })
        .collect();
    set.update(now, results, Duration::ZERO, Duration::ZERO);
}

const NONE: &dyn Fn(&Labels) -> bool = &|_| false;

#[test]
fn groups_wait_then_repeat_and_resolve() {
    let n = notifier(
        "name: w\ntype: webhook\nurl: http://127.0.0.1:1/\ngroup_wait: 1s\ngroup_interval: 2s\nrepeat_interval: 10s\n",
    );
    let mut set = AlertSet::default();
    fire(&mut set, 0, &["a", "b"]);
    n.offer(&offered(&set), NONE, 0);
    assert!(n.due(500).is_empty(), "group_wait");
    let due = n.due(1_000);
    assert_eq!(due.len(), 1);
    let body = &due[0].body;
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["groupLabels"]["alertname"], "A");
    assert_eq!(body["commonLabels"]["alertname"], "A");
    assert!(body["commonLabels"].get("instance").is_none());
    assert_eq!(body["alerts"].as_array().map(Vec::len), Some(2));
    assert!(n.due(1_100).is_empty(), "in flight");
    n.sent(&due[0], true, 1_000);
    assert!(
        n.due(2_000).is_empty(),
        "unchanged: waits for repeat_interval"
    );
    // One resolves: due after group_interval, listed as resolved, then forgotten.
    fire(&mut set, 2_500, &["a"]);
    n.offer(&offered(&set), NONE, 2_500);
    let due = n.due(3_000);
    assert_eq!(due.len(), 1);
    let statuses: Vec<&str> = due[0].body["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["status"].as_str())
        .collect();
    assert_eq!(statuses, ["firing", "resolved"]);
    n.sent(&due[0], true, 3_000);
    assert!(n.due(5_000).is_empty());
    assert_eq!(n.due(13_000).len(), 1, "repeat_interval");
}

#[test]
fn a_failed_send_is_retried_later_and_silences_drop_alerts() {
    let n = notifier(
        "name: w\ntype: webhook\nurl: http://127.0.0.1:1/\ngroup_wait: 0s\ngroup_interval: 1s\n",
    );
    let mut set = AlertSet::default();
    fire(&mut set, 0, &["a"]);
    n.offer(&offered(&set), NONE, 0);
    let due = n.due(0);
    n.sent(&due[0], false, 0);
    assert!(n.due(500).is_empty());
    assert_eq!(n.due(1_000).len(), 1);
    let m = notifier("name: s\ntype: slack\nurl: http://127.0.0.1:1/\ngroup_wait: 0s\n");
    m.offer(
        &offered(&set),
        &|l: &Labels| l.get("instance") == Some("a"),
        0,
    );
    assert!(m.due(0).is_empty(), "silenced");
}

#[test]
fn alertmanager_gets_each_alert_and_resends() {
    let n = notifier("name: am\ntype: alertmanager\nurl: http://127.0.0.1:1\nresend_delay: 5s\n");
    let mut set = AlertSet::default();
    fire(&mut set, 0, &["a"]);
    n.offer(&offered(&set), NONE, 0);
    let due = n.due(0);
    let alerts = due[0].body.as_array().expect("array");
    assert_eq!(alerts[0]["labels"]["instance"], "a");
    // endsAt is four resend delays ahead.
    assert_eq!(alerts[0]["endsAt"], rfc3339(20_000));
    n.sent(&due[0], true, 0);
    assert!(n.due(1_000).is_empty());
    assert_eq!(n.due(5_000).len(), 1, "resent");
    let due = n.due(5_000);
    assert!(due.is_empty(), "in flight until answered");
    fire(&mut set, 6_000, &[]);
    n.offer(&offered(&set), NONE, 6_000);
    n.pending.lock().expect("lock").am_next_try_ms = 0;
    let due = n.due(6_000);
    assert_eq!(due[0].body[0]["endsAt"], rfc3339(6_000), "resolved");
}

#[test]
fn pagerduty_triggers_and_resolves_with_one_dedup_key() {
    let n =
        notifier("name: pd\ntype: pagerduty\nrouting_key: k\ngroup_wait: 0s\ngroup_interval: 0s\n");
    let mut set = AlertSet::default();
    fire(&mut set, 0, &["a"]);
    n.offer(&offered(&set), NONE, 0);
    let due = n.due(0);
    assert_eq!(due[0].body["event_action"], "trigger");
    assert_eq!(due[0].body["routing_key"], "k");
    let key = due[0].body["dedup_key"].clone();
    n.sent(&due[0], true, 0);
    fire(&mut set, 1_000, &[]);
    n.offer(&offered(&set), NONE, 1_000);
    let due = n.due(1_000);
    assert_eq!(due[0].body["event_action"], "resolve");
    assert_eq!(due[0].body["dedup_key"], key);
}

#[test]
fn a_resolved_alert_is_sent_once() {
    let n = notifier(
        "name: w\ntype: webhook\nurl: http://127.0.0.1:1/\ngroup_wait: 0s\ngroup_interval: 0s\n",
    );
    let mut set = AlertSet::default();
    fire(&mut set, 0, &["a"]);
    n.offer(&offered(&set), NONE, 0);
    let due = n.due(0);
    n.sent(&due[0], true, 0);
    fire(&mut set, 1_000, &[]);
    n.offer(&offered(&set), NONE, 1_000);
    let due = n.due(1_000);
    assert_eq!(due[0].body["status"], "resolved");
    n.sent(&due[0], true, 1_000);
    // Later evaluations still hold the resolved alert (for 15 minutes): no new notification.
    fire(&mut set, 2_000, &[]);
    n.offer(&offered(&set), NONE, 2_000);
    assert!(n.due(2_000).is_empty());
}

#[test]
fn an_alert_resolved_after_a_restart_is_still_sent_resolved_once() {
    // The alert fired before this notifier started (a previous run sent it).
    let n = notifier(
        "name: w\ntype: webhook\nurl: http://127.0.0.1:1/\ngroup_wait: 0s\ngroup_interval: 0s\n",
    );
    let mut set = AlertSet::default();
    fire(&mut set, 0, &["a"]);
    fire(&mut set, 1_000, &[]);
    n.offer(&offered(&set), NONE, 1_000);
    let due = n.due(1_000);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].body["status"], "resolved");
    n.sent(&due[0], true, 1_000);
    n.offer(&offered(&set), NONE, 2_000);
    assert!(n.due(2_000).is_empty(), "told once");
}
