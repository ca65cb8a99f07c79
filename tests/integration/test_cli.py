"""The `sightline` command line against a running server, and `check config`."""

import json
import os
import re
import select
import subprocess
import time

from conftest import Server, clean_env, free_ports, lines_of, sightline_bin

CLI_TIMEOUT_S = 60


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = clean_env()
    return subprocess.run(
        [sightline_bin(), *args], input=stdin, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=env
    )


def ok(p: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert p.returncode == 0, f"{p.args} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def test_cli_logs_query(server: Server):
    lines = [
        {"service": "clisvc", "level": "info", "message": f"cli line {i}", "request_id": f"c-{i}"} for i in range(3)
    ] + [{"service": "clisvc", "level": "error", "message": "cli failure"}]
    server.push_ndjson(lines)
    server.push_ndjson([{"service": "clisvc", "level": "info", "message": "other tenant line"}], tenant="team-x")

    out = ok(cli("logs", "query", '{service="clisvc"}', "--server", server.url)).stdout
    printed = [line for line in out.splitlines() if line.strip()]
    assert len(printed) == 4, out
    for want in ["cli line 0", "cli line 1", "cli line 2", "cli failure"]:
        assert sum(want in p for p in printed) == 1, f"{want!r} not printed once:\n{out}"
    assert "other tenant line" not in out

    out = ok(cli("logs", "query", '{service="clisvc"} | request_id="c-1"', "--server", server.url)).stdout
    assert [line for line in out.splitlines() if line.strip()] and "cli line 1" in out, out
    assert "cli line 0" not in out and "cli line 2" not in out, out

    out = ok(cli("logs", "query", '{service="clisvc"}', "--server", server.url, "--tenant", "team-x")).stdout
    assert "other tenant line" in out and "cli line" not in out, out

    out = ok(cli("logs", "query", '{level="error"}', "--server", server.url, "--json")).stdout
    body = json.loads(out)
    assert lines_of(body) == ["cli failure"]

    # A bad query fails with the server's message.
    p = cli("logs", "query", '{service="clisvc"', "--server", server.url)
    assert p.returncode != 0
    assert "parse error" in p.stderr, p.stderr


def test_cli_metric_query(server: Server):
    """The README's example: a metric query over the default --since with --step 1m counts
    lines logged a moment ago."""
    server.push_ndjson(
        [{"service": "clisvc", "level": "info", "message": f"cli line {i}"} for i in range(3)]
        + [{"service": "clisvc", "level": "error", "message": "cli failure"}]
    )
    q = 'sum by (level) (count_over_time({service="clisvc"}[5m]))'
    out = ok(cli("logs", "query", q, "--server", server.url, "--step", "1m")).stdout
    last = {}
    current = None
    for line in out.splitlines():
        if line.startswith("{"):
            m = re.search(r'level="?(\w+)"?', line)
            assert m, line
            current = m.group(1)
        elif line.strip():
            last[current] = float(line.split()[-1])
    assert last == {"info": 3, "error": 1}, f"the last step must count the lines just logged; stdout:\n{out}"


def test_cli_logs_tail(server: Server):
    server.push_ndjson([{"service": "clitail", "level": "info", "message": "tail history"}])
    env = clean_env()
    proc = subprocess.Popen(
        [sightline_bin(), "logs", "tail", '{service="clitail"}', "--server", server.url, "--since", "1h"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        out = b""
        deadline = time.monotonic() + 15
        pushed = 0
        last_push = 0.0
        while b"tail history" not in out or b"tail live" not in out:
            assert time.monotonic() < deadline, f"sightline logs tail printed only: {out!r}"
            assert proc.poll() is None, f"logs tail exited {proc.returncode}: {proc.stderr.read()!r}"
            # Live lines until one shows up (the subscription starts some time after launch).
            if time.monotonic() - last_push > 0.5:
                last_push = time.monotonic()
                pushed += 1
                server.push_ndjson([{"service": "clitail", "level": "info", "message": f"tail live {pushed}"}])
            ready, _, _ = select.select([proc.stdout], [], [], 0.1)
            if ready:
                out += os.read(proc.stdout.fileno(), 65536)
        assert out.count(b"tail history") == 1, out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_cli_import_logs(server: Server, tmp_path):
    path = tmp_path / "app.ndjson"
    records = [
        {"timestamp": "2020-01-01T00:00:00Z", "level": "INFO", "service": "imported", "message": f"imported {i}", "n": i}
        for i in range(25)
    ]
    # Recent timestamps, a blank line, CRLF on one line: as files are.
    now = time.time()
    text = ""
    for i, r in enumerate(records):
        r["timestamp"] = int((now - 60 + i) * 1000)
        text += json.dumps(r) + ("\r\n" if i == 3 else "\n")
        if i == 10:
            text += "\n"
    path.write_text(text)
    p = ok(cli("import", "logs", str(path), "--server", server.url, "--batch-lines", "10"))
    assert "imported 25 log lines" in p.stdout, p.stdout
    got = lines_of(server.query_range('{service="imported"}'))
    assert got == [f"imported {i}" for i in range(25)], got
    assert lines_of(server.query_range('{service="imported"} | n >= 20')) == [f"imported {i}" for i in range(20, 25)]

    # Standard input works too.
    p = ok(cli("import", "logs", "-", "--server", server.url, "--tenant", "imp", stdin='{"message":"from stdin"}\n'))
    assert "imported 1 log lines" in p.stdout, p.stdout
    assert lines_of(server.query_range('{service="unknown_service"}', tenant="imp")) == ["from stdin"]

    # A bad line fails the import with a non-zero exit and says where.
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"message": "fine", "service": "badimport"}\n{"message": oops}\n')
    p = cli("import", "logs", str(bad), "--server", server.url)
    assert p.returncode != 0, p.stdout
    assert "line 2" in p.stderr, p.stderr
    assert lines_of(server.query_range('{service="badimport"}')) == [], "a refused batch stores nothing"


def test_cli_check_config(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(
        "storage:\n"
        "  data_dir: /tmp/sightline-data\n"
        "  retention: 30d\n"
        "  flush_interval: 1s\n"
        "  flush_bytes: 1048576\n"
        "  object_store_url: file:///tmp/sightline-segments\n"
        "limits:\n"
        "  request_bytes_max: 1000000\n"
        "  decompressed_bytes_max: 4000000\n"
        "  query_entries_max: 200000\n"
    )
    p = ok(cli("check", "config", str(good)))
    assert "ok" in p.stdout, p.stdout
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    ok(cli("check", "config", str(empty)))

    cases = {
        # An unknown key (a typo) on line 3.
        "typo.yaml": ("storage:\n  data_dir: /x\n  retension: 3d\n", "line 3"),
        # A value of the wrong type on line 2.
        "type.yaml": ("limits:\n  request_bytes_max: lots\n", "line 2"),
        # Not YAML at all on line 2.
        "syntax.yaml": ("storage:\n  retention: [30d\nlimits: {}\n", "line "),
        # An unknown top-level section on line 4.
        "section.yaml": ("storage:\n  retention: 30d\n\nstorrage:\n  retention: 1d\n", "line 4"),
    }
    for name, (text, want) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        p = cli("check", "config", str(path))
        assert p.returncode != 0, f"{name} passed the check:\n{p.stdout}"
        assert want in p.stderr, f"{name}: want {want!r} in the error, got: {p.stderr}"

    # `serve` refuses a bad config file too, naming the line, instead of starting.
    env = clean_env()
    http_port, grpc_port = free_ports(2)
    p = subprocess.run(
        [sightline_bin(), "serve", "--http-addr", f"127.0.0.1:{http_port}", "--grpc-addr", f"127.0.0.1:{grpc_port}",
         "--data-dir", str(tmp_path / "data"), "--config", str(tmp_path / "typo.yaml")],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=env,
    )  # fmt: skip
    assert p.returncode != 0 and "line 3" in p.stderr, p.stderr

    bad_duration = tmp_path / "duration.yaml"
    bad_duration.write_text("storage:\n  retention: 3 days\n")
    p = cli("check", "config", str(bad_duration))
    assert p.returncode != 0 and "retention" in p.stderr, p.stderr
    p = cli("check", "config", str(tmp_path / "missing.yaml"))
    assert p.returncode != 0 and "missing.yaml" in p.stderr, p.stderr
