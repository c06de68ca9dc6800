"""Response children outside the SAML schema's sequence are refused, not skipped.

samlp:Response is ``saml:Issuer?, ds:Signature?, samlp:Extensions?,
samlp:Status, (saml:Assertion | saml:EncryptedAssertion)*`` (core §3.2.2,
§3.3.3). A validator that skips elements it does not recognise, next to a
consumer (or a later version of ourselves) that does not, is how wrapping
attacks start: an ``Assertion`` in a look-alike namespace is "not an
assertion" to one reader and the assertion to another. Namespaces are compared
exactly, so a different case or a trailing space makes an unknown element.

Each attack is derived, after signing, from a response genuinely signed by the
test IdP (assertion signed, Response not, so the attacker can add elements
without breaking a signature); each refusal has its positive control.
"""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from tests.saml_support import clone, find, settings, signed_response, validate
from vestibule.saml import errors
from vestibule.saml.xml import DS, SAML, SAMLP

LOOKALIKE_NAMESPACES = [
    pytest.param("urn:oasis:names:tc:SAML:2.0:Assertion", id="capital-A"),
    pytest.param("urn:oasis:names:tc:saml:2.0:assertion", id="lower-case-saml"),
    pytest.param("URN:OASIS:NAMES:TC:SAML:2.0:ASSERTION", id="upper-case"),
    pytest.param("urn:oasis:names:tc:SAML:2.0:assertion/", id="trailing-slash"),
    pytest.param("urn:oasis:names:tc:SAML:2.0:assertion#", id="trailing-hash"),
    pytest.param("urn:oasis:names:tc:SAML:2.0:protocol", id="protocol-namespace"),
]


def rejects(value: object, code: str = "saml.malformed", **kw: object) -> errors.SamlError:
    with pytest.raises(errors.SamlError) as exc:
        validate(value, **kw)  # type: ignore[arg-type]
    assert exc.value.code == code, str(exc.value)
    return exc.value


def genuine() -> etree._Element:
    response = signed_response()
    assert validate(response).name_id == "alice@example.com"  # Positive control for every test.
    return response


def _evil_assertion(signed: etree._Element, tag: str) -> etree._Element:
    evil = clone(signed)
    evil.tag = tag
    evil.set("ID", "_evil")
    for signature in evil.findall(f"{{{DS}}}Signature"):
        evil.remove(signature)
    find(evil, "saml:Subject/saml:NameID").text = "admin@example.com"
    return evil


# --- Between Status and Assertion --------------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        pytest.param("{urn:evil}Assertion", id="foreign-namespace"),
        pytest.param(f"{{{SAMLP}}}Unknown", id="unknown-protocol-element"),
        pytest.param(f"{{{SAML}}}Advice", id="assertion-namespace-non-assertion"),
        pytest.param(f"{{{SAMLP}}}Extensions", id="extensions-after-status"),
        pytest.param(f"{{{SAML}}}Issuer", id="issuer-after-status"),
    ],
)
def test_rejects_unknown_element_between_status_and_assertion(tag: str) -> None:
    response = genuine()
    response.insert(response.index(find(response, "saml:Assertion")), etree.Element(tag))
    error = rejects(response)
    assert error.received == tag


def test_accepts_comments_and_extensions_in_schema_order() -> None:
    """Positive control: Extensions before Status, comments and processing instructions anywhere."""
    response = genuine()
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    etree.SubElement(extensions, "{urn:vendor:ext}Hint").text = "x"
    response.insert(response.index(find(response, "samlp:Status")), extensions)
    response.insert(response.index(find(response, "saml:Assertion")), etree.Comment(" IdP build 42 "))
    response.append(etree.ProcessingInstruction("vendor", "trace=1"))
    assert validate(response).name_id == "alice@example.com"


# --- Look-alike namespaces ---------------------------------------------------


@pytest.mark.parametrize("namespace", LOOKALIKE_NAMESPACES)
@pytest.mark.parametrize("position", ["before", "after", "instead"])
def test_rejects_assertion_in_lookalike_namespace(namespace: str, position: str) -> None:
    """An evil ``Assertion`` whose namespace only looks like SAML's, beside or instead of the signed one."""
    response = genuine()
    signed = find(response, "saml:Assertion")
    evil = _evil_assertion(signed, f"{{{namespace}}}Assertion")
    if position == "before":
        response.insert(response.index(signed), evil)
    elif position == "after":
        response.append(evil)
    else:
        response.replace(signed, evil)
    error = rejects(response)
    assert error.received == f"{{{namespace}}}Assertion"


