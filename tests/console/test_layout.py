"""The console's frame: who gets in, what the menu shows, the assets it loads under the CSP."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from vestibule.console.navigation import ACCOUNT_ITEMS, OPERATOR_ITEMS

pytestmark = pytest.mark.django_db


def test_signed_out_visitor_is_sent_to_sign_in_and_back() -> None:
    response = Client().get("/console/a/acme/")
    assert response.status_code == 302
    assert response["Location"] == "/login?next=%2Fconsole%2Fa%2Facme%2F"


def test_an_administrator_of_one_account_lands_in_it(person) -> None:
    ann = person("ann@acme.test", roles=["administrator"])
    response = ann.get("/console/")
    assert response.status_code == 302 and response["Location"] == "/console/a/acme/"
    page = ann.get("/console/a/acme/").content.decode()
    assert "Acme" in page and 'aria-current="page"' in page


def test_account_b_administrator_cannot_see_that_account_a_exists(person, make_account) -> None:
    make_account("acme")
    bob = person("bob@beta.test", account="beta", roles=["administrator"])
    taken = bob.get("/console/a/acme/")
    free = bob.get("/console/a/no-such-account/")
    assert taken.status_code == free.status_code == 404
    assert b"Acme" not in taken.content


def test_a_member_without_an_admin_role_is_told_which_role_the_page_needs(person) -> None:
    carl = person("carl@acme.test", roles=["analyst"])
    assert carl.get("/console/a/acme/").status_code == 200
    response = carl.get("/console/a/acme/connections/")
    assert response.status_code == 403 and b"sso-admin" in response.content


def test_the_menu_shows_what_the_roles_allow(person) -> None:
    sso = person("sam@acme.test", roles=["sso-admin"])
    page = sso.get("/console/a/acme/").content.decode()
    assert "Pending approval" not in page and "API keys" not in page


def test_every_menu_item_names_a_page() -> None:
    """The menu hides an item whose page does not exist; here, every item must have one."""
    for item in ACCOUNT_ITEMS:
        assert reverse(item.url_name, args=["acme"])
    for item in OPERATOR_ITEMS:
        assert reverse(item.url_name)


def test_operator_menu_only_for_the_operator(person) -> None:
    op = person("op@vestibule.test", account=None, roles=(), operator=True)
    admin = person("ann@acme.test", roles=["administrator"])
    names = [i.label for i in OPERATOR_ITEMS]
    assert all(n not in admin.get("/console/a/acme/").content.decode() for n in names)
    page = op.get("/console/").content.decode()
    assert "Deployment" in page


def test_assets_are_same_origin_versioned_and_nonced(person) -> None:
    ann = person("ann@acme.test")
    response = ann.get("/console/a/acme/")
    html = response.content.decode()
    nonce = re.search(r"script-src 'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    scripts = re.findall(r'<script src="([^"]+)" nonce="([^"]+)"', html)
    assert {s for s, _ in scripts} and all(n == nonce for _, n in scripts)
    assert all(s.startswith("/assets/") for s, _ in scripts)
    for src, _ in scripts:
        asset = Client().get(src)
        assert asset.status_code == 200 and "immutable" in asset["Cache-Control"]
        assert asset["Content-Type"].startswith("text/javascript")
    assert Client().get("/assets/..%2Fsettings.py").status_code == 404
    assert Client().get("/assets/nope.js").status_code == 404


@pytest.mark.parametrize("slug", ["a/b", "x" * 60, "", "%00", "Acme"])
def test_the_account_switcher_sends_anything_but_a_slug_home(person, slug) -> None:
    ann = person("ann@acme.test")
    response = ann.client.get("/console/switch", {"slug": slug})
    assert response.status_code == 302 and response["Location"] == "/console/"


def test_the_account_switcher_opens_the_chosen_account(person) -> None:
    ann = person("ann@acme.test")
    response = ann.client.get("/console/switch", {"slug": "acme"})
    assert response.status_code == 302 and response["Location"] == "/console/a/acme/"
