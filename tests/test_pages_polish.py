"""What a new user met in their first hour on the sign-in pages, checked in the rendered HTML.

Each test names the rough edge it keeps away: the test IdP opened from a
sign-in link, the chooser's wording for one organization, focus on the
password step, ``aria-describedby`` pointing at nothing, the TOTP link
overflowing its card with no QR code, links ignoring the accent colour, no
margin on a phone, and invitations into an SSO-routed domain. (That
``vestibule account --help`` and ``operator --help`` list their actions is in
tests/test_cli_commands.py.)
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.test import Client

from tests.conftest import ApiClient, password_login
from vestibule.accounts.models import Account
from vestibule.audit.models import AuditEvent
from vestibule.connections import rules
from vestibule.connections.models import Connection
from vestibule.demo import DEMO_CONNECTION_NAME
from vestibule.login import views as login_views
from vestibule.login.models import OneTimeLink
from vestibule.testidp import idp

pytestmark = pytest.mark.django_db


# Helpers ----------------------------------------------------------------------------------------


@pytest.fixture
def demo(settings: Any, tmp_path: Any) -> Connection:
    """`vestibule demo`'s data: account acme, its SAML connection to the test IdP for acme.test."""
    settings.VESTIBULE_TEST_IDP = True
    settings.CONFIG = dataclasses.replace(settings.CONFIG, data_dir=tmp_path)
    from vestibule.demo import seed_demo

    seed_demo()
    return Connection.objects.get(account__slug="acme", name=DEMO_CONNECTION_NAME)


def second_test_idp_connection(name: str = "Test IdP for contractors") -> Connection:
    """Another enabled connection of acme for acme.test, also trusting the test IdP."""
    connection = rules.create_connection(
        Account.objects.get(slug="acme"), {"protocol": "saml", "name": name, "domains": ["acme.test"]}, may_claim=True
    )
    rules.import_idp_metadata(connection, idp.metadata_xml())
    rules.update_connection(connection, {"enabled": True})
    return connection


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def hidden_fields(page: str) -> dict[str, str]:
    return {
        html.unescape(n): html.unescape(v)
        for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }


def tag(page: str, element: str, **attrs: str) -> str:
    """The one opening tag of ``element`` with these attribute values."""
    found = [t for t in re.findall(rf"<{element}\b[^>]*>", page) if all(f'{k}="{v}"' in t for k, v in attrs.items())]
    assert len(found) == 1, (element, attrs, found)
    return found[0]


def assert_described_by_ids_exist(page: str) -> int:
    """Every id an aria-describedby names is in the page; returns how many references there were."""
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    references = [i for value in re.findall(r'aria-describedby="([^"]*)"', page) for i in value.split()]
    for reference in references:
        assert reference in ids, (reference, page)
    return len(references)


def finish_at_the_acs(browser: Client, idp_post: Any) -> Any:
    """What the test IdP's auto-submitting page does in a browser."""
    assert idp_post.status_code == 200, idp_post.content[:800]
    page = idp_post.content.decode()
    action = re.search(r'<form method="post" action="([^"]+)" id="saml-post"', page)
    assert action, page
    return browser.post(path_of(html.unescape(action.group(1))), hidden_fields(page))


# The test IdP opened from a sign-in link --------------------------------------------------------


def test_test_idp_from_a_sign_in_link_needs_only_an_email(demo: Connection) -> None:
    browser = Client()
    start = browser.get(f"/sso/start/{demo.pk}")  # the connection's sign-in link: no login_hint
    assert start.status_code == 302 and "login_hint" not in start["Location"]
    form_page = browser.get(path_of(start["Location"]))
    page = form_page.content.decode()
    name_input = tag(page, "input", name="name")
    assert "required" not in name_input and 'value="' not in name_input
    assert "Name (optional)" in page
    assert 'placeholder="jane.doe@acme.test"' in tag(page, "input", name="email")

    issued = browser.post("/test-idp/sso", {**hidden_fields(page), "email": "jane.doe@acme.test", "name": ""})
    assert finish_at_the_acs(browser, issued).status_code == 302
    me = browser.get("/api/v1/session").json()
    assert (me["email"], me["name"]) == ("jane.doe@acme.test", "Jane Doe")


