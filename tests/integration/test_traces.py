"""Traces end to end: spans in over OTLP (HTTP protobuf and JSON, gRPC) and Zipkin v2, read
back through the Jaeger query API, searched, joined with logs by the debug route, turned into
span metrics queried with PromQL, kept across kill -9, and shown by the command line.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.trace import StatusCode

from conftest import Server, now_ns, wait_until
from metrics_helpers import cli, ok, values_by_labels, vector
from traces_helpers import (
    JAEGER_KINDS,
    MS,
    OPERATIONS,
    SPAN_METRICS_CONFIG,
    TRACE_EXPORT_PATH,
    assert_alive,
    assert_handle_order,
    assert_json_error,
    assert_no_trace,
    child_of_refs,
    debug,
    get_trace,
    get_trace_upper,
    handle_order,
    jaeger_data,
    otlp_json,
    otlp_proto,
    post_otlp_json,
    post_otlp_proto,
    post_zipkin,
    raw_span,
    rejected_spans_json,
    search,
    send_orders,
    service_of,
    spans_by_name,
    tags_of,
    zipkin_span,
)


# ----------------------------------------------------------------------------- 1. the SDK's trace


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_sdk_handle_order_read_back(server: Server, protocol: str):
    (sent,) = send_orders(server, [{}], protocol=protocol)
    assert_handle_order(get_trace(server, sent.trace_id), sent)
    # Upper-case ids are the same trace.
    assert_handle_order(get_trace_upper(server, sent.trace_id), sent)

    assert "orders" in jaeger_data(server.get("/api/services"), "/api/services")
    ops = jaeger_data(server.get("/api/services/orders/operations"), "/api/services/orders/operations")
    assert sorted(ops) == sorted(OPERATIONS), ops
    ops = jaeger_data(server.get("/api/operations", params={"service": "orders"}), "/api/operations")
    assert all(isinstance(o, dict) for o in ops), f"Jaeger's /api/operations lists {{name, spanKind}} objects: {ops}"
    assert sorted(o["name"] for o in ops) == sorted(OPERATIONS), ops
    assert {o["name"]: o.get("spanKind") for o in ops} == JAEGER_KINDS, ops
    assert jaeger_data(server.get("/api/services/nosuchservice/operations"), "operations of an unknown service") in ([], None)

    assert_no_trace(server, uuid.uuid4().hex)


# ----------------------------------------------------------------------------- 2. Zipkin


def test_zipkin_v2_read_back_and_dependencies(server: Server):
    trace_id = uuid.uuid4().hex
    root_id, child_id = uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    ts_us = now_ns() // 1000 - 5_000_000
    body = [
        zipkin_span(trace_id, root_id, "get /checkout", "frontend", ts_us, 150_000, tags={"http.method": "GET", "http.path": "/checkout"}),
        zipkin_span(
            trace_id, child_id, "reserve", "inventory", ts_us + 12_000, 20_250, parent=root_id,
            tags={"error": "out of stock", "sku": "sku-1"},
            annotations=[{"timestamp": ts_us + 13_000, "value": "lock acquired"}],
        ),
    ]  # fmt: skip
    r = post_zipkin(server, body)
    assert r.status_code == 202, f"{r.status_code} {r.text}"

    jt = get_trace(server, trace_id)
    spans = spans_by_name(jt)
    assert set(spans) == {"get /checkout", "reserve"}, sorted(spans)
    root, child = spans["get /checkout"], spans["reserve"]
    assert (root["spanID"], child["spanID"]) == (root_id, child_id)
    assert service_of(jt, root) == "frontend" and service_of(jt, child) == "inventory", jt["processes"]
    assert (root["startTime"], root["duration"]) == (ts_us, 150_000), root
    assert (child["startTime"], child["duration"]) == (ts_us + 12_000, 20_250), child
    assert child_of_refs(root) == [] and child_of_refs(child) == [(trace_id, root_id)], (root, child)
    assert tags_of(root).get("http.method") == ("string", "GET"), tags_of(root)
    assert "error" not in tags_of(root), tags_of(root)
    assert tags_of(child).get("error") == ("bool", True), tags_of(child)
    assert tags_of(child).get("sku") == ("string", "sku-1"), tags_of(child)
    assert [lg["timestamp"] for lg in child.get("logs") or []] == [ts_us + 13_000], child.get("logs")

    services = jaeger_data(server.get("/api/services"), "/api/services")
    assert {"frontend", "inventory"} <= set(services), services
    assert jaeger_data(server.get("/api/services/inventory/operations"), "operations") == ["reserve"]

    # The call from frontend to inventory is a dependency.
    end_ms = now_ns() // MS + 60_000
    deps = jaeger_data(server.get("/api/dependencies", params={"endTs": end_ms, "lookback": 3_600_000}), "/api/dependencies")
    links = {(d["parent"], d["child"]): d["callCount"] for d in deps}
    assert links == {("frontend", "inventory"): 1}, deps
    # Outside the lookback: none.
    deps = jaeger_data(
        server.get("/api/dependencies", params={"endTs": end_ms - 3_600_000, "lookback": 60_000}), "/api/dependencies (old)"
    )
    assert deps in ([], None), deps


# ----------------------------------------------------------------------------- 3. search


def test_search_by_duration_operation_and_tags(server: Server):
    # Root durations: 52.6 ms, 78.9 ms, 65.75 ms (fast) and 263 ms, 394.5 ms, 526 ms (slow).
    specs = [
        {"scale": 0.2, "payment_fails": False, "order_id": "ord-1"},
        {"scale": 1.0, "payment_fails": True, "order_id": "ord-2"},
        {"scale": 0.3, "payment_fails": True, "order_id": "ord-3"},
        {"scale": 1.5, "payment_fails": False, "order_id": "ord-4"},
        {"scale": 0.25, "payment_fails": False, "order_id": "ord-5"},
        {"scale": 2.0, "payment_fails": False, "order_id": "ord-6"},
    ]
    sent = send_orders(server, specs)
    by_order = {t.order_id: t.trace_id for t in sent}
    slow = {by_order[o] for o in ("ord-2", "ord-4", "ord-6")}
    fast = {by_order[o] for o in ("ord-1", "ord-3", "ord-5")}
    failed = {by_order[o] for o in ("ord-2", "ord-3")}
    # Another service's slow trace must not be found by service=orders.
    (other,) = send_orders(server, [{"scale": 3.0}], service="warehouse")

    everything = search(server, service="orders")
    assert set(everything) == slow | fast, everything.keys()
    for tid, jt in everything.items():
        assert len(jt["spans"]) == 5, f"search returns whole traces: {tid} has {len(jt['spans'])} spans"

    assert set(search(server, service="orders", minDuration="200ms")) == slow
    assert set(search(server, service="orders", minDuration="0.2s")) == slow
    assert set(search(server, service="orders", operation="handle_order", maxDuration="100ms")) == fast
    assert set(search(server, service="orders", operation="handle_order", minDuration="300ms", maxDuration="450ms")) == {by_order["ord-4"]}
    assert set(search(server, service="orders", operation="process_payment", minDuration="200ms")) == slow
    assert set(search(server, service="orders", operation="validate_order", minDuration="200ms")) == set()
    assert set(search(server, service="warehouse", minDuration="200ms")) == {other.trace_id}

    assert set(search(server, service="orders", tags=json.dumps({"error": "true"}))) == failed
    assert set(search(server, service="orders", tags=json.dumps({"error": "true"}), minDuration="200ms")) == {by_order["ord-2"]}
    assert set(search(server, service="orders", tags=json.dumps({"order.id": "ord-5"}))) == {by_order["ord-5"]}
    assert set(search(server, service="orders", tags=json.dumps({"order.id": "ord-5", "error": "true"}))) == set()
    assert set(search(server, service="orders", operation="check_inventory", tags=json.dumps({"db.system": "postgresql"}))) == slow | fast

    # limit counts traces; a time range without the spans finds nothing.
    assert len(search(server, service="orders", limit=2)) == 2
    now_us = now_ns() // 1000
    assert search(server, service="orders", start=now_us - 3_600_000_000, end=now_us - 600_000_000) == {}
    assert search(server, service="nosuchservice") == {}


# ----------------------------------------------------------------------------- 4. bad input


def test_bad_input_rejected_with_4xx_and_partial_success(server: Server):
    # Malformed bodies: 400 with a JSON error, nothing stored, the server fine.
    garbage_pb = b"\x0a\xff\xff\xff\xff\x0fthis is not a protobuf message"
    assert_json_error(post_otlp_proto(server, garbage_pb))
    assert_json_error(post_otlp_json(server, '{"resourceSpans": 5}'))
    assert_json_error(post_otlp_json(server, '{"resourceSpans": ['))
    assert_json_error(post_otlp_proto(server, b"\x1f\x8b\x08\x00garbage", headers={"Content-Encoding": "gzip"}))
    assert_json_error(post_zipkin(server, '{"traceId": "not an array"}'))
    assert_json_error(post_zipkin(server, "[{"))
    assert_alive(server)

    # OTLP/JSON: a good span next to one with an 8-byte trace id: the good one is stored.
    good = raw_span("good_span")
    short_trace = raw_span("short_trace_id", trace_id=uuid.uuid4().bytes[:8])
    rejected, msg = rejected_spans_json(post_otlp_json(server, otlp_json("badinput", [good, short_trace])))
    assert rejected == 1 and msg, f"the 8-byte trace id must be a partial success: {rejected} {msg!r}"
    jt = get_trace(server, good.trace_id.hex())
    assert [s["operationName"] for s in jt["spans"]] == ["good_span"], jt
    assert_no_trace(server, short_trace.trace_id.hex())

    # A span ending before it starts, and a 4-byte span id, next to a good span (gzipped).
    good2 = raw_span("good_span_2")
    backwards = raw_span("ends_before_start")
    backwards.end_ns = backwards.start_ns - 1 * MS
    short_span = raw_span("short_span_id")
    short_span.span_id = short_span.span_id[:4]
    rejected, msg = rejected_spans_json(post_otlp_json(server, otlp_json("badinput", [backwards, good2, short_span]), gzip_body=True))
    assert rejected == 2 and msg, f"{rejected} {msg!r}"
    assert [s["operationName"] for s in get_trace(server, good2.trace_id.hex())["spans"]] == ["good_span_2"]
    assert_no_trace(server, backwards.trace_id.hex())
    assert_no_trace(server, short_span.trace_id.hex())

    # The same over OTLP/HTTP protobuf: the answer is an ExportTraceServiceResponse.
    good3, backwards3 = raw_span("good_span_3"), raw_span("ends_before_start_3")
    backwards3.end_ns = backwards3.start_ns - MS
    r = post_otlp_proto(server, otlp_proto("badinput", [good3, backwards3]).SerializeToString())
    assert r.status_code == 200, f"{r.status_code} {r.text[:500]}"
    resp = trace_service_pb2.ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 1 and resp.partial_success.error_message, resp
    assert [s["operationName"] for s in get_trace(server, good3.trace_id.hex())["spans"]] == ["good_span_3"]
    assert_no_trace(server, backwards3.trace_id.hex())

    # gRPC: garbage is INVALID_ARGUMENT; a bad span is a partial success.
    channel = grpc.insecure_channel(server.grpc_addr)
    try:
        raw_export = channel.unary_unary(TRACE_EXPORT_PATH)
        with pytest.raises(grpc.RpcError) as err:
            raw_export(garbage_pb, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
        export = channel.unary_unary(
            TRACE_EXPORT_PATH,
            request_serializer=trace_service_pb2.ExportTraceServiceRequest.SerializeToString,
            response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString,
        )
        good4, short4 = raw_span("good_span_4"), raw_span("short_trace_id_4", trace_id=b"\x01" * 8)
        resp = export(otlp_proto("badinput", [short4, good4]), timeout=10)
        assert resp.partial_success.rejected_spans == 1 and resp.partial_success.error_message, resp
    finally:
        channel.close()
    assert [s["operationName"] for s in get_trace(server, good4.trace_id.hex())["spans"]] == ["good_span_4"]

    # Zipkin: an all-zero id and a span without a timestamp are dropped, the good one kept.
    zt = uuid.uuid4().hex
    ts_us = now_ns() // 1000 - 1_000_000
    zbody = [
        zipkin_span(zt, "0" * 16, "zero_id", "badinput", ts_us, 10),
        zipkin_span(zt, uuid.uuid4().hex[:16], "good_zipkin", "badinput", ts_us, 10),
        {k: v for k, v in zipkin_span(zt, uuid.uuid4().hex[:16], "no_timestamp", "badinput", ts_us, 10).items() if k != "timestamp"},
    ]
    r = post_zipkin(server, zbody)
    assert r.status_code == 202, f"bad spans are dropped, the good one stored: {r.status_code} {r.text[:500]}"
    assert [s["operationName"] for s in get_trace(server, zt)["spans"]] == ["good_zipkin"]

    # Queries with bad parameters: 4xx, never 5xx.
    for path, params in [
        ("/api/traces", {"service": "badinput", "minDuration": "fast"}),
        ("/api/traces", {"service": "badinput", "maxDuration": "-"}),
        ("/api/traces", {"service": "badinput", "start": "yesterday"}),
        ("/api/traces", {"service": "badinput", "tags": "{not json"}),
        ("/api/traces", {"service": "badinput", "limit": "many"}),
        ("/api/traces/not-a-trace-id", {}),
        ("/api/traces/" + "z" * 32, {}),
        ("/api/dependencies", {"endTs": "soon", "lookback": "1h"}),
    ]:
        r = server.get(path, params=params)
        assert 400 <= r.status_code < 500, f"GET {path} {params}: want a 4xx, got {r.status_code}: {r.text[:500]}"
    assert_alive(server)

    # Everything good is still found, nothing bad got in.
    ops = jaeger_data(server.get("/api/services/badinput/operations"), "operations")
    assert sorted(ops) == ["good_span", "good_span_2", "good_span_3", "good_span_4", "good_zipkin"], ops


# ----------------------------------------------------------------------------- 5. debug


def test_debug_by_trace_id_and_request_id(server: Server):
    (sent,) = send_orders(server, [{}])
    request_id = f"req-{uuid.uuid4()}"
    server.push_ndjson([
        {"service": "orders", "level": "error", "message": "payment declined for ord-981", "trace_id": sent.trace_id, "request_id": request_id},
        {"service": "orders", "level": "info", "message": "unrelated line", "trace_id": uuid.uuid4().hex, "request_id": f"req-{uuid.uuid4()}"},
    ])  # fmt: skip

    for ident in (sent.trace_id, request_id):
        data = debug(server, ident)
        assert data["trace_id"] == sent.trace_id, f"debug {ident}: {data['trace_id']}"
        assert data["trace"] is not None, f"debug {ident}: no trace"
        assert data["trace"]["traceID"] == sent.trace_id
        assert_handle_order(data["trace"], sent)
        lines = [log["line"] for log in data["logs"]]
        assert lines == ["payment declined for ord-981"], f"debug {ident}: {data['logs']}"
        log = data["logs"][0]
        assert log["labels"].get("service") == "orders" and log["labels"].get("level") == "error", log
        assert log["metadata"].get("trace_id") == sent.trace_id, log
        assert log["metadata"].get("request_id") == request_id, log
        assert log["timestamp"], log

    # A trace with no logs: the trace, no logs.
    (quiet,) = send_orders(server, [{"payment_fails": False}])
    data = debug(server, quiet.trace_id)
    assert data["trace_id"] == quiet.trace_id and data["logs"] == [], data
    assert_handle_order(data["trace"], quiet)

    # Logs of a trace that never arrived: the logs, no trace.
    lonely = uuid.uuid4().hex
    server.push_ndjson([{"service": "orders", "level": "warn", "message": "trace never sent", "trace_id": lonely}])
    data = debug(server, lonely)
    assert data["trace"] is None and [log["line"] for log in data["logs"]] == ["trace never sent"], data

    # An id nothing knows: not a server error.
    r = server.get(f"/api/v1/debug/req-{uuid.uuid4()}")
    assert r.status_code < 500, f"{r.status_code} {r.text[:500]}"


# ----------------------------------------------------------------------------- 6. span metrics


def test_span_metrics(server_factory, tmp_path):
    server = server_factory().start(tmp_path / "data", config_yaml=SPAN_METRICS_CONFIG)
    # Three orders; the payment fails in two.
    send_orders(server, [{"payment_fails": True}, {"payment_fails": False}, {"payment_fails": True}])
    sel = '{service="orders"}'

    def all_counted():
        res = vector(server.url, f"sum(traces_spanmetrics_calls_total{sel})")
        return res and float(res[0]["value"][1]) == 15

    wait_until(all_counted, 20, "traces_spanmetrics_calls_total to count all 15 spans", interval_s=0.5)

    def rates():
        res = vector(server.url, f"sum by (operation) (rate(traces_spanmetrics_calls_total{sel}[1m]))")
        return res if {s["metric"].get("operation") for s in res} == OPERATIONS else None

    res = wait_until(rates, 20, "a rate per operation (two flushes of span metrics)", interval_s=0.5)
    assert len(res) == len(OPERATIONS), res

    calls = values_by_labels(vector(server.url, f"sum by (operation, status_code) (traces_spanmetrics_calls_total{sel})"), "operation", "status_code")
    assert calls == {
        ("handle_order", "STATUS_CODE_UNSET"): 3,
        ("validate_order", "STATUS_CODE_UNSET"): 3,
        ("check_inventory", "STATUS_CODE_UNSET"): 3,
        ("process_payment", "STATUS_CODE_ERROR"): 2,
        ("process_payment", "STATUS_CODE_UNSET"): 1,
        ("send_confirmation", "STATUS_CODE_OK"): 3,
    }, calls
    series = vector(server.url, f"traces_spanmetrics_calls_total{sel}")
    kinds = {}
    for s in series:
        assert s["metric"].get("span_kind"), f"span_kind must be set: {s['metric']}"
        kinds[s["metric"]["operation"]] = s["metric"]["span_kind"]
    assert kinds["handle_order"] != kinds["validate_order"], f"server and internal spans are told apart: {kinds}"
    assert kinds["check_inventory"] == kinds["process_payment"], kinds

    # The latency histogram: counts as the calls, sums of the known durations, buckets exact.
    counts = values_by_labels(vector(server.url, f"sum by (operation) (traces_spanmetrics_latency_seconds_count{sel})"), "operation")
    assert counts == {(op,): 3 for op in OPERATIONS}, counts
    sums = values_by_labels(vector(server.url, f"sum by (operation) (traces_spanmetrics_latency_seconds_sum{sel})"), "operation")
    assert sums.keys() == counts.keys(), sums
    assert abs(sums[("process_payment",)] - 3 * 0.218) < 1e-6, sums
    assert abs(sums[("handle_order",)] - 3 * 0.263) < 1e-6, sums
    buckets = values_by_labels(
        vector(server.url, f'sum by (le) (traces_spanmetrics_latency_seconds_bucket{{service="orders", operation="process_payment"}})'), "le"
    )
    assert buckets.get(("+Inf",)) == 3, buckets
    assert len(buckets) >= 3, f"more than one bucket: {buckets}"
    for (le,), n in buckets.items():
        want = 3 if float(le) >= 0.218 else 0
        assert n == want, f"bucket le={le}: want {want} (every payment took 218 ms), got {n}: {buckets}"


# ----------------------------------------------------------------------------- 7. durability


@pytest.mark.parametrize("flush_interval", ["1h", "1s"], ids=["wal-only", "segments-and-wal"])
def test_traces_survive_kill9(server_factory, tmp_path, flush_interval):
    data = tmp_path / "data"
    config = f"storage:\n  flush_interval: {flush_interval}\n"
    server = server_factory().start(data, config_yaml=config)
    (first,) = send_orders(server, [{}])
    zt, zid = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    r = post_zipkin(server, [zipkin_span(zt, zid, "zipkin_op", "zipkinsvc", now_ns() // 1000 - 1_000_000, 1234)])
    assert r.status_code == 202, r.text
    before = get_trace(server, first.trace_id)
    if flush_interval == "1s":
        time.sleep(3)  # a flush or two to segments

    server.kill9()
    server.start(data, config_yaml=config)
    after = get_trace(server, first.trace_id)
    assert_handle_order(after, first)
    assert canonical(after) == canonical(before), "the trace must read back the same after kill -9"
    assert get_trace(server, zt)["spans"][0]["duration"] == 1234
    assert "orders" in jaeger_data(server.get("/api/services"), "/api/services")
    assert set(search(server, service="orders")) == {first.trace_id}

    # A second trace, a graceful restart: both there, each span once (no WAL replay twice).
    (second,) = send_orders(server, [{"payment_fails": False}])
    assert server.stop() == 0
    server.start(data, config_yaml=config)
    assert_handle_order(get_trace(server, first.trace_id), first)
    assert_handle_order(get_trace(server, second.trace_id), second)
    assert set(search(server, service="orders")) == {first.trace_id, second.trace_id}


def canonical(jtrace: dict) -> list:
    """A trace's spans without the process ids' names, sorted, for comparing two reads."""
    out = []
    for s in jtrace["spans"]:
        s = dict(s)
        s["service"] = service_of(jtrace, s)
        s.pop("processID", None)
        s.pop("warnings", None)
        s["tags"] = sorted(s.get("tags") or [], key=lambda t: t["key"])
        s["logs"] = sorted(
            ({**lg, "fields": sorted(lg["fields"], key=lambda f: f["key"])} for lg in s.get("logs") or []),
            key=lambda lg: json.dumps(lg, sort_keys=True),
        )
        out.append(json.dumps(s, sort_keys=True))
    return sorted(out)


# ----------------------------------------------------------------------------- 8. the command line


DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ns|µs|us|ms|s)(?![a-zA-Z])")
DURATION_MS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1000.0}


def durations_ms(line: str) -> list[float]:
    return [float(v) * DURATION_MS[u] for v, u in DURATION_RE.findall(line)]


def lines_naming(out: str, name: str) -> list[str]:
    found = [line for line in out.splitlines() if re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", line)]
    assert found, f"no line names {name!r}:\n{out}"
    return found


def test_cli_traces_and_debug(server: Server):
    slow, fast = send_orders(server, [{"scale": 1.0}, {"scale": 0.2, "payment_fails": False}])
    server.push_ndjson([{"service": "orders", "level": "error", "message": "payment declined (cli)", "trace_id": slow.trace_id}])

    out = ok(cli("traces", "get", slow.trace_id, "--server", server.url)).stdout
    # The waterfall: a line per span with its duration, the children indented under the root
    # (a header line may name the root too).
    root_col = min(line.index("handle_order") for line in lines_naming(out, "handle_order"))
    for name in OPERATIONS:
        want = slow.duration_ms(name)
        rows = [
            line
            for line in lines_naming(out, name)
            if any(abs(d - want) <= max(0.01 * want, 0.5) for d in durations_ms(line))
            and (name == "handle_order" or line.index(name) > root_col)
        ]
        assert rows, f"want a line with {name} (indented under handle_order) and its duration {want} ms:\n{out}"

    p = cli("traces", "get", uuid.uuid4().hex, "--server", server.url)
    assert p.returncode != 0, p.stdout
    assert "not found" in (p.stderr + p.stdout).lower(), p.stderr

    out = ok(cli("traces", "search", "--service", "orders", "--min-duration", "100ms", "--server", server.url)).stdout
    assert slow.trace_id in out and fast.trace_id not in out, out
    out = ok(cli("traces", "search", "--service", "orders", "--server", server.url)).stdout
    assert slow.trace_id in out and fast.trace_id in out, out

    out = ok(cli("debug", slow.trace_id, "--server", server.url)).stdout
    for name in OPERATIONS:
        assert name in out, f"debug must print the trace ({name} missing):\n{out}"
    assert "payment declined (cli)" in out, out


# ----------------------------------------------------------------------------- tenants


def test_traces_are_per_tenant(server: Server):
    (a,) = send_orders(server, [{}], protocol="http", service="tenant-orders", tenant="team-a")
    (b,) = send_orders(server, [{}], protocol="grpc", service="tenant-orders", tenant="team-b")
    assert_handle_order(get_trace(server, a.trace_id, tenant="team-a"), a, service="tenant-orders")
    assert_handle_order(get_trace(server, b.trace_id, tenant="team-b"), b, service="tenant-orders")
    assert_no_trace(server, a.trace_id)
    assert_no_trace(server, a.trace_id, tenant="team-b")
    assert_no_trace(server, b.trace_id, tenant="team-a")
    assert "tenant-orders" not in (jaeger_data(server.get("/api/services"), "/api/services") or [])
    assert set(search(server, tenant="team-a", service="tenant-orders")) == {a.trace_id}
