"""NDJSON ingest as our Python services log, and LogQL over it through the Loki API."""

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

from conftest import NS_PER_S, Server, log_entries, lines_of, matrix_result, now_ns, vector_result

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/payments.py", line 88, in charge\n'
    "    validate(card)\n"
    "ValueError: invalid card number"
)


def iso(ts_ns: int) -> str:
    """RFC 3339 with microseconds, as the reference service's logger prints."""
    dt = datetime.fromtimestamp(ts_ns // 1000 / 1e6, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seed_lines():
    """Lines exactly in the shape of the reference Python service's JSON logger, 10 ms apart
    and a few seconds old, with the timestamps (in ns, microsecond precision) they carry."""
    base = (now_ns() - 5 * NS_PER_S) // 1000 * 1000
    rid = {k: str(uuid.uuid4()) for k in ("login", "logout", "slow", "pay", "db", "worker")}
    common = {"ip_address": "192.168.1.1", "session_id": "abc-123"}
    lines = [
        {"level": "INFO", "service": "api-service", "message": "User login successful", "module": "auth",
         "function": "login", "line": 42, "user_id": 12345, **common, "request_id": rid["login"]},
        {"level": "INFO", "service": "api-service", "message": "User logout", "module": "auth",
         "function": "logout", "line": 77, "user_id": 12345, **common, "request_id": rid["logout"]},
        {"level": "WARNING", "service": "api-service", "message": "Slow database query", "module": "db",
         "function": "query", "line": 120, "duration_ms": 1500, "duration": "1.5s", "request_id": rid["slow"]},
        {"level": "ERROR", "service": "api-service", "message": "Payment processing failed", "module": "payments",
         "function": "charge", "line": 88, "user_id": 67890, **common, "request_id": rid["pay"],
         "exception": {"type": "ValueError", "message": "invalid card number", "traceback": TRACEBACK}},
        {"level": "CRITICAL", "service": "api-service", "message": "Database connection lost", "module": "db",
         "function": "connect", "line": 15, "request_id": rid["db"],
         "exception": {"type": "ConnectionError", "message": "connection refused",
                       "traceback": "Traceback (most recent call last):\nConnectionError: connection refused"}},
        {"level": "INFO", "service": "worker-service", "message": "Job login-cleanup finished", "module": "jobs",
         "function": "run", "line": 9, "request_id": rid["worker"]},
    ]  # fmt: skip
    stamped = []
    for i, line in enumerate(lines):
        ts = base + i * 10_000_000
        stamped.append(({"timestamp": iso(ts), **line}, ts))
    return stamped, rid


def test_ndjson_seed_lines(server: Server):
    stamped, rid = seed_lines()
    server.push_ndjson([line for line, _ in stamped])
    ts_of = {line["message"]: ts for line, ts in stamped}

    # A line filter within a selector: the worker's "login" line is another service.
    body = server.query_range('{service="api-service"} |= "login"')
    entries = log_entries(body)
    assert [e.line for e in entries] == ["User login successful"]
    e = entries[0]
    assert e.ts_ns == ts_of["User login successful"], "the timestamp field is the entry's time"
    # Without categorize-labels, structured metadata is merged into the stream labels (Loki 3).
    assert e.stream["service"] == "api-service" and e.stream["level"] == "info", e.stream
    assert e.stream["request_id"] == rid["login"], e.stream
    assert e.stream["user_id"] == "12345", e.stream
    assert e.extra is None, "no third value element without categorize-labels"

    # With categorize-labels: stream labels only, metadata in the third element.
    entries = log_entries(server.query_range('{service="api-service"} |= "login"', categorize=True))
    assert len(entries) == 1
    e = entries[0]
    assert e.stream == {"service": "api-service", "level": "info"}, e.stream
    assert e.extra is not None and "parsed" not in e.extra, e.extra
    assert e.extra["structuredMetadata"] == {
        "module": "auth",
        "function": "login",
        "line": "42",
        "user_id": "12345",
        "ip_address": "192.168.1.1",
        "session_id": "abc-123",
        "request_id": rid["login"],
    }

    # As in Loki 3, the instant query endpoint refuses log queries (metric queries only).
    body = server.query('{service="api-service"} |= "login"', expect=400)
    assert body["status"] == "error" and body["errorType"] == "bad_data", body

    # A structured field finds exactly its line.
    for key, message in [("pay", "Payment processing failed"), ("logout", "User logout")]:
        q = f'{{service="api-service"}} | request_id="{rid[key]}"'
        assert lines_of(server.query_range(q)) == [message], q
    assert lines_of(server.query_range(f'{{service="api-service"}} | request_id="{uuid.uuid4()}"')) == []

    # Levels are canonical lowercase labels.
    assert lines_of(server.query_range('{level="error"}')) == ["Payment processing failed"]
    assert lines_of(server.query_range('{level="fatal"}')) == ["Database connection lost"]
    assert lines_of(server.query_range('{level="warn"}')) == ["Slow database query"]
    assert lines_of(server.query_range('{level="info", service=~"api-.*"}')) == ["User login successful", "User logout"]

    # Nested exception fields are flattened metadata.
    entries = log_entries(server.query_range('{service="api-service"} | exception_type="ValueError"', categorize=True))
    assert [e.line for e in entries] == ["Payment processing failed"]
    md = entries[0].extra["structuredMetadata"]
    assert md["exception_type"] == "ValueError"
    assert md["exception_message"] == "invalid card number"
    assert md["exception_traceback"] == TRACEBACK
    assert "exception" not in md and "exception.type" not in md
    assert lines_of(server.query_range('{service="api-service"} | exception_type=~".+"')) == [
        "Payment processing failed",
        "Database connection lost",
    ]

    # Labels API: stream labels only; ids are never labels.
    r = server.get("/loki/api/v1/labels")
    assert r.status_code == 200, r.text
    labels = r.json()
    assert labels["status"] == "success"
    assert {"service", "level"} <= set(labels["data"]), labels
    for never in ("request_id", "user_id", "ip_address", "session_id", "trace_id", "exception_type", "module"):
        assert never not in labels["data"], f"{never} must not be a label: {labels}"
    r = server.get("/loki/api/v1/label/service/values")
    assert r.status_code == 200, r.text
    assert sorted(r.json()["data"]) == ["api-service", "worker-service"]
    r = server.get("/loki/api/v1/label/level/values")
    assert sorted(r.json()["data"]) == ["error", "fatal", "info", "warn"]

    # Series API: one label set per stream.
    r = server.get("/loki/api/v1/series", params={"match[]": '{service="api-service"}'})
    assert r.status_code == 200, r.text
    series = r.json()
    assert series["status"] == "success"
    assert sorted(series["data"], key=lambda s: s["level"]) == [
        {"level": lvl, "service": "api-service"} for lvl in ["error", "fatal", "info", "warn"]
    ]

    # Metric query: counts by level, instant and range.
    want = {"info": 2, "warn": 1, "error": 1, "fatal": 1}
    q = 'sum by (level) (count_over_time({service="api-service"}[1h]))'
    vec = vector_result(server.query(q))
    assert {s["metric"]["level"]: float(s["value"][1]) for s in vec} == want, vec
    for s in vec:
        assert set(s["metric"]) == {"level"}, s
        assert isinstance(s["value"][0], (int, float)), s
    now_s = time.time()
    mat = matrix_result(server.query_range(q, start=int(now_s - 300), end=int(now_s + 10), step="10s"))
    assert {s["metric"]["level"]: float(s["values"][-1][1]) for s in mat} == want, mat
    for s in mat:
        times = [p[0] for p in s["values"]]
        assert times == sorted(times) and all(isinstance(t, (int, float)) for t in times), s
        assert all(isinstance(p[1], str) for p in s["values"]), s
    total = vector_result(server.query('sum(count_over_time({service=~".+"}[1h]))'))
    assert len(total) == 1 and float(total[0]["value"][1]) == 6, total


def test_logql_pipeline(server: Server):
    """Line filters, label filters on metadata with numbers and durations, and/or, | json,
    | logfmt, line_format, direction and limit."""
    stamped, rid = seed_lines()
    base = stamped[-1][1] + 10_000_000
    extra = [
        # No message: the whole object is the line, for `| json`; an epoch-ms timestamp.
        {"ts": base // 1_000_000, "service": "api-service", "level": "DEBUG", "event": "cache_miss", "key": "user:1",
         "status": 503, "request_id": "r-json"},
        {"timestamp": iso(base + 10_000_000), "service": "gateway", "level": "info",
         "message": 'method=GET path=/api/users status=500 duration=25ms msg="upstream failed"'},
        {"timestamp": iso(base + 20_000_000), "service": "gateway", "level": "info",
         "message": "method=GET path=/health status=200 duration=2ms"},
        {"timestamp": iso(base + 30_000_000), "service": "gateway", "level": "info",
         "message": "method=POST path=/api/orders status=502 duration=4ms"},
    ]  # fmt: skip
    server.push_ndjson([line for line, _ in stamped] + extra)

    q = lambda s: lines_of(server.query_range(s))  # noqa: E731
    assert q('{service="api-service"} |~ "(?i)database"') == ["Slow database query", "Database connection lost"]
    assert q('{service="api-service"} != "User" !~ "(?i)database" |= "a"') == [
        "Payment processing failed",
        json.dumps(extra[0]),
    ]
    assert q('{service="api-service"} | duration_ms > 1000') == ["Slow database query"]
    assert q('{service="api-service"} | duration > 1s') == ["Slow database query"]
    assert q('{service="api-service"} | duration > 2s') == []
    assert q('{service="api-service"} | user_id >= 50000') == ["Payment processing failed"]
    assert q('{service="api-service"} | level="error" or level="fatal"') == [
        "Payment processing failed",
        "Database connection lost",
    ]
    assert q('{service="api-service"} | module="db" and function="connect"') == ["Database connection lost"]
    assert q('{service="api-service", level!="info"} | module!="db"') == ["Payment processing failed", json.dumps(extra[0])]

    # | json on a line that is a JSON object; as in Loki, the lines that are not JSON carry
    # __error__ and pass numeric filters unless that is filtered out. Without categorize-labels
    # the extracted labels join the stream labels, a clash with a stream label renamed
    # `<name>_extracted`.
    entries = log_entries(server.query_range('{service="api-service"} | json | __error__="" | status >= 500'))
    assert [e.line for e in entries] == [json.dumps(extra[0])]
    stream = entries[0].stream
    assert stream["event"] == "cache_miss" and stream["key"] == "user:1" and stream["status"] == "503", stream
    assert stream["level"] == "debug" and stream["level_extracted"] == "DEBUG", stream
    assert q('{service="api-service"} | json | __error__="" | status >= 500 | line_format "{{.event}} {{.key}}"') == [
        "cache_miss user:1"
    ]
    errors = log_entries(server.query_range('{service="api-service"} | json | __error__!=""'))
    assert len(errors) == 5 and all(e.stream["__error__"] == "JSONParserErr" for e in errors), errors

    # | logfmt, with numeric and duration filters on extracted fields.
    assert q('{service="gateway"} | logfmt | status >= 500') == [extra[1]["message"], extra[3]["message"]]
    assert q('{service="gateway"} | logfmt | status >= 500 | duration > 10ms') == [extra[1]["message"]]
    assert q('{service="gateway"} | logfmt | line_format "{{.method}} {{.path}} -> {{.status}}"') == [
        "GET /api/users -> 500",
        "GET /health -> 200",
        "POST /api/orders -> 502",
    ]
    # A metric query over extracted values.
    vec = vector_result(server.query('sum by (method) (count_over_time({service="gateway"} | logfmt [1h]))'))
    assert {s["metric"]["method"]: float(s["value"][1]) for s in vec} == {"GET": 2, "POST": 1}
    vec = vector_result(server.query('max_over_time({service="gateway"} | logfmt | unwrap status [1h])'))
    assert len(vec) >= 1 and max(float(s["value"][1]) for s in vec) == 502, vec

    # Direction and limit, as Loki: backward gives the newest first.
    back = server.query_range('{service="gateway"}', limit=2, direction="backward")
    assert [e.line for e in sorted(log_entries(back), key=lambda e: -e.ts_ns)] == [
        extra[3]["message"],
        extra[2]["message"],
    ]
    fwd = server.query_range('{service="gateway"}', limit=2, direction="forward")
    assert lines_of(fwd) == [extra[1]["message"], extra[2]["message"]]

    # Times as RFC 3339 and unix seconds work as well as ns.
    start = datetime.fromtimestamp(time.time() - 600, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    assert len(lines_of(server.query_range('{service="gateway"}', start=start))) == 3
    assert len(lines_of(server.query_range('{service="gateway"}', start=int(time.time() - 600)))) == 3
    # A range that ends before the lines finds none.
    assert lines_of(server.query_range('{service="gateway"}', end=int(time.time() - 600))) == []


def test_categorize_labels_parsed(server: Server):
    """With `X-Loki-Response-Encoding-Flags: categorize-labels`, labels extracted by the
    pipeline go to the third value element's `parsed`, not to `stream` (Loki 3)."""
    line = {"ts": now_ns() // 1_000_000, "service": "api-service", "level": "DEBUG", "event": "cache_miss",
            "key": "user:1", "status": 503, "request_id": "r-json"}  # fmt: skip
    server.push_ndjson([line])
    entries = log_entries(server.query_range('{service="api-service"} | json | status >= 500', categorize=True))
    assert [e.line for e in entries] == [json.dumps(line)]
    e = entries[0]
    assert e.stream == {"service": "api-service", "level": "debug"}, f"only stream labels in stream: {e.stream}"
    assert e.extra is not None and e.extra.get("structuredMetadata") == {"request_id": "r-json"}, e.extra
    parsed = e.extra.get("parsed", {})
    assert parsed.get("event") == "cache_miss" and parsed.get("key") == "user:1" and parsed.get("status") == "503", e.extra


def test_ndjson_normalisation_table(server: Server):
    """How one NDJSON line's fields become time, stream labels, line and metadata: a table of
    (input fields, want ts_ns, want stream labels, want line, want metadata subset)."""
    t = (now_ns() - 30 * NS_PER_S) // NS_PER_S * NS_PER_S  # a whole second, a little in the past
    rfc = datetime.fromtimestamp(t / NS_PER_S, tz=timezone.utc)
    cases = [
        ({"time": t // NS_PER_S, "level": "WARNING", "service": "norm", "message": "epoch seconds"},
         t, {"service": "norm", "level": "warn"}, {}),
        ({"ts": t // 1_000_000 + 5, "level": "CRITICAL", "service.name": "norm", "msg": "epoch millis"},
         t + 5_000_000, {"service": "norm", "level": "fatal"}, {}),
        ({"timestamp": t + 7, "level": "error", "service": "norm", "message": "epoch nanos"},
         t + 7, {"service": "norm", "level": "error"}, {}),
        ({"@timestamp": (rfc.astimezone(timezone(timedelta(hours=2)))).isoformat(), "level": "Debug",
          "service": "norm", "message": "rfc3339 with an offset", "http.method": "GET",
          "user": {"id": 7, "geo": {"country": "NL"}}, "tags": ["a", "b"], "ok": True},
         t, {"service": "norm", "level": "debug"},
         {"http_method": "GET", "user_id": "7", "user_geo_country": "NL", "ok": "true"}),
        ({"timestamp": (rfc - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), "level": "info", "service": "norm",
          "message": "a day old", "traceId": "4BF92F3577B34DA6A3CE929D0E0E4736", "requestId": "Req-9"},
         t - 86_400 * NS_PER_S, {"service": "norm", "level": "info"},
         {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "request_id": "Req-9"}),
    ]  # fmt: skip
    server.push_ndjson([fields for fields, *_ in cases])
    start = t - 2 * 86_400 * NS_PER_S
    got = {e.line: e for e in log_entries(server.query_range('{service="norm"}', start=start, categorize=True))}
    assert sorted(got) == sorted(c[0].get("message") or c[0].get("msg") for c in cases), sorted(got)
    for fields, want_ts, want_stream, want_md in cases:
        e = got[fields.get("message") or fields.get("msg")]
        assert e.ts_ns == want_ts, (fields, e.ts_ns)
        assert e.stream == want_stream, (fields, e.stream)
        md = (e.extra or {}).get("structuredMetadata", {})
        assert {k: md.get(k) for k in want_md} == want_md, (fields, md)
        for label_only in ("service", "level", "message", "msg", "timestamp", "ts", "time", "@timestamp"):
            assert label_only not in md, f"{label_only} repeated as metadata: {md}"


def test_metric_queries_table(server: Server):
    """Metric queries over six known lines: (query, want {grouping label values: value})."""
    levels = ["info", "info", "info", "error", "error", "warn"]
    server.push_ndjson(
        [
            {"service": "calc", "level": lvl, "message": f"calc {i:05d}", "dur_ms": 10 * (i + 1),
             "route": "/a" if i < 4 else "/b"}
            for i, lvl in enumerate(levels)
        ]  # fmt: skip
    )
    sel = '{service="calc"}'
    cases = [
        (f"sum(count_over_time({sel}[1h]))", {(): 6}),
        (f"sum by (level) (count_over_time({sel}[1h]))", {("info",): 3, ("error",): 2, ("warn",): 1}),
        (f"sum without (level) (count_over_time({sel}[1h]))", {("calc",): 6}),
        (f"sum(rate({sel}[1h]))", {(): 6 / 3600}),
        (f"sum(bytes_over_time({sel}[1h]))", {(): 6 * len("calc 00000")}),
        (f"max(sum by (level) (count_over_time({sel}[1h])))", {(): 3}),
        (f"min(sum by (level) (count_over_time({sel}[1h])))", {(): 1}),
        (f"avg(sum by (level) (count_over_time({sel}[1h])))", {(): 2}),
        (f"count(sum by (level) (count_over_time({sel}[1h])))", {(): 3}),
        (f"topk(2, sum by (level) (count_over_time({sel}[1h])))", {("info",): 3, ("error",): 2}),
        (f"sum by (route) (count_over_time({sel}[1h]))", {("/a",): 4, ("/b",): 2}),
        (f"sum(count_over_time({sel} | dur_ms > 25 [1h]))", {(): 4}),
        (f"sum by (level) (sum_over_time({sel} | unwrap dur_ms [1h]))", {("info",): 60, ("error",): 90, ("warn",): 60}),
        (f"quantile_over_time(0.5, {sel} | unwrap dur_ms [1h]) by (service)", {("calc",): 35}),
        (f"max_over_time({sel} | unwrap dur_ms [1h]) by (service)", {("calc",): 60}),
    ]
    for q, want in cases:
        got = {}
        for s in vector_result(server.query(q)):
            got[tuple(s["metric"].values())] = float(s["value"][1])
        assert set(got) == set(want), f"{q}: want series {sorted(want)}, got {got}"
        for k, v in want.items():
            assert abs(got[k] - v) < 1e-9 * max(1, abs(v)), f"{q}: {k}: want {v}, got {got[k]}"
