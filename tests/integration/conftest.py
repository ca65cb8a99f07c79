"""End-to-end fixtures: the real `sightline` binary on free loopback ports.

Every test gets its own server(s) on a temporary data directory, talks to them over real
sockets with real clients, and every process started here is stopped by its PID in the
fixture's teardown (SIGTERM, wait, SIGKILL on time-out). When a test fails, the tail of each
server's log is printed with the failure.

The binary is `$SIGHTLINE_BIN` (what `make integration` sets), else `target/debug/sightline`.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]

# Generous: a debug build on a loaded 2-core machine replaying a WAL.
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 60

NS_PER_S = 1_000_000_000


# ----------------------------------------------------------------------------- small helpers


def sightline_bin() -> str:
    path = os.environ.get("SIGHTLINE_BIN") or str(REPO_ROOT / "target" / "debug" / "sightline")
    if not os.access(path, os.X_OK):
        pytest.fail(f"sightline binary not found at {path}: run `make integration` or set SIGHTLINE_BIN")
    return path


def clean_env() -> dict[str, str]:
    """This process's environment without `SIGHTLINE_*`, so a developer's settings cannot
    change what a test starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGHTLINE_")}
    env["NO_COLOR"] = "1"  # plain logs for the failure report
    return env


def free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports, found by binding to port 0 (all held until the end,
    so the kernel cannot hand out one twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def now_ns() -> int:
    return time.time_ns()


def rfc3339_now() -> str:
    """Now as RFC 3339 with microseconds, as Python loggers print it."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e6):06d}Z"


def wait_until(cond: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.05) -> Any:
    """Polls `cond` until it returns something truthy (which is returned), or fails after
    `timeout_s` saying what it waited for."""
    deadline = time.monotonic() + timeout_s
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


def ndjson_body(lines: Iterable[dict | str]) -> bytes:
    out = []
    for line in lines:
        out.append(line if isinstance(line, str) else json.dumps(line))
    return ("\n".join(out) + "\n").encode()


# ----------------------------------------------------------------------------- /metrics


_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse_metrics(text: str) -> list[Sample]:
    """Samples of a Prometheus or OpenMetrics text exposition."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        assert m, f"unparseable /metrics line: {line!r}"
        labels = dict(_LABEL_RE.findall(m.group(2) or ""))
        samples.append(Sample(m.group(1), labels, float(m.group(3))))
    return samples


def metric_value(samples: list[Sample], name: str, **labels: str) -> float | None:
    """The sum of the samples named `name` whose labels include `labels`; None if none."""
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(found) if found else None


# ----------------------------------------------------------------------------- Loki results


@dataclass
class Entry:
    ts_ns: int
    line: str
    stream: dict[str, str]
    # The third element of a value (with `X-Loki-Response-Encoding-Flags: categorize-labels`).
    extra: dict | None


def log_entries(body: dict) -> list[Entry]:
    """Every entry of a Loki `streams` result, flattened, oldest first."""
    assert body.get("status") == "success", body
    data = body["data"]
    assert data["resultType"] == "streams", data
    out = []
    for stream in data["result"]:
        assert isinstance(stream["stream"], dict), stream
        for value in stream["values"]:
            assert isinstance(value[0], str) and value[0].isdigit(), f"timestamp must be a ns string: {value!r}"
            assert isinstance(value[1], str), value
            assert len(value) in (2, 3), value
            out.append(Entry(int(value[0]), value[1], stream["stream"], value[2] if len(value) == 3 else None))
    out.sort(key=lambda e: e.ts_ns)
    return out


def lines_of(body: dict) -> list[str]:
    return [e.line for e in log_entries(body)]


def matrix_result(body: dict) -> list[dict]:
    assert body.get("status") == "success", body
    assert body["data"]["resultType"] == "matrix", body["data"]
    return body["data"]["result"]


def vector_result(body: dict) -> list[dict]:
    assert body.get("status") == "success", body
    assert body["data"]["resultType"] == "vector", body["data"]
    return body["data"]["result"]


# ----------------------------------------------------------------------------- the server


class Server:
    """One `sightline serve` process (or a series of them on one data dir, via stop/start).

    Each start takes fresh free ports, so a restart never races a port still in TIME_WAIT."""

    def __init__(self, bin_path: str, work_dir: Path):
        self.bin = bin_path
        self.work_dir = work_dir
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.http_port: int | None = None
        self.grpc_port: int | None = None
        self.data_dir: Path | None = None
        self.log_paths: list[Path] = []
        self.http = requests.Session()

    # --- process control

    def start(self, data_dir: Path, config_yaml: str | None = None, wait_ready: bool = True) -> "Server":
        assert self.proc is None, "server already running"
        n = len(self.log_paths)
        self.data_dir = Path(data_dir)
        self.http_port, self.grpc_port = free_ports(2)
        args = [
            self.bin, "serve",
            "--http-addr", f"127.0.0.1:{self.http_port}",
            "--grpc-addr", f"127.0.0.1:{self.grpc_port}",
            "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        if config_yaml is not None:
            cfg = self.work_dir / f"config-{n}.yaml"
            cfg.write_text(config_yaml)
            args += ["--config", str(cfg)]
        log_path = self.work_dir / f"server-{n}.log"
        self.log_paths.append(log_path)
        env = clean_env()
        env.setdefault("RUST_BACKTRACE", "1")
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.http = requests.Session()
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        def ready() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                rc = None if self.proc is None else self.proc.returncode
                raise AssertionError(f"sightline exited during start-up (code {rc}):\n{self.log_tail()}")
            try:
                return requests.get(f"{self.url}/health/ready", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, timeout_s, f"{self.url}/health/ready to answer 200")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then wait; returns the exit code. Fails (after a SIGKILL) if the process
        does not exit in time."""
        assert self.proc is not None, "server not running"
        proc, self.proc = self.proc, None
        self.http.close()
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"sightline did not exit within {timeout_s}s of SIGTERM:\n{self.log_tail()}")

    def kill9(self) -> None:
        assert self.proc is not None, "server not running"
        proc, self.proc = self.proc, None
        proc.kill()
        proc.wait()
        self.http.close()

    def close(self) -> None:
        """Teardown: stops the process if it still runs; never raises."""
        proc, self.proc = self.proc, None
        self.http.close()
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, n: int = LOG_TAIL_LINES) -> str:
        out = []
        for p in self.log_paths:
            if p.exists():
                lines = p.read_text(errors="replace").splitlines()[-n:]
                out.append(f"--- {p} (last {len(lines)} lines)\n" + "\n".join(lines))
        return "\n".join(out)

    # --- addresses

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}"

    @property
    def grpc_addr(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    # --- HTTP

    @staticmethod
    def _headers(tenant: str | None, headers: dict | None) -> dict:
        h = dict(headers or {})
        if tenant is not None:
            h["X-Scope-OrgID"] = tenant
        return h

    def get(self, path: str, tenant: str | None = None, headers: dict | None = None, **kw) -> requests.Response:
        kw.setdefault("timeout", HTTP_TIMEOUT_S)
        return self.http.get(self.url + path, headers=self._headers(tenant, headers), **kw)

    def post(self, path: str, tenant: str | None = None, headers: dict | None = None, **kw) -> requests.Response:
        kw.setdefault("timeout", HTTP_TIMEOUT_S)
        return self.http.post(self.url + path, headers=self._headers(tenant, headers), **kw)

    def push_ndjson(
        self,
        lines: Iterable[dict | str],
        tenant: str | None = None,
        expect: int | None = 200,
        gzip_body: bool = False,
    ) -> requests.Response:
        """POSTs NDJSON to /api/v1/logs; checks the status (and the accepted count on 200)."""
        lines = list(lines)
        body = ndjson_body(lines)
        headers = {"Content-Type": "application/x-ndjson"}
        if gzip_body:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        r = self.post("/api/v1/logs", tenant=tenant, headers=headers, data=body)
        if expect is not None:
            assert r.status_code == expect, f"POST /api/v1/logs: want {expect}, got {r.status_code}: {r.text}"
            if expect == 200:
                assert r.json() == {"status": "success", "accepted": len(lines)}, r.text
        return r

    def query_range(
        self,
        q: str,
        tenant: str | None = None,
        categorize: bool = False,
        expect: int | None = 200,
        **params: Any,
    ) -> dict:
        """GET /loki/api/v1/query_range; by default the last hour to a minute ahead, limit 1000.
        Returns the decoded body (checked for `status: success` when `expect` is 200)."""
        now = now_ns()
        p = {"query": q, "start": now - 3600 * NS_PER_S, "end": now + 60 * NS_PER_S, "limit": 1000}
        p.update(params)
        headers = {"X-Loki-Response-Encoding-Flags": "categorize-labels"} if categorize else None
        r = self.get("/loki/api/v1/query_range", tenant=tenant, headers=headers, params=p)
        return self._answer(r, expect, f"query_range {q!r}")

    def query(
        self,
        q: str,
        tenant: str | None = None,
        categorize: bool = False,
        expect: int | None = 200,
        **params: Any,
    ) -> dict:
        """GET /loki/api/v1/query (an instant query; default time a second from now)."""
        p = {"query": q, "time": now_ns() + NS_PER_S, "limit": 1000}
        p.update(params)
        headers = {"X-Loki-Response-Encoding-Flags": "categorize-labels"} if categorize else None
        r = self.get("/loki/api/v1/query", tenant=tenant, headers=headers, params=p)
        return self._answer(r, expect, f"query {q!r}")

    @staticmethod
    def _answer(r: requests.Response, expect: int | None, what: str) -> dict:
        if expect is not None:
            assert r.status_code == expect, f"{what}: want {expect}, got {r.status_code}: {r.text[:2000]}"
        body = r.json()
        if expect == 200:
            assert body.get("status") == "success", f"{what}: {body}"
        return body

    def metrics(self) -> list[Sample]:
        r = self.get("/metrics")
        assert r.status_code == 200, r.text
        return parse_metrics(r.text)


# ----------------------------------------------------------------------------- fixtures


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def server_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterable[Callable[[], Server]]:
    """Makes unstarted `Server`s; all are stopped at teardown, and their logs printed if the
    test failed."""
    servers: list[Server] = []
    binary = sightline_bin()

    def make() -> Server:
        s = Server(binary, tmp_path / f"server{len(servers)}")
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()
    rep = getattr(request.node, "rep_call", None)
    if rep is None or rep.failed:
        for s in servers:
            print(s.log_tail())


@pytest.fixture
def server(server_factory: Callable[[], Server], tmp_path: Path) -> Server:
    """A started server with the default configuration on a fresh data dir."""
    return server_factory().start(tmp_path / "data")
