"""The wizard's live test sign-in: a real, fully validated response, the pipeline's plan shown, nothing applied."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.setup.conftest import IDP, OTHER_IDP, idp_metadata, link_url
from vestibule.accounts.models import Membership, RoleGrant, User
from vestibule.audit.models import AuditEvent
from vestibule.connections import rules
from vestibule.connections.models import Connection, ExternalIdentity, MappingRole, MappingRoleGrant, ReplayEntry
from vestibule.saml import build_response, parse_authn_request
from vestibule.saml.idp import response_form
from vestibule.setup.models import SetupLink
from vestibule.signin import adapters

pytestmark = pytest.mark.django_db


def _rows() -> dict[str, Any]:
    return {
        "users": sorted(User.objects.values_list("email", "name", "login_method", "last_login")),
        "memberships": sorted(Membership.objects.values_list("user_id", "account_id", "approval", "is_active")),
        "grants": sorted(RoleGrant.objects.values_list("user_id", "role", "source", "managed")),
        "links": sorted(ExternalIdentity.objects.values_list("user_id", "external_id", "last_login_at")),
    }


@pytest.fixture
def wizard(person: Any, connection: Any, it_admin: Any) -> dict[str, Any]:
    """A link opened by the IT admin, the test IdP's metadata saved; the connection auto-provisions and is disabled."""
    conn: Connection = connection(auto_provision=True, provisioned_users_can_login=True)
    admin = person("sam@acme.com", roles=["sso-admin"])
    page = admin.post("/console/a/acme/setup-links/", {"connection": str(conn.pk), "provider": "okta", "hours": 72})
    it = it_admin()
    assert it.open(link_url(page.content.decode())).status_code == 302
    assert it.post(it.step("idp"), {"metadata_xml": idp_metadata()}).status_code == 302
    conn.refresh_from_db()
    return {"conn": conn, "it": it, "admin": admin}


def test_a_successful_test_shows_claims_and_plan_and_changes_nothing(wizard: dict[str, Any]) -> None:
    it, conn = wizard["it"], wizard["conn"]
    before, replays = _rows(), ReplayEntry.objects.count()
    r = it.test_login(
        conn, attributes={"email": ["ann@acme.com"], "name": ["Ann Admin"], "role_mapping": ["Engineers"]}
    )
    assert r.status_code == 302 and r["Location"] == it.step("test/result")
    page = it.get(r["Location"]).content.decode()
    assert 'data-outcome="create"' in page and "Would create a new person" in page
    for text in ("ann@acme.com", "Ann Admin", "Engineers", "analyst"):
        assert text in page
    # No session, no person, membership, grant or link; the assertion is spent in the replay cache all the same.
    assert "sessionid" not in it.client.cookies or not it.client.cookies["sessionid"].value
    assert it.client.get("/api/v1/session").status_code in (401, 403)
    assert _rows() == before
    assert ReplayEntry.objects.count() == replays + 1
    conn.refresh_from_db()
    assert conn.enabled is False
    event = AuditEvent.objects.get(code="setup_link.test_login")
    assert event.outcome == "success" and event.detail["decision"] == "create"
    assert SetupLink.objects.get().last_test["identity"]["email"] == "ann@acme.com"


def test_an_existing_person_would_be_signed_in_with_their_roles(wizard: dict[str, Any], make_user: Any) -> None:
    it, conn = wizard["it"], wizard["conn"]
    make_user("ann@acme.com", roles=["administrator"])
    before = _rows()
    it.test_login(conn)
    page = it.get(it.step("test/result")).content.decode()
    assert 'data-outcome="sign_in"' in page and "An existing person" in page and "administrator" in page
    assert _rows() == before


def test_missing_email_claim_is_refused_with_its_reason(wizard: dict[str, Any]) -> None:
    it, conn = wizard["it"], wizard["conn"]
    before = _rows()
    it.test_login(conn, attributes={"name": ["Ann"]}, name_id="00u1abc")
    page = it.get(it.step("test/result")).content.decode()
    assert 'data-outcome="refused"' in page and "sso.claim_missing.email" in page
    assert "a claim named &#x27;email&#x27;" in page or "a claim named 'email'" in page
    assert _rows() == before
    assert AuditEvent.objects.get(code="setup_link.test_login").outcome == "failure"


def test_unmatched_role_mapping_under_sso_authorization_is_refused(wizard: dict[str, Any]) -> None:
    it, conn = wizard["it"], wizard["conn"]
    role = MappingRole.objects.create(account=conn.account, name="Engineers")
    MappingRoleGrant.objects.create(mapping_role=role, role="analyst")
    Connection.objects.filter(pk=conn.pk).update(sso_authorization=True)
    it.test_login(conn, attributes={"email": ["ann@acme.com"], "name": ["Ann"], "role_mapping": ["Sales"]})
    page = it.get(it.step("test/result")).content.decode()
    assert "sso.role_mapping_unmatched" in page and "Engineers" in page and "Sales" in page
    it.test_login(conn, attributes={"email": ["ann@acme.com"], "name": ["Ann"], "role_mapping": ["Engineers"]})
    page = it.get(it.step("test/result")).content.decode()
    assert 'data-outcome="create"' in page and "analyst" in page
    assert not User.objects.filter(email="ann@acme.com").exists()


