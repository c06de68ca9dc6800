"""Multi-tenant OIDC: tenant binding, "connect organization" and the setup URL (seed 003), through the views.

oidc-provider cannot publish Entra's ``{tenantid}`` issuer template, so the
tenant travels in a ``tid`` claim (see tests/interop/oidc_provider/README.md);
the template path itself is unit-tested in tests/oidc/test_tenancy.py.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from tests.e2e.oidc_support import claims_of, last_event, oidc, oidc_connection, password_login, password_user, session
from vestibule.audit.models import LoginTrace
from vestibule.connections.models import PendingLogin

__all__ = ["oidc", "oidc_connection"]

pytestmark = pytest.mark.django_db

UNBOUND = {"kind": "claim", "claim": "tid"}


def connect_path(connection: dict) -> str:
    return f"/sso/oidc/{connection['id']}/connect"


def csrf_token(page: Any) -> str:
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
    assert match, page.content.decode()[:800]
    return match.group(1).decode()


def start_connect(browser: Client, connection: dict, *, confirm_rebind: bool = False) -> Any:
    """As the admin does it: open the confirmation page, submit its form; returns the redirect to the provider."""
    page = browser.get(connect_path(connection))
    assert page.status_code == 200 and b"Connect organization" in page.content, page.content.decode()[:800]
    form = {"csrfmiddlewaretoken": csrf_token(page)}
    if confirm_rebind:
        shown = re.search(rb'name="shown_tenant" value="([^"]*)"', page.content)
        assert shown, "the page offers no rebinding confirmation"
        form.update(confirm_rebind="yes", shown_tenant=shown.group(1).decode())
    redirect = browser.post(connect_path(connection), form)
    assert redirect.status_code == 302, redirect.content.decode()[:800]
    return redirect


@pytest.mark.parametrize("binding", [{"kind": "claim", "claim": "tid"}, {"kind": "entra"}], ids=["claim", "entra"])
def test_rejects_login_from_another_tenant(api, oidc, oidc_connection, binding):
    connection = oidc_connection(oidc, oidc={"tenant_binding": {**binding, "tenant_id": "tenant-a"}})
    ok = oidc.login(Client(), connection, subject="u-a", claims=claims_of("alice@acme.com", tid="tenant-a"))
    assert ok.status_code == 302, ok.content.decode()
    browser = Client()
    refused = oidc.login(browser, connection, subject="u-b", claims=claims_of("bob@acme.com", tid="tenant-b"))
    assert (
        refused.status_code == 403
        and b"sso.tenant_mismatch" in refused.content
        and b"oidc.tenant_mismatch" in refused.content
    )
    assert session(browser) is None
    event = last_event("sso.tenant_mismatch")
    assert event.detail["detail_code"] == "oidc.tenant_mismatch" and event.outcome == "failure"
    step = LoginTrace.objects.get(pk=event.trace_id).steps[-1]
    assert (step["expected"], step["received"]) == ("tenant-a", "tenant-b")
    events = api.get("/accounts/acme/audit-events?code=sso.tenant_mismatch")
    assert events[0]["detail"]["detail_code"] == "oidc.tenant_mismatch"


def test_connect_organization_binds_the_tenant(api, oidc, oidc_connection, make_account):
    make_account("acme")
    admin = password_user(api, "acme", "admin@acme.com", ["sso-admin"])
    connection = oidc_connection(oidc, oidc={"tenant_binding": UNBOUND})
    # Unbound: nobody can sign in yet.
    refused = oidc.login(Client(), connection, subject="u-a", claims=claims_of("alice@acme.com", tid="tenant-a"))
    assert (
        refused.status_code == 403
        and b"sso.tenant_mismatch" in refused.content
        and b"oidc.tenant_mismatch" in refused.content
    )

    browser = Client()
    password_login(browser, "admin@acme.com")
    redirect = start_connect(browser, connection)
    pending = PendingLogin.objects.get(key=parse_qs(urlsplit(redirect["Location"]).query)["state"][0])
    assert pending.purpose == "connect" and pending.initiated_by_id == admin.pk
    # At the provider, any member of the external organization may complete this step (seed 003).
    callback = oidc.authorize(
        redirect, connection, subject="it-person", claims=claims_of("it@acme.com", tid="tenant-a")
    )
    done = browser.get(callback)
    assert done.status_code == 200 and b"tenant-a" in done.content, done.content.decode()[:800]
    # Connecting does not sign the admin in as the provider's user.
    assert session(browser)["email"] == "admin@acme.com"

    stored = api.get(f"/connections/{connection['id']}")
    assert stored["external_tenant_id"] == "tenant-a" and stored["tenant_verified_at"]
    event = last_event("connection.organization_connected")
    assert event.actor_user_id == admin.pk and event.detail["tenant"] == "tenant-a"

    assert (
        oidc.login(Client(), connection, subject="u-a", claims=claims_of("alice@acme.com", tid="tenant-a")).status_code
        == 302
    )
    other = oidc.login(Client(), connection, subject="u-b", claims=claims_of("bob@acme.com", tid="tenant-b"))
    assert other.status_code == 403 and b"oidc.tenant_mismatch" in other.content


def test_connect_organization_refused_for_non_admin(api, oidc, oidc_connection, make_account):
    make_account("acme")
    password_user(api, "acme", "ann@acme.com", ["analyst"])
    connection = oidc_connection(oidc, oidc={"tenant_binding": UNBOUND})
    anonymous = Client().get(connect_path(connection))
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login?")
    browser = Client()
    password_login(browser, "ann@acme.com")
    response = browser.get(connect_path(connection))
    assert response.status_code == 403 and b"sso.connect_not_allowed" in response.content
    posted = browser.post(connect_path(connection), {})
    assert posted.status_code == 403 and b"sso.connect_not_allowed" in posted.content
    assert not PendingLogin.objects.filter(connection_id=connection["id"]).exists()
    assert api.get(f"/connections/{connection['id']}")["external_tenant_id"] is None


def test_connect_organization_refused_when_admin_loses_the_role_midway(api, oidc, oidc_connection, make_account):
    make_account("acme")
    admin = password_user(api, "acme", "admin@acme.com", ["sso-admin"])
    connection = oidc_connection(oidc, oidc={"tenant_binding": UNBOUND})
    browser = Client()
    password_login(browser, "admin@acme.com")
    redirect = start_connect(browser, connection)
    api.put(f"/accounts/acme/users/{admin.pk}/roles", {"roles": ["analyst"]})
    callback = oidc.authorize(
        redirect, connection, subject="it-person", claims=claims_of("it@acme.com", tid="tenant-a")
    )
    response = browser.get(callback)
    assert response.status_code == 403 and b"sso.connect_not_allowed" in response.content
    assert api.get(f"/connections/{connection['id']}")["external_tenant_id"] is None


def test_setup_url_is_admin_consent_for_entra_style_binding(api, oidc, oidc_connection, make_account):
    make_account("acme")
    password_user(api, "acme", "admin@acme.com", ["sso-admin"])
    connection = oidc_connection(oidc, oidc={"tenant_binding": {"kind": "entra"}})
    body = api.get(f"/connections/{connection['id']}/oidc/setup-url")
    url = urlsplit(body["setup_url"])
    assert f"{url.scheme}://{url.netloc}" == oidc.issuer and url.path == "/organizations/v2.0/adminconsent"
    query = parse_qs(url.query)
    assert query["client_id"] == [oidc.client_id] and query["redirect_uri"] == [connection["redirect_uri"]]
    assert body["connect_url"].endswith(connect_path(connection))

    browser = Client()
    password_login(browser, "admin@acme.com")
    callback = oidc.authorize(
        start_connect(browser, connection), connection, subject="it", claims=claims_of("it@acme.com", tid="tenant-a")
    )
    assert browser.get(callback).status_code == 200
    bound = urlsplit(api.get(f"/connections/{connection['id']}/oidc/setup-url")["setup_url"])
    assert bound.path == "/tenant-a/v2.0/adminconsent"


def test_setup_url_is_null_for_providers_without_admin_consent(api, oidc, oidc_connection):
    connection = oidc_connection(oidc, oidc={"tenant_binding": UNBOUND})
    body = api.get(f"/connections/{connection['id']}/oidc/setup-url")
    assert body["setup_url"] is None and body["connect_url"].endswith(connect_path(connection))


def test_one_external_organization_linked_to_several_projects(api, oidc, oidc_connection):
    """Seed 003: users of the bound organization get every linked project of the account."""
    connection = oidc_connection(
        oidc, oidc={"tenant_binding": {**UNBOUND, "tenant_id": "tenant-a"}}, linked_projects=["production", "sandbox"]
    )
    browser = Client()
    assert (
        oidc.login(browser, connection, subject="u-a", claims=claims_of("alice@acme.com", tid="tenant-a")).status_code
        == 302
    )
    projects = {p["slug"] for p in session(browser)["accounts"][0]["projects"]}
    assert projects == {"production", "sandbox"}
    api.patch(f"/connections/{connection['id']}", {"linked_projects": ["production"]})
    assert {p["slug"] for p in session(browser)["accounts"][0]["projects"]} == {"production"}


def test_connect_organization_works_before_the_connection_is_enabled(api, oidc, oidc_connection, make_account):
    """Connect first, then enable: an enabled but unbound connection would lock the domain's users out."""
    make_account("acme")
    password_user(api, "acme", "admin@acme.com", ["sso-admin"])
    connection = oidc_connection(oidc, oidc={"tenant_binding": UNBOUND}, enabled=False)
    browser = Client()
    password_login(browser, "admin@acme.com")
    callback = oidc.authorize(
        start_connect(browser, connection), connection, subject="it", claims=claims_of("it@acme.com", tid="tenant-a")
    )
    assert browser.get(callback).status_code == 200
    assert api.get(f"/connections/{connection['id']}")["external_tenant_id"] == "tenant-a"
    # Logins still wait for the connection to be enabled.
    disabled = Client().get(f"/sso/start/{connection['id']}")
    assert disabled.status_code == 403 and b"sso.connection_disabled" in disabled.content
    api.patch(f"/connections/{connection['id']}", {"enabled": True})
    assert (
        oidc.login(Client(), connection, subject="u-a", claims=claims_of("alice@acme.com", tid="tenant-a")).status_code
        == 302
    )


