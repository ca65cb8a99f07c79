"""The SDK end to end: the `orders-service` example (examples/orders-service), instrumented
with `sightline-sdk`, run as its three roles (orders -> inventory, payment) against a real
Sightline server. One order placed with a known `traceparent` and `X-Request-ID` must come
back from Sightline as one trace spanning the three services, with the log lines of that
request (joined by the trace id the SDK's OTLP log records carry) and with its metrics: the
RED and business counters Sightline scraped from the services' `/metrics`, and the span
metrics Sightline derived from the spans.

The example binary is `$ORDERS_SERVICE_BIN`, else `target/debug/orders-service` (built by
`cargo build -p orders-service`). Each service exports over OTLP/HTTP to the server
(`OTEL_EXPORTER_OTLP_ENDPOINT`) with its batch processors flushing every 0.5 s, and is
stopped by its PID at teardown (SIGTERM, wait, SIGKILL), its output printed if the test failed.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from pathlib import Path

import pytest
import requests

from conftest import REPO_ROOT, Server, clean_env, free_ports, wait_until
from metrics_helpers import Child, children, vector  # noqa: F401 (fixture)
from traces_helpers import child_of_refs, service_of, tags_of

SERVICES = ("orders", "inventory", "payment")
SCRAPE_JOB = "orders-service"
# A debug build of a service linking the OTel, axum and reqwest stacks may start slowly on a
# loaded machine.
SERVICE_START_TIMEOUT_S = 45.0
# How long the signals may take to show up in Sightline: batch export every 0.5 s, scrape
# every 1 s, span metrics flushed every 1 s; generous for a loaded CI machine.
POLL_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.5

CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: {job}
    static_configs:
      - targets: [{targets}]
span_metrics:
  flush_interval: 1s
"""

# What each service logs while handling the order (examples/orders-service/src/main.rs and
# the SDK's HttpLayer, crates/sightline-sdk/src/http.rs).
EXPECTED_LINES = {
    "orders": {"Request started", "Request completed", "order placed"},
    "inventory": {"Request completed", "stock reserved"},
    "payment": {"Request completed", "payment accepted"},
}
# The server spans of the order (the SDK names them "<METHOD> <route template>").
SERVER_OPS = {
    "orders": "POST /api/orders",
    "inventory": "POST /api/inventory/reserve",
    "payment": "POST /api/payments",
}


# ----------------------------------------------------------------------------- the services


def orders_service_bin() -> str:
    path = os.environ.get("ORDERS_SERVICE_BIN") or str(REPO_ROOT / "target" / "debug" / "orders-service")
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"orders-service binary not found at {path}: build it with `cargo build -p orders-service` "
            "or set ORDERS_SERVICE_BIN"
        )
    return path


def service_env(otlp_endpoint: str) -> dict[str, str]:
    """The test's environment without any OTEL_* a developer may have set (a service name,
    a gRPC protocol, a disabled SDK would change what is tested), exporting to Sightline."""
    env = {k: v for k, v in clean_env().items() if not k.startswith("OTEL_")}
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "500",
            "OTEL_BLRP_SCHEDULE_DELAY": "500",
            "RUST_LOG": "info",
            "RUST_BACKTRACE": "1",
        }
    )
    return env


