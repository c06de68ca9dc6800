"""Console: Preferences -> Enable Single Sign-On Authorization (seed 002), with the lock-out warnings first."""

from __future__ import annotations

from typing import Any

import pytest

from vestibule.accounts.models import RoleGrant, Source
from vestibule.audit.models import AuditEvent
from vestibule.connections.authorization import save_mapping_role
from vestibule.connections.models import Connection, DomainClaim, ExternalIdentity

pytestmark = pytest.mark.django_db

PREFS = "/console/a/acme/sso/preferences/"
CHANGE = PREFS + "change/"


@pytest.fixture
def acme(make_account: Any) -> Any:
    return make_account("acme", "Acme")


@pytest.fixture
def okta(acme: Any) -> Connection:
    return Connection.objects.create(account=acme, name="Okta", protocol="saml")


@pytest.fixture
def sso_admin(acme: Any, person: Any) -> Any:
    return person("sara@acme.test", roles=["sso-admin"])


def _on(connection: Connection) -> bool:
    return Connection.objects.get(pk=connection.pk).sso_authorization


def test_the_page_lists_each_connection_with_its_state_in_words(okta: Connection, sso_admin: Any) -> None:
    html = sso_admin.get(PREFS).content.decode()
    assert "Okta" in html and '<span class="badge off">Off</span>' in html
    assert "Enable Single Sign-On Authorization for Okta" in html


def test_enabling_first_shows_the_computed_warnings_and_changes_nothing(okta: Connection, sso_admin: Any) -> None:
    r = sso_admin.post(CHANGE, {"connection": str(okta.pk), "sso_authorization": "1"}, page=PREFS)
    html = r.content.decode()
    assert r.status_code == 200
    assert "There are no mapping roles" in html and "sso.role_mapping_missing" in html
    assert "Role mapping claim: the provider must send <code>role_mapping</code>" in html
    # Sara signs in with a password, but no account owns acme.test: she is no break-glass admin.
    assert "You have no break-glass password" in html and 'href="/recovery-access"' in html
    assert 'name="confirm" value="1"' in html
    assert not _on(okta) and not AuditEvent.objects.filter(code="connection.updated").exists()


def test_the_warnings_name_people_and_what_they_will_lose(
    acme: Any, okta: Connection, sso_admin: Any, make_user: Any
) -> None:
    DomainClaim.objects.create(domain="acme.test", account=acme)
    save_mapping_role(acme, name="Sales", grants=[{"scope": "account", "roles": ["analyst"]}])
    manual = make_user("mark@acme.test", roles=["report-viewer", "analyst"])
    ExternalIdentity.objects.create(connection=okta, external_id="mark", user=manual, last_claims={"role_mapping": []})
    admin = make_user("ida@acme.test", roles=["sso-admin"])
    ExternalIdentity.objects.create(
        connection=okta, external_id="ida", user=admin, last_claims={"role_mapping": ["Nobody"]}
    )
    html = sso_admin.post(CHANGE, {"connection": str(okta.pk), "sso_authorization": "1"}, page=PREFS).content.decode()
    assert "1 mapping role in this account" in html
    assert "2 people who sign in through Okta hold roles set by hand" in html and "mark@acme.test" in html
    assert "Lock-out warnings" in html and "sso-admin ida@acme.test last signed in" in html
    assert "You keep a way in" in html


def test_confirming_enables_it_and_audits(acme: Any, okta: Connection, sso_admin: Any) -> None:
    r = sso_admin.post(CHANGE, {"connection": str(okta.pk), "sso_authorization": "1", "confirm": "1"}, page=PREFS)
    assert r.status_code == 302 and r["Location"] == PREFS
    assert _on(okta)
    event = AuditEvent.objects.get(code="connection.updated")
    assert event.detail["fields"] == ["sso_authorization"] and event.detail["warnings"]
    assert "SSO authorization is on for Okta" in sso_admin.get(PREFS).content.decode()


