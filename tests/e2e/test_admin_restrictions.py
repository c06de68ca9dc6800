"""Admin restrictions under SSO authorization, operator-only actions, linked projects (seeds 002, 004)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.e2e.conftest import Api
from tests.e2e.policy_support import assert_signed_in, claims, fresh_counters, invite, reuse_sp_key_pairs  # noqa: F401 (autouse fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def authorized(api, make_account, make_connection, sso_driver):
    """Account acme whose connection manages authorization, one SSO user and one password user."""
    make_account("acme")
    api.post("/accounts/acme/mapping-roles", {"name": "staff", "grants": [{"scope": "account", "roles": ["analyst"]}]})
    password_user = invite(api, "acme", "contractor@partner.example", roles=["analyst"])
    connection = make_connection("acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True)
    api.patch(f"/connections/{connection['id']}", {"sso_authorization": True})
    browser = Client()
    me = assert_signed_in(
        sso_driver.login(
            browser, connection, subject="sam@acme.com", claims=claims("sam@acme.com", "Sam", role_mapping="staff")
        ),
        browser,
    )
    return {"connection": connection, "sso_user": me, "password_user": password_user}


def test_no_invitations_while_the_provider_manages_authorization(api, authorized):
    response = api.post("/accounts/acme/users", {"email": "new@acme.com"}, expect=409)
    assert "invitations are disabled" in response.json()["detail"]
    # Positive control: turning SSO authorization off lets admins invite again.
    api.patch(f"/connections/{authorized['connection']['id']}", {"sso_authorization": False})
    api.post("/accounts/acme/users", {"email": "new@acme.com", "send_invitation": False})


def test_sso_user_details_and_roles_are_not_editable(api, authorized):
    sso_id = authorized["sso_user"]["id"]
    response = api.patch(f"/accounts/acme/users/{sso_id}", {"name": "Renamed"}, expect=409)
    assert response.json()["field"] == "name"
    response = api.put(f"/accounts/acme/users/{sso_id}/roles", {"roles": ["administrator"]}, expect=409)
    assert "managed by the identity provider" in response.json()["detail"]
    assert api.get(f"/accounts/acme/users/{sso_id}")["name"] == "Sam"


def test_password_user_details_stay_editable(api, authorized):
    user_id = authorized["password_user"]["id"]
    assert (
        api.patch(f"/accounts/acme/users/{user_id}", {"name": "Renamed Contractor"}).json()["name"]
        == "Renamed Contractor"
    )


def test_deleting_users_is_allowed(api, authorized):
    sso_id = authorized["sso_user"]["id"]
    api.delete(f"/accounts/acme/users/{sso_id}")
    assert all(u["id"] != sso_id for u in api.get("/accounts/acme/users"))


def test_claiming_a_domain_is_operator_only(api, make_account, sso_driver):
    """Seed 001: domains are globally exclusive and only the global administrator assigns them."""
    make_account("acme")
    account_key = api.post("/accounts/acme/api-keys", {"name": "acme admin"}).json()["key"]
    tenant = Api(account_key)
    response = tenant.post("/accounts/acme/domains", {"domain": "acme.com"}, expect=403)
    assert "operator" in response.json()["detail"]
    settings = sso_driver.connection_settings()
    body = {"protocol": sso_driver.protocol, "name": "x", "domains": ["acme.com"], **settings}
    response = tenant.post("/accounts/acme/connections", body, expect=403)
    assert response.json()["field"] == "domains"
    assert api.get("/accounts/acme/domains")["items"] == []
    # Once the operator has claimed it, the account's own key may create connections for it.
    api.post("/accounts/acme/domains", {"domain": "acme.com"})
    tenant.post("/accounts/acme/connections", body)


def test_second_account_claiming_a_domain_gets_a_clean_409(api, make_account):
    make_account("acme")
    make_account("rival")
    api.post("/accounts/acme/domains", {"domain": "acme.com"})
    response = api.post("/accounts/rival/domains", {"domain": "ACME.com"}, expect=409)
    assert response.json()["field"] == "domain"


def _projects(browser: Client) -> set[str]:
    me = browser.get("/api/v1/session").json()
    return {p["slug"] for a in me["accounts"] for p in a["projects"]}


def test_linked_projects_grant_access_and_removal_takes_it_away_at_once(api, make_account, make_connection, sso_driver):
    make_account("acme")
    connection = make_connection(
        "acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True, linked_projects=["production"]
    )
    browser = Client()
    assert_signed_in(
        sso_driver.login(browser, connection, subject="ann@acme.com", claims=claims("ann@acme.com")), browser
    )
    assert _projects(browser) == {"production"}

    api.patch(f"/connections/{connection['id']}", {"linked_projects": ["sandbox"]})
    # Removed at once, even for the session already open; the new link arrives at the next login.
    assert _projects(browser) == set()
    again = Client()
    assert_signed_in(sso_driver.login(again, connection, subject="ann@acme.com", claims=claims("ann@acme.com")), again)
    assert _projects(again) == {"sandbox"}


def test_manual_project_access_survives_link_changes(api, make_account, make_connection, sso_driver):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), linked_projects=["production"])
    ann = invite(api, "acme", "ann@acme.com", projects=[{"slug": "production", "roles": []}])
    browser = Client()
    assert_signed_in(
        sso_driver.login(browser, connection, subject="ann@acme.com", claims=claims("ann@acme.com")), browser
    )
    api.patch(f"/connections/{connection['id']}", {"linked_projects": []})
    assert {p["slug"] for p in api.get(f"/accounts/acme/users/{ann['id']}")["projects"]} == {"production"}
