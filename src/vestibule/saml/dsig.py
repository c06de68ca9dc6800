"""XML Signature verification for SAML messages (SAML core §5, xmldsig-core1 §3.2).

A restricted verifier for exactly the profile Vestibule accepts, on lxml
(exclusive C14N) and cryptography (digests and signatures). signxml is kept
for *signing* (:func:`sign_element`) and, in the test suite, as a
differential oracle that must agree with this verifier
(tests/saml/test_dsig_oracle.py).

* **Pinned keys.** Only the connection's configured certificates are tried, in
  ring order; the KeyInfo certificate in the message is used solely as a hint
  to try the matching configured certificate first. It is never trusted. A
  KeyValue in KeyInfo must name the key that verified (as signxml requires).
* **Profile of SAML core §5.4.** Exactly one Signature, a direct child of the
  element it signs; exactly one Reference, whose URI is ``#`` + the ID of
  that element (enveloped), and that ID carried by no other element of the
  document; transforms exactly enveloped-signature, then exclusive C14N
  *without comments* (an InclusiveNamespaces PrefixList on it is honoured).
  C14N *with comments* is refused: it makes
  comments part of the signed content and lets a comment split a signed NameID
  into text nodes that naive ``.text`` readers truncate. Any other transform
  (XPath, XSLT, base64, …) is refused before any cryptography runs, so an XSLT
  is never executed. The ds:Signature must be valid against the XML-DSig
  schema (W3C's, shipped in ``schemas/``).
* **Algorithm allow-list.** RSA-SHA256/384/512 (PKCS#1 v1.5) and
  ECDSA-SHA256/384/512 with SHA-256/384/512 digests; SHA-1 variants only with
  ``allow_sha1``.
* **See what is signed.** What is returned is exactly the nodes that were
  digested, in a document of their own: a copy taken while the Signature was
  removed for canonicalisation, or, when a comment was among those nodes (or
  an InclusiveNamespaces list brought in outside declarations), the canonical
  bytes parsed again. The caller consumes only that, never the input tree.
  That, plus the reference-URI and unique-ID checks, defeats XML signature
  wrapping (XSW), and a comment an attacker slips into a signed value is not
  in the returned tree (C14N without comments dropped it), so it cannot
  truncate the value.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from copy import deepcopy
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key
from lxml import etree
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConstructionMethod,
    SignatureMethod,
)
from signxml.signer import XMLSigner

from .errors import (
    AlgorithmNotAllowedError,
    CertificateExpiredError,
    CertificateUntrustedError,
    MalformedError,
    SignatureError,
    TransformNotAllowedError,
    UnsignedError,
)
from .keys import fingerprint, load_certificate, load_private_key
from .sp import KeyPair
from .xml import DS, SAML, hardened_parser, q

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
ALLOWED_TRANSFORMS = frozenset({ENVELOPED, EXC_C14N})
DS11 = "http://www.w3.org/2009/xmldsig11#"
_INCLUSIVE_NAMESPACES = q(EXC_C14N, "InclusiveNamespaces")
_SIGNATURE, _TRANSFORMS, _TRANSFORM, _OBJECT = (
    q(DS, "Signature"),
    q(DS, "Transforms"),
    q(DS, "Transform"),
    q(DS, "Object"),
)
_KEY_INFO, _KEY_VALUE, _DER_KEY_VALUE = q(DS, "KeyInfo"), q(DS, "KeyValue"), q(DS11, "DEREncodedKeyValue")

_RSA, _ECDSA = "rsa", "ecdsa"
_XMLDSIG_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
#: SignatureMethod URI -> (key type, hash).
_STRONG_SIGNATURES: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    _XMLDSIG_MORE + "rsa-sha256": (_RSA, hashes.SHA256),
    _XMLDSIG_MORE + "rsa-sha384": (_RSA, hashes.SHA384),
    _XMLDSIG_MORE + "rsa-sha512": (_RSA, hashes.SHA512),
    _XMLDSIG_MORE + "ecdsa-sha256": (_ECDSA, hashes.SHA256),
    _XMLDSIG_MORE + "ecdsa-sha384": (_ECDSA, hashes.SHA384),
    _XMLDSIG_MORE + "ecdsa-sha512": (_ECDSA, hashes.SHA512),
}
_SHA1_SIGNATURES: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": (_RSA, hashes.SHA1),
    _XMLDSIG_MORE + "ecdsa-sha1": (_ECDSA, hashes.SHA1),
}
#: DigestMethod URI -> hash.
_STRONG_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "http://www.w3.org/2001/04/xmlenc#sha256": hashes.SHA256,
    _XMLDSIG_MORE + "sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmlenc#sha512": hashes.SHA512,
}
_SHA1_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {"http://www.w3.org/2000/09/xmldsig#sha1": hashes.SHA1}
_ALL_SIGNATURES = {**_STRONG_SIGNATURES, **_SHA1_SIGNATURES}
_ALL_DIGESTS = {**_STRONG_DIGESTS, **_SHA1_DIGESTS}


_SIGNATURE_METHODS = {False: frozenset(_STRONG_SIGNATURES), True: frozenset(_ALL_SIGNATURES)}
_DIGEST_METHODS = {False: frozenset(_STRONG_DIGESTS), True: frozenset(_ALL_DIGESTS)}


def signature_methods(allow_sha1: bool) -> frozenset[str]:
    return _SIGNATURE_METHODS[allow_sha1]


def digest_methods(allow_sha1: bool) -> frozenset[str]:
    return _DIGEST_METHODS[allow_sha1]


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    """W3C's XML-DSig schema (as signxml validates against), parsed once.

    Our own files: the core schema's internal DTD subset only declares
    entities for the schema text itself; nothing is fetched from the network.
    """
    parser = etree.XMLParser(no_network=True, resolve_entities=True, load_dtd=False)
    path = resources.files("vestibule.saml").joinpath("schemas", "xmldsig1-schema.xsd")
    with resources.as_file(path) as file:
        return etree.XMLSchema(etree.parse(str(file), parser))


class _Pinned(NamedTuple):
    """One configured certificate, parsed: what verification and error messages need of it."""

    der: bytes
    cert: x509.Certificate
    #: None for a key type no allowed algorithm uses (it never verifies).
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey | None
    #: SubjectPublicKeyInfo DER, to compare a KeyInfo's DEREncodedKeyValue with.
    spki: bytes


@lru_cache(maxsize=256)
def _ring(certificates: tuple[str, ...]) -> tuple[_Pinned, ...]:
    """The configured certificates, parsed once per ring."""
    ring = []
    for pem in certificates:
        cert = load_certificate(pem)
        public = cert.public_key()
        usable = public if isinstance(public, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)) else None
        spki = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        ring.append(_Pinned(cert.public_bytes(Encoding.DER), cert, usable, spki))
    return tuple(ring)


@lru_cache(maxsize=256)
def _ring_b64(certificates: tuple[str, ...]) -> dict[str, bytes]:
    """The ring's certificates as bare base64 (the KeyInfo form) -> DER, for the hint lookup."""
    return {base64.b64encode(pinned.der).decode("ascii"): pinned.der for pinned in _ring(certificates)}


