"""AuthnRequest over HTTP-Redirect / HTTP-POST (bindings §3.4, §3.5)."""

from __future__ import annotations

import base64
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import etree

from tests.saml_support import IDP, NOW, SP, cert, settings
from vestibule.saml import build_authn_request, build_authn_request_form, errors, parse_authn_request
from vestibule.saml.bindings import decode_redirect, verify_redirect_signature
from vestibule.saml.xml import SAML, SAMLP


def test_redirect_request_shape() -> None:
    url, request_id = build_authn_request(SP, settings(), NOW, "opaque-ref")
    parts = urlsplit(url)
    assert url.startswith(IDP.sso_url + "?")
    query = parse_qs(parts.query)
    assert query["RelayState"] == ["opaque-ref"] and "Signature" not in query
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    request = etree.fromstring(xml)
    assert request.tag == f"{{{SAMLP}}}AuthnRequest" and request.get("ID") == request_id
    assert request.get("AssertionConsumerServiceURL") == SP.acs_url
    assert request.get("Destination") == IDP.sso_url and request.get("IssueInstant") == "2025-06-01T12:00:00Z"
    assert request.findtext(f"{{{SAML}}}Issuer") == SP.entity_id
    assert len(request_id) > 32 and request_id[0] == "_"


def test_request_ids_are_unique() -> None:
    assert build_authn_request(SP, settings(), NOW, None)[1] != build_authn_request(SP, settings(), NOW, None)[1]


def test_signed_redirect_request_verifies_over_exact_octets() -> None:
    url, _ = build_authn_request(SP, settings(sign_authn_requests=True), NOW, "r s/ü")
    query = urlsplit(url).query
    message = decode_redirect(query)
    verify_redirect_signature(message, cert("sp_signing"))
    assert message.relay_state == "r s/ü"
    info = parse_authn_request(IDP, query, sp_certificate=cert("sp_signing"))
    assert info.signed and info.acs_url == SP.acs_url
    tampered = query.replace("RelayState=r", "RelayState=x")
    with pytest.raises(errors.SignatureError):
        verify_redirect_signature(decode_redirect(tampered), cert("sp_signing"))


def test_sso_url_with_query_string() -> None:
    s = settings(sso_url="https://accounts.google.com/o/saml2/idp?idpid=C03v8stb1")
    url, _ = build_authn_request(SP, s, NOW, None)
    assert url.startswith("https://accounts.google.com/o/saml2/idp?idpid=C03v8stb1&SAMLRequest=")


def test_relay_state_limit() -> None:
    build_authn_request(SP, settings(), NOW, "x" * 80)
    with pytest.raises(errors.RequestError):
        build_authn_request(SP, settings(), NOW, "x" * 81)
    with pytest.raises(errors.RequestError):
        build_authn_request(SP, settings(), NOW, "é" * 41)  # 82 bytes in UTF-8.


def test_post_binding_form() -> None:
    s = settings(sso_binding="post", sign_authn_requests=True)
    with pytest.raises(errors.RequestError):
        build_authn_request(SP, s, NOW, None)
    form, request_id = build_authn_request_form(SP, s, NOW, "ref")
    fields = dict(form.fields)
    request = etree.fromstring(base64.b64decode(fields["SAMLRequest"]))
    assert request.get("ID") == request_id
    assert request.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is not None
    assert 'action="https://idp.example.test/saml/sso"' in form.html()


def test_decode_redirect_refuses_deflate_bomb() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = base64.b64encode(bomb.compress(b"<a>" + b" " * 10_000_000) + bomb.flush()).decode()
    with pytest.raises(errors.TooLargeError):
        decode_redirect("SAMLRequest=" + payload.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D"))


def test_signing_without_sp_key_is_a_configuration_error() -> None:
    from vestibule.saml import ServiceProvider

    bare = ServiceProvider(SP.entity_id, SP.acs_url, SP.metadata_url)
    with pytest.raises(errors.RequestError) as exc:
        build_authn_request(bare, settings(sign_authn_requests=True), NOW, None)
    assert exc.value.fix_in == "vestibule"
