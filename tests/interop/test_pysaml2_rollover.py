"""IdP signing-certificate rollover through a real IdP written by others: pysaml2, via Vestibule's real views.

The sequence an sso-admin goes through when the identity provider rotates its
signing key (every step through ``/sso/start`` → pysaml2 → ACS → session):

1. pysaml2 signs with its OLD key; the connection trusts only it → sign-in works.
2. The admin adds the NEW certificate (both trusted, the ring of two).
3. pysaml2 switches to the NEW key → sign-in works; a response still signed
   with the OLD key (an IdP node not switched yet) works too.
4. The admin removes the OLD certificate → a response signed with the OLD key
   is refused (``saml.certificate_untrusted``): no session, the person's
   record unchanged; NEW-key sign-ins keep working.

The admin acts with an API key of the account holding only ``sso-admin``.
pysaml2 signs with the committed test keys tests/fixtures/saml/keys/pysaml2_idp
(old) and pysaml2_idp_next (new), by running xmlsec1.

The second test drives the same rollover from the IdP's side only: the
connection reads pysaml2's own metadata (``saml2.metadata.create_metadata_string``)
from a metadata server on 127.0.0.1, and nobody edits certificates by hand.
During the overlap the served document is pysaml2's with the next key's
KeyDescriptor added, which is how an IdP publishes its next key.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.test import Client
from lxml import etree

pytest.importorskip("saml2")

from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string

from tests import pysaml2_support as peer
from tests.connections_lifecycle.metadata_server import MetadataServer

pytestmark = [
    pytest.mark.interop,
    pytest.mark.django_db,
    pytest.mark.skipif(peer.XMLSEC1 is None, reason="pysaml2 needs the xmlsec1 program (apt-get install xmlsec1)"),
]

OLD, NEW = "pysaml2_idp", "pysaml2_idp_next"


def _sign_in(driver: Any, connection: dict[str, Any], email: str, name: str) -> tuple[Any, Client]:
    browser = Client()
    response = driver.login(
        browser, connection, subject=email, claims={"email": email, "name": name}, next="/api/v1/session"
    )
    return response, browser


def _signed_in_as(browser: Client) -> str | None:
    me = browser.get("/api/v1/session")
    return str(me.json()["email"]) if me.status_code == 200 else None


def test_rollover_through_pysaml2(api: Any, make_account: Any) -> None:
    from tests.e2e.drivers.saml_driver import SamlDriver
    from vestibule.accounts.models import Account, User
    from vestibule.authority.models import ApiKey

    make_account("acme")
    _, admin_key = ApiKey.issue(account=Account.objects.get(slug="acme"), name="sso admin", roles=["sso-admin"])
    admin = api.as_key(admin_key)
    old_idp, new_idp = SamlDriver(key=OLD), SamlDriver(key=NEW)
    payload = {
        "protocol": "saml", "name": "pysaml2", "domains": ["acme.com"],
        "auto_provision": True, "provisioned_users_can_login": True, **old_idp.connection_settings(),
    }  # fmt: skip
    created = api.post("/api/v1/accounts/acme/connections", payload)
    assert created.status_code == 201, created.content[:500]
    connection_id = created.json()["id"]
    connection = admin.patch(f"/api/v1/connections/{connection_id}", {"enabled": True}).json()
    old_cert, new_cert = connection["saml"]["certificates"][0], peer.certificate(NEW)

    # 1. The IdP signs with the old key, the only one trusted.
    response, browser = _sign_in(old_idp, connection, "alice@acme.com", "Alice Example")
    assert response.status_code == 302, response.content[:500]
    assert _signed_in_as(browser) == "alice@acme.com"
    # Before the admin acts, the new key is refused: the ring is what decides.
    refused, browser = _sign_in(new_idp, connection, "alice@acme.com", "Alice Example")
    assert refused.status_code in (400, 403) and b"saml.certificate_untrusted" in refused.content
    assert _signed_in_as(browser) is None

    # 2. The admin adds the new certificate beside the old one.
    both = admin.patch(f"/api/v1/connections/{connection_id}", {"saml": {"certificates": [old_cert, new_cert]}})
    assert both.status_code == 200, both.content[:500]
    listed = both.json()["idp_certificates"]
    assert len(listed) == 2 and {c["status"] for c in listed} == {"ok"}
    assert all(c["fingerprint"].count(":") == 31 and c["days_left"] > 30 for c in listed)

    # 3. pysaml2 switched to the new key: accepted; a node still on the old key: accepted too.
    response, browser = _sign_in(new_idp, connection, "bob@acme.com", "Bob Example")
    assert response.status_code == 302, response.content[:500]
    assert _signed_in_as(browser) == "bob@acme.com"
    response, browser = _sign_in(old_idp, connection, "alice@acme.com", "Alice Example")
    assert response.status_code == 302, response.content[:500]
    assert _signed_in_as(browser) == "alice@acme.com"

    # 4. The admin retires the old certificate.
    retired = admin.patch(f"/api/v1/connections/{connection_id}", {"saml": {"certificates": [new_cert]}})
    assert retired.status_code == 200, retired.content[:500]
    assert [c["fingerprint"] for c in retired.json()["idp_certificates"]] == [listed[1]["fingerprint"]]
    users_before = set(User.objects.values_list("email", "name"))

    # The attack: a response signed with the retired key, asserting a new name for alice and a new person.
    refused, browser = _sign_in(old_idp, connection, "alice@acme.com", "Mallory Renamed")
    assert refused.status_code in (400, 403), refused.status_code
    assert b"saml.certificate_untrusted" in refused.content
    assert _signed_in_as(browser) is None
    refused, browser = _sign_in(old_idp, connection, "mallory@acme.com", "Mallory")
    assert b"saml.certificate_untrusted" in refused.content and _signed_in_as(browser) is None
    assert set(User.objects.values_list("email", "name")) == users_before
    assert User.objects.get(email="alice@acme.com").name == "Alice Example"
    assert not User.objects.filter(email="mallory@acme.com").exists()

    # Positive control beside it: the new key still signs people in.
    response, browser = _sign_in(new_idp, connection, "alice@acme.com", "Alice Example")
    assert response.status_code == 302, response.content[:500]
    assert _signed_in_as(browser) == "alice@acme.com"


MD = "urn:oasis:names:tc:SAML:2.0:metadata"


def pysaml2_metadata(*keys: str) -> bytes:
    """pysaml2's own IdP metadata for ``keys[0]``; the KeyDescriptor of ``keys[1]`` added during an overlap."""

    def of(key: str) -> etree._Element:
        config = IdPConfig().load(peer.idp_config([], key))
        return etree.fromstring(create_metadata_string(None, config=config, sign=False))

    document = of(keys[0])
    descriptor = document.find(f"{{{MD}}}IDPSSODescriptor")
    assert descriptor is not None
    for key in keys[1:]:
        published = of(key).find(f"{{{MD}}}IDPSSODescriptor/{{{MD}}}KeyDescriptor")
        assert published is not None
        descriptor.find(f"{{{MD}}}KeyDescriptor").addnext(copy.deepcopy(published))  # type: ignore[union-attr]
    return bytes(etree.tostring(document))


