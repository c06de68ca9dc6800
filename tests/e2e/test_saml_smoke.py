"""Smoke: a complete SP-initiated SAML login through the Django views."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.saml_support import KEYS, answer_authn_request
from vestibule.authority.models import ApiKey
from vestibule.saml import IdentityProvider, KeyPair

pytestmark = pytest.mark.django_db

IDP = IdentityProvider(
    "https://idp.example.test/metadata",
    "https://idp.example.test/sso",
    KeyPair((KEYS / "idp.key").read_text(), (KEYS / "idp.crt").read_text()),
)


def test_sp_initiated_login_creates_session():
    _, key = ApiKey.issue()
    api = Client(headers={"Authorization": f"Bearer {key}"})
    assert (
        api.post("/api/v1/accounts", {"slug": "acme", "name": "Acme"}, content_type="application/json").status_code
        == 201
    )
    r = api.post(
        "/api/v1/accounts/acme/connections",
        {
            "protocol": "saml",
            "name": "Okta",
            "domains": ["acme.com"],
            "auto_provision": True,
            "provisioned_users_can_login": True,
            "saml": {
                "idp_entity_id": IDP.entity_id,
                "sso_url": IDP.sso_url,
                "certificates": [IDP.signing.certificate_pem],
            },
        },
        content_type="application/json",
    )
    assert r.status_code == 201, r.json()
    conn = r.json()
    r = api.patch(f"/api/v1/connections/{conn['id']}", {"enabled": True}, content_type="application/json")
    assert r.status_code == 200, r.json()

    browser = Client()
    r = browser.post("/login", {"email": "alice@acme.com"})
    assert r.status_code == 302 and r["Location"].startswith(f"/sso/start/{conn['id']}")
    r = browser.get(r["Location"])
    assert r.status_code == 302, r.content
    form = answer_authn_request(IDP, r["Location"], conn, name_id="alice@acme.com")
    r = browser.post(urlsplit(conn["acs_url"]).path, form)
    assert r.status_code == 302, r.content.decode()
    me = browser.get("/api/v1/session").json()
    assert me["email"] == "alice@acme.com" and me["login_method"] == "sso"
    assert me["accounts"][0]["roles"] == ["analyst"]
    # The same response again: its RelayState is spent, so it is refused.
    r = Client().post(urlsplit(conn["acs_url"]).path, form)
    assert r.status_code == 400 and b"sso.assertion_invalid" in r.content
