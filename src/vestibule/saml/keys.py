"""Certificate and key handling shared by signing, verification and metadata.

Certificates are pinned per connection (profiles §4.1.4.3 requires the SP to
establish trust in the IdP's key out of band, normally via metadata, SAML
metadata §2.4.1.1). Parsed objects are cached by PEM text so repeated
validations do not re-parse the same certificate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\s*(?P<body>[A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----")
_WS = re.compile(r"\s+")


def certificate_der(value: str) -> bytes:
    """DER bytes of a certificate given as PEM or as bare base64 (metadata form).

    Raises ``ValueError`` when the value is not one certificate.
    """
    match = _PEM_CERT.search(value)
    body = match.group("body") if match else value
    if match and _PEM_CERT.search(value, match.end()):
        raise ValueError("more than one certificate in one value")
    try:
        der = base64.b64decode(_WS.sub("", body), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if not der:
        raise ValueError("empty certificate")
    return der


@lru_cache(maxsize=512)
def _load_der(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def load_certificate(value: str) -> x509.Certificate:
    """Parse (and cache) a certificate; raises ``ValueError`` if unusable."""
    return _load_der(certificate_der(value))


def normalize_certificate(value: str) -> str:
    """Canonical PEM text for a certificate given as PEM or bare base64."""
    cert = load_certificate(value)
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificate_b64(value: str) -> str:
    """Bare base64 DER, as ``ds:X509Certificate`` wants it."""
    return base64.b64encode(certificate_der(value)).decode("ascii")


def fingerprint(der: bytes) -> str:
    """SHA-256 fingerprint ``AB:CD:…`` for admin-facing diagnostics."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


@lru_cache(maxsize=64)
def load_private_key(pem: str) -> PrivateKeyTypes:
    """Parse (and cache) an unencrypted PEM private key."""
    return serialization.load_pem_private_key(pem.encode("ascii"), password=None)
