"""Fixtures for the IdP certificate lifecycle: a local metadata server, IdP metadata documents, SAML connections.

The metadata server is a real HTTP server on 127.0.0.1 (``http.server`` in a
thread), reached through Vestibule's guarded outbound client; the test
settings allow-list 127.0.0.1 (``VESTIBULE_OUTBOUND_ALLOW``), as for the
other local peers. Each path answers what the test scripted: a body, a
status, extra headers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.saml_support import cert, key_pair
from vestibule.saml.idp import IdentityProvider, build_idp_metadata

ENTITY = "https://idp.lifecycle.test/metadata"
SSO = "https://idp.lifecycle.test/sso"


def metadata(*keys: str, entity_id: str = ENTITY, sso_url: str = SSO) -> bytes:
    """IdP metadata listing the signing certificates of the committed test keys ``keys`` (one or two)."""
    idp = IdentityProvider(entity_id, sso_url, key_pair(keys[0]))
    return build_idp_metadata(idp, next_certificate=cert(keys[1]) if len(keys) > 1 else None)


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


@pytest.fixture
def metadata_server() -> Iterator[MetadataServer]:
    server = MetadataServer()
    yield server
    server.close()


@pytest.fixture
def saml_connection(api: Any, make_account: Any) -> Callable[..., dict[str, Any]]:
    """``saml_connection("acme", keys=("idp",), **extra)``: a SAML connection of that account, created by the operator."""

    def make(
        slug: str = "acme", *, keys: tuple[str, ...] = ("idp",), domain: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        make_account(slug)
        body = {
            "protocol": "saml", "name": f"IdP of {slug}", "domains": [domain or f"{slug}.com"],
            "saml": {"idp_entity_id": ENTITY, "sso_url": SSO, "certificates": [cert(k) for k in keys]}, **extra,
        }  # fmt: skip
        created = api.post(f"/api/v1/accounts/{slug}/connections", body)
        assert created.status_code == 201, created.content[:800]
        return dict(created.json())

    return make


@pytest.fixture
def sso_admin_key(make_account: Any) -> Callable[[str], str]:
    """``sso_admin_key("acme")``: an API key of that account holding only sso-admin."""
    from vestibule.authority.models import ApiKey

    def make(slug: str) -> str:
        _, secret = ApiKey.issue(account=make_account(slug), name=f"sso-admin of {slug}", roles=["sso-admin"])
        return secret

    return make