def test_tenant_learned_for_an_entra_template_issuer_binds_later_logins(api, make_account):
    """Glue: an Entra multi-tenant issuer without explicit tenant_binding keeps the tenant connect learned."""
    from vestibule.connections.models import Connection
    from vestibule.oidc import ProviderMetadata, TenantBinding, validate_tenant
    from vestibule.oidc.errors import TenantMismatch
    from vestibule.signin import adapters

    make_account("acme")
    issuer = "https://login.microsoftonline.com/organizations/v2.0"
    payload = {
        "protocol": "oidc",
        "name": "Entra",
        "domains": ["acme.com"],
        "oidc": {"issuer": issuer, "client_id": "app", "client_secret": "s"},
    }
    created = api.post("/accounts/acme/connections", payload).json()
    connection = Connection.objects.get(pk=created["id"])
    connection.external_tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47"  # as "connect organization" records it
    connection.save()
    config = adapters.client_config(connection)
    assert config.tenant_binding == TenantBinding(kind="entra", tenant_id=connection.external_tenant_id)
    template = "https://login.microsoftonline.com/{tenantid}/v2.0"
    metadata = ProviderMetadata(template, f"{issuer}/authorize", f"{issuer}/token", f"{issuer}/keys")
    assert (
        validate_tenant({"tid": connection.external_tenant_id}, config=config, metadata=metadata)
        == connection.external_tenant_id
    )
    with pytest.raises(TenantMismatch):
        validate_tenant({"tid": "00000000-0000-0000-0000-000000000000"}, config=config, metadata=metadata)


def test_unbinding_the_organization_refuses_everyone_until_connected_again(api, oidc, oidc_connection):
    """PATCH external_tenant_id=null unbinds; a tenant can't be typed in, only verified by a login."""
    connection = oidc_connection(oidc, oidc={"tenant_binding": UNBOUND})
    from vestibule.connections.models import Connection

    Connection.objects.filter(pk=connection["id"]).update(external_tenant_id="tenant-a")
    assert (
        oidc.login(Client(), connection, subject="u-a", claims=claims_of("alice@acme.com", tid="tenant-a")).status_code
        == 302
    )
    typed = api.patch(f"/connections/{connection['id']}", {"external_tenant_id": "tenant-b"}, expect=422)
    assert typed.json()["field"] == "external_tenant_id"
    cleared = api.patch(f"/connections/{connection['id']}", {"external_tenant_id": None}).json()
    assert cleared["external_tenant_id"] is None and cleared["tenant_verified_at"] is None
    refused = oidc.login(Client(), connection, subject="u-a", claims=claims_of("alice@acme.com", tid="tenant-a"))
    assert refused.status_code == 403 and b"oidc.tenant_mismatch" in refused.content
