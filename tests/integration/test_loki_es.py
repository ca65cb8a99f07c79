"""Loki push (JSON and snappy protobuf) and Elasticsearch `_bulk`."""

import json

import cramjam

from conftest import NS_PER_S, Server, log_entries, lines_of, now_ns


# --- a minimal protobuf writer for Loki's logproto.PushRequest (field numbers from Loki's push.proto)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num: int, data: bytes) -> bytes:
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_varint(num: int, n: int) -> bytes:
    return varint(num << 3) + varint(n)


def push_request(streams: list[tuple[str, list[tuple[int, str, dict[str, str]]]]]) -> bytes:
    """PushRequest{streams=1: StreamAdapter{labels=1, entries=2: EntryAdapter{timestamp=1:
    Timestamp{seconds=1, nanos=2}, line=2, structuredMetadata=3: LabelPair{name=1, value=2}}}}"""
    out = b""
    for labels, entries in streams:
        stream = field_bytes(1, labels.encode())
        for ts_ns, line, metadata in entries:
            ts = field_varint(1, ts_ns // NS_PER_S) + field_varint(2, ts_ns % NS_PER_S)
            entry = field_bytes(1, ts) + field_bytes(2, line.encode())
            for k, v in metadata.items():
                entry += field_bytes(3, field_bytes(1, k.encode()) + field_bytes(2, v.encode()))
            stream += field_bytes(2, entry)
        out += field_bytes(1, stream)
    return out


def test_loki_push_and_es_bulk(server: Server):
    t0 = now_ns() - 10 * NS_PER_S

    # Loki JSON push with structured metadata on one entry.
    push = {
        "streams": [
            {
                "stream": {"app": "lokiapp", "env": "test"},
                "values": [
                    [str(t0), "GET /cart 200"],
                    [str(t0 + 1000), "GET /checkout 500", {"trace_id": "0af7651916cd43dd8448eb211c80319c", "user": "u1"}],
                ],
            },
            {"stream": {"app": "lokiapp", "env": "prod"}, "values": [[str(t0 + 2000), "prod line"]]},
        ]
    }
    r = server.post("/loki/api/v1/push", headers={"Content-Type": "application/json"}, data=json.dumps(push))
    assert r.status_code == 204, f"{r.status_code} {r.text}"

    entries = log_entries(server.query_range('{app="lokiapp", env="test"}', categorize=True))
    assert [(e.ts_ns, e.line) for e in entries] == [(t0, "GET /cart 200"), (t0 + 1000, "GET /checkout 500")]
    # Loki push keeps its labels as given: no service or level is made up.
    assert all(e.stream == {"app": "lokiapp", "env": "test"} for e in entries), entries
    assert entries[0].extra is None or entries[0].extra == {}, entries[0].extra
    assert entries[1].extra == {
        "structuredMetadata": {"trace_id": "0af7651916cd43dd8448eb211c80319c", "user": "u1"}
    }, entries[1].extra
    assert lines_of(server.query_range('{app="lokiapp"} | user="u1"')) == ["GET /checkout 500"]
    assert sorted(lines_of(server.query_range('{app="lokiapp"}'))) == ["GET /cart 200", "GET /checkout 500", "prod line"]
    r = server.get("/loki/api/v1/label/env/values")
    assert sorted(r.json()["data"]) == ["prod", "test"], r.text

    # Loki protobuf + snappy, as Promtail and the Grafana agent send.
    body = push_request(
        [
            ('{app="promtail", host="h1"}', [(t0 + 5000, "from promtail 1", {}), (t0 + 6000, "from promtail 2", {"pod": "p-7"})]),
        ]
    )
    r = server.post(
        "/loki/api/v1/push",
        # The body is snappy-compressed by definition; clients send no Content-Encoding.
        headers={"Content-Type": "application/x-protobuf"},
        data=bytes(cramjam.snappy.compress_raw(body)),
    )
    assert r.status_code == 204, f"{r.status_code} {r.text}"
    entries = log_entries(server.query_range('{app="promtail"}', categorize=True))
    assert [(e.ts_ns, e.line) for e in entries] == [(t0 + 5000, "from promtail 1"), (t0 + 6000, "from promtail 2")]
    assert entries[0].stream == {"app": "promtail", "host": "h1"}
    assert entries[1].extra == {"structuredMetadata": {"pod": "p-7"}}, entries[1].extra

    # Elasticsearch bulk: two index actions into one index.
    bulk = [
        {"index": {"_index": "myindex", "_id": "d1"}},
        {"@timestamp": t0 // 1_000_000, "message": "es doc one", "level": "warning", "service": "esapp", "user": {"id": "u7"}},
        {"index": {}},
        {"message": "es doc two", "level": "info", "service": "esapp", "http": {"status": 404}},
    ]  # fmt: skip
    r = server.post(
        "/myindex/_bulk",
        headers={"Content-Type": "application/x-ndjson"},
        data="".join(json.dumps(x) + "\n" for x in bulk),
    )
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    resp = r.json()
    assert resp["errors"] is False, resp
    assert isinstance(resp.get("took"), int), resp
    assert len(resp["items"]) == 2, resp
    for item in resp["items"]:
        assert list(item) == ["index"], item
        assert item["index"]["_index"] == "myindex", item
        assert item["index"]["status"] in (200, 201), item
    assert resp["items"][0]["index"]["_id"] == "d1", resp

    entries = log_entries(server.query_range('{index="myindex"}', categorize=True))
    assert sorted(e.line for e in entries) == ["es doc one", "es doc two"]
    by_line = {e.line: e for e in entries}
    assert by_line["es doc one"].ts_ns == t0 // 1_000_000 * 1_000_000, "@timestamp in epoch ms"
    assert by_line["es doc one"].stream == {"index": "myindex", "service": "esapp", "level": "warn"}
    assert by_line["es doc one"].extra["structuredMetadata"]["user_id"] == "u7"
    assert by_line["es doc two"].stream == {"index": "myindex", "service": "esapp", "level": "info"}
    assert by_line["es doc two"].extra["structuredMetadata"]["http_status"] == "404"

    # /_bulk without an index in the path takes it from the action line.
    r = server.post(
        "/_bulk",
        headers={"Content-Type": "application/x-ndjson"},
        data='{"create":{"_index":"other-index"}}\n{"message":"es doc three","service":"esapp"}\n',
    )
    assert r.status_code == 200, r.text
    assert r.json()["errors"] is False and len(r.json()["items"]) == 1, r.text
    assert lines_of(server.query_range('{index="other-index"}')) == ["es doc three"]
    assert sorted(lines_of(server.query_range('{service="esapp"}'))) == ["es doc one", "es doc three", "es doc two"]
