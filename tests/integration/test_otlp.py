"""OTLP logs from the OpenTelemetry Python SDK, over HTTP (protobuf, gzip) and gRPC."""

import gzip
import json
import logging
import uuid

import grpc
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from conftest import Server, log_entries, lines_of, now_ns


def emit_via_sdk(processor, logger_name: str, message: str, request_id: str) -> tuple[str, str]:
    """Logs one warning through a LoggingHandler inside an active span, as an instrumented
    service does; returns the span's trace and span ids as lowercase hex."""
    provider = LoggerProvider(resource=Resource.create({"service.name": "orders", "service.version": "1.4.2"}))
    provider.add_log_record_processor(processor)
    handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    logger = logging.getLogger(logger_name)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    tracer = TracerProvider().get_tracer("orders-test")
    try:
        with tracer.start_as_current_span("checkout") as span:
            logger.warning(message, extra={"request_id": request_id, "order.id": 981})
            ctx = span.get_span_context()
        assert provider.force_flush(10_000), "the SDK could not flush its logs to the server"
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def test_otlp_http_and_grpc(server: Server):
    rid_http, rid_grpc = str(uuid.uuid4()), str(uuid.uuid4())
    http_exporter = HttpLogExporter(endpoint=f"{server.url}/v1/logs", timeout=10, compression=Compression.Gzip)
    trace_http, span_http = emit_via_sdk(
        BatchLogRecordProcessor(http_exporter), "orders.http", "order stock low (http)", rid_http
    )
    grpc_exporter = GrpcLogExporter(endpoint=server.grpc_addr, insecure=True, timeout=10)
    trace_grpc, span_grpc = emit_via_sdk(
        SimpleLogRecordProcessor(grpc_exporter), "orders.grpc", "order stock low (grpc)", rid_grpc
    )
    assert trace_http != trace_grpc

    entries = log_entries(server.query_range('{service="orders"}', categorize=True))
    assert sorted(e.line for e in entries) == ["order stock low (grpc)", "order stock low (http)"]
    for e in entries:
        assert e.stream["service"] == "orders", e.stream
        assert e.stream["level"] == "warn", e.stream
        # Per-record and per-process attributes are never stream labels.
        for never in ("request_id", "trace_id", "span_id", "service_version", "order_id"):
            assert never not in e.stream, f"{never} became a stream label: {e.stream}"
        assert abs(e.ts_ns - now_ns()) < 300 * 1_000_000_000, "the record's own time is the entry's time"
    by_line = {e.line: e.extra["structuredMetadata"] for e in entries}
    for line, rid, trace, span in [
        ("order stock low (http)", rid_http, trace_http, span_http),
        ("order stock low (grpc)", rid_grpc, trace_grpc, span_grpc),
    ]:
        md = by_line[line]
        assert md["request_id"] == rid, md
        assert md["trace_id"] == trace, md
        assert md["span_id"] == span, md
        assert md["order_id"] == "981", md
        assert md["service_version"] == "1.4.2", md

    # The tenant travels as gRPC metadata; gzip-compressed messages are accepted.
    tenant_exporter = GrpcLogExporter(
        endpoint=server.grpc_addr,
        insecure=True,
        timeout=10,
        headers={"x-scope-orgid": "orders-tenant"},
        compression=grpc.Compression.Gzip,
    )
    emit_via_sdk(SimpleLogRecordProcessor(tenant_exporter), "orders.tenant", "tenant line (grpc)", "r-tenant")
    assert lines_of(server.query_range('{service="orders"}', tenant="orders-tenant")) == ["tenant line (grpc)"]
    assert "tenant line (grpc)" not in lines_of(server.query_range('{service="orders"}'))

    # The ids find their lines.
    assert lines_of(server.query_range(f'{{service="orders"}} | trace_id="{trace_grpc}"')) == ["order stock low (grpc)"]
    assert lines_of(server.query_range(f'{{service="orders"}} | request_id="{rid_http}"')) == ["order stock low (http)"]
    assert lines_of(server.query_range('{service="orders", level="warn"} |= "(grpc)"')) == ["order stock low (grpc)"]


def test_otlp_http_json(server: Server):
    """OTLP/JSON as a collector's otlphttp exporter sends it, gzipped; the spec's hex ids and
    string-encoded 64-bit integers."""
    t_ns = now_ns() - 2_000_000_000
    trace_id = uuid.uuid4().hex
    payload = {
        "resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]},
            "scopeLogs": [{
                "scope": {"name": "billing.invoices"},
                "logRecords": [{
                    "timeUnixNano": str(t_ns),
                    "severityNumber": 17,
                    "severityText": "ERROR",
                    "body": {"stringValue": "invoice rendering failed"},
                    "attributes": [
                        {"key": "invoice.id", "value": {"intValue": "5521"}},
                        {"key": "exception.type", "value": {"stringValue": "KeyError"}},
                    ],
                    "traceId": trace_id.upper(),
                    "spanId": "00F067AA0BA902B7",
                }],
            }],
        }]
    }  # fmt: skip
    r = server.post(
        "/v1/logs",
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        data=gzip.compress(json.dumps(payload).encode()),
    )
    assert r.status_code == 200, r.text
    entries = log_entries(server.query_range('{service="billing"}', categorize=True))
    assert [e.line for e in entries] == ["invoice rendering failed"]
    e = entries[0]
    assert e.ts_ns == t_ns
    assert e.stream == {"service": "billing", "level": "error"}, e.stream
    md = e.extra["structuredMetadata"]
    assert md["trace_id"] == trace_id, md
    assert md["span_id"] == "00f067aa0ba902b7", md
    assert md["invoice_id"] == "5521", md
    assert md["exception_type"] == "KeyError", md
    assert md["scope_name"] == "billing.invoices", md
