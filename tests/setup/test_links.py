"""Setup links: the console's list/create/revoke, the link's life (open, bind, expire, revoke, spend), tenancy, hostile input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from tests.setup.conftest import IDP, OTHER_IDP, idp_metadata, link_url
from vestibule.audit.models import AuditEvent
from vestibule.connections import metadata_refresh, rules
from vestibule.connections.models import Connection, IdpMetadataSource
from vestibule.login.mail import wait_for_background_mail
from vestibule.setup.models import SetupLink
from vestibule.signin import adapters

pytestmark = pytest.mark.django_db

LIST = "/console/a/acme/setup-links/"


def _create(admin: Any, connection: Connection, provider: str = "okta", hours: int = 72, path: str = LIST) -> Any:
    return admin.post(path, {"connection": str(connection.pk), "provider": provider, "hours": hours}, page=path)


@pytest.fixture
def ctx(person: Any, connection: Any, it_admin: Any) -> dict[str, Any]:
    conn = connection()
    admin = person("sam@acme.com", roles=["sso-admin"])
    page = _create(admin, conn)
    assert page.status_code == 200, page.content[:1000]
    return {"conn": conn, "admin": admin, "url": link_url(page.content.decode()), "page": page, "it": it_admin()}


def test_created_link_is_shown_once_and_stored_as_a_digest(ctx: dict[str, Any]) -> None:
    url, admin = ctx["url"], ctx["admin"]
    token = url.rsplit("/", 1)[1]
    assert token.startswith("vsu_") and url.startswith("http://localhost/setup/vsu_")
    link = SetupLink.objects.get()
    assert link.provider == "okta" and link.connection == ctx["conn"] and link.created_by == admin.user
    assert token.split("_", 2)[2] not in str(SetupLink.objects.values().get())
    assert dt.timedelta(hours=71) < link.expires_at - timezone.now() <= dt.timedelta(hours=72)
    listing = admin.get(LIST).content.decode()
    assert token not in listing and link.prefix in listing and "Open" in listing
    assert AuditEvent.objects.filter(code="setup_link.created", connection_id=ctx["conn"].pk).count() == 1


def test_opening_binds_the_link_to_the_first_browser(ctx: dict[str, Any], it_admin: Any) -> None:
    it = ctx["it"]
    # A GET (link previews, mail scanners) explains and claims nothing.
    assert it.get(ctx["url"].removeprefix("http://localhost")).status_code == 200
    assert SetupLink.objects.get().browser_digest == ""
    r = it.open(ctx["url"])
    assert r.status_code == 302 and r["Location"].startswith("/setup/s/")
    assert it.get(r["Location"]).status_code == 200
    link = SetupLink.objects.get()
    assert link.opened_at is not None and link.browser_digest
    assert AuditEvent.objects.filter(code="setup_link.opened").count() == 1
    # Opened again by the same browser: straight back in.
    assert it.get(ctx["url"].removeprefix("http://localhost")).status_code == 302
    # Someone else with the leaked URL, or the wizard's address: refused, nothing named.
    other = it_admin()
    refused = other.get(ctx["url"].removeprefix("http://localhost"))
    assert refused.status_code == 403 and b"another browser" in refused.content
    assert b"Acme" not in refused.content and b"Okta" not in refused.content
    assert other.client.get(r["Location"]).status_code == 403
    assert Client().post(r["Location"].replace("/s/", "/s/") + "idp", {"metadata_xml": "x"}).status_code == 403


def test_values_page_shows_the_connections_values_and_claim_names(ctx: dict[str, Any], settings: Any) -> None:
    settings.VESTIBULE_PRODUCT_NAME = "Acme Access"
    conn: Connection = ctx["conn"]
    conn.claims = {"email": "mail", "role_mapping": "groups", "roles": "app_roles"}
    conn.save()
    it = ctx["it"]
    it.open(ctx["url"])
    page = it.get(it.step("values")).content.decode()
    assert f"/sso/saml/{conn.pk}/acs" in page or f"{conn.pk}" in page
    for text in (
        "Single sign-on URL",
        "Audience URI (SP Entity ID)",
        "Attribute Statements",
        'data-copy-from="value-acs_url"',
    ):
        assert text in page
    for name in (">mail<", ">groups<", ">app_roles<", ">name<"):
        assert name in page
    assert "console.js" in page and "Acme Access" in page and "Vestibule" not in page


@pytest.mark.parametrize("provider", ["okta", "entra", "google", "adfs", "onelogin", "keycloak", "saml"])
def test_every_saml_provider_has_its_guide(ctx: dict[str, Any], provider: str) -> None:
    it = ctx["it"]
    it.open(ctx["url"])
    assert it.post(it.step(""), {"provider": provider}).status_code == 302
    page = it.get(it.step("values"))
    assert page.status_code == 200
    assert SetupLink.Provider(provider).label in page.content.decode()


def test_oidc_connection_offers_oidc_providers_only(person: Any, connection: Any, it_admin: Any) -> None:
    conn = connection(
        protocol="oidc",
        name="Entra",
        oidc={"issuer": "https://login.example.test", "client_id": "tbd", "client_secret": "tbd"},
    )
    admin = person("sam@acme.com", roles=["sso-admin"])
    assert _create(admin, conn, provider="adfs").status_code == 400
    page = _create(admin, conn, provider="entra")
    it = it_admin()
    it.open(link_url(page.content.decode()))
    values = it.get(it.step("values")).content.decode()
    assert f"/sso/oidc/{conn.pk}/callback" in values or "Redirect URI" in values
    assert "App registrations" in values
    assert it.post(it.step(""), {"provider": "adfs"}).status_code == 400


def test_expired_revoked_and_spent_links_say_what_to_do(ctx: dict[str, Any], it_admin: Any) -> None:
    it = ctx["it"]
    it.open(ctx["url"])
    link = SetupLink.objects.get()
    SetupLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    for page in (it.get(it.step("values")), it.get(ctx["url"].removeprefix("http://localhost"))):
        assert page.status_code == 410 and b"Ask the person who sent it" in page.content
        assert b"Okta" not in page.content
    assert "Expired" in ctx["admin"].get(LIST).content.decode()


def test_revoke_needs_confirmation_and_stops_the_link(ctx: dict[str, Any]) -> None:
    it, admin = ctx["it"], ctx["admin"]
    it.open(ctx["url"])
    link = SetupLink.objects.get()
    listing = admin.get(LIST).content.decode()
    assert "data-confirm=" in listing and f"Revoke link {link.prefix}" in listing
    r = admin.post(f"{LIST}{link.prefix}/revoke", page=LIST)
    assert r.status_code == 302
    assert SetupLink.objects.get().status == "revoked"
    assert it.get(it.step("values")).status_code == 410
    assert AuditEvent.objects.filter(code="setup_link.revoked").count() == 1
    # Revoking twice changes nothing.
    assert admin.post(f"{LIST}{link.prefix}/revoke", page=LIST).status_code == 302
    assert AuditEvent.objects.filter(code="setup_link.revoked").count() == 1


def test_finish_spends_the_link_and_tells_the_creator(ctx: dict[str, Any]) -> None:
    it, admin = ctx["it"], ctx["admin"]
    it.open(ctx["url"])
    assert it.post(it.step("idp"), {"metadata_xml": idp_metadata()}).status_code == 302
    assert it.post(it.step("finish")).status_code == 200
    link = SetupLink.objects.get()
    assert link.status == "used" and link.finished_at is not None
    assert it.get(it.step("values")).status_code in (403, 410)
    listing = admin.get(LIST).content.decode()
    assert "Used" in listing and "/console/a/acme/connections/" in listing
    assert AuditEvent.objects.filter(code="setup_link.finished").count() == 1
    wait_for_background_mail()
    assert any(m.to == ["sam@acme.com"] and "finished" in m.subject for m in mail.outbox)
    # Still disabled: the sso-admin enables it.
    assert Connection.objects.get().enabled is False


def test_the_link_configures_its_connection_only_and_never_enables_it(ctx: dict[str, Any], connection: Any) -> None:
    conn: Connection = ctx["conn"]
    sibling = connection("acme", name="Other", domain="acme.org")
    before = {
        "enabled": conn.enabled, "auto": conn.auto_provision, "domains": conn.domain_list, "claims": conn.claims,
        "authz": conn.sso_authorization,
    }  # fmt: skip
    it = ctx["it"]
    it.open(ctx["url"])
    # Fields the wizard never offers are ignored whatever is posted.
    r = it.post(
        it.step("idp"),
        {
            "metadata_xml": idp_metadata(),
            "enabled": "on",
            "auto_provision": "on",
            "domains": "evil.com",
            "connection": str(sibling.pk),
        },
    )
    assert r.status_code == 302
    conn.refresh_from_db()
    assert conn.saml_settings["idp_entity_id"] == IDP.entity_id
    after = {
        "enabled": conn.enabled, "auto": conn.auto_provision, "domains": conn.domain_list, "claims": conn.claims,
        "authz": conn.sso_authorization,
    }  # fmt: skip
    assert after == before
    sibling.refresh_from_db()
    assert sibling.saml_settings.get("idp_entity_id") in (None, "")
    # The wizard's addresses take the link's id; another connection's id is no link.
    assert it.get(f"/setup/s/{sibling.pk}/values").status_code == 404


def test_other_accounts_admins_and_plain_members_cannot_touch_links(
    ctx: dict[str, Any], person: Any, connection: Any
) -> None:
    link = SetupLink.objects.get()
    beta_conn = connection("beta", name="Beta IdP", domain="beta.com")
    outsider = person("bob@beta.com", account="beta", roles=["sso-admin"])
    member = person("max@acme.com", roles=["analyst"])
    user_manager = person("uma@acme.com", roles=["user-manager"])
    assert outsider.get(LIST).status_code == 404
    assert member.get(LIST).status_code in (403, 404)
    assert user_manager.get(LIST).status_code == 403
    assert outsider.post(f"{LIST}{link.prefix}/revoke", page="/console/a/beta/setup-links/").status_code == 404
    # Beta's sso-admin naming Acme's connection from Beta's own page: refused, nothing created.
    r = _create(outsider, ctx["conn"], path="/console/a/beta/setup-links/")
    assert r.status_code == 400
    # ...and revoking Acme's link from Beta's page: not found.
    assert (
        outsider.post(
            f"/console/a/beta/setup-links/{link.prefix}/revoke", page="/console/a/beta/setup-links/"
        ).status_code
        == 404
    )
    assert SetupLink.objects.count() == 1 and SetupLink.objects.get().status == "open"
    assert not SetupLink.objects.filter(connection=beta_conn).exists()
    assert link.prefix not in outsider.get("/console/a/beta/setup-links/").content.decode()


@pytest.mark.parametrize(
    "token",
    ["x", "vsu_", "vsu_000000000000_" + "a" * 43, "vsu_zz_" + "a" * 43, "%00", "vsu_" + "a" * 5000, "../../etc/passwd"],
)
def test_bad_tokens_are_a_plain_404(token: str, db: None) -> None:
    r = Client().get(f"/setup/{token}")
    assert r.status_code == 404
    r = Client().post(f"/setup/{token}")
    assert r.status_code in (403, 404)  # CSRF first for a form-less POST


def test_token_guessing_is_rate_limited(ctx: dict[str, Any]) -> None:
    browser = Client()
    statuses = [browser.get(f"/setup/vsu_000000000000_{'a' * 40}{i:03d}").status_code for i in range(35)]
    assert statuses[0] == 404 and statuses[-1] == 429
    # The real link too is refused from that address while the window lasts.
    assert browser.get(ctx["url"].removeprefix("http://localhost")).status_code == 429


def test_hostile_metadata_never_5xx(ctx: dict[str, Any], settings: Any) -> None:
    it = ctx["it"]
    it.open(ctx["url"])
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        '<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&e;"/>'
    )
    settings.VESTIBULE_OUTBOUND_ALLOW = []
    cases: list[dict[str, str]] = [
        {"metadata_xml": xxe},
        {"metadata_xml": "<" * 600_000},
        {"metadata_xml": "not xml at all"},
        {"metadata_xml": ""},
        {"metadata_url": "http://127.0.0.1/metadata"},
        {"metadata_url": "https://10.0.0.1/metadata"},
        {"metadata_url": "https://169.254.169.254/latest/meta-data"},
        {"metadata_url": "https://localhost/metadata"},
        {"metadata_url": "file:///etc/passwd"},
        {"metadata_url": "https://" + "a" * 3000},
    ]
    for data in cases:
        r = it.post(it.step("idp"), data)
        assert r.status_code == 400, (data.keys(), r.status_code)
        assert b'class="field-error"' in r.content
        assert b"root:" not in r.content
    conn = Connection.objects.get()
    assert conn.saml_settings.get("idp_entity_id") in (None, "")
    assert not IdpMetadataSource.objects.exists()


def test_metadata_url_is_fetched_by_the_guarded_client(ctx: dict[str, Any], monkeypatch: Any) -> None:
    fetched: list[str] = []

    def fake_fetch(client: Any, url: str) -> bytes:
        fetched.append(url)
        assert client is adapters.http_client()
        return idp_metadata().encode()

    monkeypatch.setattr(metadata_refresh, "fetch", fake_fetch)
    it = ctx["it"]
    it.open(ctx["url"])
    r = it.post(it.step("idp"), {"metadata_url": "https://idp.example.test/metadata"})
    assert r.status_code == 302, r.content[:2000]
    assert fetched == ["https://idp.example.test/metadata"]
    conn = Connection.objects.get()
    assert conn.saml_settings["idp_entity_id"] == IDP.entity_id and conn.enabled is False
    assert IdpMetadataSource.objects.get(connection=conn).url == "https://idp.example.test/metadata"


def test_console_form_errors_keep_the_input(ctx: dict[str, Any]) -> None:
    admin = ctx["admin"]
    for data in (
        {"connection": "not-a-uuid", "provider": "okta", "hours": "72"},
        {"connection": str(ctx["conn"].pk), "provider": "nope", "hours": "72"},
        {"connection": str(ctx["conn"].pk), "provider": "okta", "hours": "100000"},
        {"connection": str(ctx["conn"].pk), "provider": "oidc", "hours": "72"},
    ):
        r = admin.post(LIST, data)
        assert r.status_code == 400 and b'aria-invalid="true"' in r.content
    assert SetupLink.objects.count() == 1
    assert admin.post(f"{LIST}nonexistent/revoke", page=LIST).status_code == 404


def test_an_enabled_connection_cannot_be_changed_through_a_link(ctx: dict[str, Any]) -> None:
    it = ctx["it"]
    it.open(ctx["url"])
    assert it.post(it.step("idp"), {"metadata_xml": idp_metadata()}).status_code == 302
    rules.update_connection(Connection.objects.get(), {"enabled": True})
    before = Connection.objects.get().saml_settings
    other = idp_metadata(OTHER_IDP).replace(IDP.entity_id, "https://takeover.example.test/metadata")
    r = it.post(it.step("idp"), {"metadata_xml": other})
    assert r.status_code == 400 and b"already switched on" in r.content
    assert Connection.objects.get().saml_settings == before
