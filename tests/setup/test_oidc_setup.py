"""The wizard for an OpenID Connect connection: issuer and client checked by discovery, then a live test sign-in
at panva's oidc-provider whose plan is shown and never applied."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.drivers.oidc_driver import make_oidc_driver
from tests.setup.conftest import link_url
from vestibule.accounts.models import User
from vestibule.connections.keys import read_secrets
from vestibule.connections.models import Connection, ExternalIdentity
from vestibule.signin import adapters

pytestmark = pytest.mark.django_db


def test_oidc_client_then_test_sign_in(
    request: pytest.FixtureRequest, person: Any, connection: Any, it_admin: Any, settings: Any
) -> None:
    driver = make_oidc_driver(request)
    placeholder = {**driver.connection_settings()["oidc"], "client_id": "to-be-set", "client_secret": "to-be-set"}
    conn: Connection = connection(
        protocol="oidc", name="Keycloak", oidc=placeholder, auto_provision=True, provisioned_users_can_login=True
    )
    admin = person("sam@acme.com", roles=["sso-admin"])
    page = admin.post("/console/a/acme/setup-links/", {"connection": str(conn.pk), "provider": "keycloak", "hours": 24})
    it = it_admin()
    it.open(link_url(page.content.decode()))
    values = it.get(it.step("values")).content.decode()
    assert adapters.redirect_uri(conn) in values and "Valid redirect URIs" in values

    # An issuer the outbound guard refuses, and one that serves no discovery: tied to the issuer field, nothing saved.
    settings.VESTIBULE_OUTBOUND_ALLOW = []
    refused = it.post(it.step("idp"), {"issuer": driver.issuer, "client_id": driver.client_id, "client_secret": "x"})
    assert refused.status_code == 400 and b"field-error" in refused.content
    settings.VESTIBULE_OUTBOUND_ALLOW = ["127.0.0.1", "::1", "localhost"]
    assert Connection.objects.get(pk=conn.pk).oidc_settings["client_id"] == "to-be-set"

    saved = it.post(
        it.step("idp"), {"issuer": driver.issuer, "client_id": driver.client_id, "client_secret": driver.client_secret}
    )
    assert saved.status_code == 302, saved.content.decode()[:2000]
    conn.refresh_from_db()
    assert conn.oidc_settings["client_id"] == driver.client_id and conn.enabled is False
    assert read_secrets(conn)["client_secret"] == driver.client_secret

    start = it.post(it.step("test"))
    assert start.status_code == 302
    callback = driver.authorize(
        start, {"redirect_uri": adapters.redirect_uri(conn)}, subject="ann-1",
        claims={"email": "ann@acme.com", "email_verified": True, "name": "Ann Admin", "role_mapping": ["Engineers"]},
    )  # fmt: skip
    done = it.client.get(callback)
    assert done.status_code == 302 and done["Location"] == it.step("test/result"), done.content[:1000]
    result = it.get(done["Location"]).content.decode()
    assert 'data-outcome="create"' in result and "ann@acme.com" in result and "ann-1" in result
    assert not User.objects.filter(email="ann@acme.com").exists() and not ExternalIdentity.objects.exists()
    assert it.client.get("/api/v1/session").status_code in (401, 403)
