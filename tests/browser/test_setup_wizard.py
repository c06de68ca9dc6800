"""Issue 12, Deliver 3 in Chromium: an sso-admin creates a setup link; the IT admin, in another browser, walks the
Okta wizard (copy buttons), pastes the test IdP's metadata, runs a successful and a failing test sign-in, finishes;
the console shows the link as used. axe on every wizard step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vestibule.accounts.models import Account, Membership, User
from vestibule.connections import rules
from vestibule.connections.models import Connection, ExternalIdentity
from vestibule.setup import services
from vestibule.setup.models import SetupLink
from vestibule.signin import adapters
from vestibule.testidp import idp

pytestmark = [pytest.mark.browser]

LIST = "/console/a/acme/setup-links/"


def test_sso_admin_link_to_it_admin_wizard_with_test_sign_ins(
    page: Any,
    new_page: Callable[..., Any],
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
    settings: Any,
) -> None:
    settings.VESTIBULE_TEST_IDP = True
    account, _ = Account.objects.get_or_create(slug="acme", defaults={"name": "Acme"})
    connection = rules.create_connection(
        account,
        {"protocol": "saml", "name": "Okta", "domains": ["acme.test"], "auto_provision": True,
         "provisioned_users_can_login": True},
        may_claim=True,
    )  # fmt: skip
    sam = make_person("sam@acme.test", roles=["sso-admin"])

    # The sso-admin creates the link in the console.
    sign_in(page, sam.email, next_url=LIST)
    page.goto(url(LIST))
    axe_clean(page, "setup links list")
    page.get_by_label("Connection").select_option(str(connection.pk))
    page.get_by_label("Identity provider").select_option("okta")
    with page.expect_navigation():
        page.get_by_role("button", name="Create setup link").click()
    link_url = page.locator("#setup-link-url").inner_text().strip()
    assert "/setup/vsu_" in link_url
    axe_clean(page, "setup link created")

    # The IT admin: another browser, no account.
    it = new_page(permissions=["clipboard-read", "clipboard-write"])
    it.goto(link_url)
    axe_clean(it, "setup: open")
    with it.expect_navigation():
        it.get_by_role("button", name="Start the setup in this browser").click()
    assert "/setup/s/" in it.url
    axe_clean(it, "setup: provider")
    assert it.get_by_label("Okta").is_checked()
    with it.expect_navigation():
        it.get_by_role("button", name="Continue to the values to paste").click()
    axe_clean(it, "setup: values")
    acs = adapters.sp_urls(connection)["acs_url"]
    it.get_by_role("button", name="Copy ACS URL (Single sign-on URL, Reply URL)").click()
    it.wait_for_function("() => document.getElementById('announcer').textContent.includes('Copied')")
    assert it.evaluate("() => navigator.clipboard.readText()") == acs
    assert "Audience URI (SP Entity ID)" in it.content()
    shot(it, "setup-wizard-values")

    # A leaked link opened elsewhere is refused.
    stranger = new_page()
    answer = stranger.goto(link_url)
    assert answer is not None and answer.status == 403

    with it.expect_navigation():
        it.get_by_role("link", name="Done: enter Okta's details").click()
    axe_clean(it, "setup: provider details")
    it.get_by_label("Or the metadata XML").fill(idp.metadata_xml().decode())
    with it.expect_navigation():
        it.get_by_role("button", name="Save the metadata").click()
    assert "/test" in it.url and "Saved." in it.content()
    axe_clean(it, "setup: test sign-in")
    assert Connection.objects.get(pk=connection.pk).enabled is False

    # A successful test sign-in: claims and plan shown, nobody signed in or created.
    it.get_by_role("button", name="Start a test sign-in through Okta").click()
    it.get_by_label("Email").fill("ann@acme.test")
    it.get_by_label("Name (optional)").fill("Ann Admin")
    it.get_by_role("button", name="Sign in").click()
    it.wait_for_url("**/test/result")
    result = it.locator("section[data-outcome]")
    assert result.get_attribute("data-outcome") == "create"
    text = result.inner_text()
    assert "Would create a new person" in text and "ann@acme.test" in text and "Ann Admin" in text
    axe_clean(it, "setup: test result")
    shot(it, "setup-test-login")
    assert not User.objects.filter(email="ann@acme.test").exists()
    assert not ExternalIdentity.objects.exists() and Membership.objects.count() == 1
    assert not [c for c in it.context.cookies() if c["name"] == "sessionid"]

    # A failing one: an address outside the connection's domain, refused with its reason code.
    it.get_by_role("button", name="Test again").click()
    it.get_by_label("Email").fill("eve@elsewhere.test")
    it.get_by_role("button", name="Sign in").click()
    it.wait_for_url("**/test/result")
    assert it.locator("section[data-outcome]").get_attribute("data-outcome") == "refused"
    failure = it.locator("section[data-outcome]").inner_text()
    assert "sso.email_domain_not_owned" in failure and "Expected" in failure
    axe_clean(it, "setup: failed test result")

    # Finish: confirmed, the link is spent.
    with it.expect_navigation():
        it.get_by_role("link", name="Continue to finish").click()
    axe_clean(it, "setup: finish")
    it.get_by_role("button", name="Finish the setup of Okta").click()
    dialog = it.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    with it.expect_navigation():
        dialog.locator("[data-confirm-ok]").click()
    assert it.get_by_role("heading", name="Setup finished").is_visible()
    axe_clean(it, "setup: done")
    assert SetupLink.objects.get().status == "used"

    page.goto(url(LIST))
    row = page.locator("tr", has_text=connection.name)
    assert "Used" in row.inner_text()
    assert row.get_by_role("link", name="Review and enable Okta").count() == 1
    axe_clean(page, "setup links list, link used")
    shot(page, "setup-links-console")
    assert Connection.objects.get(pk=connection.pk).enabled is False


def test_the_wizard_works_at_phone_width(
    phone_page: Any, url: Callable[[str], str], axe_clean: Callable[..., Any], shot: Callable[[Any, str], Any]
) -> None:
    account, _ = Account.objects.get_or_create(slug="acme", defaults={"name": "Acme"})
    connection = rules.create_connection(
        account, {"protocol": "saml", "name": "Entra ID", "domains": ["acme.test"]}, may_claim=True
    )
    _, token = services.create(account, connection, "entra", 1, created_by=None, label="test")
    phone_page.goto(url(f"/setup/{token}"))
    with phone_page.expect_navigation():
        phone_page.get_by_role("button", name="Start the setup in this browser").click()
    phone_page.goto(phone_page.url + "values")
    assert "Basic SAML Configuration" in phone_page.content()
    axe_clean(phone_page, "setup: values at 375 px")
    # Long URLs wrap inside their boxes; the page itself never scrolls sideways.
    assert phone_page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(phone_page, "setup-wizard-values-phone")
