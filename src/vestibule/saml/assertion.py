"""Assertion processing rules (SAML core §2.3–§2.7; profiles §4.1.4.2–§4.1.4.3).

:func:`validate_assertion` runs on the *verified* ``saml:Assertion`` node only
(see :mod:`vestibule.saml.dsig`) and checks, as named steps: version and ID,
Issuer, Subject/NameID, bearer SubjectConfirmation (Recipient, NotOnOrAfter,
InResponseTo), Conditions (time window with bounded skew, AudienceRestriction
required), AuthnStatement; then extracts attributes.

AuthnStatement: profiles §4.1.4.2 wants one in the response. Vestibule
consumes nothing from it (AuthnInstant and SessionIndex are reported, not
used for access), so an assertion without it is accepted when it answers
Vestibule's own AuthnRequest — the InResponseTo binding already makes it the
answer to a sign-in — and :attr:`VerifiedAssertion.has_authn_statement` says
so for the login trace. Keycloak omits the statement when its client setting
"Include AuthnStatement" is off. An unsolicited response has no request to
answer, so there the statement stays required
(:class:`~vestibule.saml.errors.AuthnStatementMissingError`).

Values are compared exactly (no trimming, no case folding, no prefix or
substring matching): python3-saml's substring Recipient check and prefix
Destination check are the bugs this avoids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from lxml import etree

from .errors import (
    AudienceMismatchError,
    AuthnStatementMissingError,
    ExpiredError,
    InResponseToMismatchError,
    IssuerMismatchError,
    MalformedError,
    NotYetValidError,
    RecipientMismatchError,
    ResponseError,
    SubjectError,
)
from .settings import UNSPECIFIED, SamlSettings
from .sp import ServiceProvider
from .xml import SAML, XSI, child, optional_instant, parse_instant, q, required_child, simple_text

BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
ENTITY = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
SignedPart = Literal["response", "assertion"]
_ATTRIBUTE_STATEMENT = q(SAML, "AttributeStatement")
_ENCRYPTED_ATTRIBUTE = q(SAML, "EncryptedAttribute")
_ATTRIBUTE = q(SAML, "Attribute")
_ATTRIBUTE_VALUE = q(SAML, "AttributeValue")
_XSI_NIL = q(XSI, "nil")


@dataclass(frozen=True)
class VerifiedAssertion:
    """What a fully validated Response asserts about the subject."""

    issuer: str
    assertion_id: str
    name_id: str
    """Exactly as signed: not trimmed, not case-folded."""
    name_id_format: str
    attributes: dict[str, tuple[str, ...]]
    """By attribute Name; a FriendlyName is an extra key when it collides with no Name."""
    session_index: str | None
    authn_instant: datetime | None
    """The AuthnStatement's AuthnInstant; ``None`` when the assertion has none."""
    not_on_or_after: datetime
    """Earliest expiry among Conditions and the bearer SubjectConfirmationData."""
    in_response_to: str | None
    signed_parts: tuple[SignedPart, ...]
    has_authn_statement: bool
    """``False`` when the assertion carried no AuthnStatement, which is accepted
    only in answer to our own AuthnRequest (see the module docstring); the
    login trace notes it."""


@dataclass(frozen=True)
class AssertionFacts:
    """Intermediate result before replay is checked."""

    issuer: str
    assertion_id: str
    name_id: str
    name_id_format: str
    attributes: dict[str, tuple[str, ...]]
    session_index: str | None
    authn_instant: datetime | None
    not_on_or_after: datetime
    in_response_to: str | None
    has_authn_statement: bool


def check_issuer(issuer_el: etree._Element | None, settings: SamlSettings, what: str, *, required: bool) -> None:
    """Issuer must equal the configured IdP entity ID exactly (core §2.2.5)."""
    if issuer_el is None:
        if required:
            raise IssuerMismatchError(f"The {what} has no Issuer.", expected=settings.idp_entity_id, received="(none)")
        return
    fmt = issuer_el.get("Format")
    if fmt is not None and fmt != ENTITY:
        raise IssuerMismatchError(f"The {what} Issuer has a non-entity Format.", expected=ENTITY, received=fmt)
    value = simple_text(issuer_el, "Issuer")
    if value != settings.idp_entity_id:
        raise IssuerMismatchError(
            f"The {what} Issuer is not this connection's identity provider.",
            expected=settings.idp_entity_id,
            received=value,
        )


