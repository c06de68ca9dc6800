"""Shared fixtures: API keys, an API client that sends ``Authorization: Bearer``, users, sign-in.

Everything runs against the real database of the run (SQLite by default,
PostgreSQL with ``VESTIBULE_TEST_DATABASE_URL``), the real argon2 hasher (cheap
parameters, see ``vestibule.conf.testing``) and the real cache backend.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

# In CI (CI=true or VESTIBULE_REQUIRE_PEERS=1) a skip fails the run unless allow-listed there;
# ``--suite`` selects the parallel or the serial half of ``make test``.
pytest_plugins = ["tests.ci_skips", "tests.suites"]

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(autouse=True)
def _isolated_side_effects(settings: Any) -> Iterable[None]:
    """Emails land in ``django.core.mail.outbox``; rate-limit counters start at zero.

    The provider's active signing key is read afresh: each test's database has its own keys.
    """
    from vestibule.provider.keys import forget_active_key

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cache.clear()
    forget_active_key()
    yield
    cache.clear()
    forget_active_key()


class ApiClient:
    """The Django test client, sending JSON and a bearer key on every call."""

    def __init__(self, client: Client, key: str | None) -> None:
        self.client = client
        self.key = key

    def as_key(self, key: str | None) -> ApiClient:
        return ApiClient(self.client, key)

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {} if self.key is None else {"Authorization": f"Bearer {self.key}"}
        headers.update(extra or {})
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        call = getattr(self.client, method.lower())
        kwargs: dict[str, Any] = {"headers": self._headers(headers)}
        if raw is not None:
            kwargs.update(data=raw, content_type=content_type)
        elif body is not None:
            kwargs.update(data=json.dumps(body), content_type=content_type)
        return call(path, **kwargs)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def operator_key(db: None) -> str:
    from vestibule.authority.models import ApiKey

    _, secret = ApiKey.issue(name="test operator")
    return secret


@pytest.fixture
def make_account(db: None) -> Callable[..., Any]:
    from vestibule.accounts.models import Account

    def make(slug: str = "acme", name: str | None = None, **fields: Any) -> Account:
        account, _ = Account.objects.get_or_create(slug=slug, defaults={"name": name or slug.title(), **fields})
        return account

    return make


@pytest.fixture
def account_key(make_account: Callable[..., Any]) -> Callable[[str], str]:
    """``account_key("acme")``: a key limited to that account (created if missing)."""
    from vestibule.authority.models import ApiKey

    def make(slug: str) -> str:
        _, secret = ApiKey.issue(account=make_account(slug), name=f"key of {slug}")
        return secret

    return make


@pytest.fixture
def api(client: Client, operator_key: str) -> ApiClient:
    """An API client holding the operator key; ``api.as_key(k)`` switches keys."""
    return ApiClient(client, operator_key)


@pytest.fixture
def make_user(make_account: Callable[..., Any]) -> Callable[..., Any]:
    """Create a user directly in the database, optionally as a member with account-scope roles."""
    from vestibule.accounts.models import Membership, User
    from vestibule.accounts.roles import replace_manual_roles

    def make(
        email: str = "alice@example.com",
        *,
        password: str | None = PASSWORD,
        name: str = "Alice Example",
        account: str | None = "acme",
        roles: Iterable[str] = ("analyst",),
        **fields: Any,
    ) -> User:
        user = User.objects.create_user(email, name=name, password=password, **fields)
        if account is not None:
            acc = make_account(account)
            Membership.objects.create(user=user, account=acc)
            if roles:
                replace_manual_roles(user, acc, roles)
        return user

    return make


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def password_login(client: Client, email: str, password: str, next_url: str = "", **extra: str) -> Any:
    """Walk the email-first form: the email step, then the password step. Returns the last response."""
    first = client.post("/login", {"email": email, "next": next_url})
    assert first.status_code == 200, first.content
    assert b'name="password"' in first.content
    return client.post("/login", {"email": email, "password": password, "next": next_url, **extra})


@pytest.fixture
def login() -> Callable[..., Any]:
    return password_login
