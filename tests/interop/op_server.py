"""A live Vestibule on 127.0.0.1 for the OpenID Provider interop tests, and a browser that signs in there.

The server is Django's live server thread (pytest-django's ``LiveServer``)
bound to 127.0.0.1 on an OS-chosen port, serving the test database (in-memory
SQLite shared with the server thread, or PostgreSQL under
``VESTIBULE_TEST_DATABASE_URL``): the test creates people with the ORM and
registers applications through the real operator API, and the relying parties
under test (openid-client in Node, Authlib here) reach it only over HTTP.
Its issuer is its own URL: ``VESTIBULE_BASE_URL`` and the provider's issuer
are pointed at it for the duration of the test.

The browser is an ``httpx.Client`` with a cookie jar: it walks the
email-first login form (email step, password step, CSRF token taken from each
page) and follows redirects until the relying party's redirect URI, which is
never contacted.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from pytest_django.live_server_helper import LiveServer

from tests.conftest import PASSWORD
from vestibule.accounts.models import Account, Project, ProjectAccess
from vestibule.accounts.roles import replace_manual_roles

# Where the relying parties say they live; the browser stops when sent there.
REDIRECT_URI = "http://127.0.0.1:9/rp/callback"
POST_LOGOUT_REDIRECT_URI = "http://127.0.0.1:9/rp/signed-out"
SCOPE = "openid email profile organization"
CLIENT_AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")


@dataclass(frozen=True)
class RegisteredApp:
    client_id: str
    client_secret: str | None
    auth_method: str


def page_text(response: httpx.Response) -> str:
    """What a person reads on the page (no styles, no tags): enough to tell why a step failed."""
    text = re.sub(r"(?s)<(style|script)\b.*?</\1>", " ", response.text)
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())[:1500]


class NotRedirected(AssertionError):
    """A page where the walk expected a redirect: Vestibule stopped the browser (an error page, a form)."""


class Browser:
    """A person's browser: cookies, the login form, redirects followed by hand."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(timeout=15, follow_redirects=False)
        self.visited: list[str] = []

    def close(self) -> None:
        self.http.close()

    def _csrf(self, html: str) -> str:
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        assert match, f"page has no CSRF token:\n{html[:1000]}"
        return match.group(1)

    def sign_in(self, login_url: str, email: str, password: str) -> httpx.Response:
        """Fill in the email-first form found at ``login_url`` (it carries ``next``); returns the response to it."""
        page = self.http.get(login_url)
        assert page.status_code == 200, (page.status_code, page.text[:500])
        next_url = parse_qs(urlsplit(login_url).query).get("next", [""])[0]
        form = {"email": email, "next": next_url}
        step = self.http.post(f"{self.base_url}/login", data={**form, "csrfmiddlewaretoken": self._csrf(page.text)})
        assert step.status_code == 200 and 'name="password"' in step.text, (step.status_code, step.text[:800])
        done = self.http.post(
            f"{self.base_url}/login",
            data={**form, "password": password, "csrfmiddlewaretoken": self._csrf(step.text)},
        )
        assert done.status_code == 302, (done.status_code, done.text[:800])
        return done

    def follow(
        self, url: str, *, until: str, email: str | None = None, password: str = PASSWORD, limit: int = 15
    ) -> str:
        """GET ``url`` and follow redirects until one leads to ``until``; returns that URL (not fetched).

        A redirect to Vestibule's login page is answered by signing in as
        ``email`` (a test that expects a session passes no email, and fails there).
        """
        for _ in range(limit):
            if url.startswith(until):
                return url
            self.visited.append(url)
            if urlsplit(url).path == "/login":
                assert email is not None, f"asked to sign in again at {url}"
                response = self.sign_in(url, email, password)
                email = None
            else:
                response = self.http.get(url)
            if response.status_code not in (301, 302, 303, 307):
                raise NotRedirected(f"{response.status_code} at {url} (expected a redirect):\n{page_text(response)}")
            url = urljoin(url, response.headers["location"])
        raise AssertionError(f"more than {limit} redirects: {self.visited}")

    def session(self) -> httpx.Response:
        """``GET /api/v1/session``: 200 while this browser is signed in to Vestibule, 401 once it is not."""
        return self.http.get(f"{self.base_url}/api/v1/session")


