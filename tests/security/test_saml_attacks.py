"""XML-level attacks on the ACS: signature wrapping, key substitution, parser abuse.

Each test starts from a response genuinely signed with the committed test IdP
key and derives the attack from it (see tests/fixtures/README.md). Binding,
audience, time and replay attacks live in test_saml_attacks_binding.py.
"""

from __future__ import annotations

import pytest
from lxml import etree

from tests.saml_support import (
    IDP,
    NOW,
    NS,
    SP,
    clone,
    find,
    key_pair,
    settings,
    sign_sha1,
    signed_response,
    validate,
)  # fmt: skip
from vestibule.saml import errors
from vestibule.saml.dsig import sign_element, verify_enveloped
from vestibule.saml.xml import DS, SAML, SAMLP


def code_of(exc: pytest.ExceptionInfo[errors.SamlError]) -> str:
    return exc.value.code


def rejects(value: object, code: str, **kw: object) -> errors.SamlError:
    with pytest.raises(errors.SamlError) as exc:
        validate(value, **kw)  # type: ignore[arg-type]
    assert code_of(exc) == code, str(exc.value)
    return exc.value


# --- Positive controls -------------------------------------------------------


def test_accepts_genuine_assertion_signed_response() -> None:
    result = validate(signed_response())
    assert result.name_id == "alice@example.com"
    assert result.signed_parts == ("assertion",)
    assert result.attributes["groups"] == ("engineering", "admins")


def test_accepts_genuine_response_and_assertion_signed() -> None:
    result = validate(signed_response(sign_response=True), settings_=settings(want_response_signed=True))
    assert result.signed_parts == ("response", "assertion")


def test_accepts_response_signed_only_when_assertion_signature_not_required() -> None:
    result = validate(
        signed_response(sign_assertion=False, sign_response=True), settings_=settings(want_assertions_signed=False)
    )
    assert result.signed_parts == ("response",)


def test_keyinfo_is_ignored_for_trust() -> None:
    """Replacing KeyInfo by an attacker certificate changes nothing: only pinned keys are used."""
    response = signed_response()
    x509 = find(response, "saml:Assertion/ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate")
    x509.text = "".join(key_pair("attacker").certificate_pem.splitlines()[1:-1])
    assert validate(response).name_id == "alice@example.com"


# --- XML signature wrapping (Somorovsky et al., "On Breaking SAML", 2012) ---


def _evil_assertion(original: etree._Element) -> etree._Element:
    evil = clone(original)
    evil.set("ID", "_evil")
    for sig in evil.findall(f"{{{DS}}}Signature"):
        evil.remove(sig)
    find(evil, "saml:Subject/saml:NameID").text = "admin@example.com"
    return evil


def test_rejects_xsw1_response_signature_over_wrapped_original() -> None:
    """XSW1: an evil unsigned Response wraps the signed original inside its Signature."""
    original = signed_response(sign_response=True, sign_assertion=False)
    evil = clone(original)
    evil.set("ID", "_evil_response")
    find(evil, "saml:Assertion/saml:Subject/saml:NameID").text = "admin@example.com"
    find(evil, "ds:Signature").append(original)
    rejects(evil, "saml.signature_invalid", settings_=settings(want_assertions_signed=False))


def test_rejects_xsw2_original_response_as_sibling() -> None:
    """XSW2: like XSW1 but the original Response sits before the Signature (detached style)."""
    original = signed_response(sign_response=True, sign_assertion=False)
    evil = clone(original)
    evil.set("ID", "_evil_response")
    signature = find(evil, "ds:Signature")
    evil.insert(evil.index(signature), original)
    rejects(evil, "saml.signature_invalid", settings_=settings(want_assertions_signed=False))


def test_rejects_xsw3_evil_assertion_before_signed_one() -> None:
    """XSW3: an evil assertion is inserted before the signed one, hoping it is read first."""
    response = signed_response()
    signed = find(response, "saml:Assertion")
    response.insert(response.index(signed), _evil_assertion(signed))
    rejects(response, "saml.assertion_count")


def test_rejects_xsw4_signed_assertion_nested_in_evil_one() -> None:
    """XSW4: the signed assertion is moved inside an evil assertion."""
    response = signed_response()
    signed = find(response, "saml:Assertion")
    evil = _evil_assertion(signed)
    response.replace(signed, evil)
    evil.append(signed)
    rejects(response, "saml.assertion_count")


def test_rejects_xsw5_signature_moved_to_evil_assertion() -> None:
    """XSW5: the evil assertion carries the original Signature; the original is dropped."""
    response = signed_response()
    signed = find(response, "saml:Assertion")
    evil = _evil_assertion(signed)
    evil.insert(1, find(signed, "ds:Signature"))
    response.replace(signed, evil)
    error = rejects(response, "saml.signature_invalid")
    assert error.expected == "#_evil"


