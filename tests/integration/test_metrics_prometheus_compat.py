"""Sightline answers PromQL as Prometheus does, over the same samples.

A real `prometheus` scrapes the `prometheus_client` demo service (metrics_service.py) every
second and remote-writes every sample (and exemplar, and metadata) to Sightline. Then every
query of promql_queries.txt is asked of both, as instant queries at six fixed times (three
on a scrape's own timestamp or whole seconds after it, where closed window ends matter) and
as two range queries, all inside the window both hold; the answers must be equal: same result
type, same label sets, the same values as strings (so to the last digit), and the same order
where the query sorts. Every mismatch is printed as a diff and the test fails listing all.

`promtool query instant` and `query range` against Sightline print what they print against
Prometheus, and the series, labels, metadata and exemplar APIs agree too.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from conftest import Server, clean_env, sightline_bin, wait_until
from metrics_helpers import (
    PROMTOOL_BIN,
    Child,
    instant,
    prom_get,
    start_demo_service,
    start_prometheus,
)

QUERIES_FILE = Path(__file__).resolve().parent / "promql_queries.txt"
QUERIES_MIN = 60
# Seconds of scraped data before the queries: the longest window in the table is 30s, and
# the evaluation times start 20s in.
DATA_S = 40.0
# How far before the last sample Sightline holds the evaluation times stay.
MARGIN_S = 1.5
SCRAPE_INTERVAL = "1s"

PROMETHEUS_CONFIG = """\
global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
scrape_configs:
  - job_name: demo
    static_configs:
      - targets: ["{target}"]
        labels:
          env: test
remote_write:
  - url: {sightline}/api/v1/write
    send_exemplars: true
    remote_timeout: 10s
    queue_config:
      capacity: 10000
      min_shards: 1
      max_shards: 1
      max_samples_per_send: 5000
      batch_send_deadline: 250ms
      min_backoff: 50ms
      max_backoff: 1s
    metadata_config:
      send: true
      send_interval: 2s
"""


# ----------------------------------------------------------------------------- the table


@dataclass
class Case:
    line_no: int
    query: str
    instant_only: bool = False
    ordered: bool = False
    error: bool = False


def load_cases(path: Path = QUERIES_FILE) -> list[Case]:
    cases = []
    for i, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        case = Case(i, line)
        m = re.match(r"^\[([a-z, ]+)\]\s*(.*)$", line)
        if m:
            case.query = m.group(2)
            for flag in (f.strip() for f in m.group(1).split(",")):
                if flag == "instant":
                    case.instant_only = True
                elif flag == "ordered":
                    case.ordered = True
                elif flag == "error":
                    case.error = True
                else:
                    raise ValueError(f"{path.name}:{i}: unknown flag {flag!r}")
        cases.append(case)
    return cases


def test_query_table_is_big_enough():
    cases = load_cases()
    assert len(cases) >= QUERIES_MIN, f"{QUERIES_FILE.name} has {len(cases)} queries, want >= {QUERIES_MIN}"
    queries = [c.query for c in cases]
    dups = {q for q in queries if queries.count(q) > 1}
    assert not dups, f"duplicate queries: {dups}"


# ----------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    sightline: Server
    prometheus_url: str
    first_s: float  # the first scrape's time
    end_s: float  # the latest evaluation time both hold every sample before
    children: list[Child]
    sample_s: float = 0.0  # a scrape's time about 26s in: windows ending or starting on a sample

    @property
    def sightline_url(self) -> str:
        return self.sightline.url

    def logs(self) -> str:
        return "\n".join([self.sightline.log_tail()] + [c.log_tail() for c in self.children])

    def remote_write_errors(self, n: int = 10) -> str:
        """Prometheus' last complaints about remote write (refused or failed batches)."""
        lines = [
            line
            for c in self.children
            if c.name == "prometheus"
            for line in c.log().splitlines()
            if "remote" in line.lower() and ("level=error" in line or "level=warn" in line)
        ]
        return "\n".join(lines[-n:])


