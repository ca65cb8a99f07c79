"""SLOs, alerting rules, notifications, probes and silences end to end (docs/alerting.md).

The real server scrapes a `prometheus_client` service that fails exactly 5% of its requests on
demand, turns that into SLIs, burn rates and SLO alerts, and sends them to a webhook receiver
and to a real Alertmanager (Debian's `prometheus-alertmanager`, which `.ci/run` installs), whose
own webhook goes to the same receiver. Evaluation and scraping run every second; SLO windows
are made of per-minute buckets of the real clock, so the waits are generous.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind, Status, StatusCode

from alerting_helpers import (  # noqa: F401 (fixtures)
    FAST_S,
    LATENCY_THRESHOLD,
    SLOW_S,
    Alertmanager,
    FlakyService,
    WebhookReceiver,
    alertmanager,
    alerts_of,
    api_data,
    assert_webhook_v4,
    flaky,
    get_alerts,
    get_rule_groups,
    get_slo,
    get_slos,
    load_loops,
    poll,
    rfc3339,
    webhook,
)
from conftest import HTTP_TIMEOUT_S, Server, clean_env, free_ports, metric_value, now_ns, sightline_bin, wait_until
from metrics_helpers import CLI_TIMEOUT_S, cli, ok, vector
from traces_helpers import MS, otel_tracer

SCRAPE_BASE = """\
global:
  evaluation_interval: 1s
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: flaky
    static_configs:
      - targets: ["{target}"]
"""


def base_config(target: str | None = None) -> str:
    """The global section (evaluation and scrapes every second), and a scrape job `flaky`
    for `target` if given."""
    if target is None:
        return "global:\n  evaluation_interval: 1s\n  scrape_interval: 1s\n"
    return SCRAPE_BASE.replace("{target}", target)


def availability_slo(name: str, objective: float = 99.9) -> str:
    return f"""\
  - name: {name}
    objective: {objective}
    min_events: 10
    sli:
      errors: 'http_requests_total{{job="flaky",code=~"5.."}}'
      total: 'http_requests_total{{job="flaky"}}'
"""


def wait_scraped(server: Server, timeout_s: float = 30) -> None:
    wait_until(lambda: vector(server.url, 'up{job="flaky"} == 1') or None, timeout_s, 'up{job="flaky"} == 1')


def in_range(v, lo: float, hi: float) -> bool:
    return v is not None and lo <= float(v) <= hi


def is_page(alert: dict, slo: str) -> bool:
    lab = alert.get("labels") or {}
    return lab.get("alertname") == "SLOBurnRateHigh" and lab.get("severity") == "page" and lab.get("slo") == slo


# ----------------------------------------------------------------------------- a. SLO from counters, notified


@pytest.mark.timeout(720)
def test_slo_burn_rate_page_alert_webhook_and_alertmanager(
    server_factory, flaky: FlakyService, webhook: WebhookReceiver, alertmanager: Alertmanager, load_loops
):
    name = "flaky-availability"
    config = (
        base_config(flaky.addr)
        + "slos:\n"
        + availability_slo(name)
        + f"""\
notifiers:
  - name: hook
    type: webhook
    url: {webhook.url("/hook")}
    group_by: [alertname, slo, severity]
    group_wait: 1s
    group_interval: 1s
    repeat_interval: 1h
  - name: am
    type: alertmanager
    url: {alertmanager.url}
    resend_delay: 1s
