"""Binding, audience, time-window, replay and encryption attacks on the ACS.

The responses are genuinely signed by the test IdP but deliberately wrong in
one field: this is what a misconfigured (or tricked) IdP, or a response meant
for another SP, looks like. Each test asserts the specific error code.
"""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from lxml import etree

from tests.saml_support import IDP, NOW, REQUEST_ID, SP, find, settings, signed_response, validate
from vestibule.saml import InMemoryReplayCache, errors
from vestibule.saml.idp import build_response
from vestibule.saml.xml import SAML, SAMLP
from vestibule.saml.xmlenc import AES_CBC


def rejects(value: object, code: str, **kw: object) -> errors.SamlError:
    with pytest.raises(errors.SamlError) as exc:
        validate(value, **kw)  # type: ignore[arg-type]
    assert exc.value.code == code, str(exc.value)
    return exc.value


def _set(path: str, attr: str | None, value: str):  # type: ignore[no-untyped-def]
    def mutate(el: etree._Element) -> None:
        target = find(el, path) if path else el
        if attr is None:
            target.text = value
        else:
            target.set(attr, value)

    return mutate


# --- Audience -----------------------------------------------------------------


def test_rejects_wrong_audience() -> None:
    """An assertion for another SP (e.g. another tenant's connection) is refused."""
    mutate = _set("saml:Conditions/saml:AudienceRestriction/saml:Audience", None, "https://other-sp.test")
    error = rejects(signed_response(mutate_assertion=mutate), "saml.audience_mismatch")
    assert error.expected == SP.entity_id and error.received == "https://other-sp.test"
    assert error.fix_in == "identity_provider"


def test_rejects_missing_audience_restriction() -> None:
    """python3-saml and pysaml2 accepted assertions without AudienceRestriction."""

    def mutate(a: etree._Element) -> None:
        conditions = find(a, "saml:Conditions")
        conditions.remove(find(conditions, "saml:AudienceRestriction"))

    rejects(signed_response(mutate_assertion=mutate), "saml.audience_mismatch")


def test_rejects_missing_conditions() -> None:
    def mutate(a: etree._Element) -> None:
        a.remove(find(a, "saml:Conditions"))

    rejects(signed_response(mutate_assertion=mutate), "saml.audience_mismatch")


def test_rejects_audience_prefix() -> None:
    mutate = _set("saml:Conditions/saml:AudienceRestriction/saml:Audience", None, SP.entity_id + "-evil")
    rejects(signed_response(mutate_assertion=mutate), "saml.audience_mismatch")


# --- Recipient / Destination ------------------------------------------------------


@pytest.mark.parametrize(
    "recipient",
    [
        SP.acs_url + ".evil.test",  # Substring trick (python3-saml checked "in").
        SP.acs_url + "?next=x",
        SP.acs_url.rsplit("/", 1)[0],  # Prefix of ours.
        SP.acs_url.upper(),
        "https://attacker.test/?" + SP.acs_url,
    ],
)
def test_rejects_wrong_recipient(recipient: str) -> None:
    """SubjectConfirmationData Recipient must equal the ACS URL exactly."""
    mutate = _set("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", "Recipient", recipient)
    rejects(signed_response(mutate_assertion=mutate), "saml.recipient_mismatch")


@pytest.mark.parametrize("destination", [SP.acs_url + "x", SP.acs_url[:-3], SP.acs_url + "/"])
def test_rejects_wrong_destination_prefix_trick(destination: str) -> None:
    """Response Destination must equal the ACS URL exactly (python3-saml compared prefixes)."""
    response = signed_response(mutate_response=_set("", "Destination", destination), sign_response=True)
    rejects(response, "saml.destination_mismatch")


def test_rejects_signed_response_without_destination() -> None:
    """Bindings §3.5.5.2: a signed Response must carry Destination."""

    def mutate(r: etree._Element) -> None:
        del r.attrib["Destination"]

    rejects(signed_response(mutate_response=mutate, sign_response=True), "saml.destination_mismatch")


# --- Issuer -----------------------------------------------------------------------------


def test_rejects_wrong_assertion_issuer() -> None:
    error = rejects(
        signed_response(mutate_assertion=_set("saml:Issuer", None, "https://evil.test")), "saml.issuer_mismatch"
    )
    assert error.received == "https://evil.test"


def test_rejects_wrong_response_issuer() -> None:
    response = signed_response(mutate_response=_set("saml:Issuer", None, "https://evil.test"), sign_response=True)
    rejects(response, "saml.issuer_mismatch")


# --- Request binding ------------------------------------------------------------------


def test_rejects_in_response_to_mismatch() -> None:
    """A response to another browser's request is refused (login CSRF / session swap)."""
    rejects(signed_response(in_response_to="_someone_elses_request"), "saml.in_response_to_mismatch")


def test_rejects_subject_confirmation_in_response_to_mismatch() -> None:
    """The signed SubjectConfirmationData InResponseTo must match too, not just the (unsigned) Response."""
    mutate = _set("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", "InResponseTo", "_other")
    rejects(signed_response(mutate_assertion=mutate), "saml.in_response_to_mismatch")


def test_rejects_unsolicited_when_disabled() -> None:
    """IdP-initiated SSO is off by default."""
    rejects(signed_response(in_response_to=None), "saml.unsolicited_response", expected_request_id=None)


def test_accepts_unsolicited_when_enabled() -> None:
    result = validate(
        signed_response(in_response_to=None), expected_request_id=None, settings_=settings(allow_idp_initiated=True)
    )
    assert result.in_response_to is None