def sample_time(url: str, query: str) -> float | None:
    """The value of a one-element instant vector (used for `timestamp(...)`), or None."""
    try:
        r = prom_get(url, "/api/v1/query", query=query)
    except requests.RequestException:
        return None
    if r.status_code != 200:
        return None
    res = r.json()["data"]["result"]
    return float(res[0]["value"][1]) if len(res) == 1 else None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("compat")
    sightline = Server(sightline_bin(), work / "sightline")
    children: list[Child] = []
    try:
        sightline.start(work / "sightline-data")
        _, target = start_demo_service(children, work)
        config = PROMETHEUS_CONFIG.format(interval=SCRAPE_INTERVAL, target=target, sightline=sightline.url)
        _, prom_url = start_prometheus(children, work, config, ["--enable-feature=exemplar-storage"])

        # The first scrape's time: the earliest `up` sample Prometheus has.
        first = wait_until(
            lambda: sample_time(prom_url, 'min_over_time(timestamp(up{job="demo"})[5m:1s])'),
            30,
            "prometheus to scrape the demo service",
            interval_s=0.2,
        )
        deadline = first + DATA_S
        time.sleep(max(0.0, deadline - time.time()))

        def sightline_caught_up() -> float | None:
            last = sample_time(sightline.url, 'timestamp(up{job="demo"})')
            return last if last is not None and last >= deadline - 1.5 else None

        last = wait_until(sightline_caught_up, 30, "Sightline to receive the remote-written samples", interval_s=0.25)
        # A sample's own time, so some windows start or end exactly on a sample (Prometheus
        # 2.x selects [t - range, t], both ends closed).
        sample = instant(prom_url, 'timestamp(up{job="demo"})', first + 26)["result"][0]["value"][1]
    except BaseException:
        print(Stack(sightline, "", 0, 0, children).logs())
        for c in reversed(children):
            c.stop()
        sightline.close()
        raise
    try:
        yield Stack(sightline, prom_url, first, round(last - MARGIN_S, 3), children, float(sample))
    finally:
        for c in reversed(children):
            c.stop()
        sightline.close()


# ----------------------------------------------------------------------------- comparing


def labels_key(metric: dict) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def answer(url: str, path: str, params: dict) -> tuple[int, dict]:
    """Status and decoded body of a POSTed query (a body that is not JSON as an error)."""
    r = requests.post(f"{url}{path}", data=params, timeout=60)
    try:
        body = r.json()
    except ValueError:
        body = {"status": "error", "errorType": "<not json>", "error": r.text[:500]}
    return r.status_code, body


def normalise(data: dict, ordered: bool) -> tuple[str, list]:
    """resultType and a comparable form of the result: [(labels, points)], sorted by labels
    unless the order itself is compared."""
    rtype = data.get("resultType")
    result = data.get("result")
    if rtype in ("scalar", "string"):
        return rtype, [("", [(result[0], result[1])])]
    items = []
    for s in result or []:
        pts = [tuple(s["value"])] if rtype == "vector" else [tuple(p) for p in s.get("values", [])]
        items.append((labels_key(s.get("metric", {})), pts))
    if not ordered:
        items.sort(key=lambda x: x[0])
    return rtype, items


def diff(prom: tuple[str, list], ours: tuple[str, list], ordered: bool, limit: int = 12) -> list[str]:
    """Readable differences between two normalised answers (empty when equal)."""
    out = []
    if prom[0] != ours[0]:
        return [f"resultType: prometheus {prom[0]!r}, sightline {ours[0]!r}"]
    if prom[1] == ours[1]:
        return []
    p, s = dict(prom[1]), dict(ours[1])
    for k in sorted(p.keys() - s.keys()):
        out.append(f"only in prometheus: {k} {p[k][:4]}{' ...' if len(p[k]) > 4 else ''}")
    for k in sorted(s.keys() - p.keys()):
        out.append(f"only in sightline: {k} {s[k][:4]}{' ...' if len(s[k]) > 4 else ''}")
    for k in sorted(p.keys() & s.keys()):
        if p[k] != s[k]:
            pts_p, pts_s = dict(p[k]), dict(s[k])
            bad = []
            for t in sorted(pts_p.keys() | pts_s.keys()):
                if pts_p.get(t) != pts_s.get(t):
                    bad.append(f"@{t}: prometheus {pts_p.get(t, '<none>')} sightline {pts_s.get(t, '<none>')}")
            out.append(f"values of {k}: " + "; ".join(bad[:4]) + (f"; ... ({len(bad)} points differ)" if len(bad) > 4 else ""))
    if not out and ordered:
        out.append(f"order: prometheus {[k for k, _ in prom[1]]}\n        sightline  {[k for k, _ in ours[1]]}")
    if len(prom[1]) != len(p) or len(ours[1]) != len(s):
        out.append(f"duplicate label sets: prometheus {len(prom[1])} series, sightline {len(ours[1])}")
    return out[:limit] + ([f"... {len(out) - limit} more"] if len(out) > limit else [])