"""
    )
    srv = server_factory()
    srv.start(srv.work_dir / "data", config_yaml=config)
    wait_scraped(srv)

    flaky.set_errors(True)
    load = load_loops(f"http://{flaky.addr}/work", 50)
    time.sleep(15)

    def good_numbers(s: dict) -> bool:
        br = s.get("burn_rates") or {}
        return in_range(s.get("sli"), 94, 96) and in_range(br.get("5m"), 40, 60) and in_range(br.get("1h"), 40, 60)

    slo = poll(lambda: get_slo(srv, name), good_numbers, 90, f"SLO {name}: sli 94-96 and burn rates 5m/1h 40-60")
    assert slo["name"] == name, slo
    assert slo["objective"] == pytest.approx(99.9), slo
    assert slo.get("budgeting", "occurrences") == "occurrences", slo
    ev = slo["events"]
    assert ev["total"] > 0 and 0 <= ev["good"] <= ev["total"], ev
    assert 100 * ev["good"] / ev["total"] == pytest.approx(slo["sli"], abs=0.5), slo
    budget = slo["error_budget"]
    assert budget["total_minutes"] == pytest.approx(43.2), f"99.9% over the default 30d is 43.2 minutes: {budget}"
    assert budget["exhausted"] is (budget["used_minutes"] >= budget["total_minutes"]), budget
    assert budget["remaining_minutes"] == pytest.approx(budget["total_minutes"] - budget["used_minutes"], rel=1e-6, abs=1e-6), budget
    assert set(slo["burn_rates"]) >= {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}, slo["burn_rates"]
    assert any(s["name"] == name for s in get_slos(srv))

    # The page alert fires: /api/v1/alerts, and the SLO's rule group in /api/v1/rules.
    pages = poll(lambda: get_alerts(srv, alertname="SLOBurnRateHigh"), lambda al: [a for a in al if is_page(a, name) and a.get("state") == "firing"],
                 30, "SLOBurnRateHigh{severity=page} firing in /api/v1/alerts")  # fmt: skip
    assert any(is_page(a, name) and a["state"] == "firing" for a in pages), pages
    groups = get_rule_groups(srv)
    assert f"slo:{name}" in [g.get("name") for g in groups], f"SLO alerts appear as a group slo:{name}: {[g.get('name') for g in groups]}"

    # Errors off now (the alert stays firing for minutes: its windows still hold the errors);
    # the shorter the error phase, the sooner the long windows recover.
    flaky.set_errors(False)
    errors_off_at = time.time()

    # Sightline's webhook notifier: Alertmanager's webhook JSON v4.
    body = webhook.wait_for(
        lambda b: alerts_of(b, "firing", alertname="SLOBurnRateHigh", severity="page", slo=name), 60,
        "a firing SLOBurnRateHigh{severity=page} notification from the webhook notifier", path="/hook",
    )  # fmt: skip
    assert_webhook_v4(body)
    assert body["status"] == "firing", body
    (alert,) = alerts_of(body, "firing", alertname="SLOBurnRateHigh", severity="page", slo=name)
    assert alert["annotations"].get("summary"), f"an SLO alert has a summary: {alert}"
    assert alert["annotations"].get("description"), f"an SLO alert has a description: {alert}"

    # The alertmanager notifier: the real Alertmanager holds it, and notifies its own webhook.
    def am_pages(alerts: list[dict]) -> list[dict]:
        return [a for a in alerts if is_page(a, name) and (a.get("status") or {}).get("state") == "active"]

    poll(alertmanager.alerts, am_pages, 60, "the page alert in Alertmanager's GET /api/v2/alerts")
    body = webhook.wait_for(
        lambda b: alerts_of(b, "firing", alertname="SLOBurnRateHigh", severity="page", slo=name), 60,
        "Alertmanager's own webhook notification of the page alert", path="/am",
    )  # fmt: skip
    assert_webhook_v4(body)

    # Recovery, with the load still running. The page alert also holds on burn(6h) > 6 and
    # burn(30m) > 6, i.e. until the error ratio since the start is below 0.6%: about 8 times
    # as long as the error phase lasted.
    assert load.sent > 0 and flaky.counts()["total"] > 0
    body = webhook.wait_for(
        lambda b: b["status"] == "resolved" and alerts_of(b, "resolved", alertname="SLOBurnRateHigh", severity="page", slo=name),
        420, "a resolved notification of the page alert", path="/hook", since=errors_off_at,
    )  # fmt: skip
    assert_webhook_v4(body)
    poll(lambda: get_alerts(srv, alertname="SLOBurnRateHigh"), lambda al: not [a for a in al if is_page(a, name)],
         30, "the page alert to leave /api/v1/alerts")  # fmt: skip
    assert load.failures == 0, f"the flaky service failed to answer {load.failures} requests"


# ----------------------------------------------------------------------------- b. latency SLO


def test_latency_slo_from_histogram(server_factory, flaky: FlakyService, load_loops):
    name = "flaky-latency"
    assert FAST_S <= LATENCY_THRESHOLD < SLOW_S
    config = base_config(flaky.addr) + f"""\
