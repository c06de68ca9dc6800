"""Launching real ``vestibule serve`` processes that share one PostgreSQL database (and Redis).

DESIGN "Runtime": several stateless processes behind a load balancer share
the database and Redis, and replay protection, sessions and rate limits must
hold across them. These helpers give a test exactly that deployment:

    with fresh_postgres_database() as database_url:
        env = server_env(database_url)
        run_cli(["migrate"], env)
        with running_servers(env, count=2) as (one, two):
            httpx.get(f"{one.url}/login")

``fresh_postgres_database`` skips the test (with the reason) when PostgreSQL
is unreachable. Redis is used when ``VESTIBULE_TEST_REDIS_URL`` is set, always
on database 15, flushed before and after.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
#: The address a load balancer would publish; both processes are configured with it.
PUBLIC_BASE_URL = "http://localhost:8000"
STARTUP_TIMEOUT = 30.0


def _admin_url() -> str:
    """A URL of the PostgreSQL server the suite uses, pointing at its maintenance database."""
    configured = os.environ.get("VESTIBULE_TEST_DATABASE_URL", "")
    if configured.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(configured)
        return urlunsplit(parts._replace(path="/postgres"))
    return DEFAULT_ADMIN_URL


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty database for the test and drop it afterwards."""
    import psycopg

    admin = _admin_url()
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {admin} ({exc.__class__.__name__}); multi-process tests need it")
    name = f"vestibule_mp_{secrets.token_hex(4)}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_database(sqlite_dir: str) -> Iterator[str]:
    """A fresh PostgreSQL database when the server answers, else an SQLite file in ``sqlite_dir``."""
    import psycopg

    try:
        psycopg.connect(_admin_url(), autocommit=True, connect_timeout=3).close()
    except psycopg.Error:
        yield f"sqlite:///{sqlite_dir}/multiprocess.sqlite3"
        return
    with fresh_postgres_database() as url:
        yield url


def redis_url() -> str | None:
    """VESTIBULE_TEST_REDIS_URL with its database forced to 15, or None."""
    configured = os.environ.get("VESTIBULE_TEST_REDIS_URL")
    if not configured:
        return None
    return urlunsplit(urlsplit(configured)._replace(path="/15"))


def flush_redis(url: str | None) -> None:
    if url is None:
        return
    import redis

    redis.Redis.from_url(url).flushdb()


def server_env(database_url: str, *, redis: str | None = None, base_url: str = PUBLIC_BASE_URL) -> dict[str, str]:
    """The environment every process of one deployment shares (same secret key, database, Redis)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VESTIBULE_") and k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        {
            "VESTIBULE_DATABASE_URL": database_url,
            "VESTIBULE_BASE_URL": base_url,
            "VESTIBULE_SECRET_KEY": "multiprocess-test-secret-" + "x" * 32,
            "VESTIBULE_DATA_DIR": tempfile.mkdtemp(prefix="vestibule-mp-"),
            "VESTIBULE_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "VESTIBULE_LOG_LEVEL": "WARNING",
        }
    )
    if redis:
        env["VESTIBULE_REDIS_URL"] = redis
    return env


def run_cli(args: Sequence[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run ``vestibule <args>`` to completion; returns its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "vestibule.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise AssertionError(f"vestibule {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        with open(self.log_path, errors="replace") as handle:
            return handle.read()[-5000:]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server on port {self.port} exited ({self.process.returncode}):\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/login", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server on port {self.port} did not answer within {STARTUP_TIMEOUT}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            # SIGINT is gunicorn's quick shutdown; SIGTERM would wait for keep-alive connections.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_server(env: dict[str, str], *, workers: int = 1, threads: int = 4) -> Server:
    port = free_port()
    # The server process holds its own copy of the descriptor; the file outlives this block (delete=False).
    with tempfile.NamedTemporaryFile(prefix=f"vestibule-serve-{port}-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "vestibule.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers), "--threads", str(threads)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Server(process, port, log.name)


@contextlib.contextmanager
def running_servers(env: dict[str, str], count: int = 2) -> Iterator[list[Server]]:
    """``count`` processes of one deployment, started in parallel and stopped at the end."""
    servers = [start_server(env) for _ in range(count)]
    try:
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()
