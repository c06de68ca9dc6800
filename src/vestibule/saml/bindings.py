"""SAML bindings: HTTP-Redirect (bindings §3.4) and HTTP-POST (bindings §3.5).

* :func:`build_authn_request` — our AuthnRequest (core §3.4.1) over HTTP-Redirect:
  raw DEFLATE, base64, URL-encoding (§3.4.4.1), optionally signed over the
  exact octets ``SAMLRequest=…&RelayState=…&SigAlg=…`` with RSA-SHA256.
* :func:`build_authn_request_form` — the same request over HTTP-POST.
* :func:`decode_redirect` / :func:`verify_redirect_signature` — the receiving
  side, used by the built-in IdP (:mod:`vestibule.saml.idp`).
* :class:`PostForm` — the auto-submitting form of §3.5.4.

RelayState is an opaque reference chosen by the caller (the web layer keeps
the real state server-side); §3.4.3 / §3.5.3 bound it to 80 bytes.
"""

from __future__ import annotations

import base64
import binascii
import html
import secrets
import zlib
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, unquote_plus, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from .dsig import sign_element
from .errors import AlgorithmNotAllowedError, MalformedError, RequestError, SignatureError, TooLargeError
from .keys import load_certificate, load_private_key
from .settings import SamlSettings
from .sp import ServiceProvider
from .xml import SAML, SAMLP, format_instant, q

HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
_REDIRECT_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    RSA_SHA256: hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
}
MAX_RELAY_STATE_BYTES = 80
MAX_INFLATED_BYTES = 64 * 1024


def new_request_id() -> str:
    """A fresh message ID: an NCName with 160 random bits (core §1.3.4)."""
    return "_" + secrets.token_hex(20)


def check_relay_state(relay_state: str | None) -> None:
    if relay_state is not None and len(relay_state.encode("utf-8")) > MAX_RELAY_STATE_BYTES:
        raise RequestError(
            "RelayState must not exceed 80 bytes (bindings §3.4.3).",
            expected=f"at most {MAX_RELAY_STATE_BYTES} bytes",
            received=f"{len(relay_state.encode('utf-8'))} bytes",
        )


def authn_request_xml(sp: ServiceProvider, settings: SamlSettings, now: datetime, request_id: str) -> etree._Element:
    """The ``samlp:AuthnRequest`` element (core §3.4.1, profiles §4.1.4.1)."""
    request = etree.Element(
        q(SAMLP, "AuthnRequest"),
        nsmap={"samlp": SAMLP, "saml": SAML},
        ID=request_id,
        Version="2.0",
        IssueInstant=format_instant(now),
        Destination=settings.sso_url,
        AssertionConsumerServiceURL=sp.acs_url,
        ProtocolBinding=HTTP_POST,
    )
    etree.SubElement(request, q(SAML, "Issuer")).text = sp.entity_id
    etree.SubElement(request, q(SAMLP, "NameIDPolicy"), Format=settings.name_id_format, AllowCreate="true")
    return request


def _signing_key(sp: ServiceProvider) -> rsa.RSAPrivateKey:
    if sp.signing is None:
        raise RequestError("This connection signs AuthnRequests but the SP has no signing key.")
    key = load_private_key(sp.signing.private_key_pem)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise RequestError("Redirect-binding request signing needs an RSA SP key.")
    return key


