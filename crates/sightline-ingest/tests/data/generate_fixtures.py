#!/usr/bin/env python3
"""Regenerates the binary and logger-produced fixtures under tests/data/.

The payloads come from real encoders, not from our own code, so the golden tests check our
decoders against what clients actually send:

- ndjson/python_service.ndjson: Python's `logging` with the JSON formatter of our reference
  Python service (one object a line, exception tracebacks included);
- otlp/python_sdk_logs.pb: the OpenTelemetry Python SDK's logging bridge, encoded by its OTLP
  exporter's protobuf encoder, with trace context from the SDK's tracer;
- otlp/python_sdk_logs.protojson.json: the same request through protobuf's generic JSON
  printer (enum names, base64 ids), which OTLP/JSON forbids but people send;
- loki_push/push.pb.snappy: a Loki push encoded by protoc-generated code from push.proto and
  compressed as one snappy block, as promtail and Alloy send it;
- prom_text/python_client.prom and .om.txt: prometheus_client's exposition of one registry
  (counter, gauge, histogram, summary, info, enum, exemplars) in text 0.0.4 and OpenMetrics;
- remote_write/write_request.pb.snappy: a remote write request encoded by protoc-generated code
  from remote_write/types.proto (series, exemplars, metadata, a native histogram), snappy block;
- otlp/python_sdk_metrics.pb (and .protojson.json): the OpenTelemetry Python SDK's metrics
  (counter, up-down counter, histogram with exemplars, exponential histogram, observable
  gauge), cumulative, through its OTLP protobuf encoder (and protobuf's JSON printer);
- otlp/python_sdk_metrics_delta.pb: the same instruments exported with delta temporality.
- otlp/python_sdk_traces.pb: the OpenTelemetry Python SDK's `handle_order` trace (a root with
  `validate_order`, `check_inventory`, `process_payment` with a recorded exception and error
  status, and `send_confirmation`, plus a link and attributes of every type) through its OTLP
  protobuf encoder;
- otlp/python_sdk_traces.json: the same request as OTLP/JSON (hex ids, integer enums, 64-bit
  integers as strings); otlp/python_sdk_traces.protojson.json: through protobuf's generic JSON
  printer (enum names, base64 ids).

Timestamps and ids are fixed so a rerun gives the same records. Needs:
    pip install opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-common==1.45.2 \
        grpcio-tools==1.85.1 cramjam==2.14.0 prometheus-client==0.26.0
Run from anywhere: python3 generate_fixtures.py [logs|metrics|traces] (all without an argument)
"""

import json
import logging
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# 2024-01-15T10:30:00Z
BASE_S = 1705314600


class FixedClock(logging.Filter):
    """Gives the n-th record the time BASE_S + n * 1.5 ms, so reruns match."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def filter(self, record):
        record.created = BASE_S + 0.123456 + self.n * 0.0015
        record.msecs = (record.created % 1) * 1000
        self.n += 1
        return True


class ServiceJsonFormatter(logging.Formatter):
    """The reference service's formatter: fixed fields, then the `extra` ones."""

    STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record):
        from datetime import datetime, timezone

        out = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="microseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "service": "api-service",
            "message": record.getMessage(),
            "module": record.module,
            "function": record.funcName,
            "line": record.lineno,
        }
        for key, value in vars(record).items():
            if key not in self.STANDARD:
                out[key] = value
        if record.exc_info:
            exc_type, exc, _ = record.exc_info
            out["exception"] = {
                "type": exc_type.__name__,
                "message": str(exc),
                "traceback": self.formatException(record.exc_info),
            }
        return json.dumps(out)


