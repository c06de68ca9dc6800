"""Response processing for Web Browser SSO (profiles §4.1.4.3; core §3.2.2, §3.4).

:func:`validate_response` is the ACS entry point. Its steps, in order:

1. decode and parse (size-limited, DTD-free: :mod:`vestibule.saml.xml`);
2. root, Version and Status (a failure status is reported even when unsigned,
   since it can only ever deny access);
3. Response signature, when present or required — from here on only the
   verified Response node is used;
4. the Response's children follow the schema's sequence (core §3.2.2,
   §3.3.3): ``Issuer?, ds:Signature?, Extensions?, Status,
   (Assertion | EncryptedAssertion)*``. Anything else — an unknown element
   between Status and the assertion, a look-alike namespace, an element
   after the assertion — is refused, never skipped;
5. Destination (exact; required when the Response is signed, bindings §3.5.5.2),
   Issuer, InResponseTo / unsolicited policy;
6. exactly one Assertion or EncryptedAssertion, taken from the verified
   Response when it is signed, decrypted if needed;
7. Assertion signature, when present or required. Either signature suffices
   (profiles §4.1.4.5 with the SAML 2.0 errata: "signing each individual
   <Assertion> element or by signing the <Response> element"), but at least
   one must cover the consumed assertion: the assertion's own, or the
   Response's, in which case the assertion consumed is the one inside the
   verified Response subtree;
8. assertion rules (:mod:`vestibule.saml.assertion`) on the verified node;
9. replay: the assertion ID is recorded once, last of all.

Names start with ``unverified_`` until the signature covering them is checked.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from lxml import etree

from vestibule.domain.reasons import FixIn

from .assertion import SignedPart, VerifiedAssertion, check_issuer, validate_assertion
from .dsig import verify_enveloped
from .errors import (
    AssertionCountError,
    DestinationMismatchError,
    InResponseToMismatchError,
    MalformedError,
    ReplayedError,
    StatusNotSuccessError,
    UnencryptedError,
    UnsignedError,
    UnsolicitedResponseError,
)
from .replay import ReplayCache
from .settings import SamlSettings
from .sp import ServiceProvider
from .xml import DS, SAML, SAMLP, child, decode_post_value, parse_xml, q
from .xmlenc import decrypt_assertion

SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"

#: samlp:ResponseType's children before the assertions, in schema order, and
#: whether each is required (core §3.2.2 StatusResponseType).
_RESPONSE_HEAD = (
    (q(SAML, "Issuer"), False),
    (q(DS, "Signature"), False),
    (q(SAMLP, "Extensions"), False),
    (q(SAMLP, "Status"), True),
)
#: The choice that may repeat after Status (core §3.3.3).
_ASSERTION_TAGS = frozenset({q(SAML, "Assertion"), q(SAML, "EncryptedAssertion")})


def _check_root(unverified_response: etree._Element) -> None:
    if unverified_response.tag != q(SAMLP, "Response"):
        raise MalformedError(
            "The message is not a samlp:Response.", received=etree.QName(unverified_response).localname
        )
    if unverified_response.get("Version") != "2.0":
        raise MalformedError(
            "The Response is not SAML 2.0.", expected="2.0", received=unverified_response.get("Version")
        )
    if not unverified_response.get("ID"):
        raise MalformedError("The Response has no ID.")


def check_status(response: etree._Element) -> None:
    """StatusCode must be Success (core §3.2.2.2); report nested codes and message."""
    status = child(response, SAMLP, "Status")
    code_el = child(status, SAMLP, "StatusCode") if status is not None else None
    if code_el is None:
        raise MalformedError("The Response has no Status/StatusCode.")
    if code_el.get("Value") == SUCCESS:
        return
    codes = [code_el.get("Value") or "?"]
    nested = child(code_el, SAMLP, "StatusCode")
    if nested is not None:
        codes.append(nested.get("Value") or "?")
    message_el = child(status, SAMLP, "StatusMessage") if status is not None else None
    received = " / ".join(codes)
    if message_el is not None and message_el.text:
        received += f": {message_el.text.strip()}"
    raise StatusNotSuccessError(expected=SUCCESS, received=received)


def check_destination(response: etree._Element, sp: ServiceProvider, *, signed: bool) -> None:
    destination = response.get("Destination")
    if destination is None:
        if signed:
            raise DestinationMismatchError(
                "A signed Response must carry a Destination (bindings §3.5.5.2).",
                expected=sp.acs_url,
                received="(none)",
            )
        return
    if destination != sp.acs_url:
        raise DestinationMismatchError(expected=sp.acs_url, received=destination)


def check_in_response_to(response: etree._Element, settings: SamlSettings, expected_request_id: str | None) -> None:
    """SP-initiated: InResponseTo must equal our request ID; else the unsolicited policy applies."""
    in_response_to = response.get("InResponseTo")
    if expected_request_id is None:
        if not settings.allow_idp_initiated:
            raise UnsolicitedResponseError(
                "No sign-in was started from here and IdP-initiated sign-in is disabled.",
                expected="a response to a request started by Vestibule",
                received=f"InResponseTo={in_response_to}" if in_response_to else "unsolicited response",
            )
        if in_response_to is not None:
            raise InResponseToMismatchError(
                "An unsolicited response must not answer a request (it belongs to another sign-in).",
                expected="(none: IdP-initiated)",
                received=in_response_to,
            )
        return
    if in_response_to != expected_request_id:
        raise InResponseToMismatchError(
            expected=expected_request_id, received=in_response_to or "(none: unsolicited)", fix_in=FixIn.VESTIBULE
        )


def _name(el: etree._Element) -> str:
    """``{namespace}local`` as received, for the admin: look-alike namespaces must show."""
    return str(el.tag)


def _out_of_sequence(el: etree._Element) -> MalformedError:
    return MalformedError(
        "The Response has an element the SAML schema does not allow at this place "
        "(unknown, repeated, out of order, or in a look-alike namespace).",
        expected="Issuer?, Signature?, Extensions?, Status, Assertion | EncryptedAssertion",
        received=_name(el),
    )


def check_response_children(response: etree._Element) -> list[etree._Element]:
    """Refuse children outside samlp:Response's schema sequence; return the assertions.

    The sequence is ``saml:Issuer?, ds:Signature?, samlp:Extensions?,
    samlp:Status, (saml:Assertion | saml:EncryptedAssertion)*`` (core §3.2.2,
    §3.3.3). Namespaces are compared exactly, so an ``Assertion`` in
    ``urn:oasis:names:tc:SAML:2.0:assertion `` (trailing space) or in a
    different-case URI is an unknown element, and unknown elements are
    refused rather than skipped: a validator that skips what it does not
    recognise and a consumer that does not are how wrapping attacks start.
    Comments and processing instructions are not elements and are ignored
    (signed content is canonicalised without them); text is never consumed.
    """
    position = 0
    assertions: list[etree._Element] = []
    for el in response:
        if not isinstance(el.tag, str):
            continue  # Comment or processing instruction.
        if el.tag in _ASSERTION_TAGS:
            if position < len(_RESPONSE_HEAD):
                raise MalformedError(
                    "The Response has an assertion before its Status (core §3.2.2).",
                    expected="Issuer?, Signature?, Extensions?, Status, then the assertion",
                    received=_name(el),
                )
            assertions.append(el)
            continue
        if assertions:
            raise MalformedError(
                "The Response has an element after its assertion that the SAML schema does not allow there.",
                expected="nothing after the assertion",
                received=_name(el),
            )
        for index in range(position, len(_RESPONSE_HEAD)):
            tag, required = _RESPONSE_HEAD[index]
            if el.tag == tag:
                position = index + 1
                break
            if required:
                raise _out_of_sequence(el)
        else:
            raise _out_of_sequence(el)
    if position < len(_RESPONSE_HEAD):
        raise MalformedError("The Response has no Status.", expected="samlp:Status")
    return assertions


def _single_assertion(response: etree._Element) -> etree._Element:
    found = check_response_children(response)
    if len(found) != 1:
        raise AssertionCountError(expected="1", received=str(len(found)))
    # An assertion hidden deeper (Extensions, Status, another element) is a wrapping attempt.
    nested = sum(1 for el in response.iter(*_ASSERTION_TAGS) if el is not response)
    if nested != 1:
        raise AssertionCountError("The response hides additional assertions.", expected="1", received=str(nested))
    return found[0]


def validate_response(
    saml_response_b64: str,
    *,
    sp: ServiceProvider,
    settings: SamlSettings,
    now: datetime,
    expected_request_id: str | None,
    replay: ReplayCache,
) -> VerifiedAssertion:
    """Validate an HTTP-POST ``SAMLResponse`` and return what it asserts.

    ``expected_request_id`` is the ID of the AuthnRequest this browser started
    (kept server-side by the caller), or ``None`` for an unsolicited response.
    Raises a :class:`~vestibule.saml.errors.ResponseError` subclass on any
    failure; never returns a partial result.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")

    # Step 1-2: parse; root and status.
    unverified_bytes = decode_post_value(saml_response_b64)
    unverified_response = parse_xml(unverified_bytes, what="SAMLResponse")
    _check_root(unverified_response)
    check_status(unverified_response)

    # Step 3: Response signature.
    signed_parts: list[SignedPart] = []
    response = unverified_response
    if unverified_response.find(q(DS, "Signature")) is not None:
        response = verify_enveloped(
            unverified_response,
            certificates=settings.certificates,
            allow_sha1=settings.allow_sha1,
            now=now,
            what="Response",
        )
        signed_parts.append("response")
    elif settings.want_response_signed:
        raise UnsignedError("This connection requires a signed Response.", expected="signed Response")

    # Step 4: the Response's children follow the schema. Checked on the
    # received tree, which holds everything the verified one does plus the
    # Response's own Signature, so that too must sit where the schema puts it.
    # After step 3, so a wrapped or moved signature still reports as one.
    check_response_children(unverified_response)

    # Step 5: Response binding to this SP and request.
    response_signed = bool(signed_parts)
    check_destination(response, sp, signed=response_signed)
    check_issuer(child(response, SAML, "Issuer"), settings, "Response", required=False)
    check_in_response_to(response, settings, expected_request_id)

    # Step 6: the one assertion, decrypted when encrypted. ``response`` is the
    # verified Response subtree when the Response is signed, so the assertion
    # taken here is then covered by that signature; otherwise it is unverified
    # until its own signature is checked in step 7.
    unverified_assertion = _single_assertion(response)
    if unverified_assertion.tag == q(SAML, "EncryptedAssertion"):
        unverified_assertion = decrypt_assertion(
            unverified_assertion, sp.decryption_keys, allow_aes_cbc=settings.allow_aes_cbc
        )
    elif settings.want_assertions_encrypted:
        raise UnencryptedError(fix_in=FixIn.IDENTITY_PROVIDER)

    # Step 7: Assertion signature; at least one signature must cover the assertion.
    if unverified_assertion.find(q(DS, "Signature")) is not None:
        assertion = verify_enveloped(
            unverified_assertion,
            certificates=settings.certificates,
            allow_sha1=settings.allow_sha1,
            now=now,
            what="Assertion",
        )
        signed_parts.append("assertion")
    elif settings.want_assertions_signed:
        raise UnsignedError(
            "This connection requires each Assertion to be signed (want_assertions_signed), but the Assertion "
            "is not. Turn on assertion signing at the IdP, or turn want_assertions_signed off: a signed "
            "Response is then enough.",
            expected="signed Assertion",
            received="Response signed only" if response_signed else "nothing signed",
        )
    elif response_signed:
        assertion = unverified_assertion  # Part of the verified Response subtree (step 3), so covered.
    else:
        raise UnsignedError(
            "Neither the Response nor the Assertion is signed; at least one signature must cover the assertion.",
            expected="a signed Response or a signed Assertion",
            received="nothing signed",
        )

    # Step 8: assertion rules on the verified node.
    facts = validate_assertion(assertion, sp=sp, settings=settings, now=now, expected_request_id=expected_request_id)

    # Step 9: replay, only once everything else has passed.
    expires_at = facts.not_on_or_after + timedelta(seconds=settings.clock_skew_seconds)
    if not replay.add_once(key=f"{settings.idp_entity_id}|{facts.assertion_id}", expires_at=expires_at):
        raise ReplayedError(received=facts.assertion_id, fix_in=FixIn.IDENTITY_PROVIDER)

    return VerifiedAssertion(
        issuer=facts.issuer,
        assertion_id=facts.assertion_id,
        name_id=facts.name_id,
        name_id_format=facts.name_id_format,
        attributes=facts.attributes,
        session_index=facts.session_index,
        authn_instant=facts.authn_instant,
        not_on_or_after=facts.not_on_or_after,
        in_response_to=facts.in_response_to,
        signed_parts=tuple(signed_parts),
        has_authn_statement=facts.has_authn_statement,
    )


__all__ = ["validate_response", "check_status", "check_response_children", "check_destination", "check_in_response_to"]
