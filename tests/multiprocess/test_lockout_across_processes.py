"""The password lockout holds across server processes that share Redis and the database.

Two real ``vestibule serve`` processes (gunicorn) run on a fresh PostgreSQL
database (or a temporary SQLite file when PostgreSQL is not reachable) and the
Redis of ``VESTIBULE_TEST_REDIS_URL``. Failed sign-ins alternate between them;
the lock reached after five must hold on both.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.multiprocess

ADMIN_PG = "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_URL = os.environ.get("VESTIBULE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; a temporary SQLite file without PostgreSQL."""
    import psycopg

    try:
        admin = psycopg.connect(ADMIN_PG, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError:
        yield f"sqlite:///{tmp_path / 'mp.sqlite3'}"
        return
    name = f"vestibule_mp_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgres://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def server_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    if not _redis_answers(REDIS_URL):
        pytest.skip(f"Redis does not answer at {REDIS_URL} (set VESTIBULE_TEST_REDIS_URL); cross-process test skipped")
    # Nothing of the test run's own configuration leaks into the servers.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VESTIBULE_") and k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DJANGO_SETTINGS_MODULE="vestibule.conf.settings",
        VESTIBULE_DATA_DIR=str(tmp_path / "data"),
        VESTIBULE_DATABASE_URL=database_url,
        VESTIBULE_REDIS_URL=REDIS_URL,
        VESTIBULE_SECRET_KEY=secrets.token_urlsafe(48),
        VESTIBULE_BASE_URL="http://127.0.0.1:8000",
        # Each run signs in from its own client address (X-Forwarded-For), so the
        # per-IP limit counters in the shared Redis never carry over between runs.
        VESTIBULE_TRUSTED_PROXIES="1",
        VESTIBULE_LOG_LEVEL="WARNING",
    )
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "vestibule.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def servers(server_env: dict[str, str], tmp_path: Path) -> Iterator[list[str]]:
    _cli(server_env, "migrate")
    procs: list[tuple[subprocess.Popen[bytes], Any]] = []
    urls = []
    try:
        for i in range(2):
            port = _free_port()
            log = open(tmp_path / f"server{i}.log", "wb")  # noqa: SIM115 - closed below
            proc = subprocess.Popen(
                [sys.executable, "-m", "vestibule.cli", "serve", "--port", str(port), "--workers", "1", "--threads", "2"],
                env=server_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            procs.append((proc, log))
            urls.append(f"http://127.0.0.1:{port}")
        for (proc, _), url in zip(procs, urls, strict=True):
            _wait_until_up(proc, url, tmp_path)
        yield urls
    finally:
        for proc, log in procs:
            _stop(proc)
            log.close()


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, tmp_path: Path) -> None:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            logs = "\n".join(p.read_text(errors="replace") for p in tmp_path.glob("server*.log"))
            pytest.fail(f"server at {url} exited with {proc.returncode}:\n{logs}")
        try:
            if httpx.get(f"{url}/login", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"server at {url} did not answer within 40 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        # The server runs in its own session: its process group is ours to end.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


class Browser:
    """One cookie jar talking to one server process."""

    def __init__(self, base_url: str, client_ip: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10, headers={"X-Forwarded-For": client_ip})

    def sign_in(self, email: str, password: str) -> httpx.Response:
        page = self.http.get("/login")
        assert page.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text
        return self.http.post(
            "/login", data={"email": email, "password": password, "next": "", "csrfmiddlewaretoken": token.group(1)}
        )

    def signed_in(self) -> bool:
        return self.http.get("/api/v1/session").status_code == 200


def test_lockout_holds_across_two_server_processes(servers: list[str], server_env: dict[str, str]) -> None:
    email = f"mp-{secrets.token_hex(4)}@example.com"
    password = _cli(server_env, "operator", "create", email, "--name", "MP").stdout.strip()
    assert password and "\n" not in password

    client_ip = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    a, b = (Browser(url, client_ip) for url in servers)
    try:
        _alternate_failures(a, b, email, password)
    finally:
        # Open keep-alive connections would hold up the servers' graceful shutdown.
        a.http.close()
        b.http.close()


def _alternate_failures(a: Browser, b: Browser, email: str, password: str) -> None:

    # Positive control: the password works on both processes, and a session made
    # on one is valid on the other (shared database sessions).
    first = a.sign_in(email, password)
    assert first.status_code == 302, first.text
    assert a.signed_in()
    b.http.cookies.update(a.http.cookies)
    assert b.signed_in()
    a.http.cookies.clear()
    b.http.cookies.clear()

    statuses = []
    for attempt in range(5):
        browser = (a, b)[attempt % 2]
        statuses.append(browser.sign_in(email, f"wrong password {attempt}").status_code)
    assert statuses == [401, 401, 401, 401, 429], statuses

    sixth = b.sign_in(email, "wrong password 6")
    assert sixth.status_code == 429
    for browser in (a, b):
        right = browser.sign_in(email, password)
        assert right.status_code == 429, right.text
        assert "Too many failed attempts" in right.text
        assert not browser.signed_in()