def emit_service_logs(logger):
    """What the reference service logs during one login and one failed checkout."""
    trace = {"trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736", "span_id": "00F067AA0BA902B7"}
    logger.info(
        "User login successful",
        extra={
            "user_id": 12345,
            "ip_address": "192.168.1.1",
            "session_id": "abc-123",
            "request_id": "6f1c2a4e-8b1d-4c7a-9e35-2f0d7b9c1a11",
            **trace,
        },
    )
    logger.debug("cache lookup", extra={"cache": {"hit": False, "key": "user:12345"}, "elapsed_ms": 0.42})
    logger.warning(
        "Slow query",
        extra={"duration_ms": 1532.7, "query": "SELECT * FROM orders WHERE user_id = $1", "tags": ["db", "slow"]},
    )
    try:
        int("forty-two")
    except ValueError:
        logger.exception(
            "Checkout failed",
            extra={"order_id": "ord-981", "amount": 49.9, "paid": None, "request_id": "0b7e4c1d-1a2b-4c3d-8e9f-0a1b2c3d4e5f"},
        )
    logger.critical("Payment provider unreachable", extra={"provider": "stripe", "retries": 3})


def write_python_service_ndjson():
    path = os.path.join(HERE, "ndjson", "python_service.ndjson")
    with open(path, "w") as f:
        handler = logging.StreamHandler(f)
        handler.setFormatter(ServiceJsonFormatter())
        handler.addFilter(FixedClock())
        logger = logging.getLogger("api.auth")
        logger.handlers = [handler]
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        emit_service_logs(logger)


def write_otlp_python_sdk():
    from google.protobuf import json_format
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class FixedIds(IdGenerator):
        def generate_trace_id(self):
            return 0x5B8EFFF798038103D269B633813FC60C

        def generate_span_id(self):
            return 0xEEE19B7EC3C1B174

    resource = Resource.create(
        {
            "service.name": "checkout",
            "service.namespace": "shop",
            "service.version": "1.4.2",
            "deployment.environment.name": "prod",
            "k8s.namespace.name": "shop-prod",
            "k8s.pod.name": "checkout-7d9f8b6c5-x2x9q",
            "host.name": "node-17",
            "service.instance.id": "checkout-7d9f8b6c5-x2x9q",
        }
    )
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)
    handler.addFilter(FixedClock())
    logger = logging.getLogger("checkout.payments")
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False

    tracer = TracerProvider(resource=resource, id_generator=FixedIds()).get_tracer("checkout")
    with tracer.start_as_current_span("POST /checkout"):
        emit_service_logs(logger)
    logger.info("outside any span", extra={"http.route": "/health"})

    request = encode_logs(exporter.get_finished_logs())
    with open(os.path.join(HERE, "otlp", "python_sdk_logs.pb"), "wb") as f:
        f.write(request.SerializeToString())
    with open(os.path.join(HERE, "otlp", "python_sdk_logs.protojson.json"), "w") as f:
        f.write(json_format.MessageToJson(request))
        f.write("\n")


def write_loki_push_protobuf():
    import cramjam
    from grpc_tools import protoc

    out = tempfile.mkdtemp()
    proto_dir = os.path.join(HERE, "loki_push")
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    status = protoc.main(["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}", "push.proto"])
    if status != 0:
        sys.exit(f"protoc failed: {status}")
    sys.path.insert(0, out)
    import push_pb2

    req = push_pb2.PushRequest()
    stream = req.streams.add(labels='{job="varlogs", host="web-1", filename="/var/log/nginx/access.log"}')
    lines = [
        '192.168.1.20 - - [15/Jan/2024:10:30:00 +0000] "GET /api/users HTTP/1.1" 200 512 "-" "curl/8.5.0"',
        '192.168.1.21 - - [15/Jan/2024:10:30:00 +0000] "POST /api/login HTTP/1.1" 401 87 "-" "Mozilla/5.0"',
    ]
    for i, line in enumerate(lines):
        entry = stream.entries.add(line=line)
        entry.timestamp.seconds = BASE_S
        entry.timestamp.nanos = 123456789 + i
    stream = req.streams.add(labels='{job="app", service_name="api", namespace="prod", msg="quote \\" and \\\\ and \\u00e9"}')
    entry = stream.entries.add(line='level=error msg="db timeout" duration=5.001s')
    entry.timestamp.seconds = BASE_S + 1
    entry.structuredMetadata.add(name="trace_id", value="4bf92f3577b34da6a3ce929d0e0e4736")
    entry.structuredMetadata.add(name="pod.uid", value="7f6e5d4c")
    body = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
    with open(os.path.join(HERE, "loki_push", "push.pb.snappy"), "wb") as f:
        f.write(body)


