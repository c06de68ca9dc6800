"""``make demo`` in a real browser: the printed link opens the console, signed in, with the seeded hub."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vestibule.demo import seed_demo

pytestmark = [pytest.mark.browser]


def test_the_demo_link_opens_the_console_overview_signed_in(
    page: Any,
    live: str,
    settings: Any,
    tmp_path: Path,
    axe_clean: Callable[..., Any],
    shot: Callable[..., None],
) -> None:
    settings.VESTIBULE_TEST_IDP = True  # what `vestibule demo` turns on
    settings.CONFIG = dataclasses.replace(settings.CONFIG, data_dir=tmp_path)
    output = "\n".join(seed_demo())
    match = re.search(r"^\s+(http://\S+/demo/sign-in/\S+)$", output, re.M)
    assert match and match.group(1).startswith(live), output

    page.goto(match.group(1))
    assert page.url == f"{live}/console/a/acme/"
    assert page.get_by_role("heading", level=1).is_visible()
    assert page.get_by_label("Current account").inner_text().strip() == "Acme Corporation"
    assert page.get_by_role("navigation", name="Your profile").get_by_role("link", name="Acme Admin").is_visible()
    axe_clean(page, "console overview after the demo link")
    shot(page, "console-overview")

    # The link worked once: a second browser following it is told so, and stays signed out.
    page.context.clear_cookies()
    answer = page.goto(match.group(1))
    assert answer is not None and answer.status == 410
    assert page.get_by_role("heading", name="This demo link has been used or has expired").is_visible()
    axe_clean(page, "demo link used")
