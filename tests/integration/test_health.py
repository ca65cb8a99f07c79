"""Health endpoints and the server's own /metrics."""

from conftest import Server, metric_value


def test_health_and_metrics(server: Server):
    for path in ("/health/live", "/health/ready", "/health/startup"):
        r = server.get(path)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
        body = r.json()
        assert body["status"] == "ok", body
        assert isinstance(body["checks"], dict) and body["checks"], f"{path} names no checks: {body}"
        for name, check in body["checks"].items():
            assert check["status"] == "ok", f"{path} check {name}: {check}"

    r = server.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith(("text/plain", "application/openmetrics-text")), r.headers
    before = server.metrics()
    received_before = metric_value(before, "sightline_received_records_total", signal="logs", protocol="ndjson") or 0
    fsyncs_before = metric_value(before, "sightline_wal_fsync_seconds_count") or 0
    assert metric_value(before, "sightline_store_segments") is not None, "sightline_store_segments missing"

    server.push_ndjson([{"service": "metricsvc", "level": "info", "message": f"hello {i}"} for i in range(3)])
    server.query_range('{service="metricsvc"}')

    after = server.metrics()
    assert metric_value(after, "sightline_received_records_total", signal="logs", protocol="ndjson") == received_before + 3
    assert (metric_value(after, "sightline_received_bytes_total", signal="logs", protocol="ndjson") or 0) > 0
    assert (metric_value(after, "sightline_wal_fsync_seconds_count") or 0) > fsyncs_before, (
        "an acknowledged request must have been fsynced to the WAL"
    )
    queries = metric_value(after, "sightline_query_duration_seconds_count")
    assert queries is not None and queries >= 1, "sightline_query_duration_seconds must count the query"