def test_rejects_unsolicited_response_carrying_in_response_to() -> None:
    """With no pending request, a response that answers some request belongs to another sign-in."""
    rejects(signed_response(), "saml.in_response_to_mismatch", expected_request_id=None,
            settings_=settings(allow_idp_initiated=True))  # fmt: skip


def test_rejects_solicited_expectation_with_unsolicited_response() -> None:
    rejects(signed_response(in_response_to=None), "saml.in_response_to_mismatch")


# --- Time window ----------------------------------------------------------------------


def test_rejects_expired_assertion() -> None:
    """Assertion lifetime is 5 minutes; 5 min + 120 s skew later it is refused."""
    rejects(signed_response(), "saml.expired", now=NOW + dt.timedelta(minutes=7, seconds=1))


def test_accepts_within_skew() -> None:
    assert validate(signed_response(), now=NOW + dt.timedelta(minutes=6, seconds=30))
    assert validate(signed_response(), now=NOW - dt.timedelta(seconds=140))


def test_rejects_not_yet_valid() -> None:
    """NotBefore is 30 s before issue; beyond the 120 s skew the assertion is refused."""
    rejects(signed_response(), "saml.not_yet_valid", now=NOW - dt.timedelta(seconds=151))


def test_skew_is_bounded_by_settings() -> None:
    with pytest.raises(errors.SamlSettingsError) as exc:
        settings(clock_skew_seconds=3600)
    assert exc.value.field == "clock_skew_seconds"


def test_zero_skew_is_strict() -> None:
    rejects(
        signed_response(), "saml.expired", now=NOW + dt.timedelta(minutes=5), settings_=settings(clock_skew_seconds=0)
    )


# --- Status and structure ---------------------------------------------------------------


def test_rejects_status_not_success() -> None:
    def mutate(r: etree._Element) -> None:
        code = find(r, "samlp:Status/samlp:StatusCode")
        code.set("Value", "urn:oasis:names:tc:SAML:2.0:status:Responder")
        etree.SubElement(code, f"{{{SAMLP}}}StatusCode", Value="urn:oasis:names:tc:SAML:2.0:status:AuthnFailed")

    error = rejects(signed_response(mutate_response=mutate), "saml.status_not_success")
    assert error.received is not None and "AuthnFailed" in error.received


def test_rejects_two_assertions() -> None:
    """Two genuinely signed assertions: which one would be consumed is ambiguous."""
    response = signed_response()
    response.append(find(signed_response(), "saml:Assertion"))
    rejects(response, "saml.assertion_count")


def test_rejects_zero_assertions() -> None:
    response = signed_response()
    response.remove(find(response, "saml:Assertion"))
    rejects(response, "saml.assertion_count")


def test_rejects_wrong_name_id_format() -> None:
    response = signed_response(name_id_format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient")
    rejects(response, "saml.subject_invalid")


def test_rejects_unsigned_response_when_response_signature_required() -> None:
    rejects(signed_response(), "saml.unsigned", settings_=settings(want_response_signed=True))


def test_rejects_unknown_condition() -> None:
    def mutate(a: etree._Element) -> None:
        etree.SubElement(find(a, "saml:Conditions"), f"{{{SAML}}}Condition")

    rejects(signed_response(mutate_assertion=mutate), "saml.malformed")


# --- Replay --------------------------------------------------------------------------------------


def test_rejects_replayed_assertion() -> None:
    """The same assertion ID may be consumed once per IdP."""
    replay = InMemoryReplayCache()
    response = signed_response()
    validate(response, replay=replay)
    rejects(response, "saml.replayed", replay=replay)


def test_failed_validation_does_not_burn_assertion_id() -> None:
    replay = InMemoryReplayCache()
    response = signed_response()
    rejects(response, "saml.in_response_to_mismatch", replay=replay, expected_request_id="_other")
    assert len(replay) == 0


# --- Encryption ------------------------------------------------------------------------------------


def _encrypted(**kw: object) -> bytes:
    params: dict[str, object] = dict(
        sp_entity_id=SP.entity_id, acs_url=SP.acs_url, name_id="alice@example.com", attributes={"a": ["1"]},
        now=NOW, in_response_to=REQUEST_ID, encrypt_to=SP.encryption.certificate_pem if SP.encryption else None,
    )  # fmt: skip
    params.update(kw)
    return build_response(IDP, **params)  # type: ignore[arg-type]


def test_accepts_encrypted_assertion() -> None:
    assert validate(_encrypted()).name_id == "alice@example.com"


def test_rejects_tampered_ciphertext() -> None:
    """AES-GCM authenticates the ciphertext; a flipped bit fails decryption."""
    root = etree.fromstring(_encrypted())
    value = root.findall(".//{http://www.w3.org/2001/04/xmlenc#}CipherValue")[-1]
    raw = bytearray(base64.b64decode(value.text or ""))
    raw[20] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()
    rejects(root, "saml.decryption_failed")


def test_rejects_aes_cbc_unless_allowed() -> None:
    """AES-CBC XML Encryption has a known padding oracle; it needs an explicit opt-in."""
    cbc = _encrypted(encryption_algorithm=next(iter(AES_CBC)))
    rejects(cbc, "saml.algorithm_not_allowed")
    assert validate(cbc, settings_=settings(allow_aes_cbc=True)).name_id == "alice@example.com"


def test_rejects_unsigned_encrypted_assertion() -> None:
    """Encryption is not authentication: the decrypted assertion must be signed."""
    rejects(_encrypted(sign_assertion=False), "saml.unsigned")


def test_rejects_plain_assertion_when_encryption_required() -> None:
    rejects(signed_response(), "saml.unencrypted", settings_=settings(want_assertions_encrypted=True))
