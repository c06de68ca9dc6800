"""The one hardened XML choke point, and small helpers over parsed SAML XML.

Every byte of XML that reaches :mod:`vestibule.saml` from outside (responses,
AuthnRequests, metadata, decrypted assertions) goes through :func:`parse_xml`:

* size limit before parsing (SAML bindings §3.5.4 gives no bound; we do);
* no DOCTYPE at all: SAML core §1.3 / profiles §4.1.4.3 forbid DTDs in
  protocol messages, so a DOCTYPE is refused instead of "safely ignored"
  (this removes XXE and billion-laughs entirely);
* no entity resolution, no network, no huge-tree mode;
* parsers are per thread (lxml serialises a shared parser).

Text extraction (:func:`simple_text`) refuses mixed content: a NameID or an
AttributeValue with child elements, comments or processing instructions is
malformed. The trees we consume are what :mod:`vestibule.saml.dsig` hands back:
exactly the nodes its exclusive C14N (comments excluded) digested, re-parsed
from those bytes whenever a comment was present, so a comment an attacker
slipped into a signed value is gone and the value is exactly what the IdP signed.
"""

from __future__ import annotations

import binascii
import re
import threading
from datetime import UTC, datetime

from lxml import etree

from .errors import DtdForbiddenError, MalformedError, TooLargeError

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {"samlp": SAMLP, "saml": SAML, "md": MD, "ds": DS, "xenc": XENC, "xenc11": XENC11}

#: Bound on the base64 ``SAMLResponse`` form value (characters).
MAX_SAML_RESPONSE_B64 = 256 * 1024
#: Bound on a decoded protocol message.
MAX_MESSAGE_BYTES = 192 * 1024
#: Bound on IdP metadata (one entity, or a small EntitiesDescriptor).
MAX_METADATA_BYTES = 2 * 1024 * 1024

_local = threading.local()
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_B64_WS = re.compile(r"[\r\n\t ]+")


def q(ns: str, local: str) -> str:
    """Clark notation tag ``{ns}local``."""
    return f"{{{ns}}}{local}"


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_blank_text=False,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


def hardened_parser() -> etree.XMLParser:
    """The per-thread hardened parser (also used by the signature verifier)."""
    return _parser()


def parse_xml(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES, what: str = "message") -> etree._Element:
    """Parse untrusted XML bytes; raise :class:`MalformedError` subclasses."""
    if len(data) > max_bytes:
        raise TooLargeError(
            f"The {what} is larger than allowed.",
            expected=f"at most {max_bytes} bytes",
            received=f"{len(data)} bytes",
        )
    if _DOCTYPE.search(data):
        raise DtdForbiddenError(f"The {what} contains a DOCTYPE declaration.")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise MalformedError(f"The {what} is not well-formed XML: {exc.msg}") from None
    docinfo = root.getroottree().docinfo
    # The byte scan above misses DOCTYPEs in non-ASCII-compatible encodings.
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise DtdForbiddenError(f"The {what} contains a DOCTYPE declaration.")
    for _entity in root.iter(etree.Entity):
        raise DtdForbiddenError(f"The {what} contains an entity reference.")
    return root


def decode_post_value(value: str, *, max_chars: int = MAX_SAML_RESPONSE_B64) -> bytes:
    """Decode the base64 ``SAMLResponse`` of the HTTP-POST binding (§3.5.4)."""
    if len(value) > max_chars:
        raise TooLargeError(
            "The SAMLResponse is larger than allowed.",
            expected=f"at most {max_chars} characters",
            received=f"{len(value)} characters",
        )
    # strict_mode is b64decode(validate=True) checked in C instead of by a
    # regular expression over the whole value (Python 3.11's b64decode).
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        pass
    # Some IdPs wrap the base64 at 64/76 columns; strip that only when needed.
    try:
        return binascii.a2b_base64(_B64_WS.sub("", value), strict_mode=True)
    except (binascii.Error, ValueError):
        raise MalformedError("The SAMLResponse is not valid base64.") from None


def simple_text(el: etree._Element, what: str) -> str:
    """Exact text of an element that must hold text only (no mixed content).

    Whitespace is kept as sent: trimming could silently turn one identity into
    another, so comparisons and the caller see the value the IdP signed.
    """
    if len(el):
        raise MalformedError(f"{what} must contain only text, but has child nodes.", received=what)
    return el.text or ""


def child(el: etree._Element, ns: str, local: str) -> etree._Element | None:
    """The only direct child ``{ns}local`` of ``el``; more than one is malformed."""
    found = list(el.iterchildren(q(ns, local)))  # findall(tag) without ElementPath's overhead.
    if len(found) > 1:
        raise MalformedError(f"More than one {local} in {etree.QName(el).localname}.")
    return found[0] if found else None


def required_child(el: etree._Element, ns: str, local: str) -> etree._Element:
    found = child(el, ns, local)
    if found is None:
        raise MalformedError(f"{etree.QName(el).localname} has no {local}.", expected=local)
    return found


def parse_instant(value: str, what: str) -> datetime:
    """Parse an ``xs:dateTime`` (SAML core §1.3.3: UTC, 'Z'); naive means UTC."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedError(f"{what} is not a valid xs:dateTime.", received=value) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_instant(value: datetime) -> str:
    """Render an instant as SAML wants it: UTC, second precision, 'Z'."""
    if value.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def optional_instant(el: etree._Element, attr: str, what: str) -> datetime | None:
    raw = el.get(attr)
    return None if raw is None else parse_instant(raw, what)
