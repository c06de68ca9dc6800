"""Each check of the restricted XML-DSig verifier, with the attack refused beside its positive control.

The verifier (:func:`vestibule.saml.dsig.verify_enveloped`) is called on the
element as the ACS holds it (a parsed message); whole-message attacks
(signature wrapping, transforms, keys) also run through ``validate_response``
in tests/security/test_saml_attacks*.py. signxml's agreement is in
test_dsig_oracle.py.
"""

from __future__ import annotations

import base64
import copy

import pytest
from lxml import etree

from tests.saml.test_dsig_oracle import ENVELOPED, EXC_C14N, XS, both, c14n, sign_in_place
from tests.saml_support import IDP, NOW, cert, find, key_pair, sign_sha1, signed_response
from vestibule.saml import errors
from vestibule.saml.dsig import verify_enveloped
from vestibule.saml.xml import DS, SAML, SAMLP, parse_xml, q

RING = (cert("idp"),)


def received(element: etree._Element) -> etree._Element:
    """The message as the ACS parses it."""
    return parse_xml(etree.tostring(element))


def assertion_of(root: etree._Element) -> etree._Element:
    return find(root, "saml:Assertion")


def verify(element: etree._Element, certificates: tuple[str, ...] = RING, **kw: bool) -> etree._Element:
    return verify_enveloped(
        element, certificates=certificates, allow_sha1=kw.get("allow_sha1", False), now=NOW, what="Assertion"
    )


def refused(element: etree._Element, code: str, certificates: tuple[str, ...] = RING, **kw: bool) -> errors.SamlError:
    with pytest.raises(errors.SamlError) as exc:
        verify(element, certificates, **kw)
    assert exc.value.code == code, str(exc.value)
    return exc.value


def genuine() -> etree._Element:
    return received(signed_response())


def test_positive_control_returns_the_signed_assertion_as_its_own_document() -> None:
    root = genuine()
    signed = verify(assertion_of(root))
    assert signed.tag == q(SAML, "Assertion")
    assert signed.get("ID") == assertion_of(root).get("ID")
    # Nothing of the received message is reachable from what is returned.
    assert signed.getparent() is None
    assert signed.getroottree().getroot() is signed
    assert signed.find(q(DS, "Signature")) is None  # The enveloped transform removed it.
    assert signed.tail is None
    assert find(signed, "saml:Subject/saml:NameID").text == "alice@example.com"


def test_the_received_tree_is_left_as_it_was() -> None:
    """The Signature is removed for C14N on the received tree itself, and put back, tail and all."""
    root = genuine()
    signature = find(root, "saml:Assertion/ds:Signature")
    signature.tail = "\n  "  # Whitespace after the Signature is document content (it stays on removal).
    before = etree.tostring(root)
    with pytest.raises(errors.SignatureError):
        verify(assertion_of(root))  # Not what was signed: the digest covers that whitespace.
    assert etree.tostring(root) == before
    fresh = genuine()
    before = etree.tostring(fresh)
    verify(assertion_of(fresh))
    assert etree.tostring(fresh) == before


def test_whitespace_around_the_signature_is_signed_content() -> None:
    """Pretty-printed IdP output: text after the Signature is digested with the element, as xmlsec does."""
    root = received(signed_response(sign_assertion=False))
    assertion = assertion_of(root)
    issuer = find(assertion, "saml:Issuer")
    issuer.tail = "\n  "  # Digested text where the Signature will sit (xmlsec signs a template in place).
    sign_in_place(assertion)
    signature = find(assertion, "ds:Signature")
    issuer.tail, signature.tail = None, "\n  "  # The same text, now after the Signature.
    assert isinstance(both(assertion).ours, bytes)
    signature.tail = "\n   "
    refused(assertion, "saml.signature_invalid")


# --- Reference and IDs -------------------------------------------------------


def test_refuses_duplicate_id_anywhere_in_the_document() -> None:
    """Another element with the signed assertion's ID (as ID, Id or AssertionID): refused, wherever it is."""
    for attribute in ("ID", "Id", "AssertionID"):
        root = genuine()
        extensions = etree.Element(q(SAMLP, "Extensions"))
        etree.SubElement(extensions, q(SAML, "Assertion"), {attribute: assertion_of(root).get("ID", "")})
        root.insert(1, extensions)
        error = refused(assertion_of(root), "saml.signature_invalid")
        assert "more than one element" in error.description
    verify(assertion_of(genuine()))  # Positive control.