def _one(parent: etree._Element, local: str, what: str) -> etree._Element:
    found = list(parent.iterchildren(q(DS, local)))
    if len(found) != 1:
        raise SignatureError(f"The {what} signature must have exactly one {local}.")
    return found[0]


def check_signature_policy(signature: etree._Element, *, allow_sha1: bool, what: str) -> etree._Element:
    """Refuse disallowed algorithms and transforms before any crypto; return the Reference."""
    signed_info = _one(signature, "SignedInfo", what)
    c14n = _one(signed_info, "CanonicalizationMethod", what).get("Algorithm")
    if c14n != EXC_C14N:
        raise AlgorithmNotAllowedError(
            f"The {what} signature uses a canonicalization method that is not allowed.",
            expected=EXC_C14N,
            received=c14n,
        )
    method = _one(signed_info, "SignatureMethod", what).get("Algorithm")
    if method not in signature_methods(allow_sha1):
        raise AlgorithmNotAllowedError(
            f"The {what} signature algorithm is not allowed for this connection.",
            expected="RSA-SHA256/384/512 or ECDSA-SHA256/384/512",
            received=method,
        )
    references = list(signed_info.iterchildren(q(DS, "Reference")))
    if len(references) != 1:
        raise SignatureError(f"The {what} signature must have exactly one Reference.", received=str(len(references)))
    reference = references[0]
    transforms = [t for ts in reference.iterchildren(_TRANSFORMS) for t in ts.iterchildren(_TRANSFORM)]
    algorithms = [t.get("Algorithm") for t in transforms]
    for transform, algorithm in zip(transforms, algorithms, strict=True):
        if algorithm not in ALLOWED_TRANSFORMS:
            raise TransformNotAllowedError(
                f"The {what} signature uses a transform that is not allowed.",
                expected="enveloped-signature, exclusive C14N (without comments)",
                received=algorithm,
            )
        for param in transform:
            if param.tag != _INCLUSIVE_NAMESPACES:
                raise TransformNotAllowedError(f"The {what} signature has an unexpected transform parameter.")
    if ENVELOPED not in algorithms:
        raise TransformNotAllowedError(f"The {what} signature is not an enveloped signature.", expected=ENVELOPED)
    digest = _one(reference, "DigestMethod", what).get("Algorithm")
    if digest not in digest_methods(allow_sha1):
        raise AlgorithmNotAllowedError(
            f"The {what} signature digest algorithm is not allowed for this connection.",
            expected="SHA-256/384/512",
            received=digest,
        )
    if next(signature.iterchildren(_OBJECT), None) is not None:
        raise SignatureError(f"The {what} signature carries a ds:Object, which SAML does not use.")
    return reference


