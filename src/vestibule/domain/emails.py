"""Email addresses as identities.

Vestibule compares emails normalized: Unicode NFC, trimmed, case-insensitive
(DESIGN "User"). Two different rules apply depending on who supplied the value:

* An address typed by a person or an administrator is *normalized*: surrounding
  whitespace is dropped and the address is put in NFC.
* An address asserted by an identity provider must already be canonical. It is
  refused when it is not, never cleaned up, because cleaning could turn it into
  somebody else's address (``" ceo@acme.com"`` is not ``ceo@acme.com``).

We lowercase with ``str.lower`` rather than ``str.casefold``: casefold maps
``ß`` to ``ss`` and would merge two distinct mailboxes into one identity.
"""

from __future__ import annotations

import re
import unicodedata

import idna

__all__ = [
    "InvalidEmail",
    "normalize_email",
    "email_key",
    "email_domain",
    "require_canonical_email",
    "normalize_domain",
]

MAX_EMAIL_LENGTH = 254
MAX_LOCAL_LENGTH = 64

# Deliberately narrower than RFC 5322: no quoted local parts, no comments, no
# IP literals. Such addresses are legal but are not used for corporate SSO and
# are a known source of parser-differential bugs.
_LOCAL_RE = re.compile(r"^[^\s\x00-\x1f\x7f@\"(),:;<>\[\\\]]+$")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class InvalidEmail(ValueError):
    """The value is not an email address Vestibule accepts."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(reason)
        self.value = value
        self.reason = reason


def normalize_domain(domain: str) -> str:
    """Return a domain in lowercase ASCII (IDNA) form, or raise ``InvalidEmail``."""
    raw = unicodedata.normalize("NFC", domain.strip()).lower().rstrip(".")
    if not raw or len(raw) > 253:
        raise InvalidEmail(domain, "domain is empty or too long")
    try:
        if raw.isascii():
            ascii_domain = raw.encode("idna").decode("ascii")
        else:
            # IDNA 2008 with UTS 46 mapping, as registries use. The stdlib codec
            # is IDNA 2003, which maps ß to ss and would merge straße.de into
            # strasse.de, two different domains.
            ascii_domain = idna.encode(raw, uts46=True, transitional=False).decode("ascii")
    except UnicodeError:
        raise InvalidEmail(domain, "domain is not a valid internationalized name") from None
    if len(ascii_domain) > 253:
        # The ASCII form of a Unicode name can be several times longer than the name.
        raise InvalidEmail(domain, "domain is empty or too long")
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
        raise InvalidEmail(domain, "domain must be a dotted host name such as example.com")
    if labels[-1].isdigit():
        raise InvalidEmail(domain, "domain must not be an IP address")
    return ascii_domain


def _split(value: str) -> tuple[str, str]:
    if value.count("@") != 1:
        raise InvalidEmail(value, "an email address has exactly one @")
    local, domain = value.split("@")
    if not local or len(local) > MAX_LOCAL_LENGTH or not _LOCAL_RE.match(local):
        raise InvalidEmail(value, "the part before @ is empty, too long or has forbidden characters")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidEmail(value, "the part before @ has a misplaced dot")
    # Invisible and bidirectional-override characters (Unicode categories Cf,
    # Cc, Zl, Zp, Co, Cn) make two addresses look alike on an admin's screen.
    if any(unicodedata.category(ch) in _INVISIBLE for ch in local):
        raise InvalidEmail(value, "the part before @ has invisible or direction-changing characters")
    return local, domain


_INVISIBLE = {"Cf", "Cc", "Zl", "Zp", "Co", "Cn", "Cs"}


def normalize_email(value: str) -> str:
    """Normalize an address typed by a person: trim, NFC, lowercase domain.

    The local part keeps its case for display; identity comparisons use
    :func:`email_key`.
    """
    if not isinstance(value, str):
        raise InvalidEmail(str(value), "an email address must be text")
    cleaned = unicodedata.normalize("NFC", value.strip())
    if len(cleaned) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(value, f"an email address has at most {MAX_EMAIL_LENGTH} characters")
    local, domain = _split(cleaned)
    normalized = f"{local}@{normalize_domain(domain)}"
    if len(normalized) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(value, f"an email address has at most {MAX_EMAIL_LENGTH} characters")
    return normalized


def email_key(value: str) -> str:
    """The case-insensitive identity key of an address (unique per user)."""
    normalized = normalize_email(value)
    return normalized.lower()


def email_domain(value: str) -> str:
    """The normalized domain of an address."""
    return normalize_email(value).rsplit("@", 1)[1]


def require_canonical_email(value: str) -> str:
    """Accept an asserted address only if normalizing it changes nothing but case.

    Identity providers are outside our trust boundary for formatting: a value
    with surrounding whitespace, in a non-NFC form or with a Unicode domain that
    differs from its ASCII form after normalization is refused.
    """
    normalized = normalize_email(value)
    if normalized.lower() != value.lower():
        raise InvalidEmail(value, "the asserted email is not in canonical form")
    return normalized
