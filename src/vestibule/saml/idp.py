"""A small, real SAML 2.0 identity provider (core §3.2–§3.4, profiles §4.1).

Used by Vestibule's built-in test identity provider for demos, and by the test
suite to produce genuinely signed responses. It receives AuthnRequests over
HTTP-Redirect (:func:`parse_authn_request`), and issues Responses signed with
signxml's ``XMLSigner`` (RSA-SHA256, exclusive C14N), assertion- and/or
response-signed, optionally encrypted to the SP's certificate (RSA-OAEP +
AES-256-GCM), SP-initiated or IdP-initiated (no InResponseTo).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from .bindings import (
    HTTP_POST,
    HTTP_REDIRECT,
    PostForm,
    decode_redirect,
    new_request_id,
    post_form,
    verify_redirect_signature,
)
from .dsig import sign_element
from .errors import MalformedError, RequestError
from .keys import certificate_b64
from .settings import EMAIL_ADDRESS
from .sp import KeyPair
from .xml import DS, MD, SAML, SAMLP, XSI, format_instant, parse_xml, q, simple_text
from .xmlenc import AES256_GCM, encrypt_element

XS = "http://www.w3.org/2001/XMLSchema"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
PASSWORD_PROTECTED = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
ATTRNAME_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"


@dataclass(frozen=True)
class IdentityProvider:
    entity_id: str
    sso_url: str
    signing: KeyPair


@dataclass(frozen=True)
class AuthnRequestInfo:
    """What an SP asked for; ``acs_url`` must still be checked against the SP's registration."""

    request_id: str
    issuer: str
    acs_url: str | None
    name_id_format: str | None
    relay_state: str | None
    signed: bool


def parse_authn_request(
    idp: IdentityProvider, query: str, *, sp_certificate: str | None = None, require_signature: bool = False
) -> AuthnRequestInfo:
    """Decode and check an HTTP-Redirect AuthnRequest (bindings §3.4.4)."""
    message = decode_redirect(query)
    signed = message.signature is not None
    if signed or require_signature:
        if sp_certificate is None:
            raise RequestError("A signed AuthnRequest needs the SP certificate to verify it.")
        verify_redirect_signature(message, sp_certificate)
    request = parse_xml(message.xml, what="AuthnRequest")
    if request.tag != q(SAMLP, "AuthnRequest") or request.get("Version") != "2.0":
        raise MalformedError("The message is not a SAML 2.0 AuthnRequest.")
    request_id = request.get("ID")
    if not request_id:
        raise MalformedError("The AuthnRequest has no ID.")
    destination = request.get("Destination")
    if destination is not None and destination != idp.sso_url:
        raise RequestError("The AuthnRequest Destination is not this IdP.", expected=idp.sso_url, received=destination)
    issuer_el = request.find(q(SAML, "Issuer"))
    if issuer_el is None:
        raise MalformedError("The AuthnRequest has no Issuer.")
    policy = request.find(q(SAMLP, "NameIDPolicy"))
    return AuthnRequestInfo(
        request_id=request_id,
        issuer=simple_text(issuer_el, "Issuer"),
        acs_url=request.get("AssertionConsumerServiceURL"),
        name_id_format=policy.get("Format") if policy is not None else None,
        relay_state=message.relay_state,
        signed=signed,
    )


def build_assertion(
    idp: IdentityProvider,
    *,
    sp_entity_id: str,
    acs_url: str,
    name_id: str,
    attributes: Mapping[str, Sequence[str]],
    now: datetime,
    in_response_to: str | None = None,
    name_id_format: str = EMAIL_ADDRESS,
    lifetime: timedelta = timedelta(minutes=5),
    session_index: str | None = None,
    assertion_id: str | None = None,
) -> etree._Element:
    """An unsigned ``saml:Assertion`` following profiles §4.1.4.2."""
    not_on_or_after = format_instant(now + lifetime)
    assertion = etree.Element(
        q(SAML, "Assertion"),
        nsmap={"saml": SAML, "xs": XS, "xsi": XSI},
        ID=assertion_id or new_request_id(),
        Version="2.0",
        IssueInstant=format_instant(now),
    )
    etree.SubElement(assertion, q(SAML, "Issuer")).text = idp.entity_id
    subject = etree.SubElement(assertion, q(SAML, "Subject"))
    etree.SubElement(subject, q(SAML, "NameID"), Format=name_id_format).text = name_id
    confirmation = etree.SubElement(subject, q(SAML, "SubjectConfirmation"), Method=BEARER)
    data = etree.SubElement(
        confirmation, q(SAML, "SubjectConfirmationData"), NotOnOrAfter=not_on_or_after, Recipient=acs_url
    )
    if in_response_to is not None:
        data.set("InResponseTo", in_response_to)
    conditions = etree.SubElement(
        assertion, q(SAML, "Conditions"), NotBefore=format_instant(now - timedelta(seconds=30)),
        NotOnOrAfter=not_on_or_after,
    )  # fmt: skip
    restriction = etree.SubElement(conditions, q(SAML, "AudienceRestriction"))
    etree.SubElement(restriction, q(SAML, "Audience")).text = sp_entity_id
    authn = etree.SubElement(
        assertion, q(SAML, "AuthnStatement"), AuthnInstant=format_instant(now),
        SessionIndex=session_index or new_request_id(),
    )  # fmt: skip
    context = etree.SubElement(authn, q(SAML, "AuthnContext"))
    etree.SubElement(context, q(SAML, "AuthnContextClassRef")).text = PASSWORD_PROTECTED
    if attributes:
        statement = etree.SubElement(assertion, q(SAML, "AttributeStatement"))
        for name, values in attributes.items():
            attribute = etree.SubElement(statement, q(SAML, "Attribute"), Name=name, NameFormat=ATTRNAME_BASIC)
            for value in values:
                value_el = etree.SubElement(attribute, q(SAML, "AttributeValue"))
                value_el.set(q(XSI, "type"), "xs:string")
                value_el.text = value
    return assertion