def _message_certificate(signature: etree._Element, known: dict[str, bytes] | None = None) -> bytes | None:
    node = signature.find(f"{q(DS, 'KeyInfo')}/{q(DS, 'X509Data')}/{q(DS, 'X509Certificate')}")
    if node is None or not node.text:
        return None
    text = "".join(node.text.split())
    if known is not None and text in known:
        return known[text]  # A configured certificate: no need to decode it again.
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


# --- The restricted profile, beyond check_signature_policy -------------------

#: Any attribute that names an element's ID in the dialects an XML-DSig
#: processor resolves: SAML 2.0's ID, SAML 1.x's AssertionID, XML-DSig's Id,
#: xml:id and lower-case id (signxml's list), in any namespace. The value test
#: comes first so the name test only runs on the few attributes that match.
_SAME_ID = etree.XPath(
    "//@*[. = $id][local-name() = 'ID' or local-name() = 'Id' or local-name() = 'id' or local-name() = 'AssertionID']"
)


def _element_children(node: etree._Element) -> list[etree._Element]:
    return list(node.iterchildren(etree.Element))  # Elements only: no comments or processing instructions.


def _prefix_list(node: etree._Element, what: str) -> list[str] | None:
    """The InclusiveNamespaces PrefixList of a C14N node (exc-c14n §3), or None.

    Only one InclusiveNamespaces child, with a PrefixList of single-space
    separated prefixes (or ``#default``), is accepted: libxml2 reads an empty
    token as the default namespace, so "a  b" would silently mean "a #default b".
    """
    children = _element_children(node)
    if not children:
        return None
    inclusive = children[0]
    value = inclusive.get("PrefixList")
    if len(children) != 1 or inclusive.tag != _INCLUSIVE_NAMESPACES or value is None:
        raise TransformNotAllowedError(f"The {what} signature has an unexpected transform parameter.")
    prefixes = str(value).split(" ")
    if any(not p or p != "".join(p.split()) for p in prefixes):
        raise TransformNotAllowedError(
            f"The {what} signature has a malformed InclusiveNamespaces PrefixList.", received=value
        )
    return prefixes


def _no_child_elements(node: etree._Element, what: str) -> None:
    if next(node.iterchildren(etree.Element), None) is not None:
        raise SignatureError(f"The {what} signature's {etree.QName(node).localname} has unexpected content.")


def _plain_text(node: etree._Element, what: str) -> bytes:
    """Base64 content of DigestValue / SignatureValue; comments or children are refused, not skipped."""
    name = etree.QName(node).localname
    if len(node):  # Also counts comments and processing instructions.
        raise SignatureError(f"The {what} signature's {name} must hold base64 text only.")
    try:
        return binascii.a2b_base64("".join((node.text or "").split()), strict_mode=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"The {what} signature's {name} is not base64.") from None


class Profile(NamedTuple):
    """What verification needs from a Signature that passed the profile checks."""

    signed_info: etree._Element
    kind: str
    signature_hash: type[hashes.HashAlgorithm]
    signature_value: bytes
    reference_prefixes: list[str] | None
    digest_hash: type[hashes.HashAlgorithm]
    digest_value: bytes