slos:
  - name: {name}
    objective: 99
    sli:
      latency: {{metric: http_request_duration_seconds, threshold: {LATENCY_THRESHOLD}, selector: '{{job="flaky"}}'}}
"""
    srv = server_factory()
    srv.start(srv.work_dir / "data", config_yaml=config)
    wait_scraped(srv)
    load = load_loops(f"http://{flaky.addr}/work", 50)
    time.sleep(10)
    load.stop()
    counts = flaky.counts()
    assert counts["total"] >= 100, counts
    want = 100 * counts["fast"] / counts["total"]  # 90% within the threshold, by construction

    def agrees(s: dict) -> bool:
        return s["events"]["total"] >= 0.9 * counts["total"] and s["sli"] is not None and abs(s["sli"] - want) <= 1.0

    slo = poll(lambda: get_slo(srv, name), agrees, 60, f"the latency SLI to agree with the service's own ratio {want:.2f}%")
    assert slo["events"]["total"] <= counts["total"], (slo["events"], counts)
    assert slo["events"]["good"] <= slo["events"]["total"], slo["events"]
    assert abs(slo["sli"] - want) <= 1.0, (slo["sli"], want, counts)


# ----------------------------------------------------------------------------- c. Prometheus rule files


RULES = """\
groups:
  - name: gauge-rules
    interval: 1s
    rules:
      - record: job:queue_depth:doubled
        expr: queue_depth * 2
      - alert: QueueDeep
        expr: queue_depth > 5
        for: 2s
        labels:
          severity: warning
        annotations:
          summary: '{{ $labels.instance }} is {{ $value }}'