@dataclass
class LiveVestibule:
    """The running server: its issuer, an operator key, and the API calls the tests need."""

    issuer: str
    operator_key: str
    browsers: list[Browser]

    def api(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.issuer}/api/v1/{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.operator_key}"},
            timeout=15,
        )

    def register(self, auth_method: str, **fields: Any) -> RegisteredApp:
        """``POST /api/v1/applications``: public for ``none``, confidential for the client_secret methods."""
        body = {
            "name": f"Interop RP ({auth_method})",
            "redirect_uris": [REDIRECT_URI],
            "post_logout_redirect_uris": [POST_LOGOUT_REDIRECT_URI],
            "client_type": "public" if auth_method == "none" else "confidential",
            **fields,
        }
        response = self.api("POST", "applications", body)
        assert response.status_code == 201, response.text
        created = response.json()
        assert (created["client_secret"] is None) == (auth_method == "none"), created
        return RegisteredApp(created["client_id"], created["client_secret"], auth_method)

    def set_roles(self, account: str, user_id: int, roles: list[str], project: str | None = None) -> dict[str, Any]:
        """``PUT /api/v1/accounts/<slug>/users/<id>/roles``, as an administrator would change them."""
        body: dict[str, Any] = {"roles": roles, **({"project": project} if project else {})}
        response = self.api("PUT", f"accounts/{account}/users/{user_id}/roles", body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def browser(self) -> Browser:
        browser = Browser(self.issuer)
        self.browsers.append(browser)
        return browser


@pytest.fixture
def live_vestibule(transactional_db: None, settings: Any, operator_key: str) -> Iterator[LiveVestibule]:
    """Vestibule served on 127.0.0.1, its issuer the server's own URL."""
    # Django's live server also serves files under STATIC_URL and MEDIA_URL, which Vestibule leaves
    # unset: unset, the one crashes on every request and the other claims every path.
    settings.STATIC_URL, settings.MEDIA_URL = "/__static__/", "/__media__/"
    server = LiveServer("127.0.0.1:0")
    request_threads = RequestThreads(server.thread.httpd)
    live = LiveVestibule(issuer=server.url, operator_key=operator_key, browsers=[])
    try:
        settings.VESTIBULE_BASE_URL = live.issuer
        settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": live.issuer}
        discovery = httpx.get(f"{live.issuer}/.well-known/openid-configuration", timeout=15)
        assert discovery.status_code == 200 and discovery.json()["issuer"] == live.issuer, discovery.text
        yield live
    finally:
        for browser in live.browsers:
            browser.close()
        request_threads.end()
        server.stop()


class RequestThreads:
    """The live server's request threads, so that they end before the server stops.

    Django's live server does not wait for them, and each one, on its way
    out, closes the database connection it borrowed (shared with the test
    thread on in-memory SQLite): after ``stop()`` that is an error in the
    thread. A thread ends when its client hangs up; one waiting on a
    keep-alive connection nobody closed (an HTTP client's pool the test let
    go of) is made to end by shutting its socket down from the server side.
    """

    def __init__(self, httpd: Any) -> None:
        # Every thread is joined, not only the busy ones: a thread closes its database connection
        # after its request is finished.
        self.threads: list[threading.Thread] = []
        self.open: dict[threading.Thread, socket.socket] = {}
        self.lock = threading.Lock()
        finish_request = httpd.finish_request

        def tracked(request: socket.socket, client_address: Any) -> None:
            with self.lock:
                self.threads.append(threading.current_thread())
                self.open[threading.current_thread()] = request
            try:
                finish_request(request, client_address)
            finally:
                with self.lock:
                    self.open.pop(threading.current_thread(), None)

        httpd.finish_request = tracked

    def end(self, timeout: float = 10) -> None:
        with self.lock:
            threads, still_open = list(self.threads), list(self.open.values())
        for request in still_open:
            with contextlib.suppress(OSError):
                request.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


@pytest.fixture
def alice(make_user: Callable[..., Any]) -> Any:
    """A password user of acme: analyst there, and report-viewer in its production project."""
    user = make_user("alice@example.com", name="Alice Example", roles=("analyst",))
    account = Account.objects.get(slug="acme")
    project = Project.objects.create(account=account, slug="production", name="Production")
    replace_manual_roles(user, account, ["report-viewer"], project)
    ProjectAccess.objects.create(user=user, project=project)
    return user
