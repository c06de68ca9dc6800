"""The password lockout holds across server processes that share Redis and the database.

Two real ``vestibule serve`` processes (gunicorn) run on a fresh PostgreSQL
database (or a temporary SQLite file when PostgreSQL is not reachable) and the
Redis of ``VESTIBULE_TEST_REDIS_URL``. Failed sign-ins alternate between them;
the lock reached after five must hold on both. Wrong guesses fired at both at
once must get at most five passwords checked: each process reserves its
lockout slot in Redis before it checks the password.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.multiprocess.servers import fresh_database, run_cli, running_servers, server_env

LIMIT = 5  # PASSWORD_FAILURES_PER_EMAIL.attempts

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

    def __init__(self, base_url: str, client_ip: str, *, keep_alive: bool = True) -> None:
        headers = {"X-Forwarded-For": client_ip}
        if not keep_alive:
            # A burst queues behind four server threads longer than gunicorn's
            # keep-alive, which may then close a connection the client is reusing.
            headers["Connection"] = "close"
        self.http = httpx.Client(base_url=base_url, timeout=30, headers=headers)

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


def _audit_count(database_url: str, code: str, subject_email: str) -> int:
    """Audit events straight from the deployment's database, as the servers wrote them."""
    query = "SELECT count(*) FROM audit_auditevent WHERE code = %s AND subject_email = %s"
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            return int(conn.execute(query.replace("%s", "?"), (code, subject_email)).fetchone()[0])
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(query, (code, subject_email)).fetchone()
        assert row is not None
        return int(row[0])


def test_concurrent_wrong_guesses_on_two_processes_get_at_most_the_limit_checked(
    deployment: tuple[dict[str, str], list[str]],
) -> None:
    """30 wrong guesses in flight at once, spread over both processes (4 threads each)."""
    env, servers = deployment
    email = f"mp-burst-{secrets.token_hex(4)}@example.com"
    password = run_cli(["operator", "create", email, "--name", "MP"], env).strip()
    client_ip = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    control = Browser(servers[0], client_ip)
    browsers = [Browser(servers[i % 2], client_ip, keep_alive=False) for i in range(30)]
    try:
        # Positive control on the same address and processes: the password works before the burst.
        assert control.sign_in(email, password).status_code == 302
        assert control.signed_in()
        control.http.close()

        with ThreadPoolExecutor(max_workers=len(browsers)) as pool:
            statuses = list(
                pool.map(lambda b: b[1].sign_in(email, f"wrong guess {b[0]}").status_code, enumerate(browsers))
            )
        assert set(statuses) <= {401, 429}, statuses
        assert statuses.count(401) <= LIMIT - 1, statuses

        database_url = env["VESTIBULE_DATABASE_URL"]
        checked = _audit_count(database_url, "login.password.failed", email)
        refused = _audit_count(database_url, "login.password.locked", email)
        # Each failed check is audited once; the rest were refused unchecked.
        assert 1 <= checked <= LIMIT, (checked, statuses)
        assert checked + refused == len(browsers), (checked, refused)

        # The victim is locked on both processes, even with the right password.
        for browser in browsers[:2]:
            right = browser.sign_in(email, password)
            assert right.status_code == 429, right.text
            assert not browser.signed_in()
        assert _audit_count(database_url, "login.password.failed", email) == checked
    finally:
        for browser in browsers:
            browser.http.close()
