"""User conversions: SSO-only upgrade, break-glass, admin switches, external IDs (seeds 000, 003, 004).

The upgrade and break-glass rules are decided inside the protocol-neutral
pipeline, so each test runs through every protocol driver.
"""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from tests.e2e.policy_support import (  # noqa: F401 (fresh_counters, reuse_sp_key_pairs are autouse fixtures)
    PASSWORD,
    assert_refused,
    assert_signed_in,
    audit,
    claims,
    fresh_counters,
    invite,
    password_login,
    reuse_sp_key_pairs,
)
from vestibule.accounts.models import User
from vestibule.login import totp

pytestmark = pytest.mark.django_db


def _user(api, user_id, account="acme"):
    return api.get(f"/accounts/{account}/users/{user_id}")


def _enroll_totp(user_id: int) -> None:
    user = User.objects.get(pk=user_id)
    totp.begin_enrollment(user)
    User.objects.filter(pk=user_id).update(totp_confirmed=True)


def _reset_link(body: str) -> str:
    match = re.search(r"https?://[^/\s]+(/password/reset/\S+)", body)
    assert match, body
    return match.group(1)


def test_first_sso_login_upgrades_a_password_user_and_purges_secrets(api, make_account, make_connection, sso_driver):
    """Seed 003: password, TOTP and password TTL go; password login is refused afterwards."""
    make_account("acme")
    api.patch("/accounts/acme", {"password_ttl_days": 90})
    connection = make_connection("acme", ("acme.com",))
    bob = invite(api, "acme", "bob@acme.com", roles=["analyst"])
    _enroll_totp(bob["id"])
    before = User.objects.get(pk=bob["id"])
    assert before.has_usable_password() and before.has_totp and before.password_changed_at is not None
    # Positive control: the password works before the upgrade (TOTP step follows).
    assert password_login(Client(), "bob@acme.com").status_code == 302

    browser = Client()
    me = assert_signed_in(
        sso_driver.login(browser, connection, subject="bob@acme.com", claims=claims("bob@acme.com")),
        browser,
        "bob@acme.com",
    )
    assert me["login_method"] == "sso" and me["totp_enabled"] is False
    after = User.objects.get(pk=bob["id"])
    assert not after.has_usable_password() and not after.has_totp
    assert after.password_changed_at is None and after.totp_secret_encrypted == ""
    assert audit(api, "acme", "sso.user_upgraded")[0]["subject_email"] == "bob@acme.com"

    refused = password_login(Client(), "bob@acme.com")
    assert refused.status_code == 401
    assert audit(api, "acme", "sso.identity_linked")  # email linked the subject once


def test_break_glass_sso_admin_keeps_password_login(api, make_account, make_connection, sso_driver):
    """Seed 003: an sso-admin of every account the connection reaches is not converted."""
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), ignored_emails=[])
    root = invite(api, "acme", "root@acme.com", roles=["sso-admin"])
    browser = Client()
    me = assert_signed_in(
        sso_driver.login(browser, connection, subject="root@acme.com", claims=claims("root@acme.com")), browser
    )
    assert me["login_method"] == "password"
    assert _user(api, root["id"])["login_method"] == "password"
    assert not audit(api, "acme", "sso.user_upgraded")
    password_browser = Client()
    assert_signed_in(password_login(password_browser, "root@acme.com"), password_browser, "root@acme.com")


def test_sso_admin_through_administrator_is_break_glass_too(api, make_account, make_connection, sso_driver):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), ignored_emails=[])
    invite(api, "acme", "boss@acme.com", roles=["administrator"])
    browser = Client()
    assert (
        assert_signed_in(
            sso_driver.login(browser, connection, subject="boss@acme.com", claims=claims("boss@acme.com")), browser
        )["login_method"]
        == "password"
    )


def test_user_manager_is_not_break_glass(api, make_account, make_connection, sso_driver):
    """Negative control: only sso-admin keeps the password; other admin roles are converted."""
    make_account("acme")
    connection = make_connection("acme", ("acme.com",))
    invite(api, "acme", "hr@acme.com", roles=["user-manager"])
    browser = Client()
    assert (
        assert_signed_in(
            sso_driver.login(browser, connection, subject="hr@acme.com", claims=claims("hr@acme.com")), browser
        )["login_method"]
        == "sso"
    )
    assert password_login(Client(), "hr@acme.com").status_code == 401


def test_changed_email_with_the_same_subject_is_the_same_user(api, make_account, make_connection, sso_driver):
    """The external ID decides who it is; the address follows the provider."""
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True)
    first = Client()
    me1 = assert_signed_in(
        sso_driver.login(first, connection, subject="00u-alice", claims=claims("alice@acme.com", "Alice")), first
    )
    second = Client()
    me2 = assert_signed_in(
        sso_driver.login(second, connection, subject="00u-alice", claims=claims("alice.smith@acme.com", "Alice Smith")),
        second,
    )
    assert me2["id"] == me1["id"] and me2["email"] == "alice.smith@acme.com" and me2["name"] == "Alice Smith"
    assert audit(api, "acme", "sso.email_changed")[0]["detail"]["previous"] == "alice@acme.com"
    assert [u["email"] for u in api.get("/accounts/acme/users")] == ["alice.smith@acme.com"]


