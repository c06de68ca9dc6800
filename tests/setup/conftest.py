"""Setup-link fixtures: an account with a disabled SAML connection, its sso-admin, an IT admin's browser, an IdP."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.conftest import csrf_token_from
from tests.console.conftest import person  # noqa: F401  (the console's signed-in browsers)
from tests.saml_support import key_pair
from vestibule.connections import rules
from vestibule.connections.models import Connection
from vestibule.saml import IdentityProvider, build_idp_metadata, build_response, parse_authn_request
from vestibule.saml.idp import response_form
from vestibule.signin import adapters

IDP = IdentityProvider("https://idp.example.test/metadata", "https://idp.example.test/sso", key_pair("idp"))
# The same IdP's name with a key the connection does not trust: a forged response.
OTHER_IDP = IdentityProvider(IDP.entity_id, IDP.sso_url, key_pair("attacker"))


def idp_metadata(idp: IdentityProvider = IDP) -> str:
    return build_idp_metadata(idp).decode()


@pytest.fixture
def connection(make_account: Callable[..., Any]) -> Callable[..., Connection]:
    """``connection("acme", "Okta", "acme.com")``: a disabled SAML connection without IdP settings."""

    def make(
        slug: str = "acme", name: str = "Okta", domain: str = "acme.com", protocol: str = "saml", **changes: Any
    ) -> Connection:
        account = make_account(slug)
        conn = rules.create_connection(
            account, {"protocol": protocol, "name": name, "domains": [domain], **changes}, may_claim=True
        )
        return conn

    return make


class ItAdmin:
    """The IT admin's browser: no user, CSRF enforced as in a real browser."""

    def __init__(self) -> None:
        self.client = Client(enforce_csrf_checks=True)
        self.link_id = ""

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, *, page: str | None = None) -> Any:
        token = csrf_token_from(self.client.get(page or path).content.decode())
        return self.client.post(path, {**(data or {}), "csrfmiddlewaretoken": token})

    def open(self, url: str) -> Any:
        path = urlsplit(url).path
        r = self.post(path)
        if r.status_code == 302:
            self.link_id = r["Location"].split("/")[3]
        return r

    def step(self, name: str) -> str:
        return f"/setup/s/{self.link_id}/{name}"

    def test_login(
        self,
        connection: Connection,
        *,
        idp: IdentityProvider = IDP,
        attributes: dict[str, list[str]] | None = None,
        name_id: str = "ann@acme.com",
        audience: str | None = None,
    ) -> Any:
        """Start a test sign-in from the wizard, answer it as ``idp`` would, post it to the ACS; returns the ACS response."""
        r = self.post(self.step("test"))
        assert r.status_code == 302, r.content[:500]
        request = parse_authn_request(idp, urlsplit(r["Location"]).query)
        urls = adapters.sp_urls(connection)
        xml = build_response(
            idp,
            sp_entity_id=audience or urls["sp_entity_id"],
            acs_url=urls["acs_url"],
            name_id=name_id,
            attributes=attributes if attributes is not None else {"email": [name_id], "name": ["Ann Admin"]},
            now=dt.datetime.now(dt.UTC),
            in_response_to=request.request_id,
        )
        form = response_form(xml, urls["acs_url"], request.relay_state)
        return self.client.post(urlsplit(urls["acs_url"]).path, dict(form.fields))


@pytest.fixture
def it_admin() -> Callable[[], ItAdmin]:
    return ItAdmin


def link_url(html: str) -> str:
    match = re.search(r'id="setup-link-url">([^<]+)<', html)
    assert match, "no setup link on the page"
    return match.group(1)
