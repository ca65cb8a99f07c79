"""A small service instrumented with `prometheus_client`, for the metrics tests to scrape.

    python metrics_service.py PORT [--static]

Serves /metrics on 127.0.0.1:PORT (OpenMetrics when asked for it, with exemplars, else the
0.0.4 text format) and prints `ready` once it listens. Every value is a function of a tick
counter `n` that goes up every TICK_S seconds from start, so what a scrape sees depends
only on when it happens:

| metric | labels | value at tick n |
|---|---|---|
| `demo_requests_total` (counter) | method, code, path | irregular steps, every tick or every few ticks |
| `demo_temperature_celsius` (gauge) | room | sines, cosines and a sawtooth with inexact decimals |
| `demo_queue_length` (gauge) | - | `(7 n) mod 23` |
| `demo_request_duration_seconds` (histogram) | path | observations from a fixed LCG, with exemplars |
| `demo_response_size_bytes` (summary) | - | one observation a tick |
| `demo_resets_total` (counter) | kind | resets every 15 (kind a) or 9 (kind b) ticks |
| `demo_flap` (gauge) | side | present 10 ticks, absent 10 ticks (not with --static) |
| `demo_build_info` (info) | version, commit | 1 |
| `demo_ratio` (gauge) | kind | NaN, +Inf, -Inf, 0, -1.5 and a sine: the edge values |

Values are chosen so that no two series of a metric are equal at one instant (but for
`demo_ratio`'s NaN), so `topk`, `bottomk` and `sort` have one right answer.
"""

from __future__ import annotations

import math
import sys
import threading
import time

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Summary, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

TICK_S = 0.5
BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# (method, code, path, step, every): the series gains `step` every `every` ticks.
REQUEST_SERIES = [
    ("GET", "200", "/api", 3, 1),
    ("GET", "404", "/api", 1, 1),
    ("GET", "200", "/home", 5, 1),
    ("POST", "200", "/api", 2, 1),
    ("POST", "500", "/api", 1, 3),
    ("GET", "500", "/home", 2, 4),
]


class State:
    def __init__(self, flap: bool):
        self.n = 0
        self.flap = flap
        self.lock = threading.Lock()


class Irregular:
    """The series client_python's metric classes cannot express: a counter that resets and
    a gauge that comes and goes."""

    def __init__(self, state: State):
        self.state = state

    def collect(self):
        with self.state.lock:
            n = self.state.n
        resets = CounterMetricFamily("demo_resets", "A counter that restarts now and then.", labels=["kind"])
        resets.add_metric(["a"], float((n % 15) * 2 + 1))
        resets.add_metric(["b"], (n % 9) * 1.5)
        yield resets
        if self.state.flap and (n // 10) % 2 == 0:
            flap = GaugeMetricFamily("demo_flap", "A gauge that is there half of the time.", labels=["side"])
            flap.add_metric(["left"], float(n))
            flap.add_metric(["right"], float(-n) - 0.5)
            yield flap


def lcg(seed: int):
    x = seed
    while True:
        x = (1103515245 * x + 12345) % (1 << 31)
        yield x / (1 << 31)


def main() -> None:
    port = int(sys.argv[1])
    flap = "--static" not in sys.argv[2:]
    prometheus_client.disable_created_metrics()
    state = State(flap)
    reg = CollectorRegistry()
    requests_total = Counter("demo_requests", "Requests served.", ["method", "code", "path"], registry=reg)
    temperature = Gauge("demo_temperature_celsius", "Temperature by room.", ["room"], registry=reg)
    queue = Gauge("demo_queue_length", "Items waiting.", registry=reg)
    ratio = Gauge("demo_ratio", "Edge values.", ["kind"], registry=reg)
    for kind, v in (("nan", math.nan), ("inf", math.inf), ("neginf", -math.inf), ("zero", 0.0), ("neg", -1.5)):
        ratio.labels(kind).set(v)
    duration = Histogram(
        "demo_request_duration_seconds", "Request latency.", ["path"], buckets=BUCKETS, registry=reg
    )
    size = Summary("demo_response_size_bytes", "Response sizes.", registry=reg)
    Info("demo_build", "Build information.", registry=reg).info({"version": "1.2.3", "commit": "abc123"})
    reg.register(Irregular(state))
    for method, code, path, _, _ in REQUEST_SERIES:
        requests_total.labels(method, code, path)  # every series from the start
    for path in ("/api", "/home"):
        duration.labels(path)
    rand = lcg(42)

    def update(n: int) -> None:
        for method, code, path, step, every in REQUEST_SERIES:
            if n % every == 0:
                requests_total.labels(method, code, path).inc(step * (1 + (n * n) % 5))
        temperature.labels("kitchen").set(20 + round(3 * math.sin(n / 5), 3))
        temperature.labels("attic").set(25 + round(4 * math.cos(n / 7), 3))
        temperature.labels("cellar").set(12.5 + (n % 10) * 0.1)
        queue.set((7 * n) % 23)
        ratio.labels("wave").set(math.sin(n))
        for path, count in (("/api", 2), ("/home", 1)):
            for _ in range(count):
                v = round(next(rand) ** 3 * 3, 4)
                duration.labels(path).observe(v, exemplar={"trace_id": f"{n:016x}{count:016x}"})
        size.observe(100 + (n * 37) % 900)

    update(0)
    start_http_server(port, addr="127.0.0.1", registry=reg)
    print("ready", flush=True)
    t0 = time.monotonic()
    while True:
        n = state.n + 1
        time.sleep(max(0.0, t0 + n * TICK_S - time.monotonic()))
        with state.lock:
            update(n)
            state.n = n


if __name__ == "__main__":
    main()
