"""SCIM tokens in the console: created and shown once, listed without their secret, revoked; as api/directory.py."""

from __future__ import annotations

import pytest

from vestibule.audit.models import AuditEvent
from vestibule.connections.models import Connection
from vestibule.directory.models import ScimToken

pytestmark = pytest.mark.django_db

PAGE = "/console/a/acme/scim-tokens/"


def test_create_a_scim_token_shown_once_then_revoke_it(person, make_account) -> None:
    ann = person("ann@acme.test", roles=["administrator"])
    okta = Connection.objects.create(account=make_account("acme"), protocol="saml", name="Okta")
    created = ann.post(PAGE, {"name": "Okta SCIM", "connection": str(okta.pk)})
    assert created.status_code == 200 and "no-store" in created["Cache-Control"]
    token = ScimToken.objects.get(account__slug="acme")
    assert token.name == "Okta SCIM" and token.connection == okta
    html = created.content.decode()
    secret = html.split('id="scim-token-secret" class="break">')[1].split("<")[0]
    assert secret.startswith(f"vsc_{token.prefix}_") and "/scim/v2" in html
    listing = ann.get(PAGE).content.decode()
    assert token.prefix in listing and secret not in listing
    assert AuditEvent.objects.filter(code="scim_token.created", detail__scim_token=token.prefix).exists()

    assert ann.post(f"{PAGE}{token.prefix}/revoke", page=PAGE).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(code="scim_token.revoked").exists()
    assert ann.post(f"{PAGE}{token.prefix}/revoke", page=PAGE).status_code == 404


def test_another_accounts_connection_is_refused_on_the_field(person, make_account) -> None:
    ann = person("ann@acme.test", roles=["administrator"])
    theirs = Connection.objects.create(account=make_account("beta"), protocol="saml", name="Beta IdP")
    response = ann.post(PAGE, {"name": "x", "connection": str(theirs.pk)})
    assert response.status_code == 400 and 'aria-invalid="true"' in response.content.decode()
    assert "Beta IdP" not in response.content.decode()
    assert not ScimToken.objects.exists()


def test_scim_tokens_need_the_administrator_and_stay_in_their_account(person, make_account) -> None:
    sam = person("sam@acme.test", roles=["sso-admin"])
    bob = person("bob@beta.test", account="beta", roles=["administrator"])
    token, _ = ScimToken.issue(make_account("acme"), name="acme directory")
    assert sam.get(PAGE).status_code == 403
    assert sam.post(f"{PAGE}{token.prefix}/revoke", page="/console/a/acme/").status_code == 403
    assert bob.get(PAGE).status_code == 404
    assert bob.post(f"{PAGE}{token.prefix}/revoke", page="/console/a/beta/").status_code == 404
    assert bob.post(f"/console/a/beta/scim-tokens/{token.prefix}/revoke", page="/console/a/beta/").status_code == 404
    assert token.prefix not in bob.get("/console/a/beta/scim-tokens/").content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None
    assert not AuditEvent.objects.filter(code__startswith="scim_token.").exists()
