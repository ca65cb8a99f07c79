"""Helpers of the alerting tests: a webhook receiver that records every notification, a
"flaky" service instrumented with `prometheus_client` that fails exactly 5% of its requests
on demand, a load loop driving it, a real Alertmanager (Debian's `prometheus-alertmanager`)
whose only receiver is the webhook receiver, and Sightline's alerting API as the tests read it.

Everything here listens on a free loopback port and is stopped in the fixtures' teardown:
the threads by shutting their servers down, Alertmanager by its PID (SIGTERM, then SIGKILL).

Fixtures defined here are imported by the test modules that use them.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import prometheus_client
import pytest
import requests
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from conftest import HTTP_TIMEOUT_S, Server, free_ports, wait_until
from metrics_helpers import Child

ALERTMANAGER_BIN = (
    os.environ.get("ALERTMANAGER_BIN") or shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
)

# The flaky service's histogram buckets; the latency SLO's threshold is one of them.
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.5, 1.0)
LATENCY_THRESHOLD = 0.2
FAST_S = 0.05  # what a fast request observes (<= threshold)
SLOW_S = 0.3  # what a slow request observes (> threshold)
ERROR_EVERY = 20  # with errors on, request n (1-based) fails when n % 20 == 0: exactly 5%
SLOW_EVERY = 10  # request n is slow when n % 10 == 0: exactly 10%


# ----------------------------------------------------------------------------- small servers


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def log_message(self, fmt, *args):  # no access log on stderr
        pass

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Threaded:
    """A ThreadingHTTPServer on a free loopback port (bound to port 0, so the kernel picks
    one nobody holds), served from a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port: int = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        """Never raises; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


# ----------------------------------------------------------------------------- the webhook receiver


@dataclass
class Received:
    path: str
    body: Any  # the decoded JSON, or None when the body was not JSON
    raw: bytes
    at: float  # time.time() on arrival


class WebhookReceiver(_Threaded):
    """Records every POSTed body (JSON-decoded) with its path; answers GET with 200 `ok`, so
    it can be probed too."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.gets: list[str] = []
        receiver = self

        class Handler(_QuietHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with receiver.lock:
                    receiver.received.append(Received(self.path, body, raw, time.time()))
                self._answer(200, b"ok")

            def do_GET(self):
                with receiver.lock:
                    receiver.gets.append(self.path)
                self._answer(200, b"ok")

        super().__init__(Handler)

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.addr}{path}"

    def bodies(self, path: str | None = None, since: float = 0.0) -> list[Any]:
        """The JSON bodies received (at `path` if given, at or after `since`), oldest first."""
        with self.lock:
            return [r.body for r in self.received if (path is None or r.path == path) and r.at >= since]

    def wait_for(
        self, pred: Callable[[Any], Any], timeout_s: float, what: str, path: str | None = None, since: float = 0.0
    ) -> Any:
        """Waits for a received body (at `path`, at or after `since`) for which `pred` is
        truthy and returns it; fails after `timeout_s` with what was received."""
        deadline = time.monotonic() + timeout_s
        while True:
            for body in self.bodies(path, since):
                try:
                    if body is not None and pred(body):
                        return body
                except (KeyError, TypeError, AttributeError):
                    pass
            if time.monotonic() > deadline:
                got = json.dumps(self.bodies(path), indent=1)[-6000:]
                raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; received at {path or 'any path'}:\n{got}")
            time.sleep(0.1)


def alerts_of(body: dict, status: str | None = None, **labels: str) -> list[dict]:
    """The alerts of a webhook (v4) notification whose labels include `labels` (and whose
    own `status` is `status`, if given)."""
    out = []
    for a in body.get("alerts") or []:
        lab = a.get("labels") or {}
        if all(lab.get(k) == v for k, v in labels.items()) and (status is None or a.get("status") == status):
            out.append(a)
    return out


def assert_webhook_v4(body: dict) -> None:
    """The keys of Alertmanager's webhook JSON, version 4."""
    assert body.get("version") == "4", f"webhook JSON must be version \"4\": {body}"
    assert body.get("status") in ("firing", "resolved"), body
    for key in ("receiver", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "alerts"):
        assert key in body, f"webhook JSON without {key!r}: {body}"
    assert isinstance(body["alerts"], list) and body["alerts"], body
    for a in body["alerts"]:
        for key in ("status", "labels", "annotations", "startsAt", "endsAt"):
            assert key in a, f"webhook alert without {key!r}: {a}"
        assert a["status"] in ("firing", "resolved"), a


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    try:
        yield r
    finally:
        r.close()


# ----------------------------------------------------------------------------- the flaky service