def write_prom_text():
    import time
    from unittest import mock

    from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary
    from prometheus_client.exposition import generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    with mock.patch.object(time, "time", return_value=float(BASE_S)):
        registry = CollectorRegistry()
        requests = Counter("http_requests", "HTTP requests served.", ["method", "code"], registry=registry)
        requests.labels("GET", "200").inc(1027)
        requests.labels("POST", "400").inc(3)
        requests.labels("GET", "200").inc(1, exemplar={"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"})
        temperature = Gauge("room_temperature_celsius", 'Temperature, with "quotes" and a \\ in help.', ["room"], registry=registry)
        temperature.labels('kitchen "main"').set(21.5)
        temperature.labels("cellar\\north\nwing").set(-3.25)
        latency = Histogram(
            "request_latency_seconds", "Request latency.", ["route"],
            buckets=(0.005, 0.1, 1, 2.5, float("inf")), registry=registry,
        )
        for value in (0.003, 0.04, 0.04, 0.7, 3.0):
            latency.labels("/api").observe(value)
        latency.labels("/api").observe(0.09, exemplar={"trace_id": "5b8efff798038103d269b633813fc60c"})
        sizes = Summary("response_size_bytes", "Response sizes.", registry=registry)
        for value in (512, 1024, 2048):
            sizes.observe(value)
        Info("build", "Build information.", registry=registry).info({"version": "1.4.2", "commit": "abc123"})
        state = Enum("task_state", "Task state.", states=["starting", "running", "stopped"], registry=registry)
        state.state("running")
        Gauge("process_start_time_seconds", "Start time of the process.", registry=registry).set(BASE_S - 3600)
        prom = generate_latest(registry)
        om = generate_openmetrics(registry)
    with open(os.path.join(HERE, "prom_text", "python_client.prom"), "wb") as f:
        f.write(prom)
    with open(os.path.join(HERE, "prom_text", "python_client.om.txt"), "wb") as f:
        f.write(om)


def compile_proto(proto_dir, name):
    from grpc_tools import protoc

    out = tempfile.mkdtemp()
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    status = protoc.main(["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}", name])
    if status != 0:
        sys.exit(f"protoc failed: {status}")
    sys.path.insert(0, out)


def write_remote_write():
    import cramjam

    compile_proto(os.path.join(HERE, "remote_write"), "types.proto")
    import types_pb2

    ms = BASE_S * 1000
    req = types_pb2.WriteRequest()
    # Labels as Prometheus sends them: sorted, __name__ first.
    for code, values in (("200", (1027, 1031)), ("500", (3, 3))):
        series = req.timeseries.add()
        for name, value in (("__name__", "http_requests_total"), ("code", code), ("instance", "api-1:8080"), ("job", "api")):
            series.labels.add(name=name, value=value)
        for i, value in enumerate(values):
            series.samples.add(value=value, timestamp=ms + i * 15000)
    bucket = req.timeseries.add()
    for name, value in (("__name__", "request_latency_seconds_bucket"), ("job", "api"), ("le", "0.1")):
        bucket.labels.add(name=name, value=value)
    bucket.samples.add(value=42, timestamp=ms)
    exemplar = bucket.exemplars.add(value=0.087, timestamp=ms - 1200)
    exemplar.labels.add(name="trace_id", value="4bf92f3577b34da6a3ce929d0e0e4736")
    stale = req.timeseries.add()
    stale.labels.add(name="__name__", value="up")
    stale.labels.add(name="job", value="gone")
    stale.samples.add(value=struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0], timestamp=ms)
    native = req.timeseries.add()
    native.labels.add(name="__name__", value="rpc_duration_seconds")
    native.labels.add(name="job", value="api")
    histogram = native.histograms.add(count_int=5, sum=1.25, schema=3, zero_threshold=1e-128, zero_count_int=1, timestamp=ms)
    histogram.positive_spans.add(offset=-2, length=2)
    histogram.positive_deltas.extend([1, 2])
    req.metadata.add(type=types_pb2.MetricMetadata.COUNTER, metric_family_name="http_requests_total", help="HTTP requests served.")
    req.metadata.add(type=types_pb2.MetricMetadata.HISTOGRAM, metric_family_name="request_latency_seconds", help="Request latency.", unit="seconds")
    body = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
    with open(os.path.join(HERE, "remote_write", "write_request.pb.snappy"), "wb") as f:
        f.write(body)


