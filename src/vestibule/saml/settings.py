"""Per-connection SAML settings: the "SAML settings JSON" document (seed 001).

:class:`SamlSettings` is the trust and policy a connection holds about its
identity provider (SAML metadata §2.4.3 IDPSSODescriptor gives most of it).
It is built at the boundary from the stored JSON with :meth:`SamlSettings.from_dict`,
which is strict: unknown keys, wrong types and out-of-range values raise
:class:`~vestibule.saml.errors.SamlSettingsError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography import x509

from .errors import SamlSettingsError
from .keys import certificate_der, load_certificate, normalize_certificate

EMAIL_ADDRESS = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"

Binding = Literal["redirect", "post"]

#: Upper bound on ``clock_skew_seconds``: more would stretch every assertion's
#: lifetime and with it the replay window.
MAX_CLOCK_SKEW_SECONDS = 600
MAX_CERTIFICATES = 4
_ALIASES = {"identifierFormat": "name_id_format"}
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def _check_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname in _LOOPBACK:
        return value  # Local test identity providers only.
    raise SamlSettingsError(name, "must be an https:// URL.", received=value)


@dataclass(frozen=True)
class SamlSettings:
    """Trust in one identity provider, plus this connection's SAML policy."""

    idp_entity_id: str
    """The IdP's entityID; Response and Assertion ``Issuer`` must equal it exactly."""

    sso_url: str
    """The IdP's SingleSignOnService location for our AuthnRequest."""

    certificates: tuple[str, ...]
    """Pinned IdP signing certificates (PEM), an ordered ring for rollover.

    Risk: any key listed here can sign in any user of the connection's domains.
    Remove a retired certificate once the IdP has switched."""

    sso_binding: Binding = "redirect"
    """Binding for the AuthnRequest: ``redirect`` (bindings §3.4) or ``post`` (§3.5)."""

    name_id_format: str = EMAIL_ADDRESS
    """NameIDFormat asked for in the request and expected in the assertion."""

    want_assertions_signed: bool = False
    """Opt-in: require the Assertion itself to be signed.

    Off by default because either signature is enough on its own (profiles
    §4.1.4.5 as amended by the SAML 2.0 errata allows either): a Response
    signed as a whole by a pinned key covers the assertion inside it, and only
    that verified copy is consumed. Keycloak signs the document, not the
    assertion, by default; Okta, Entra ID and Google sign the assertion. Whatever this says, a response is refused unless
    at least one signature covers the consumed assertion. Turn on when the IdP
    signs assertions, so that a response whose assertion is not is refused."""

    want_response_signed: bool = False
    """Opt-in: require the Response element to be signed (as well)."""

    sign_authn_requests: bool = False
    """Sign our AuthnRequests (needs an SP signing key)."""

    want_assertions_encrypted: bool = False
    """Refuse assertions in clear text (needs an SP encryption key)."""

    allow_sha1: bool = False
    """Accept RSA-SHA1 / SHA-1 digests. Risk: SHA-1 collisions are practical;
    enable only for a legacy IdP that cannot be upgraded."""

    allow_aes_cbc: bool = False
    """Accept AES-CBC encrypted assertions. Risk: XML Encryption in CBC mode has
    a known padding/format oracle (Jager & Somorovsky, 2011); AES-GCM is safe."""

    allow_idp_initiated: bool = False
    """Accept unsolicited (IdP-initiated) responses. Risk: no request binding, so
    a stolen response can be replayed into another browser (login CSRF) within
    its lifetime; replay protection still applies."""

    clock_skew_seconds: int = 120
    """Leeway on NotBefore/NotOnOrAfter, bounded by :data:`MAX_CLOCK_SKEW_SECONDS`."""

    def __post_init__(self) -> None:
        if not isinstance(self.idp_entity_id, str) or not self.idp_entity_id:
            raise SamlSettingsError("idp_entity_id", "is required.")
        if len(self.idp_entity_id) > 1024:  # SAML core §8.3.6.
            raise SamlSettingsError("idp_entity_id", "must be at most 1024 characters.")
        if not isinstance(self.sso_url, str):
            raise SamlSettingsError("sso_url", "must be a string.")
        _check_url("sso_url", self.sso_url)
        if self.sso_binding not in ("redirect", "post"):
            raise SamlSettingsError("sso_binding", "must be 'redirect' or 'post'.", received=str(self.sso_binding))
        if not isinstance(self.certificates, tuple) or not self.certificates:
            raise SamlSettingsError("certificates", "at least one IdP signing certificate is required.")
        if len(self.certificates) > MAX_CERTIFICATES:
            raise SamlSettingsError("certificates", f"at most {MAX_CERTIFICATES} certificates.")
        seen: set[bytes] = set()
        for index, pem in enumerate(self.certificates):
            try:
                der = certificate_der(pem) if isinstance(pem, str) else b""
                load_certificate(pem)
            except ValueError:
                raise SamlSettingsError(f"certificates[{index}]", "is not a PEM X.509 certificate.") from None
            if der in seen:
                raise SamlSettingsError(f"certificates[{index}]", "is listed twice.")
            seen.add(der)
        if not isinstance(self.name_id_format, str) or not self.name_id_format.startswith("urn:"):
            raise SamlSettingsError("name_id_format", "must be a NameID format URN.", received=str(self.name_id_format))
        for f in fields(self):
            if f.type == "bool" and not isinstance(getattr(self, f.name), bool):
                raise SamlSettingsError(f.name, "must be true or false.")
        skew = self.clock_skew_seconds
        if isinstance(skew, bool) or not isinstance(skew, int) or not 0 <= skew <= MAX_CLOCK_SKEW_SECONDS:
            raise SamlSettingsError(
                "clock_skew_seconds",
                f"must be an integer between 0 and {MAX_CLOCK_SKEW_SECONDS}.",
                received=str(skew),
            )

    @cached_property
    def trusted_certificates(self) -> tuple[x509.Certificate, ...]:
        """Parsed ring, in configured order (cached on this frozen object)."""
        return tuple(load_certificate(pem) for pem in self.certificates)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SamlSettings:
        """Build from the stored JSON document; strict about keys and types."""
        if not isinstance(data, Mapping):
            raise SamlSettingsError("$", "SAML settings must be a JSON object.")
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            name = _ALIASES.get(key, key)
            if name not in known:
                raise SamlSettingsError(str(key), "is not a known SAML setting.")
            if name in values:
                raise SamlSettingsError(str(key), f"duplicates {name}.")
            values[name] = value
        for required in ("idp_entity_id", "sso_url", "certificates"):
            if required not in values:
                raise SamlSettingsError(required, "is required.")
        certs = values["certificates"]
        if isinstance(certs, str):
            certs = [certs]
        if not isinstance(certs, list) or not all(isinstance(c, str) for c in certs):
            raise SamlSettingsError("certificates", "must be a list of PEM strings.")
        normalized = []
        for index, pem in enumerate(certs):
            try:
                normalized.append(normalize_certificate(pem))
            except ValueError:
                raise SamlSettingsError(f"certificates[{index}]", "is not a PEM X.509 certificate.") from None
        values["certificates"] = tuple(normalized)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document; ``from_dict(to_dict())`` returns an equal object."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["certificates"] = list(self.certificates)
        return out


def default_settings() -> dict[str, Any]:
    """The settings document shown for a brand-new (disabled) connection.

    It is deliberately incomplete: the IdP entity ID, SSO URL and certificate
    must be filled in (or generated from metadata) before the connection can
    be enabled, and ``SamlSettings.from_dict`` refuses it until then.
    """
    defaults = {f.name: f.default for f in fields(SamlSettings) if f.default is not MISSING}
    return {"idp_entity_id": "", "sso_url": "", "certificates": [], **defaults}
