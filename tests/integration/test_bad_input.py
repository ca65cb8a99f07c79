"""Bad requests get clear 4xx answers, store nothing, are counted, and hurt nothing."""

import gzip
import json
import re
import uuid

import cramjam

from conftest import Server, lines_of, metric_value

CONFIG = """
limits:
  request_bytes_max: 4096
  decompressed_bytes_max: 65536
  query_entries_max: 1000
"""


def assert_error(r, status: int, error_type: str | None = None, contains: str | None = None) -> dict:
    assert r.status_code == status, f"want {status}, got {r.status_code}: {r.text[:500]}"
    body = r.json()
    assert body["status"] == "error", body
    assert isinstance(body["error"], str) and body["error"], body
    if error_type is not None:
        assert body["errorType"] == error_type, body
    if contains is not None:
        assert contains in body["error"], body
    return body


class GoodAfterBad:
    """After each bad request: the server is ready and a good push and query still work."""

    def __init__(self, server: Server):
        self.server = server
        self.n = 0

    def check(self) -> None:
        self.n += 1
        r = self.server.get("/health/ready")
        assert r.status_code == 200, r.text
        marker = f"good-{self.n}-{uuid.uuid4().hex}"
        self.server.push_ndjson([{"service": "badinput", "level": "info", "message": marker}])
        assert lines_of(self.server.query_range(f'{{service="badinput"}} |= "{marker}"')) == [marker]