def compare(stack: Stack, case: Case, what: str, path: str, params: dict, seen: set | None = None) -> list[str]:
    """[] when both answer `case` alike, else lines describing the mismatch. Adds the case's
    line to `seen` when Prometheus' answer is not empty."""
    p_status, p_body = answer(stack.prometheus_url, path, params)
    if seen is not None and p_body.get("status") == "success" and p_body["data"].get("result"):
        seen.add(case.line_no)
    s_status, s_body = answer(stack.sightline_url, path, params)
    head = f"line {case.line_no}: {what} {case.query!r}"
    if case.error:
        if p_body.get("status") != "error":
            return [f"{head}: the table says this fails, but prometheus answered {p_status}: {json.dumps(p_body)[:300]}"]
        if s_body.get("status") != "error" or s_status != p_status or s_body.get("errorType") != p_body.get("errorType"):
            return [
                f"{head}: prometheus refused it ({p_status} {p_body.get('errorType')}: {p_body.get('error')}), "
                f"sightline answered {s_status} {json.dumps(s_body)[:300]}"
            ]
        return []
    if p_body.get("status") != "success":
        return [f"{head}: bad query in the table, prometheus refused it: {p_status} {p_body.get('error')}"]
    if s_body.get("status") != "success":
        return [f"{head}: prometheus answered, sightline refused it: {s_status} {s_body.get('errorType')}: {s_body.get('error')}"]
    d = diff(normalise(p_body["data"], case.ordered), normalise(s_body["data"], case.ordered), case.ordered)
    return [f"{head}:"] + ["    " + x for x in d] if d else []


def times_of(stack: Stack) -> dict:
    """The evaluation times (seconds, ms precision), all where both hold the same samples:
    instant times, and ranges as (start, end, step)."""
    f, s = stack.first_s, stack.sample_s
    return {
        "instant": [stack.end_s, round(f + 21.371, 3), round(f + 30.5, 3), s, round(s + 5, 3), round(s + 10, 3)],
        "range": (round(f + 20.25, 3), stack.end_s, "3s"),
        "ranges": [(round(f + 20.25, 3), stack.end_s, "3s"), (round(s - 6, 3), round(s + 10, 3), "1")],
        "mid": round(f + 25.0, 3),
    }


