"""Email-first routing on /login and the sign-in link (DESIGN "Login" steps 1-2, seeds 000, 001, 003).

Routing happens before any protocol message, but each test still runs per
protocol through ``make_connection`` (the connection's protocol decides what
``/sso/start`` does), and the sign-in link tests complete a real login.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.e2e.policy_support import (  # noqa: F401 (autouse fixtures)
    assert_refused,
    assert_signed_in,
    claims,
    fresh_counters,
    invite,
    login_step,
    reuse_sp_key_pairs,
)

pytestmark = pytest.mark.django_db


def _page_without_tokens(response) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def test_email_of_a_connection_domain_goes_to_its_provider(api, make_account, make_connection):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",))
    response = login_step(Client(), "Alice@ACME.com", "/reports")
    assert response.status_code == 302
    assert response["Location"].startswith(f"/sso/start/{connection['id']}?")
    assert "next=%2Freports" in response["Location"]


def test_disabled_connection_does_not_route(api, make_account, make_connection):
    make_account("acme")
    make_connection("acme", ("acme.com",), enabled=False)
    response = login_step(Client(), "alice@acme.com")
    assert response.status_code == 200 and b"Enter your password" in response.content


def test_ignored_email_keeps_the_password_step(api, make_account, make_connection):
    make_account("acme")
    make_connection("acme", ("acme.com",), ignored_emails=["test@acme.com"])
    for typed in ("test@acme.com", " TEST@acme.com "):
        response = login_step(Client(), typed)
        assert response.status_code == 200 and b"Enter your password" in response.content, typed
    # Positive control: the rest of the domain still routes to the provider.
    assert login_step(Client(), "other@acme.com").status_code == 302


def test_break_glass_sso_admin_keeps_the_password_step(api, make_account, make_connection):
    """Seed 003: a password user holding sso-admin everywhere the connection reaches is not sent to SSO."""
    make_account("acme")
    make_connection("acme", ("acme.com",), ignored_emails=[])
    invite(api, "acme", "root@acme.com", roles=["sso-admin"])
    invite(api, "acme", "boss@acme.com", roles=["administrator"])  # administrator implies sso-admin
    invite(api, "acme", "worker@acme.com", roles=["analyst"])
    assert b"Enter your password" in login_step(Client(), "root@acme.com").content
    assert b"Enter your password" in login_step(Client(), "boss@acme.com").content
    assert login_step(Client(), "worker@acme.com").status_code == 302


def test_several_connections_show_a_chooser_by_account_and_name(api, make_account, make_connection):
    """Seed 000 "Multiple SSO providers": own connections plus those of accounts the domain is shared with."""
    make_account("acme")
    make_account("acme-sandbox")
    prod_a = make_connection("acme", ("acme.com",), name="Okta production")
    prod_b = make_connection("acme", ("acme.com",), name="Entra contractors")
    api.post("/accounts/acme/domains/acme.com/shares", {"account": "acme-sandbox"})
    sandbox = make_connection("acme-sandbox", ("acme.com",), name="Okta sandbox")
    response = login_step(Client(), "alice@acme.com", "/x")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Multiple SSO providers" in page
    # Grouped by account (Acme before Acme-Sandbox), then by connection name.
    order = [page.index(f"/sso/start/{c['id']}") for c in (prod_b, prod_a, sandbox)]
    assert order == sorted(order)
    assert page.index("Acme-Sandbox") > page.index("Entra contractors")
    assert "next=/x" in page or "next=%2Fx" in page


def test_unknown_domain_goes_to_password_without_revealing_the_user(api, make_account, make_connection):
    make_account("acme")
    make_connection("acme", ("acme.com",))
    invite(api, "acme", "known@elsewhere.example")
    known = login_step(Client(), "known@elsewhere.example")
    unknown = login_step(Client(), "nobody@elsewhere.example")
    assert known.status_code == unknown.status_code == 200
    assert _page_without_tokens(known).replace("known@", "X@") == _page_without_tokens(unknown).replace("nobody@", "X@")


def test_sign_in_link_starts_sso_without_the_login_screen(api, make_account, make_connection, sso_driver):
    """Seed 001: the connection's sign-in link goes straight to the provider."""
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True)
    assert connection["sign_in_url"].endswith(f"/sso/start/{connection['id']}")
    browser = Client()
    response = sso_driver.login(browser, connection, subject="alice@acme.com", claims=claims("alice@acme.com"))
    assert_signed_in(response, browser, "alice@acme.com")


def test_sign_in_link_of_an_unknown_connection_is_404(db):
    assert Client().get("/sso/start/00000000-0000-0000-0000-000000000000").status_code == 404
    assert Client().get("/sso/start/not-a-uuid").status_code == 404


def test_sign_in_link_of_a_disabled_connection_is_refused(api, make_account, make_connection, sso_driver):
    make_account("acme")
    connection = make_connection("acme", ("acme.com",), enabled=False)
    response = sso_driver.login(Client(), connection, subject="alice@acme.com", claims=claims("alice@acme.com"))
    assert_refused(response, "sso.connection_disabled", api, "acme", status=403)
