"""Metrics in and out: OTLP (HTTP and gRPC, from the OpenTelemetry Python SDK), remote write,
the text import with and without timestamps, the series/labels/metadata/exemplar APIs, bad
input (each a 4xx naming the problem, the server still alive), durability across kill -9,
and the `sightline import prometheus` and `sightline metrics query` commands."""

from __future__ import annotations

import math
import re
import struct
import time

import pytest
import requests

from conftest import Server, metric_value, wait_until
from metrics_helpers import (
    cli,
    ok,
    prom_get,
    prom_ok,
    remote_write,
    snappy_block,
    values_by_labels,
    vector,
    write_request,
)

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
SPARK_BARS = "▁▂▃▄▅▆▇█"


def now_ms() -> int:
    return int(time.time() * 1000)


def assert_alive(server: Server) -> None:
    r = server.get("/health/live")
    assert r.status_code == 200, f"/health/live after bad input: {r.status_code} {r.text}\n{server.log_tail()}"


def import_text(server: Server, text: str, content_type: str = "text/plain; version=0.0.4", tenant: str | None = None) -> dict:
    r = server.post("/api/v1/import/prometheus", tenant=tenant, headers={"Content-Type": content_type}, data=text.encode())
    assert r.status_code == 200, f"import: {r.status_code} {r.text}"
    return r.json()


# ----------------------------------------------------------------------------- OTLP