def test_refuses_reference_to_another_element() -> None:
    """The Reference names another ID than the element carrying the signature (XSW): refused before crypto."""
    root = genuine()
    find(root, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference").set("URI", "#" + root.get("ID", ""))
    error = refused(assertion_of(root), "saml.signature_invalid")
    assert error.received == "#" + root.get("ID", "")


def test_refuses_two_references() -> None:
    root = genuine()
    reference = find(root, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference")
    reference.getparent().append(copy.deepcopy(reference))
    error = refused(assertion_of(root), "saml.signature_invalid")
    assert "exactly one Reference" in error.description


def test_refuses_a_signature_that_is_not_a_direct_child() -> None:
    root = genuine()
    signature = find(root, "saml:Assertion/ds:Signature")
    find(root, "saml:Assertion/saml:Subject").append(signature)
    refused(assertion_of(root), "saml.unsigned")


def test_refuses_two_signatures() -> None:
    root = genuine()
    signature = find(root, "saml:Assertion/ds:Signature")
    assertion_of(root).insert(2, copy.deepcopy(signature))
    assert "more than one signature" in refused(assertion_of(root), "saml.signature_invalid").description


# --- Transforms and canonicalization ----------------------------------------


def test_refuses_a_transform_outside_the_profile() -> None:
    root = genuine()
    transforms = find(root, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms")
    etree.SubElement(transforms, q(DS, "Transform"), Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116")
    refused(assertion_of(root), "saml.transform_not_allowed")


def test_refuses_transforms_in_another_order_or_alone() -> None:
    """Exactly enveloped-signature then exclusive C14N; signed as such by the IdP key, so only the profile refuses."""
    for transforms in ((EXC_C14N, ENVELOPED), (ENVELOPED,), (ENVELOPED, EXC_C14N, EXC_C14N)):
        root = received(signed_response(sign_assertion=False))
        sign_in_place(assertion_of(root), transforms=transforms)
        error = refused(assertion_of(root), "saml.transform_not_allowed")
        assert "exactly enveloped-signature, then exclusive C14N" in error.description
    root = received(signed_response(sign_assertion=False))
    sign_in_place(assertion_of(root))  # Positive control: the same signer with the profile's transforms.
    verify(assertion_of(root))


def test_refuses_c14n_with_comments() -> None:
    root = genuine()
    find(root, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:CanonicalizationMethod").set(
        "Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
    )
    refused(assertion_of(root), "saml.algorithm_not_allowed")
    root = genuine()
    transform = find(root, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform[2]")
    transform.set("Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#WithComments")
    refused(assertion_of(root), "saml.transform_not_allowed")


def _with_prefixed_attribute_values(prefixes: str) -> etree._Element:
    response = signed_response(sign_assertion=False)
    text = etree.tostring(response).replace(b"<samlp:Response ", f'<samlp:Response xmlns:xs="{XS}" '.encode(), 1)
    root = parse_xml(text)
    for value in assertion_of(root).iter(q(SAML, "AttributeValue")):
        value.set("{http://www.w3.org/2001/XMLSchema-instance}type", "xs:string")
    sign_in_place(assertion_of(root), prefixes=prefixes)
    return root


def test_inclusive_namespaces_prefix_list_is_honoured() -> None:
    """PrefixList="xs" puts the Response's xmlns:xs into the signed bytes; it is honoured, not ignored.

    Without honouring it the digest would not match (the declaration is
    only used in attribute values, which exclusive C14N does not see).
    """
    root = _with_prefixed_attribute_values("xs")
    signed = verify(assertion_of(root))
    assert signed.nsmap.get("xs") == XS  # The returned tree is the canonical bytes, declaration included.
    assert c14n(signed) == both(assertion_of(root)).oracle
    # The PrefixList is signed: removing it breaks the signature, not the verifier.
    inclusive = find(root, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform[2]")
    inclusive.remove(inclusive[0])
    refused(assertion_of(root), "saml.certificate_untrusted")


@pytest.mark.parametrize("prefixes", ["", "xs  saml", "xs\tsaml"])
def test_refuses_a_malformed_prefix_list(prefixes: str) -> None:
    """libxml2 reads an empty token as the default namespace: "a  b" would silently mean "a #default b"."""
    root = _with_prefixed_attribute_values(prefixes)
    refused(assertion_of(root), "saml.transform_not_allowed")


# --- Digest and signature -----------------------------------------------------


def test_refuses_a_digest_mismatch() -> None:
    root = genuine()
    find(root, "saml:Assertion/saml:Subject/saml:NameID").text = "admin@example.com"
    assert "digest mismatch" in refused(assertion_of(root), "saml.signature_invalid").description


def test_refuses_a_signature_mismatch() -> None:
    root = genuine()
    value = find(root, "saml:Assertion/ds:Signature/ds:SignatureValue")
    raw = bytearray(base64.b64decode("".join((value.text or "").split())))
    raw[-1] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()
    refused(assertion_of(root), "saml.certificate_untrusted")


def test_refuses_digest_and_signature_values_that_are_not_plain_base64() -> None:
    """A comment inside DigestValue does not change SignedInfo's C14N; it is refused, not skipped."""
    for path in ("ds:SignedInfo/ds:Reference/ds:DigestValue", "ds:SignatureValue"):
        root = genuine()
        find(root, f"saml:Assertion/ds:Signature/{path}").append(etree.Comment("x"))
        assert "base64 text only" in refused(assertion_of(root), "saml.signature_invalid").description


def test_refuses_an_unpinned_key_whatever_keyinfo_says() -> None:
    response = received(signed_response(signer=key_pair("attacker")))
    refused(assertion_of(response), "saml.certificate_untrusted")
    x509 = find(response, "saml:Assertion/ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate")
    x509.text = "".join(IDP.signing.certificate_pem.splitlines()[1:-1])  # The pinned certificate as a decoy.
    refused(assertion_of(response), "saml.certificate_untrusted")
    verify(assertion_of(genuine()))  # Positive control.


def test_refuses_a_key_value_naming_another_key() -> None:
    """A KeyValue that contradicts the pinned key that verified is refused (signxml refused it too)."""
    root = genuine()
    attacker = key_pair("attacker")
    from vestibule.saml.keys import load_certificate

    numbers = load_certificate(attacker.certificate_pem).public_key().public_numbers()  # type: ignore[union-attr]
    key_info = find(root, "saml:Assertion/ds:Signature/ds:KeyInfo")
    rsa_value = etree.SubElement(etree.SubElement(key_info, q(DS, "KeyValue")), q(DS, "RSAKeyValue"))
    modulus = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")  # type: ignore[union-attr]
    etree.SubElement(rsa_value, q(DS, "Modulus")).text = base64.b64encode(modulus).decode()
    etree.SubElement(rsa_value, q(DS, "Exponent")).text = "AQAB"
    refused(assertion_of(root), "saml.signature_invalid")
    # Positive control: the pinned key's own KeyValue is fine.
    pinned = load_certificate(cert("idp")).public_key().public_numbers()  # type: ignore[union-attr]
    rsa_value.find(q(DS, "Modulus")).text = base64.b64encode(  # type: ignore[union-attr]
        pinned.n.to_bytes((pinned.n.bit_length() + 7) // 8, "big")  # type: ignore[union-attr]
    ).decode()
    verify(assertion_of(root))


def test_sha1_refused_unless_allowed() -> None:
    response = signed_response(sign_assertion=False)
    response.replace(assertion_of(response), sign_sha1(assertion_of(response), IDP.signing))
    root = received(response)
    refused(assertion_of(root), "saml.algorithm_not_allowed")
    verify(assertion_of(root), allow_sha1=True)


def test_ecdsa_raw_signature_of_the_wrong_length_is_refused() -> None:
    """XML-DSig ECDSA values are r || s at the curve's size; anything else never reaches the key."""
    pair = key_pair("idp_ec")
    root = received(signed_response(signer=pair))
    verify(assertion_of(root), (pair.certificate_pem,))  # Positive control.
    value = find(root, "saml:Assertion/ds:Signature/ds:SignatureValue")
    value.text = base64.b64encode(base64.b64decode("".join((value.text or "").split())) + b"\0").decode()
    refused(assertion_of(root), "saml.certificate_untrusted", (pair.certificate_pem,))


def test_a_ring_of_mixed_key_types_finds_the_right_key() -> None:
    pair = key_pair("idp_ec")
    root = received(signed_response(signer=pair))
    assert verify(assertion_of(root), (cert("idp"), pair.certificate_pem)).get("ID") == assertion_of(root).get("ID")


# --- What is consumed ----------------------------------------------------------


def test_a_comment_in_a_signed_value_cannot_truncate_it() -> None:
    """C14N drops the comment; the returned tree comes from the canonical bytes, so the value is whole."""
    root = received(signed_response(name_id="user@evil.com.attacker.com"))
    name_id = find(root, "saml:Assertion/saml:Subject/saml:NameID")
    name_id.text = "user@evil.com"
    comment = etree.Comment("")
    name_id.append(comment)
    comment.tail = ".attacker.com"
    signed = verify(assertion_of(root))
    value = find(signed, "saml:Subject/saml:NameID")
    assert len(value) == 0 and value.text == "user@evil.com.attacker.com"


def test_the_returned_element_is_what_the_digest_covered() -> None:
    """Its canonical form is the very bytes signxml digests, for both ways of handing it back."""
    plain = genuine()
    assert c14n(verify(assertion_of(plain))) == both(assertion_of(plain)).oracle
    commented = genuine()
    find(commented, "saml:Assertion/saml:Issuer").append(etree.Comment("c"))
    assert c14n(verify(assertion_of(commented))) == both(assertion_of(commented)).oracle