class FlakyService(_Threaded):
    """`GET /work` counts `http_requests_total{code}` and observes
    `http_request_duration_seconds`; while `errors_on` is set, every 20th request (exactly
    5%) answers 500, else 200. Every 10th request observes SLOW_S, the others FAST_S, so the
    share of requests within LATENCY_THRESHOLD is exactly 90% at every tenth request.
    `/metrics` exposes its own registry (the 0.0.4 text format)."""

    def __init__(self, errors_on: bool = False):
        prometheus_client.disable_created_metrics()  # no `_created` series beside the counters
        self.registry = CollectorRegistry()
        self.requests_total = Counter("http_requests", "Requests served.", ["code"], registry=self.registry)
        self.duration = Histogram(
            "http_request_duration_seconds", "Request latency.", buckets=LATENCY_BUCKETS, registry=self.registry
        )
        for code in ("200", "500"):
            self.requests_total.labels(code)  # both series from the start, at 0
        self.errors_on = errors_on
        self.lock = threading.Lock()
        self.n = 0
        self.errors = 0
        self.slow = 0
        service = self

        class Handler(_QuietHandler):
            def do_GET(self):
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    with service.lock:
                        out = generate_latest(service.registry)
                    self._answer(200, out, CONTENT_TYPE_LATEST)
                elif path == "/work":
                    code = service.handle()
                    self._answer(code, b"ok\n" if code == 200 else b"boom\n")
                else:
                    self._answer(404, b"not found\n")

        super().__init__(Handler)

    def handle(self) -> int:
        with self.lock:
            self.n += 1
            n = self.n
            code = 500 if self.errors_on and n % ERROR_EVERY == 0 else 200
            slow = n % SLOW_EVERY == 0
            self.requests_total.labels(str(code)).inc()
            self.duration.observe(SLOW_S if slow else FAST_S)
            if code == 500:
                self.errors += 1
            if slow:
                self.slow += 1
        return code

    def set_errors(self, on: bool) -> None:
        with self.lock:
            self.errors_on = on

    def counts(self) -> dict[str, int]:
        """A consistent snapshot: requests, errors, slow and fast (within the threshold)."""
        with self.lock:
            return {"total": self.n, "errors": self.errors, "slow": self.slow, "fast": self.n - self.slow}


@pytest.fixture
def flaky() -> Iterator[FlakyService]:
    s = FlakyService()
    try:
        yield s
    finally:
        s.close()


class LoadLoop:
    """A thread hitting `url` at a steady `rate` requests a second (on a schedule, so a slow
    answer is caught up), until stopped. Counts what it sent and the answers it got."""

    def __init__(self, url: str, rate: float = 50.0):
        self.url = url
        self.period = 1.0 / rate
        self.sent = 0
        self.status_counts: dict[int, int] = {}
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "LoadLoop":
        self._thread.start()
        return self

    def _run(self) -> None:
        session = requests.Session()
        t0 = time.monotonic()
        i = 0
        try:
            while not self._stop.is_set():
                delay = t0 + i * self.period - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                if delay < -1.0:  # more than a second behind: do not burst to catch up
                    t0 = time.monotonic()
                    i = 0
                i += 1
                try:
                    r = session.get(self.url, timeout=5)
                    self.status_counts[r.status_code] = self.status_counts.get(r.status_code, 0) + 1
                except requests.RequestException:
                    self.failures += 1
                self.sent += 1
        finally:
            session.close()

    def stop(self) -> None:
        """Never raises; safe to call twice."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)


@pytest.fixture
def load_loops() -> Iterator[Callable[..., LoadLoop]]:
    """Starts `LoadLoop`s (`start(url, rate=50)`); all are stopped at teardown."""
    loops: list[LoadLoop] = []

    def start(url: str, rate: float = 50.0) -> LoadLoop:
        loop = LoadLoop(url, rate).start()
        loops.append(loop)
        return loop

    try:
        yield start
    finally:
        for loop in loops:
            loop.stop()


# ----------------------------------------------------------------------------- Alertmanager


ALERTMANAGER_CONFIG = """\
route:
  receiver: test-receiver
  group_by: [alertname, severity]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test-receiver
    webhook_configs:
      - url: "{url}"
        send_resolved: true