def check_profile(signature: etree._Element, reference: etree._Element, *, what: str) -> Profile:
    """The rest of the profile, after :func:`check_signature_policy`; still before any crypto."""
    try:
        _schema().assertValid(signature)
    except etree.DocumentInvalid:
        raise SignatureError(f"The {what} ds:Signature element is not schema-valid.") from None
    # The schema fixes the order: SignedInfo, SignatureValue, KeyInfo?; in
    # SignedInfo, CanonicalizationMethod, SignatureMethod, Reference (one, by
    # the policy); in Reference, Transforms (required by the policy),
    # DigestMethod, DigestValue.
    signed_info, signature_value = _element_children(signature)[:2]
    c14n_method, signature_method, _reference = _element_children(signed_info)
    transforms_node, digest_method, digest_value = _element_children(reference)
    # The schema's strict wildcard already refuses an InclusiveNamespaces here
    # (as signxml did); IdPs put their PrefixList on the Reference's transform.
    _no_child_elements(c14n_method, what)
    _no_child_elements(signature_method, what)
    transforms = _element_children(transforms_node)
    algorithms = [t.get("Algorithm") for t in transforms]
    # The order is the profile's, and the one that means what signxml does with
    # any order: remove the Signature, then canonicalise. Enveloped-signature
    # alone would leave the canonicalization to a default (inclusive C14N 1.0
    # in XML-DSig, exclusive in signxml as configured): refused as ambiguous.
    if algorithms != [ENVELOPED, EXC_C14N]:
        raise TransformNotAllowedError(
            f"The {what} signature's transforms must be exactly enveloped-signature, then exclusive C14N.",
            expected=f"{ENVELOPED} {EXC_C14N}",
            received=" ".join(str(a) for a in algorithms),
        )
    _no_child_elements(transforms[0], what)
    reference_prefixes = _prefix_list(transforms[1], what)
    _no_child_elements(digest_method, what)
    # check_signature_policy has held both algorithms to the allow-list.
    kind, signature_hash = _ALL_SIGNATURES[str(signature_method.get("Algorithm"))]
    return Profile(
        signed_info=signed_info,
        kind=kind,
        signature_hash=signature_hash,
        signature_value=_plain_text(signature_value, what),
        reference_prefixes=reference_prefixes,
        digest_hash=_ALL_DIGESTS[str(digest_method.get("Algorithm"))],
        digest_value=_plain_text(digest_value, what),
    )


def _check_unique_id(element: etree._Element, element_id: str, what: str) -> None:
    """The referenced ID names one element in the whole document: the one that carries the signature.

    The reference is resolved by construction (the signed element is the
    signature's parent), never by an ID lookup; a second element with the same
    ID is still refused, since any other consumer of the document (or a later
    change here) could resolve it to the wrong one.
    """
    found = _SAME_ID(element.getroottree(), id=element_id)
    if len(found) != 1:
        raise SignatureError(
            f"The {what} ID is carried by more than one element (signature wrapping?).",
            expected="one element with this ID",
            received=f"{len(found)} attributes with ID {element_id}",
        )


# --- Canonicalization, digest, signature ------------------------------------


def _c14n(node: etree._Element, prefixes: list[str] | None) -> bytes:
    data: bytes = etree.tostring(
        node, method="c14n", exclusive=True, with_comments=False, inclusive_ns_prefixes=prefixes
    )
    return data


def _c14n_without(
    element: etree._Element, signature: etree._Element, prefixes: list[str] | None
) -> tuple[bytes, etree._Element | None]:
    """Exclusive C14N of ``element`` with its enveloped ``signature`` removed (xmldsig-core1 §6.6.4).

    Returns the canonical bytes and, when the canonicalised nodes hold no
    comment and no InclusiveNamespaces applies, a copy of exactly those nodes
    (its own document, no tail), taken in the same state. Comments are what
    exclusive C14N drops and what splits a text node, so with any comment
    there is no copy: the caller parses the canonical bytes instead.

    The transform removes the Signature element only: the text after it (its
    lxml "tail") stays in the document, so it is moved to the previous node
    first. Done on the tree itself (cheaper than a copy) and undone in
    ``finally``, so the caller's tree is unchanged whatever happens.
    """
    previous = signature.getprevious()
    saved = previous.tail if previous is not None else element.text
    index = element.index(signature)
    if signature.tail:
        if previous is not None:
            previous.tail = (saved or "") + signature.tail
        else:
            element.text = (saved or "") + signature.tail
    element.remove(signature)  # lxml keeps the tail on the removed element.
    try:
        canonical = _c14n(element, prefixes)
        copy: etree._Element | None = None
        # With an InclusiveNamespaces PrefixList, the canonical bytes carry
        # namespace declarations from outside the element that a copy drops.
        if prefixes is None and next(element.iter(etree.Comment), None) is None:
            # A third of a parse of the canonical bytes, and the same nodes.
            copy = deepcopy(element)
            copy.tail = None  # Text after the element's end tag is outside it.
        return canonical, copy
    finally:
        element.insert(index, signature)
        if previous is not None:
            previous.tail = saved
        else:
            element.text = saved