def test_wrong_audience_and_foreign_signer_are_refused_by_validation(wizard: dict[str, Any]) -> None:
    it, conn = wizard["it"], wizard["conn"]
    it.test_login(conn, audience="https://someone-else.example/sp")
    page = it.get(it.step("test/result")).content.decode()
    assert 'data-outcome="refused"' in page and "sso.assertion_invalid" in page and "Expected" in page
    it.test_login(conn, idp=OTHER_IDP)
    page = it.get(it.step("test/result")).content.decode()
    assert 'data-outcome="refused"' in page


def test_a_test_response_cannot_be_replayed_as_a_login(wizard: dict[str, Any]) -> None:
    it, conn = wizard["it"], wizard["conn"]
    r = it.post(it.step("test"))
    request = parse_authn_request(IDP, urlsplit(r["Location"]).query)
    urls = adapters.sp_urls(conn)
    xml = build_response(
        IDP, sp_entity_id=urls["sp_entity_id"], acs_url=urls["acs_url"], name_id="ann@acme.com",
        attributes={"email": ["ann@acme.com"], "name": ["Ann"]}, now=dt.datetime.now(dt.UTC),
        in_response_to=request.request_id,
    )  # fmt: skip
    fields = dict(response_form(xml, urls["acs_url"], request.relay_state).fields)
    assert it.client.post(urlsplit(urls["acs_url"]).path, fields).status_code == 302
    rules.update_connection(Connection.objects.get(pk=conn.pk), {"enabled": True})
    again = Client().post(urlsplit(urls["acs_url"]).path, fields)
    assert again.status_code == 400 and b"sso.assertion_invalid" in again.content
    assert not User.objects.filter(email="ann@acme.com").exists()


def test_a_real_login_afterwards_still_works(wizard: dict[str, Any]) -> None:
    it, conn = wizard["it"], wizard["conn"]
    it.test_login(conn)
    assert it.post(it.step("finish")).status_code == 200
    rules.update_connection(Connection.objects.get(pk=conn.pk), {"enabled": True})
    browser = Client()
    r = browser.get(f"/sso/start/{conn.pk}")
    assert r.status_code == 302
    request = parse_authn_request(IDP, urlsplit(r["Location"]).query)
    urls = adapters.sp_urls(conn)
    xml = build_response(
        IDP, sp_entity_id=urls["sp_entity_id"], acs_url=urls["acs_url"], name_id="ann@acme.com",
        attributes={"email": ["ann@acme.com"], "name": ["Ann Admin"]}, now=dt.datetime.now(dt.UTC),
        in_response_to=request.request_id,
    )  # fmt: skip
    r = browser.post(
        urlsplit(urls["acs_url"]).path, dict(response_form(xml, urls["acs_url"], request.relay_state).fields)
    )
    assert r.status_code == 302, r.content[:500]
    assert browser.get("/api/v1/session").json()["email"] == "ann@acme.com"
    assert ExternalIdentity.objects.filter(connection=conn, user__email="ann@acme.com").exists()


def test_a_login_started_normally_is_not_a_test_even_when_disabled(wizard: dict[str, Any]) -> None:
    conn = wizard["conn"]
    r = Client().get(f"/sso/start/{conn.pk}")
    assert r.status_code in (403, 409, 400) and b"sso.connection_disabled" in r.content


def test_revoked_while_at_the_provider_shows_the_dead_page(wizard: dict[str, Any]) -> None:
    it, conn = wizard["it"], wizard["conn"]
    r = it.post(it.step("test"))
    SetupLink.objects.update(revoked_at=dt.datetime.now(dt.UTC))
    request = parse_authn_request(IDP, urlsplit(r["Location"]).query)
    urls = adapters.sp_urls(conn)
    xml = build_response(
        IDP, sp_entity_id=urls["sp_entity_id"], acs_url=urls["acs_url"], name_id="ann@acme.com",
        attributes={"email": ["ann@acme.com"]}, now=dt.datetime.now(dt.UTC), in_response_to=request.request_id,
    )  # fmt: skip
    done = it.client.post(
        urlsplit(urls["acs_url"]).path, dict(response_form(xml, urls["acs_url"], request.relay_state).fields)
    )
    assert done.status_code == 410
    assert SetupLink.objects.get().last_test == {}
    assert not AuditEvent.objects.filter(code="setup_link.test_login").exists()


def test_a_test_without_idp_settings_says_what_to_do(person: Any, connection: Any, it_admin: Any) -> None:
    conn = connection()
    admin = person("sam@acme.com", roles=["sso-admin"])
    page = admin.post("/console/a/acme/setup-links/", {"connection": str(conn.pk), "provider": "saml", "hours": 1})
    it = it_admin()
    it.open(link_url(page.content.decode()))
    r = it.post(it.step("test"))
    assert r.status_code == 409 and b"could not start" in r.content and b'role="alert"' in r.content