def test_bad_input(server_factory, tmp_path):
    server = server_factory().start(tmp_path / "data", config_yaml=CONFIG)
    good = GoodAfterBad(server)
    good.check()
    ndjson = {"Content-Type": "application/x-ndjson"}

    # NDJSON: the first bad line is named, and nothing of the request is stored.
    marker = uuid.uuid4().hex
    body = "\n".join(
        [
            json.dumps({"service": "badinput", "message": f"{marker} one"}),
            json.dumps({"service": "badinput", "message": f"{marker} two"}),
            '{"service": "badinput", "message": "three", ',
            json.dumps({"service": "badinput", "message": f"{marker} four"}),
        ]
    )
    err = assert_error(server.post("/api/v1/logs", headers=ndjson, data=body), 400, "bad_data")
    assert "line 3" in err["error"], err
    assert lines_of(server.query_range(f'{{service="badinput"}} |= "{marker}"')) == []
    good.check()

    for bad_line, line_no in [('[1, 2]', 2), ('{"message": "m", "timestamp": "yesterday"}', 2), ("not json", 1)]:
        lines = [bad_line] if line_no == 1 else [json.dumps({"message": f"{marker} ok"}), bad_line]
        err = assert_error(server.post("/api/v1/logs", headers=ndjson, data="\n".join(lines)), 400, "bad_data")
        assert f"line {line_no}" in err["error"], err
    assert lines_of(server.query_range(f'{{service=~".+"}} |= "{marker}"')) == []
    good.check()

    # OTLP/HTTP: garbage protobuf and garbage JSON.
    garbage_pb = b"\x0a\xff\xff\xff\xff\x0fthis is not a protobuf message"
    r = server.post("/v1/logs", headers={"Content-Type": "application/x-protobuf"}, data=garbage_pb)
    assert r.status_code == 400, f"{r.status_code} {r.text}"
    r = server.post("/v1/logs", headers={"Content-Type": "application/json"}, data='{"resourceLogs": 5}')
    assert r.status_code == 400, f"{r.status_code} {r.text}"
    good.check()

    # Loki push: garbage where snappy protobuf is expected, snappy of garbage, bad JSON.
    r = server.post("/loki/api/v1/push", headers={"Content-Type": "application/x-protobuf"}, data=b"not snappy at all")
    assert_error(r, 400, "bad_data")
    r = server.post(
        "/loki/api/v1/push",
        headers={"Content-Type": "application/x-protobuf"},
        data=bytes(cramjam.snappy.compress_raw(garbage_pb)),
    )
    assert_error(r, 400, "bad_data")
    bad_json = {"streams": [{"stream": {"app": "x"}, "values": [["not-a-time", "line"]]}]}
    r = server.post("/loki/api/v1/push", headers={"Content-Type": "application/json"}, data=json.dumps(bad_json))
    assert_error(r, 400, "bad_data")
    r = server.post("/loki/api/v1/push", headers={"Content-Type": "application/json"}, data='{"streams": [')
    assert_error(r, 400, "bad_data")
    good.check()

    # Elasticsearch bulk: an action line that is not JSON.
    r = server.post("/_bulk", headers=ndjson, data='{"index":{}\n{"message":"x"}\n')
    assert 400 <= r.status_code < 500, f"{r.status_code} {r.text}"
    good.check()

    # Bad LogQL: 400 with "parse error" and where.
    for q in ['{service="x"', '{service="x"} |= ', 'sum(count_over_time({service="x"}[5m])', "{}", '{service="x"} | foo bar']:
        for path in ("/loki/api/v1/query_range", "/loki/api/v1/query"):
            r = server.get(path, params={"query": q})
            err = assert_error(r, 400, "bad_data")
            if q != "{}":
                assert "parse error" in err["error"], f"{q!r}: {err}"
                assert re.search(r"(line|col|column|position|pos|offset|at)\s*:?\s*\d+|\d+:\d+", err["error"]), (
                    f"{q!r}: the error must say where: {err}"
                )
    err = assert_error(server.get("/loki/api/v1/query_range", params={"query": '{service="x"}', "start": "yesterday"}), 400)
    assert "start" in err["error"], err
    # A limit over query_entries_max (1000) is refused, as Loki does; up to it is fine.
    err = assert_error(server.get("/loki/api/v1/query_range", params={"query": '{service="x"}', "limit": 1001}), 400)
    assert "limit" in err["error"], err
    server.query_range('{service="badinput"}', limit=1000)
    good.check()

    # Over request_bytes_max (4096): 413, for NDJSON and OTLP.
    big = "\n".join(json.dumps({"service": "badinput", "message": f"{marker} {i} " + "x" * 80}) for i in range(100))
    assert len(big) > 8000
    assert_error(server.post("/api/v1/logs", headers=ndjson, data=big), 413, "too_large")
    r = server.post("/v1/logs", headers={"Content-Type": "application/x-protobuf"}, data=b"\x00" * 5000)
    assert r.status_code == 413, f"{r.status_code} {r.text}"
    # Small as sent but over decompressed_bytes_max (65536) once gunzipped: 413 too.
    bomb = "\n".join(json.dumps({"service": "badinput", "message": f"{marker} {i} " + "y" * 200}) for i in range(1000))
    bomb_gz = gzip.compress(bomb.encode())
    assert len(bomb_gz) < 4096 < 65536 < len(bomb)
    r = server.post("/api/v1/logs", headers={**ndjson, "Content-Encoding": "gzip"}, data=bomb_gz)
    assert_error(r, 413, "too_large")
    # A gzip header with a corrupt stream is bad data.
    r = server.post("/api/v1/logs", headers={**ndjson, "Content-Encoding": "gzip"}, data=b"\x1f\x8b\x08\x00garbage")
    assert_error(r, 400, "bad_data")
    assert lines_of(server.query_range(f'{{service="badinput"}} |= "{marker}"')) == []
    good.check()

    # A tenant id that is not one.
    r = server.post("/api/v1/logs", tenant="no spaces allowed!", headers=ndjson, data='{"message":"m"}\n')
    assert_error(r, 400, "bad_data")
    good.check()

    # Every refusal was counted, by protocol and reason.
    m = server.metrics()
    want = {
        ("ndjson", "bad_data"): 6,  # 4 bad bodies, the corrupt gzip, the bad tenant
        ("ndjson", "too_large"): 2,
        ("otlp_http", "bad_data"): 2,
        ("otlp_http", "too_large"): 1,
        ("loki_push", "bad_data"): 4,
        ("es_bulk", "bad_data"): 1,
    }
    for (protocol, reason), n in want.items():
        got = metric_value(m, "sightline_rejected_requests_total", protocol=protocol, reason=reason)
        assert got == n, f"sightline_rejected_requests_total{{protocol={protocol!r},reason={reason!r}}}: want {n}, got {got}"
    # The good requests were all accepted.
    assert metric_value(m, "sightline_received_records_total", signal="logs", protocol="ndjson") == good.n
