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
  compressed as one snappy block, as promtail and Alloy send it.

Timestamps and ids are fixed so a rerun gives the same records. Needs:
    pip install opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-common==1.45.2 \
        grpcio-tools==1.85.1 cramjam==2.14.0
Run from anywhere: python3 generate_fixtures.py
"""

import json
import logging
import os
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


if __name__ == "__main__":
    write_python_service_ndjson()
    write_otlp_python_sdk()
    write_loki_push_protobuf()
    subprocess.run(["ls", "-l", "ndjson", "otlp", "loki_push"], cwd=HERE, check=True)
