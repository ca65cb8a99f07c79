"""Helpers of the traces tests: spans sent with the OpenTelemetry SDK and by hand (OTLP JSON,
raw protobuf, Zipkin JSON), and the Jaeger API and debug route as the tests read them.

Spans are made with the OpenTelemetry Python SDK as a service makes them (the seed's
`handle_order` trace) with explicit start and end times, so every duration is known exactly.
Hand-built requests (OTLP JSON, raw protobuf, Zipkin JSON) are used only where the SDK cannot
send what is wanted: bad ids, a span ending before it starts, Zipkin.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterator

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from conftest import Server, now_ns

MS = 1_000_000  # ns
TRACE_EXPORT_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SPAN_METRICS_CONFIG = "span_metrics:\n  flush_interval: 1s\n"


# ----------------------------------------------------------------------------- sending with the SDK


class CheckedExporter(SpanExporter):
    """Wraps an OTLP exporter and records each export's result, so a test fails when the
    server did not acknowledge its spans (the SDK itself only logs that)."""

    def __init__(self, inner: SpanExporter):
        self.inner = inner
        self.results: list[tuple[int, SpanExportResult]] = []

    def export(self, spans):
        result = self.inner.export(spans)
        self.results.append((len(spans), result))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def span_exporter(server: Server, protocol: str, tenant: str | None = None) -> SpanExporter:
    if protocol == "http":
        headers = {"X-Scope-OrgID": tenant} if tenant else None
        return HttpSpanExporter(
            endpoint=f"{server.url}/v1/traces", timeout=10, compression=Compression.Gzip, headers=headers
        )
    assert protocol == "grpc", protocol
    headers = {"x-scope-orgid": tenant} if tenant else None
    return GrpcSpanExporter(endpoint=server.grpc_addr, insecure=True, timeout=10, headers=headers)


@contextlib.contextmanager
def otel_tracer(
    server: Server, protocol: str = "http", service: str = "orders", tenant: str | None = None
) -> Iterator[trace.Tracer]:
    """A tracer of a fresh SDK provider for `service`; when the block ends, every span is
    exported over `protocol` and must have been acknowledged."""
    checked = CheckedExporter(span_exporter(server, protocol, tenant))
    provider = TracerProvider(resource=Resource.create({"service.name": service, "service.version": "1.4.2"}))
    provider.add_span_processor(BatchSpanProcessor(checked, schedule_delay_millis=60_000, max_export_batch_size=512))
    try:
        yield provider.get_tracer("orders.handlers", "0.9.1")
        assert provider.force_flush(20_000), "the SDK could not flush its spans"
        assert checked.results, "nothing was exported"
        failed = [(n, r) for n, r in checked.results if r != SpanExportResult.SUCCESS]
        assert not failed, f"the server did not acknowledge exports over {protocol}: {failed}\n{server.log_tail()}"
    finally:
        provider.shutdown()


# The seed's `handle_order`: (name, kind, start ms, end ms) of the children of a 263 ms root.
CHILDREN = [
    ("validate_order", SpanKind.INTERNAL, 1, 4),
    ("check_inventory", SpanKind.CLIENT, 5, 31),
    ("process_payment", SpanKind.CLIENT, 32, 250),
    ("send_confirmation", SpanKind.PRODUCER, 251, 262),
]
ROOT_END_MS = 263
EXCEPTION_AT_MS = 249
OPERATIONS = {"handle_order"} | {c[0] for c in CHILDREN}
JAEGER_KINDS = {
    "handle_order": "server",
    "validate_order": "internal",
    "check_inventory": "client",
    "process_payment": "client",
    "send_confirmation": "producer",
}


@dataclass
class OrderTrace:
    """What `handle_order` sent: ids as lowercase hex, times in ns."""

    trace_id: str
    t0_ns: int
    scale: float
    payment_failed: bool
    order_id: str
    span_ids: dict[str, str] = field(default_factory=dict)
    # name -> (start ns, end ns), absolute
    times: dict[str, tuple[int, int]] = field(default_factory=dict)
    exception_ns: int | None = None

    def duration_us(self, name: str) -> int:
        start, end = self.times[name]
        return end // 1000 - start // 1000

    def duration_ms(self, name: str) -> float:
        start, end = self.times[name]
        return (end - start) / MS


def charge_card() -> None:
    raise ValueError("card declined")


def handle_order(
    tracer: trace.Tracer, t0_ns: int, scale: float = 1.0, payment_fails: bool = True, order_id: str = "ord-981"
) -> OrderTrace:
    """The seed's trace: a server root `handle_order` and four children; `process_payment`
    records a raised ValueError("card declined") and has status ERROR (when `payment_fails`),
    `send_confirmation` has status OK. `scale` stretches every time."""

    def at(ms: float) -> int:
        return t0_ns + round(ms * scale * MS)

    root = tracer.start_span(
        "handle_order",
        kind=SpanKind.SERVER,
        start_time=t0_ns,
        attributes={"order.id": order_id, "http.route": "/orders", "http.response.status_code": 200},
    )
    out = OrderTrace(format(root.get_span_context().trace_id, "032x"), t0_ns, scale, payment_fails, order_id)
    out.span_ids["handle_order"] = format(root.get_span_context().span_id, "016x")
    ctx = trace.set_span_in_context(root)
    for name, kind, start_ms, end_ms in CHILDREN:
        span = tracer.start_span(name, context=ctx, kind=kind, start_time=at(start_ms))
        out.span_ids[name] = format(span.get_span_context().span_id, "016x")
        if name == "check_inventory":
            span.set_attributes({"db.system": "postgresql", "server.address": "db-1"})
        if name == "process_payment":
            span.set_attribute("payment.provider", "stripe")
            if payment_fails:
                out.exception_ns = at(EXCEPTION_AT_MS)
                try:
                    charge_card()
                except ValueError as exc:
                    span.record_exception(exc, timestamp=out.exception_ns)
                span.set_status(Status(StatusCode.ERROR, "card declined"))
        if name == "send_confirmation":
            span.set_status(Status(StatusCode.OK))
        span.end(end_time=at(end_ms))
        out.times[name] = (at(start_ms), at(end_ms))
    root.end(end_time=at(ROOT_END_MS))
    out.times["handle_order"] = (t0_ns, at(ROOT_END_MS))
    return out


def send_orders(server: Server, specs: list[dict], protocol: str = "http", service: str = "orders", tenant: str | None = None) -> list[OrderTrace]:
    """Sends one `handle_order` trace per spec (keyword arguments of `handle_order`, `t0_ns`
    defaulting to ten seconds ago) in one SDK export."""
    out = []
    with otel_tracer(server, protocol, service, tenant) as tracer:
        for spec in specs:
            spec = dict(spec)
            t0 = spec.pop("t0_ns", (now_ns() - 10_000 * MS) // 1000 * 1000)  # whole µs
            out.append(handle_order(tracer, t0, **spec))
    return out


# ----------------------------------------------------------------------------- the Jaeger API


def jaeger_data(r, what: str):
    assert r.status_code == 200, f"{what}: {r.status_code} {r.text[:2000]}"
    body = r.json()
    assert "data" in body, f"{what}: no data: {body}"
    return body["data"]


def get_trace(server: Server, trace_id: str, tenant: str | None = None) -> dict:
    data = jaeger_data(server.get(f"/api/traces/{trace_id}", tenant=tenant), f"GET /api/traces/{trace_id}")
    assert isinstance(data, list) and len(data) == 1, data
    assert data[0]["traceID"] == trace_id, data[0].get("traceID")
    return data[0]


def get_trace_upper(server: Server, trace_id: str) -> dict:
    data = jaeger_data(server.get(f"/api/traces/{trace_id.upper()}"), "GET /api/traces/<upper case>")
    assert len(data) == 1 and data[0]["traceID"] == trace_id, data
    return data[0]


def assert_no_trace(server: Server, trace_id: str, tenant: str | None = None) -> None:
    r = server.get(f"/api/traces/{trace_id}", tenant=tenant)
    assert r.status_code == 404, f"trace {trace_id} must be absent: {r.status_code} {r.text[:1000]}"


def tags_of(obj: dict, key: str = "tags") -> dict[str, tuple[str, object]]:
    """A Jaeger tag (or log field) list as {key: (type, value)}."""
    out = {}
    for t in obj.get(key) or []:
        assert set(t) >= {"key", "type", "value"}, t
        out[t["key"]] = (t["type"], t["value"])
    return out


def spans_by_name(jtrace: dict) -> dict[str, dict]:
    out = {}
    for s in jtrace["spans"]:
        assert s["operationName"] not in out, f"two spans named {s['operationName']}: {jtrace}"
        out[s["operationName"]] = s
    return out


def service_of(jtrace: dict, span: dict) -> str:
    return jtrace["processes"][span["processID"]]["serviceName"]


def child_of_refs(span: dict) -> list[tuple[str, str]]:
    return [(r["traceID"], r["spanID"]) for r in span.get("references") or [] if r["refType"] == "CHILD_OF"]


def assert_handle_order(jtrace: dict, sent: OrderTrace, service: str = "orders") -> None:
    """The Jaeger trace is exactly what `handle_order` sent."""
    spans = spans_by_name(jtrace)
    assert set(spans) == OPERATIONS, sorted(spans)
    for name, span in spans.items():
        assert span["traceID"] == sent.trace_id, span
        assert span["spanID"] == sent.span_ids[name], (name, span["spanID"], sent.span_ids[name])
        assert service_of(jtrace, span) == service, (name, jtrace["processes"])
        start, _ = sent.times[name]
        assert span["startTime"] == start // 1000, f"{name}: startTime {span['startTime']} µs, sent {start} ns"
        assert span["duration"] == sent.duration_us(name), f"{name}: duration {span['duration']} µs, want {sent.duration_us(name)}"
        tags = tags_of(span)
        if name == "process_payment" and sent.payment_failed:
            assert tags.get("error") == ("bool", True), f"process_payment must have error=true (bool): {tags}"
        else:
            assert "error" not in tags, f"{name} must have no error tag: {tags}"
    root = spans["handle_order"]
    assert child_of_refs(root) == [], f"the root has no parent: {root.get('references')}"
    assert tags_of(root).get("order.id") == ("string", sent.order_id), tags_of(root)
    assert tags_of(root).get("http.response.status_code", (None, None))[1] == 200, tags_of(root)
    for name, *_ in CHILDREN:
        assert child_of_refs(spans[name]) == [(sent.trace_id, sent.span_ids["handle_order"])], (
            f"{name} must be CHILD_OF handle_order: {spans[name].get('references')}"
        )
    assert tags_of(spans["process_payment"]).get("payment.provider") == ("string", "stripe")

    exception_logs = [log for log in spans["process_payment"].get("logs") or [] if tags_of(log, "fields").get("event", (None, None))[1] == "exception"]
    if not sent.payment_failed:
        assert exception_logs == [], exception_logs
        return
    assert len(exception_logs) == 1, spans["process_payment"].get("logs")
    log = exception_logs[0]
    assert log["timestamp"] == sent.exception_ns // 1000, (log["timestamp"], sent.exception_ns)
    fields = tags_of(log, "fields")
    assert fields["event"] == ("string", "exception"), fields
    assert fields["exception.type"][1] == "ValueError", fields
    assert fields["exception.message"][1] == "card declined", fields
    stack = fields["exception.stacktrace"][1]
    assert "Traceback (most recent call last)" in stack and "charge_card" in stack, stack
    assert "ValueError: card declined" in stack, stack


def search(server: Server, tenant: str | None = None, **params) -> dict[str, dict]:
    """GET /api/traces (the last hour to a minute ahead unless told, limit 100): the traces
    found by id; each must be whole and found once."""
    now_us = now_ns() // 1000
    p = {"start": now_us - 3600 * 1_000_000, "end": now_us + 60 * 1_000_000, "limit": 100}
    p.update(params)
    data = jaeger_data(server.get("/api/traces", tenant=tenant, params=p), f"search {p}")
    ids = [t["traceID"] for t in data]
    assert len(ids) == len(set(ids)), f"a trace returned twice: {ids}"
    return {t["traceID"]: t for t in data}


# ----------------------------------------------------------------------------- hand-built requests


@dataclass
class RawSpan:
    trace_id: bytes
    span_id: bytes
    name: str
    start_ns: int
    end_ns: int
    parent_span_id: bytes = b""
    kind: int = 2  # SERVER


def raw_span(name: str, start_ns: int | None = None, duration_ms: int = 5, trace_id: bytes | None = None) -> RawSpan:
    start = start_ns if start_ns is not None else now_ns() - 5_000 * MS
    return RawSpan(trace_id or uuid.uuid4().bytes, uuid.uuid4().bytes[:8], name, start, start + duration_ms * MS)


def otlp_json(service: str, spans: list[RawSpan]) -> dict:
    """OTLP/JSON as the spec writes it: hex ids, integer enums, 64-bit integers as strings."""
    return {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{
                "scope": {"name": "hand.built"},
                "spans": [
                    {
                        "traceId": s.trace_id.hex(),
                        "spanId": s.span_id.hex(),
                        **({"parentSpanId": s.parent_span_id.hex()} if s.parent_span_id else {}),
                        "name": s.name,
                        "kind": s.kind,
                        "startTimeUnixNano": str(s.start_ns),
                        "endTimeUnixNano": str(s.end_ns),
                        "attributes": [{"key": "hand.built", "value": {"boolValue": True}}],
                    }
                    for s in spans
                ],
            }],
        }]
    }  # fmt: skip


def otlp_proto(service: str, spans: list[RawSpan]) -> trace_service_pb2.ExportTraceServiceRequest:
    resource = resource_pb2.Resource(
        attributes=[common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value=service))]
    )
    pb_spans = [
        trace_pb2.Span(
            trace_id=s.trace_id,
            span_id=s.span_id,
            parent_span_id=s.parent_span_id,
            name=s.name,
            kind=s.kind,
            start_time_unix_nano=s.start_ns,
            end_time_unix_nano=s.end_ns,
        )
        for s in spans
    ]
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(resource=resource, scope_spans=[trace_pb2.ScopeSpans(spans=pb_spans)])
        ]
    )


def post_otlp_json(server: Server, body: dict | str | bytes, gzip_body: bool = False, tenant: str | None = None):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    data = data.encode() if isinstance(data, str) else data
    headers = {"Content-Type": "application/json"}
    if gzip_body:
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    return server.post("/v1/traces", tenant=tenant, headers=headers, data=data)


def post_otlp_proto(server: Server, body: bytes, headers: dict | None = None):
    return server.post("/v1/traces", headers={"Content-Type": "application/x-protobuf", **(headers or {})}, data=body)


def rejected_spans_json(r) -> tuple[int, str]:
    """(rejectedSpans, errorMessage) of an OTLP/JSON answer; (0, "") without partialSuccess."""
    assert r.status_code == 200, f"{r.status_code} {r.text[:1000]}"
    partial = r.json().get("partialSuccess") or {}
    return int(partial.get("rejectedSpans", 0)), partial.get("errorMessage", "")


def assert_json_error(r, status: int = 400) -> str:
    """A 4xx with a JSON error naming the problem; returns the message."""
    assert r.status_code == status, f"want {status}, got {r.status_code}: {r.text[:1000]}"
    body = r.json()
    msg = body.get("error") or body.get("message")
    assert isinstance(msg, str) and msg, f"the error must say what is wrong: {body}"
    return msg


def assert_alive(server: Server) -> None:
    r = server.get("/health/ready")
    assert r.status_code == 200, f"/health/ready after bad input: {r.status_code} {r.text}\n{server.log_tail()}"


def zipkin_span(trace_id: str, span_id: str, name: str, service: str, ts_us: int, dur_us: int, parent: str | None = None, **extra) -> dict:
    span = {
        "traceId": trace_id,
        "id": span_id,
        "name": name,
        "kind": "SERVER",
        "timestamp": ts_us,
        "duration": dur_us,
        "localEndpoint": {"serviceName": service, "ipv4": "10.0.0.7", "port": 8080},
    }
    if parent:
        span["parentId"] = parent
    span.update(extra)
    return span


def post_zipkin(server: Server, body, tenant: str | None = None):
    data = body if isinstance(body, str) else json.dumps(body)
    return server.post("/api/v2/spans", tenant=tenant, headers={"Content-Type": "application/json"}, data=data)


def debug(server: Server, ident: str) -> dict:
    r = server.get(f"/api/v1/debug/{ident}")
    assert r.status_code == 200, f"GET /api/v1/debug/{ident}: {r.status_code} {r.text[:2000]}"
    body = r.json()
    assert body.get("status") == "success", body
    data = body["data"]
    for key in ("trace_id", "trace", "logs", "metrics", "errors"):
        assert key in data, f"debug answer without {key!r}: {data}"
    assert isinstance(data["logs"], list) and isinstance(data["metrics"], list) and isinstance(data["errors"], list), data
    return data
