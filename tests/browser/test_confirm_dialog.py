"""console.js's confirmation dialog, on a real console page that uses it (an sso-admin's connections).

The page is found by its attributes, not its wording: the first ``form[data-confirm]`` and the first
``input[data-confirm-on]`` checkbox. What is checked is the dialog's contract for every screen: focus
moves into it and stays there, the page behind does not take clicks, Cancel and Escape send nothing
and give focus back to what opened it (a checkbox goes back as it was), Confirm sends the form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = [pytest.mark.browser]

IN_DIALOG = "() => document.getElementById('confirm-dialog').contains(document.activeElement)"
DIALOG_OPEN = "() => document.getElementById('confirm-dialog').open"


@pytest.fixture
def connections_page(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    make_account: Callable[..., Any],
    sign_in: Callable[..., None],
) -> Any:
    from vestibule.connections import rules

    rules.create_connection(
        make_account("acme"), {"protocol": "saml", "name": "Okta", "domains": ["acme.test"]}, may_claim=True
    )
    sign_in(page, make_person("sso@acme.test", roles=["sso-admin"]).email)
    page.goto(url("/console/a/acme/connections/"))
    assert page.locator("form[data-confirm]").count() > 0, "no form[data-confirm] on the connections page"
    return page


def connection_count() -> int:
    from vestibule.connections.models import Connection

    return Connection.objects.filter(account__slug="acme").count()


def test_focus_stays_in_the_open_dialog_and_the_page_behind_is_inert(connections_page: Any) -> None:
    page = connections_page
    opener = page.locator("form[data-confirm] button[type=submit]").last
    opener.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert page.evaluate(IN_DIALOG)
    question = page.locator("form[data-confirm]").last.get_attribute("data-confirm")
    assert dialog.locator("#confirm-text").inner_text() == question

    # Tab and Shift+Tab cycle through the dialog's buttons, never the page behind.
    for key in ["Tab"] * 4 + ["Shift+Tab"] * 4:
        page.keyboard.press(key)
        assert page.evaluate(IN_DIALOG) or page.evaluate("() => document.activeElement === document.body"), key
        assert not page.evaluate("() => document.getElementById('main').contains(document.activeElement)"), key

    # A click on a menu link behind the backdrop goes nowhere.
    before = page.url
    link = page.locator("nav.sidebar a").first.bounding_box()
    assert link is not None
    page.mouse.click(link["x"] + 5, link["y"] + 5)
    page.wait_for_timeout(300)
    assert page.url == before and page.evaluate(DIALOG_OPEN)


@pytest.mark.parametrize("how", ["Cancel", "Escape"])
def test_cancel_and_escape_send_nothing_and_return_focus_to_the_opener(connections_page: Any, how: str) -> None:
    page = connections_page
    count = connection_count()
    opener = page.locator("form[data-confirm] button[type=submit]").last
    label = opener.inner_text().strip()
    opener.click()
    page.get_by_role("dialog").wait_for()
    if how == "Cancel":
        page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    else:
        page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    assert not page.evaluate(DIALOG_OPEN)
    assert page.evaluate("() => document.activeElement.textContent.trim()") == label
    assert page.url.endswith("/console/a/acme/connections/")
    assert connection_count() == count


@pytest.mark.parametrize("how", ["Cancel", "Escape"])
def test_a_cancelled_checkbox_goes_back_as_it_was(connections_page: Any, how: str) -> None:
    page = connections_page
    box = page.locator("input[type=checkbox][data-confirm-on]").first
    before = box.is_checked()
    box.click()
    page.get_by_role("dialog").wait_for()
    assert page.locator("#confirm-text").inner_text().strip()
    if how == "Cancel":
        page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    else:
        page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    assert not page.evaluate(DIALOG_OPEN)
    assert box.is_checked() == before
    assert page.evaluate("() => document.activeElement.type") == "checkbox"


def test_confirm_sends_the_form(connections_page: Any, axe_clean: Callable[..., Any], shot: Callable[..., Any]) -> None:
    page = connections_page
    count = connection_count()
    form = page.locator("form[data-confirm][data-confirm-danger]").last
    form.locator("button[type=submit]").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    axe_clean(page, "confirmation dialog open")
    shot(page, "confirm-dialog")
    ok = dialog.locator("[data-confirm-ok]")
    assert ok.inner_text().strip() == form.get_attribute("data-confirm-label")
    with page.expect_navigation():
        ok.click()
    # The danger form on a connection card is its deletion.
    assert connection_count() == count - 1
