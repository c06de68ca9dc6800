"""Every console page a menu links to, and the pages those link to, as the operator and as an account's administrator.

The crawl follows ``nav.sidebar`` (so every page a screen adds to the menu is covered without a new
test), then one level of links inside each page's content that stay in the console (a user's
profile, a connection, a trace). Each page must answer without a server error, pass axe (no
serious or critical violation), log nothing on the browser console, and is kept as a screenshot.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser]

# The deeper pages a crawl visits at most, so that a long list (hundreds of users) cannot make it endless.
MAX_DEEPER = 40


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "page"


@pytest.fixture
def seeded(make_account: Callable[..., Any], make_person: Callable[..., Any]) -> None:
    """An account worth a look: a SAML connection, people with different roles, a project, an API key."""
    from vestibule.accounts.models import Project
    from vestibule.authority.models import ApiKey
    from vestibule.connections import rules

    acme = make_account("acme", "Acme")
    make_account("globex", "Globex")
    rules.create_connection(acme, {"protocol": "saml", "name": "Okta", "domains": ["acme.test"]}, may_claim=True)
    make_person("sso@acme.test", roles=["sso-admin"], name="Sam Sso")
    make_person("um@acme.test", roles=["user-manager"], name="Uma Manager")
    make_person("bob@acme.test", roles=["analyst"], name="Bob Builder")
    Project.objects.create(account=acme, slug="production", name="Production")
    ApiKey.issue(account=acme, name="reporting")


def visit(page: Any, url: str, axe_clean: Callable[..., Any], what: str) -> int:
    answered = page.goto(url)
    assert answered is not None, url
    assert answered.status < 500, f"{what}: {url} answered {answered.status}"
    if answered.status < 400:
        assert page.locator("h1").count() == 1, f"{what}: {url} has {page.locator('h1').count()} h1"
    axe_clean(page, what)
    return int(answered.status)


def sidebar_links(page: Any) -> list[tuple[str, str]]:
    links = page.locator("nav.sidebar a")
    return [(links.nth(i).inner_text().strip(), str(links.nth(i).get_attribute("href"))) for i in range(links.count())]


def content_links(page: Any, prefixes: tuple[str, ...]) -> list[str]:
    hrefs = page.locator("main a[href]").evaluate_all("(links) => links.map(a => a.getAttribute('href'))")
    found = []
    for href in hrefs:
        parts = urlsplit(href)
        if parts.netloc or parts.query or parts.fragment or not parts.path.startswith(prefixes):
            continue
        found.append(parts.path)
    return found


@pytest.mark.parametrize("who", ["operator", "administrator"])
def test_every_console_page_answers_and_passes_axe(
    page: Any,
    url: Callable[[str], str],
    seeded: None,
    make_person: Callable[..., Any],
    sign_in: Callable[..., None],
    axe_clean: Callable[..., Any],
    shot: Callable[..., Any],
    who: str,
) -> None:
    if who == "operator":
        person = make_person("op@example.com", account=None, roles=[], operator=True)
        prefixes: tuple[str, ...] = ("/console/a/acme/", "/console/operator/")
    else:
        person = make_person("admin@acme.test", roles=["administrator"], name="Ada Admin")
        prefixes = ("/console/a/acme/",)
    sign_in(page, person.email)
    visit(page, url("/console/a/acme/"), axe_clean, f"overview as {who}")
    menu = sidebar_links(page)
    assert menu, "the console has no menu"

    visited = {"/console/a/acme/"}
    deeper: list[str] = []
    for label, href in menu:
        if href in visited:
            continue
        visited.add(href)
        status = visit(page, url(href), axe_clean, f"{label} as {who}")
        # The menu lists only what the person may open.
        assert status == 200, f"the menu links {label} ({href}), which answers {who} with {status}"
        shot(page, f"console-{who}-{slug(label)}")
        deeper += [p for p in content_links(page, prefixes) if p not in visited and p not in deeper]

    for path in deeper[:MAX_DEEPER]:
        visited.add(path)
        visit(page, url(path), axe_clean, f"{path} as {who}")
        shot(page, f"console-{who}-{slug(path.removeprefix('/console/'))}")

    if who == "operator":
        labels = {label for label, _ in menu}
        assert {"Accounts", "Connections", "Users"} <= labels, labels