@pytest.mark.parametrize("position", ["before", "instead"])
def test_rejects_assertion_in_namespace_with_trailing_space(position: str) -> None:
    """``urn:oasis:names:tc:SAML:2.0:assertion `` (trailing space) is not even a valid namespace URI.

    lxml cannot build it, so the message is written as text, as an attacker
    would; the parser refuses it before anything else runs.
    """
    response = genuine()
    signed = find(response, "saml:Assertion")
    evil = etree.tostring(_evil_assertion(signed, f"{{{SAML}}}Assertion")).decode()
    evil = evil.replace(f'"{SAML}"', f'"{SAML} "', 1)
    assert f'"{SAML} "' in evil
    marker = etree.Comment("EVIL-ASSERTION-HERE")
    if position == "before":
        response.insert(response.index(signed), marker)
    else:
        response.replace(signed, marker)
    xml = etree.tostring(response).decode().replace("<!--EVIL-ASSERTION-HERE-->", evil)
    assert "EVIL-ASSERTION-HERE" not in xml
    error = rejects(base64.b64encode(xml.encode()).decode())
    assert "not well-formed" in error.description


# --- Status ------------------------------------------------------------------


def test_rejects_two_status_elements() -> None:
    """Two Status elements: which one says Success? Neither is chosen."""
    response = genuine()
    status = find(response, "samlp:Status")
    response.insert(response.index(status), clone(status))
    rejects(response)


def test_rejects_assertion_before_status() -> None:
    response = genuine()
    status = find(response, "samlp:Status")
    response.remove(status)
    response.append(status)
    error = rejects(response)
    assert "before its Status" in error.description and error.received == f"{{{SAML}}}Assertion"


def test_rejects_response_without_status() -> None:
    response = genuine()
    response.remove(find(response, "samlp:Status"))
    rejects(response)


# --- After the Assertion -----------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        pytest.param(f"{{{SAMLP}}}Extensions", "saml.malformed", id="extensions"),
        pytest.param(f"{{{SAMLP}}}Status", "saml.malformed", id="second-status"),
        pytest.param(f"{{{SAML}}}Issuer", "saml.malformed", id="issuer"),
        pytest.param(f"{{{SAML}}}Advice", "saml.malformed", id="advice"),
        pytest.param("{urn:evil}Anything", "saml.malformed", id="foreign-element"),
        # An empty ds:Signature is taken for the Response's and fails the signature policy first.
        pytest.param(f"{{{DS}}}Signature", "saml.signature_invalid", id="empty-signature"),
    ],
)
def test_rejects_element_after_the_assertion(tag: str, code: str) -> None:
    response = genuine()
    response.append(etree.Element(tag))
    rejects(response, code)


def test_rejects_response_signature_moved_after_the_assertion() -> None:
    """An enveloped signature verifies wherever it sits, but the schema puts it after Issuer: refused.

    The moved signature still verifies (the enveloped transform removes it
    wherever it is); the structure check runs on the received tree, which
    still holds it, so the misplacement is caught.
    """
    response = signed_response(sign_assertion=False, sign_response=True)
    assert validate(response).signed_parts == ("response",)  # Positive control.
    response.append(find(response, "ds:Signature"))
    error = rejects(response)
    assert error.received == f"{{{DS}}}Signature"


def test_rejects_schema_violation_even_when_the_response_is_signed() -> None:
    """An IdP that signs a Response with an unknown element in it is refused too (not skipped because signed)."""

    def add_unknown(response: etree._Element) -> None:
        response.insert(response.index(find(response, "saml:Assertion")), etree.Element("{urn:vendor}Debug"))

    bad = signed_response(sign_assertion=False, sign_response=True, mutate_response=add_unknown)
    error = rejects(bad, settings_=settings())
    assert error.received == "{urn:vendor}Debug"
    assert validate(signed_response(sign_assertion=False, sign_response=True)).signed_parts == ("response",)
