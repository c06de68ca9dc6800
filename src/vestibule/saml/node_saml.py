"""SAML settings written for node-saml / passport-saml, imported as Vestibule's (seed 001).

Seed 001's system keeps each provider's "SAML settings" as the JSON options
object of node-saml (``@node-saml/node-saml``, formerly passport-saml's
``saml.js``): ``entryPoint``, ``idpIssuer``, ``cert``, ``identifierFormat``…
An administrator moving a provider to Vestibule pastes that object; this
module translates it into the keys of :class:`~vestibule.saml.settings.SamlSettings`
(whose ``from_dict`` then validates the merged result).

The two vocabularies describe different things in places, so the translation
is not a rename:

* node-saml's ``issuer`` is the *service provider's* own entity ID (sent in
  the AuthnRequest), not the identity provider's. The IdP's entity ID, which
  Vestibule pins and compares with every Response's Issuer (SAML core §2.2.5,
  profiles §4.1.4.2), is node-saml's optional ``idpIssuer``. Vestibule has
  its own SP entity ID and ACS URL per connection, so ``issuer``,
  ``callbackUrl`` and ``audience`` are reported, never imported.
* Private keys (``privateKey``, ``decryptionPvk``) are the old SP's. They
  are not imported: Vestibule signs and decrypts with the connection's own
  keys, published in its SP metadata. A ``privateKey`` does say the IdP
  expected signed AuthnRequests, so ``sign_authn_requests`` is turned on.
* Options that would loosen validation (``acceptedClockSkewMs: -1``, which
  turns time checks off; both signature requirements off) are refused; ones
  whose looser setting Vestibule does not offer this way
  (``validateInResponseTo``, ``audience: false``) are reported as not applied.
* Keys absent from the document are left out of the result, so a partial
  document changes only what it names (the caller merges it over the stored
  settings) and absent keys keep Vestibule's defaults, not node-saml's.

Errors are :class:`~vestibule.saml.errors.SamlSettingsError` naming the
node-saml key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import SamlSettingsError
from .settings import MAX_CLOCK_SKEW_SECONDS, UNSPECIFIED

__all__ = ["NODE_KEY_FOR", "Translation", "is_node_saml", "key_names", "translate"]

# Keys that exist only in node-saml's vocabulary; one of them marks a document as node-saml's.
# ``identifierFormat`` is shared: Vestibule's own settings accept it as an alias.
_IMPORTED = {
    "entryPoint": "sso_url",
    "idpIssuer": "idp_entity_id",
    "cert": "certificates",
    "idpCert": "certificates",
    "wantAssertionsSigned": "want_assertions_signed",
    "wantAuthnResponseSigned": "want_response_signed",
    "acceptedClockSkewMs": "clock_skew_seconds",
    "authnRequestBinding": "sso_binding",
}
_SHARED = {"identifierFormat": "name_id_format"}

# The old service provider's own identity and endpoints: Vestibule has its own per connection.
_SP_OWN = ("issuer", "callbackUrl", "path", "protocol", "host", "audience", "logoutCallbackUrl")
# Its keys: never imported, whatever their value.
_SP_KEYS = ("privateKey", "privateCert", "signingCert", "publicCert", "decryptionPvk", "decryptionCert")
# Request and metadata cosmetics Vestibule decides itself.
_NOT_USED = (
    "additionalAuthorizeParams", "additionalLogoutParams", "additionalParams", "allowCreate",
    "attributeConsumingServiceIndex", "authnContext", "digestAlgorithm", "disableRequestAcsUrl",
    "disableRequestedAuthnContext", "forceAuthn", "logoutUrl", "maxAssertionAgeMs", "metadataContactPerson",
    "metadataOrganization", "name", "passReqToCallback", "passive", "providerName", "racComparison",
    "requestIdExpirationPeriodMs", "samlAuthnRequestExtensions", "samlLogoutRequestExtensions", "scoping",
    "signMetadata", "signatureAlgorithm", "skipRequestCompression", "spNameQualifier", "xmlSignatureTransforms",
)  # fmt: skip
_VALIDATION = ("validateInResponseTo",)

NODE_SAML_KEYS = frozenset(_IMPORTED) | frozenset(_SHARED) | frozenset(_SP_OWN + _SP_KEYS + _NOT_USED + _VALIDATION)
_MARKERS = NODE_SAML_KEYS - frozenset(_SHARED)

#: The node-saml key to name when a translated Vestibule setting is found wrong.
NODE_KEY_FOR: Mapping[str, str] = {
    "sso_url": "entryPoint",
    "idp_entity_id": "idpIssuer",
    "certificates": "idpCert",
    "want_assertions_signed": "wantAssertionsSigned",
    "want_response_signed": "wantAuthnResponseSigned",
    "clock_skew_seconds": "acceptedClockSkewMs",
    "sso_binding": "authnRequestBinding",
    "name_id_format": "identifierFormat",
}

_BINDINGS = {
    "HTTP-Redirect": "redirect",
    "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect": "redirect",
    "HTTP-POST": "post",
    "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST": "post",
}
_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


@dataclass(frozen=True)
class Translation:
    """Vestibule settings keys from a node-saml document, and what was left out and why."""

    settings: dict[str, Any]
    """Only the keys the document set; merge over the stored settings, then validate."""

    notes: tuple[str, ...]
    """One sentence per key (or group of keys) not imported, for the administrator."""


def key_names(doc: Mapping[str, Any]) -> dict[str, str]:
    """Vestibule setting -> the node-saml key ``doc`` used for it (``cert`` or ``idpCert``…), for error messages."""
    names = dict(NODE_KEY_FOR)
    for key in doc:
        native = _IMPORTED.get(key) or _SHARED.get(key)
        if native is not None:
            names[native] = key
    return names


def is_node_saml(doc: Mapping[str, Any]) -> bool:
    """Whether ``doc`` is written in node-saml's vocabulary (any key only node-saml has)."""
    return any(key in _MARKERS for key in doc)


