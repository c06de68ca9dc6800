"""Locust users signing in through HAProxy: a steady mix of SAML, OIDC and password logins.

Run by ``tests/load/test_load_and_faults.py`` as a subprocess (locust patches
the standard library with gevent, which the pytest process must not get):

    LOAD_SEED=seed.json LOAD_EVENTS=events.jsonl \\
        locust -f tests/load/locustfile.py --headless -u 6 -r 6 --host http://127.0.0.1:<haproxy>

Every login is one task; a login that fails is tried again from the start, in
a fresh browser, every half second for ten seconds (what a person does
after an error page), so "fails cleanly and succeeds on retry" is measured, not
assumed. Each attempt and each HTTP request is written as one JSON line to
``LOAD_EVENTS``; the test splits them into its phases by time.

Each simulated person comes from their own address (``X-Forwarded-For``, which
the nodes trust two proxies deep: HAProxy appends the address it saw), so the
per-address rate limits apply per person, as on the Internet.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

from locust import HttpUser, between, events, task

from tests.load.flows import FLOWS, LoginFailed, email_for

#: A person tries again every half second for ten seconds (a node's crash is noticed by HAProxy in
#: about three); during a longer outage the login counts as failed and the next one starts.
MAX_ATTEMPTS = 20
RETRY_PAUSE = 0.5

with open(os.environ["LOAD_SEED"]) as _seed_file:
    SEED: dict[str, Any] = json.load(_seed_file)
_events = open(os.environ["LOAD_EVENTS"], "a", buffering=1)  # noqa: SIM115 - one line per event, for the whole run


def _write(record: dict[str, Any]) -> None:
    _events.write(json.dumps(record, separators=(",", ":")) + "\n")


@events.request.add_listener
def _request(request_type: str, name: str, response_time: float, response: Any, exception: Any, **_: Any) -> None:
    if request_type == "LOGIN":
        return
    status = getattr(response, "status_code", 0) if response is not None else 0
    _write({"k": "req", "t": time.time(), "name": name, "ms": round(response_time, 2), "status": status,
            "error": type(exception).__name__ if exception and not status else ""})  # fmt: skip


class Person(HttpUser):
    wait_time = between(0.0, 0.1)

    def _login(self, flow: str) -> None:
        email = email_for(flow, SEED, random.randrange(1_000_000))
        started = time.time()
        kinds: list[str] = []
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self.client.cookies.clear()  # a fresh browser each attempt
            self.client.headers["X-Forwarded-For"] = (
                f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
            )
            began = time.time()
            try:
                FLOWS[flow](self.client, SEED, email)
            except LoginFailed as failed:
                kinds.append(failed.kind)
                _write({"k": "attempt", "flow": flow, "t0": began, "t": time.time(), "ok": False, "kind": failed.kind})
                time.sleep(RETRY_PAUSE)
                continue
            ended = time.time()
            _write({"k": "attempt", "flow": flow, "t0": began, "t": ended, "ok": True, "kind": ""})
            _write({"k": "login", "flow": flow, "t0": started, "t": ended, "ok": True, "attempts": attempt,
                    "kinds": kinds, "ms": round((ended - began) * 1000, 2)})  # fmt: skip
            events.request.fire(request_type="LOGIN", name=flow, response_time=(ended - began) * 1000,
                                response_length=0, exception=None, context={})  # fmt: skip
            return
        _write({"k": "login", "flow": flow, "t0": started, "t": time.time(), "ok": False, "attempts": MAX_ATTEMPTS,
                "kinds": kinds, "ms": 0})  # fmt: skip
        events.request.fire(request_type="LOGIN", name=flow, response_time=(time.time() - started) * 1000,
                            response_length=0, exception=LoginFailed(kinds[-1]), context={})  # fmt: skip

    @task(3)
    def saml(self) -> None:
        self._login("saml")

    @task(1)
    def oidc(self) -> None:
        self._login("oidc")

    @task(1)
    def password(self) -> None:
        self._login("password")
