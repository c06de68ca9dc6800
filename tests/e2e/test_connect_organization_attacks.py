"""Attacks on "connect organization" (seed 003): login CSRF into the binding, and silent rebinding.

Binding a connection to an external tenant decides whose people may sign
in. Two ways an attacker could move it to their own tenant:

* send a signed-in sso-admin's browser to the connect URL from any page
  (the session cookie is SameSite=Lax, so top-level GETs carry it) while
  the provider session is the attacker's, or make it POST there;
* get an admin who is connecting (or re-verifying) to complete the flow
  with the attacker's tenant at the provider.

The victim's end state asserted throughout: ``external_tenant_id``, and who
can sign in afterwards.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.e2e.oidc_support import claims_of, last_event, oidc, oidc_connection, password_login, password_user
from tests.e2e.test_oidc_tenancy import UNBOUND, connect_path, csrf_token, start_connect
from vestibule.audit.models import LoginTrace
from vestibule.connections.models import Connection, PendingLogin
from vestibule.signin import pending as pending_logins

__all__ = ["oidc", "oidc_connection"]

pytestmark = pytest.mark.django_db

CROSS_SITE = {
    "Referer": "https://attacker.example/page",
    "Origin": "https://attacker.example",
    "Sec-Fetch-Site": "cross-site",
}


@pytest.fixture
def admin_browser(api, make_account) -> Client:
    make_account("acme")
    password_user(api, "acme", "admin@acme.com", ["sso-admin"])
    browser = Client()
    password_login(browser, "admin@acme.com")
    return browser


def tenant_of(connection: dict) -> str:
    return Connection.objects.get(pk=connection["id"]).external_tenant_id


def connect(oidc, browser: Client, connection: dict, tenant: str, *, confirm_rebind: bool = False):
    redirect = start_connect(browser, connection, confirm_rebind=confirm_rebind)
    callback = oidc.authorize(
        redirect, connection, subject=f"it-{tenant}", claims=claims_of(f"it@{tenant}.example", tid=tenant)
    )
    return browser.get(callback)


def signs_in(oidc, connection: dict, tenant: str) -> bool:
    response = oidc.login(
        Client(), connection, subject=f"u-{tenant}", claims=claims_of(f"user-{tenant}@acme.com", tid=tenant)
    )
    return response.status_code == 302


def test_cross_site_get_to_connect_starts_nothing(oidc, oidc_connection, admin_browser):
    connection = oidc_connection(oidc, oidc={"tenant_binding": UNBOUND})
    page = admin_browser.get(connect_path(connection), headers=CROSS_SITE)
    # A confirmation page, not a redirect to the provider.
    assert page.status_code == 200 and not page.has_header("Location")
    assert b'method="post"' in page.content and b"csrfmiddlewaretoken" in page.content
    assert b"you don't need admin privileges in the external organization" in page.content
    assert b"Setup URL" in page.content
    assert pending_logins.BINDING_COOKIE not in page.cookies
    assert not PendingLogin.objects.filter(connection_id=connection["id"]).exists()
    assert tenant_of(connection) == ""


def test_cross_site_post_without_csrf_token_is_refused(oidc, oidc_connection, admin_browser):
    connection = oidc_connection(oidc, oidc={"tenant_binding": {**UNBOUND, "tenant_id": "tenant-a"}})
    Connection.objects.filter(pk=connection["id"]).update(external_tenant_id="tenant-a")
    # The attacker's page auto-submits a form in the admin's browser: cookies ride along, the token cannot.
    forged = Client(enforce_csrf_checks=True)
    forged.cookies = admin_browser.cookies
    forms = ({}, {"confirm_rebind": "yes"}, {"csrfmiddlewaretoken": "x" * 64, "confirm_rebind": "yes"})
    # Without the headers too: the missing token alone must be enough to refuse.
    for headers in (CROSS_SITE, {}):
        for form in forms:
            refused = forged.post(connect_path(connection), form, headers=headers)
            assert refused.status_code == 403 and b"security.csrf_failed" in refused.content
            assert not refused.has_header("Location")
    assert not PendingLogin.objects.filter(connection_id=connection["id"]).exists()
    assert tenant_of(connection) == "tenant-a" and signs_in(oidc, connection, "tenant-a")
    # Positive control: the admin's own submission of the page's form starts the flow.
    page = forged.get(connect_path(connection))
    started = forged.post(connect_path(connection), {"csrfmiddlewaretoken": csrf_token(page)})
    assert started.status_code == 302 and started["Location"].startswith(oidc.issuer + "/")
    assert PendingLogin.objects.filter(connection_id=connection["id"], purpose="connect").count() == 1


def test_rebinding_to_another_tenant_without_confirmation_leaves_the_binding(oidc, oidc_connection, admin_browser):
    connection = oidc_connection(oidc, oidc={"tenant_binding": UNBOUND})
    # Positive control: the first binding needs no confirmation.
    first = connect(oidc, admin_browser, connection, "tenant-a")
    assert first.status_code == 200 and b"tenant-a" in first.content
    assert tenant_of(connection) == "tenant-a"
    verified_at = Connection.objects.get(pk=connection["id"]).tenant_verified_at

    page = admin_browser.get(connect_path(connection))
    assert b"already bound to the external organization" in page.content and b"tenant-a" in page.content
    assert b'name="confirm_rebind"' in page.content
    refused = connect(oidc, admin_browser, connection, "tenant-attacker")
    assert refused.status_code == 403 and b"sso.connect_rebind_unconfirmed" in refused.content
    assert b"Nothing was changed" in refused.content
    # The victim's end state: still bound to tenant-a, its people still sign in, the attacker's do not.
    stored = Connection.objects.get(pk=connection["id"])
    assert stored.external_tenant_id == "tenant-a" and stored.tenant_verified_at == verified_at
    assert signs_in(oidc, connection, "tenant-a") and not signs_in(oidc, connection, "tenant-attacker")
    event = last_event("sso.connect_rebind_unconfirmed")
    step = LoginTrace.objects.get(pk=event.trace_id).steps[-1]
    assert step["step"] == "connect" and "tenant-a" in step["expected"] and "tenant-attacker" in step["received"]


def test_confirmed_rebinding_moves_the_binding(oidc, oidc_connection, admin_browser):
    connection = oidc_connection(oidc, oidc={"tenant_binding": UNBOUND})
    assert connect(oidc, admin_browser, connection, "tenant-a").status_code == 200
    redirect = start_connect(admin_browser, connection, confirm_rebind=True)
    pending = PendingLogin.objects.get(connection_id=connection["id"], consumed_at__isnull=True)
    assert pending.data["confirm_rebind"] is True and pending.data["replaces_tenant"] == "tenant-a"
    callback = oidc.authorize(
        redirect, connection, subject="it-b", claims=claims_of("it@tenant-b.example", tid="tenant-b")
    )
    moved = admin_browser.get(callback)
    assert moved.status_code == 200 and b"It replaces tenant-a" in moved.content, moved.content.decode()[:800]
    assert tenant_of(connection) == "tenant-b"
    event = last_event("connection.organization_connected")
    assert event.detail["tenant"] == "tenant-b" and event.detail["previous_tenant"] == "tenant-a"
    assert signs_in(oidc, connection, "tenant-b") and not signs_in(oidc, connection, "tenant-a")


def test_reconnecting_the_same_tenant_reverifies_without_confirmation(oidc, oidc_connection, admin_browser):
    connection = oidc_connection(oidc, oidc={"tenant_binding": UNBOUND})
    assert connect(oidc, admin_browser, connection, "tenant-a").status_code == 200
    before = Connection.objects.get(pk=connection["id"]).tenant_verified_at
    again = connect(oidc, admin_browser, connection, "tenant-a")
    assert again.status_code == 200 and b"replaces" not in again.content
    after = Connection.objects.get(pk=connection["id"])
    assert after.external_tenant_id == "tenant-a" and after.tenant_verified_at > before


def test_rebind_confirmation_does_not_carry_over_to_a_binding_changed_meanwhile(oidc, oidc_connection, admin_browser):
    """The admin confirmed replacing tenant-a; by the callback it is tenant-c: that binding was never confirmed away."""
    connection = oidc_connection(oidc, oidc={"tenant_binding": UNBOUND})
    Connection.objects.filter(pk=connection["id"]).update(external_tenant_id="tenant-a")
    redirect = start_connect(admin_browser, connection, confirm_rebind=True)
    Connection.objects.filter(pk=connection["id"]).update(external_tenant_id="tenant-c")
    callback = oidc.authorize(
        redirect, connection, subject="it-b", claims=claims_of("it@tenant-b.example", tid="tenant-b")
    )
    refused = admin_browser.get(callback)
    assert refused.status_code == 403 and b"sso.connect_rebind_unconfirmed" in refused.content
    assert tenant_of(connection) == "tenant-c"


def test_confirmation_field_on_an_unbound_connection_is_ignored(oidc, oidc_connection, admin_browser):
    connection = oidc_connection(oidc, oidc={"tenant_binding": UNBOUND})
    page = admin_browser.get(connect_path(connection))
    assert b'name="confirm_rebind"' not in page.content
    admin_browser.post(connect_path(connection), {"csrfmiddlewaretoken": csrf_token(page), "confirm_rebind": "yes"})
    pending = PendingLogin.objects.get(connection_id=connection["id"])
    assert pending.data["confirm_rebind"] is False and pending.data["replaces_tenant"] == ""


def test_rebind_confirmed_on_a_stale_page_starts_nothing(oidc, oidc_connection, admin_browser):
    """The page showed tenant-a; it became tenant-c before the admin submitted: the confirmation covers only tenant-a."""
    connection = oidc_connection(oidc, oidc={"tenant_binding": UNBOUND})
    Connection.objects.filter(pk=connection["id"]).update(external_tenant_id="tenant-a")
    page = admin_browser.get(connect_path(connection))
    Connection.objects.filter(pk=connection["id"]).update(external_tenant_id="tenant-c")
    form = {"csrfmiddlewaretoken": csrf_token(page), "confirm_rebind": "yes", "shown_tenant": "tenant-a"}
    stale = admin_browser.post(connect_path(connection), form)
    assert stale.status_code == 409 and b"The binding changed since you opened this page" in stale.content
    assert b"tenant-c" in stale.content and not stale.has_header("Location")
    assert not PendingLogin.objects.filter(connection_id=connection["id"]).exists()
    assert tenant_of(connection) == "tenant-c"
