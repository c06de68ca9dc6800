"""The built-in test identity provider and the demo seed: a full SAML login without Okta.

Drives what a new user does after ``make demo``: /login → name@acme.test →
the test IdP's form → signed Response auto-posted to the ACS → signed in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
import stat
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from lxml import etree

from vestibule.accounts.models import Account, User
from vestibule.connections.models import Connection
from vestibule.demo import DEMO_CONNECTION_NAME
from vestibule.saml import SamlSettings, ServiceProvider, build_authn_request
from vestibule.signin import adapters
from vestibule.testidp import idp

pytestmark = pytest.mark.django_db

MD = "urn:oasis:names:tc:SAML:2.0:metadata"


@pytest.fixture
def test_idp(settings: Any, tmp_path: Any) -> Any:
    """The test IdP switched on, with its own fresh data directory."""
    settings.VESTIBULE_TEST_IDP = True
    settings.CONFIG = dataclasses.replace(settings.CONFIG, data_dir=tmp_path)
    return tmp_path


@pytest.fixture
def demo(test_idp: Any) -> list[str]:
    from vestibule.demo import seed_demo

    return list(seed_demo())


def demo_connection() -> Connection:
    return Connection.objects.get(account__slug="acme", name=DEMO_CONNECTION_NAME)


def path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def hidden_fields(page: str) -> dict[str, str]:
    return {
        html.unescape(n): html.unescape(v)
        for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }


def form_action(page: str, form_id: str) -> str:
    match = re.search(rf'<form method="post" action="([^"]+)" id="{form_id}"', page)
    assert match, page
    return html.unescape(match.group(1))


def post_to_acs(browser: Client, page: Any) -> Any:
    """What the auto-submitting page does in a browser."""
    assert page.status_code == 200, page.content[:800]
    text = page.content.decode()
    assert '<button type="submit">' in text  # The no-JavaScript fallback.
    return browser.post(path(form_action(text, "saml-post")), hidden_fields(text))


def sign_in_via_test_idp(browser: Client, email: str, **extra: str) -> Any:
    response = browser.post("/login", {"email": email})
    assert response.status_code == 302 and response["Location"].startswith("/sso/start/"), response
    response = browser.get(response["Location"])
    assert response.status_code == 302 and response["Location"].startswith("http://localhost/test-idp/sso?"), response
    form_page = browser.get(path(response["Location"]))
    assert form_page.status_code == 200, form_page.content[:800]
    text = form_page.content.decode()
    assert f'value="{email}"' in text  # Pre-filled from login_hint.
    assert '<label for="id_email">' in text and '<label for="id_name">' in text
    fields = {**hidden_fields(text), "email": email, "name": "Bob Builder", **extra}
    return post_to_acs(browser, browser.post("/test-idp/sso", fields))


def test_off_by_default_every_url_is_404(db: None) -> None:
    for url in ("/test-idp/metadata", "/test-idp/sso?SAMLRequest=x", "/test-idp/login"):
        assert Client().get(url).status_code == 404, url
    assert Client().post("/test-idp/sso", {}).status_code == 404


def test_metadata_and_key_generated_once_with_private_permissions(test_idp: Any) -> None:
    response = Client().get("/test-idp/metadata")
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    assert root.get("entityID") == "http://localhost/test-idp/metadata"
    sso = root.find(f"{{{MD}}}IDPSSODescriptor/{{{MD}}}SingleSignOnService")
    assert sso is not None and sso.get("Location") == "http://localhost/test-idp/sso"
    key_file = test_idp / "test-idp" / "signing.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    first = key_file.read_bytes()
    idp._cache.clear()  # A restart: the key is read back, not regenerated.
    assert Client().get("/test-idp/metadata").content == response.content
    assert key_file.read_bytes() == first


def test_demo_seed_prints_how_to_sign_in_and_is_idempotent(demo: list[str]) -> None:
    from vestibule.demo import seed_demo

    assert any("Sign in via SAML: open http://localhost/login and type any name@acme.test" in line for line in demo)
    list(seed_demo())
    connection = demo_connection()
    assert Connection.objects.filter(account__slug="acme", name=DEMO_CONNECTION_NAME).count() == 1
    assert connection.enabled and connection.auto_provision and connection.provisioned_users_can_login
    assert connection.domain_list == ["acme.test"]
    assert "admin@acme.test" in connection.ignored_emails


def test_new_user_signs_in_through_the_test_idp(demo: list[str]) -> None:
    browser = Client()
    response = sign_in_via_test_idp(browser, "bob@acme.test", roles="analyst")
    assert response.status_code == 302, response.content.decode()[:2000]
    me = browser.get("/api/v1/session").json()
    assert me["email"] == "bob@acme.test" and me["name"] == "Bob Builder" and me["login_method"] == "sso"
    assert [a["slug"] for a in me["accounts"]] == ["acme"]


def test_demo_admin_stays_a_password_break_glass_admin(demo: list[str]) -> None:
    response = Client().post("/login", {"email": "admin@acme.test"})
    assert not (response.status_code == 302 and response["Location"].startswith("/sso/"))
    assert User.objects.get(email_key="admin@acme.test").login_method == User.LoginMethod.PASSWORD


def test_idp_initiated_page_signs_in(demo: list[str]) -> None:
    browser = Client()
    page = browser.get("/test-idp/login")
    assert page.status_code == 200 and DEMO_CONNECTION_NAME in page.content.decode()
    connection = demo_connection()
    issued = browser.post(
        "/test-idp/login", {"connection": str(connection.pk), "email": "carol@acme.test", "name": "Carol"}
    )
    assert post_to_acs(browser, issued).status_code == 302
    assert browser.get("/api/v1/session").json()["email"] == "carol@acme.test"


def test_encrypted_and_signed_request_settings_are_honoured(demo: list[str], api: Any) -> None:
    connection = demo_connection()
    saml = {
        **connection.saml_settings,
        "want_assertions_encrypted": True,
        "want_response_signed": True,
        "sign_authn_requests": True,
    }
    api.patch(f"/connections/{connection.pk}", {"saml": saml})
    browser = Client()
    assert sign_in_via_test_idp(browser, "dave@acme.test").status_code == 302
    assert browser.get("/api/v1/session").json()["email"] == "dave@acme.test"


def _request_query(sp: ServiceProvider, connection: Connection) -> str:
    url, _ = build_authn_request(sp, SamlSettings.from_dict(connection.saml_settings), dt.datetime.now(dt.UTC), "rs")
    return urlsplit(url).query


def test_refuses_to_post_to_an_acs_url_that_is_not_the_connections(demo: list[str]) -> None:
    """No open relay: a request naming a foreign AssertionConsumerServiceURL gets no signed response."""
    connection = demo_connection()
    real = adapters.service_provider(connection)
    forged = ServiceProvider(
        entity_id=real.entity_id, acs_url="https://evil.example/acs", metadata_url=real.metadata_url
    )
    response = Client().get("/test-idp/sso?" + _request_query(forged, connection))
    assert response.status_code == 403 and b"AssertionConsumerServiceURL" in response.content


def test_refuses_service_providers_outside_this_deployment(demo: list[str]) -> None:
    connection = demo_connection()
    outsider = ServiceProvider(
        entity_id="https://other.example/sp",
        acs_url="https://other.example/acs",
        metadata_url="https://other.example/sp",
    )
    assert Client().get("/test-idp/sso?" + _request_query(outsider, connection)).status_code == 403


def test_refuses_connections_that_do_not_trust_it(demo: list[str], api: Any) -> None:
    account = Account.objects.get(slug="acme")
    other = api.post(
        f"/accounts/{account.slug}/connections", {"protocol": "saml", "name": "Okta", "domains": ["acme.test"]}
    ).json()
    page = Client().post("/test-idp/login", {"connection": other["id"], "email": "x@acme.test", "name": "X"})
    assert page.status_code == 403 and b"does not trust" in page.content


def test_altered_state_is_refused(demo: list[str]) -> None:
    response = Client().post("/test-idp/sso", {"state": "forged", "email": "bob@acme.test", "name": "Bob"})
    assert response.status_code == 400 and b"expired or was altered" in response.content