def assemble_response(
    idp: IdentityProvider,
    *,
    acs_url: str,
    now: datetime,
    assertion: etree._Element | None,
    in_response_to: str | None = None,
    status: str = SUCCESS,
) -> etree._Element:
    """A ``samlp:Response`` around an (already signed/encrypted) assertion element."""
    response = etree.Element(
        q(SAMLP, "Response"), nsmap={"samlp": SAMLP, "saml": SAML}, ID=new_request_id(), Version="2.0",
        IssueInstant=format_instant(now), Destination=acs_url,
    )  # fmt: skip
    if in_response_to is not None:
        response.set("InResponseTo", in_response_to)
    etree.SubElement(response, q(SAML, "Issuer")).text = idp.entity_id
    status_el = etree.SubElement(response, q(SAMLP, "Status"))
    etree.SubElement(status_el, q(SAMLP, "StatusCode"), Value=status)
    if assertion is not None:
        response.append(assertion)
    return response


def build_response(
    idp: IdentityProvider,
    *,
    sp_entity_id: str,
    acs_url: str,
    name_id: str,
    attributes: Mapping[str, Sequence[str]],
    now: datetime,
    in_response_to: str | None = None,
    name_id_format: str = EMAIL_ADDRESS,
    sign_assertion: bool = True,
    sign_response: bool = False,
    encrypt_to: str | None = None,
    encryption_algorithm: str = AES256_GCM,
    lifetime: timedelta = timedelta(minutes=5),
) -> bytes:
    """A complete Response (XML bytes); post it with :func:`response_form`.

    ``in_response_to=None`` makes an IdP-initiated (unsolicited) response.
    ``encrypt_to`` is the SP's encryption certificate (PEM).
    """
    assertion = build_assertion(
        idp, sp_entity_id=sp_entity_id, acs_url=acs_url, name_id=name_id, attributes=attributes, now=now,
        in_response_to=in_response_to, name_id_format=name_id_format, lifetime=lifetime,
    )  # fmt: skip
    if sign_assertion:
        assertion = sign_element(assertion, idp.signing)
    if encrypt_to is not None:
        wrapper = etree.Element(q(SAML, "EncryptedAssertion"), nsmap={"saml": SAML})
        wrapper.append(encrypt_element(assertion, encrypt_to, algorithm=encryption_algorithm))
        assertion = wrapper
    response = assemble_response(idp, acs_url=acs_url, now=now, assertion=assertion, in_response_to=in_response_to)
    if sign_response:
        response = sign_element(response, idp.signing)
    return bytes(etree.tostring(response))


def response_form(xml: bytes, acs_url: str, relay_state: str | None) -> PostForm:
    """The HTTP-POST form carrying a Response to the SP's ACS (bindings §3.5)."""
    return post_form(acs_url, "SAMLResponse", xml, relay_state)


def build_idp_metadata(
    idp: IdentityProvider,
    *,
    next_certificate: str | None = None,
    name_id_formats: Sequence[str] = (EMAIL_ADDRESS,),
    want_authn_requests_signed: bool = False,
) -> bytes:
    """EntityDescriptor with an IDPSSODescriptor (SAML metadata §2.4.3)."""
    entity = etree.Element(q(MD, "EntityDescriptor"), nsmap={"md": MD, "ds": DS}, entityID=idp.entity_id)
    descriptor = etree.SubElement(
        entity, q(MD, "IDPSSODescriptor"), protocolSupportEnumeration=SAMLP,
        WantAuthnRequestsSigned="true" if want_authn_requests_signed else "false",
    )  # fmt: skip
    for cert in (idp.signing.certificate_pem, next_certificate):
        if cert is None:
            continue
        key = etree.SubElement(descriptor, q(MD, "KeyDescriptor"), use="signing")
        data = etree.SubElement(etree.SubElement(key, q(DS, "KeyInfo")), q(DS, "X509Data"))
        etree.SubElement(data, q(DS, "X509Certificate")).text = certificate_b64(cert)
    for fmt in name_id_formats:
        etree.SubElement(descriptor, q(MD, "NameIDFormat")).text = fmt
    for binding in (HTTP_REDIRECT, HTTP_POST):
        etree.SubElement(descriptor, q(MD, "SingleSignOnService"), Binding=binding, Location=idp.sso_url)
    return bytes(etree.tostring(entity, xml_declaration=True, encoding="UTF-8"))
