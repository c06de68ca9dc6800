"""The browser harness: Chromium (Debian's, never a downloaded one) driven by Playwright against
pytest-django's live server, with axe-core checks, screenshots and a watch on the browser console.

Every test under ``tests/browser/`` is marked ``browser`` automatically (CI runs them in the
PostgreSQL pass only). Usage::

    pytestmark = [pytest.mark.browser]

    def test_users_page(page, url, make_person, sign_in, axe_clean, shot):
        admin = make_person("ann@acme.test", roles=["administrator"])
        sign_in(page, admin.email)                    # the real /login form, email then password
        page.goto(url("/console/a/acme/users/"))
        axe_clean(page, "users list")                  # zero serious/critical axe violations
        shot(page, "users-list")                       # artifacts/screenshots/users-list.png

Fixtures: ``page`` (1280x900), ``phone_page`` (375x812), ``new_page(width=..., height=...)``,
``make_person``, ``sign_in``, ``axe_clean``, ``shot``, ``url`` (``url("/console/")`` → absolute; ``live`` is the base URL),
``allow_console_errors(page, regex)`` for a test that provokes an error on purpose.

Console watch: a page that logs a CSP refusal ("Refused to ...", "... violates the following
Content Security Policy directive ...") or any other console error, or throws an uncaught JS error
fails its test at teardown, listing the messages. A document answered 4xx/5xx on purpose (a 404
page) is not an error; a missing script or stylesheet is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
# The impacts that fail a page; "moderate" and "minor" are reported by axe but do not fail.
FAILING_IMPACTS = {"serious", "critical"}
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/browser/ as ``browser``, whatever its module says."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module, with the async-safety check of Django lifted while it runs.

    Playwright's sync API keeps an asyncio loop running in the test thread for as long as it is
    started, and Django refuses ORM calls from a thread with a running loop
    (SynchronousOnlyOperation). The tests' ORM calls (fixtures, assertions on stored state) are
    plain synchronous code that happens to share the thread with that loop, so
    ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set exactly while Playwright runs: per module, not for the
    session, so that the non-browser tests collected after these still get Django's check.
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"chromium is not installed at {CHROMIUM} (make peers installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def live(transactional_db: None, settings: Any) -> Iterator[str]:
    """Vestibule served by Django's live server thread on 127.0.0.1; yields its base URL.

    One server per test (not pytest-django's session ``live_server``): Django's live server also
    serves STATIC_URL and MEDIA_URL, which Vestibule leaves unset (its assets are served by its own
    views), and the handler reads them when the server starts: unset, the one crashes on every
    request and the other claims every path, so they are set to unused prefixes first.

    The deployment's public URL becomes the server's, as ``vestibule serve`` would set it: links in
    pages and emails, SAML/OIDC endpoints and the CSRF trusted origin follow it. ALLOWED_HOSTS
    (testing settings) already holds ``127.0.0.1``; Chromium may try ``::1`` first for ``localhost``, slowly.
    """
    from pytest_django.live_server_helper import LiveServer

    from tests.interop.op_server import RequestThreads

    settings.STATIC_URL, settings.MEDIA_URL = "/__static__/", "/__media__/"
    server = LiveServer("127.0.0.1:0")
    threads = RequestThreads(server.thread.httpd)
    base = str(server.url).rstrip("/")
    settings.VESTIBULE_BASE_URL = base
    settings.CSRF_TRUSTED_ORIGINS = [base]
    try:
        yield base
    finally:
        threads.end()
        server.stop()


@pytest.fixture
def url(live: str) -> Callable[[str], str]:
    """``url("/console/")``: the live server's absolute URL for a path."""

    def absolute(path: str) -> str:
        return path if path.startswith("http") else live + path

    return absolute


@dataclass
class ConsoleWatch:
    """What the browser logged on one page: CSP refusals, uncaught errors, failed loads."""

    messages: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    documents: set[str] = field(default_factory=set)

    def attach(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.messages.append(f"uncaught JS error: {error}"))
        page.on("response", self._response)

    def _response(self, response: Any) -> None:
        if response.request.resource_type == "document":
            self.documents.add(response.url)

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        text = str(message.text)
        where = str((message.location or {}).get("url", ""))
        # Chromium logs a document answered 404/403 as a failed load; tests visit those on purpose.
        if text.startswith("Failed to load resource") and where in self.documents:
            return
        # Chromium asks for /favicon.ico by itself on pages that name no icon; no page asked for it.
        if text.startswith("Failed to load resource") and where.endswith("/favicon.ico"):
            return
        self.messages.append(f"console error at {where or '?'}: {text}")

    def unexpected(self) -> list[str]:
        return [m for m in self.messages if not any(p.search(m) for p in self.allowed)]


@pytest.fixture
def new_page(browser: Any, url: Callable[[str], str]) -> Iterator[Callable[..., Any]]:
    """``new_page(width=1280, height=900, **context_options)``: a page in a fresh context (no cookies)."""
    opened: list[tuple[Any, ConsoleWatch]] = []

    def make(width: int = DESKTOP["width"], height: int = DESKTOP["height"], **options: Any) -> Any:
        context = browser.new_context(viewport={"width": width, "height": height}, **options)
        context.set_default_timeout(10_000)
        # The process's first request imports every URL module and view: slow on a busy machine.
        context.set_default_navigation_timeout(30_000)
        page = context.new_page()
        watch = ConsoleWatch()
        watch.attach(page)
        page._vestibule_watch = watch
        opened.append((context, watch))
        return page

    yield make
    problems = [m for _, watch in opened for m in watch.unexpected()]
    for context, _ in opened:
        context.close()
    if problems:
        pytest.fail("the browser console reported:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    """A desktop-sized page (1280x900) in a fresh context."""
    return new_page()


@pytest.fixture
def phone_page(new_page: Callable[..., Any]) -> Any:
    """A phone-sized page (375x812) in a fresh context."""
    return new_page(PHONE["width"], PHONE["height"], is_mobile=True, has_touch=True)


@pytest.fixture
def allow_console_errors() -> Callable[[Any, str], None]:
    """``allow_console_errors(page, r"regex")``: a console message this test provokes on purpose."""

    def allow(page: Any, pattern: str) -> None:
        page._vestibule_watch.allowed.append(re.compile(pattern))

    return allow


@pytest.fixture
def make_person(make_user: Callable[..., Any]) -> Callable[..., Any]:
    """``make_person(email, account="acme", roles=["administrator"], operator=False)`` → the User.

    The password is ``tests.conftest.PASSWORD``; ``account=None`` makes someone with no account
    (an operator, usually).
    """

    def make(
        email: str,
        *,
        account: str | None = "acme",
        roles: Iterable[str] = ("administrator",),
        operator: bool = False,
        name: str | None = None,
    ) -> Any:
        extra = {"name": name} if name else {}
        return make_user(email, account=account, roles=tuple(roles), is_operator=operator, **extra)

    return make


@pytest.fixture
def sign_in(url: Callable[[str], str]) -> Callable[..., None]:
    """``sign_in(page, email, password=PASSWORD, next_url="/console/")``: the real email-first form.

    Types the email, continues, types the password, signs in, and waits for the page after it.
    """

    def go(page: Any, email: str, password: str = PASSWORD, next_url: str = "/console/") -> None:
        page.goto(url("/login?next=" + next_url))
        page.get_by_label("Work email").fill(email)
        page.get_by_role("button", name="Continue").click()
        page.get_by_label("Password", exact=True).fill(password)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        assert "/login" not in page.url, f"sign-in as {email} did not leave /login: {page.url}"

    return go


def _report(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"[{v.get('impact')}] {v['id']}: {v['help']} ({v.get('helpUrl', '')})")
        for node in v.get("nodes", [])[:8]:
            target = ", ".join(str(t) for t in node.get("target", []))
            lines.append(f"    at {target}: {str(node.get('html', '')).strip()[:200]}")
            summary = str(node.get("failureSummary", "")).replace("\n", " ").strip()
            if summary:
                lines.append(f"      {summary[:400]}")
    return "\n".join(lines)


@pytest.fixture
def axe_clean() -> Callable[..., list[dict[str, Any]]]:
    """``axe_clean(page, "what the page is")``: fails on any serious or critical axe-core violation.

    axe is injected with Playwright's ``evaluate`` (DevTools' Runtime.evaluate), which the page's
    nonce CSP does not govern, so the CSP stays on for the page itself. Returns every violation
    (moderate and minor included) for a test that wants to look closer.
    """
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()

    def check(page: Any, context: str = "") -> list[dict[str, Any]]:
        page.wait_for_load_state("load")
        results = axe.run(page)
        violations: list[dict[str, Any]] = results.response["violations"]
        failing = [v for v in violations if v.get("impact") in FAILING_IMPACTS]
        if failing:
            pytest.fail(
                f"axe: {len(failing)} serious/critical violation(s) on {context or page.url} ({page.url}):\n"
                + _report(failing),
                pytrace=False,
            )
        return violations

    return check


@pytest.fixture
def shot() -> Callable[[Any, str], Path]:
    """``shot(page, "name")``: a full-page PNG at artifacts/screenshots/<name>.png (kept by CI)."""

    def take(page: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "page"
        path = SCREENSHOTS / f"{safe}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
