"""Sightline scrapes a `prometheus_client` service itself (`scrape_configs` in Prometheus'
own format): static and file_sd targets, target labels, relabel_configs (replace, labelmap),
metric_relabel_configs (drop, keep), the `up`/`scrape_*` series, exemplars and metadata from
the OpenMetrics exposition, and staleness when the target dies: `up` turns 0 and its series
vanish from instant queries at once, as in Prometheus."""

from __future__ import annotations

import json
import time

import pytest
import requests

from conftest import parse_metrics, wait_until
from metrics_helpers import Child, children, cli, prom_ok, start_demo_service, vector  # noqa: F401 (fixture)

CONFIG = r"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: pyapp
    static_configs:
      - targets: ["{target}"]
        labels:
          env: test
          team: obs
    relabel_configs:
      - source_labels: [__address__]
        regex: '127\.0\.0\.1:(\d+)'
        target_label: port
        replacement: '$1'
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: demo_temperature_celsius
        action: drop
  - job_name: pyapp_file
    scrape_interval: 1s
    file_sd_configs:
      - files: ["{sd_file}"]
        refresh_interval: 1s
    relabel_configs:
      - regex: __meta_(filepath)
        replacement: sd_$1
        action: labelmap
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: demo_queue_length|demo_build_info
        action: keep
"""


def exposed_samples(addr: str) -> int:
    """How many samples the demo service exposes (what `scrape_samples_scraped` counts)."""
    text = requests.get(f"http://{addr}/metrics", timeout=5).text
    return len(parse_metrics(text))


def test_scrape_configs(server_factory, children: list[Child], tmp_path):  # noqa: F811 (fixture)
    service, target = start_demo_service(children, tmp_path, static=True)
    sd_file = tmp_path / "targets.json"
    sd_file.write_text(json.dumps([{"targets": [target], "labels": {"source": "file"}}]))
    config = CONFIG.replace("{target}", target).replace("{sd_file}", str(sd_file))
    cfg_path = tmp_path / "scrape.yaml"
    cfg_path.write_text(config)
    p = cli("check", "config", str(cfg_path))
    if p.returncode != 0 and ("unknown field" in p.stderr and ("scrape_configs" in p.stderr or "global" in p.stderr)):
        pytest.skip(f"this server does not take scrape_configs yet: {p.stderr.strip()}")
    assert p.returncode == 0, f"check config refused a Prometheus scrape config:\n{p.stderr}"

    server = server_factory().start(tmp_path / "data", config_yaml=config)
    port = target.rsplit(":", 1)[1]

    up = wait_until(
        lambda: vector(server.url, 'up{job="pyapp"} == 1') or None, 20, "up{job=\"pyapp\"} == 1 (Sightline scraping the demo service)"
    )
    assert len(up) == 1, up
    assert up[0]["metric"] == {"__name__": "up", "job": "pyapp", "instance": target, "env": "test", "team": "obs", "port": port}, up

    dur = vector(server.url, 'scrape_duration_seconds{job="pyapp"}')
    assert len(dur) == 1 and 0 < float(dur[0]["value"][1]) < 1, dur
    assert dur[0]["metric"]["port"] == port and dur[0]["metric"]["env"] == "test", dur
    want = exposed_samples(target)
    scraped = vector(server.url, 'scrape_samples_scraped{job="pyapp"}')
    assert [s["value"][1] for s in scraped] == [str(want)], f"scrape_samples_scraped: {scraped}, the service exposes {want}"

    reqs = vector(server.url, 'demo_requests_total{job="pyapp"}')
    assert len(reqs) == 6 and all(s["metric"]["env"] == "test" and s["metric"]["port"] == port for s in reqs), reqs
    assert vector(server.url, 'demo_temperature_celsius{job="pyapp"}') == [], "metric_relabel_configs drop must drop it"
    info = vector(server.url, 'demo_build_info{job="pyapp"}')
    assert [(s["metric"]["version"], s["metric"]["commit"], s["value"][1]) for s in info] == [("1.2.3", "abc123", "1")], info

    # The file_sd job: its target's labels, labelmap of __meta_filepath, metric_relabel keep.
    wait_until(lambda: vector(server.url, 'up{job="pyapp_file"} == 1') or None, 15, 'up{job="pyapp_file"} == 1')
    q = vector(server.url, 'demo_queue_length{job="pyapp_file"}')
    assert len(q) == 1 and q[0]["metric"].get("source") == "file" and q[0]["metric"].get("sd_filepath") == str(sd_file), q
    assert vector(server.url, 'demo_requests_total{job="pyapp_file"}') == [], "metric_relabel_configs keep must drop the rest"
    assert len(vector(server.url, 'demo_build_info{job="pyapp_file"}')) == 1

    # Values are the service's: the queue is (7 n) mod 23, a whole number below 23.
    v = float(vector(server.url, 'demo_queue_length{job="pyapp"}')[0]["value"][1])
    assert v == int(v) and 0 <= v < 23, v

    # Exemplars and metadata come with the OpenMetrics exposition.
    now = time.time()
    ex = prom_ok(server.get("/api/v1/query_exemplars", params={"query": 'demo_request_duration_seconds_bucket{job="pyapp"}', "start": now - 60, "end": now + 1}))
    assert ex and all(e["labels"].get("trace_id") for x in ex for e in x["exemplars"]), ex
    meta = prom_ok(server.get("/api/v1/metadata"))
    assert meta.get("demo_queue_length", [{}])[0].get("type") == "gauge", meta
    assert meta.get("demo_request_duration_seconds", [{}])[0].get("type") == "histogram", meta

    # A few scrapes more, then the target dies: `up` turns 0, and its series go stale at once.
    wait_until(
        lambda: [s for s in vector(server.url, 'count_over_time(up{job="pyapp"}[1m]) >= 3')],
        10,
        "three scrapes",
    )
    service.kill9()
    wait_until(lambda: vector(server.url, 'up{job="pyapp"} == 0') or None, 10, 'up{job="pyapp"} == 0 after the target died')
    wait_until(lambda: vector(server.url, 'up{job="pyapp_file"} == 0') or None, 10, 'up{job="pyapp_file"} == 0')
    gone_at = time.time()
    for q in ('demo_requests_total{job="pyapp"}', '{job="pyapp", __name__=~"demo_.*"}', 'demo_queue_length{job="pyapp_file"}'):
        assert vector(server.url, q, gone_at) == [], f"{q} must be stale once up is 0"
    time.sleep(2)
    assert vector(server.url, '{__name__=~"demo_.*"}') == [], "stale series stay gone"
    assert [s["value"][1] for s in vector(server.url, 'up{job="pyapp"}')] == ["0"]
    # The samples before the death are still there.
    (n,) = vector(server.url, 'count_over_time(demo_queue_length{job="pyapp"}[1m])')
    assert float(n["value"][1]) >= 3, n
