"""Real responses from Okta, Entra ID/ADFS, Google Workspace, JumpCloud, PingOne and Keycloak.

Regression fixtures of the SAML layer (tests/fixtures/saml/vendors/README.md
says where each comes from and how the bad ones were derived). Each case runs
through :func:`vestibule.saml.validate_response` at its captured instant
(injected clock), with settings built from the vendor's IdP metadata by
:func:`vestibule.saml.parse_idp_metadata` and an SP matching the capture: the
SP entity ID of ``params.json`` (the Audience), the ACS URL of the response's
``Recipient`` (and Destination), and its ``InResponseTo`` as the request the SP
had sent. Captures without ``InResponseTo`` are IdP-initiated, so their
connection allows unsolicited responses.

Every ``good/`` case is accepted, every ``bad/`` case is refused with the
reason code listed below, and none crashes under any policy or instant.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.saml_support import FIXTURES, settings, signed_response, validate
from vestibule.saml import InMemoryReplayCache, SamlSettings, ServiceProvider, errors, parse_idp_metadata
from vestibule.saml.assertion import VerifiedAssertion
from vestibule.saml.response import validate_response
from vestibule.saml.xml import SAML, parse_xml, q

VENDORS = FIXTURES / "vendors"
FALLBACK_ACS = "http://localhost:8080"  # Only for the undecodable capture, which has no Recipient to read.
CAPTURED = object()  # "The request the capture answers" (its InResponseTo), the default below.


@dataclass(frozen=True)
class Good:
    name_id: str
    signed_parts: tuple[str, ...]
    has_authn_statement: bool = True


GOOD: dict[str, Good] = {
    "okta": Good("ulysse.carion@codomaindata.com", ("assertion",)),
    "adfs": Good("ulysse.carion_codomaindata.com#EXT#@ulyssecarioncodomaindata.onmicrosoft.com", ("assertion",)),
    "google": Good("ulysse.carion@codomaindata.com", ("assertion",)),
    "jumpcloud": Good("ulysse.carion@codomaindata.com", ("assertion",)),
    "ping": Good("9e34fa21-4e8f-4dee-b565-648dbcf25eff", ("assertion",)),
    # "Include AuthnStatement" off, answering the SP's request: accepted, and said so.
    "keycloak": Good("ulysse.carion@ssoready.com", ("assertion",), has_authn_statement=False),
}

#: Reason code of each bad case, and why (the README's table says how each was derived).
BAD: dict[str, tuple[str, str]] = {
    "bad-assertion-expired-early": (
        "saml.certificate_expired",
        "a year early the pinned Okta certificate is not yet valid; signatures are checked before time windows",
    ),
    "bad-assertion-expired-late": ("saml.expired", "a year late the bearer confirmation has expired"),
    "bad-assertion-utf8": ("saml.malformed", "the bytes are not XML"),
    "bad-certificate": ("saml.certificate_untrusted", "signed by a certificate that is not the pinned one"),
    "bad-digest-algorithm": ("saml.algorithm_not_allowed", "unknown DigestMethod, refused before any crypto"),
    "bad-idp-entity-id": ("saml.issuer_mismatch", "the connection trusts another IdP entity ID"),
    "bad-signature-algorithm": ("saml.algorithm_not_allowed", "unknown SignatureMethod, refused before any crypto"),
    "bad-sp-entity-id": ("saml.audience_mismatch", "the assertion is for another SP"),
    "no-certificate": ("saml.unsigned", "nothing is signed"),
    "okta-response-signature-broken": ("saml.signature_invalid", "the Response was edited after signing"),
    "unsigned-assertion": ("saml.unsigned", "nothing is signed"),
}


@dataclass(frozen=True)
class Capture:
    """One case folder, read into what the SP side would hold."""

    folder: Path
    response: bytes
    metadata: bytes
    now: dt.datetime
    sp_entity_id: str
    acs_url: str
    in_response_to: str | None

    @property
    def b64(self) -> str:
        return base64.b64encode(self.response).decode("ascii")

    @property
    def sp(self) -> ServiceProvider:
        return ServiceProvider(self.sp_entity_id, self.acs_url, "http://localhost:8080/metadata")

    def settings(self, **overrides: Any) -> SamlSettings:
        # An IdP-initiated capture needs a connection that allows unsolicited responses.
        values: dict[str, Any] = {"allow_idp_initiated": self.in_response_to is None, **overrides}
        return replace(parse_idp_metadata(self.metadata), **values)

    def validate(
        self,
        *,
        settings_: SamlSettings | None = None,
        now: dt.datetime | None = None,
        expected_request_id: str | object | None = CAPTURED,
    ) -> VerifiedAssertion:
        request_id = self.in_response_to if expected_request_id is CAPTURED else expected_request_id
        assert request_id is None or isinstance(request_id, str)
        return validate_response(
            self.b64,
            sp=self.sp,
            settings=settings_ or self.settings(),
            now=now or self.now,
            expected_request_id=request_id,
            replay=InMemoryReplayCache(),
        )


def capture(kind: str, name: str) -> Capture:
    folder = VENDORS / kind / name
    params = json.loads((folder / "params.json").read_text())
    response = (folder / "response.xml").read_bytes()
    acs_url, in_response_to = FALLBACK_ACS, None
    try:
        root = parse_xml(response)  # The hardened parser; the undecodable case stays unread.
    except errors.SamlError:
        pass
    else:
        confirmation = root.find(f".//{q(SAML, 'SubjectConfirmationData')}")
        assert confirmation is not None, folder
        acs_url = confirmation.get("Recipient") or FALLBACK_ACS
        in_response_to = root.get("InResponseTo")
    return Capture(
        folder=folder,
        response=response,
        metadata=(folder / "metadata.xml").read_bytes(),
        now=dt.datetime.fromisoformat(params["now"].replace("Z", "+00:00")),
        sp_entity_id=params["sp_entity_id"],
        acs_url=acs_url,
        in_response_to=in_response_to,
    )


def _cases(kind: str) -> list[str]:
    return sorted(p.name for p in (VENDORS / kind).iterdir() if p.is_dir())


ALL_CASES = [pytest.param(kind, name, id=f"{kind}/{name}") for kind in ("good", "bad") for name in _cases(kind)]


def test_every_fixture_folder_has_an_expectation_and_provenance() -> None:
    assert _cases("good") == sorted(GOOD)
    assert _cases("bad") == sorted(BAD)
    readme = (VENDORS / "README.md").read_text()
    for kind in ("good", "bad"):
        for name in _cases(kind):
            assert f"`{kind}/{name}`" in readme, f"{kind}/{name} has no provenance in vendors/README.md"


@pytest.mark.parametrize("vendor", _cases("good"))
def test_good_vendor_response_is_accepted(vendor: str) -> None:
    case = capture("good", vendor)
    expected = GOOD[vendor]
    result = case.validate()
    assert result.name_id == expected.name_id
    assert result.signed_parts == expected.signed_parts
    assert result.has_authn_statement is expected.has_authn_statement
    assert (result.authn_instant is not None) is expected.has_authn_statement
    assert result.issuer == case.settings().idp_entity_id
    assert result.in_response_to == case.in_response_to


@pytest.mark.parametrize("case_name", _cases("bad"))
def test_bad_vendor_response_is_refused_with_its_reason(case_name: str) -> None:
    case = capture("bad", case_name)
    code, why = BAD[case_name]
    with pytest.raises(errors.SamlError) as exc:
        case.validate()
    assert exc.value.code == code, f"{why}: {exc.value}"
    assert exc.value.description  # Something an administrator can read.


@pytest.mark.parametrize(("kind", "name"), ALL_CASES)
def test_vendor_response_never_crashes(kind: str, name: str) -> None:
    """Under other policies and instants every capture is accepted or refused with a SamlError, never a crash."""
    case = capture(kind, name)
    policies = [
        {},
        {"want_assertions_signed": True},
        {"want_response_signed": True},
        {"allow_idp_initiated": False},
        {"allow_idp_initiated": True},
        {"clock_skew_seconds": 0},
    ]
    instants = [case.now, case.now - dt.timedelta(days=3650), case.now + dt.timedelta(days=3650)]
    for policy in policies:
        for now in instants:
            for request_id in (CAPTURED, None, "_another_request"):
                with contextlib.suppress(errors.SamlError):
                    case.validate(settings_=case.settings(**policy), now=now, expected_request_id=request_id)


# --- Keycloak without AuthnStatement ---------------------------------------


def test_keycloak_without_authn_statement_accepted_when_it_answers_our_request() -> None:
    """The real capture: accepted because InResponseTo matches the request Vestibule sent."""
    keycloak = capture("good", "keycloak")
    assert b"AuthnStatement" not in keycloak.response
    result = keycloak.validate()
    assert result.has_authn_statement is False and result.authn_instant is None and result.session_index is None
    assert result.in_response_to == "saml_flow_95q1hli3z0vohj0d55l4j4yo1"
    # Refusal beside it: the same response while another request is pending is not an answer to it.
    with pytest.raises(errors.InResponseToMismatchError):
        keycloak.validate(expected_request_id="_another_request")
    with pytest.raises(errors.UnsolicitedResponseError):
        keycloak.validate(expected_request_id=None)


def _drop_authn_statement(assertion: etree._Element) -> None:
    for statement in assertion.findall(q(SAML, "AuthnStatement")):
        assertion.remove(statement)


def test_rejects_unsolicited_assertion_without_authn_statement() -> None:
    """IdP-initiated, no AuthnStatement: nothing says this is a sign-in; the reason names the IdP switch."""
    unsolicited = settings(allow_idp_initiated=True)
    bare = signed_response(in_response_to=None, mutate_assertion=_drop_authn_statement)
    with pytest.raises(errors.AuthnStatementMissingError) as exc:
        validate(bare, settings_=unsolicited, expected_request_id=None)
    assert exc.value.code == "saml.authn_statement_missing"
    assert isinstance(exc.value, errors.MalformedError)  # Still a malformed-response refusal to old callers.
    assert "Include AuthnStatement" in exc.value.description and exc.value.fix_in == "identity_provider"
    # Positive control: the same unsolicited response with its AuthnStatement is accepted.
    full = signed_response(in_response_to=None)
    assert validate(full, settings_=unsolicited, expected_request_id=None).has_authn_statement is True


def test_accepts_solicited_assertion_without_authn_statement_and_says_so() -> None:
    """SP-initiated, no AuthnStatement (the test IdP imitating Keycloak's switch off): accepted, flagged."""
    result = validate(signed_response(mutate_assertion=_drop_authn_statement))
    assert result.name_id == "alice@example.com"
    assert result.has_authn_statement is False and result.authn_instant is None
    assert validate(signed_response()).has_authn_statement is True
