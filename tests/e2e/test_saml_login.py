"""SAML login end to end through Vestibule's views, with pysaml2's IdP as the peer.

Every test drives the real path: ``/sso/start/<id>`` → AuthnRequest →
pysaml2 ``Server`` → Response → ``/sso/saml/<id>/acs`` → login pipeline →
session (or a 4xx page with the reason code, an audit event and a login trace).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from tests.e2e.drivers.saml_driver import SamlDriver
from tests.saml_support import KEYS
from vestibule.connections.models import ReplayEntry

pytestmark = [pytest.mark.django_db, pytest.mark.interop]

ALICE = {"email": "alice@acme.com", "name": "Alice Example"}


@pytest.fixture
def saml() -> SamlDriver:
    return SamlDriver()


@pytest.fixture
def connect(api: Any, make_account: Callable[..., Any], saml: SamlDriver) -> Callable[..., dict[str, Any]]:
    """Account ``acme`` with an enabled SAML connection for acme.com to the pysaml2 IdP."""
    make_account("acme")

    def make(*, saml_settings: dict[str, Any] | None = None, enabled: bool = True, **fields: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "protocol": "saml", "name": "pysaml2", "domains": ["acme.com"],
            "auto_provision": True, "provisioned_users_can_login": True,
            **saml.connection_settings(**(saml_settings or {})), **fields,
        }  # fmt: skip
        connection = api.post("/accounts/acme/connections", payload).json()
        if enabled:
            connection = api.patch(f"/connections/{connection['id']}", {"enabled": True}).json()
        return connection

    return make


def session(browser: Client) -> dict[str, Any]:
    response = browser.get("/api/v1/session")
    assert response.status_code == 200, response.status_code
    return response.json()


def refused(response: Any, code: str, detail_code: str | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    body = response.content.decode()
    assert code in body, body
    if detail_code:
        assert detail_code in body, body


def last_trace(api: Any) -> dict[str, Any]:
    traces = api.get("/accounts/acme/login-traces")
    assert traces, "no login trace written"
    return traces[0]


def failed_step(trace: dict[str, Any]) -> dict[str, Any]:
    failed = [s for s in trace["steps"] if s["status"] == "failed"]
    assert len(failed) == 1, trace
    return failed[0]


# SP-initiated --------------------------------------------------------------


def test_sp_initiated_login_creates_session_and_follows_next(connect: Any, saml: SamlDriver, api: Any) -> None:
    connection = connect()
    browser = Client()
    response = saml.login(browser, connection, subject="alice@acme.com", claims=ALICE, next="/api/v1/session")
    assert response.status_code == 302 and response["Location"] == "/api/v1/session", response.content[:500]
    me = session(browser)
    assert me["email"] == "alice@acme.com" and me["name"] == "Alice Example" and me["login_method"] == "sso"
    trace = last_trace(api)
    assert trace["outcome"] == "success" and trace["protocol"] == "saml"
    validate = next(s for s in trace["steps"] if s["step"] == "validate")
    assert validate["signed"] == "assertion"


def test_login_hint_reaches_the_identity_provider(connect: Any) -> None:
    """/login passes the typed email on; the SAML redirect carries it as login_hint (Entra, Okta honour it)."""
    connect()
    browser = Client()
    response = browser.post("/login", {"email": "alice@acme.com"})
    assert response.status_code == 302
    response = browser.get(response["Location"])
    assert response.status_code == 302
    assert "login_hint=alice%40acme.com" in response["Location"]


def test_multi_valued_claims_become_roles(connect: Any, saml: SamlDriver) -> None:
    connection = connect(sso_authorization=True, claims={"role_source": "roles_claim", "roles": "roles"})
    browser = Client()
    claims = {**ALICE, "roles": ["analyst", "report-viewer"]}
    assert saml.login(browser, connection, subject="alice@acme.com", claims=claims).status_code == 302
    roles = session(browser)["accounts"][0]["roles"]
    assert {"analyst", "report-viewer"} <= set(roles)


@pytest.mark.parametrize(
    ("idp_settings", "options", "signed"),
    [
        ({}, {"sign_assertion": True, "sign_response": False}, "assertion"),
        (
            {"want_assertions_signed": False, "want_response_signed": True},
            {"sign_assertion": False, "sign_response": True},
            "response",
        ),
        ({"want_response_signed": True}, {"sign_assertion": True, "sign_response": True}, "response,assertion"),
    ],
    ids=["assertion-signed", "response-signed", "both-signed"],
)
def test_signing_variants(
    connect: Any, saml: SamlDriver, api: Any, idp_settings: dict[str, Any], options: dict[str, Any], signed: str
) -> None:
    connection = connect(saml_settings=idp_settings)
    browser = Client()
    assert saml.login(browser, connection, subject="alice@acme.com", claims=ALICE, **options).status_code == 302
    validate = next(s for s in last_trace(api)["steps"] if s["step"] == "validate")
    assert validate["signed"] == signed


def test_unsigned_assertion_refused_when_assertions_must_be_signed(connect: Any, saml: SamlDriver) -> None:
    """Response-only signing is refused once the connection opts in to signed assertions (want_assertions_signed)."""
    connection = connect(saml_settings={"want_assertions_signed": True})
    response = saml.login(
        Client(), connection, subject="alice@acme.com", claims=ALICE, sign_assertion=False, sign_response=True
    )
    refused(response, "sso.assertion_invalid", "saml.unsigned")


def test_response_only_signature_is_accepted_by_default(connect: Any, saml: SamlDriver) -> None:
    """Keycloak's default (documents signed, assertions not) signs in without any setting."""
    connection = connect()
    browser = Client()
    assert (
        saml.login(
            browser, connection, subject="alice@acme.com", claims=ALICE, sign_assertion=False, sign_response=True
        ).status_code
        == 302
    )
    assert session(browser)["email"] == "alice@acme.com"