def test_rejects_xsw6_original_in_signature_object() -> None:
    """XSW6: the original assertion hides in ds:Object of the Signature the evil one carries."""
    response = signed_response()
    signed = find(response, "saml:Assertion")
    evil = _evil_assertion(signed)
    evil.set("ID", signed.get("ID"))
    signature = clone(find(signed, "ds:Signature"))
    obj = etree.SubElement(signature, f"{{{DS}}}Object")
    obj.append(signed)
    evil.insert(1, signature)
    response.append(evil)
    rejects(response, "saml.assertion_count")


def test_rejects_xsw6_at_signature_layer() -> None:
    """XSW6 seen by the signature layer alone: a ds:Object is refused before crypto."""
    signed = find(signed_response(), "saml:Assertion")
    evil = _evil_assertion(signed)
    evil.set("ID", signed.get("ID"))
    signature = clone(find(signed, "ds:Signature"))
    etree.SubElement(signature, f"{{{DS}}}Object").append(clone(signed))
    evil.insert(1, signature)
    with pytest.raises(errors.SignatureError):
        verify_enveloped(evil, certificates=settings().certificates, allow_sha1=False, now=NOW, what="Assertion")


def test_rejects_xsw7_signed_assertion_in_extensions() -> None:
    """XSW7: the signed assertion is hidden in samlp:Extensions, an evil one takes its place."""
    response = signed_response()
    signed = find(response, "saml:Assertion")
    response.replace(signed, _evil_assertion(signed))
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    extensions.append(signed)
    response.insert(1, extensions)
    rejects(response, "saml.assertion_count")


def test_rejects_xsw8_evil_assertion_with_same_id() -> None:
    """XSW8: evil and original share one ID so an ID lookup may pick either; the original is wrapped."""
    response = signed_response()
    signed = find(response, "saml:Assertion")
    evil = _evil_assertion(signed)
    evil.set("ID", signed.get("ID"))
    evil.insert(1, find(signed, "ds:Signature"))
    response.replace(signed, evil)
    rejects(response, "saml.signature_invalid")


def test_rejects_signature_moved_from_assertion_to_response() -> None:
    """The assertion's signature is lifted to Response level, so the assertion looks unsigned-but-covered."""
    response = signed_response()
    signed = find(response, "saml:Assertion")
    response.insert(1, find(signed, "ds:Signature"))
    find(signed, "saml:Subject/saml:NameID").text = "admin@example.com"
    rejects(response, "saml.signature_invalid", settings_=settings(want_assertions_signed=False))


# --- Keys and algorithms ----------------------------------------------------


def test_rejects_unsigned_assertion() -> None:
    """No signature anywhere: anyone could have written it."""
    rejects(signed_response(sign_assertion=False), "saml.unsigned")


def test_rejects_unsigned_even_when_signatures_not_wanted() -> None:
    """At least one signature is always required, whatever the settings say."""
    rejects(signed_response(sign_assertion=False), "saml.unsigned", settings_=settings(want_assertions_signed=False))


def test_rejects_assertion_signed_by_untrusted_key() -> None:
    """A self-made key with the same subject name as the IdP's certificate."""
    rejects(signed_response(signer=key_pair("attacker")), "saml.certificate_untrusted")


def test_rejects_attacker_key_with_idp_cert_in_keyinfo() -> None:
    """Attacker signs with their key but puts the IdP certificate in KeyInfo as a decoy."""
    response = signed_response(signer=key_pair("attacker"))
    x509 = find(response, "saml:Assertion/ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate")
    x509.text = "".join(IDP.signing.certificate_pem.splitlines()[1:-1])
    rejects(response, "saml.certificate_untrusted")


def test_rejects_expired_pinned_certificate() -> None:
    """A configured certificate outside its validity period is not used."""
    response = signed_response(signer=key_pair("idp_expired"))
    rejects(
        response, "saml.certificate_expired", settings_=settings(certificates=[key_pair("idp_expired").certificate_pem])
    )


def test_accepts_rollover_second_certificate() -> None:
    """Rollover: the IdP already signs with the second certificate of the ring."""
    ring = settings(certificates=[key_pair("idp").certificate_pem, key_pair("idp_next").certificate_pem])
    assert validate(signed_response(signer=key_pair("idp_next")), settings_=ring).name_id == "alice@example.com"


def test_accepts_ecdsa_signature() -> None:
    pair = key_pair("idp_ec")
    assert validate(signed_response(signer=pair), settings_=settings(certificates=[pair.certificate_pem]))


def test_rejects_sha1_signature_by_default() -> None:
    """RSA-SHA1 / SHA-1 digests are refused unless the connection opts in."""
    response = signed_response(sign_assertion=False)
    signed = sign_sha1(find(response, "saml:Assertion"), IDP.signing)
    response.replace(find(response, "saml:Assertion"), signed)
    rejects(response, "saml.algorithm_not_allowed")
    assert validate(response, settings_=settings(allow_sha1=True)).name_id == "alice@example.com"