def _subject(assertion: etree._Element, settings: SamlSettings) -> tuple[etree._Element, str, str]:
    subject = child(assertion, SAML, "Subject")
    if subject is None:
        raise SubjectError("The assertion has no Subject.")
    if child(subject, SAML, "EncryptedID") is not None:
        raise SubjectError("Encrypted NameIDs are not supported; configure the IdP to send a plain NameID.")
    name_id_el = child(subject, SAML, "NameID")
    if name_id_el is None:
        raise SubjectError("The assertion Subject has no NameID.")
    name_id = simple_text(name_id_el, "NameID")
    if not name_id:
        raise SubjectError("The NameID is empty.")
    fmt = name_id_el.get("Format", UNSPECIFIED)
    # A NameID without Format is "unspecified" (core §8.3.1) and is accepted;
    # an explicit different format means the IdP is configured for another
    # identifier than the connection expects.
    if fmt != UNSPECIFIED and settings.name_id_format != UNSPECIFIED and fmt != settings.name_id_format:
        raise SubjectError(
            "The NameID format is not the one this connection expects.",
            expected=settings.name_id_format,
            received=fmt,
        )
    return subject, name_id, fmt


def _bearer_confirmation(
    subject: etree._Element,
    *,
    sp: ServiceProvider,
    now: datetime,
    skew: timedelta,
    expected_request_id: str | None,
) -> tuple[datetime, str | None]:
    """At least one bearer confirmation must satisfy profiles §4.1.4.2; return its expiry."""
    confirmations = [c for c in subject.iterchildren(q(SAML, "SubjectConfirmation")) if c.get("Method") == BEARER]
    if not confirmations:
        raise SubjectError("The assertion has no bearer SubjectConfirmation.", expected=BEARER)
    first_error: ResponseError | None = None
    for confirmation in confirmations:
        try:
            return _check_confirmation_data(
                confirmation, sp=sp, now=now, skew=skew, expected_request_id=expected_request_id
            )
        except ResponseError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def _check_confirmation_data(
    confirmation: etree._Element,
    *,
    sp: ServiceProvider,
    now: datetime,
    skew: timedelta,
    expected_request_id: str | None,
) -> tuple[datetime, str | None]:
    data = child(confirmation, SAML, "SubjectConfirmationData")
    if data is None:
        raise SubjectError("The bearer SubjectConfirmation has no SubjectConfirmationData.")
    recipient = data.get("Recipient")
    if recipient != sp.acs_url:
        raise RecipientMismatchError(expected=sp.acs_url, received=recipient or "(none)")
    not_on_or_after = optional_instant(data, "NotOnOrAfter", "SubjectConfirmationData NotOnOrAfter")
    if not_on_or_after is None:
        raise SubjectError("SubjectConfirmationData has no NotOnOrAfter.")
    if now - skew >= not_on_or_after:
        raise ExpiredError(
            "The bearer confirmation has expired.",
            expected=f"before {not_on_or_after.isoformat()} (+{int(skew.total_seconds())}s skew)",
            received=now.isoformat(),
        )
    not_before = optional_instant(data, "NotBefore", "SubjectConfirmationData NotBefore")
    if not_before is not None and now + skew < not_before:
        raise NotYetValidError(expected=f"from {not_before.isoformat()}", received=now.isoformat())
    in_response_to = data.get("InResponseTo")
    if in_response_to != expected_request_id:
        raise InResponseToMismatchError(
            "The assertion's SubjectConfirmationData InResponseTo does not match the request.",
            expected=expected_request_id or "(none: IdP-initiated)",
            received=in_response_to or "(none)",
        )
    return not_on_or_after, in_response_to


def _conditions(assertion: etree._Element, *, sp: ServiceProvider, now: datetime, skew: timedelta) -> datetime | None:
    conditions = child(assertion, SAML, "Conditions")
    if conditions is None:
        raise AudienceMismatchError(
            "The assertion has no Conditions/AudienceRestriction.", expected=sp.entity_id, received="(none)"
        )
    not_before = optional_instant(conditions, "NotBefore", "Conditions NotBefore")
    not_on_or_after = optional_instant(conditions, "NotOnOrAfter", "Conditions NotOnOrAfter")
    if not_before is not None and now + skew < not_before:
        raise NotYetValidError(
            expected=f"from {not_before.isoformat()} (-{int(skew.total_seconds())}s skew)", received=now.isoformat()
        )
    if not_on_or_after is not None and now - skew >= not_on_or_after:
        raise ExpiredError(
            expected=f"before {not_on_or_after.isoformat()} (+{int(skew.total_seconds())}s skew)",
            received=now.isoformat(),
        )
    restrictions = 0
    for cond in conditions:
        if not isinstance(cond.tag, str):
            continue
        if cond.tag == q(SAML, "AudienceRestriction"):
            restrictions += 1
            audiences = [simple_text(a, "Audience") for a in cond.iterchildren(q(SAML, "Audience"))]
            # Each AudienceRestriction must hold on its own (core §2.5.1.4).
            if sp.entity_id not in audiences:
                raise AudienceMismatchError(expected=sp.entity_id, received=", ".join(audiences) or "(empty)")
        elif cond.tag in (q(SAML, "OneTimeUse"), q(SAML, "ProxyRestriction")):
            continue  # OneTimeUse is what the replay cache enforces anyway.
        else:
            # Core §2.5.1: an unknown condition makes the assertion Indeterminate.
            raise MalformedError("The assertion has an unsupported Condition.", received=cond.get(q(XSI, "type")))
    if restrictions == 0:
        raise AudienceMismatchError(
            "The assertion has no AudienceRestriction (required by profiles §4.1.4.2).",
            expected=sp.entity_id,
            received="(none)",
        )
    return not_on_or_after