"""


def push_gauge(server: Server, value: float) -> None:
    text = f'queue_depth{{instance="host-a",job="batch"}} {value:g}\n'
    r = server.post("/api/v1/import/prometheus", headers={"Content-Type": "text/plain; version=0.0.4"}, data=text.encode())
    assert r.status_code in (200, 204), f"import: {r.status_code} {r.text}"


def test_rule_file_alerting_and_recording(server_factory):
    srv = server_factory()
    (srv.work_dir / "rules").mkdir(parents=True, exist_ok=True)
    (srv.work_dir / "rules" / "queue.yml").write_text(RULES)
    # The config is written to srv.work_dir, so `rules/queue.yml` is relative to it.
    srv.start(srv.work_dir / "data", config_yaml=base_config() + "rule_files: [rules/queue.yml]\n")

    def shaped(groups: list[dict]) -> bool:
        g = [g for g in groups if g.get("name") == "gauge-rules"]
        return bool(g) and all(r.get("health") == "ok" for r in g[0]["rules"])

    groups = poll(lambda: get_rule_groups(srv), shaped, 20, "the rule group gauge-rules, evaluated (health ok)")
    (group,) = [g for g in groups if g["name"] == "gauge-rules"]
    assert str(group.get("file", "")).endswith("queue.yml"), group
    assert group.get("interval") == 1, group
    rules = {r["name"]: r for r in group["rules"]}
    assert set(rules) == {"job:queue_depth:doubled", "QueueDeep"}, rules
    rec, alert = rules["job:queue_depth:doubled"], rules["QueueDeep"]
    assert rec["type"] == "recording" and rec["query"].replace(" ", "") == "queue_depth*2", rec
    assert alert["type"] == "alerting" and alert["state"] == "inactive", alert
    assert alert["duration"] == 2 and alert["labels"] == {"severity": "warning"}, alert
    assert alert["annotations"] == {"summary": "{{ $labels.instance }} is {{ $value }}"}, alert
    assert isinstance(alert.get("alerts"), list), alert
    for r in (rec, alert):
        assert r["health"] == "ok" and "lastEvaluation" in r and "evaluationTime" in r, r

    pushed_at = time.time()
    push_gauge(srv, 7)
    states: list[str] = []
    deadline = time.monotonic() + 30
    firing = None
    while time.monotonic() < deadline:
        al = get_alerts(srv, alertname="QueueDeep")
        states += [a["state"] for a in al if not states or states[-1] != a["state"]]
        if al and al[0]["state"] == "firing":
            firing = al[0]
            break
        time.sleep(0.05)
    assert firing, f"QueueDeep never fired; states seen: {states}\n{srv.log_tail()}"
    fired_after = time.time() - pushed_at
    if "pending" not in states:  # a slow poll can miss two seconds: the ALERTS series kept it
        seen = vector(srv.url, 'max_over_time(ALERTS{alertname="QueueDeep",alertstate="pending"}[5m])')
        assert seen, f"QueueDeep must go pending before firing; states seen {states}"
    else:
        assert states.index("pending") < states.index("firing"), states
    assert fired_after >= 1.5, f"for: 2s, but firing {fired_after:.2f}s after the push"
    assert firing["labels"] == {"alertname": "QueueDeep", "instance": "host-a", "job": "batch", "severity": "warning"}, firing
    assert firing["annotations"] == {"summary": "host-a is 7"}, firing
    assert firing.get("activeAt"), firing
    assert float(firing["value"]) == 7, firing

    (rec_v,) = poll(lambda: vector(srv.url, "job:queue_depth:doubled"), lambda v: len(v) == 1 and v[0]["value"][1] == "14", 15,
                    "the recording rule's output, 14")  # fmt: skip
    assert rec_v["metric"] == {"__name__": "job:queue_depth:doubled", "instance": "host-a", "job": "batch"}, rec_v
    (al_v,) = vector(srv.url, 'ALERTS{alertname="QueueDeep",alertstate="firing"}')
    assert al_v["value"][1] == "1", al_v
    rule = [r for g in get_rule_groups(srv) if g["name"] == "gauge-rules" for r in g["rules"] if r["name"] == "QueueDeep"][0]
    assert rule["state"] == "firing" and len(rule["alerts"]) == 1, rule

    push_gauge(srv, 0)
    poll(lambda: get_alerts(srv, alertname="QueueDeep"), lambda al: al == [], 20, "QueueDeep to resolve once the gauge is 0")
    poll(lambda: vector(srv.url, "job:queue_depth:doubled"), lambda v: len(v) == 1 and v[0]["value"][1] == "0", 15,
         "the recording rule's output, 0")  # fmt: skip


# ----------------------------------------------------------------------------- d. probes


def test_probes_and_probe_slo(server_factory, webhook: WebhookReceiver):
    (closed,) = free_ports(1)  # nothing listens there
    config = base_config() + f"""\
probes:
  - name: live
    url: {webhook.url("/health/live")}
    interval: 1s
    timeout: 1s
  - name: dead
    url: http://127.0.0.1:{closed}/health/live
    interval: 1s
    timeout: 1s
slos:
  - name: live-up
    objective: 99
    sli:
      probe: live
