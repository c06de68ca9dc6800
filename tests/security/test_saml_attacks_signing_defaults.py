"""Which signature must cover the assertion: the interoperable default and its attacks.

Either signature is enough by default (profiles §4.1.4.5 with the SAML 2.0
errata): a Response signed as a whole by the pinned key — Keycloak's default for SAML clients, documents
signed and assertions not — or each Assertion signed (Okta, Entra ID, Google).
At least one signature must always cover the *consumed* assertion, and with a
Response-level signature that is the assertion inside the verified Response
subtree returned by the verifier (saml/dsig.py), never one from the received document.
``want_assertions_signed`` is the opt-in that requires the Assertion's own.

Every attack starts from a message genuinely signed by the test IdP key and is
derived after signing, as an attacker in the browser would (see
tests/fixtures/README.md); each refusal sits next to its positive control.
"""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from tests.saml_support import IDP, NOW, REQUEST_ID, SP, clone, find, settings, signed_response, validate
from vestibule.saml import errors
from vestibule.saml.idp import assemble_response
from vestibule.saml.xml import DS, SAMLP


def rejects(value: object, code: str, **kw: object) -> errors.SamlError:
    with pytest.raises(errors.SamlError) as exc:
        validate(value, **kw)  # type: ignore[arg-type]
    assert exc.value.code == code, str(exc.value)
    return exc.value


def response_signed_only() -> etree._Element:
    """What Keycloak sends by default: the Response signed, the Assertion not."""
    return signed_response(sign_assertion=False, sign_response=True)


def _evil(assertion: etree._Element, *, new_id: str = "_evil") -> etree._Element:
    evil = clone(assertion)
    evil.set("ID", new_id)
    for signature in evil.findall(f"{{{DS}}}Signature"):
        evil.remove(signature)
    find(evil, "saml:Subject/saml:NameID").text = "admin@example.com"
    return evil


# --- The default and the opt-in ----------------------------------------------


def test_accepts_response_signed_only_by_default() -> None:
    """Keycloak's default output (Response signed, Assertion not) signs in with default settings."""
    result = validate(response_signed_only())
    assert result.name_id == "alice@example.com"
    assert result.signed_parts == ("response",)
    assert result.attributes["groups"] == ("engineering", "admins")


def test_rejects_response_signed_only_when_want_assertions_signed() -> None:
    """The opt-in still works: a connection that requires signed assertions refuses Response-only signing."""
    strict = settings(want_assertions_signed=True)
    error = rejects(response_signed_only(), "saml.unsigned", settings_=strict)
    assert "want_assertions_signed" in error.description
    assert error.received == "Response signed only"
    # Positive control: the same connection accepts the IdP once it signs the assertion too.
    both = signed_response(sign_assertion=True, sign_response=True)
    assert validate(both, settings_=strict).signed_parts == ("response", "assertion")
    assert validate(signed_response(), settings_=strict).signed_parts == ("assertion",)


def test_rejects_unsigned_response_and_assertion() -> None:
    """Nothing signed: refused by default and under every combination of the two opt-ins."""
    unsigned = signed_response(sign_assertion=False, sign_response=False)
    for overrides in ({}, {"want_assertions_signed": True}, {"want_response_signed": True},
                      {"want_assertions_signed": True, "want_response_signed": True}):  # fmt: skip
        rejects(unsigned, "saml.unsigned", settings_=settings(**overrides))
    # Positive control: the same content, signed at either level, is accepted.
    assert validate(response_signed_only()).name_id == "alice@example.com"
    assert validate(signed_response()).name_id == "alice@example.com"


def test_rejects_response_with_assertion_signed_when_want_response_signed() -> None:
    """The other opt-in is unchanged: a signed assertion alone does not satisfy want_response_signed."""
    rejects(signed_response(), "saml.unsigned", settings_=settings(want_response_signed=True))
    assert validate(response_signed_only(), settings_=settings(want_response_signed=True)).signed_parts == ("response",)


# --- Wrapping attacks on a Response-level signature ------------------------


def test_rejects_xsw_unsigned_assertion_added_beside_response_signed_one() -> None:
    """An evil unsigned assertion is duplicated next to the one the Response signature covers."""
    original = response_signed_only()
    assert validate(original).name_id == "alice@example.com"  # Positive control.
    evil = clone(original)
    signed = find(evil, "saml:Assertion")
    evil.insert(evil.index(signed), _evil(signed))
    rejects(evil, "saml.signature_invalid")  # The Response digest no longer matches.
    evil = clone(original)
    evil.append(_evil(find(evil, "saml:Assertion")))
    rejects(evil, "saml.signature_invalid")


