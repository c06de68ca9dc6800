"""SAML metadata through the HTTP surfaces: our SP metadata out, IdP metadata in (vendor fixtures)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from lxml import etree

from tests.saml_support import FIXTURES, KEYS
from vestibule.saml.keys import normalize_certificate
from vestibule.saml.settings import EMAIL_ADDRESS

pytestmark = pytest.mark.django_db

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
METADATA = FIXTURES / "metadata"
TENANT = "6f1c2a0e-3b7d-4c55-9a1e-0d4c2b9e7f10"


def pem(name: str) -> str:
    return normalize_certificate((KEYS / f"{name}.crt").read_text())


@pytest.fixture
def connection(api: Any, make_account: Callable[..., Any]) -> dict[str, Any]:
    """A new SAML connection with no IdP settings yet (as an admin starts one)."""
    make_account("acme")
    return api.post("/accounts/acme/connections", {"protocol": "saml", "name": "IdP", "domains": ["acme.com"]}).json()


def put_metadata(api: Any, connection: dict[str, Any], body: bytes, *, query: str = "", expect: int = 200) -> Any:
    response = api.client.put(
        f"/api/v1/connections/{connection['id']}/saml/idp-metadata{query}",
        body,
        content_type="application/samlmetadata+xml",
    )
    assert response.status_code == expect, (response.status_code, response.content[:1000])
    return response.json()


# SP metadata ---------------------------------------------------------------


def test_sp_metadata_is_valid_xml_with_acs_and_both_key_uses(connection: dict[str, Any]) -> None:
    response = Client().get(connection["metadata_url"].removeprefix("http://localhost"))
    assert response.status_code == 200 and response["Content-Type"] == "application/samlmetadata+xml"
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{MD}}}EntityDescriptor" and root.get("entityID") == connection["sp_entity_id"]
    descriptor = root.find(f"{{{MD}}}SPSSODescriptor")
    assert descriptor is not None
    acs = descriptor.findall(f"{{{MD}}}AssertionConsumerService")
    assert [(a.get("Location"), a.get("Binding")) for a in acs] == [
        (connection["acs_url"], "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
    ]
    uses = sorted(k.get("use") for k in descriptor.findall(f"{{{MD}}}KeyDescriptor"))
    assert uses == ["encryption", "signing"]
    for key in descriptor.findall(f"{{{MD}}}KeyDescriptor"):
        text = key.findtext(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")
        normalize_certificate(text or "")  # A real certificate, and only the public part.
    assert b"PRIVATE" not in response.content


def test_sp_metadata_of_unknown_connection_is_404() -> None:
    assert Client().get("/sso/saml/00000000-0000-0000-0000-000000000000/metadata").status_code == 404
    assert Client().get("/sso/saml/not-a-uuid/metadata").status_code == 404


# IdP metadata import -----------------------------------------------------------


VENDORS = {
    "okta": (
        "okta.xml", "", "http://www.okta.com/exk9vestib0le4417239",
        "https://dev-4417239.okta.com/app/dev-4417239_vestibule_1/exk9vestib0le4417239/sso/saml", ["okta"],
    ),
    "entra": (
        "entra.xml", "", f"https://sts.windows.net/{TENANT}/", f"https://login.microsoftonline.com/{TENANT}/saml2",
        ["entra", "entra_next"],
    ),
    "google": (
        "google.xml", "", "https://accounts.google.com/o/saml2?idpid=C03v8stb1",
        "https://accounts.google.com/o/saml2/idp?idpid=C03v8stb1", ["google"],
    ),
    "adfs-multi-key": (
        "adfs.xml", "", "http://adfs.contoso.example/adfs/services/trust", "https://adfs.contoso.example/adfs/ls/",
        ["adfs_signing", "adfs_signing_next"],
    ),
    "entities-descriptor": (
        "entities_descriptor.xml", "?entity_id=https://idp-b.federation.test/saml2/idp",
        "https://idp-b.federation.test/saml2/idp", "https://idp-b.federation.test/saml2/sso", ["idp_next"],
    ),
}  # fmt: skip


@pytest.mark.parametrize(("fixture", "query", "entity_id", "sso_url", "certs"), VENDORS.values(), ids=VENDORS.keys())
def test_import_vendor_metadata_returns_and_stores_settings(
    api: Any, connection: dict[str, Any], fixture: str, query: str, entity_id: str, sso_url: str, certs: list[str]
) -> None:
    settings = put_metadata(api, connection, (METADATA / fixture).read_bytes(), query=query)
    assert settings["idp_entity_id"] == entity_id
    assert settings["sso_url"] == sso_url and settings["sso_binding"] == "redirect"
    assert settings["certificates"] == [pem(c) for c in certs]
    assert settings["name_id_format"] == EMAIL_ADDRESS
    stored = api.get(f"/connections/{connection['id']}")["saml"]
    assert stored == settings
    # Complete now: the connection can be enabled and starts sign-in at the imported SSO URL.
    api.patch(f"/connections/{connection['id']}", {"enabled": True})
    start = Client().get(connection["sign_in_url"].removeprefix("http://localhost"))
    assert start.status_code == 302 and start["Location"].startswith(sso_url)


def test_import_keeps_the_connections_own_policy(api: Any, connection: dict[str, Any]) -> None:
    put_metadata(api, connection, (METADATA / "okta.xml").read_bytes())
    api.patch(
        f"/connections/{connection['id']}",
        {"saml": {**api.get(f"/connections/{connection['id']}")["saml"], "want_assertions_encrypted": True}},
    )
    settings = put_metadata(api, connection, (METADATA / "google.xml").read_bytes())
    assert settings["want_assertions_encrypted"] is True and settings["idp_entity_id"].startswith(
        "https://accounts.google.com/"
    )


def test_import_as_json_body(api: Any, connection: dict[str, Any]) -> None:
    body = {
        "metadata": (METADATA / "entities_descriptor.xml").read_text(),
        "entity_id": "https://idp-a.federation.test/idp/shibboleth",
    }
    settings = api.put(f"/connections/{connection['id']}/saml/idp-metadata", body).json()
    assert (
        settings["idp_entity_id"] == "https://idp-a.federation.test/idp/shibboleth"
        and settings["sso_binding"] == "post"
    )


def test_aggregate_without_entity_id_asks_to_choose(api: Any, connection: dict[str, Any]) -> None:
    error = put_metadata(api, connection, (METADATA / "entities_descriptor.xml").read_bytes(), expect=422)
    assert error["field"] == "metadata" and "choose one by entityID" in error["detail"]
    error = put_metadata(
        api,
        connection,
        (METADATA / "entities_descriptor.xml").read_bytes(),
        query="?entity_id=https://nope.test/",
        expect=422,
    )
    assert "https://idp-a.federation.test/idp/shibboleth" in error["detail"] or "entityID" in error["detail"]


def test_metadata_without_signing_certificate_is_422_naming_the_problem(api: Any, connection: dict[str, Any]) -> None:
    xml = (METADATA / "okta.xml").read_text()
    stripped = re.sub(r"<md:KeyDescriptor.*?</md:KeyDescriptor>", "", xml, flags=re.S)
    assert stripped != xml
    error = put_metadata(api, connection, stripped.encode(), expect=422)
    assert error["field"] == "metadata" and "no usable signing certificate" in error["detail"]
    assert api.get(f"/connections/{connection['id']}")["saml"]["idp_entity_id"] == ""  # Nothing stored.


@pytest.mark.parametrize(
    "body",
    [
        b"<md:EntityDescriptor xmlns:md='urn:oasis:names:tc:SAML:2.0:metadata'><unclosed>",
        b"not xml at all",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        b'<!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><x>&b;</x>',
        b"<html><body>login page</body></html>",
    ],
    ids=["truncated", "not-xml", "xxe", "entity-expansion", "foreign-document"],
)
def test_hostile_or_broken_metadata_is_422_not_500(api: Any, connection: dict[str, Any], body: bytes) -> None:
    error = put_metadata(api, connection, body, expect=422)
    assert error["field"] == "metadata" and error["detail"].startswith("metadata:")
    assert "root:" not in error["detail"]  # The XXE target was never read.


def test_empty_body_is_422(api: Any, connection: dict[str, Any]) -> None:
    assert put_metadata(api, connection, b"   ", expect=422)["field"] == "metadata"


def test_post_binding_start_renders_a_form_with_the_request(api: Any, connection: dict[str, Any]) -> None:
    """An IdP that only takes HTTP-POST gets an auto-submitting form carrying SAMLRequest and RelayState."""
    put_metadata(
        api,
        connection,
        (METADATA / "entities_descriptor.xml").read_bytes(),
        query="?entity_id=https://idp-a.federation.test/idp/shibboleth",
    )
    api.patch(f"/connections/{connection['id']}", {"enabled": True})
    page = Client().get(connection["sign_in_url"].removeprefix("http://localhost"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'action="https://idp-a.federation.test/idp/profile/SAML2/POST/SSO"' in html
    assert re.search(r'name="SAMLRequest" value="[A-Za-z0-9+/=]{100,}"', html)
    assert re.search(r'name="RelayState" value="[^"]{20,}"', html)
