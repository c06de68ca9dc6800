"""Provider lifecycle and the claim/provisioning steps of the pipeline (DESIGN "Login" step 3, seed 001).

Every refusal is checked twice: the stable reason code on the page the
browser gets, and the audit event an admin reads.
"""

from __future__ import annotations

import unicodedata

import pytest
from django.test import Client

from tests.e2e.policy_support import (  # noqa: F401 (autouse fixtures)
    assert_refused,
    assert_signed_in,
    audit,
    claims,
    fresh_counters,
    invite,
    reuse_sp_key_pairs,
)

pytestmark = pytest.mark.django_db


def _users(api, account="acme"):
    return {u["email"]: u for u in api.get(f"/accounts/{account}/users")}


def test_new_connection_starts_disabled_with_safe_defaults(api, make_account, make_connection):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), enabled=False)
    assert connection["enabled"] is False
    assert connection["auto_provision"] is False
    assert connection["provisioned_users_can_login"] is False
    assert connection["domains"] == ["acme.com"]


def test_disabling_a_connection_stops_new_logins(api, make_account, make_connection, sso_driver):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True)
    browser = Client()
    assert_signed_in(
        sso_driver.login(browser, connection, subject="alice@acme.com", claims=claims("alice@acme.com")), browser
    )
    api.patch(f"/connections/{connection['id']}", {"enabled": False})
    response = sso_driver.login(Client(), connection, subject="alice@acme.com", claims=claims("alice@acme.com"))
    assert_refused(response, "sso.connection_disabled", api, "acme", status=403)
    assert "alice@acme.com" in _users(api)  # Disabling removes nobody.


def test_unknown_user_without_auto_provision_is_refused(api, make_account, make_connection, sso_driver):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",))
    response = sso_driver.login(Client(), connection, subject="new@acme.com", claims=claims("new@acme.com"))
    event = assert_refused(response, "sso.provisioning_disabled", api, "acme", status=403)
    assert event["subject_email"] == "new@acme.com"
    assert "new@acme.com" not in _users(api)


def test_provisioned_user_waits_for_approval_then_signs_in(api, make_account, make_connection, sso_driver):
    """ "Allow Login" off (the default): the new user is created pending and sees a clear waiting page."""
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), auto_provision=True)
    browser = Client()
    response = sso_driver.login(
        browser, connection, subject="new@acme.com", claims=claims("new@acme.com", "New Person")
    )
    assert_refused(response, "sso.pending_approval", api, "acme", status=403)
    assert "waiting for approval" in response.content.decode().lower()
    assert browser.get("/api/v1/session").status_code == 401
    assert audit(api, "acme", "sso.user_provisioned")[0]["detail"]["approval"] == "pending"
    user = _users(api)["new@acme.com"]
    assert user["approval"] == "pending" and user["name"] == "New Person"
    # Still pending on a second attempt: nothing approves itself.
    again = sso_driver.login(Client(), connection, subject="new@acme.com", claims=claims("new@acme.com"))
    assert again.status_code == 403 and b"sso.pending_approval" in again.content

    api.patch(f"/accounts/acme/users/{user['id']}", {"approval": "approved"})
    browser = Client()
    me = assert_signed_in(
        sso_driver.login(browser, connection, subject="new@acme.com", claims=claims("new@acme.com")),
        browser,
        "new@acme.com",
    )
    assert [a["slug"] for a in me["accounts"]] == ["acme"]
    assert _users(api)["new@acme.com"]["approval"] == "approved"


def test_provisioned_users_can_login_signs_in_at_once(api, make_account, make_connection, sso_driver):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True)
    browser = Client()
    me = assert_signed_in(
        sso_driver.login(browser, connection, subject="new@acme.com", claims=claims("new@acme.com")), browser
    )
    assert me["login_method"] == "sso" and me["accounts"][0]["slug"] == "acme"


def test_disabling_auto_provision_removes_nobody(api, make_account, make_connection, sso_driver):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True)
    for email in ("a@acme.com", "b@acme.com"):
        assert sso_driver.login(Client(), connection, subject=email, claims=claims(email)).status_code == 302
    api.patch(f"/connections/{connection['id']}", {"auto_provision": False})
    assert {"a@acme.com", "b@acme.com"} <= set(_users(api))
    browser = Client()
    assert_signed_in(
        sso_driver.login(browser, connection, subject="a@acme.com", claims=claims("a@acme.com")), browser, "a@acme.com"
    )
    response = sso_driver.login(Client(), connection, subject="c@acme.com", claims=claims("c@acme.com"))
    assert_refused(response, "sso.provisioning_disabled", api, "acme")