def _signature_ok(
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey | None,
    kind: str,
    hash_cls: type[hashes.HashAlgorithm],
    value: bytes,
    data: bytes,
) -> bool:
    """One pinned key against SignatureValue; ``False`` for a key of the other type."""
    try:
        if kind == _RSA:
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(value, data, padding.PKCS1v15(), hash_cls())
            return True
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        # XML-DSig ECDSA values are r || s, each the curve's size (RFC 4050 §3.3, xmldsig-core1 §6.4.3).
        size = (key.key_size + 7) // 8
        if len(value) != 2 * size:
            return False
        r, s = int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big")
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hash_cls()))
        return True
    except InvalidSignature:
        return False


_CURVE_URIS = {
    "secp256r1": "urn:oid:1.2.840.10045.3.1.7",
    "secp384r1": "urn:oid:1.3.132.0.34",
    "secp521r1": "urn:oid:1.3.132.0.35",
}


def _key_value_matches(key_value: etree._Element, key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> bool:
    children = _element_children(key_value)
    if len(children) != 1:
        return False
    node = children[0]
    try:
        if node.tag == q(DS, "RSAKeyValue") and isinstance(key, rsa.RSAPublicKey):
            numbers = key.public_numbers()
            modulus = base64.b64decode(node.findtext(q(DS, "Modulus")) or "")
            exponent = base64.b64decode(node.findtext(q(DS, "Exponent")) or "")
            return int.from_bytes(modulus, "big") == numbers.n and int.from_bytes(exponent, "big") == numbers.e
        if node.tag == q(DS11, "ECKeyValue") and isinstance(key, ec.EllipticCurvePublicKey):
            curve = node.find(q(DS11, "NamedCurve"))
            point = base64.b64decode(node.findtext(q(DS11, "PublicKey")) or "")
            return (
                curve is not None
                and curve.get("URI") == _CURVE_URIS.get(key.curve.name)
                and point == key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
            )
    except (binascii.Error, ValueError):
        return False
    return False


def _check_key_info(
    signature: etree._Element, key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, spki: bytes, what: str
) -> None:
    """A KeyValue or DEREncodedKeyValue in the message must name the pinned key that verified.

    They are never used to verify; one naming another key is a contradiction
    signxml refuses too ("Both X509Data and KeyValue found and they represent
    different public keys"), so it is refused here rather than ignored.
    """
    key_info = next(signature.iterchildren(_KEY_INFO), None)
    if key_info is None:
        return
    for key_value in key_info.iterchildren(_KEY_VALUE):
        if not _key_value_matches(key_value, key):
            raise SignatureError(f"The {what} signature's KeyValue is not the configured key that verified it.")
    for encoded in key_info.iterchildren(_DER_KEY_VALUE):
        try:
            same = (
                load_der_public_key(
                    base64.b64decode("".join((encoded.text or "").split()), validate=True)
                ).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
                == spki
            )
        except (binascii.Error, ValueError):
            same = False
        if not same:
            raise SignatureError(
                f"The {what} signature's DEREncodedKeyValue is not the configured key that verified it."
            )


def verify_enveloped(
    element: etree._Element,
    *,
    certificates: tuple[str, ...],
    allow_sha1: bool,
    now: datetime,
    what: str,
) -> etree._Element:
    """Verify the enveloped signature of ``element``; return the verified node.

    The returned node is the root of a new document holding exactly the nodes
    whose canonical bytes the signature's digest covers (see the module
    docstring); ``element``'s own tree is left as it was. Only the returned
    node may be read afterwards. Raises a :class:`SignatureError` subclass.
    """
    signatures = list(element.iterchildren(_SIGNATURE))
    if not signatures:
        raise UnsignedError(f"The {what} is not signed.")
    if len(signatures) > 1:
        raise SignatureError(f"The {what} carries more than one signature.")
    signature = signatures[0]
    reference = check_signature_policy(signature, allow_sha1=allow_sha1, what=what)
    element_id = element.get("ID")
    if not element_id:
        raise MalformedError(f"The {what} has no ID attribute.")
    if reference.get("URI") != "#" + element_id:
        raise SignatureError(
            f"The {what} signature does not cover the {what} that carries it (signature wrapping?).",
            expected="#" + element_id,
            received=reference.get("URI"),
        )
    profile = check_profile(signature, reference, what=what)
    _check_unique_id(element, element_id, what)
    signed_info_c14n = _c14n(profile.signed_info, None)

    ring = _ring(certificates)
    # The KeyInfo hint only orders a ring of several certificates (and names
    # the culprit in an error); a single pinned certificate needs no lookup.
    hint = _message_certificate(signature, _ring_b64(certificates)) if len(ring) > 1 else None
    ordered = sorted(ring, key=lambda pinned: pinned.der != hint)  # Stable: hint first, then ring order.
    expired = []
    for pinned in ordered:
        # Like signxml, a configured certificate is only used inside its validity period.
        if not pinned.cert.not_valid_before_utc <= now <= pinned.cert.not_valid_after_utc:
            expired.append(pinned.der)
            continue
        key = pinned.key
        if _signature_ok(key, profile.kind, profile.signature_hash, profile.signature_value, signed_info_c14n):
            assert key is not None
            break
    else:
        hint = _message_certificate(signature, _ring_b64(certificates))
        expected = ", ".join(fingerprint(pinned.der) for pinned in ring)
        received = fingerprint(hint) if hint else "no certificate in KeyInfo"
        # An out-of-validity certificate is refused before the signature is
        # checked, so "expired" is only certain when the message names that
        # certificate, or when it names none and no other certificate is left
        # to blame. A message naming a certificate outside the ring was signed
        # by another key (a different IdP, or a rollover not configured yet):
        # that is the finding, whatever the state of the configured ones.
        if expired and (hint in expired or (hint is None and len(expired) == len(ring))):
            raise CertificateExpiredError(
                f"The {what} is signed by a configured certificate that is expired or not yet valid.",
                expected="a currently valid certificate",
                received=", ".join(fingerprint(d) for d in expired),
            )
        also = "; a configured certificate is also expired or not yet valid" if expired else ""
        raise CertificateUntrustedError(
            f"The {what} signature does not verify with any configured IdP certificate{also}.",
            expected=expected,
            received=received,
        )
    _check_key_info(signature, key, pinned.spki, what)

    # SignedInfo is authentic; now the element it references, as SignedInfo says.
    signed_bytes, signed = _c14n_without(element, signature, profile.reference_prefixes)
    digest = hashes.Hash(profile.digest_hash())
    digest.update(signed_bytes)
    if not hmac.compare_digest(digest.finalize(), profile.digest_value):
        raise SignatureError(f"The signed {what} was altered after signing (digest mismatch).")
    if signed is None:
        try:
            signed = etree.fromstring(signed_bytes, parser=hardened_parser())
        except etree.XMLSyntaxError:  # Canonical XML of a parsed tree always parses; kept as a typed error.
            raise MalformedError(f"The signed {what} could not be re-read for verification.") from None
    if signed.tag != element.tag or signed.get("ID") != element_id:
        raise SignatureError(f"The {what} signature covers a different element (signature wrapping).")
    return signed


def sign_element(
    element: etree._Element,
    key_pair: KeyPair,
    *,
    signature_method: SignatureMethod | None = None,
    digest: DigestAlgorithm = DigestAlgorithm.SHA256,
) -> etree._Element:
    """Return a signed copy of ``element`` (enveloped, exclusive C14N, SAML core §5.4).

    The ``ds:Signature`` goes right after the ``Issuer`` child, where the SAML
    schema puts it. Used by the built-in IdP and for POST-binding requests.
    """
    element_id = element.get("ID")
    if not element_id:
        raise ValueError("element to sign has no ID")
    key = load_private_key(key_pair.private_key_pem)
    if signature_method is None:
        is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
        signature_method = SignatureMethod.ECDSA_SHA256 if is_ec else SignatureMethod.RSA_SHA256
    copy = etree.fromstring(etree.tostring(element), parser=hardened_parser())
    placeholder = etree.Element(q(DS, "Signature"), nsmap={"ds": DS}, Id="placeholder")
    issuer = copy.find(q(SAML, "Issuer"))
    copy.insert(copy.index(issuer) + 1 if issuer is not None else 0, placeholder)
    signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=signature_method,
        digest_algorithm=digest,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    signed: etree._Element = signer.sign(
        copy,
        key=key,  # type: ignore[arg-type]
        cert=key_pair.certificate_pem,
        reference_uri="#" + element_id,
        id_attribute="ID",
    )
    return signed
