"""Shared builders for the SAML tests: fixed clock, committed keys, genuine signed responses.

Malicious inputs are derived from *genuinely signed* responses made by
:mod:`vestibule.saml.idp` with the committed test keys (tests/fixtures/saml/keys).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.signer import XMLSigner

from vestibule.saml import (
    IdentityProvider,
    InMemoryReplayCache,
    KeyPair,
    SamlSettings,
    ServiceProvider,
    build_response,
    parse_authn_request,
)
from vestibule.saml.assertion import VerifiedAssertion
from vestibule.saml.dsig import sign_element
from vestibule.saml.idp import assemble_response, build_assertion, response_form
from vestibule.saml.response import validate_response
from vestibule.saml.xml import DS, SAML, SAMLP

FIXTURES = Path(__file__).parent / "fixtures" / "saml"
KEYS = FIXTURES / "keys"
NOW = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=dt.UTC)
REQUEST_ID = "_req_0123456789abcdef0123456789abcdef"
NS = {"samlp": SAMLP, "saml": SAML, "ds": DS}


def key_pair(name: str) -> KeyPair:
    return KeyPair((KEYS / f"{name}.key").read_text(), (KEYS / f"{name}.crt").read_text())


def cert(name: str) -> str:
    return (KEYS / f"{name}.crt").read_text()


IDP = IdentityProvider("https://idp.example.test/saml/metadata", "https://idp.example.test/saml/sso", key_pair("idp"))
SP = ServiceProvider(
    entity_id="https://sso.vestibule.test/saml/acme",
    acs_url="https://sso.vestibule.test/sso/saml/acme/acs",
    metadata_url="https://sso.vestibule.test/sso/saml/acme/metadata",
    signing=key_pair("sp_signing"),
    encryption=key_pair("sp_encryption"),
)
ATTRIBUTES = {
    "email": ["alice@example.com"],
    "name": ["Alice Example"],
    "groups": ["engineering", "admins"],
}


def settings(**overrides: object) -> SamlSettings:
    base = {
        "idp_entity_id": IDP.entity_id,
        "sso_url": IDP.sso_url,
        "certificates": [cert("idp")],
    }
    base.update(overrides)
    return SamlSettings.from_dict(base)


def assertion(**kw: object) -> etree._Element:
    params: dict[str, object] = dict(
        sp_entity_id=SP.entity_id, acs_url=SP.acs_url, name_id="alice@example.com",
        attributes=ATTRIBUTES, now=NOW, in_response_to=REQUEST_ID,
    )  # fmt: skip
    params.update(kw)
    return build_assertion(IDP, **params)  # type: ignore[arg-type]


def signed_response(
    *,
    mutate_assertion: Callable[[etree._Element], None] | None = None,
    mutate_response: Callable[[etree._Element], None] | None = None,
    sign_assertion: bool = True,
    sign_response: bool = False,
    signer: KeyPair | None = None,
    in_response_to: str | None = REQUEST_ID,
    **assertion_kw: object,
) -> etree._Element:
    """A genuinely signed Response; ``mutate_*`` run *before* signing (a misconfigured IdP)."""
    signer = signer or IDP.signing
    a = assertion(in_response_to=in_response_to, **assertion_kw)
    if mutate_assertion:
        mutate_assertion(a)
    if sign_assertion:
        a = sign_element(a, signer)
    r = assemble_response(IDP, acs_url=SP.acs_url, now=NOW, assertion=a, in_response_to=in_response_to)
    if mutate_response:
        mutate_response(r)
    if sign_response:
        r = sign_element(r, signer)
    return r


def b64(value: etree._Element | bytes) -> str:
    data = value if isinstance(value, bytes) else etree.tostring(value)
    return base64.b64encode(data).decode("ascii")


def validate(
    value: etree._Element | bytes | str,
    *,
    settings_: SamlSettings | None = None,
    expected_request_id: str | None = REQUEST_ID,
    now: dt.datetime = NOW,
    replay: InMemoryReplayCache | None = None,
    sp: ServiceProvider = SP,
) -> VerifiedAssertion:
    encoded = value if isinstance(value, str) else b64(value)
    return validate_response(
        encoded,
        sp=sp,
        settings=settings_ or settings(),
        now=now,
        expected_request_id=expected_request_id,
        replay=replay if replay is not None else InMemoryReplayCache(),
    )


def find(el: etree._Element, path: str) -> etree._Element:
    found = el.find(path, namespaces=NS)
    assert found is not None, path
    return found


def clone(el: etree._Element) -> etree._Element:
    return copy.deepcopy(el)


class LegacySigner(XMLSigner):
    """signxml refuses to *sign* with SHA-1; tests need such signatures from a 'legacy IdP'."""

    def check_deprecated_methods(self) -> None:
        return None


def sign_sha1(element: etree._Element, pair: KeyPair) -> etree._Element:
    from signxml.algorithms import CanonicalizationMethod

    el = etree.fromstring(etree.tostring(element))
    placeholder = etree.Element(f"{{{DS}}}Signature", nsmap={"ds": DS}, Id="placeholder")
    el.insert(1, placeholder)
    signer = LegacySigner(
        signature_algorithm=SignatureMethod.RSA_SHA1,
        digest_algorithm=DigestAlgorithm.SHA1,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    signed: etree._Element = signer.sign(
        el, key=pair.private_key_pem, cert=pair.certificate_pem, reference_uri="#" + el.get("ID"), id_attribute="ID"
    )
    return signed


def answer_authn_request(
    idp: IdentityProvider,
    location: str,
    connection: Mapping[str, Any],
    *,
    name_id: str = "alice-subject",
    attributes: Mapping[str, list[str]] | None = None,
) -> dict[str, str]:
    """The form fields with which ``idp`` answers the AuthnRequest in a sign-in start's redirect ``location``.

    A Response signed by ``idp`` for ``connection`` (its API form: ``sp_entity_id``, ``acs_url``),
    ``InResponseTo`` that request, now, with the RelayState echoed: what a browser POSTs to the ACS.
    """
    request = parse_authn_request(idp, urlsplit(location).query)
    xml = build_response(
        idp,
        sp_entity_id=connection["sp_entity_id"],
        acs_url=connection["acs_url"],
        name_id=name_id,
        attributes=dict(attributes or {"email": ["alice@acme.com"], "name": ["Alice"]}),
        now=dt.datetime.now(dt.UTC),
        in_response_to=request.request_id,
    )
    return dict(response_form(xml, connection["acs_url"], request.relay_state).fields)