def translate(doc: Mapping[str, Any], *, vestibule_keys: frozenset[str] = frozenset()) -> Translation:
    """Translate a node-saml options object; raise :class:`SamlSettingsError` naming the key at fault.

    ``vestibule_keys`` are the names of Vestibule's own settings: a document
    mixing both vocabularies is refused, since the same setting could be
    given twice under two names with different values.
    """
    if not isinstance(doc, Mapping):
        raise SamlSettingsError("$", "SAML settings must be a JSON object.")
    mixed = sorted(k for k in doc if k in vestibule_keys and k not in _SHARED)
    if mixed:
        raise SamlSettingsError(
            mixed[0],
            "is a Vestibule setting in a node-saml document; send one format at a time "
            f"(node-saml keys here: {', '.join(sorted(k for k in doc if k in _MARKERS))}).",
        )
    unknown = sorted(k for k in doc if k not in NODE_SAML_KEYS)
    if unknown:
        raise SamlSettingsError(unknown[0], "is neither a node-saml option nor a Vestibule SAML setting.")
    if "cert" in doc and "idpCert" in doc and doc["cert"] is not None and doc["idpCert"] is not None:
        raise SamlSettingsError("cert", "duplicates idpCert (node-saml 5 renamed cert to idpCert); send one.")

    out: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in doc.items():
        if value is None and key != "identifierFormat":
            continue  # node-saml reads null as "not set".
        if key in ("entryPoint", "idpIssuer"):
            out[_IMPORTED[key]] = _string(key, value)
        elif key in ("cert", "idpCert"):
            out["certificates"] = _certificates(key, value)
        elif key in ("wantAssertionsSigned", "wantAuthnResponseSigned"):
            out[_IMPORTED[key]] = _boolean(key, value)
        elif key == "acceptedClockSkewMs":
            out["clock_skew_seconds"] = _skew(value)
        elif key == "authnRequestBinding":
            binding = _BINDINGS.get(_string(key, value))
            if binding is None:
                raise SamlSettingsError(key, "must be 'HTTP-Redirect' or 'HTTP-POST'.", received=str(value))
            out["sso_binding"] = binding
        elif key == "identifierFormat":
            # null asks node-saml to send no NameIDPolicy Format: the IdP chooses, i.e. unspecified.
            out["name_id_format"] = UNSPECIFIED if value is None else _string(key, value)
        elif key == "privateKey" or key == "privateCert":
            out["sign_authn_requests"] = True
    if out.get("want_assertions_signed") is False and out.get("want_response_signed") is False:
        raise SamlSettingsError(
            "wantAssertionsSigned",
            "and wantAuthnResponseSigned are both false: Vestibule needs the Response or the Assertion signed.",
        )
    notes.extend(_notes(doc))
    return Translation(settings=out, notes=tuple(notes))