def test_disabling_is_confirmed_too_and_keeps_the_roles_as_manual(
    acme: Any, okta: Connection, sso_admin: Any, make_user: Any
) -> None:
    okta.sso_authorization = True
    okta.save()
    user = make_user("mo@acme.test", roles=[])
    RoleGrant.objects.create(user=user, account=acme, role="analyst", source=Source.SSO, connection=okta, managed=True)
    page = sso_admin.post(CHANGE, {"connection": str(okta.pk)}, page=PREFS)
    assert page.status_code == 200 and "1 person keeps exactly the roles Okta granted" in page.content.decode()
    assert _on(okta)
    r = sso_admin.post(CHANGE, {"connection": str(okta.pk), "confirm": "1"}, page=PREFS)
    assert r.status_code == 302 and not _on(okta)
    grant = RoleGrant.objects.get(user=user)
    assert (grant.role, grant.source, grant.managed) == ("analyst", Source.MANUAL, False)
    assert AuditEvent.objects.filter(code="connection.updated", detail__fields=["sso_authorization"]).exists()


def test_asking_for_the_state_it_already_has_changes_nothing(okta: Connection, sso_admin: Any) -> None:
    r = sso_admin.post(CHANGE, {"connection": str(okta.pk), "confirm": "1"}, page=PREFS)
    assert r.status_code == 302 and not _on(okta)
    assert not AuditEvent.objects.filter(code="connection.updated").exists()


def test_a_connection_of_another_account_is_not_found(okta: Connection, sso_admin: Any, make_account: Any) -> None:
    theirs = Connection.objects.create(account=make_account("beta"), name="Theirs", protocol="saml")
    r = sso_admin.post(CHANGE, {"connection": str(theirs.pk), "sso_authorization": "1", "confirm": "1"}, page=PREFS)
    assert r.status_code == 404 and not _on(theirs)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"connection": "not-a-uuid", "sso_authorization": "1", "confirm": "1"},
        {"connection": "x" * 10000, "sso_authorization": "yes"},
        {"connection": "\x00", "confirm": "\x00"},
        {"connection": "00000000-0000-0000-0000-000000000000", "confirm": "1"},
    ],
)
def test_hostile_input_answers_404_never_5xx(okta: Connection, sso_admin: Any, data: dict[str, Any]) -> None:
    r = sso_admin.post(CHANGE, data, page=PREFS)
    assert r.status_code == 404 and not _on(okta)


def test_a_get_of_the_change_url_is_refused(okta: Connection, sso_admin: Any) -> None:
    assert sso_admin.get(CHANGE).status_code == 405


@pytest.mark.parametrize("who", ["beta-sso-admin", "acme-administrator-less"])
@pytest.mark.parametrize("confirm", ["", "1"])
def test_others_can_neither_see_nor_change_acme_preferences(
    okta: Connection, person: Any, make_account: Any, who: str, confirm: str
) -> None:
    if who == "beta-sso-admin":
        make_account("beta")
        intruder, expected, home = person("bob@beta.test", account="beta", roles=["sso-admin"]), 404, "/console/a/beta/"
    else:
        intruder, expected, home = (
            person("carl@acme.test", roles=["analyst", "user-manager"]),
            403,
            "/console/a/acme/",
        )
    assert intruder.get(PREFS).status_code == expected
    r = intruder.post(CHANGE, {"connection": str(okta.pk), "sso_authorization": "1", "confirm": confirm}, page=home)
    assert r.status_code == expected
    assert not _on(okta) and not AuditEvent.objects.filter(code="connection.updated").exists()
    assert b"Okta" not in r.content


@pytest.mark.parametrize(
    ("claims", "told"),
    [
        ({"role_mapping": ""}, "No role mapping claim is configured"),
        ({"role_source": "roles_claim", "roles": "groups"}, "the provider's <code>groups</code> values"),
    ],
)
def test_the_warnings_follow_the_connection_claim_mapping(
    acme: Any, sso_admin: Any, claims: dict[str, str], told: str
) -> None:
    conn = Connection.objects.create(account=acme, name="Entra", protocol="saml", claims=claims)
    html = sso_admin.post(CHANGE, {"connection": str(conn.pk), "sso_authorization": "1"}, page=PREFS).content.decode()
    assert told in html
    if "No " in told:
        assert f'href="/console/a/acme/connections/{conn.pk}/?section=claims"' in html
    assert not _on(conn)