class Service:
    def __init__(self, role: str, child: Child, port: int, metrics_port: int):
        self.role = role
        self.child = child
        self.port = port
        self.metrics_port = metrics_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_target(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"


def start_service(
    children: list[Child],  # noqa: F811 (fixture)
    work_dir: Path,
    binary: str,
    role: str,
    port: int,
    metrics_port: int,
    env: dict[str, str],
    extra_args: tuple[str, ...] = (),
) -> Service:
    args = [
        binary,
        "--role", role,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--metrics-port", str(metrics_port),
        *extra_args,
    ]  # fmt: skip
    child = Child(f"orders-service --role {role}", args, work_dir / f"{role}.log", env=env)
    children.append(child)
    svc = Service(role, child, port, metrics_port)

    def started() -> bool:
        if not child.alive():
            raise AssertionError(
                f"{role} exited during start-up (code {child.proc.returncode}):\n{child.log_tail()}"
            )
        try:
            return requests.get(f"{svc.url}/health/startup", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(started, SERVICE_START_TIMEOUT_S, f"{role}: {svc.url}/health/startup to answer 200", interval_s=0.1)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{child.log_tail()}") from None
    return svc


# ----------------------------------------------------------------------------- reading back


def poll(what: str, attempt, timeout_s: float = POLL_TIMEOUT_S):
    """Calls `attempt()` -> (result or None, what was seen) until a result comes; fails after
    `timeout_s` with the last thing seen."""
    last = {"seen": None}

    def once():
        result, seen = attempt()
        last["seen"] = seen
        return result

    try:
        return wait_until(once, timeout_s, what, interval_s=POLL_INTERVAL_S)
    except AssertionError as e:
        seen = last["seen"]
        if not isinstance(seen, str):
            seen = json.dumps(seen, indent=1, default=str)
        raise AssertionError(f"{e}; last seen:\n{seen[:6000]}") from None


def fetch_trace(server: Server, trace_id: str):
    """(the Jaeger trace when it holds the server spans of all three services, what was seen)."""
    try:
        r = server.get(f"/api/traces/{trace_id}")
    except requests.RequestException as e:
        return None, f"GET /api/traces/{trace_id}: {e}"
    if r.status_code == 404:
        return None, f"GET /api/traces/{trace_id}: 404 (not there yet) {r.text[:300]}"
    if r.status_code != 200:
        return None, f"GET /api/traces/{trace_id}: {r.status_code} {r.text[:1000]}"
    data = r.json().get("data") or []
    if len(data) != 1:
        return None, f"GET /api/traces/{trace_id}: want one trace, got {len(data)}: {r.text[:1000]}"
    jt = data[0]
    seen = sorted((service_of(jt, s), s["operationName"]) for s in jt.get("spans") or [])
    services = {p["serviceName"] for p in (jt.get("processes") or {}).values()}
    if not set(SERVICES) <= services:
        return None, {"services": sorted(services), "spans": seen}
    # The orders server span ends last (after both calls); wait for every server span.
    if any(find_server_span(jt, svc) is None for svc in SERVICES):
        return None, {"services": sorted(services), "spans": seen, "waiting for": "the three server spans"}
    return jt, seen


def find_server_span(jt: dict, service: str) -> dict | None:
    """The server span of `service` in the trace: named after the route, or of kind server."""
    spans = [s for s in jt.get("spans") or [] if service_of(jt, s) == service]
    for s in spans:
        if s["operationName"] == SERVER_OPS[service]:
            return s
    for s in spans:
        if tags_of(s).get("span.kind", (None, None))[1] == "server":
            return s
    return None


def debug_logs(server: Server, ident: str):
    """(the debug route's answer for `ident`, its log lines by service)."""
    r = server.get(f"/api/v1/debug/{ident}")
    if r.status_code != 200:
        return None, f"GET /api/v1/debug/{ident}: {r.status_code} {r.text[:1000]}"
    body = r.json()
    if body.get("status") != "success" or "data" not in body:
        return None, body
    return body["data"], lines_by_service(body["data"].get("logs") or [])


def log_service(log: dict) -> str:
    """The service a debug-route log line belongs to: OTLP logs get the stream label
    `service` from the resource's `service.name` (test_otlp.py)."""
    labels = log.get("labels") or {}
    return labels.get("service") or labels.get("service_name") or (log.get("metadata") or {}).get("service_name") or "?"


def lines_by_service(logs: list[dict]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for log in logs:
        out.setdefault(log_service(log), []).append(log.get("line", ""))
    return out


def has_line(lines: list[str], text: str) -> bool:
    return any(text in line for line in lines)


def scalar(server: Server, query: str) -> tuple[float | None, list[dict]]:
    """The sum of an instant query's samples (None when empty), and the samples."""
    try:
        res = vector(server.url, query)
    except (AssertionError, requests.RequestException) as e:
        return None, [{"error": str(e)[:1000]}]
    if not res:
        return None, res
    return sum(float(s["value"][1]) for s in res), res


def poll_at_least_one(server: Server, query: str, diagnostics: list[str]) -> float:
    def attempt():
        total, res = scalar(server, query)
        if total is not None and total >= 1:
            return total, res
        seen = {"query": query, "result": res}
        for d in diagnostics:
            seen[d] = scalar(server, d)[1]
        return None, seen

    return poll(f"PromQL {query} >= 1", attempt)


# ----------------------------------------------------------------------------- the test


@pytest.mark.timeout(360)
def test_one_order_is_one_trace_with_its_logs_and_metrics(server_factory, children, tmp_path):  # noqa: F811 (fixture)
    binary = orders_service_bin()
    (orders_port, orders_mport, inv_port, inv_mport, pay_port, pay_mport) = free_ports(6)
    targets = [f"127.0.0.1:{p}" for p in (orders_mport, inv_mport, pay_mport)]

    # 1. Sightline, scraping the three services every second and deriving span metrics.
    config = CONFIG.format(job=SCRAPE_JOB, targets=", ".join(f'"{t}"' for t in targets))
    server = server_factory().start(tmp_path / "data", config_yaml=config)

    # 2. The services, exporting to it; the downstream ones first.
    env = service_env(server.url)
    inventory = start_service(children, tmp_path, binary, "inventory", inv_port, inv_mport, env)
    payment = start_service(children, tmp_path, binary, "payment", pay_port, pay_mport, env)
    orders = start_service(
        children, tmp_path, binary, "orders", orders_port, orders_mport, env,
        ("--inventory-url", inventory.url, "--payment-url", payment.url),
    )  # fmt: skip

    # 3. One order, in a trace the test names.
    trace_id = secrets.token_hex(16)
    parent_span_id = secrets.token_hex(8)
    request_id = f"e2e-{uuid.uuid4()}"
    r = requests.post(
        f"{orders.url}/api/orders",
        json={"user_id": 7, "product": "widget", "quantity": 2, "price": 9.5, "country": "FR"},
        headers={"traceparent": f"00-{trace_id}-{parent_span_id}-01", "X-Request-ID": request_id},
        timeout=30,
    )
    assert r.status_code == 201, f"POST /api/orders: want 201, got {r.status_code}: {r.text[:2000]}"
    assert r.headers.get("X-Request-ID") == request_id, f"the request id must be echoed: {dict(r.headers)}"
    placed = r.json()
    assert placed.get("status") == "placed" and placed.get("order_id"), placed

    # 4. One trace across the three services.
    jt = poll(
        f"trace {trace_id} to hold the server spans of {SERVICES} (GET /api/traces/{trace_id})",
        lambda: fetch_trace(server, trace_id),
    )
    spans = jt["spans"]
    assert jt["traceID"] == trace_id, jt["traceID"]
    for s in spans:
        assert s["traceID"] == trace_id, f"span {s['operationName']} of another trace: {s['traceID']}"
    ids = {s["spanID"]: s for s in spans}
    summary = sorted((service_of(jt, s), s["operationName"], s["spanID"], child_of_refs(s)) for s in spans)

    root = find_server_span(jt, "orders")
    assert child_of_refs(root) == [(trace_id, parent_span_id)], (
        f"the orders server span must be the child of the incoming traceparent's span {parent_span_id}: "
        f"{root.get('references')}\n{summary}"
    )
    for svc in ("inventory", "payment"):
        span = find_server_span(jt, svc)
        refs = child_of_refs(span)
        assert len(refs) == 1, f"the {svc} server span must have one parent: {span.get('references')}\n{summary}"
        (ref_trace, ref_span) = refs[0]
        assert ref_trace == trace_id, f"the {svc} server span's parent is in another trace: {refs}"
        assert ref_span in ids, f"the {svc} server span's parent {ref_span} is not a span of the trace:\n{summary}"
        parent_service = service_of(jt, ids[ref_span])
        assert parent_service == "orders", (
            f"the {svc} server span's parent must be an orders span (the call), got {parent_service}:\n{summary}"
        )
    # The request id travelled with the trace (the SDK's client forwards X-Request-ID).
    for svc in SERVICES:
        span = find_server_span(jt, svc)
        assert tags_of(span).get("request_id", (None, None))[1] == request_id, (
            f"the {svc} server span must carry request_id={request_id}: {tags_of(span)}"
        )

    # 5. The request's log lines, joined to it by the trace id their OTLP records carry.
    def logs_of_trace():
        data, seen = debug_logs(server, trace_id)
        if data is None:
            return None, seen
        if all(all(has_line(seen.get(svc, []), t) for t in want) for svc, want in EXPECTED_LINES.items()):
            return data, seen
        return None, {"by service": seen, "want": {k: sorted(v) for k, v in EXPECTED_LINES.items()}}

    try:
        data = poll(f"GET /api/v1/debug/{trace_id} to hold every expected log line", logs_of_trace)
    except AssertionError as e:
        # All the lines are expected; what the test requires is the orders service's lines and
        # at least one downstream service's.
        data, seen = debug_logs(server, trace_id)
        assert data is not None, f"{e}\nthen: {seen}"
        downstream = [svc for svc in ("inventory", "payment") if seen.get(svc)]
        assert has_line(seen.get("orders", []), "Request completed") and has_line(seen.get("orders", []), "order placed") and downstream, (
            f"the debug route must hold the orders service's 'Request completed' and 'order placed' lines "
            f"and a downstream service's lines: {e}"
        )
    assert data["trace_id"] == trace_id, data["trace_id"]
    assert data["trace"] is not None and data["trace"]["traceID"] == trace_id, f"debug {trace_id}: no trace"
    for log in data["logs"]:
        assert (log.get("metadata") or {}).get("trace_id") == trace_id, f"a line of another trace: {log}"
    by_service = lines_by_service(data["logs"])
    assert set(by_service) <= set(SERVICES), f"lines of services outside the order: {by_service}"

    # The request id leads to the same trace and lines (through the request spans' attribute).
    data_rid, seen_rid = debug_logs(server, request_id)
    assert data_rid is not None, seen_rid
    assert data_rid["trace_id"] == trace_id, f"debug {request_id}: trace_id {data_rid['trace_id']}, want {trace_id}"
    assert has_line(seen_rid.get("orders", []), "order placed"), f"debug {request_id}: {seen_rid}"

    # And LogQL finds them by the trace id in their structured metadata.
    orders_lines = [v[1] for s in server.query_range(f'{{service="orders"}} | trace_id="{trace_id}"')["data"]["result"] for v in s["values"]]
    assert has_line(orders_lines, "Request completed") and has_line(orders_lines, "order placed"), (
        f'{{service="orders"}} | trace_id="{trace_id}": {orders_lines}'
    )
    all_streams = server.query_range(f'{{service=~"orders|inventory|payment"}} | trace_id="{trace_id}"')["data"]["result"]
    logql_services = {s["stream"].get("service") for s in all_streams}
    assert "orders" in logql_services and logql_services & {"inventory", "payment"}, (
        f"LogQL by trace_id must find the lines of orders and a downstream service: {all_streams}"
    )

    # 6. Metrics: what Sightline scraped from the services, and the span metrics it derived.
    up_query = f'up{{job="{SCRAPE_JOB}"}}'
    poll_at_least_one(
        server,
        f'http_requests_total{{job="{SCRAPE_JOB}",instance="{orders.metrics_target}",'
        f'endpoint="/api/orders",method="POST",status_code="201"}}',
        [up_query, f'http_requests_total{{job="{SCRAPE_JOB}"}}'],
    )
    poll_at_least_one(
        server,
        f'orders_total{{job="{SCRAPE_JOB}",instance="{orders.metrics_target}",product="widget",country="FR"}}',
        [up_query, f'{{job="{SCRAPE_JOB}",__name__=~"orders.*"}}'],
    )
    # The order's amount (2 × 9.5), observed by the orders service's summary: its median is
    # within the summary's 1 % accuracy, and _count is scraped beside it.
    poll_at_least_one(
        server,
        f'order_amount_count{{job="{SCRAPE_JOB}",instance="{orders.metrics_target}"}} > 0',
        [up_query, f'{{job="{SCRAPE_JOB}",__name__=~"order_amount.*"}}'],
    )
    poll_at_least_one(
        server,
        f'order_amount{{job="{SCRAPE_JOB}",quantile="0.5"}} > 18.81 < 19.19',
        [f'{{job="{SCRAPE_JOB}",__name__=~"order_amount.*"}}'],
    )
    poll_at_least_one(
        server,
        'traces_spanmetrics_calls_total{service="payment"}',
        ['sum by (service, operation) (traces_spanmetrics_calls_total)'],
    )

    def all_up():
        up = {s["metric"].get("instance"): s["value"][1] for s in scalar(server, up_query)[1] if "metric" in s}
        return (up if up == {t: "1" for t in targets} else None), {"up": up, "targets": targets}

    poll(f"{up_query} == 1 for the three services", all_up)
