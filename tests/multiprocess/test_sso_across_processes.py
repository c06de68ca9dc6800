"""SSO state holds across real server processes (DESIGN "Runtime").

Two ``vestibule serve`` processes share one fresh PostgreSQL database (and
Redis db 15 when VESTIBULE_TEST_REDIS_URL is set), as behind a load balancer.

This test is SAML-specific on purpose: an IdP-initiated SAML response is the
one message a browser can legitimately post to *any* process without a
server-side request to match, so the assertion-ID replay store is the only
thing standing between a captured response and a second session. (OIDC codes
are single-use at the provider and bound to a consumed state row.)
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import httpx
import pytest

from tests.multiprocess.servers import (
    flush_redis,
    fresh_postgres_database,
    redis_url,
    run_cli,
    running_servers,
    server_env,
)
from tests.saml_support import KEYS
from vestibule.saml import IdentityProvider, KeyPair, build_response
from vestibule.saml.idp import response_form

pytestmark = pytest.mark.multiprocess

IDP = IdentityProvider(
    "https://idp.example.test/metadata",
    "https://idp.example.test/sso",
    KeyPair((KEYS / "idp.key").read_text(), (KEYS / "idp.crt").read_text()),
)


def _idp_initiated_form(connection: dict, email: str) -> dict[str, str]:
    xml = build_response(
        IDP, sp_entity_id=connection["sp_entity_id"], acs_url=connection["acs_url"], name_id=email,
        attributes={"email": [email], "name": ["Multi Process"]}, now=dt.datetime.now(dt.UTC),
    )  # fmt: skip
    return dict(response_form(xml, connection["acs_url"], None).fields)


@pytest.fixture(scope="module")
def deployment():
    with fresh_postgres_database() as database_url:
        redis = redis_url()
        flush_redis(redis)
        env = server_env(database_url, redis=redis)
        run_cli(["migrate"], env)
        key = run_cli(["api-key", "create", "--operator", "--name", "multiprocess"], env).strip()
        try:
            with running_servers(env, count=2) as servers:
                yield {"servers": servers, "key": key}
        finally:
            flush_redis(redis)


@pytest.fixture(scope="module")
def connection(deployment):
    one = deployment["servers"][0]
    api = httpx.Client(
        base_url=f"{one.url}/api/v1", headers={"Authorization": f"Bearer {deployment['key']}"}, timeout=30
    )
    assert api.post("/accounts", json={"slug": "acme", "name": "Acme"}).status_code == 201
    created = api.post(
        "/accounts/acme/connections",
        json={
            "protocol": "saml", "name": "IdP", "domains": ["acme.com"],
            "auto_provision": True, "provisioned_users_can_login": True,
            "saml": {"idp_entity_id": IDP.entity_id, "sso_url": IDP.sso_url, "certificates": [IDP.signing.certificate_pem], "allow_idp_initiated": True},
        },
    )  # fmt: skip
    assert created.status_code == 201, created.text
    enabled = api.patch(f"/connections/{created.json()['id']}", json={"enabled": True})
    assert enabled.status_code == 200, enabled.text
    return {**enabled.json(), "api": api}


def _post_acs(server, connection, form) -> httpx.Response:
    return httpx.post(server.url + urlsplit(connection["acs_url"]).path, data=form, timeout=30, follow_redirects=False)


def test_replayed_response_is_refused_by_the_other_process(deployment, connection):
    """The same IdP-initiated response posted to process 1, then to process 2: the second is refused."""
    one, two = deployment["servers"]
    form = _idp_initiated_form(connection, "alice@acme.com")
    first = _post_acs(one, connection, form)
    assert first.status_code == 302, (first.status_code, first.text[:1500])
    replayed = _post_acs(two, connection, form)
    assert replayed.status_code == 400, (replayed.status_code, replayed.text[:1500])
    assert "sso.assertion_invalid" in replayed.text and "saml.replayed" in replayed.text
    assert "vestibule_session" not in replayed.cookies
    events = connection["api"].get("/accounts/acme/audit-events", params={"code": "sso.assertion_invalid"}).json()
    assert events and events[0]["detail"]["detail_code"] == "saml.replayed"
    # Positive control: process 2 accepts a fresh response.
    fresh = _post_acs(two, connection, _idp_initiated_form(connection, "bob@acme.com"))
    assert fresh.status_code == 302, fresh.text[:1500]


def test_session_from_one_process_is_valid_on_the_other(deployment, connection):
    one, two = deployment["servers"]
    signed_in = _post_acs(one, connection, _idp_initiated_form(connection, "carol@acme.com"))
    assert signed_in.status_code == 302, signed_in.text[:1500]
    cookie = signed_in.cookies["vestibule_session"]
    me = httpx.get(f"{two.url}/api/v1/session", cookies={"vestibule_session": cookie}, timeout=30)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == "carol@acme.com" and me.json()["session_method"] == "sso"
    # Negative control: without the cookie, process 2 knows nobody.
    assert httpx.get(f"{two.url}/api/v1/session", timeout=30).status_code == 401
