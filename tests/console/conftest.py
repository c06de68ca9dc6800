"""Console fixtures: people with roles, signed in through the real password form."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from django.test import Client

from tests.conftest import PASSWORD, csrf_token_from, password_login


class Browser:
    """Django's test client signed in as one person; ``form`` posts with the page's CSRF token."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.client = Client()
        done = password_login(self.client, user.email, PASSWORD)
        assert done.status_code == 302, done.content[:500]
        # From here on, a form without its page's token is refused, as in a real browser.
        self.client.handler.enforce_csrf_checks = True

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def csrf(self, path: str = "/console/") -> str:
        return csrf_token_from(self.client.get(path).content.decode())

    def post(self, path: str, data: dict[str, Any] | None = None, *, page: str | None = None, **kw: Any) -> Any:
        """POST a form as the browser would: with the CSRF token of ``page`` (default: the same path)."""
        token = self.csrf(page or path)
        return self.client.post(path, {**(data or {}), "csrfmiddlewaretoken": token}, **kw)


@pytest.fixture
def person(make_user: Callable[..., Any]) -> Callable[..., Browser]:
    """``person("ann@acme.test", account="acme", roles=["sso-admin"])``: a signed-in browser for a new person.

    ``operator=True`` makes the deployment operator (no account needed: ``account=None``).
    """

    def make(
        email: str, *, account: str | None = "acme", roles: Iterable[str] = ("administrator",), operator: bool = False
    ) -> Browser:
        user = make_user(email, account=account, roles=roles, is_operator=operator)
        return Browser(user)

    return make
