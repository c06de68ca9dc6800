"""The SSO administrator's page, where recovery access lands: who may act there, and on what."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import PASSWORD, csrf_token_from, password_login
from vestibule.connections.models import Connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenants(api: Any, make_account: Any) -> dict[str, Any]:
    make_account("acme")
    make_account("globex")
    made = {}
    for slug in ("acme", "globex"):
        response = api.post(
            f"/api/v1/accounts/{slug}/connections",
            {"protocol": "saml", "name": f"{slug} Okta", "domains": [f"{slug}.test"]},
        )
        assert response.status_code == 201, response.content
        made[slug] = Connection.objects.get(pk=response.json()["id"])
    return made


def _signed_in(make_user: Any, email: str, account: str, roles: tuple[str, ...]) -> Client:
    make_user(email, account=account, roles=roles)
    browser = Client(enforce_csrf_checks=True)
    token = csrf_token_from(browser.get("/login").content.decode())
    browser.post("/login", {"email": email, "csrfmiddlewaretoken": token})
    done = browser.post("/login", {"email": email, "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert done.status_code == 302, done.content
    return browser


def _toggle(browser: Client, connection: Connection, enabled: bool, *, with_token: bool = True) -> Any:
    data = {"enabled": "1" if enabled else "0"}
    if with_token:
        data["csrfmiddlewaretoken"] = browser.cookies["csrftoken"].value
    return browser.post(f"/sso-admin/connections/{connection.pk}/enabled", data)


def test_sso_admin_sees_and_switches_their_own_connections(make_user: Any, tenants: dict[str, Connection]) -> None:
    browser = _signed_in(make_user, "root@acme.test", "acme", ("sso-admin",))
    page = browser.get("/sso-admin")
    assert page.status_code == 200
    assert b"acme Okta" in page.content and b"globex Okta" not in page.content
    # A new connection is incomplete (no IdP settings): the page says why it cannot be turned on.
    refused = _toggle(browser, tenants["acme"], True)
    assert refused.status_code == 409 and b"incomplete" in refused.content
    Connection.objects.filter(pk=tenants["acme"].pk).update(enabled=True)
    assert _toggle(browser, tenants["acme"], False).status_code == 302
    assert Connection.objects.get(pk=tenants["acme"].pk).enabled is False


def test_another_accounts_sso_admin_cannot_switch_off_a_connection(
    make_user: Any, tenants: dict[str, Connection]
) -> None:
    Connection.objects.filter(pk=tenants["acme"].pk).update(enabled=True)
    intruder = _signed_in(make_user, "root@globex.test", "globex", ("sso-admin",))
    assert _toggle(intruder, tenants["acme"], False).status_code == 404
    assert Connection.objects.get(pk=tenants["acme"].pk).enabled is True


def test_a_member_without_sso_admin_cannot_switch_off_their_accounts_connection(
    make_user: Any, tenants: dict[str, Connection]
) -> None:
    Connection.objects.filter(pk=tenants["acme"].pk).update(enabled=True)
    analyst = _signed_in(make_user, "ann@acme.test", "acme", ("analyst",))
    assert analyst.get("/sso-admin").status_code == 403
    assert _toggle(analyst, tenants["acme"], False).status_code == 403
    assert Connection.objects.get(pk=tenants["acme"].pk).enabled is True


def test_switching_off_a_connection_cross_site_needs_the_csrf_token(
    make_user: Any, tenants: dict[str, Connection]
) -> None:
    Connection.objects.filter(pk=tenants["acme"].pk).update(enabled=True)
    admin = _signed_in(make_user, "root@acme.test", "acme", ("sso-admin",))
    assert _toggle(admin, tenants["acme"], False, with_token=False).status_code == 403
    assert Connection.objects.get(pk=tenants["acme"].pk).enabled is True


def test_signed_out_visitor_is_sent_to_sign_in(tenants: dict[str, Connection]) -> None:
    response = Client().get("/sso-admin")
    assert response.status_code == 302 and response["Location"].startswith("/login?next=/sso-admin")
    assert Client().post(f"/sso-admin/connections/{tenants['acme'].pk}/enabled", {"enabled": "0"}).status_code in (
        302,
        403,
    )


def test_password_login_helper_still_works(make_user: Any, client: Client) -> None:
    # Guard for the helper this module relies on: a plain password sign-in reaches the profile.
    make_user("plain@acme.test", account="acme", roles=("analyst",))
    assert password_login(client, "plain@acme.test", PASSWORD).status_code == 302