def test_encrypted_assertion_to_the_published_certificate(connect: Any, saml: SamlDriver, api: Any) -> None:
    """pysaml2 encrypts (AES-256-GCM) to the encryption certificate it read from our SP metadata."""
    connection = connect(saml_settings={"want_assertions_encrypted": True})
    browser = Client()
    assert saml.login(browser, connection, subject="alice@acme.com", claims=ALICE, encrypt=True).status_code == 302
    assert b"EncryptedAssertion" in base64.b64decode(saml.last_response or "")
    assert session(browser)["email"] == "alice@acme.com"


def test_plain_assertion_refused_when_encryption_is_required(connect: Any, saml: SamlDriver) -> None:
    connection = connect(saml_settings={"want_assertions_encrypted": True})
    refused(
        saml.login(Client(), connection, subject="alice@acme.com", claims=ALICE),
        "sso.assertion_invalid",
        "saml.unencrypted",
    )


def test_certificate_rollover_two_certificates_in_settings(connect: Any) -> None:
    """The IdP switched to its next key; a connection listing both certificates keeps working."""
    rolled = SamlDriver(key="pysaml2_idp_next")
    ring = [(KEYS / "pysaml2_idp.crt").read_text(), (KEYS / "pysaml2_idp_next.crt").read_text()]
    connection = connect(saml_settings={"certificates": ring})
    assert rolled.login(Client(), connection, subject="alice@acme.com", claims=ALICE).status_code == 302
    assert SamlDriver().login(Client(), connection, subject="alice@acme.com", claims=ALICE).status_code == 302


def test_rollover_key_refused_when_only_the_old_certificate_is_pinned(connect: Any, api: Any) -> None:
    connection = connect()
    response = SamlDriver(key="pysaml2_idp_next").login(Client(), connection, subject="alice@acme.com", claims=ALICE)
    refused(response, "sso.assertion_invalid", "saml.certificate_untrusted")
    step = failed_step(last_trace(api))
    assert step["detail_code"] == "saml.certificate_untrusted" and ":" in step["expected"]