def test_rejects_xsw_signed_assertion_moved_to_extensions_evil_one_in_its_place() -> None:
    """XSW7 against a Response-level signature: the covered assertion hides in Extensions."""
    evil = response_signed_only()
    signed = find(evil, "saml:Assertion")
    evil.replace(signed, _evil(signed))
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    extensions.append(signed)
    evil.insert(evil.index(find(evil, "samlp:Status")), extensions)
    rejects(evil, "saml.signature_invalid")


def test_rejects_xsw_response_signed_original_wrapped_in_evil_unsigned_response() -> None:
    """XSW1/2 shape: an evil unsigned Response carries the signed original (and so a valid signature) inside it."""
    original = response_signed_only()
    evil = clone(original)
    evil.set("ID", "_evil_response")
    evil.remove(find(evil, "ds:Signature"))
    evil.replace(find(evil, "saml:Assertion"), _evil(find(evil, "saml:Assertion")))
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    extensions.append(original)
    evil.insert(evil.index(find(evil, "samlp:Status")), extensions)
    # The outer Response is not signed and neither is its assertion.
    rejects(evil, "saml.assertion_count")  # The hidden assertion is seen first.
    extensions.remove(original)
    rejects(evil, "saml.unsigned")


def test_rejects_xsw_signature_lifted_to_evil_response_with_the_same_id() -> None:
    """XSW8 shape: the evil Response takes the original's ID and Signature; the original hides in Extensions.

    An ID lookup could pick either element; the verifier refuses a reference that
    resolves to two, and even if it picked the original, the assertion consumed
    would be the original's (what the signature covers), never the evil one.
    """
    original = response_signed_only()
    for keep_inner_signature in (False, True):
        evil = clone(original)
        evil.replace(find(evil, "saml:Assertion"), _evil(find(evil, "saml:Assertion")))
        hidden = clone(original)
        if not keep_inner_signature:
            hidden.remove(find(hidden, "ds:Signature"))
        extensions = etree.Element(f"{{{SAMLP}}}Extensions")
        extensions.append(hidden)
        evil.insert(evil.index(find(evil, "samlp:Status")), extensions)
        rejects(evil, "saml.signature_invalid")  # the verifier: the referenced ID is not unique.


def test_rejects_unsigned_assertion_moved_out_of_a_response_signed_message() -> None:
    """The covered assertion lifted into a fresh, unsigned Response loses its only signature."""
    original = response_signed_only()
    assert validate(original).name_id == "alice@example.com"  # Positive control.
    moved = assemble_response(
        IDP, acs_url=SP.acs_url, now=NOW, assertion=clone(find(original, "saml:Assertion")), in_response_to=REQUEST_ID
    )
    rejects(moved, "saml.unsigned")


def test_rejects_signature_of_another_response_transplanted() -> None:
    """A genuine Response signature for one message does not sign another message's content."""
    genuine = response_signed_only()
    other = signed_response(sign_assertion=False, sign_response=False, name_id="admin@example.com")
    other.set("ID", genuine.get("ID"))
    other.insert(1, clone(find(genuine, "ds:Signature")))
    rejects(other, "saml.signature_invalid")


def test_response_only_signature_consumes_the_verified_copy() -> None:
    """The assertion consumed is the one in the verifier's digested subtree, not the received one.

    A comment inside the signed NameID is invisible to exclusive C14N, so the
    signature still verifies; the received tree has the NameID split by it,
    the verified one does not. Reading the received tree would refuse (mixed
    content) or truncate to "user@evil.com"; the verified copy gives the whole
    value the IdP signed.
    """
    response = signed_response(sign_assertion=False, sign_response=True, name_id="user@evil.com.attacker.com")
    name_id = find(response, "saml:Assertion/saml:Subject/saml:NameID")
    name_id.text = "user@evil.com"
    comment = etree.Comment("")
    name_id.append(comment)
    comment.tail = ".attacker.com"
    result = validate(base64.b64encode(etree.tostring(response)).decode())
    assert result.name_id == "user@evil.com.attacker.com"
    assert result.signed_parts == ("response",)
