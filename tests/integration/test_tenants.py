"""Tenants (X-Scope-OrgID) never see each other's data."""

from conftest import Server, lines_of, vector_result


def test_tenants_isolated(server: Server):
    server.push_ndjson(
        [{"service": "shared", "level": "info", "message": "alpha secret", "request_id": "rid-a"}], tenant="team-a"
    )
    server.push_ndjson(
        [
            {"service": "shared", "level": "error", "message": "beta secret", "request_id": "rid-b"},
            {"service": "b-only", "level": "info", "message": "beta other"},
        ],
        tenant="team-b",
    )
    server.push_ndjson([{"service": "shared", "level": "info", "message": "default line", "request_id": "rid-d"}])

    q = '{service="shared"}'
    assert lines_of(server.query_range(q, tenant="team-a")) == ["alpha secret"]
    assert lines_of(server.query_range(q, tenant="team-b")) == ["beta secret"]
    assert lines_of(server.query_range(q)) == ["default line"]
    assert lines_of(server.query_range(q, tenant="default")) == ["default line"], "no header means tenant default"
    assert lines_of(server.query_range(q, tenant="team-c")) == []

    # Metadata lookups stay within the tenant.
    assert lines_of(server.query_range('{service="shared"} | request_id="rid-b"', tenant="team-a")) == []
    assert lines_of(server.query_range('{service="shared"} | request_id="rid-b"', tenant="team-b")) == ["beta secret"]
    assert lines_of(server.query_range('{level="error"}', tenant="team-a")) == []
    assert lines_of(server.query_range('{level="error"}')) == []

    # Labels, values and series per tenant.
    def data(path, tenant, **params):
        r = server.get(path, tenant=tenant, params=params)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "success", r.text
        return r.json()["data"] or []

    assert sorted(data("/loki/api/v1/label/service/values", "team-a")) == ["shared"]
    assert sorted(data("/loki/api/v1/label/service/values", "team-b")) == ["b-only", "shared"]
    assert sorted(data("/loki/api/v1/label/level/values", "team-a")) == ["info"]
    assert data("/loki/api/v1/label/service/values", "team-c") == []
    assert data("/loki/api/v1/labels", "team-c") == []
    assert data("/loki/api/v1/series", "team-a", **{"match[]": '{service=~".+"}'}) == [
        {"service": "shared", "level": "info"}
    ]

    # Metric queries count only the tenant's lines.
    total = 'sum(count_over_time({service=~".+"}[1h]))'
    for tenant, n in [("team-a", 1), ("team-b", 2), (None, 1)]:
        vec = vector_result(server.query(total, tenant=tenant))
        assert len(vec) == 1 and float(vec[0]["value"][1]) == n, (tenant, vec)
    assert vector_result(server.query(total, tenant="team-c")) == []


def test_index_stats(server_factory, tmp_path):
    """Grafana's query-size estimate: /loki/api/v1/index/stats over head and segments alike."""
    data = tmp_path / "data"
    server = server_factory().start(data, config_yaml="storage:\n  flush_interval: 1s\n")
    server.push_ndjson([{"service": "stats", "level": "info", "message": "x" * 10} for _ in range(3)])

    def stats(query: str, tenant: str | None = None) -> dict:
        r = server.get("/loki/api/v1/index/stats", tenant=tenant, params={"query": query})
        assert r.status_code == 200, r.text
        return r.json()

    assert stats('{service="stats"}') == {"streams": 1, "chunks": 0, "bytes": 30, "entries": 3}, "head only"
    server.stop()
    server.start(data, config_yaml="storage:\n  flush_interval: 1s\n")
    server.push_ndjson([{"service": "stats", "level": "error", "message": "yy"}])
    got = stats('{service="stats"} |= "ignored by stats"')
    assert got == {"streams": 2, "chunks": 1, "bytes": 32, "entries": 4}, "segment block plus head"
    assert stats('{service="stats"}', tenant="other") == {"streams": 0, "chunks": 0, "bytes": 0, "entries": 0}
    r = server.get("/loki/api/v1/index/stats", params={"query": "{service="})
    assert r.status_code == 400 and "parse error" in r.json()["error"], r.text
