"""The console's frame in a real browser: keyboard path, focus ring, menu per role, account switcher, phone width."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = [pytest.mark.browser]

FOCUSED = "() => { const e = document.activeElement; return e ? (e.id || e.textContent.trim()) : null; }"


def menu_labels(page: Any) -> set[str]:
    return {text.strip() for text in page.locator("nav.sidebar a").all_inner_texts()}


def test_the_skip_link_is_the_first_tab_stop_and_moves_focus_to_the_content(
    page: Any, url: Callable[[str], str], make_person: Callable[..., Any], sign_in: Callable[..., None]
) -> None:
    sign_in(page, make_person("ann@acme.test", roles=["administrator"]).email)
    page.goto(url("/console/a/acme/"))
    skip = page.get_by_role("link", name="Skip to content")
    # Off-screen until focused: a sighted keyboard user sees it appear.
    assert (skip.bounding_box() or {"x": -1})["x"] < 0

    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == "Skip to content"
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["width"] > 0

    page.keyboard.press("Enter")
    assert page.evaluate(FOCUSED) == "main"
    # The next Tab continues inside the content, not back in the header.
    page.keyboard.press("Tab")
    inside = page.evaluate("() => document.getElementById('main').contains(document.activeElement)")
    assert inside


def test_links_and_buttons_show_a_focus_ring_when_reached_by_keyboard(
    page: Any, url: Callable[[str], str], make_person: Callable[..., Any], sign_in: Callable[..., None]
) -> None:
    sign_in(page, make_person("ann@acme.test", roles=["administrator", "sso-admin"]).email)
    page.goto(url("/console/a/acme/"))
    seen: dict[str, str] = {}
    # Tab through the frame (skip link, brand, menu, profile, sign-out) and look at each stop.
    for _ in range(12):
        page.keyboard.press("Tab")
        stop = page.evaluate(
            """() => {
                const e = document.activeElement, s = getComputedStyle(e);
                return {tag: e.tagName, name: (e.textContent || e.value || '').trim().slice(0, 40),
                        style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor};
            }"""
        )
        if stop["tag"] in {"A", "BUTTON"}:
            assert stop["style"] not in {"none", "hidden"} and stop["width"] >= 2, f"no focus ring on {stop}"
            seen[stop["tag"]] = stop["name"]
    assert {"A", "BUTTON"} <= seen.keys(), f"the Tab order reached no link or no button: {seen}"


def test_the_menu_shows_what_each_role_may_open(
    new_page: Callable[..., Any],
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
) -> None:
    people = {
        "sso": make_person("sso@acme.test", roles=["sso-admin"]),
        "users": make_person("um@acme.test", roles=["user-manager"]),
        "admin": make_person("admin@acme.test", roles=["administrator"]),
        "operator": make_person("op@example.com", account=None, roles=[], operator=True),
    }
    menus: dict[str, set[str]] = {}
    for key, person in people.items():
        page = new_page()
        sign_in(page, person.email)
        page.goto(url("/console/a/acme/"))
        assert page.locator("h1").count() == 1
        menus[key] = menu_labels(page)

    # Each role's own pages, and not the others' (the pages exist: their URL names are defined).
    assert {"Overview", "Connections", "Login traces"} <= menus["sso"]
    assert not menus["sso"] & {"Users", "API keys", "Branding"}
    assert {"Overview", "Users", "Audit log"} <= menus["users"]
    assert not menus["users"] & {"Connections", "Login traces", "API keys", "Branding"}
    # The administrator role implies the other two (the role catalog), so every account page.
    assert {"Overview", "Users", "API keys", "Branding", "Connections", "Login traces"} <= menus["admin"]
    # The deployment's pages are the operator's alone.
    assert {"Accounts", "Domain claims", "Deployment checks"} <= menus["operator"]
    for key in ("sso", "users", "admin"):
        assert not menus[key] & {"Accounts", "Domain claims", "Deployment checks"}, key


def test_the_account_switcher_moves_between_the_accounts_a_person_administers(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    make_account: Callable[..., Any],
    sign_in: Callable[..., None],
) -> None:
    from vestibule.accounts.models import Membership
    from vestibule.accounts.roles import replace_manual_roles

    ann = make_person("ann@acme.test", roles=["administrator"])
    globex = make_account("globex", "Globex")
    Membership.objects.create(user=ann, account=globex)
    replace_manual_roles(ann, globex, ["sso-admin"])
    make_account("initech", "Initech")  # exists, but Ann holds nothing there

    sign_in(page, ann.email)
    page.goto(url("/console/a/acme/"))
    switch = page.get_by_label("Switch account")
    assert [o.strip() for o in switch.locator("option").all_inner_texts()] == ["Acme", "Globex"]
    switch.select_option(label="Globex")
    with page.expect_navigation():
        page.get_by_role("button", name="Switch").click()
    assert page.url == url("/console/a/globex/")
    assert page.get_by_label("Current account").inner_text().strip() == "Globex"
    # The menu follows the account: sso-admin in Globex, administrator in Acme.
    assert "Connections" in menu_labels(page) and "API keys" not in menu_labels(page)


def test_a_person_with_one_account_gets_no_switcher(
    page: Any, url: Callable[[str], str], make_person: Callable[..., Any], sign_in: Callable[..., None]
) -> None:
    sign_in(page, make_person("ann@acme.test", roles=["administrator"]).email)
    page.goto(url("/console/a/acme/"))
    assert page.get_by_label("Switch account").count() == 0


@pytest.mark.parametrize("path", ["/console/a/acme/", "/console/"])
def test_the_console_fits_a_375_pixel_phone_without_sideways_scrolling(
    phone_page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    make_account: Callable[..., Any],
    sign_in: Callable[..., None],
    shot: Callable[..., Any],
    path: str,
) -> None:
    make_account("acme", "Acme Corporation With A Rather Long Legal Name International")
    make_account("globex", "Globex")
    person = make_person("operator.with.a.long.address@example.com", roles=["administrator"], operator=True)
    sign_in(phone_page, person.email)
    phone_page.goto(url(path))
    width = phone_page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, f"{path} is {width}px wide on a 375px screen"
    shot(phone_page, f"console-phone-{'account' if 'a/' in path else 'home'}")
