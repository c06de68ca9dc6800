"""White-labelling in a real browser: a renamed product with its own accent, and an account's logo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.console.test_branding import SVG, png
from vestibule.accounts.models import Account

pytestmark = [pytest.mark.browser]


@pytest.mark.parametrize("accent", ["#ffcc00", "#5b2a86"])  # a light accent (dark text) and a dark one (white text)
def test_a_renamed_product_with_its_accent_on_the_sign_in_page_is_accessible(
    page: Any,
    url: Callable[[str], str],
    settings: Any,
    axe_clean: Callable[..., Any],
    shot: Callable[..., None],
    accent: str,
) -> None:
    from vestibule.conf.images import ink, read_logo, text_on

    settings.VESTIBULE_LOGO = read_logo(png(120, 40))
    settings.VESTIBULE_PRODUCT_NAME = "Acme Sign-in"
    settings.VESTIBULE_ACCENT = accent
    settings.VESTIBULE_ACCENT_TEXT = text_on(accent)
    page.goto(url("/login"))
    assert page.title() == "Sign in · Acme Sign-in"
    assert "Vestibule" not in page.content()
    button = page.get_by_role("button", name="Continue")
    colours = button.evaluate("b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color]")
    assert colours[0] == _rgb(accent) and colours[1] == _rgb(text_on(accent) or "")
    link_colour = page.locator("p.brand").evaluate("e => getComputedStyle(e).color")
    assert link_colour == _rgb(ink(accent))
    logo = page.locator("p.brand img")
    assert logo.get_attribute("alt") == "" and logo.evaluate("img => img.naturalWidth") == 120
    axe_clean(page, f"branded sign-in page, accent {accent}")
    if accent == "#5b2a86":
        shot(page, "branded-login")


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_the_administrator_uploads_a_logo_and_the_chooser_and_console_show_it(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[..., None],
    tmp_path: Path,
) -> None:
    admin = make_person("ann@acme.test", roles=["administrator"])
    sign_in(page, admin.email)
    page.goto(url("/console/a/acme/branding/"))
    axe_clean(page, "branding page")

    # An SVG (script inside) is refused at the field, nothing stored.
    svg = tmp_path / "logo.svg"
    svg.write_bytes(SVG)
    page.get_by_label("Logo file").set_input_files(str(svg))
    page.get_by_role("button", name="Upload logo").click()
    error = page.locator("#id_logo-error")
    assert "SVG logos are not accepted" in error.inner_text()
    assert page.get_by_label("Logo file").get_attribute("aria-describedby") == "id_logo-help id_logo-error"
    assert Account.objects.get(slug="acme").logo_digest == ""
    axe_clean(page, "branding page with a refused logo")

    logo = tmp_path / "logo.png"
    logo.write_bytes(png(40, 16))
    page.get_by_label("Logo file").set_input_files(str(logo))
    page.get_by_role("button", name="Upload logo").click()
    assert page.get_by_text("Logo saved (40×16 pixels)").is_visible()
    digest = Account.objects.get(slug="acme").logo_digest
    header_logo = page.locator(f'.current-account img[src="/branding/logos/{digest}"]')
    assert header_logo.evaluate("img => img.complete && img.naturalWidth") == 40
    axe_clean(page, "branding page with a logo")
    shot(page, "console-branding")

    # Removing it is confirmed first.
    page.get_by_role("button", name="Remove logo of Acme").click()
    dialog = page.get_by_role("dialog")
    assert "Remove the logo of" in dialog.inner_text()
    dialog.get_by_role("button", name="Remove logo").click()
    assert page.get_by_text("removed").first.is_visible()
    assert Account.objects.get(slug="acme").logo_digest == ""