def test_email_links_a_user_only_while_unlinked_at_that_connection(api, make_account, make_connection, sso_driver):
    """A second subject asserting a linked user's address is refused, not merged; another connection may link."""
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), name="Okta")
    bob = invite(api, "acme", "bob@acme.com")
    browser = Client()
    assert_signed_in(
        sso_driver.login(browser, connection, subject="00u-bob", claims=claims("bob@acme.com")), browser, "bob@acme.com"
    )
    assert _user(api, bob["id"])["external_ids"] == [{"connection": connection["id"], "external_id": "00u-bob"}]

    intruder = Client()
    response = sso_driver.login(intruder, connection, subject="00u-mallory", claims=claims("bob@acme.com"))
    assert_refused(response, "sso.external_id_conflict", api, "acme", status=403)
    assert intruder.get("/api/v1/session").status_code == 401
    assert len(_user(api, bob["id"])["external_ids"]) == 1

    # Another connection of the account has no link for bob yet: email links him there.
    other = make_connection("acme", ("acme.com",), name="Entra")
    browser = Client()
    assert_signed_in(
        sso_driver.login(browser, other, subject="entra-bob", claims=claims("bob@acme.com")), browser, "bob@acme.com"
    )
    assert {i["external_id"] for i in _user(api, bob["id"])["external_ids"]} == {"00u-bob", "entra-bob"}


def test_admin_switch_to_sso_purges_the_password_and_outstanding_reset_links(api, make_account):
    make_account("acme")
    bob = invite(api, "acme", "bob@acme.com")
    assert Client().post("/password/reset", {"email": "bob@acme.com"}).status_code == 200
    link = _reset_link(mail.outbox[-1].body)
    mail.outbox.clear()

    api.patch(f"/accounts/acme/users/{bob['id']}", {"login_method": "sso"})
    assert password_login(Client(), "bob@acme.com").status_code == 401
    # The link minted before the switch no longer works, neither to show the form nor to set a password.
    assert Client().get(link).status_code == 410
    assert (
        Client().post(link, {"password1": "a brand new secret 77", "password2": "a brand new secret 77"}).status_code
        == 410
    )
    assert password_login(Client(), "bob@acme.com", "a brand new secret 77").status_code == 401
    # No self-service reset for SSO users: same answer, nothing sent.
    response = Client().post("/password/reset", {"email": "bob@acme.com"})
    assert response.status_code == 200 and b"Check your email" in response.content
    assert mail.outbox == []
    assert not User.objects.get(pk=bob["id"]).has_usable_password()


def test_admin_switch_back_to_password_sends_a_reset_and_restores_nothing(
    api, make_account, make_connection, sso_driver
):
    """Seed 000: back to password needs a new password from an emailed link; no old secret works."""
    make_account("acme")
    connection = make_connection("acme", ("acme.com",))
    bob = invite(api, "acme", "bob@acme.com")
    _enroll_totp(bob["id"])
    browser = Client()
    assert_signed_in(
        sso_driver.login(browser, connection, subject="bob@acme.com", claims=claims("bob@acme.com")), browser
    )
    mail.outbox.clear()

    api.patch(f"/accounts/acme/users/{bob['id']}", {"login_method": "password"})
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["bob@acme.com"]
    assert password_login(Client(), "bob@acme.com", PASSWORD).status_code == 401
    user = User.objects.get(pk=bob["id"])
    assert user.login_method == "password" and not user.has_usable_password() and not user.has_totp

    link = _reset_link(mail.outbox[0].body)
    new = "an entirely new passphrase 9"
    assert Client().post(link, {"password1": new, "password2": new}).status_code == 200
    fresh = Client()
    me = assert_signed_in(password_login(fresh, "bob@acme.com", new), fresh, "bob@acme.com")
    assert me["login_method"] == "password" and me["totp_enabled"] is False
    assert Client().post(link, {"password1": new + "x", "password2": new + "x"}).status_code == 410


def test_sso_users_cannot_manage_their_own_password_or_second_factor(api, make_account, make_connection, sso_driver):
    """Seed 004: no self-service password (reset, expiry, TOTP) for SSO users; their name comes from the IdP."""
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True)
    browser = Client()
    assert_signed_in(
        sso_driver.login(browser, connection, subject="eve@acme.com", claims=claims("eve@acme.com", "Eve")), browser
    )
    mail.outbox.clear()
    assert browser.post("/password/reset", {"email": "eve@acme.com"}).status_code == 200
    assert mail.outbox == []
    assert browser.get("/account/totp").status_code == 403
    assert browser.get("/password/expired").status_code == 302  # nothing to change there
    # The name follows the provider at every login.
    again = Client()
    me = assert_signed_in(
        sso_driver.login(again, connection, subject="eve@acme.com", claims=claims("eve@acme.com", "Eve Renamed")), again
    )
    assert me["name"] == "Eve Renamed"