def otel_send(server: Server, protocol: str, service: str) -> None:
    """A counter, a histogram (explicit buckets) and a gauge from the Python SDK, exported
    once over `protocol` ("http" or "grpc")."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, ExponentialBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource

    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=f"{server.url}/v1/metrics", timeout=10)
    else:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=server.grpc_addr, insecure=True, timeout=10)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create(
        {"service.name": service, "service.namespace": "shop", "service.instance.id": "inst-1", "deployment.environment": "test"}
    )
    views = [
        View(instrument_name="otel.latency", aggregation=ExplicitBucketHistogramAggregation([0.1, 0.5, 1.0])),
        View(instrument_name="otel.payload", aggregation=ExponentialBucketHistogramAggregation(max_size=20)),
    ]
    provider = MeterProvider(resource=resource, metric_readers=[reader], views=views)
    try:
        meter = provider.get_meter("sightline.tests")
        counter = meter.create_counter("otel.requests", description="Requests handled.")
        counter.add(5, {"http.route": "/a"})
        counter.add(2, {"http.route": "/b"})
        counter.add(1, {"http.route": "/a"})
        hist = meter.create_histogram("otel.latency", unit="s", description="Latency.")
        for v in (0.05, 0.3, 0.7, 2.0):
            hist.record(v, {"http.route": "/a"})
        payload = meter.create_histogram("otel.payload", unit="By", description="Payload sizes.")
        for v in (3, 10, 10, 250, 1000):
            payload.record(v)
        gauge = meter.create_gauge("otel.queue.depth", unit="By", description="Queue depth.")
        gauge.set(42, {"queue": "q1"})
        assert provider.force_flush(timeout_millis=15_000), "the SDK could not export"
    finally:
        provider.shutdown()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_otlp_metrics_by_prometheus_names(server: Server, protocol: str):
    service = f"otel-{protocol}"
    otel_send(server, protocol, service)
    job = f'job="shop/{service}", instance="inst-1"'

    got = values_by_labels(vector(server.url, f"otel_requests_total{{{job}}}"), "http_route")
    assert got == {("/a",): 6.0, ("/b",): 2.0}, got

    buckets = values_by_labels(vector(server.url, f"otel_latency_seconds_bucket{{{job}}}"), "le", "http_route")
    assert buckets.get(("0.1", "/a")) == 1 and buckets.get(("0.5", "/a")) == 2, buckets
    assert buckets.get(("+Inf", "/a")) == 4 and len(buckets) == 4, buckets
    assert values_by_labels(vector(server.url, f"otel_latency_seconds_count{{{job}}}")) == {(): 4.0}
    (s,) = vector(server.url, f"otel_latency_seconds_sum{{{job}}}")
    assert math.isclose(float(s["value"][1]), 3.05), s
    (q,) = vector(server.url, f"histogram_quantile(0.5, otel_latency_seconds_bucket{{{job}}})")
    assert math.isclose(float(q["value"][1]), 0.5), q

    # An exponential histogram, as classic buckets: cumulative, ending in +Inf = count.
    exp = values_by_labels(vector(server.url, f"otel_payload_bytes_bucket{{{job}}}"), "le")
    assert exp.get(("+Inf",)) == 5 and len(exp) >= 3, exp
    les = sorted(exp, key=lambda k: float(k[0]))
    assert [exp[k] for k in les] == sorted(exp.values()), f"buckets must be cumulative: {exp}"
    assert values_by_labels(vector(server.url, f"otel_payload_bytes_count{{{job}}}")) == {(): 5.0}
    assert values_by_labels(vector(server.url, f"otel_payload_bytes_sum{{{job}}}")) == {(): 1273.0}
    (q,) = vector(server.url, f"histogram_quantile(0.5, otel_payload_bytes_bucket{{{job}}})")
    assert 8 <= float(q["value"][1]) <= 12, f"the median of 3, 10, 10, 250, 1000 is about 10: {q}"

    gauge = vector(server.url, f"otel_queue_depth_bytes{{{job}}}")
    assert [(g["metric"]["queue"], g["value"][1]) for g in gauge] == [("q1", "42")], gauge

    info = vector(server.url, f"target_info{{{job}}}")
    assert len(info) == 1 and info[0]["metric"].get("deployment_environment") == "test", info
    assert info[0]["value"][1] == "1", info

    names = prom_ok(server.get("/api/v1/label/__name__/values"))
    for name in ("otel_requests_total", "otel_latency_seconds_bucket", "otel_queue_depth_bytes", "target_info"):
        assert name in names, names
    meta = prom_ok(server.get("/api/v1/metadata"))
    types = {name: m[0]["type"] for name, m in meta.items() if name.startswith("otel_")}
    assert "counter" in types.values() and "histogram" in types.values() and "gauge" in types.values(), meta


# ----------------------------------------------------------------------------- remote write


def test_remote_write_then_query(server: Server):
    t = now_ms() - 60_000
    series = [
        # Labels out of order and one with an empty value (dropped, as Prometheus drops it).
        ({"job": "rw", "__name__": "rw_temp", "room": "hall", "empty": ""}, [(t, 20.5), (t + 10_000, 21.25), (t + 20_000, -3e-7)]),
        ({"__name__": "rw_temp", "job": "rw", "room": "attic"}, [(t + 5_000, 1e21)]),
        ({"__name__": "rw_stale", "job": "rw"}, [(t, 1.0), (t + 10_000, STALE_NAN)]),
    ]
    r = remote_write(server.url, write_request(series))
    assert r.status_code in (200, 204), f"{r.status_code} {r.text}"

    at = (t + 20_000) / 1000
    res = vector(server.url, "rw_temp", at)
    assert sorted(((s["metric"], s["value"][1]) for s in res), key=str) == sorted(
        [({"__name__": "rw_temp", "job": "rw", "room": "hall"}, "-3e-07"), ({"__name__": "rw_temp", "job": "rw", "room": "attic"}, "1e+21")],
        key=str,
    ), res
    assert [s["value"] for s in vector(server.url, 'rw_temp{room="hall"}', (t + 12_000) / 1000)] == [[(t + 12_000) / 1000, "21.25"]]
    raw = prom_ok(prom_get(server.url, "/api/v1/query", query='rw_temp{room="hall"}[1m]', time=f"{at:.3f}"))
    assert raw["resultType"] == "matrix", raw
    assert raw["result"][0]["values"] == [[t / 1000, "20.5"], [(t + 10_000) / 1000, "21.25"], [(t + 20_000) / 1000, "-3e-07"]], raw

    # Out of order, within the window: accepted, and read in time order.
    r = remote_write(server.url, write_request([({"__name__": "rw_temp", "job": "rw", "room": "hall"}, [(t + 15_000, 30.0), (t + 5_000, 10.0)])]))
    assert r.status_code in (200, 204), f"out-of-order samples: {r.status_code} {r.text}"
    raw = prom_ok(prom_get(server.url, "/api/v1/query", query='rw_temp{room="hall"}[1m]', time=f"{at:.3f}"))
    assert [v for _, v in raw["result"][0]["values"]] == ["20.5", "10", "21.25", "30", "-3e-07"], raw

    # A staleness marker ends the series at once, as in Prometheus.
    assert [s["value"][1] for s in vector(server.url, "rw_stale", (t + 9_000) / 1000)] == ["1"]
    assert vector(server.url, "rw_stale", (t + 11_000) / 1000) == [], "a series after its staleness marker must be gone"

    # Another tenant sees none of it, and its own.
    r = remote_write(server.url, write_request([({"__name__": "rw_temp", "job": "other"}, [(t, 7.0)])]), tenant="team-b")
    assert r.status_code in (200, 204), r.text
    res = prom_ok(server.get("/api/v1/query", tenant="team-b", params={"query": "rw_temp", "time": f"{at:.3f}"}))["result"]
    assert [s["metric"]["job"] for s in res] == ["other"], res
    assert {s["metric"]["job"] for s in vector(server.url, "rw_temp", at)} == {"rw"}


# ----------------------------------------------------------------------------- text import


def test_text_import_with_and_without_timestamps(server: Server):
    t1, t2 = now_ms() - 120_000, now_ms() - 60_000
    body = (
        "# HELP imp_jobs_total Jobs done.\n"
        "# TYPE imp_jobs_total counter\n"
        f'imp_jobs_total{{queue="a"}} 10 {t1}\n'
        f'imp_jobs_total{{queue="a"}} 15 {t2}\n'
        f'imp_jobs_total{{queue="b",}} 3 {t2}\n'
        "# HELP imp_temp Temperature now.\n"
        "# TYPE imp_temp gauge\n"
        "imp_temp 21.5\n"
        'imp_temp{where="out\\"side"} -4\n'
    )
    before = time.time()
    assert import_text(server, body) == {"status": "success", "accepted": 5}
    after = time.time()

    assert values_by_labels(vector(server.url, "imp_jobs_total", t1 / 1000), "queue") == {("a",): 10}
    assert values_by_labels(vector(server.url, "imp_jobs_total", t2 / 1000), "queue") == {("a",): 15, ("b",): 3}
    rng = prom_ok(prom_get(server.url, "/api/v1/query_range", query='imp_jobs_total{queue="a"}', start=t1 / 1000, end=t2 / 1000, step="60"))
    assert rng["result"][0]["values"] == [[t1 / 1000, "10"], [t2 / 1000, "15"]], rng

    # Without a timestamp: the time of the request.
    res = vector(server.url, "timestamp(imp_temp)", after + 1)
    assert len(res) == 2 and all(before - 1 <= float(s["value"][1]) <= after + 1 for s in res), res
    assert values_by_labels(vector(server.url, "imp_temp", after + 1), "where") == {("",): 21.5, ('out"side',): -4}


def test_series_labels_and_metadata_apis(server: Server):
    t = now_ms() - 30_000
    import_text(
        server,
        "# HELP api_hits_total Hits by page.\n# TYPE api_hits_total counter\n"
        f'api_hits_total{{page="home",region="eu"}} 1 {t}\napi_hits_total{{page="cart",region="us"}} 2 {t}\n'
        f"# TYPE api_load gauge\napi_load{{host=\"h1\"}} 0.5 {t}\n",
    )
    series = prom_ok(server.get("/api/v1/series", params={"match[]": "api_hits_total"}))
    assert sorted(series, key=str) == sorted(
        [{"__name__": "api_hits_total", "page": "home", "region": "eu"}, {"__name__": "api_hits_total", "page": "cart", "region": "us"}],
        key=str,
    ), series
    series = prom_ok(server.get("/api/v1/series", params=[("match[]", 'api_hits_total{region="us"}'), ("match[]", "api_load")]))
    assert sorted(s["__name__"] for s in series) == ["api_hits_total", "api_load"], series
    r = server.get("/api/v1/series")
    assert r.status_code == 400 and r.json()["status"] == "error", r.text

    labels = prom_ok(server.get("/api/v1/labels"))
    assert {"__name__", "page", "region", "host"} <= set(labels) and labels == sorted(labels), labels
    labels = prom_ok(server.get("/api/v1/labels", params={"match[]": "api_load"}))
    assert labels == ["__name__", "host"], labels
    assert {"api_hits_total", "api_load"} <= set(prom_ok(server.get("/api/v1/label/__name__/values")))
    assert prom_ok(server.get("/api/v1/label/region/values")) == ["eu", "us"]
    assert prom_ok(server.get("/api/v1/label/nope/values")) == []
    # A time range that holds none of the samples finds no series.
    old = {"start": f"{(t - 7_200_000) / 1000}", "end": f"{(t - 3_600_000) / 1000}"}
    assert prom_ok(server.get("/api/v1/series", params={"match[]": "api_hits_total", **old})) == []

    meta = prom_ok(server.get("/api/v1/metadata"))
    assert meta.get("api_hits_total") == [{"type": "counter", "help": "Hits by page.", "unit": ""}], meta
    assert meta.get("api_load") == [{"type": "gauge", "help": "", "unit": ""}], meta
    assert prom_ok(server.get("/api/v1/metadata", params={"metric": "api_load"})) == {"api_load": meta["api_load"]}


# ----------------------------------------------------------------------------- exemplars


def test_exemplars_from_openmetrics_import_and_remote_write(server: Server):
    t = now_ms() - 30_000
    ts = f"{t / 1000:.3f}"
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    om = (
        "# TYPE ex_latency_seconds histogram\n# HELP ex_latency_seconds Latency.\n"
        f'ex_latency_seconds_bucket{{le="0.1"}} 5 {ts} # {{trace_id="{trace}"}} 0.05 {ts}\n'
        f'ex_latency_seconds_bucket{{le="+Inf"}} 7 {ts}\n'
        f"ex_latency_seconds_sum 1.2 {ts}\nex_latency_seconds_count 7 {ts}\n# EOF\n"
    )
    import_text(server, om, content_type="application/openmetrics-text; version=1.0.0; charset=utf-8")
    series = [({"__name__": "rw_latency_bucket", "le": "1"}, [(t, 3.0)])]
    exemplars = {0: [({"trace_id": "abc123", "span_id": "def"}, 0.7, t - 500)]}
    r = remote_write(server.url, write_request(series, exemplars))
    assert r.status_code in (200, 204), r.text

    window = {"start": f"{(t - 60_000) / 1000}", "end": f"{(t + 60_000) / 1000}"}
    data = prom_ok(server.get("/api/v1/query_exemplars", params={"query": "ex_latency_seconds_bucket", **window}))
    assert data == [
        {
            "seriesLabels": {"__name__": "ex_latency_seconds_bucket", "le": "0.1"},
            "exemplars": [{"labels": {"trace_id": trace}, "value": "0.05", "timestamp": t / 1000}],
        }
    ], data
    data = prom_ok(server.get("/api/v1/query_exemplars", params={"query": "sum(rate(rw_latency_bucket[5m])) by (le)", **window}))
    assert data == [
        {
            "seriesLabels": {"__name__": "rw_latency_bucket", "le": "1"},
            "exemplars": [{"labels": {"span_id": "def", "trace_id": "abc123"}, "value": "0.7", "timestamp": (t - 500) / 1000}],
        }
    ], data
    # Outside the window: none.
    early = {"start": f"{(t - 120_000) / 1000}", "end": f"{(t - 60_000) / 1000}"}
    assert prom_ok(server.get("/api/v1/query_exemplars", params={"query": "ex_latency_seconds_bucket", **early})) == []


# ----------------------------------------------------------------------------- bad input


def error_of(r: requests.Response, status: int | tuple = 400) -> str:
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, f"want {statuses}, got {r.status_code}: {r.text[:1000]}"
    body = r.json()
    assert body.get("status") == "error" and body.get("errorType") and body.get("error"), body
    return body["error"]


def test_bad_input_is_a_4xx_naming_the_problem(server: Server):
    t = now_ms()
    good = write_request([({"__name__": "bad_ok", "job": "x"}, [(t, 1.0)])])
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}

    # Garbage that is not snappy: a length header that claims too much, then one that is
    # small enough but followed by junk.
    r = server.post("/api/v1/write", headers=headers, data=b"\xff\xfe\xfdnot snappy at all")
    assert "snappy" in error_of(r, (400, 413)).lower()
    r = server.post("/api/v1/write", headers=headers, data=b"\x20\xff\xff\xff\xffnot snappy at all")
    assert "snappy" in error_of(r).lower()
    assert_alive(server)

    # A valid snappy block holding a truncated protobuf.
    r = server.post("/api/v1/write", headers=headers, data=snappy_block(good[:-5]))
    assert "protobuf" in error_of(r).lower()
    assert_alive(server)

    # A bad label name, and a sample too far in the future; neither request stores anything.
    r = remote_write(server.url, write_request([({"__name__": "bad_label", "1a": "x"}, [(t, 1.0)]), ({"__name__": "bad_in_same_request"}, [(t, 1.0)])]))
    msg = error_of(r)
    assert "1a" in msg and "label" in msg.lower(), msg
    assert_alive(server)
    r = remote_write(server.url, write_request([({"__name__": "bad_future"}, [(t + 3_600_000, 1.0)])]))
    assert "future" in error_of(r).lower()
    assert_alive(server)
    r = server.post("/api/v1/import/prometheus", headers={"Content-Type": "text/plain"}, data=b"bad_text_ok 1\nbad_text{x=\"1\" 2\n")
    assert "line 2" in error_of(r)
    r = server.post("/api/v1/import/prometheus", data=b'bad_text{0x="1"} 2\n')
    assert "0x" in error_of(r)
    assert_alive(server)

    # PromQL that does not parse: 400 bad_data, as Prometheus.
    for path, params in [
        ("/api/v1/query", {"query": "sum(rate(bad_ok[5m])"}),
        ("/api/v1/query_range", {"query": "bad_ok +", "start": t / 1000 - 60, "end": t / 1000, "step": "15"}),
        ("/api/v1/query", {"query": 'bad_ok{job=~"("}'}),
    ]:
        r = server.get(path, params=params)
        msg = error_of(r)
        assert r.json()["errorType"] == "bad_data" and "parse" in msg.lower(), (params, r.text)
    r = server.get("/api/v1/query_range", params={"query": "bad_ok", "start": t / 1000, "end": t / 1000 - 60, "step": "15"})
    error_of(r)
    r = server.get("/api/v1/query_range", params={"query": "bad_ok", "start": t / 1000 - 60, "end": t / 1000, "step": "0"})
    error_of(r)
    r = server.get("/api/v1/query", params={"query": "bad_ok", "time": "yesterday-ish"})
    assert "time" in error_of(r)
    assert_alive(server)

    remote_write(server.url, good)
    names = prom_ok(server.get("/api/v1/label/__name__/values"))
    assert [n for n in names if n.startswith("bad_")] == ["bad_ok"], f"refused requests stored something: {names}"


# ----------------------------------------------------------------------------- limits


def test_query_limits_are_clear_errors(server_factory, tmp_path):
    server = server_factory().start(tmp_path / "data", config_yaml="limits:\n  query_samples_max: 1000\n")
    t0 = now_ms() - 3_000_000
    import_text(server, "".join(f"lim_series {i} {t0 + i * 1000}\n" for i in range(3000)))
    at = (t0 + 3_000_000) / 1000
    (n,) = vector(server.url, "count_over_time(lim_series[5m])", at)
    assert n["value"][1] == "300", n

    r = server.get("/api/v1/query", params={"query": "count_over_time(lim_series[1h])", "time": at})
    msg = error_of(r, 422)
    assert r.json()["errorType"] == "execution" and "too many samples" in msg, r.text
    r = server.get("/api/v1/query_range", params={"query": "lim_series", "start": at - 2900, "end": at, "step": "1"})
    assert "too many samples" in error_of(r, 422), r.text
    assert_alive(server)


def test_query_timeout_is_a_clear_error(server: Server):
    r = server.get("/api/v1/query", params={"query": "count_over_time(vector(1)[1h:1ms])", "timeout": "50ms"})
    msg = error_of(r, 503)
    assert r.json()["errorType"] == "timeout" and "timed out" in msg, r.text
    assert_alive(server)
    (one,) = vector(server.url, "vector(1)")
    assert one["value"][1] == "1"


def test_series_limit_per_tenant(server_factory, tmp_path):
    server = server_factory().start(tmp_path / "data", config_yaml="storage:\n  series_per_tenant_max: 5\n")
    t = now_ms()
    first = write_request([({"__name__": "card", "i": str(i)}, [(t, 1.0)]) for i in range(4)])
    assert remote_write(server.url, first).status_code in (200, 204)
    r = remote_write(server.url, write_request([({"__name__": "card", "i": str(i)}, [(t, 1.0)]) for i in range(4, 10)]))
    msg = error_of(r, (400, 429))
    assert "series" in msg and "limit" in msg, msg
    assert_alive(server)
    # Existing series still take samples, and another tenant has its own budget.
    assert remote_write(server.url, write_request([({"__name__": "card", "i": "0"}, [(t + 1000, 2.0)])])).status_code in (200, 204)
    assert remote_write(server.url, first, tenant="other").status_code in (200, 204)
    assert len(vector(server.url, "card", t / 1000 + 1)) == 4


# ----------------------------------------------------------------------------- durability


def test_acknowledged_remote_write_survives_kill9(server_factory, tmp_path):
    """Some series in every batch, as a sender repeats them, a flush and two crashes. The WAL
    names series by numbers local to its file: later records of a file find the numbers
    earlier ones defined, and the first records after a flush (which starts a file) or a
    restart define them again."""
    data = tmp_path / "data"
    server = server_factory().start(data, config_yaml="storage:\n  flush_interval: 2s\n")
    t0 = now_ms() - 200_000
    sent = {}

    def send(batch: int):
        series = []
        for s in range(5):
            # Series 0-2 are in every batch; 3 and 4 are new in each.
            key = str(s) if s < 3 else f"{s}-{batch}"
            pts = [(t0 + (batch * 15 + i) * 1000, float(batch * 1000 + s * 100 + i) + 0.25) for i in range(15)]
            series.append(({"__name__": "durable_value", "series": key}, pts))
            sent.setdefault(key, []).extend([[ts / 1000, repr(v)] for ts, v in pts])
        r = remote_write(server.url, write_request(series))
        assert r.status_code in (200, 204), r.text

    for batch in range(4):
        send(batch)
    # A flush: batches 0-3 go to a segment and the WAL starts a new file.
    wait_until(lambda: (metric_value(server.metrics(), "sightline_store_segments") or 0) >= 1, 20, "a flush")
    for batch in range(4, 8):
        send(batch)
    server.kill9()
    server.start(data)
    for batch in range(8, 12):
        send(batch)
    server.kill9()
    server.start(data)

    at = (t0 + 200_000) / 1000
    res = prom_ok(prom_get(server.url, "/api/v1/query", query="durable_value[5m]", time=f"{at:.3f}"))["result"]
    got = {s["metric"]["series"]: s["values"] for s in res}
    assert got.keys() == sent.keys(), f"series after kill -9: {sorted(got)}"
    for k, want in sent.items():
        assert got[k] == want, f"samples of {k} after kill -9"
    # And it goes on taking writes.
    r = remote_write(server.url, write_request([({"__name__": "durable_after"}, [(now_ms(), 1.0)])]))
    assert r.status_code in (200, 204), r.text


# ----------------------------------------------------------------------------- CLI


def test_cli_import_prometheus(server: Server, tmp_path):
    t0 = now_ms() - 250_000
    path = tmp_path / "backfill.prom"
    lines = ["# HELP cli_backfill Backfilled.", "# TYPE cli_backfill gauge"]
    lines += [f'cli_backfill{{shard="{i % 5}"}} {i} {t0 + i * 1000}' for i in range(250)]
    path.write_text("\n".join(lines) + "\n")
    p = ok(cli("import", "prometheus", "--server", server.url, "--batch-lines", "40", str(path)))
    assert "imported 250 samples" in p.stdout, p.stdout
    got = values_by_labels(vector(server.url, "count_over_time(cli_backfill[5m])", (t0 + 250_000) / 1000), "shard")
    assert got == {(str(s),): 50 for s in range(5)}, got

    bad = tmp_path / "bad.prom"
    bad.write_text("cli_bad_ok 1\ncli_bad_ok 2\ncli_bad{x=} 3\n")
    p = cli("import", "prometheus", "--server", server.url, str(bad))
    assert p.returncode != 0, p.stdout
    assert "line 3" in p.stderr, p.stderr


def test_cli_metrics_query(server: Server):
    t0 = now_ms() - 290_000
    text = "".join(f'cli_chart{{host="a"}} {i} {t0 + i * 10_000}\n' for i in range(30))
    text += f'cli_chart{{host="b"}} 7 {t0 + 280_000}\n'
    import_text(server, text)

    out = ok(cli("metrics", "query", "cli_chart", "--server", server.url)).stdout
    assert re.search(r'^cli_chart\{.*host="?a"?.*\}\s+29$', out, re.M), out
    assert re.search(r'^cli_chart\{.*host="?b"?.*\}\s+7$', out, re.M), out
    out = ok(cli("metrics", "query", "sum(cli_chart)", "--server", server.url)).stdout
    assert out.split()[-1] == "36", out

    out = ok(cli("metrics", "query", 'cli_chart{host="a"}', "--since", "5m", "--server", server.url)).stdout
    lines = out.splitlines()
    assert any('host="a"' in line or "host=a" in line for line in lines), out
    chart = [line for line in lines if any(b in line for b in SPARK_BARS)]
    assert len(chart) == 1, f"want one chart line:\n{out}"
    assert "▁" in chart[0] and "█" in chart[0], chart[0]
    assert re.search(r"min 0\b.*max 29\b.*last 29\b", chart[0]), chart[0]

    out = ok(cli("metrics", "query", "sum(cli_chart)", "--json", "--server", server.url)).stdout
    assert '"resultType": "vector"' in out or '"resultType":"vector"' in out, out

    p = cli("metrics", "query", "sum(cli_chart", "--server", server.url)
    assert p.returncode != 0 and "parse" in p.stderr.lower(), p.stderr
