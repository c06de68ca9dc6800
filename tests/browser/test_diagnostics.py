"""Diagnostics in the browser: a refused SSO login followed from its failure page to its trace, the audit log's
filters, an API key shown once, the domains page; axe on every page."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest

from vestibule.audit.events import record
from vestibule.audit.models import AuditEvent, LoginTrace
from vestibule.authority.models import ApiKey
from vestibule.connections.models import Connection

pytestmark = [pytest.mark.browser]


@pytest.fixture
def demo_connection(live: str, settings: Any, tmp_path: Any, make_account: Callable[..., Any]) -> Connection:
    """A SAML connection of acme to the built-in test IdP that creates nobody: an unknown person is refused."""
    from vestibule.connections import rules
    from vestibule.testidp import idp

    settings.VESTIBULE_TEST_IDP = True
    settings.CONFIG = dataclasses.replace(settings.CONFIG, data_dir=tmp_path)
    connection = rules.create_connection(
        make_account("acme"),
        {"protocol": Connection.Protocol.SAML, "name": "Test IdP", "domains": ["acme.test"]},
        may_claim=True,
    )
    rules.import_idp_metadata(connection, idp.metadata_xml())
    rules.update_connection(connection, {"enabled": True})
    return connection


def test_the_failure_page_leads_the_sso_admin_to_the_trace(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
    demo_connection: Connection,
) -> None:
    sam = make_person("sam@sso-team.test", roles=["sso-admin"])
    sign_in(page, sam.email)
    page.goto(url(f"/sso/start/{demo_connection.pk}"))
    page.get_by_label("Email").fill("newcomer@acme.test")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/acs"))
    assert page.get_by_role("alert").is_visible()
    link = page.get_by_role("link", name="Open the login trace")
    axe_clean(page, "SSO failure page")
    link.click()
    page.wait_for_url(re.compile(r"/console/a/acme/traces/"))
    traces = list(LoginTrace.objects.filter(connection_id=demo_connection.pk).values_list("reason_code", "steps"))
    trace = LoginTrace.objects.get(connection_id=demo_connection.pk, outcome="failure")
    assert str(trace.pk) in page.url, traces and trace.reason_code == "sso.provisioning_disabled"
    main = page.locator("main")
    assert "Expected" in main.inner_text() and "Received" in main.inner_text()
    assert "newcomer@acme.test" in main.inner_text()
    assert page.get_by_role("region", name="Where to fix it").is_visible()
    assert page.get_by_role("link", name="Open Users").count() in (0, 1)
    axe_clean(page, "login trace detail")
    shot(page, "login-trace")

    page.get_by_role("link", name="Back to login traces").click()
    page.get_by_label("Outcome").select_option("failure")
    page.get_by_label("Reason code").fill("sso.provisioning_disabled")
    page.get_by_role("button", name="Show traces").click()
    assert page.get_by_role("link", name=re.compile("Open trace")).count() == 1
    axe_clean(page, "login traces list")
    shot(page, "login-traces")


def test_the_refused_person_sees_the_reference_but_no_link(
    page: Any, url: Callable[[str], str], axe_clean: Callable[..., Any], demo_connection: Connection
) -> None:
    page.goto(url(f"/sso/start/{demo_connection.pk}"))
    page.get_by_label("Email").fill("newcomer@acme.test")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/acs"))
    assert "Reference for your administrator" in page.locator("main").inner_text()
    assert page.get_by_role("link", name="Open the login trace").count() == 0
    trace = LoginTrace.objects.get(connection_id=demo_connection.pk, outcome="failure")
    page.goto(url(f"/console/a/acme/traces/{trace.pk}/"))
    assert "/login" in page.url


def test_filter_the_audit_log(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
) -> None:
    ann = make_person("ann@acme.test", roles=["administrator"])
    account = ann.memberships.get().account
    record("domain.share_offered", account=account, actor_user=ann, domain="acme.test", offered_to="beta")
    record("api_key.created", account=account, actor_user=ann, key="abc123", roles=["sso-admin"])
    sign_in(page, ann.email)
    page.goto(url("/console/a/acme/audit/"))
    axe_clean(page, "audit log")
    page.get_by_label("Event type").fill("domain.")
    page.get_by_role("button", name="Show events").click()
    rows = page.locator("tbody tr")
    assert rows.count() == 1 and "domain.share_offered" in rows.first.inner_text()
    page.locator("summary").first.click()
    assert '"offered_to": "beta"' in page.locator("pre").first.inner_text()
    axe_clean(page, "audit log filtered")
    shot(page, "audit-log")

    page.get_by_label("From (date)").fill("2030-01-02")
    page.get_by_label("To (date, included)").fill("2030-01-01")
    page.get_by_role("button", name="Show events").click()
    assert "The end date is before the start date." in page.locator("main").inner_text()
    axe_clean(page, "audit log with a refused filter")


def test_create_an_api_key_see_it_once_and_revoke_it(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
) -> None:
    ann = make_person("ann@acme.test", roles=["administrator"])
    sign_in(page, ann.email)
    page.goto(url("/console/a/acme/api-keys/"))
    axe_clean(page, "API keys")
    page.get_by_role("button", name="Create API key").click()
    assert page.locator("[aria-invalid='true'], .field-error").count() >= 1
    axe_clean(page, "API key form with errors")

    page.get_by_label("Name").fill("Deploy bot")
    page.get_by_label("Administrator").uncheck()
    page.get_by_label("SSO admin").check()
    page.get_by_role("button", name="Create API key").click()
    assert "will not be shown again" in page.locator("main").inner_text()
    secret = page.locator("#api-key-secret").inner_text().strip()
    key = ApiKey.objects.get(name="Deploy bot")
    assert ApiKey.authenticate(secret) == key and key.roles == ["sso-admin"]
    axe_clean(page, "API key created")
    shot(page, "api-key-created")

    page.get_by_role("link", name="Done, back to API keys").click()
    assert secret not in page.content() and key.prefix in page.content()
    page.get_by_role("button", name="Revoke Deploy bot").click()
    dialog = page.locator("#confirm-dialog")
    assert dialog.is_visible()
    dialog.get_by_role("button", name="Revoke key").click()
    page.wait_for_load_state("load")
    assert "is revoked" in page.locator("#notices").inner_text()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEvent.objects.filter(code="api_key.revoked", detail__key=key.prefix).exists()


def test_domains_page_starts_a_verification(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
) -> None:
    ann = make_person("ann@acme.test", roles=["administrator", "sso-admin"])
    sign_in(page, ann.email)
    page.goto(url("/console/a/acme/domains/"))
    axe_clean(page, "domains")
    page.get_by_role("textbox", name="Domain").fill("gmail.com")
    page.get_by_role("button", name="Start verification").click()
    assert "public mail domain" in page.locator(".field-error").inner_text()
    assert page.get_by_role("textbox", name="Domain").input_value() == "gmail.com"
    axe_clean(page, "domains with a refused domain")
    page.get_by_role("textbox", name="Domain").fill("acme-example.test")
    page.get_by_role("button", name="Start verification").click()
    assert "_vestibule-challenge.acme-example.test" in page.locator("main").inner_text()
    assert page.get_by_role("button", name="Copy the record value").is_visible()
    assert page.get_by_role("button", name="Check acme-example.test now").is_visible()
    axe_clean(page, "domains with a pending verification")
    shot(page, "domains")


def test_diagnostics_pages_at_phone_width(
    phone_page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
) -> None:
    ann = make_person("ann@acme.test", roles=["administrator", "sso-admin"])
    account = ann.memberships.get().account
    LoginTrace.objects.create(
        account=account, protocol="saml", outcome="failure", reason_code="sso.claim_missing.email", email="x@acme.test"
    )
    record("domain.claimed", account=account, actor_user=ann, domain="acme.test")
    sign_in(phone_page, ann.email)
    for path, name in (
        ("/console/a/acme/traces/", "login traces"),
        ("/console/a/acme/audit/", "audit log"),
        ("/console/a/acme/api-keys/", "API keys"),
        ("/console/a/acme/domains/", "domains"),
    ):
        phone_page.goto(url(path))
        axe_clean(phone_page, f"{name} at 375 px")
        # Nothing is wider than the screen: only the tables' wrappers scroll sideways (console.css lets main shrink).
        width = phone_page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 375 + 1, f"{name} is {width}px wide at 375 px"
    shot(phone_page, "audit-log-phone")
