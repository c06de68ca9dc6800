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
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.multiprocess.servers import fresh_database, run_cli, running_servers, server_env

pytestmark = pytest.mark.multiprocess

REDIS_URL = os.environ.get("VESTIBULE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[dict[str, str], list[str]]]:
    """Two server processes sharing one database and Redis; yields (environment, base URLs)."""
    if not _redis_answers(REDIS_URL):
        pytest.skip(f"Redis does not answer at {REDIS_URL} (set VESTIBULE_TEST_REDIS_URL); cross-process test skipped")
    with fresh_database(str(tmp_path)) as database_url:
        env = server_env(database_url, redis=REDIS_URL, base_url="http://127.0.0.1:8000")
        # Each run signs in from its own client address (X-Forwarded-For), so the
        # per-IP limit counters in the shared Redis never carry over between runs.
        env["VESTIBULE_TRUSTED_PROXIES"] = "1"
        run_cli(["migrate"], env)
        with running_servers(env) as servers:
            yield env, [server.url for server in servers]


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


def test_lockout_holds_across_two_server_processes(deployment: tuple[dict[str, str], list[str]]) -> None:
    env, servers = deployment
    email = f"mp-{secrets.token_hex(4)}@example.com"
    password = run_cli(["operator", "create", email, "--name", "MP"], env).strip()
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