def encode_redirect(
    xml: bytes,
    *,
    param: str,
    relay_state: str | None,
    sign_with: rsa.RSAPrivateKey | None,
) -> str:
    """The query string of an HTTP-Redirect message (bindings §3.4.4.1)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = base64.b64encode(deflater.compress(xml) + deflater.flush()).decode("ascii")
    parts = [f"{param}={quote(payload, safe='')}"]
    if relay_state is not None:
        parts.append(f"RelayState={quote(relay_state, safe='')}")
    if sign_with is not None:
        parts.append(f"SigAlg={quote(RSA_SHA256, safe='')}")
        signed = "&".join(parts).encode("ascii")
        signature = sign_with.sign(signed, padding.PKCS1v15(), hashes.SHA256())
        parts.append(f"Signature={quote(base64.b64encode(signature).decode('ascii'), safe='')}")
    return "&".join(parts)


def build_authn_request(
    sp: ServiceProvider, settings: SamlSettings, now: datetime, relay_state: str | None
) -> tuple[str, str]:
    """Return ``(redirect_url, request_id)`` for SP-initiated sign-in (HTTP-Redirect).

    The caller stores ``request_id`` server-side to pass it back as
    ``expected_request_id`` to :func:`~vestibule.saml.response.validate_response`.
    """
    if settings.sso_binding != "redirect":
        raise RequestError("This connection uses the HTTP-POST binding; use build_authn_request_form.")
    check_relay_state(relay_state)
    request_id = new_request_id()
    xml = etree.tostring(authn_request_xml(sp, settings, now, request_id))
    key = _signing_key(sp) if settings.sign_authn_requests else None
    query = encode_redirect(xml, param="SAMLRequest", relay_state=relay_state, sign_with=key)
    separator = "&" if urlsplit(settings.sso_url).query else "?"
    return settings.sso_url + separator + query, request_id


@dataclass(frozen=True)
class PostForm:
    """An HTTP-POST binding message: an auto-submitting HTML form (bindings §3.5.4)."""

    action: str
    fields: tuple[tuple[str, str], ...]

    def html(self) -> str:
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(n)}" value="{html.escape(v)}">' for n, v in self.fields
        )
        return (
            '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Signing in…</title></head>'
            '<body onload="document.forms[0].submit()">'
            f'<form method="post" action="{html.escape(self.action)}">{inputs}'
            '<noscript><button type="submit">Continue</button></noscript></form></body></html>'
        )


def post_form(action: str, param: str, xml: bytes, relay_state: str | None) -> PostForm:
    check_relay_state(relay_state)
    fields = [(param, base64.b64encode(xml).decode("ascii"))]
    if relay_state is not None:
        fields.append(("RelayState", relay_state))
    return PostForm(action=action, fields=tuple(fields))


def build_authn_request_form(
    sp: ServiceProvider, settings: SamlSettings, now: datetime, relay_state: str | None
) -> tuple[PostForm, str]:
    """Return ``(form, request_id)`` for the HTTP-POST binding (enveloped signature if asked)."""
    check_relay_state(relay_state)
    request_id = new_request_id()
    request = authn_request_xml(sp, settings, now, request_id)
    if settings.sign_authn_requests:
        _signing_key(sp)  # Raises when the SP has no (RSA) signing key.
        assert sp.signing is not None
        request = sign_element(request, sp.signing)
    return post_form(settings.sso_url, "SAMLRequest", etree.tostring(request), relay_state), request_id


@dataclass(frozen=True)
class RedirectMessage:
    """A decoded HTTP-Redirect message; ``signed_octets`` are as received (§3.4.4.1)."""

    xml: bytes
    relay_state: str | None
    sig_alg: str | None
    signature: bytes | None
    signed_octets: bytes


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(data, MAX_INFLATED_BYTES)
    except zlib.error:
        raise MalformedError("The redirect message is not valid DEFLATE data.") from None
    if inflater.unconsumed_tail:
        raise TooLargeError("The redirect message inflates beyond the size limit.")
    return out


def decode_redirect(query: str, *, param: str = "SAMLRequest") -> RedirectMessage:
    """Decode the query string of an HTTP-Redirect message without trusting it yet."""
    if len(query) > MAX_INFLATED_BYTES:
        raise TooLargeError("The redirect query string is too long.")
    raw: dict[str, str] = {}
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name in raw:
            raise MalformedError(f"Duplicate {name} parameter.")
        raw[name] = value
    if param not in raw:
        raise MalformedError(f"The query has no {param}.")
    try:
        compressed = base64.b64decode(unquote_plus(raw[param]), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedError(f"{param} is not base64.") from None
    octets = [f"{param}={raw[param]}"]
    if "RelayState" in raw:
        octets.append(f"RelayState={raw['RelayState']}")
    signature = None
    if "SigAlg" in raw:
        octets.append(f"SigAlg={raw['SigAlg']}")
        try:
            signature = base64.b64decode(unquote_plus(raw.get("Signature", "")), validate=True)
        except (binascii.Error, ValueError):
            raise MalformedError("Signature is not base64.") from None
    relay_state = unquote_plus(raw["RelayState"]) if "RelayState" in raw else None
    return RedirectMessage(
        xml=_inflate(compressed),
        relay_state=relay_state,
        sig_alg=unquote_plus(raw["SigAlg"]) if "SigAlg" in raw else None,
        signature=signature,
        signed_octets="&".join(octets).encode("ascii", "replace"),
    )


def verify_redirect_signature(message: RedirectMessage, certificate_pem: str) -> None:
    """Verify a redirect-binding signature with a pinned RSA certificate; raise on failure."""
    if message.sig_alg is None or not message.signature:
        raise SignatureError("The redirect message is not signed.")
    if message.sig_alg not in _REDIRECT_HASHES:
        raise AlgorithmNotAllowedError(expected=RSA_SHA256, received=message.sig_alg)
    public_key = load_certificate(certificate_pem).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SignatureError("Only RSA redirect signatures are supported.")
    try:
        public_key.verify(
            message.signature, message.signed_octets, padding.PKCS1v15(), _REDIRECT_HASHES[message.sig_alg]()
        )
    except InvalidSignature:
        raise SignatureError("The redirect-binding signature does not verify.") from None
