"""The harness itself: sign-in through the real form, axe on a console page, the console watch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = [pytest.mark.browser]


def test_sign_in_goes_through_the_email_first_form_to_the_console(
    page: Any,
    url: Callable[[str], str],
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
) -> None:
    admin = make_person("ann@acme.test", roles=["administrator"])
    sign_in(page, admin.email)
    assert page.url.startswith(url("/console/"))
    assert page.get_by_role("button", name="Sign out").is_visible()
    axe_clean(page, "console landing")


def test_sign_in_with_a_wrong_password_stays_on_the_form(
    page: Any, make_person: Callable[..., Any], sign_in: Callable[..., None]
) -> None:
    admin = make_person("ann@acme.test", roles=["administrator"])
    with pytest.raises(AssertionError, match="did not leave /login"):
        sign_in(page, admin.email, "not the password")


def test_the_console_watch_sees_a_csp_refusal(
    page: Any, url: Callable[[str], str], allow_console_errors: Callable[[Any, str], None]
) -> None:
    page.goto(url("/login"))
    # An inline script added after load, as an hx-on attribute or a stray <script> would be.
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1'; "
        "document.body.appendChild(s); }"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.ran") is None
    watch = page._vestibule_watch
    assert any("Content Security Policy" in m for m in watch.unexpected()), watch.messages
    allow_console_errors(page, "inline script violates the following Content Security Policy")
    assert watch.unexpected() == []