def _authn_statement(
    assertion: etree._Element, now: datetime, skew: timedelta, *, solicited: bool
) -> tuple[datetime | None, str | None]:
    """AuthnInstant and SessionIndex; ``(None, None)`` for a solicited assertion without the statement."""
    statements = list(assertion.iterchildren(q(SAML, "AuthnStatement")))
    if not statements:
        if solicited:
            return None, None  # Answers our AuthnRequest: see the module docstring.
        raise AuthnStatementMissingError(
            "An unsolicited (IdP-initiated) assertion must carry an AuthnStatement (profiles §4.1.4.2), and this "
            "one has none. Switch on the identity provider's setting that includes it (Keycloak: the client's "
            '"Include AuthnStatement"), or start the sign-in from Vestibule (SP-initiated), where it is not required.',
            expected="saml:AuthnStatement",
            received="(none)",
        )
    statement = statements[0]
    raw_instant = statement.get("AuthnInstant")
    if raw_instant is None:
        raise MalformedError("AuthnStatement has no AuthnInstant.")
    session_end = optional_instant(statement, "SessionNotOnOrAfter", "SessionNotOnOrAfter")
    if session_end is not None and now - skew >= session_end:
        raise ExpiredError("The IdP session (SessionNotOnOrAfter) has ended.", received=now.isoformat())
    return parse_instant(raw_instant, "AuthnInstant"), statement.get("SessionIndex")


def _attributes(assertion: etree._Element) -> dict[str, tuple[str, ...]]:
    by_name: dict[str, list[str]] = {}
    friendly: dict[str, str] = {}
    # iterchildren(tag) is findall(tag) without ElementPath's per-call parsing:
    # this loop runs for every attribute value of every sign-in.
    for statement in assertion.iterchildren(_ATTRIBUTE_STATEMENT):
        if next(statement.iterchildren(_ENCRYPTED_ATTRIBUTE), None) is not None:
            raise MalformedError("Encrypted attributes are not supported.")
        for attribute in statement.iterchildren(_ATTRIBUTE):
            name = attribute.get("Name")
            if not name:
                raise MalformedError("An Attribute has no Name.")
            values = by_name.setdefault(name, [])
            for value_el in attribute.iterchildren(_ATTRIBUTE_VALUE):
                if value_el.get(_XSI_NIL) in ("true", "1"):
                    continue
                # simple_text inlined: the message is only formatted for a refusal.
                values.append(
                    simple_text(value_el, f"AttributeValue of {name}") if len(value_el) else value_el.text or ""
                )
            alias = attribute.get("FriendlyName")
            if alias:
                friendly[alias] = name
    result = {name: tuple(values) for name, values in by_name.items()}
    for alias, name in friendly.items():
        result.setdefault(alias, result[name])
    return result


def validate_assertion(
    assertion: etree._Element,
    *,
    sp: ServiceProvider,
    settings: SamlSettings,
    now: datetime,
    expected_request_id: str | None,
) -> AssertionFacts:
    """Check a verified assertion against the connection; raise on any failure."""
    if assertion.tag != q(SAML, "Assertion"):
        raise MalformedError("Expected a saml:Assertion.")
    if assertion.get("Version") != "2.0":
        raise MalformedError("The assertion is not SAML 2.0.", expected="2.0", received=assertion.get("Version"))
    assertion_id = assertion.get("ID")
    if not assertion_id:
        raise MalformedError("The assertion has no ID.")
    skew = timedelta(seconds=settings.clock_skew_seconds)
    check_issuer(required_child(assertion, SAML, "Issuer"), settings, "assertion", required=True)
    subject, name_id, name_id_format = _subject(assertion, settings)
    sc_expiry, in_response_to = _bearer_confirmation(
        subject, sp=sp, now=now, skew=skew, expected_request_id=expected_request_id
    )
    conditions_expiry = _conditions(assertion, sp=sp, now=now, skew=skew)
    # ``expected_request_id`` is only set for a response that must answer our
    # request, and the InResponseTo checks above have already held it to that.
    authn_instant, session_index = _authn_statement(assertion, now, skew, solicited=expected_request_id is not None)
    expiries = [sc_expiry] + ([conditions_expiry] if conditions_expiry is not None else [])
    return AssertionFacts(
        issuer=settings.idp_entity_id,
        assertion_id=assertion_id,
        name_id=name_id,
        name_id_format=name_id_format,
        attributes=_attributes(assertion),
        session_index=session_index,
        authn_instant=authn_instant,
        not_on_or_after=min(expiries),
        in_response_to=in_response_to,
        has_authn_statement=authn_instant is not None,
    )