def test_test_idp_aria_describedby_names_ids_that_exist(demo: Connection) -> None:
    browser = Client()
    start = browser.get(f"/sso/start/{demo.pk}?login_hint=bob%40acme.test")
    page = browser.get(path_of(start["Location"])).content.decode()
    assert assert_described_by_ids_exist(page) >= 3  # name, role_mapping and roles have help text
    # With errors too: the error list is what the input points at.
    refused = browser.post("/test-idp/sso", {**hidden_fields(page), "email": "not an email"})
    assert refused.status_code == 400
    refused_page = refused.content.decode()
    assert "id_email_error" in tag(refused_page, "input", name="email")
    assert_described_by_ids_exist(refused_page)
    idp_initiated = Client().get("/test-idp/login").content.decode()
    assert assert_described_by_ids_exist(idp_initiated) >= 3


# The chooser ------------------------------------------------------------------------------------


def test_chooser_for_two_providers_of_one_organization_does_not_say_several_organizations(demo: Connection) -> None:
    contractors = second_test_idp_connection()
    page = Client().post("/login", {"email": "bob@acme.test"}).content.decode()
    assert "several organizations" not in page
    assert "Acme Corporation signs in bob@acme.test through several identity providers" in page
    for connection in (demo, contractors):
        assert f"/sso/start/{connection.pk}?" in page and html.escape(connection.name) in page


# The password step ------------------------------------------------------------------------------


def test_password_step_focuses_the_password_not_the_filled_email(make_user: Callable[..., Any]) -> None:
    make_user("alice@example.com")
    page = Client().post("/login", {"email": "alice@example.com"}).content.decode()
    email = tag(page, "input", name="email")
    assert 'value="alice@example.com"' in email and "autofocus" not in email and 'autocomplete="username"' in email
    assert "autofocus" in tag(page, "input", name="password")
    assert_described_by_ids_exist(page)


def test_password_step_errors_are_described(make_user: Callable[..., Any]) -> None:
    make_user("alice@example.com")
    wrong = password_login(Client(), "alice@example.com", "not the password")
    assert wrong.status_code == 401
    assert_described_by_ids_exist(wrong.content.decode())
    bad_email = Client().post("/login", {"email": "alice@", "password": "x"})
    page = bad_email.content.decode()
    assert bad_email.status_code == 400
    assert 'aria-describedby="id_email_error"' in tag(page, "input", name="email")
    assert_described_by_ids_exist(page)


def test_email_step_errors_are_described(db: None) -> None:
    page = Client().post("/login", {"email": "no-at-sign"}).content.decode()
    assert "id_email_error" in tag(page, "input", name="email")
    assert_described_by_ids_exist(page)


# TOTP setup -------------------------------------------------------------------------------------


def test_totp_setup_shows_an_inline_svg_qr_code_and_keeps_the_link_inside_the_card(
    make_user: Callable[..., Any], login: Callable[..., Any]
) -> None:
    make_user("alice@example.com")
    browser = Client()
    assert login(browser, "alice@example.com", "correct horse battery staple 42").status_code == 302
    response = browser.get("/account/totp")
    assert response.status_code == 200
    page = response.content.decode()

    svgs = re.findall(r"<svg\b.*?</svg>", page, re.S)
    assert len(svgs) == 1
    svg = svgs[0]
    assert "<path" in svg and "<title>" in svg
    # Nothing outside the page: no href, no image, no URL.
    assert not re.search(r"href|<image|url\(|https?:", svg), svg

    link = re.search(r'<a href="(otpauth://totp/[^"]+)">([^<]*)</a>', page)
    assert link, page
    uri = html.unescape(link.group(1))
    assert "otpauth://" not in link.group(2)  # the long URI is not printed as the link's text
    assert svg == login_views._qr_svg(uri)  # the QR code is the link's own URI
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    key_line = re.search(rf'<p class="break">[^<]*<code class="reason">{secret}</code>', page)
    assert key_line, page  # the key wraps inside the card
    assert re.search(r"\.break\s*\{[^}]*overflow-wrap:\s*anywhere", style_of(page))


def test_totp_setup_wrong_code_is_described(make_user: Callable[..., Any], login: Callable[..., Any]) -> None:
    make_user("alice@example.com")
    browser = Client()
    login(browser, "alice@example.com", "correct horse battery staple 42")
    browser.get("/account/totp")
    refused = browser.post("/account/totp", {"code": "000000"})
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "id_code_error" in tag(page, "input", name="code")
    assert_described_by_ids_exist(page)