# IdP-initiated and replay --------------------------------------------------


def test_idp_initiated_refused_by_default(connect: Any, saml: SamlDriver, api: Any) -> None:
    connection = connect()
    response = saml.idp_initiated(Client(), connection, subject="alice@acme.com", claims=ALICE)
    refused(response, "sso.assertion_invalid", "saml.unsolicited_response")
    events = api.get("/accounts/acme/audit-events?code=sso.assertion_invalid")
    assert (
        events
        and events[0]["outcome"] == "failure"
        and events[0]["detail"]["detail_code"] == "saml.unsolicited_response"
    )


def test_idp_initiated_accepted_when_enabled_and_still_replay_protected(
    connect: Any, saml: SamlDriver, api: Any
) -> None:
    connection = connect(saml_settings={"allow_idp_initiated": True})
    browser = Client()
    assert saml.idp_initiated(browser, connection, subject="alice@acme.com", claims=ALICE).status_code == 302
    assert session(browser)["email"] == "alice@acme.com"
    # The same Response posted again (a stolen copy, another browser): refused.
    replay = saml.post(Client(), connection, saml.last_response or "", None)
    refused(replay, "sso.assertion_invalid", "saml.replayed")
    assert failed_step(last_trace(api))["detail_code"] == "saml.replayed"


def _assertion_id(saml_response: str) -> str:
    xml = base64.b64decode(saml_response).decode()
    match = re.search(r"<(?:\w+:)?Assertion\b[^>]*\bID=\"([^\"]+)\"", xml)
    assert match, xml[:300]
    return match.group(1)


def test_replay_store_is_the_database_shared_by_every_process(connect: Any, saml: SamlDriver) -> None:
    """Acceptance writes a ReplayEntry row; a second ACS post finds it after every in-process cache is gone."""
    from vestibule.saml import dsig
    from vestibule.signin import adapters

    connection = connect(saml_settings={"allow_idp_initiated": True})
    assert saml.idp_initiated(Client(), connection, subject="alice@acme.com", claims=ALICE).status_code == 302
    assertion_id = _assertion_id(saml.last_response or "")
    assert ReplayEntry.objects.filter(key__endswith="|" + assertion_id).count() == 1
    # What another process would have: no warm caches, only the shared database.
    adapters._SP_CACHE.clear()
    dsig._ring.cache_clear()
    refused(saml.post(Client(), connection, saml.last_response or "", None), "sso.assertion_invalid", "saml.replayed")


def test_assertion_accepted_by_another_process_is_refused_here(connect: Any, saml: SamlDriver) -> None:
    """A row written by another process (same database) blocks the assertion in this one."""
    from datetime import timedelta

    from django.utils import timezone

    connection = connect(saml_settings={"allow_idp_initiated": True})
    saml_response = saml.issue(connection, subject="alice@acme.com", claims=ALICE, in_response_to=None)
    key = f"{connection['saml']['idp_entity_id']}|{_assertion_id(saml_response)}"
    ReplayEntry.objects.create(key=key, expires_at=timezone.now() + timedelta(minutes=5))
    refused(saml.post(Client(), connection, saml_response, None), "sso.assertion_invalid", "saml.replayed")


def test_sp_initiated_response_cannot_be_posted_twice(connect: Any, saml: SamlDriver) -> None:
    connection = connect()
    assert saml.login(Client(), connection, subject="alice@acme.com", claims=ALICE).status_code == 302
    again = saml.post(Client(), connection, saml.last_response or "", saml.last_relay_state)
    refused(again, "sso.assertion_invalid", "saml.unsolicited_response")


# Failures: page, audit, login trace ------------------------------------------


