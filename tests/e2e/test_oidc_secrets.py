"""OIDC client secrets and private keys never leave Vestibule (issue 4: "a test greps for them").

Canary credentials go in through the API; then every API answer (create,
get, list, patch, validation errors, audit events, login traces), every
page, every log record (all loggers at DEBUG), every SQL statement run and
the audit/trace/connection tables are searched for them. A wrong secret
(``invalid_client`` at the provider) is the error path.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

import pytest
from django.db import connection as db
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.e2e.drivers.oidc_driver import make_oidc_driver
from tests.e2e.oidc_support import claims_of, oidc_connection
from vestibule.audit.models import AuditEvent, LoginTrace
from vestibule.connections.keys import read_secrets
from vestibule.connections.models import Connection, ExternalIdentity, PendingLogin

__all__ = ["oidc_connection"]

pytestmark = pytest.mark.django_db


def canaries_of_key(driver: Any) -> list[str]:
    """Fragments that would reveal the private key: every PEM body line and the JWK private members."""
    pem = driver.client_key.as_pem(private=True).decode()
    lines = [line for line in pem.splitlines() if len(line) >= 16 and not line.startswith("-----")]
    jwk = driver.client_key.as_dict(private=True)
    return [*lines, *(jwk[m] for m in ("d", "p", "q", "dp", "dq", "qi"))]


def test_oidc_credentials_never_leak(request, api, oidc_connection, caplog):
    caplog.set_level(logging.DEBUG)  # the root logger: every library and Vestibule logger
    canary = "canary-S3CRET-" + secrets.token_hex(8)
    wrong = "canary-WR0NG-" + secrets.token_hex(8)
    basic = make_oidc_driver(request)
    basic.client_secret = canary
    post = make_oidc_driver(request, auth_method="client_secret_post")
    post.client_secret = canary + "-post"
    jwt = make_oidc_driver(request, auth_method="private_key_jwt")
    key_canaries = canaries_of_key(jwt)
    forbidden = [canary, wrong, *key_canaries]
    seen: list[str] = []

    def keep(response: Any) -> Any:
        seen.append(response.content.decode())
        return response

    with CaptureQueriesContext(db) as queries:
        connections = []
        for i, driver in enumerate((basic, post, jwt)):
            c = oidc_connection(driver, domains=(f"d{i}.acme.com",))
            connections.append(c)
            seen.append(json.dumps(c))
        # Validation errors with a secret in the payload must not echo it.
        bad = [
            {"issuer": "ftp://op.example", "client_id": "x", "client_secret": canary},
            {"issuer": basic.issuer, "client_id": "x", "client_secret": canary, "surprise": canary},
            {
                "issuer": basic.issuer,
                "client_id": "x",
                "token_endpoint_auth_method": "private_key_jwt",
                "private_key": f"-----BEGIN PRIVATE KEY-----\n{canary}\n-----END PRIVATE KEY-----",
                "private_key_id": "k",
            },
        ]
        for i, oidc in enumerate(bad):
            payload = {"protocol": "oidc", "name": "bad", "domains": [f"bad{i}.acme.com"], "oidc": oidc}
            keep(api.post("/accounts/acme/connections", payload, expect=422))
        for c, driver in zip(connections, (basic, post, jwt), strict=True):
            keep(api.patch(f"/connections/{c['id']}", {"name": "renamed", "oidc": {"use_userinfo": True}}))
            keep(api._call("get", f"/connections/{c['id']}", expect=200))
            browser = Client()
            r = keep(
                driver.login(browser, c, subject=f"u-{driver.client_id}", claims=claims_of(f"user@{c['domains'][0]}"))
            )
            assert r.status_code == 302, r.content.decode()
            keep(browser.get("/api/v1/session"))
        # Error path: a rotated-away secret is refused by the provider with invalid_client.
        keep(api.patch(f"/connections/{connections[0]['id']}", {"oidc": {"client_secret": wrong}}))
        refused = keep(basic.login(Client(), connections[0], subject="u-wrong", claims=claims_of("user@d0.acme.com")))
        assert refused.status_code == 400 and b"oidc.token_endpoint_error" in refused.content
        keep(api._call("get", "/accounts/acme/connections", expect=200))
        keep(api._call("get", "/accounts/acme/audit-events?limit=1000", expect=200))
        traces = api.get("/accounts/acme/login-traces?limit=500")
        assert any(any(s.get("received") == "invalid_client" for s in t["steps"]) for t in traces)
        for trace in traces:
            keep(api._call("get", f"/accounts/acme/login-traces/{trace['id']}", expect=200))

    stored = {
        "audit": list(AuditEvent.objects.values()),
        "traces": list(LoginTrace.objects.values()),
        "pending": list(PendingLogin.objects.values()),
        "identities": list(ExternalIdentity.objects.values()),
        "connections": list(Connection.objects.values()),
    }
    with db.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {Connection._meta.db_table}")  # the raw columns, as a DBA sees them
        raw = repr(cursor.fetchall())
    haystacks = {
        "api and pages": "\n".join(seen),
        "logs": caplog.text + repr([(r.msg, r.args) for r in caplog.records]),
        "sql": "\n".join(q["sql"] for q in queries.captured_queries),
        "tables": json.dumps(stored, default=str),
        "raw connection rows": raw,
    }
    for where, text in haystacks.items():
        for secret in forbidden:
            assert secret not in text, f"a credential leaked into {where}"
    # Positive controls: the credentials are stored (sealed) and the canaries are what was sent.
    assert read_secrets(Connection.objects.get(pk=connections[0]["id"]))["client_secret"] == wrong
    assert (
        read_secrets(Connection.objects.get(pk=connections[2]["id"]))["private_key"]
        == jwt.client_key.as_pem(private=True).decode()
    )
    assert "invalid_client" in haystacks["api and pages"] + haystacks["tables"]