"""
    srv = server_factory()
    srv.start(srv.work_dir / "data", config_yaml=config)

    def one(q: str, want: str) -> bool:
        v = vector(srv.url, q)
        return len(v) == 1 and v[0]["value"][1] == want

    poll(lambda: None, lambda _: one('probe_success{probe="live"}', "1"), 20, 'probe_success{probe="live"} == 1')
    poll(lambda: None, lambda _: one('probe_success{probe="dead"}', "0"), 20, 'probe_success{probe="dead"} == 0')
    poll(lambda: None, lambda _: one('probe_http_status_code{probe="live"}', "200"), 20, 'probe_http_status_code{probe="live"} == 200')
    assert "/health/live" in webhook.gets, "the probe must have hit the live URL"

    probes = api_data(srv.get("/api/v1/probes"), "GET /api/v1/probes")
    if isinstance(probes, dict):  # {name: result} or {probes: [...]}
        probes = probes.get("probes") or [{"name": k, **(v if isinstance(v, dict) else {})} for k, v in probes.items()]
    assert {"live", "dead"} <= {p.get("name") for p in probes}, probes

    slo = poll(lambda: get_slo(srv, "live-up"), lambda s: s["events"]["total"] >= 2, 20, "probe runs counted by the SLO live-up")
    assert slo["sli"] == pytest.approx(100), slo
    assert slo["events"]["good"] == slo["events"]["total"], slo


# ----------------------------------------------------------------------------- e. span SLI


def test_span_slo_counts_exactly(server_factory):
    name = "orders-spans"
    config = base_config() + f"""\
slos:
  - name: {name}
    objective: 99.5
    sli:
      spans: {{service: orders, operation: "POST /api/orders", max_duration: 500ms}}
