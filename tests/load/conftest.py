"""The load tests' deployment, shared by the package's tests (started once, about a minute)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.load.cluster import METRICS_TOKEN, haproxy, own_postgres, own_redis, start_node
from tests.multiprocess.servers import free_port, run_cli, server_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="package")
def deployment() -> Iterator[dict[str, Any]]:
    """Its own PostgreSQL and Redis, migrated and seeded, two nodes and HAProxy in front.

    A third node, outside HAProxy's rotation, is the graceful-shutdown test's to stop; it starts
    with the others, which costs less than starting it later.
    """
    with own_postgres() as postgres, own_redis() as redis:
        proxy_port, ports = free_port(), [free_port(), free_port()]
        env = server_env(postgres.url, redis=redis.url, base_url=f"http://127.0.0.1:{proxy_port}")
        env.update(
            {
                "VESTIBULE_TEST_IDP": "true",
                # Locust sends each person's address; HAProxy appends the one it saw.
                "VESTIBULE_TRUSTED_PROXIES": "2",
                "VESTIBULE_METRICS_TOKEN": METRICS_TOKEN,
                "PYTHONPATH": str(ROOT),
            }
        )
        began = time.monotonic()
        run_cli(["migrate"], env)
        timings = {"migrate_s": round(time.monotonic() - began, 1)}
        nodes = [start_node(env, port) for port in ports]  # they start while the seed runs
        spare = start_node(env, free_port())
        try:
            seeded = subprocess.run([sys.executable, "-m", "tests.load.seed"], env=env, capture_output=True,
                                    text=True, cwd=ROOT, timeout=120)  # fmt: skip
            assert seeded.returncode == 0, seeded.stderr[-3000:]
            seed = json.loads(seeded.stdout)
            timings["seed_s"] = round(time.monotonic() - began, 1)
            for node in [*nodes, spare]:
                node.wait_ready()
            timings["nodes_s"] = round(time.monotonic() - began, 1)
            with haproxy(proxy_port, ports) as proxy:
                yield {"env": env, "seed": seed, "nodes": nodes, "spare": spare, "proxy": proxy, "postgres": postgres,
                       "redis": redis, "startup_s": round(time.monotonic() - began, 1), "timings": timings}  # fmt: skip
        finally:
            for node in [*nodes, spare]:
                node.stop()