def test_promql_answers_equal_prometheus(stack: Stack):
    cases = load_cases()
    t = times_of(stack)
    assert all(a < b <= stack.end_s for a, b, _ in t["ranges"]), t
    assert all(stack.first_s + 20 <= x <= stack.end_s for x in t["instant"]), (stack.first_s, stack.end_s, t)
    failures: list[str] = []
    asked = 0
    answered: set[int] = set()  # lines with a non-empty answer at least once
    for case in cases:
        q = case.query.replace("$MID", f"{t['mid']:.3f}")
        c = Case(case.line_no, q, case.instant_only, case.ordered, case.error)
        for at in t["instant"]:
            asked += 1
            failures += compare(stack, c, f"instant @{at:.3f}", "/api/v1/query", {"query": q, "time": f"{at:.3f}"}, answered)
        for start, end, step in [] if case.instant_only else t["ranges"]:
            asked += 1
            params = {"query": q, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": step}
            failures += compare(stack, c, f"range {start:.3f}..{end:.3f} step {step}", "/api/v1/query_range", params, answered)
    # Guards against a setup that leaves both empty-handed (equal, and proving nothing).
    empty = [c.query for c in cases if not c.error and c.line_no not in answered]
    assert len(empty) <= len(cases) // 10, f"prometheus answered nothing to {len(empty)} queries: {empty}"
    mismatched = sorted({int(m.group(1)) for f in failures if (m := re.match(r"line (\d+):", f))})
    if failures:
        report = "\n".join(failures)
        rw = stack.remote_write_errors()
        if rw:
            report += "\n\nprometheus' remote-write errors (samples Sightline refused are missing from it):\n" + rw
        print(report)
        pytest.fail(
            f"{len(mismatched)} of {len(cases)} queries ({asked} evaluations) differ from Prometheus "
            f"(lines {mismatched} of {QUERIES_FILE.name}):\n{report}",
            pytrace=False,
        )


def test_promql_range_query_get_equals_post(stack: Stack):
    """GET and POST of /api/v1/query_range give the same answer."""
    start, end, _ = times_of(stack)["range"]
    params = {"query": "rate(demo_requests_total[10s])", "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "2"}
    got = requests.get(f"{stack.sightline_url}/api/v1/query_range", params=params, timeout=30)
    posted = requests.post(f"{stack.sightline_url}/api/v1/query_range", data=params, timeout=30)
    assert got.status_code == 200 and posted.status_code == 200, (got.text, posted.text)
    assert got.json() == posted.json()
    assert len(got.json()["data"]["result"]) == 6, got.text


# ----------------------------------------------------------------------------- metadata APIs


def both(stack: Stack, path: str, params: dict | list) -> tuple[object, object]:
    out = []
    for url in (stack.prometheus_url, stack.sightline_url):
        r = requests.get(f"{url}{path}", params=params, timeout=30)
        assert r.status_code == 200, f"{url}{path} {params}: {r.status_code} {r.text[:1000]}"
        body = r.json()
        assert body["status"] == "success", body
        out.append(body["data"])
    return out[0], out[1]


def test_series_and_label_apis_equal_prometheus(stack: Stack):
    window = {"start": f"{stack.first_s + 5:.3f}", "end": f"{stack.end_s:.3f}"}
    p, s = both(stack, "/api/v1/labels", window)
    assert sorted(s) == sorted(p), f"labels: prometheus {p}, sightline {s}"
    p, s = both(stack, "/api/v1/label/__name__/values", window)
    assert sorted(s) == sorted(p), f"metric names: prometheus {p}, sightline {s}"
    p, s = both(stack, "/api/v1/label/room/values", window)
    assert s == p == ["attic", "cellar", "kitchen"], (p, s)
    for match in (["demo_requests_total"], ['{__name__=~"demo_temp.*|demo_flap"}', "up"], ['demo_requests_total{code="500"}']):
        p, s = both(stack, "/api/v1/series", [("match[]", m) for m in match] + list(window.items()))
        assert sorted(map(labels_key, s)) == sorted(map(labels_key, p)), f"series {match}: prometheus {p}, sightline {s}"


def test_metadata_equals_prometheus(stack: Stack):
    p, s = both(stack, "/api/v1/metadata", {})
    p = {k: v for k, v in p.items() if k.startswith("demo_")}
    assert p, "prometheus has no metadata of the demo service"
    # Metadata is remote-written every 2s (metadata_config.send_interval).
    def ours():
        _, s = both(stack, "/api/v1/metadata", {})
        return {k: v for k, v in s.items() if k.startswith("demo_")} == p or None

    try:
        wait_until(ours, 10, "remote-written metadata")
    except AssertionError:
        _, s = both(stack, "/api/v1/metadata", {})
        pytest.fail(f"metadata: prometheus {json.dumps(p, sort_keys=True)}\nsightline {json.dumps({k: v for k, v in s.items() if k.startswith('demo_')}, sort_keys=True)}")
    p, s = both(stack, "/api/v1/metadata", {"metric": "demo_temperature_celsius"})
    assert s == p, (p, s)


def test_exemplars_equal_prometheus(stack: Stack):
    params = {
        "query": 'demo_request_duration_seconds_bucket{path="/home"}',
        "start": f"{stack.first_s:.3f}",
        "end": f"{stack.end_s:.3f}",
    }
    p, s = both(stack, "/api/v1/query_exemplars", params)
    assert p, "prometheus kept no exemplars (is --enable-feature=exemplar-storage on?)"

    def norm(data):
        return sorted((labels_key(x["seriesLabels"]), [(e["timestamp"], e["value"], labels_key(e["labels"])) for e in x["exemplars"]]) for x in data)

    np, ns = norm(p), norm(s)
    if np != ns:
        d = diff(("exemplars", np), ("exemplars", ns), False)
        pytest.fail("exemplars differ from prometheus':\n" + "\n".join(d), pytrace=False)


def test_buildinfo(stack: Stack):
    r = requests.get(f"{stack.sightline_url}/api/v1/status/buildinfo", timeout=10)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["version"], data


# ----------------------------------------------------------------------------- promtool


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL_BIN, *args], capture_output=True, text=True, timeout=60, env=clean_env())


def test_promtool_query_instant_and_range(stack: Stack):
    at = f"{stack.end_s:.3f}"
    start, end, _ = times_of(stack)["range"]
    runs = {
        "instant": ["query", "instant", f"--time={at}"],
        "range": ["query", "range", f"--start={start:.3f}", f"--end={end:.3f}", "--step=3s"],
    }
    exprs = {"instant": 'up{job="demo"}', "range": 'rate(demo_requests_total{code="200"}[10s])'}
    for kind, args in runs.items():
        out = {}
        for name, url in (("prometheus", stack.prometheus_url), ("sightline", stack.sightline_url)):
            p = promtool(*args, url, exprs[kind])
            assert p.returncode == 0, f"promtool {kind} against {name} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
            out[name] = p.stdout
        assert out["sightline"] == out["prometheus"], f"promtool query {kind}:\nprometheus:\n{out['prometheus']}\nsightline:\n{out['sightline']}"
        if kind == "instant":
            assert re.search(r'^up\{.*job="demo".*\} => 1 @\[', out["sightline"], re.M), out["sightline"]
        else:
            assert out["sightline"].count(" =>\n") == 3 and " @[" in out["sightline"], out["sightline"]
    # And without a time, as people type it.
    p = promtool("query", "instant", stack.sightline_url, "up")
    assert p.returncode == 0 and 'job="demo"' in p.stdout, p.stdout + p.stderr