"""
    srv = server_factory()
    srv.start(srv.work_dir / "data", config_yaml=config)

    # (duration ms, error, count) of `POST /api/orders` spans of service orders.
    counted = [(120, False, 30), (500, False, 2), (800, False, 5), (40, True, 6), (900, True, 2)]
    total = sum(n for _, _, n in counted)
    good = sum(n for ms, err, n in counted if not err and ms <= 500)
    assert (total, good) == (45, 32)

    def emit(tracer, op: str, ms: int, err: bool, i: int) -> None:
        start = (now_ns() - 30_000 * MS) // 1000 * 1000 + i * MS
        span = tracer.start_span(op, kind=SpanKind.SERVER, start_time=start)
        if err:
            span.set_status(Status(StatusCode.ERROR, "failed"))
        span.end(end_time=start + ms * MS)

    i = 0
    with otel_tracer(srv, service="orders") as tracer:
        for ms, err, n in counted:
            for _ in range(n):
                emit(tracer, "POST /api/orders", ms, err, i)
                i += 1
        # Another operation of the same service: ignored.
        for ms, err in [(100, False), (900, False), (50, True), (700, True)] * 2:
            emit(tracer, "GET /api/orders", ms, err, i)
            i += 1
    # The same operation of another service: ignored.
    with otel_tracer(srv, service="payments") as tracer:
        for ms, err in [(100, False), (900, True), (60, False)]:
            emit(tracer, "POST /api/orders", ms, err, i)
            i += 1

    slo = poll(lambda: get_slo(srv, name), lambda s: s["events"]["total"] >= total, 30, f"{total} spans counted")
    time.sleep(2)  # nothing more may come
    slo = get_slo(srv, name)
    assert (slo["events"]["total"], slo["events"]["good"]) == (total, good), f"want total {total}, good {good}: {slo}"
    assert slo["sli"] == pytest.approx(100 * good / total, abs=1e-3), slo


# ----------------------------------------------------------------------------- f. bad definitions


BAD_CASES = {
    # name: (config, {relative path: text}, the file named, its line, reasons (any of))
    "objective": (
        "slos:\n  - name: too-high\n    objective: 120\n    sli:\n      errors: 'x_total{code=\"500\"}'\n      total: 'x_total'\n",
        {},
        "config.yaml",
        3,
        ("objective", "100"),
    ),
    "selector": (
        "slos:\n  - name: bad-selector\n    objective: 99\n    sli:\n      errors: 'sum(x_total{code=\"500\"}'\n      total: 'x_total'\n",
        {},
        "config.yaml",
        5,
        ("parse", "unexpected", "unclosed", "expected", "invalid", "promql", "syntax"),
    ),
    "rule": (
        "rule_files: [rules/bad.yml]\n",
        {"rules/bad.yml": "groups:\n  - name: bad\n    rules:\n      - alert: Broken\n        expr: 'rate(up[5m]'\n        for: 1m\n"},
        "bad.yml",
        5,
        ("parse", "unexpected", "unclosed", "expected", "invalid", "promql", "syntax"),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_definitions_refused(tmp_path: Path, case: str):
    config, extra, named, line, reasons = BAD_CASES[case]
    cfg = tmp_path / "config.yaml"
    cfg.write_text(config)
    for rel, text in extra.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)

    p = cli("check", "config", str(cfg))
    assert p.returncode != 0, f"check config passed a bad {case}:\n{p.stdout}\n{p.stderr}"
    err = p.stderr
    assert named in err, f"the error must name the file {named}: {err}"
    assert re.search(rf"\bline {line}\b", err), f"the error must name line {line}: {err}"
    assert any(r in err.lower() for r in reasons), f"the error must say why ({reasons}): {err}"

    http_port, grpc_port = free_ports(2)
    try:
        p = subprocess.run(
            [sightline_bin(), "serve", "--http-addr", f"127.0.0.1:{http_port}", "--grpc-addr", f"127.0.0.1:{grpc_port}",
             "--data-dir", str(tmp_path / "data"), "--config", str(cfg)],
            capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=clean_env(),
        )  # fmt: skip
    except subprocess.TimeoutExpired:  # run() has killed it by then
        pytest.fail(f"serve with a bad {case} did not exit within {CLI_TIMEOUT_S}s")
    assert p.returncode != 0, f"serve started with a bad {case}:\n{p.stderr}"
    assert named in p.stderr and re.search(rf"\bline {line}\b", p.stderr), p.stderr


# ----------------------------------------------------------------------------- g. a notifier that is down


@pytest.mark.timeout(300)
def test_notifier_down_does_not_stop_evaluation(server_factory, flaky: FlakyService, webhook: WebhookReceiver, load_loops):
    name = "flaky-availability"
    (closed,) = free_ports(1)
    config = (
        base_config(flaky.addr)
        + "slos:\n"
        + availability_slo(name)
        + f"""\
notifiers:
  - name: down
    type: webhook
    url: http://127.0.0.1:{closed}/hook
    group_wait: 1s
    group_interval: 1s
    timeout: 1s
  - name: live
    type: webhook
    url: {webhook.url("/hook")}
    group_wait: 1s
    group_interval: 1s
"""
    )
    srv = server_factory()
    srv.start(srv.work_dir / "data", config_yaml=config)
    wait_scraped(srv)
    flaky.set_errors(True)
    load_loops(f"http://{flaky.addr}/work", 50)

    webhook.wait_for(lambda b: alerts_of(b, "firing", slo=name), 90, "a firing SLO alert at the live notifier", path="/hook")
    samples = poll(srv.metrics, lambda s: (metric_value(s, "sightline_notifications_failed_total", notifier="down") or 0) > 0, 60,
                   'sightline_notifications_failed_total{notifier="down"} > 0')  # fmt: skip
    assert (metric_value(samples, "sightline_notifications_total", notifier="live") or 0) > 0, "the live notifier's sends are counted"
    assert not metric_value(samples, "sightline_notifications_failed_total", notifier="live"), "the live notifier never failed"

    # Evaluation goes on while the down notifier is retried.
    before = get_slo(srv, name)["events"]["total"]
    poll(lambda: get_slo(srv, name), lambda s: s["events"]["total"] > before + 50, 20, "the SLO's events to keep growing")
    assert srv.get("/health/ready").status_code == 200


# ----------------------------------------------------------------------------- h. silences and the CLI


ALWAYS_ON = """\
groups:
  - name: always
    interval: 1s
    rules:
      - alert: AlwaysOn
        expr: vector(1)
        labels:
          severity: info
