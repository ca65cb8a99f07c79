"""Live tailing over the Loki websocket API."""

import json
import time
from urllib.parse import urlencode

import websocket

from conftest import NS_PER_S, Server, now_ns

DEADLINE_S = 15.0


class Tail:
    """One `/loki/api/v1/tail` websocket; collects (stream, ts, line) from its frames."""

    def __init__(self, server: Server, query: str, start_ns: int | None = None, tenant: str | None = None):
        params = {"query": query, "limit": 1000}
        if start_ns is not None:
            params["start"] = start_ns
        header = [f"X-Scope-OrgID: {tenant}"] if tenant else []
        self.ws = websocket.create_connection(
            f"{server.ws_url}/loki/api/v1/tail?{urlencode(params)}", header=header, timeout=10
        )
        self.ws.settimeout(0.1)
        self.entries: list[tuple[dict, int, str]] = []

    def poll(self) -> None:
        """Reads every frame that has arrived, checking its shape."""
        while True:
            try:
                msg = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                return
            assert isinstance(msg, str), f"tail frames are text: {msg!r}"
            frame = json.loads(msg)
            assert set(frame) >= {"streams"}, frame
            assert frame.get("dropped_entries") in (None, []), frame
            for stream in frame["streams"]:
                assert isinstance(stream["stream"], dict), frame
                for ts, line, *rest in stream["values"]:
                    assert isinstance(ts, str) and ts.isdigit(), frame
                    assert len(rest) <= 1, frame
                    self.entries.append((stream["stream"], int(ts), line))

    def lines(self) -> list[str]:
        return [line for _, _, line in self.entries]

    def wait_for(self, lines: set[str], pump=None) -> None:
        """Polls until every one of `lines` arrived; `pump()` runs between polls."""
        deadline = time.monotonic() + DEADLINE_S
        while not lines <= set(self.lines()):
            if time.monotonic() > deadline:
                raise AssertionError(f"tail: still missing {sorted(lines - set(self.lines()))} after {DEADLINE_S}s")
            if pump:
                pump()
            self.poll()

    def close(self) -> None:
        self.ws.close()


def test_tail(server: Server):
    t0 = now_ns()
    server.push_ndjson([{"service": "tailsvc", "level": "info", "message": "history line"}])

    everything = Tail(server, '{service="tailsvc"}', start_ns=t0 - NS_PER_S)
    filtered = Tail(server, '{service="tailsvc"} |= "keep"', start_ns=now_ns())
    other_tenant = Tail(server, '{service="tailsvc"}', start_ns=now_ns(), tenant="tail-other")
    try:
        # `start` replays what is already stored.
        everything.wait_for({"history line"})

        # Until a probe arrives a subscription may not be live yet: push one now and then.
        probes: dict[str | None, list[str]] = {None: [], "tail-other": []}

        def until_a_probe_arrives(t: Tail, tenant: str | None = None) -> None:
            deadline, last_push = time.monotonic() + DEADLINE_S, 0.0
            while not any(line in probes[tenant] for line in t.lines()):
                assert time.monotonic() < deadline, f"tail: no probe line arrived (tenant {tenant})"
                if time.monotonic() - last_push > 0.3:
                    last_push = time.monotonic()
                    line = f"keep probe {tenant} {len(probes[tenant])}"
                    probes[tenant].append(line)
                    server.push_ndjson([{"service": "tailsvc", "level": "info", "message": line}], tenant=tenant)
                t.poll()

        until_a_probe_arrives(everything)
        until_a_probe_arrives(filtered)
        until_a_probe_arrives(other_tenant, "tail-other")

        live = [f"live {'keep' if i % 2 == 0 else 'drop'} {i}" for i in range(6)]
        server.push_ndjson([{"service": "tailsvc", "level": "warn", "message": m} for m in live[:3]])
        server.push_ndjson([{"service": "othersvc", "level": "warn", "message": "live keep other service"}])
        server.push_ndjson([{"service": "tailsvc", "level": "warn", "message": m} for m in live[3:]])
        everything.wait_for(set(live))
        filtered.wait_for({m for m in live if "keep" in m})
        server.push_ndjson([{"service": "tailsvc", "level": "info", "message": "sentinel"}], tenant="tail-other")
        other_tenant.wait_for({"sentinel"})
        everything.poll()
        filtered.poll()

        got = everything.lines()
        for m in live + ["history line"]:
            assert got.count(m) == 1, f"{m!r} arrived {got.count(m)} times: {got}"
        assert "live keep other service" not in got, "another service's line was tailed"
        assert sorted(m for m in filtered.lines() if m.startswith("live")) == sorted(m for m in live if "keep" in m)
        assert set(other_tenant.lines()) <= set(probes["tail-other"]) | {"sentinel"}, (
            f"another tenant's lines were tailed: {other_tenant.lines()}"
        )
        for t in (everything, filtered):
            assert not set(t.lines()) & set(probes["tail-other"]), "the other tenant's lines were tailed"
        for stream, ts, line in everything.entries:
            assert stream.get("service") == "tailsvc", stream
            assert t0 - NS_PER_S <= ts <= now_ns(), (ts, line)
            if line.startswith("live"):
                assert stream.get("level") == "warn", stream
    finally:
        for t in (everything, filtered, other_tenant):
            t.close()
