"""Load and fault test: two nodes behind HAProxy, a steady login mix, then a node, Redis and PostgreSQL fail.

The deployment is the test's own (see ``cluster``): PostgreSQL and Redis
started for it on free loopback ports, migrated once, seeded, two
``vestibule serve`` nodes (one worker with 4 threads each: the machine has two
cores, and two nodes of one worker already keep both busy) and HAProxy
(round robin, readiness probe on ``/readyz``, retry of a request whose node
died). Locust runs as a subprocess for the whole test; the test moves through
the phases and splits locust's event lines by phase afterwards:

1. ``steady``: every login succeeds.
2. ``node killed``: ``kill -9`` of node 2 mid-load. Sessions made before stay
   valid (through HAProxy and on node 1 directly); a login caught on the dead
   node fails cleanly (HAProxy's retry, or a 502/503/connection error) and
   succeeds when tried again; node 2 restarts and rejoins.
3. ``redis down``: ``/readyz`` turns red on each node; logins tried on a node
   directly either work or get a 503 (never a 500); a SAML response consumed
   before the outage, and one consumed during it (if a login went through),
   is refused when replayed, during the outage and after.
4. ``redis back``: ``/readyz`` green again, logins succeed.
5. ``postgres down``: 503s (never a 500), ``/readyz`` red.
6. ``postgres back``: ``/readyz`` green and logins succeed without restarting
   any node.

``/metrics`` is scraped on both nodes around the steady phase: the SSO and
password login counters must move. Figures go to ``artifacts/load/`` and the
per-phase table is printed.

Bounded by default (``VESTIBULE_LOAD_SECONDS=8`` per phase, 6 users: about two
minutes with start-up). The long run::

    VESTIBULE_LOAD_SECONDS=60 VESTIBULE_LOAD_USERS=12 .venv/bin/python -m pytest -m load tests/load -s
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.load import flows
from tests.load.cluster import METRICS_TOKEN, Phase, crash, start_node
from tests.load.report import phase_stats, read_events, table, write

pytestmark = pytest.mark.load

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "load"
PHASE_SECONDS = float(os.environ.get("VESTIBULE_LOAD_SECONDS", "8"))
USERS = int(os.environ.get("VESTIBULE_LOAD_USERS", "6"))
#: A fault must show on /readyz (and clear again) within this long.
READINESS_SECONDS = 20.0
#: Kinds a login attempt may fail with while a dependency is down: clean, retryable.
CLEAN = {"http_502", "http_503_node", "http_503_proxy", "http_504", "connection", "timeout"}


def _readyz(url: str) -> int:
    try:
        return requests.get(f"{url}/readyz", timeout=5).status_code
    except requests.RequestException:
        return 0


def wait_readyz(url: str, status: int, timeout: float = READINESS_SECONDS) -> float:
    """Seconds until ``url``'s /readyz answers ``status``; fails the test after ``timeout``."""
    began = time.monotonic()
    while (seen := _readyz(url)) != status:
        assert time.monotonic() - began < timeout, f"{url}/readyz answered {seen}, not {status}, for {timeout}s"
        time.sleep(0.2)
    return round(time.monotonic() - began, 2)


def scrape(url: str) -> dict[str, float]:
    """The login counters of one node's /metrics, summed over labels."""
    response = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text[:300]
    totals: dict[str, float] = {}
    for line in response.text.splitlines():
        match = re.match(r"(vestibule_(?:sso|password)_logins_total)(?:\{[^}]*\})? ([0-9.e+]+)$", line)
        if match:
            totals[match.group(1)] = totals.get(match.group(1), 0.0) + float(match.group(2))
    return totals


def probe(url: str, seed: dict[str, Any], flow: str) -> str:
    """One login straight at a node (not through HAProxy): ``"ok"`` or the failure's kind."""
    with flows.Browser(url) as browser:
        browser.headers["X-Forwarded-For"] = f"10.99.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
        try:
            flows.FLOWS[flow](browser, seed, flows.email_for(flow, seed, secrets.randbelow(1000)))
        except flows.LoginFailed as failed:
            return failed.kind
    return "ok"


def replay(url: str, seed: dict[str, Any], response: dict[str, str]) -> int:
    """POST an already consumed SAMLResponse again, from a fresh browser; the status."""
    with flows.Browser(url) as browser:
        return browser.post(flows.acs_path(seed), data=response, allow_redirects=False, timeout=15).status_code


