"""Helpers of the metrics tests: child processes stopped by PID (the `prometheus_client` demo
service, a real Prometheus), remote-write requests encoded by hand, and the Prometheus HTTP
API as the tests call it.

Fixtures defined here are imported by the test modules that use them.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Iterable, Iterator

import cramjam
import pytest
import requests

from conftest import HTTP_TIMEOUT_S, clean_env, free_ports, sightline_bin, wait_until

HERE = Path(__file__).resolve().parent
PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL_BIN = os.environ.get("PROMTOOL_BIN") or shutil.which("promtool") or "/usr/bin/promtool"
STOP_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 60


# ----------------------------------------------------------------------------- processes


class Child:
    """A child process with its output in a log file, stopped by its PID (SIGTERM, wait,
    SIGKILL on time-out)."""

    def __init__(self, name: str, args: list[str], log_path: Path, env: dict | None = None):
        self.name = name
        self.args = args
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env or clean_env()
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, n: int = 40) -> str:
        lines = self.log().splitlines()[-n:]
        return f"--- {self.name} ({self.log_path}, last {len(lines)} lines)\n" + "\n".join(lines)

    def kill9(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """Never raises; safe to call twice."""
        if self.proc.poll() is not None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass


@pytest.fixture
def children(request: pytest.FixtureRequest) -> Iterator[list[Child]]:
    """A list the test appends its `Child`ren to; all stopped at teardown, their logs printed
    if the test failed."""
    started: list[Child] = []
    yield started
    for c in reversed(started):
        c.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is None or rep.failed:
        for c in started:
            print(c.log_tail())


def start_demo_service(children: list[Child], work_dir: Path, static: bool = False) -> tuple[Child, str]:
    """Starts `metrics_service.py` on a free port; returns it and its `host:port`."""
    (port,) = free_ports(1)
    args = [sys.executable, str(HERE / "metrics_service.py"), str(port)] + (["--static"] if static else [])
    child = Child("demo service", args, work_dir / f"demo-service-{port}.log")
    children.append(child)
    addr = f"127.0.0.1:{port}"

    def up() -> bool:
        assert child.alive(), f"demo service exited:\n{child.log_tail()}"
        try:
            return requests.get(f"http://{addr}/metrics", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_until(up, 20, f"the demo service to answer on {addr}", interval_s=0.1)
    return child, addr


def start_prometheus(children: list[Child], work_dir: Path, config_yaml: str, extra_args: Iterable[str] = ()) -> tuple[Child, str]:
    """Starts the real `prometheus` on a free port with `config_yaml`; returns it and its URL
    once it is ready."""
    if not os.access(PROMETHEUS_BIN, os.X_OK):
        pytest.fail(f"prometheus not found at {PROMETHEUS_BIN}: `.ci/run` installs the Debian package `prometheus`")
    (port,) = free_ports(1)
    pdir = work_dir / "prometheus"
    (pdir / "data").mkdir(parents=True, exist_ok=True)
    cfg = pdir / "prometheus.yml"
    cfg.write_text(config_yaml)
    args = [
        PROMETHEUS_BIN,
        f"--config.file={cfg}",
        f"--storage.tsdb.path={pdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=info",
        *extra_args,
    ]
    child = Child("prometheus", args, pdir / "prometheus.log")
    children.append(child)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert child.alive(), f"prometheus exited:\n{child.log_tail()}"
        try:
            return requests.get(f"{url}/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_until(ready, 30, f"prometheus on {url} to be ready", interval_s=0.1)
    return child, url


def cli(*args: str) -> subprocess.CompletedProcess:
    """Runs the `sightline` command line to completion."""
    return subprocess.run([sightline_bin(), *args], capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=clean_env())


def ok(p: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert p.returncode == 0, f"{p.args} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


# ----------------------------------------------------------------------------- remote write


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 as protobuf encodes it: ten bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(num: int, data: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _field_double(num: int, v: float) -> bytes:
    return _varint(num << 3 | 1) + struct.pack("<d", v)


def _field_varint(num: int, v: int) -> bytes:
    return _varint(num << 3 | 0) + _varint(v)


def _labels(labels: dict[str, str]) -> bytes:
    return b"".join(
        _field_bytes(1, _field_bytes(1, k.encode()) + _field_bytes(2, v.encode())) for k, v in sorted(labels.items())
    )


METRIC_TYPES = {"counter": 1, "gauge": 2, "histogram": 3, "gaugehistogram": 4, "summary": 5, "info": 6, "stateset": 7}


def write_request(
    series: Iterable[tuple[dict[str, str], list[tuple[int, float]]]],
    exemplars: dict[int, list[tuple[dict[str, str], float, int]]] | None = None,
    metadata: Iterable[tuple[str, str, str, str]] = (),
) -> bytes:
    """A `prometheus.WriteRequest` (remote write 1.0), protobuf-encoded, not compressed.

    `series` are (labels, [(timestamp_ms, value)]); `exemplars` maps an index into `series`
    to its [(labels, value, timestamp_ms)]; `metadata` are (family, type, help, unit)."""
    out = bytearray()
    for i, (labels, samples) in enumerate(series):
        ts = bytearray(_labels(labels))
        for t, v in samples:
            ts += _field_bytes(2, _field_double(1, v) + _field_varint(2, t))
        for ex_labels, v, t in (exemplars or {}).get(i, []):
            ts += _field_bytes(3, _labels(ex_labels) + _field_double(2, v) + _field_varint(3, t))
        out += _field_bytes(1, bytes(ts))
    for family, mtype, help_text, unit in metadata:
        md = _field_varint(1, METRIC_TYPES[mtype]) + _field_bytes(2, family.encode())
        md += _field_bytes(4, help_text.encode()) + _field_bytes(5, unit.encode())
        out += _field_bytes(3, md)
    return bytes(out)


def snappy_block(data: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(data))


REMOTE_WRITE_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def remote_write(url: str, body: bytes, compress: bool = True, tenant: str | None = None) -> requests.Response:
    """POSTs a WriteRequest to `url`/api/v1/write (snappy-compressed unless told otherwise)."""
    headers = dict(REMOTE_WRITE_HEADERS)
    if tenant is not None:
        headers["X-Scope-OrgID"] = tenant
    return requests.post(f"{url}/api/v1/write", data=snappy_block(body) if compress else body, headers=headers, timeout=HTTP_TIMEOUT_S)


# ----------------------------------------------------------------------------- Prometheus API


def prom_get(url: str, path: str, **params) -> requests.Response:
    return requests.get(f"{url}{path}", params=params, timeout=HTTP_TIMEOUT_S)


def prom_ok(r: requests.Response) -> dict | list:
    """The `data` of a successful Prometheus API answer; fails with the body otherwise."""
    assert r.status_code == 200, f"{r.request.method} {r.url}: {r.status_code} {r.text[:2000]}"
    body = r.json()
    assert body.get("status") == "success", body
    return body["data"]


def instant(url: str, query: str, at: float | None = None) -> dict:
    params = {"query": query}
    if at is not None:
        params["time"] = f"{at:.3f}"
    return prom_ok(prom_get(url, "/api/v1/query", **params))


def vector(url: str, query: str, at: float | None = None) -> list[dict]:
    data = instant(url, query, at)
    assert data["resultType"] == "vector", data
    return data["result"]


def values_by_labels(result: list[dict], *keys: str) -> dict:
    """{(label values of `keys`): float value} of an instant vector."""
    return {tuple(s["metric"].get(k, "") for k in keys): float(s["value"][1]) for s in result}
