"""XML Signature verification for SAML messages (SAML core §5, xmldsig-core1 §3.2).

Built on signxml's :class:`~signxml.XMLVerifier` (lxml + cryptography), with a
policy layer in front of it:

* **Pinned keys.** Only the connection's configured certificates are tried, in
  ring order; the KeyInfo certificate in the message is used solely as a hint
  to try the matching configured certificate first. It is never trusted.
* **Profile of SAML core §5.4.** Exactly one Reference, whose URI is ``#`` +
  the ID of the element that carries the signature (enveloped); transforms
  limited to enveloped-signature and exclusive C14N *without comments*.
  C14N *with comments* is refused: it makes comments part of the signed
  content and lets a comment split a signed NameID into text nodes that naive
  ``.text`` readers truncate. Any other transform (XPath, XSLT, base64, …) is
  refused before any cryptography runs, so an XSLT is never executed.
* **Algorithm allow-list.** RSA-SHA256/384/512 and ECDSA-SHA256/384/512 with
  SHA-256/384/512 digests; SHA-1 variants only with ``allow_sha1``.
* **See what is signed.** The caller consumes only the node returned here —
  signxml's re-parse of the canonicalised signed bytes — never the input tree.
  That, plus the reference-URI check, defeats XML signature wrapping (XSW).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from datetime import datetime
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConstructionMethod,
    SignatureMethod,
)
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature
from signxml.signer import XMLSigner
from signxml.verifier import SignatureConfiguration, XMLVerifier

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

_STRONG_SIGNATURES = frozenset({
    SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512,
    SignatureMethod.ECDSA_SHA256, SignatureMethod.ECDSA_SHA384, SignatureMethod.ECDSA_SHA512,
})  # fmt: skip
_SHA1_SIGNATURES = frozenset({SignatureMethod.RSA_SHA1, SignatureMethod.ECDSA_SHA1})
_STRONG_DIGESTS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})
_SHA1_DIGESTS = frozenset({DigestAlgorithm.SHA1})


def signature_methods(allow_sha1: bool) -> frozenset[str]:
    methods = _STRONG_SIGNATURES | (_SHA1_SIGNATURES if allow_sha1 else frozenset())
    return frozenset(m.value for m in methods)


def digest_methods(allow_sha1: bool) -> frozenset[str]:
    digests = _STRONG_DIGESTS | (_SHA1_DIGESTS if allow_sha1 else frozenset())
    return frozenset(d.value for d in digests)


@lru_cache(maxsize=2)
def _config(allow_sha1: bool) -> SignatureConfiguration:
    return SignatureConfiguration(
        require_x509=True,
        location="./",  # The signature must be a direct child of the element checked.
        expect_references=1,
        signature_methods=_STRONG_SIGNATURES | (_SHA1_SIGNATURES if allow_sha1 else frozenset()),
        digest_algorithms=_STRONG_DIGESTS | (_SHA1_DIGESTS if allow_sha1 else frozenset()),
        default_reference_c14n_method=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )


@lru_cache(maxsize=256)
def _ring(certificates: tuple[str, ...]) -> tuple[tuple[bytes, x509.Certificate], ...]:
    ring = []
    for pem in certificates:
        cert = load_certificate(pem)
        ring.append((cert.public_bytes(Encoding.DER), cert))
    return tuple(ring)


@lru_cache(maxsize=256)
def _ring_b64(certificates: tuple[str, ...]) -> dict[str, bytes]:
    """The ring's certificates as bare base64 (the KeyInfo form) -> DER, for the hint lookup."""
    return {base64.b64encode(der).decode("ascii"): der for der, _ in _ring(certificates)}


def _one(parent: etree._Element, local: str, what: str) -> etree._Element:
    found = parent.findall(q(DS, local))
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
    references = signed_info.findall(q(DS, "Reference"))
    if len(references) != 1:
        raise SignatureError(f"The {what} signature must have exactly one Reference.", received=str(len(references)))
    reference = references[0]
    transforms = reference.findall(f"{q(DS, 'Transforms')}/{q(DS, 'Transform')}")
    algorithms = [t.get("Algorithm") for t in transforms]
    for transform, algorithm in zip(transforms, algorithms, strict=True):
        if algorithm not in ALLOWED_TRANSFORMS:
            raise TransformNotAllowedError(
                f"The {what} signature uses a transform that is not allowed.",
                expected="enveloped-signature, exclusive C14N (without comments)",
                received=algorithm,
            )
        for param in transform:
            if param.tag != "{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces":
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
    if signature.find(q(DS, "Object")) is not None:
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


def verify_enveloped(
    element: etree._Element,
    *,
    certificates: tuple[str, ...],
    allow_sha1: bool,
    now: datetime,
    what: str,
    document: bytes | None = None,
) -> etree._Element:
    """Verify the enveloped signature of ``element``; return the verified node.

    ``element`` is serialised and verified on its own, so nothing outside it can
    influence reference resolution. Raises a :class:`SignatureError` subclass.

    ``document`` may carry the exact bytes ``element`` was parsed from when it
    is the document root (the decoded SAMLResponse): signxml then parses those
    instead of a re-serialisation of the same tree, one copy fewer. Both were
    already accepted by the hardened parser, so nothing else changes.
    """
    signatures = element.findall(q(DS, "Signature"))
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

    ring = _ring(certificates)
    hint = _message_certificate(signature, _ring_b64(certificates))
    ordered = sorted(ring, key=lambda entry: entry[0] != hint)  # Stable: hint first, then ring order.
    config = replace(_config(allow_sha1), verification_time=now)
    # signxml copies an element by serialising it, and lxml's tostring() also
    # writes the element's *tail* (text after its end tag, still inside the
    # parent), which then fails to parse as a document. Serialise once here,
    # without the tail, so such junk can neither crash verification nor be
    # anywhere near what is checked.
    data = (
        document if document is not None and element.getparent() is None else etree.tostring(element, with_tail=False)
    )
    expired = []
    for der, cert in ordered:
        try:
            result = XMLVerifier().verify(
                data,
                x509_cert=cert,
                expect_config=config,
                id_attribute="ID",
                parser=hardened_parser(),
            )
        except InvalidDigest:
            raise SignatureError(f"The signed {what} was altered after signing (digest mismatch).") from None
        except InvalidCertificate:
            expired.append(der)
            continue
        except InvalidSignature:
            continue  # Not this key; try the next one in the ring.
        except InvalidInput as exc:
            raise SignatureError(f"The {what} signature is invalid: {exc}") from None
        except etree.DocumentInvalid:
            raise SignatureError(f"The {what} ds:Signature element is not schema-valid.") from None
        except etree.XMLSyntaxError:
            raise MalformedError(f"The signed {what} could not be re-read for verification.") from None
        break
    else:
        expected = ", ".join(fingerprint(der) for der, _ in ring)
        received = fingerprint(hint) if hint else "no certificate in KeyInfo"
        # signxml refuses an out-of-validity certificate before checking the
        # signature, so "expired" is only certain when the message names that
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

    if isinstance(result, list) or result.signed_xml is None:
        raise SignatureError(f"The {what} signature did not yield one signed element.")
    signed = result.signed_xml
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
