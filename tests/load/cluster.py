"""A throwaway deployment the load test may break: its own PostgreSQL, Redis, two nodes and HAProxy.

The fault phases stop and start PostgreSQL and Redis, so they must never touch
the machine's shared servers: :func:`own_postgres` runs ``initdb`` into a
temporary folder and serves it on a free loopback port (trust authentication,
no fsync: the data is thrown away), :func:`own_redis` starts a
``redis-server`` without persistence. Both can be stopped and started again on
the same port and data, which is what a restarted database or cache looks like
to the nodes. :func:`haproxy` writes a round-robin configuration that probes
each node's ``/readyz``.

When the suite runs as root (a CI container), PostgreSQL's tools refuse to;
they run as the ``postgres`` system user then, which owns the folder.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.multiprocess.servers import Server, free_port

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
#: VESTIBULE_METRICS_TOKEN of the nodes, so that the test scrapes /metrics during the load.
METRICS_TOKEN = "load-test-metrics-" + secrets.token_hex(8)


def _pg_bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    if found:
        return found[-1]  # the newest installed major version
    on_path = shutil.which(tool)
    if on_path is None:
        pytest.skip(f"PostgreSQL server binaries ({tool}) not installed; the load test runs its own cluster")
    return on_path


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class Postgres:
    folder: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/vestibule"

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(self.folder / "data"), *args]),
                       check=True, capture_output=True, timeout=60)  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._ctl("-l", str(self.log), "-o", options, "-w", "-t", "30", "start")

    def stop(self) -> None:
        # "fast": open connections are cut, as when the database host restarts.
        self._ctl("-m", "fast", "-w", "-t", "30", "stop")

    def running(self) -> bool:
        return (self.folder / "data" / "postmaster.pid").exists()


@contextlib.contextmanager
def own_postgres() -> Iterator[Postgres]:
    folder = Path(tempfile.mkdtemp(prefix="vestibule-load-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = Postgres(folder, free_port(), folder / "postgres.log")
    subprocess.run(
        _as_postgres([_pg_bin("initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync",
                      "-E", "UTF8", "--locale", "C"]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    server.start()
    try:
        subprocess.run(_as_postgres([_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres",
                                     "vestibule"]), check=True, capture_output=True, timeout=30)  # fmt: skip
        yield server
    finally:
        if server.running():
            with contextlib.suppress(subprocess.SubprocessError):
                server._ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Redis:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for_port(self.port, 10, what="redis-server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@contextlib.contextmanager
def own_redis() -> Iterator[Redis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed; the load test runs its own Redis")
    server = Redis(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _wait_for_port(port: int, timeout: float, *, what: str) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on port {port} within {timeout}s")


HAPROXY_CONFIG = """\
global
    maxconn 512

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout queue 15s
    # A node that dies mid-request: the request goes once more, to the other node
    # (connection refused, or closed before any answer). A node's own 503 is an
    # answer and is passed on: the database is shared, the other node would say the same.
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
    # Requests are buffered so that a retry can resend the body (SAML responses are POSTed).
    option http-buffer-request
    option forwardfor

frontend web
    bind 127.0.0.1:{port}
    default_backend nodes

backend nodes
    balance roundrobin
    # Readiness, not liveness: a node that cannot reach the database or Redis
    # answers 503 here and is taken out until it is ready again.
    option httpchk GET /readyz
    http-check expect status 200
    # A probe waits behind the logins a busy node is serving: a short check timeout would
    # take a loaded but healthy node out (and, with its peer down, everything).
    timeout check 5s
    # At most 8 requests on a node at once (1 worker, 4 threads); the rest wait here, in order.
    default-server inter 1s fall 3 rise 2 maxconn 8
{servers}
"""


@dataclass
class Haproxy:
    port: int
    process: subprocess.Popen[bytes]
    config: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def haproxy(port: int, nodes: list[int]) -> Iterator[Haproxy]:
    if not Path(HAPROXY).exists():
        pytest.skip("haproxy not installed (make peers installs it); the load test runs behind it")
    folder = Path(tempfile.mkdtemp(prefix="vestibule-load-haproxy-"))
    servers = "\n".join(f"    server node{i + 1} 127.0.0.1:{p} check" for i, p in enumerate(nodes))
    config = folder / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.replace("{port}", str(port)).replace("{servers}", servers))
    check = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    process = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port(port, 10, what="haproxy")
        proxy = Haproxy(port, process, config)
        deadline = time.monotonic() + 15
        while httpx.get(f"{proxy.url}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "no node behind HAProxy became ready"
            time.sleep(0.2)
        yield proxy
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Phase:
    """One stretch of the run, in the locust process's clock (``time.time()``)."""

    name: str
    started: float
    ended: float = 0.0
    notes: dict[str, object] = field(default_factory=dict)


def start_node(env: dict[str, str], port: int, *, workers: int = 1, threads: int = 4) -> Server:
    """``vestibule serve`` on ``port`` (a node restarted after a crash comes back where HAProxy expects it)."""
    log = tempfile.NamedTemporaryFile(prefix=f"vestibule-load-node-{port}-", suffix=".log", delete=False)  # noqa: SIM115
    with log:
        process = subprocess.Popen(
            [sys.executable, "-m", "vestibule.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers), "--threads", str(threads)],
            # Its own process group: a crash is ``kill -9`` of the master and its workers at once.
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return Server(process, port, log.name)


def crash(node: Server) -> None:
    """``kill -9`` of a whole node (gunicorn's master and workers): nothing finishes, nothing is closed cleanly."""
    os.killpg(node.process.pid, signal.SIGKILL)
    node.process.wait(5)