def test_audience_mismatch_trace_shows_expected_and_received(connect: Any, saml: SamlDriver, api: Any) -> None:
    """The IdP app was set up with another SP's entity ID: the trace tells the admin both values."""
    connection = connect()
    wrong = "https://other-sp.example.test/saml/metadata"
    response = saml.login(Client(), connection, subject="alice@acme.com", claims=ALICE, sp_entity_id=wrong)
    refused(response, "sso.assertion_invalid", "saml.audience_mismatch")
    trace = last_trace(api)
    assert trace["outcome"] == "failure" and trace["failed_step"] == "validate"
    step = failed_step(trace)
    assert step["expected"] == connection["sp_entity_id"] and step["received"] == wrong
    assert step["fix_in"] == "identity_provider"
    assert trace["id"] in response.content.decode()
    event = api.get("/accounts/acme/audit-events?code=sso.assertion_invalid")[0]
    assert event["trace"] == trace["id"] and event["detail"]["detail_code"] == "saml.audience_mismatch"


def test_traces_and_audit_never_hold_the_response_or_key_material(connect: Any, saml: SamlDriver, api: Any) -> None:
    connection = connect(saml_settings={"want_assertions_encrypted": True})
    saml.login(
        Client(), connection, subject="alice@acme.com", claims=ALICE, sp_entity_id="https://wrong.example.test/sp"
    )
    saml.login(Client(), connection, subject="alice@acme.com", claims=ALICE, encrypt=True)
    posted = saml.last_response or ""
    saml.post(Client(), connection, posted, None)  # Refused: spent / unsolicited.
    dump = json.dumps(api.get("/accounts/acme/login-traces")) + json.dumps(api.get("/accounts/acme/audit-events"))
    assert "PRIVATE KEY" not in dump and "BEGIN CERTIFICATE" not in dump
    assert "SAMLResponse" not in dump
    # No 40-character run of the posted base64 (or of the decoded XML) appears anywhere.
    decoded = base64.b64decode(posted).decode()
    for text in (posted, decoded):
        for start in range(0, len(text) - 40, 40):
            assert text[start : start + 40] not in dump
    sp_keys = [(KEYS / name).read_text() for name in ("pysaml2_idp.key", "pysaml2_idp_next.key")]
    for pem in sp_keys:
        body = "".join(pem.splitlines()[1:-1])
        assert body[:40] not in dump


def test_disabled_connection_refused_with_reason_code(connect: Any, saml: SamlDriver, api: Any) -> None:
    connection = connect()
    api.patch(f"/connections/{connection['id']}", {"enabled": False})
    refused(saml.login(Client(), connection, subject="alice@acme.com", claims=ALICE), "sso.connection_disabled")
    assert api.get("/accounts/acme/audit-events?code=sso.connection_disabled")


def test_email_outside_the_connection_domains_refused(connect: Any, saml: SamlDriver, api: Any) -> None:
    connection = connect()
    response = saml.login(
        Client(), connection, subject="eve@evil.example", claims={"email": "eve@evil.example", "name": "Eve"}
    )
    refused(response, "sso.email_domain_not_owned")
    assert last_trace(api)["failed_step"] == "domain"


def test_missing_email_claim_refused(connect: Any, saml: SamlDriver) -> None:
    connection = connect()
    refused(
        saml.login(Client(), connection, subject="alice@acme.com", claims={"name": "Alice"}), "sso.claim_missing.email"
    )


def test_empty_and_garbage_acs_posts_are_4xx(connect: Any) -> None:
    connection = connect()
    acs = connection["acs_url"].removeprefix("http://localhost")
    refused(Client().post(acs, {}), "sso.assertion_invalid", "saml.malformed")
    refused(Client().post(acs, {"SAMLResponse": "not base64!"}), "sso.assertion_invalid", "saml.malformed")
    doctype = base64.b64encode(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>').decode()
    refused(Client().post(acs, {"SAMLResponse": doctype}), "sso.assertion_invalid", "saml.dtd_forbidden")