def otlp_metrics_request(temporality):
    import random

    # Counters keep one exemplar, picked at random by the SDK's reservoir: fix the pick.
    random.seed(1)
    from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
    from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, ObservableGauge, UpDownCounter
    from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.id_generator import IdGenerator
    from opentelemetry.metrics import Observation

    class FixedIds(IdGenerator):
        def generate_trace_id(self):
            return 0x5B8EFFF798038103D269B633813FC60C

        def generate_span_id(self):
            return 0xEEE19B7EC3C1B174

    resource = Resource.create(
        {
            "service.name": "checkout",
            "service.namespace": "shop",
            "service.version": "1.4.2",
            "service.instance.id": "checkout-7d9f8b6c5-x2x9q",
            "deployment.environment.name": "prod",
            "host.name": "node-17",
        }
    )
    reader = InMemoryMetricReader(
        preferred_temporality={
            Counter: temporality,
            UpDownCounter: temporality,
            Histogram: temporality,
        }
    )
    provider = MeterProvider(
        resource=resource,
        metric_readers=[reader],
        views=[
            View(instrument_name="queue.wait.duration", aggregation=ExponentialBucketHistogramAggregation(max_size=20)),
        ],
    )
    meter = provider.get_meter("checkout.metrics", "0.3.1")
    orders = meter.create_counter("orders.placed", unit="{order}", description="Orders placed.")
    in_flight = meter.create_up_down_counter("http.server.active_requests", unit="{request}", description="Requests in flight.")
    duration = meter.create_histogram("http.server.request.duration", unit="s", description="Duration of HTTP server requests.")
    wait = meter.create_histogram("queue.wait.duration", unit="ms", description="Time jobs wait in the queue.")
    meter.create_observable_gauge(
        "system.memory.utilization", unit="1", description="Memory in use.",
        callbacks=[lambda options: [Observation(0.42, {"system.memory.state": "used"})]],
    )
    tracer = TracerProvider(resource=resource, id_generator=FixedIds()).get_tracer("checkout")
    with tracer.start_as_current_span("POST /checkout"):
        orders.add(3, {"payment.method": "card"})
        orders.add(1, {"payment.method": "invoice"})
        in_flight.add(5)
        in_flight.add(-2)
        for value in (0.012, 0.25, 0.25, 1.7):
            duration.record(value, {"http.request.method": "POST", "http.route": "/checkout", "http.response.status_code": 200})
        for value in (0.5, 3.0, 3.5, 12.0, 40.0):
            wait.record(value)
    request = encode_metrics(reader.get_metrics_data())
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                for point in getattr(metric, kind).data_points:
                    point.start_time_unix_nano = BASE_S * 10**9
                    point.time_unix_nano = (BASE_S + 60) * 10**9
                    for exemplar in getattr(point, "exemplars", []):
                        exemplar.time_unix_nano = (BASE_S + 30) * 10**9
    return request


def write_otlp_metrics():
    from google.protobuf import json_format
    from opentelemetry.sdk.metrics.export import AggregationTemporality

    request = otlp_metrics_request(AggregationTemporality.CUMULATIVE)
    with open(os.path.join(HERE, "otlp", "python_sdk_metrics.pb"), "wb") as f:
        f.write(request.SerializeToString())
    with open(os.path.join(HERE, "otlp", "python_sdk_metrics.protojson.json"), "w") as f:
        f.write(json_format.MessageToJson(request))
        f.write("\n")
    delta = otlp_metrics_request(AggregationTemporality.DELTA)
    with open(os.path.join(HERE, "otlp", "python_sdk_metrics_delta.pb"), "wb") as f:
        f.write(delta.SerializeToString())