def test_rollover_driven_by_pysaml2_metadata(api: Any, make_account: Any) -> None:
    from tests.e2e.drivers.saml_driver import SamlDriver
    from vestibule.accounts.models import Account, User
    from vestibule.authority.models import ApiKey

    server = MetadataServer()
    try:
        make_account("acme")
        _, admin_key = ApiKey.issue(account=Account.objects.get(slug="acme"), name="sso admin", roles=["sso-admin"])
        admin = api.as_key(admin_key)
        url = server.serve(pysaml2_metadata(OLD))
        payload = {
            "protocol": "saml", "name": "pysaml2", "domains": ["acme.com"], "idp_metadata_url": url,
            "auto_provision": True, "provisioned_users_can_login": True,
        }  # fmt: skip
        created = api.post("/api/v1/accounts/acme/connections", payload)
        assert created.status_code == 201, created.content[:500]
        connection_id = created.json()["id"]
        refresh = f"/api/v1/connections/{connection_id}/saml/idp-metadata/refresh"
        assert admin.post(refresh).json()["outcome"] == "adopted"
        connection = admin.patch(f"/api/v1/connections/{connection_id}", {"enabled": True}).json()
        assert connection["saml"]["idp_entity_id"] == peer.IDP_ENTITY and connection["saml"]["sso_url"] == peer.IDP_SSO
        old_idp, new_idp = SamlDriver(key=OLD), SamlDriver(key=NEW)
        response, browser = _sign_in(old_idp, connection, "alice@acme.com", "Alice Example")
        assert response.status_code == 302 and _signed_in_as(browser) == "alice@acme.com"

        # The IdP publishes its next key beside the current one: adopted, both trusted.
        server.serve(pysaml2_metadata(OLD, NEW))
        overlap = admin.post(refresh).json()
        assert overlap["outcome"] == "adopted" and len(overlap["change"]["added_certificates"]) == 1
        response, browser = _sign_in(new_idp, connection, "bob@acme.com", "Bob Example")
        assert response.status_code == 302 and _signed_in_as(browser) == "bob@acme.com"
        response, browser = _sign_in(old_idp, connection, "alice@acme.com", "Alice Example")
        assert response.status_code == 302 and _signed_in_as(browser) == "alice@acme.com"

        # The IdP retires the old key: a trusted key remains, so adopted; the old key is refused from now on.
        server.serve(pysaml2_metadata(NEW))
        retired = admin.post(refresh).json()
        assert retired["outcome"] == "adopted" and len(retired["change"]["removed_certificates"]) == 1
        refused, browser = _sign_in(old_idp, connection, "alice@acme.com", "Mallory Renamed")
        assert b"saml.certificate_untrusted" in refused.content and _signed_in_as(browser) is None
        assert User.objects.get(email="alice@acme.com").name == "Alice Example"
        response, browser = _sign_in(new_idp, connection, "alice@acme.com", "Alice Example")
        assert response.status_code == 302 and _signed_in_as(browser) == "alice@acme.com"

        log = admin.get(f"/api/v1/connections/{connection_id}/saml/metadata-changes").json()
        assert [c["status"] for c in log] == ["adopted", "adopted", "adopted"]
    finally:
        server.close()
