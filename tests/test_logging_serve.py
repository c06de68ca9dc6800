"""``vestibule serve`` logs one JSON object per line on stderr: gunicorn's lines, Django's and the request lines.

A real server process (gunicorn, one worker) on the embedded database: a
request with an ``X-Request-ID`` and a query string carrying a would-be
secret, and a setup link that does not exist. Every stderr line must parse
as JSON; the request line names the route and that ID, and neither the
query string nor the token appears anywhere in the output (gunicorn's access
log, which printed both, is off). stdout holds only the start-up line.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.multiprocess import servers
from tests.multiprocess.servers import Server, free_port, server_env

pytestmark = pytest.mark.multiprocess


def test_serve_writes_json_lines_with_the_request_id_and_no_raw_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A first start migrates the embedded database; on a busy machine that takes a while.
    monkeypatch.setattr(servers, "STARTUP_TIMEOUT", 90.0)
    port = free_port()
    # The public URL is where it listens: no "VESTIBULE_BASE_URL is ... but" note (a plain line for a person).
    env = server_env(f"sqlite:///{tmp_path}/serve.sqlite3", base_url=f"http://127.0.0.1:{port}")
    env["VESTIBULE_LOG_LEVEL"] = "INFO"
    env.pop("VESTIBULE_LOG_FORMAT", None)  # the default is what operators get
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "vestibule.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "--threads", "2"],
            env=env, stdout=stdout, stderr=stderr,
        )  # fmt: skip
    server = Server(process, port, str(err))
    secret = "QUERY-" + secrets.token_urlsafe(16)
    token = "vsu_" + secrets.token_urlsafe(24)
    try:
        server.wait_ready()
        answer = httpx.get(f"{server.url}/login?code={secret}", headers={"X-Request-ID": "mp-serve.1"})
        assert answer.status_code == 200 and answer.headers["X-Request-ID"] == "mp-serve.1"
        missing = httpx.get(f"{server.url}/setup/{token}?state={secret}", headers={"X-Request-ID": "bad\tid"})
        assert missing.status_code == 404 and len(missing.headers["X-Request-ID"]) == 32
    finally:
        server.stop()

    lines = err.read_text().splitlines()
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line on stderr: {line!r}\n{err.read_text()[-3000:]}") from None
    loggers = {r["logger"] for r in records}
    assert "gunicorn.error" in loggers and "vestibule.request" in loggers, loggers
    [mine] = [r for r in records if r.get("request_id") == "mp-serve.1"]
    assert mine["event"] == "request" and mine["route"] == "login" and mine["status"] == 200
    assert mine["method"] == "GET" and mine["duration_ms"] >= 0 and mine["timestamp"].endswith("Z")
    not_found = [r for r in records if r.get("request_id") == missing.headers["X-Request-ID"]]
    assert {(r["logger"], r.get("route"), r.get("status")) for r in not_found} == {
        ("vestibule.request", "setup:open", 404),
        ("django.request", "setup:open", 404),
    }
    printed = out.read_text()
    everything = err.read_text() + printed
    assert secret not in everything and token not in everything and "/setup/" not in everything
    assert printed.splitlines() == [
        f"Vestibule listening on http://127.0.0.1:{port}  (public URL http://127.0.0.1:{port})"
    ]
