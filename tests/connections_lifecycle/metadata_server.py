"""A real metadata server on 127.0.0.1 (``http.server`` in a thread), for IdP metadata refresh tests.

Reached through Vestibule's guarded outbound client; the test settings
allow-list 127.0.0.1 (``VESTIBULE_OUTBOUND_ALLOW``), as for the other local
peers. Each path answers what the test scripted (body, status, extra
headers); every requested path is recorded, so a test can show that a
redirect target was never fetched.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class MetadataServer:
    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                answer = owner.answers.get(self.path, Answer(b"not found", 404))
                self.send_response(answer.status)
                headers = {"Content-Type": "application/samlmetadata+xml", **answer.headers}
                headers.setdefault("Content-Length", str(len(answer.body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/metadata") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, body: bytes, path: str = "/metadata", status: int = 200, **headers: str) -> str:
        self.answers[path] = Answer(body, status, dict(headers))
        return self.url(path)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