def session_valid(url: str, cookies: dict[str, str], *, patience: float = 20.0) -> list[int]:
    """The statuses of /api/v1/session with ``cookies`` until one is not "busy, try again" (502/503/504).

    Right after a crash the survivor carries the whole load and HAProxy may queue past its
    limit: a 503 then says nothing about the session, a 401 would say it was lost.
    """
    seen: list[int] = []
    deadline = time.monotonic() + patience
    while True:
        try:
            seen.append(requests.get(f"{url}/api/v1/session", cookies=cookies, timeout=10).status_code)
        except requests.RequestException:
            seen.append(0)
        if seen[-1] not in (0, 502, 503, 504) or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


class Locust:
    def __init__(self, host: str, seed: dict[str, Any], folder: Path) -> None:
        self.folder = folder
        self.events = folder / "events.jsonl"
        (folder / "seed.json").write_text(json.dumps(seed))
        env = {**os.environ, "LOAD_SEED": str(folder / "seed.json"), "LOAD_EVENTS": str(self.events),
               "PYTHONPATH": str(ROOT)}  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "tests/load/locustfile.py"), "--headless",
             "-u", str(USERS), "-r", str(USERS), "-t", f"{int(PHASE_SECONDS * 8 + 120)}s", "--host", host,
             "--csv", str(folder / "locust"), "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"],
            env=env, cwd=ROOT, stdout=open(folder / "locust.log", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )  # fmt: skip

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # locust stops its users and writes the CSV
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log(self) -> str:
        return (self.folder / "locust.log").read_text(errors="replace")[-3000:]