def _notes(doc: Mapping[str, Any]) -> list[str]:
    notes: list[str] = []
    present = [k for k in doc if doc[k] is not None]
    if "issuer" in present and "idpIssuer" not in present:
        notes.append(
            "issuer is the old service provider's own entity ID, not the identity provider's: Vestibule uses "
            "its connection's sp_entity_id; the IdP's entity ID is node-saml's idpIssuer (or idp_entity_id)"
        )
    sp_own = [
        k for k in _SP_OWN
        if k in present and not (k == "issuer" and "idpIssuer" not in present) and doc[k] is not False
    ]  # fmt: skip
    if sp_own:
        notes.append(
            f"{', '.join(sp_own)} not imported: they describe the old service provider; give the identity "
            "provider this connection's sp_entity_id and acs_url (or its metadata_url) instead"
        )
    keys = [k for k in _SP_KEYS if k in present]
    if keys:
        notes.append(
            f"{', '.join(keys)} not imported: Vestibule signs and decrypts with this connection's own keys, "
            "published at its metadata_url"
            + ("; sign_authn_requests was turned on because the old service provider signed its requests"
               if any(k in present for k in ("privateKey", "privateCert")) else "")
        )  # fmt: skip
    unused = [k for k in _NOT_USED if k in present]
    if unused:
        notes.append(f"{', '.join(unused)} not used by Vestibule (it builds its requests itself)")
    if "validateInResponseTo" in present and doc["validateInResponseTo"] not in ("always", True):
        notes.append(
            "validateInResponseTo not applied: Vestibule always binds a Response to its request, and accepts "
            "unsolicited (IdP-initiated) ones only with allow_idp_initiated"
        )
    if doc.get("audience") is False:
        notes.append("audience: false not applied: Vestibule always checks the Audience")
    return notes


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SamlSettingsError(key, "must be a non-empty string.")
    return value.strip()


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SamlSettingsError(key, "must be true or false.", received=str(value))
    return value


def _certificates(key: str, value: Any) -> list[str]:
    """node-saml takes one certificate or a list, each PEM or bare base64; one string may hold several PEMs."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
        raise SamlSettingsError(key, "must be a certificate (PEM or base64) or a list of them.")
    result: list[str] = []
    for item in items:
        blocks = _PEM_BLOCK.findall(item)
        result.extend(blocks if len(blocks) > 1 else [item.strip()])
    return result


def _skew(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SamlSettingsError("acceptedClockSkewMs", "must be a whole number of milliseconds.", received=str(value))
    if value < 0:
        # node-saml's -1 switches the NotBefore/NotOnOrAfter checks off altogether.
        raise SamlSettingsError(
            "acceptedClockSkewMs",
            f"cannot turn time checks off (-1) in Vestibule; give a leeway of 0 to {MAX_CLOCK_SKEW_SECONDS * 1000} ms.",
            received=str(value),
        )
    # Whole seconds, rounded up so the imported leeway is never tighter than the old one.
    seconds = math.ceil(value / 1000)
    if seconds > MAX_CLOCK_SKEW_SECONDS:
        raise SamlSettingsError(
            "acceptedClockSkewMs",
            f"must be at most {MAX_CLOCK_SKEW_SECONDS * 1000} ms: a longer leeway stretches every assertion's "
            "lifetime and the replay window with it.",
            received=str(value),
        )
    return seconds
