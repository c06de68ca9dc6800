"""A real HTTP receiver on 127.0.0.1 for back-channel logout and webhook tests, and a signed-in browser.

The receiver records every POST (path, headers, body) and answers as the test
scripted it per path: a status code, ``HANG`` (no answer until the test ends:
the sender must time out) or ``redirect(url)``. Unscripted requests get 200.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.test import Client

from tests.conftest import PASSWORD, password_login
from tests.provider.support import Pkce, authorize_url, code_from, exchange

HANG = "hang"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class Redirect:
    location: str


def redirect(location: str) -> Redirect:
    return Redirect(location)


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._script: dict[str, list[Any]] = defaultdict(list)
        self._lock = threading.Lock()
        self._release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                answer = owner._record(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if answer == HANG:
                    owner._release.wait(30)
                    return
                if isinstance(answer, Redirect):
                    self.send_response(302)
                    self.send_header("Location", answer.location)
                else:
                    self.send_response(int(answer))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _record(self, request: Received) -> Any:
        with self._lock:
            self.received.append(request)
            script = self._script[request.path]
            return script.pop(0) if script else 200

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def answer(self, path: str, *answers: Any) -> None:
        """Answer the next requests at ``path`` with these, in order (then 200)."""
        with self._lock:
            self._script[path].extend(answers)

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]


def signed_in(
    email: str, *apps: tuple[Any, str | None], scope: str = "openid email profile"
) -> tuple[Client, dict[str, dict[str, Any]]]:
    """A browser signed in to Vestibule with a password, then to each application: (browser, tokens by client_id)."""
    browser = Client()
    done = password_login(browser, email, PASSWORD)
    assert done.status_code == 302, done.content[:500]
    got = {}
    for app, secret in apps:
        pkce = Pkce.make()
        code = code_from(browser.get(authorize_url(app.client_id, pkce, scope=scope)))
        response = exchange(browser, app, secret, code, pkce.verifier)
        assert response.status_code == 200, response.content
        got[app.client_id] = response.json()
    return browser, got
