"""A live ``vestibule serve`` with an account and a SCIM token made by its CLI, and a SCIM client for it.

The deployment is the one an operator runs: the installed ``vestibule``
command, ``migrate``, ``account create``, ``scim-token create --account``
(its JSON read for the token), an operator API key, then ``serve`` on a free
port of 127.0.0.1, waited for at ``/readyz``, and the account's email domain
claimed through ``POST /api/v1/accounts/<slug>/domains`` (SCIM provisions
only people of the domains the account owns). The database is an SQLite file in a fresh data
directory, or a fresh PostgreSQL database when ``VESTIBULE_TEST_DATABASE_URL``
names one (as tests/multiprocess does); Redis when
``VESTIBULE_TEST_REDIS_URL`` is set. Nothing is skipped: a missing piece fails
with what is missing.

:class:`HttpxSCIMClient` is scim2-client's synchronous client over an
``httpx.Client``. scim2-client ships an engine for httpx2 (a fork, not
installed here); the base class needs only ``request``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from scim2_client import BaseSyncSCIMClient
from scim2_client.errors import RequestNetworkException

from tests.multiprocess.servers import flush_redis, free_port, fresh_postgres_database, redis_url, server_env

VESTIBULE = Path(sys.executable).parent / "vestibule"
ACCOUNT = "acme"
#: The email domain acme owns (claimed by the operator): SCIM provisions only people of its domains.
DOMAIN = "acme.test"
STARTUP_TIMEOUT = 60.0


class HttpxSCIMClient(BaseSyncSCIMClient):
    """scim2-client's request checks over an ``httpx.Client`` whose ``base_url`` is the SCIM base URL."""

    def __init__(self, client: httpx.Client, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.client.request(method, url, **kwargs)
        except httpx.RequestError as exc:
            error = RequestNetworkException()
            error.add_note(str(exc))
            raise error from exc


@dataclass
class LiveScim:
    """The running server: its URL, the SCIM base URL and token the CLI printed, and its log."""

    url: str
    base_url: str
    token: str
    log_path: str

    def log(self) -> str:
        with open(self.log_path, errors="replace") as handle:
            return handle.read()[-5000:]

    def http(self, timeout: float = 10) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=timeout)


def vestibule(args: Sequence[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run the installed ``vestibule <args>`` to completion; its stdout (a failure shows its stderr)."""
    if not VESTIBULE.exists():
        pytest.fail(f"the vestibule command is not installed at {VESTIBULE} (pip install -e . in this venv)")
    done = subprocess.run([str(VESTIBULE), *args], env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(
            f"vestibule {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    return done.stdout


@contextlib.contextmanager
def database(data_dir: str) -> Iterator[str]:
    """A fresh PostgreSQL database when the run names one, else an SQLite file in the data directory."""
    configured = os.environ.get("VESTIBULE_TEST_DATABASE_URL", "")
    if not configured.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{data_dir}/vestibule.sqlite3"
        return
    try:
        with fresh_postgres_database() as url:
            yield url
    except pytest.skip.Exception as skipped:
        pytest.fail(f"VESTIBULE_TEST_DATABASE_URL is set but: {skipped}")


def wait_ready(process: subprocess.Popen[bytes], url: str, log_path: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with open(log_path, errors="replace") as handle:
                pytest.fail(f"vestibule serve exited ({process.returncode}):\n{handle.read()[-5000:]}")
        try:
            response = httpx.get(f"{url}/readyz", timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.2)
    with open(log_path, errors="replace") as handle:
        pytest.fail(f"{url}/readyz not ready within {STARTUP_TIMEOUT}s ({last}):\n{handle.read()[-5000:]}")


@contextlib.contextmanager
def live_scim_server() -> Iterator[LiveScim]:
    """``vestibule serve`` on a fresh database, with account ``acme`` and its SCIM token; stopped at the end."""
    data_dir = tempfile.mkdtemp(prefix="vestibule-scim-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    redis = redis_url()
    with database(data_dir) as database_url:
        env = server_env(database_url, redis=redis, base_url=url)
        env["VESTIBULE_DATA_DIR"] = data_dir
        flush_redis(redis)
        vestibule(["migrate"], env)
        vestibule(["account", "create", ACCOUNT, "--name", "Acme Corporation"], env)
        printed = vestibule(["scim-token", "create", "--account", ACCOUNT], env)
        try:
            made = json.loads(printed)
            token, base_url = made["token"], made["base_url"]
        except (ValueError, KeyError, TypeError):
            pytest.fail(f"vestibule scim-token create did not print JSON with token and base_url:\n{printed[:2000]}")
        assert base_url == f"{url}/scim/v2", made
        operator_key = vestibule(["api-key", "create", "--operator", "--name", "scim interop"], env).strip()
        with tempfile.NamedTemporaryFile(prefix=f"vestibule-scim-{port}-", suffix=".log", delete=False) as log:
            process = subprocess.Popen(
                [str(VESTIBULE), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_ready(process, url, log.name)
            claimed = httpx.post(
                f"{url}/api/v1/accounts/{ACCOUNT}/domains",
                json={"domain": DOMAIN},
                headers={"Authorization": f"Bearer {operator_key}"},
                timeout=10,
            )
            assert claimed.status_code == 201, f"claiming {DOMAIN} for {ACCOUNT}: {claimed.status_code} {claimed.text}"
            yield LiveScim(url=url, base_url=base_url, token=token, log_path=log.name)
        finally:
            stop(process)
            flush_redis(redis)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        # SIGINT is gunicorn's quick shutdown; SIGTERM would wait for the client's keep-alive connections.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