def otlp_traces_request():
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class FixedIds(IdGenerator):
        def __init__(self):
            self.next_span = 0xA1B2C3D4E5F60000

        def generate_trace_id(self):
            return 0x4BF92F3577B34DA6A3CE929D0E0E4736

        def generate_span_id(self):
            self.next_span += 1
            return self.next_span

    resource = Resource.create(
        {
            "service.name": "orders",
            "service.version": "2.3.0",
            "service.instance.id": "orders-5f7c9d8b4-k2x7p",
            "deployment.environment.name": "prod",
            "host.name": "node-17",
        }
    )
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=resource, id_generator=FixedIds())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("orders.handlers", "0.9.1")
    ms = 10**6
    t0 = BASE_S * 10**9

    root = tracer.start_span(
        "handle_order",
        kind=trace.SpanKind.SERVER,
        start_time=t0,
        attributes={
            "http.request.method": "POST",
            "http.route": "/orders",
            "http.response.status_code": 500,
            "order.id": "ord-981",
            "order.amount": 49.9,
            "order.express": True,
            "order.items": ["sku-1", "sku-2"],
            "order.quantities": [2, 1],
        },
    )
    ctx = trace.set_span_in_context(root)
    children = [
        ("validate_order", trace.SpanKind.INTERNAL, 1, 4),
        ("check_inventory", trace.SpanKind.CLIENT, 5, 31),
        ("process_payment", trace.SpanKind.CLIENT, 32, 250),
        ("send_confirmation", trace.SpanKind.PRODUCER, 251, 262),
    ]
    for name, kind, start_ms, end_ms in children:
        links = []
        if name == "send_confirmation":
            linked = trace.SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True)
            links = [trace.Link(linked, {"messaging.batch": True})]
        span = tracer.start_span(name, context=ctx, kind=kind, start_time=t0 + start_ms * ms, links=links)
        if name == "check_inventory":
            span.set_attributes({"db.system": "postgresql", "db.statement": "SELECT qty FROM stock WHERE sku = $1", "server.address": "db-1"})
        if name == "process_payment":
            span.set_attribute("payment.provider", "stripe")
            span.add_event("payment.attempt", {"attempt": 1}, timestamp=t0 + 40 * ms)
            span.record_exception(ValueError("card declined"), timestamp=t0 + 249 * ms)
            span.set_status(trace.Status(trace.StatusCode.ERROR, "card declined"))
        if name == "send_confirmation":
            span.set_attribute("messaging.system", "kafka")
        span.end(end_time=t0 + end_ms * ms)
    root.set_status(trace.Status(trace.StatusCode.ERROR))
    root.end(end_time=t0 + 263 * ms)
    return encode_spans(exporter.get_finished_spans())


def write_otlp_traces():
    from google.protobuf import json_format

    request = otlp_traces_request()
    with open(os.path.join(HERE, "otlp", "python_sdk_traces.pb"), "wb") as f:
        f.write(request.SerializeToString())
    with open(os.path.join(HERE, "otlp", "python_sdk_traces.protojson.json"), "w") as f:
        f.write(json_format.MessageToJson(request))
        f.write("\n")
    # OTLP/JSON proper: integer enums, and ids as hex where the JSON printer writes base64.
    tree = json_format.MessageToDict(request, use_integers_for_enums=True)

    def hex_ids(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    import base64

                    node[key] = base64.b64decode(value).hex()
                else:
                    hex_ids(value)
        elif isinstance(node, list):
            for item in node:
                hex_ids(item)

    hex_ids(tree)
    with open(os.path.join(HERE, "otlp", "python_sdk_traces.json"), "w") as f:
        json.dump(tree, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    if which in ("logs", "all"):
        write_python_service_ndjson()
        write_otlp_python_sdk()
        write_loki_push_protobuf()
    if which in ("metrics", "all"):
        write_prom_text()
        write_remote_write()
        write_otlp_metrics()
    if which in ("traces", "all"):
        write_otlp_traces()
    subprocess.run(["ls", "-l", "ndjson", "otlp", "loki_push", "prom_text", "remote_write"], cwd=HERE, check=True)
