"""Hostile form input to the browser endpoints never causes a 5xx.

The API has its own schema-driven fuzzer (tests/api/test_api_fuzz.py); this
one throws arbitrary text at the sign-in forms, the SAML ACS and the OIDC
callback of real, enabled connections.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.saml_support import cert

pytestmark = pytest.mark.django_db

HOSTILE_TEXT = st.one_of(
    st.text(max_size=3000),
    st.sampled_from(
        ["PD94bWw=", "%00", "\x00", "A" * 100_000, "<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", "=" * 3, "🙂" * 50]
    ),
)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
def connections(db: None) -> dict[str, Any]:
    from vestibule.accounts.models import Account
    from vestibule.connections.rules import create_connection

    account = Account.objects.create(slug="acme", name="Acme")
    saml = create_connection(account, {
        "protocol": "saml", "name": "SAML", "domains": ["acme.com"],
        "saml": {"idp_entity_id": "https://idp.example.test", "sso_url": "https://idp.example.test/sso", "certificates": [cert("idp")]},
    }, may_claim=True)  # fmt: skip
    oidc = create_connection(account, {
        "protocol": "oidc", "name": "OIDC", "domains": ["acme.com"],
        "oidc": {"issuer": "http://127.0.0.1:9/unreachable", "client_id": "app", "client_secret": "s"},
    }, may_claim=True)  # fmt: skip
    for connection in (saml, oidc):
        connection.enabled = True
        connection.save()
    return {"saml": saml, "oidc": oidc}


@FUZZ
@given(st.dictionaries(st.sampled_from(["SAMLResponse", "RelayState", "extra"]), HOSTILE_TEXT, max_size=3))
def test_acs_never_fails_with_5xx(connections: dict[str, Any], form: dict[str, str]) -> None:
    response = Client(raise_request_exception=False).post(f"/sso/saml/{connections['saml'].pk}/acs", form)
    assert response.status_code < 500, response.content[:300]


@FUZZ
@given(
    st.dictionaries(st.sampled_from(["code", "state", "error", "error_description", "iss"]), HOSTILE_TEXT, max_size=5)
)
def test_oidc_callback_never_fails_with_5xx(connections: dict[str, Any], query: dict[str, str]) -> None:
    response = Client(raise_request_exception=False).get(f"/sso/oidc/{connections['oidc'].pk}/callback", query)
    assert response.status_code < 500, response.content[:300]


@FUZZ
@given(
    st.sampled_from(["/login", "/password/reset", "/recovery-access", "/login/totp"]),
    st.dictionaries(
        st.sampled_from(["email", "password", "next", "code", "csrfmiddlewaretoken"]), HOSTILE_TEXT, max_size=5
    ),
)
def test_sign_in_forms_never_fail_with_5xx(connections: dict[str, Any], path: str, form: dict[str, str]) -> None:
    response = Client(raise_request_exception=False).post(path, form)
    assert response.status_code < 500, response.content[:300]


@FUZZ
@given(HOSTILE_TEXT, HOSTILE_TEXT)
def test_sso_start_never_fails_with_5xx(connections: dict[str, Any], next_url: str, hint: str) -> None:
    client = Client(raise_request_exception=False)
    for connection in connections.values():
        response = client.get(f"/sso/start/{connection.pk}", {"next": next_url, "login_hint": hint})
        assert response.status_code < 500, response.content[:300]
