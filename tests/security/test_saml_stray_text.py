"""Stray text around a signed element must not crash verification (a 500 is a finding too).

lxml's ``tostring(element)`` also writes the element's *tail*: the text that
follows its end tag inside the parent. Serialising a signed Assertion that
an attacker followed with text used to hand signxml a document with
"extra content at the end", and the resulting ``XMLSyntaxError`` escaped as
an unhandled exception (HTTP 500 at the ACS).
"""

from __future__ import annotations

import pytest

from tests.saml_support import find, settings, signed_response, validate
from vestibule.saml import errors


def test_text_after_the_signed_assertion_is_ignored_not_a_crash() -> None:
    """Positive control: the text is outside every signature and never consumed; the assertion is fine."""
    response = signed_response()
    find(response, "saml:Assertion").tail = "junk text </not-a-tag"
    assert validate(response).name_id == "alice@example.com"


def test_rejects_text_after_the_assertion_of_a_signed_response() -> None:
    """Inside a signed Response, the same text is covered by the Response signature: tampering."""
    response = signed_response(sign_response=True)
    find(response, "saml:Assertion").tail = "junk"
    with pytest.raises(errors.SignatureError):
        validate(response, settings_=settings(want_response_signed=True))


def test_rejects_a_tampered_assertion_even_with_stray_text_around_it() -> None:
    response = signed_response()
    assertion = find(response, "saml:Assertion")
    assertion.tail = "junk"
    find(assertion, "saml:Subject/saml:NameID").text = "mallory@example.com"
    with pytest.raises(errors.SignatureError):
        validate(response)