def test_domains_are_read_only_after_creation(api, make_account, make_connection):
    """Seed 001: to change a domain, create a new connection."""
    make_account("acme")
    connection = make_connection("acme", ("acme.com",))
    response = api.patch(f"/connections/{connection['id']}", {"domains": ["acme.org"]}, expect=422)
    assert response.json()["field"] == "domains"
    assert api.get(f"/connections/{connection['id']}")["domains"] == ["acme.com"]


def test_ignored_email_outside_the_domains_is_a_422_naming_it(api, make_account, make_connection):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",))
    response = api.patch(
        f"/connections/{connection['id']}", {"ignored_emails": ["ok@acme.com", "x@other.com"]}, expect=422
    )
    assert response.json()["field"] == "ignored_emails[1]" and "x@other.com" in response.json()["detail"]
    assert api.get(f"/connections/{connection['id']}")["ignored_emails"] == []
    # The same rule at creation.
    response = api.post(
        "/accounts/acme/connections",
        {"protocol": "saml", "name": "x", "domains": ["acme.com"], "ignored_emails": ["bad@evil.com"]},
        expect=422,
    )
    assert response.json()["field"] == "ignored_emails[0]"
    # Positive control.
    ok = api.patch(f"/connections/{connection['id']}", {"ignored_emails": ["OK@acme.com"]}).json()
    assert ok["ignored_emails"] == ["OK@acme.com"]


def test_new_connection_ignores_the_account_admins_of_its_domains(api, make_account, make_connection):
    """Seed 001: a new provider's ignored list starts with the account's admins from its domain."""
    make_account("acme")
    invite(api, "acme", "boss@acme.com", roles=["administrator"])
    invite(api, "acme", "elsewhere@other.com", roles=["administrator"])
    invite(api, "acme", "worker@acme.com", roles=["analyst"])
    connection = make_connection("acme", ("acme.com",))
    assert connection["ignored_emails"] == ["boss@acme.com"]


@pytest.mark.parametrize("missing", ["email", "name"])
def test_missing_required_claim_is_refused(api, make_account, make_connection, sso_driver, missing):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True)
    asserted = claims("alice@acme.com")
    del asserted[missing]
    response = sso_driver.login(Client(), connection, subject="alice@acme.com", claims=asserted)
    assert_refused(response, f"sso.claim_missing.{missing}", api, "acme", status=403)
    assert "alice@acme.com" not in _users(api)


@pytest.mark.parametrize(
    "asserted",
    [
        " bob@acme.com",  # surrounding whitespace would be "cleaned" into bob's address
        "bob@acme.com ",
        unicodedata.normalize("NFD", "bøb\u00e9@acme.com"),  # not NFC
        "bob@@acme.com",
        "bob@acme.com\u200b",  # zero-width space
    ],
    ids=["leading-space", "trailing-space", "nfd", "double-at", "zero-width"],
)
def test_non_canonical_asserted_email_is_refused_never_cleaned(
    api, make_account, make_connection, sso_driver, asserted
):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True)
    invite(api, "acme", "bob@acme.com")
    browser = Client()
    response = sso_driver.login(browser, connection, subject="attacker-subject", claims=claims(asserted))
    assert_refused(response, "sso.email_invalid", api, "acme", status=403)
    assert browser.get("/api/v1/session").status_code == 401
    assert _users(api)["bob@acme.com"]["external_ids"] == []


def test_uppercase_asserted_domain_is_the_same_user(api, make_account, make_connection, sso_driver):
    """Case is not a canonical-form problem: emails compare case-insensitively, so this is bob."""
    make_account("acme")
    connection = make_connection("acme", ("acme.com",))
    bob = invite(api, "acme", "bob@acme.com")
    browser = Client()
    me = assert_signed_in(
        sso_driver.login(browser, connection, subject="bob-1", claims=claims("bob@ACME.COM")), browser
    )
    assert me["id"] == bob["id"]


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("/reports?tab=1", "/reports?tab=1"),
        ("https://evil.example/phish", "/"),
        ("//evil.example/phish", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("http://localhost.evil.example/", "/"),
    ],
)
def test_next_target_is_validated_on_sso_logins(api, make_account, make_connection, sso_driver, target, landing):
    """Open redirect: only same-origin paths survive the round trip through the provider."""
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True)
    browser = Client()
    response = sso_driver.login(
        browser, connection, subject="alice@acme.com", claims=claims("alice@acme.com"), next=target
    )
    assert_signed_in(response, browser)
    assert response["Location"] == landing
