"""``vestibule serve`` on SIGTERM finishes the requests it has started, refuses new ones and exits 0.

A rolling deploy or a scale-down sends SIGTERM: gunicorn stops accepting
connections at once and waits up to ``graceful_timeout`` (10 s) for the
requests in progress. A connection that arrives meanwhile is not served; it is
reset when the process ends, which HAProxy retries on another node
(``retry-on conn-failure empty-response``) and its health check, which times
out, takes the node out of rotation.

The request in progress here is a real, legitimate slow one: a browser on a
slow link posting the sign-in form, its body arriving in two parts with the
SIGTERM in between. No test-only endpoint is needed.
"""

from __future__ import annotations

import re
import signal
import socket
import threading
import time
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

pytestmark = pytest.mark.load


def _late_request(url: str) -> object:
    """A request sent after SIGTERM: its response, or the exception it ended with."""
    try:
        return requests.get(f"{url}/login", timeout=20)
    except requests.RequestException as exc:
        return exc


def test_sigterm_lets_the_request_in_flight_finish_and_exits_zero(deployment: dict[str, Any]) -> None:
    # The spare node of the load test's deployment (migrated, ready), outside HAProxy's rotation.
    server = deployment["spare"]
    try:
        page = requests.get(f"{server.url}/login", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token is not None
        body = urlencode({"email": "someone@example.org", "next": "", "csrfmiddlewaretoken": token.group(1)}).encode()
        head = (
            f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nCookie: csrftoken={page.cookies['csrftoken']}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        with slow:
            slow.sendall(head + body[:20])
            time.sleep(1.0)  # the worker has the request and waits for the rest of the body

            server.process.send_signal(signal.SIGTERM)
            late: list[object] = []
            arriving = threading.Thread(target=lambda: late.append(_late_request(server.url)))
            time.sleep(0.5)  # the worker has seen the signal
            arriving.start()
            time.sleep(1.0)
            assert server.process.poll() is None  # still serving the request in flight
            assert late == []  # and not serving the newcomer

            slow.sendall(body[20:])
            answer = b""
            while chunk := slow.recv(65536):
                answer += chunk
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 200 OK", answer[:500]
        assert b'name="password"' in rest  # the email step really ran: the password step came back
        assert server.process.wait(15) == 0, server.log()
        arriving.join(20)
        # The newcomer was never served: its connection waited in the closed socket's queue and was
        # reset when the process ended, which HAProxy reads as "retry on another node" (empty-response).
        assert late and isinstance(late[0], requests.ConnectionError), late
    finally:
        server.stop()
