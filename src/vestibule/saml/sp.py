"""This service provider's own identity for one connection (SAML metadata §2.4.4).

Key rotation is first class: a *next* signing certificate and a *next*
encryption key pair are published in our metadata before use, so IdPs can
pick them up ahead of the switch. Decryption tries the current encryption key,
then the next one, because an IdP may begin encrypting to a newly published
certificate at any time.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization

from .errors import SamlSettingsError
from .keys import load_certificate, load_private_key, normalize_certificate

_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def _public_der(obj: object) -> bytes:
    public = obj.public_key()  # type: ignore[attr-defined]
    der: bytes = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


@dataclass(frozen=True)
class KeyPair:
    """A PEM private key and its PEM certificate; construction checks they match."""

    private_key_pem: str
    certificate_pem: str

    def __post_init__(self) -> None:
        try:
            key = load_private_key(self.private_key_pem)
            cert = load_certificate(self.certificate_pem)
        except (ValueError, TypeError):
            raise SamlSettingsError("key_pair", "private key or certificate is not valid PEM.") from None
        if _public_der(key) != _public_der(cert):
            raise SamlSettingsError("key_pair", "the private key does not match the certificate.")
        object.__setattr__(self, "certificate_pem", normalize_certificate(self.certificate_pem))

    def __repr__(self) -> str:  # Never print key material.
        return "KeyPair(<redacted>)"


@dataclass(frozen=True)
class ServiceProvider:
    """Vestibule as SP for one connection."""

    entity_id: str
    acs_url: str
    metadata_url: str
    signing: KeyPair | None = None
    """Signs AuthnRequests when the connection's settings ask for it."""
    encryption: KeyPair | None = None
    """Decrypts EncryptedAssertion; its certificate is published for encryption."""
    next_signing_certificate: str | None = None
    """Published as a second signing key before the switch."""
    next_encryption: KeyPair | None = None
    """Published and already accepted for decryption before the switch."""

    def __post_init__(self) -> None:
        if not self.entity_id or len(self.entity_id) > 1024:
            raise SamlSettingsError("entity_id", "must be 1 to 1024 characters.")
        for name in ("acs_url", "metadata_url"):
            value = getattr(self, name)
            parts = urlsplit(value)
            ok = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
            if not ok or not parts.hostname:
                raise SamlSettingsError(name, "must be an absolute https:// URL.", received=value)
        if self.next_signing_certificate is not None:
            try:
                pem = normalize_certificate(self.next_signing_certificate)
            except ValueError:
                raise SamlSettingsError("next_signing_certificate", "is not a PEM certificate.") from None
            object.__setattr__(self, "next_signing_certificate", pem)

    @property
    def decryption_keys(self) -> tuple[KeyPair, ...]:
        return tuple(k for k in (self.encryption, self.next_encryption) if k is not None)