"""


@pytest.mark.timeout(240)
def test_silences_and_slo_status_cli(server_factory, webhook: WebhookReceiver):
    srv = server_factory()
    (srv.work_dir / "rules").mkdir(parents=True, exist_ok=True)
    (srv.work_dir / "rules" / "always.yml").write_text(ALWAYS_ON)
    config = base_config() + f"""\
rule_files: [rules/always.yml]
probes:
  - name: receiver
    url: {webhook.url("/health/live")}
    interval: 1s
slos:
  - name: receiver-up
    objective: 99
    sli:
      probe: receiver
notifiers:
  - name: hook
    type: webhook
    url: {webhook.url("/hook")}
    group_wait: 1s
    group_interval: 1s
    repeat_interval: 1s
"""
    srv.start(srv.work_dir / "data", config_yaml=config)

    def firing(b) -> list:
        return alerts_of(b, "firing", alertname="AlwaysOn")

    # Notified, and notified again (repeat_interval 1s): without a silence they keep coming.
    webhook.wait_for(firing, 30, "a firing AlwaysOn notification", path="/hook")
    first = time.time()
    webhook.wait_for(firing, 30, "a repeated AlwaysOn notification", path="/hook", since=first)

    now = time.time()
    silence = {
        "matchers": [{"name": "alertname", "value": "AlwaysOn", "isRegex": False, "isEqual": True}],
        "startsAt": rfc3339(now - 1),
        "endsAt": rfc3339(now + 3600),
        "createdBy": "integration-test",
        "comment": "silenced by the test",
    }
    created = api_data(srv.post("/api/v1/silences", json=silence), "POST /api/v1/silences")
    sid = created.get("silenceID") or created.get("id")
    assert sid, f"the new silence's id (Alertmanager: silenceID): {created}"

    listed = api_data(srv.get("/api/v1/silences"), "GET /api/v1/silences")
    mine = [s for s in listed if s.get("id") == sid]
    assert len(mine) == 1, listed
    assert mine[0]["status"]["state"] == "active", mine
    assert [(m["name"], m["value"]) for m in mine[0]["matchers"]] == [("alertname", "AlwaysOn")], mine
    assert mine[0]["createdBy"] == "integration-test" and mine[0]["comment"] == "silenced by the test", mine

    time.sleep(3)  # a notification already on its way may still land
    quiet_from = time.time()
    time.sleep(6)
    late = [b for b in webhook.bodies("/hook", since=quiet_from) if b and firing(b)]
    assert late == [], f"notifications of a silenced alert: {late}"
    assert [a["state"] for a in get_alerts(srv, alertname="AlwaysOn")] == ["firing"], "a silenced alert still fires"

    r = srv.http.delete(f"{srv.url}/api/v1/silence/{sid}", timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, f"DELETE /api/v1/silence/{sid}: {r.status_code} {r.text}"
    listed = api_data(srv.get("/api/v1/silences"), "GET /api/v1/silences")
    assert all(s["status"]["state"] == "expired" for s in listed if s.get("id") == sid), listed
    expired_at = time.time()
    webhook.wait_for(firing, 30, "AlwaysOn notifications again once the silence expired", path="/hook", since=expired_at)

    # The command line's SLO table.
    poll(lambda: get_slo(srv, "receiver-up"), lambda s: s["events"]["total"] >= 1, 20, "a probe run counted")
    out = ok(cli("slo", "status", "--server", srv.url)).stdout
    assert [line for line in out.splitlines() if "receiver-up" in line], f"`slo status` must list receiver-up:\n{out}"
