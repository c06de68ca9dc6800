"""Seed 001 and seed 003 through the real console in Chromium: the connection boxes and their dialogs.

Each test drives the page as an sso-admin would (clicks, the confirmation
dialogs of console.js, the clipboard) and checks both what the page shows
and what the database holds afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.connections_lifecycle.conftest import ENTITY, SSO, metadata
from tests.saml_support import cert
from vestibule.accounts.models import Account
from vestibule.connections import rules
from vestibule.connections.models import Connection
from vestibule.signin import adapters

pytestmark = [pytest.mark.browser]

LIST = "/console/a/acme/connections/"
COMPLETE = {"idp_entity_id": ENTITY, "sso_url": SSO, "certificates": [cert("idp")]}


def make_connection(slug: str = "acme", **data: Any) -> Connection:
    account, _ = Account.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
    payload = {"protocol": "saml", "name": "Okta", "domains": [f"{slug}.test"], **data}
    return rules.create_connection(account, payload, may_claim=True)


def box(page: Any, connection: Connection) -> Any:
    return page.locator(f"#c-{connection.pk.hex[:12]}")


def fresh(connection: Connection) -> Connection:
    return Connection.objects.get(pk=connection.pk)


def confirm(page: Any, expect_text: str, *, ok: bool = True) -> None:
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    assert expect_text in dialog.inner_text()
    if ok:
        with page.expect_navigation():
            dialog.locator("[data-confirm-ok]").click()
    else:
        dialog.get_by_role("button", name="Cancel").click()
        dialog.wait_for(state="hidden")


def test_seed_001_create_generate_save_enable(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
) -> None:
    make_person("boss@acme.test", roles=["administrator"])
    operator = make_person("op@vestibule.test", account=None, roles=(), operator=True)
    sign_in(page, operator.email, next_url=LIST)
    page.goto(url(LIST))
    axe_clean(page, "connections, empty")
    page.get_by_role("link", name="New connection").first.click()
    axe_clean(page, "new connection")
    page.get_by_label("Name").fill("Okta")
    page.get_by_label("Protocol").select_option("saml")
    page.get_by_label("Domains").fill("acme.test")
    with page.expect_navigation():
        page.get_by_role("button", name="Create connection").click()

    connection = Connection.objects.get(account__slug="acme")
    assert page.url.endswith(f"#c-{connection.pk.hex[:12]}")
    card = box(page, connection)
    assert "disabled" in (card.get_attribute("class") or "")
    assert card.locator(".badge").inner_text() == "Disabled"
    assert card.evaluate("e => getComputedStyle(e).borderTopStyle") == "dashed"
    assert card.locator(".readonly").inner_text() == "acme.test"
    assert connection.ignored_emails == ["boss@acme.test"] and not connection.auto_provision
    axe_clean(page, "connections, new disabled box")
    shot(page, "connections-disabled")

    # Generate from metadata: the dialog, then the text area replaced, unsaved.
    card.get_by_role("button", name="Generate from metadata").click()
    dialog = page.locator(f"#m{connection.pk.hex[:12]}-dialog")
    dialog.wait_for(state="visible")
    dialog.get_by_label("IdP metadata XML").fill(metadata("idp").decode())
    axe_clean(page, "generate-from-metadata dialog")
    shot(page, "connections-metadata-dialog")
    before = page.url
    # htmx swaps the settings block only: no navigation, the dialog gone, the text area replaced.
    dialog.get_by_role("button", name="Generate SAML settings from this metadata").click()
    page.locator(f"#c-{connection.pk.hex[:12]}-generated").wait_for()
    assert page.url == before and not dialog.is_visible()
    card = box(page, connection)
    assert "Generated from metadata" in card.inner_text()
    assert ENTITY in card.get_by_role("textbox", name="SAML settings").input_value()
    assert fresh(connection).saml_settings == connection.saml_settings
    axe_clean(page, "generated settings")
    with page.expect_navigation():
        card.get_by_role("button", name="Save SAML settings").click()
    assert fresh(connection).saml_settings["idp_entity_id"] == ENTITY

    # Enable, through the confirmation dialog.
    box(page, connection).get_by_role("button", name="Enable Okta").click()
    confirm(page, "Enable Okta?")
    card = box(page, connection)
    assert card.locator(".badge").inner_text() == "Enabled"
    assert card.evaluate("e => getComputedStyle(e).borderTopStyle") == "solid"
    assert fresh(connection).enabled is True
    axe_clean(page, "connections, enabled box")
    shot(page, "connections")


def test_disabling_asks_and_cancel_changes_nothing(
    page: Any, url: Callable[[str], str], make_person: Callable[..., Any], sign_in: Callable[..., None]
) -> None:
    connection = make_connection(saml=COMPLETE)
    rules.update_connection(connection, {"enabled": True})
    sam = make_person("sam@acme.test", roles=["sso-admin"])
    sign_in(page, sam.email, next_url=LIST)
    page.goto(url(LIST))
    box(page, connection).get_by_role("button", name="Disable Okta").click()
    confirm(page, "Disable Okta?", ok=False)
    assert fresh(connection).enabled is True
    box(page, connection).get_by_role("button", name="Disable Okta").click()
    confirm(page, "Disable Okta?")
    assert fresh(connection).enabled is False and box(page, connection).locator(".badge").inner_text() == "Disabled"


def test_auto_provision_confirm_and_allow_login(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
) -> None:
    connection = make_connection()
    sam = make_person("sam@acme.test", roles=["sso-admin"])
    sign_in(page, sam.email, next_url=LIST)
    page.goto(url(LIST))
    card = box(page, connection)
    assert card.get_by_label("Allow Login").count() == 0
    checkbox = card.get_by_label("Automatically provision new users")
    checkbox.click()
    axe_clean(page, "auto-provision confirmation")
    confirm(page, "Turn on auto-provisioning?", ok=False)
    assert not checkbox.is_checked() and fresh(connection).auto_provision is False
    checkbox.click()
    confirm(page, "Turn on auto-provisioning?")
    assert fresh(connection).auto_provision is True
    card = box(page, connection)
    assert card.get_by_label("Automatically provision new users").is_checked()
    allow = card.get_by_label("Allow Login")
    assert allow.is_visible() and not allow.is_checked()
    axe_clean(page, "auto-provision on")
    shot(page, "connections-auto-provision")

    # Turning it off tells what happens to the people it created.
    card.get_by_label("Automatically provision new users").click()
    confirm(page, "will not remove the users")
    assert fresh(connection).auto_provision is False
    assert box(page, connection).get_by_label("Allow Login").count() == 0


def test_allow_login_is_refused_when_auto_provision_went_off(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
) -> None:
    connection = make_connection(auto_provision=True)
    sam = make_person("sam@acme.test", roles=["sso-admin"])
    sign_in(page, sam.email, next_url=LIST)
    page.goto(url(LIST))
    # Another sso-admin turns auto-provisioning off while this page is open.
    rules.update_connection(connection, {"auto_provision": False})
    box(page, connection).get_by_label("Allow Login").click()
    confirm(page, "Allow Login?")
    card = box(page, connection)
    allow = card.get_by_label("Allow Login")
    assert allow.get_attribute("aria-invalid") == "true"
    error = card.locator(f"#c{connection.pk.hex[:12]}-provisioned_users_can_login-error")
    assert "turn “Automatically provision new users” on first" in error.inner_text()
    assert fresh(connection).provisioned_users_can_login is False
    axe_clean(page, "Allow Login refused")
    shot(page, "connections-allow-login-refused")


def test_ignored_emails_outside_the_domain_turn_red_and_save_nothing(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
) -> None:
    connection = make_connection(ignored_emails=["keep@acme.test"])
    sam = make_person("sam@acme.test", roles=["sso-admin"])
    sign_in(page, sam.email, next_url=LIST)
    page.goto(url(LIST))
    area = box(page, connection).get_by_label("Ignored emails")
    area.fill("keep@acme.test\nintruder@other.example")
    with page.expect_navigation():
        box(page, connection).get_by_role("button", name="Save ignored emails").click()
    area = box(page, connection).get_by_label("Ignored emails")
    assert area.get_attribute("aria-invalid") == "true"
    assert area.input_value() == "keep@acme.test\nintruder@other.example"
    border = area.evaluate("e => getComputedStyle(e).borderTopColor")
    red, green, blue = (int(x) for x in border[border.index("(") + 1 : border.index(")")].split(",")[:3])
    assert red > 150 and green < 100 and blue < 100, border
    error = box(page, connection).locator(f"#c{connection.pk.hex[:12]}-ignored_emails-error")
    assert "intruder@other.example" in error.inner_text()
    assert fresh(connection).ignored_emails == ["keep@acme.test"]
    axe_clean(page, "ignored emails refused")
    shot(page, "connections-ignored-emails-refused")


def test_the_sign_in_link_is_copied(
    new_page: Callable[..., Any],
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
) -> None:
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    connection = make_connection()
    sam = make_person("sam@acme.test", roles=["sso-admin"])
    sign_in(page, sam.email, next_url=LIST)
    page.goto(url(LIST))
    button = box(page, connection).get_by_role("button", name="Copy the SAML sign-in link of Okta")
    button.click()
    page.wait_for_function("() => document.getElementById('announcer').textContent.includes('Copied')")
    assert page.evaluate("() => navigator.clipboard.readText()") == adapters.sp_urls(connection)["sign_in_url"]


class FakeRelyingParty:
    def setup_url(self, redirect_uri: str) -> str:
        return "https://login.example/organizations/v2.0/adminconsent?client_id=vestibule"


def test_the_oidc_card_gives_the_setup_url_to_copy(
    new_page: Callable[..., Any],
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The provider's discovery document is the OIDC tests' business; here, the card and the clipboard.
    monkeypatch.setattr(adapters, "relying_party", lambda connection: FakeRelyingParty())
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    oidc = {"issuer": "https://op.example.test", "client_id": "vestibule", "client_secret": "s3cret"}
    connection = make_connection(protocol="oidc", name="Entra", oidc=oidc)
    sam = make_person("sam@acme.test", roles=["sso-admin"])
    sign_in(page, sam.email, next_url=LIST)
    page.goto(url(LIST))
    card = box(page, connection)
    assert "s3cret" not in page.content()
    assert "administrator rights in the external organization" in card.inner_text()
    axe_clean(page, "OIDC card")
    card.get_by_role("link", name="Get the Setup URL of Entra").click()
    copy = card.get_by_role("button", name="Copy the Setup URL of Entra")
    copy.wait_for(state="visible")
    copy.click()
    page.wait_for_function("() => document.getElementById('announcer').textContent.includes('Copied')")
    assert page.evaluate("() => navigator.clipboard.readText()") == FakeRelyingParty().setup_url("")
    connect = card.get_by_role("link", name="Connect organization to Entra")
    assert connect.get_attribute("href") == f"/sso/oidc/{connection.pk}/connect"
    axe_clean(page, "OIDC card with the Setup URL")
    shot(page, "connections-oidc")


def test_the_boxes_fit_a_phone(
    phone_page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
) -> None:
    make_connection(saml=COMPLETE)
    sam = make_person("sam@acme.test", roles=["sso-admin"])
    sign_in(phone_page, sam.email, next_url=LIST)
    phone_page.goto(url(LIST))
    overflow = phone_page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than the phone"
    axe_clean(phone_page, "connections on a phone")
    shot(phone_page, "connections-phone")


def test_bad_metadata_is_shown_in_the_dialog(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
) -> None:
    connection = make_connection()
    sam = make_person("sam@acme.test", roles=["sso-admin"])
    sign_in(page, sam.email, next_url=LIST)
    page.goto(url(LIST))
    key = connection.pk.hex[:12]
    box(page, connection).get_by_role("button", name="Generate from metadata").click()
    dialog = page.locator(f"#m{key}-dialog")
    dialog.get_by_label("IdP metadata XML").fill("<not metadata")
    dialog.get_by_role("button", name="Generate SAML settings from this metadata").click()
    error = page.locator(f"#m{key}-metadata-error")
    error.wait_for()
    assert error.inner_text().startswith("metadata: ")
    assert page.locator(f"#m{key}-dialog").get_by_label("IdP metadata XML").get_attribute("aria-invalid") == "true"
    assert page.locator(f"#m{key}-dialog").get_by_label("IdP metadata XML").input_value() == "<not metadata"
    assert fresh(connection).saml_settings == connection.saml_settings
    axe_clean(page, "metadata refused")
    shot(page, "connections-metadata-refused")


def test_a_held_metadata_change_is_confirmed_through_the_dialog(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[[Any, str], Any],
) -> None:
    from tests.connections_lifecycle.metadata_server import MetadataServer

    server = MetadataServer()
    try:
        connection = make_connection(saml=COMPLETE, idp_metadata_url=server.serve(metadata("attacker")))
        sam = make_person("sam@acme.test", roles=["sso-admin"])
        sign_in(page, sam.email, next_url=LIST)
        page.goto(url(LIST))
        with page.expect_navigation():
            box(page, connection).get_by_role("button", name="Read it now").click()
        pending = page.locator(f"#c-{connection.pk.hex[:12]}-pending")
        assert "would replace every trusted signing certificate" in pending.inner_text()
        assert fresh(connection).saml_settings["certificates"] == COMPLETE["certificates"]
        axe_clean(page, "held metadata change")
        shot(page, "connections-metadata-held")
        pending.get_by_role("button", name="Confirm the new certificates").click()
        confirm(page, "Trust only the new certificates for Okta?")
        assert fresh(connection).saml_settings["certificates"] == [cert("attacker")]
        assert page.locator(f"#c-{connection.pk.hex[:12]}-pending").count() == 0
    finally:
        server.close()