"""


class Alertmanager:
    def __init__(self, child: Child, url: str):
        self.child = child
        self.url = url

    def alerts(self, **params) -> list[dict]:
        """GET /api/v2/alerts (a bare list: Alertmanager does not wrap its answers)."""
        r = requests.get(f"{self.url}/api/v2/alerts", params=params, timeout=HTTP_TIMEOUT_S)
        assert r.status_code == 200, f"Alertmanager GET /api/v2/alerts: {r.status_code} {r.text[:2000]}"
        return r.json()

    def post_alerts(self, alerts: list[dict]) -> None:
        r = requests.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=HTTP_TIMEOUT_S)
        assert r.status_code == 200, f"Alertmanager POST /api/v2/alerts: {r.status_code} {r.text[:2000]}"

    def log_tail(self) -> str:
        return self.child.log_tail()


def start_alertmanager(work_dir: Path, webhook_url: str) -> Alertmanager:
    """Starts the real Alertmanager on a free port, clustering off, with one webhook receiver
    at `webhook_url`; returns it once `/-/ready` answers 200. The caller stops `child`."""
    if not os.access(ALERTMANAGER_BIN, os.X_OK):
        pytest.fail(
            f"Alertmanager not found at {ALERTMANAGER_BIN}: `.ci/run` installs the Debian package "
            "`prometheus-alertmanager` (apt-get install --no-install-recommends prometheus-alertmanager)"
        )
    (port,) = free_ports(1)
    amdir = work_dir / f"alertmanager-{port}"
    (amdir / "data").mkdir(parents=True, exist_ok=True)
    cfg = amdir / "alertmanager.yml"
    cfg.write_text(ALERTMANAGER_CONFIG.replace("{url}", webhook_url))
    args = [
        ALERTMANAGER_BIN,
        f"--config.file={cfg}",
        f"--storage.path={amdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # empty: no clustering, no gossip port
        "--log.level=info",
    ]
    child = Child("alertmanager", args, amdir / "alertmanager.log")
    am = Alertmanager(child, f"http://127.0.0.1:{port}")

    def ready() -> bool:
        if not child.alive():
            raise AssertionError(f"alertmanager exited during start-up:\n{child.log_tail()}")
        try:
            return requests.get(f"{am.url}/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(ready, 30, f"alertmanager on {am.url} to be ready", interval_s=0.1)
    except BaseException:
        child.stop()
        raise
    return am


@pytest.fixture
def alertmanager(webhook: WebhookReceiver, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Alertmanager]:
    """A real Alertmanager whose only receiver is `webhook` at path `/am`; stopped by its
    PID at teardown (SIGTERM, then SIGKILL), its log printed if the test failed."""
    am = start_alertmanager(tmp_path, webhook.url("/am"))
    try:
        yield am
    finally:
        am.child.stop()
        rep = getattr(request.node, "rep_call", None)
        if rep is None or rep.failed:
            print(am.log_tail())


# ----------------------------------------------------------------------------- Sightline's API


def api_data(r: requests.Response, what: str) -> Any:
    """The `data` of a `{"status": "success", "data": ...}` answer; fails with the body."""
    assert r.status_code == 200, f"{what}: {r.status_code} {r.text[:2000]}"
    body = r.json()
    assert body.get("status") == "success", f"{what}: {body}"
    assert "data" in body, f"{what}: no data: {body}"
    return body["data"]


def get_slo(server: Server, name: str) -> dict:
    return api_data(server.get(f"/api/v1/slos/{name}"), f"GET /api/v1/slos/{name}")


def get_slos(server: Server) -> list[dict]:
    data = api_data(server.get("/api/v1/slos"), "GET /api/v1/slos")
    assert isinstance(data, list), f"/api/v1/slos must list the SLOs: {data}"
    return data


def get_alerts(server: Server, **labels: str) -> list[dict]:
    """Pending and firing alerts of `/api/v1/alerts` whose labels include `labels`."""
    data = api_data(server.get("/api/v1/alerts"), "GET /api/v1/alerts")
    assert isinstance(data, dict) and isinstance(data.get("alerts"), list), f"Prometheus' shape is {{alerts: [...]}}: {data}"
    return [a for a in data["alerts"] if all((a.get("labels") or {}).get(k) == v for k, v in labels.items())]


def get_rule_groups(server: Server) -> list[dict]:
    data = api_data(server.get("/api/v1/rules"), "GET /api/v1/rules")
    assert isinstance(data, dict) and isinstance(data.get("groups"), list), f"Prometheus' shape is {{groups: [...]}}: {data}"
    return data["groups"]


def approx_eq(a: float | None, b: float, tol: float = 1e-6) -> bool:
    return a is not None and abs(a - b) <= tol


def rfc3339(t: float) -> str:
    """`t` (seconds since the epoch) as RFC 3339 in UTC with milliseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}Z"


def poll(get: Callable[[], Any], ok: Callable[[Any], Any], timeout_s: float, what: str, interval_s: float = 0.5) -> Any:
    """Calls `get` until `ok(value)` is truthy and returns that value; fails after
    `timeout_s` showing the last value seen."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        last = get()
        try:
            if ok(last):
                return last
        except (KeyError, TypeError, IndexError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last seen:\n{json.dumps(last, indent=1, default=str)[:6000]}")
        time.sleep(interval_s)