# The stylesheet ---------------------------------------------------------------------------------


def style_of(page: str) -> str:
    styles = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert styles
    return "".join(styles)


def test_links_take_the_accent_colour(db: None) -> None:
    css = style_of(Client().get("/login").content.decode())
    assert re.search(r"(^|[\s}])a\s*\{[^}]*color:\s*var\(--accent\)", css), css
    assert "--accent:" in css


def test_a_small_screen_keeps_a_margin_around_the_card(db: None) -> None:
    css = style_of(Client().get("/login").content.decode())
    media = re.search(r"@media\s*\(max-width:\s*(\d+(?:\.\d+)?)(rem|px)\)\s*\{(.*?\})\s*\}", css, re.S)
    assert media, css
    width = float(media.group(1)) * (16 if media.group(2) == "rem" else 1)
    assert width >= 375  # applies on a 375 px phone
    rule = re.search(r"main\s*\{([^}]*)\}", media.group(3))
    assert rule and re.search(r"margin:\s*[^;]*\d", rule.group(1)), media.group(0)
    assert not re.search(r"margin:\s*0\s*;", rule.group(1))


# Invitations into an SSO-routed domain ----------------------------------------------------------


def invite(api: ApiClient, email: str) -> str:
    created = api.post("/api/v1/accounts/acme/users", {"email": email, "name": "Carol", "roles": ["analyst"]})
    assert created.status_code == 201, created.content
    match = re.search(r"http://localhost(/invite/[A-Za-z0-9_-]+)", mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1)


def test_invitation_into_an_sso_domain_explains_and_continues_to_the_identity_provider(
    demo: Connection, api: ApiClient
) -> None:
    link = invite(api, "carol@acme.test")
    browser = Client()
    shown = browser.get(link)
    assert shown.status_code == 200
    page = shown.content.decode()
    assert "Join Acme Corporation" in page
    assert "Your organization signs you in through its identity provider" in page and html.escape(demo.name) in page
    assert 'type="password"' not in page
    assert f"Continue to {html.escape(demo.name)}</button>" in page
    # Opening the link (a mail scanner does) spends nothing.
    assert browser.get(link).status_code == 200
    assert OneTimeLink.objects.filter(purpose="invitation", used_at__isnull=True).count() == 1

    onward = browser.post(link, hidden_fields(page))
    assert onward.status_code == 302
    target = urlsplit(onward["Location"])
    assert target.path == f"/sso/start/{demo.pk}"
    assert parse_qs(target.query) == {"next": ["/"], "login_hint": ["carol@acme.test"]}
    assert AuditEvent.objects.filter(
        code="invitation.accepted", subject_email="carol@acme.test", detail__via="sso"
    ).exists()
    assert Client().get(link).status_code == 410

    # The provider signs Carol in, a member of acme with the invited role.
    to_idp = browser.get(onward["Location"])
    idp_page = browser.get(path_of(to_idp["Location"])).content.decode()
    assert 'value="carol@acme.test"' in idp_page
    issued = browser.post("/test-idp/sso", {**hidden_fields(idp_page), "email": "carol@acme.test", "name": "Carol"})
    assert finish_at_the_acs(browser, issued).status_code == 302
    me = browser.get("/api/v1/session").json()
    assert me["email"] == "carol@acme.test" and me["login_method"] == "sso"
    assert [(a["slug"], "analyst" in a["roles"]) for a in me["accounts"]] == [("acme", True)]


def test_invitation_into_a_domain_with_several_providers_lets_the_invitee_choose(
    demo: Connection, api: ApiClient
) -> None:
    contractors = second_test_idp_connection()
    link = invite(api, "dan@acme.test")
    browser = Client()
    page = browser.get(link).content.decode()
    assert "the next page lets you choose yours" in page and 'type="password"' not in page
    chooser = browser.post(link, hidden_fields(page))
    assert chooser.status_code == 200
    for connection in (demo, contractors):
        assert f"/sso/start/{connection.pk}?next=/&amp;login_hint=dan%40acme.test" in chooser.content.decode()
    assert Client().get(link).status_code == 410