def test_logins_hold_through_a_node_crash_and_redis_and_postgres_outages(deployment: dict[str, Any]) -> None:
    seed, nodes, proxy = deployment["seed"], deployment["nodes"], deployment["proxy"]
    redis, postgres = deployment["redis"], deployment["postgres"]
    node_urls = [node.url for node in nodes]
    phases: list[Phase] = []
    direct: dict[str, list[str]] = {}

    def begin(name: str) -> Phase:
        if phases:
            phases[-1].ended = time.time()
        phases.append(Phase(name, time.time()))
        return phases[-1]

    def hold(phase: Phase) -> None:
        time.sleep(max(0.0, phase.started + PHASE_SECONDS - time.time()))

    folder = Path(tempfile.mkdtemp(prefix="vestibule-load-"))
    locust = Locust(proxy.url, seed, folder)
    try:
        time.sleep(2)  # the users spawn and make their first requests
        assert locust.process.poll() is None, locust.log()

        # --- steady ---
        steady = begin("steady")
        before = [scrape(url) for url in node_urls]
        with flows.Browser(proxy.url) as browser:  # sessions that must survive the crash
            kept = []
            # One of each kind (the counters on /metrics move whatever locust's mix did meanwhile).
            for number, flow in enumerate(("saml", "password", "oidc", "saml")):
                browser.cookies.clear()
                browser.headers["X-Forwarded-For"] = f"10.98.0.{number + 1}"
                flows.FLOWS[flow](browser, seed, flows.email_for(flow, seed, number))
                kept.append({"vestibule_session": browser.cookies["vestibule_session"]})
        with flows.Browser(proxy.url) as browser:
            consumed_before = flows.idp_initiated(browser, seed, f"replayed@{seed['sso_domain']}").saml_response
        assert consumed_before is not None
        hold(steady)
        after = [scrape(url) for url in node_urls]
        for name in ("vestibule_sso_logins_total", "vestibule_password_logins_total"):
            moved = [a.get(name, 0) - b.get(name, 0) for a, b in zip(after, before, strict=True)]
            assert sum(moved) > 0, (name, moved)  # per node, as each node counts its own
            steady.notes[name] = moved
        assert all(m > 0 for m in steady.notes["vestibule_sso_logins_total"]), steady.notes  # round robin

        # --- node 2 killed (SIGKILL: no graceful anything) ---
        killed = begin("node killed")
        crash(nodes[1])
        busy = 0
        for cookies in kept:
            for url in (proxy.url, node_urls[0]):
                statuses = session_valid(url, cookies)
                assert statuses[-1] == 200 and 401 not in statuses, (url, statuses)
                busy += len(statuses) - 1
        killed.notes["sessions_kept"] = len(kept)
        killed.notes["session_checks_answered_busy_first"] = busy
        nodes[1] = start_node(deployment["env"], nodes[1].port)
        nodes[1].wait_ready()
        killed.notes["node_back_after_s"] = round(time.time() - killed.started, 1)
        hold(killed)

        # --- Redis stopped ---
        outage = begin("redis down")
        redis.stop()
        outage.notes["readyz_red_after_s"] = [wait_readyz(url, 503) for url in node_urls]
        direct["redis down"] = [probe(url, seed, flow) for url in node_urls for flow in ("saml", "password", "oidc")]
        with flows.Browser(node_urls[0]) as browser:
            try:
                consumed_during = flows.idp_initiated(browser, seed, f"during@{seed['sso_domain']}").saml_response
            except flows.LoginFailed as failed:
                assert failed.kind == "http_503_node", failed
                consumed_during = None
        replays = {"before": consumed_before, "during": consumed_during}
        for label, response in replays.items():
            if response is not None:
                for url in node_urls:
                    status = replay(url, seed, response)
                    assert status in (400, 503), (label, status)  # refused or unavailable, never a session
        outage.notes["login_during_outage"] = consumed_during is not None
        hold(outage)

        back = begin("redis back")
        redis.start()
        back.notes["readyz_green_after_s"] = [wait_readyz(url, 200) for url in node_urls]
        back.notes["proxy_serving_after_s"] = wait_readyz(proxy.url, 200)  # HAProxy saw two good probes
        for label, response in replays.items():
            if response is not None:
                assert replay(proxy.url, seed, response) == 400, label
        hold(back)

        # --- PostgreSQL stopped, then started: the nodes reconnect by themselves ---
        down = begin("postgres down")
        postgres.stop()
        down.notes["readyz_red_after_s"] = [wait_readyz(url, 503) for url in node_urls]
        direct["postgres down"] = [probe(url, seed, flow) for url in node_urls for flow in ("saml", "password")]
        hold(down)

        up = begin("postgres back")
        postgres.start()
        up.notes["readyz_green_after_s"] = [wait_readyz(url, 200) for url in node_urls]
        up.notes["proxy_serving_after_s"] = wait_readyz(proxy.url, 200)
        assert [probe(url, seed, "saml") for url in node_urls] == ["ok", "ok"]
        hold(up)
        up.ended = time.time()
    finally:
        locust.stop()

    events = read_events(locust.events)
    rows = [phase_stats(events, phase) for phase in phases]
    report = table(rows)
    print(f"\nLoad and fault phases ({USERS} users, {PHASE_SECONDS:.0f} s per phase, "
          f"start-up {deployment['startup_s']} s {deployment['timings']}):\n{report}\nDirect probes: {direct}\n")  # fmt: skip
    write(rows, ARTIFACTS, {"users": USERS, "phase_seconds": PHASE_SECONDS, "direct_probes": direct,
                            "startup_s": deployment["startup_s"], "startup": deployment["timings"]})  # fmt: skip

    statuses = [e["status"] for e in events if e["k"] == "req"]
    assert statuses, locust.log()
    assert 500 not in statuses, report  # never a 500, in any phase
    for kinds in direct.values():
        assert set(kinds) <= {"ok", "http_503_node"}, direct
    by_name = {row.phase: row for row in rows}
    assert by_name["steady"].attempt_errors == {} and by_name["steady"].logins_failed == {}, report
    assert {flow for row in rows for flow in row.by_flow} == {"saml", "oidc", "password"}, report
    for row in rows:
        # HAProxy re-sends a POST whose node died before answering. When that node had already
        # consumed the SAML response (the sign-in it answers completed, the assertion ID recorded),
        # the other node refuses the second copy: a clean error page, and never a second session.
        allowed = CLEAN | ({"http_400_consumed"} if row.phase == "node killed" else set())
        assert set(row.attempt_errors) <= allowed, (row.phase, row.attempt_errors)
    # A login caught by the crash was tried again and went through.
    assert by_name["node killed"].logins_failed == {}, report
    for name in ("redis back", "postgres back"):
        assert by_name[name].logins_ok > 0, report