def _add_transform(response: etree._Element, algorithm: str, body: etree._Element | None = None) -> None:
    transforms = find(response, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms")
    transform = etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=algorithm)
    if body is not None:
        transform.append(body)


def test_rejects_xslt_transform_before_crypto() -> None:
    """An XSLT transform (which python3-saml executed before the key check) is refused unexecuted."""
    xslt = etree.fromstring(
        b'<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0">'
        b'<xsl:template match="/"><xsl:value-of select="document(\'http://attacker.test/x\')"/>'
        b"</xsl:template></xsl:stylesheet>"
    )
    response = signed_response(signer=key_pair("attacker"))
    _add_transform(response, "http://www.w3.org/TR/1999/REC-xslt-19991116", xslt)
    rejects(response, "saml.transform_not_allowed")


def test_rejects_xpath_transform() -> None:
    """An XPath filter could leave attributes outside the signed content."""
    xpath = etree.Element(f"{{{DS}}}XPath")
    xpath.text = "not(ancestor-or-self::saml:AttributeStatement)"
    response = signed_response()
    _add_transform(response, "http://www.w3.org/TR/1999/REC-xpath-19991116", xpath)
    rejects(response, "saml.transform_not_allowed")


def test_rejects_c14n_with_comments() -> None:
    """Canonicalisation *with comments* would let comments into the consumed, signed values."""
    response = signed_response()
    find(response, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:CanonicalizationMethod").set(
        "Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
    )
    rejects(response, "saml.algorithm_not_allowed")


def test_rejects_tampered_attribute_value() -> None:
    """Changing a signed attribute value breaks the digest."""
    response = signed_response()
    value = find(response, "saml:Assertion/saml:AttributeStatement/saml:Attribute[@Name='groups']/saml:AttributeValue")
    value.text = "superusers"
    rejects(response, "saml.signature_invalid")


# --- Text extraction tricks ------------------------------------------------


def test_rejects_comment_truncation_of_name_id() -> None:
    """A comment inserted into a signed NameID must not truncate it (CVE-2017-11427 class).

    Exclusive C14N drops comments, so the signature still verifies; the
    consumed value must be the full signed one, never "user@evil.com".
    """
    response = signed_response(name_id="user@evil.com.attacker.com")
    name_id = find(response, "saml:Assertion/saml:Subject/saml:NameID")
    name_id.text = "user@evil.com"
    comment = etree.Comment("")
    name_id.append(comment)
    comment.tail = ".attacker.com"
    assert validate(response).name_id == "user@evil.com.attacker.com"


def test_rejects_name_id_with_child_elements() -> None:
    """Mixed content in a NameID, even when signed, is refused rather than flattened."""

    def mutate(a: etree._Element) -> None:
        etree.SubElement(find(a, "saml:Subject/saml:NameID"), f"{{{SAML}}}Extra").text = "x"

    rejects(signed_response(mutate_assertion=mutate), "saml.malformed")


def test_whitespace_in_name_id_is_reported_exactly() -> None:
    """Whitespace is kept as signed (the domain layer refuses non-canonical emails), never trimmed."""
    assert validate(signed_response(name_id=" alice@example.com\n")).name_id == " alice@example.com\n"


def test_rejects_issuer_with_whitespace() -> None:
    """An Issuer padded with whitespace is not the configured entity ID."""

    def mutate(a: etree._Element) -> None:
        find(a, "saml:Issuer").text = IDP.entity_id + " "

    rejects(signed_response(mutate_assertion=mutate), "saml.issuer_mismatch")


# --- Parser abuse -------------------------------------------------------------


def test_rejects_doctype_xxe() -> None:
    """XXE: an external entity reading local files."""
    xml = etree.tostring(signed_response())
    evil = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + xml
    rejects(evil, "saml.dtd_forbidden")


def test_rejects_billion_laughs() -> None:
    """Entity expansion bomb."""
    entities = "".join(f'<!ENTITY l{i} "&l{i - 1};&l{i - 1};">' for i in range(1, 10))
    evil = f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l0 "lol">{entities}]><r>&l9;</r>'.encode()
    rejects(evil, "saml.dtd_forbidden")


def test_rejects_benign_doctype_in_utf16() -> None:
    """Even a harmless DOCTYPE is refused, including one the byte scan cannot see (UTF-16)."""
    evil = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r><r/>'.encode("utf-16")
    rejects(evil, "saml.dtd_forbidden")


def test_rejects_oversize_message() -> None:
    """The base64 SAMLResponse is bounded before decoding."""
    rejects("A" * (256 * 1024 + 4), "saml.too_large")


def test_rejects_non_base64() -> None:
    rejects("<samlp:Response/>", "saml.malformed")


def test_sign_element_places_signature_after_issuer() -> None:
    signed = sign_element(find(signed_response(sign_assertion=False), "saml:Assertion"), IDP.signing)
    assert etree.QName(signed[1]).localname == "Signature"
    assert SP.entity_id in etree.tostring(signed).decode()
    assert NS["ds"] == DS
