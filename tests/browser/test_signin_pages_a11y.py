"""axe-core on the pages around the console: the sign-in steps, an SSO failure, the console's landing pages."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser]


def test_the_sign_in_steps_pass_axe(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    axe_clean: Callable[..., Any],
    shot: Callable[..., Any],
) -> None:
    ann = make_person("ann@acme.test", roles=["administrator"])
    page.goto(url("/login"))
    axe_clean(page, "login: email step")
    shot(page, "login-email")

    page.get_by_label("Work email").fill(ann.email)
    page.get_by_role("button", name="Continue").click()
    password = page.get_by_label("Password", exact=True)
    password.wait_for()
    # The email is already there: focus waits in the password box.
    assert page.evaluate("() => document.activeElement.id") == "id_password"
    axe_clean(page, "login: password step")
    shot(page, "login-password")

    password.fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text().strip()
    axe_clean(page, "login: wrong password")
    shot(page, "login-password-refused")

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert "/login" not in page.url


def test_an_unknown_email_error_passes_axe(page: Any, url: Callable[[str], str], axe_clean: Callable[..., Any]) -> None:
    page.goto(url("/login"))
    page.get_by_label("Work email").fill("not an address")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("alert").wait_for()
    axe_clean(page, "login: invalid email")


def test_sso_failure_pages_pass_axe(
    page: Any,
    url: Callable[[str], str],
    make_account: Callable[..., Any],
    axe_clean: Callable[..., Any],
    shot: Callable[..., Any],
) -> None:
    from vestibule.connections import rules

    connection = rules.create_connection(
        make_account("acme"), {"protocol": "saml", "name": "Okta", "domains": ["acme.test"]}, may_claim=True
    )
    answered = page.goto(url(f"/sso/start/{connection.pk}"))
    assert answered is not None and answered.status == 403
    assert page.locator("h1").count() == 1
    axe_clean(page, "SSO error: disabled connection")
    shot(page, "sso-error-disabled-connection")

    answered = page.goto(url(f"/sso/start/{uuid.uuid4()}"))
    assert answered is not None and answered.status == 404
    axe_clean(page, "SSO start: unknown connection")


@pytest.mark.parametrize("who", ["operator", "account administrator"])
def test_the_console_landing_pages_pass_axe(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    make_account: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[..., Any],
    who: str,
) -> None:
    make_account("acme", "Acme")
    make_account("globex", "Globex")
    if who == "operator":
        person = make_person("op@example.com", account=None, roles=[], operator=True)
    else:
        person = make_person("ann@acme.test", roles=["administrator"])
    sign_in(page, person.email)
    page.goto(url("/console/"))
    axe_clean(page, f"/console/ as {who}")
    shot(page, f"console-home-{who.replace(' ', '-')}")
    page.goto(url("/console/a/acme/"))
    assert page.locator("h1").count() == 1
    axe_clean(page, f"/console/a/acme/ as {who}")
    shot(page, f"console-account-{who.replace(' ', '-')}")


def test_the_sign_in_page_fits_a_phone(
    phone_page: Any, url: Callable[[str], str], axe_clean: Callable[..., Any]
) -> None:
    phone_page.goto(url("/login"))
    assert phone_page.evaluate("() => document.documentElement.scrollWidth") <= 375
    axe_clean(phone_page, "login on a phone")


def test_the_password_step_shows_a_focus_ring_on_every_stop(
    page: Any, url: Callable[[str], str], make_person: Callable[..., Any]
) -> None:
    page.goto(url("/login"))
    page.get_by_label("Work email").fill(make_person("ann@acme.test").email)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Password", exact=True).wait_for()
    seen = set()
    for _ in range(6):
        page.keyboard.press("Tab")
        stop = page.evaluate(
            """() => { const e = document.activeElement, s = getComputedStyle(e);
                       return {tag: e.tagName, style: s.outlineStyle, width: parseFloat(s.outlineWidth)}; }"""
        )
        if stop["tag"] in {"A", "BUTTON", "INPUT"}:
            assert stop["style"] not in {"none", "hidden"} and stop["width"] >= 2, f"no focus ring on {stop}"
            seen.add(stop["tag"])
    assert {"A", "BUTTON", "INPUT"} <= seen, seen
