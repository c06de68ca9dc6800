"""Helpers shared by the login-policy end-to-end tests (issue 5).

Setup that is not the behaviour under test (giving a user a password or a
TOTP secret) goes through the ORM; everything a test asserts goes through
HTTP: the browser pages, the admin API and the audit API.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from vestibule.accounts.models import User

PASSWORD = "correct horse battery staple 42"


_SP_KEY_PAIRS: dict[str, dict[str, str]] = {}


@pytest.fixture(autouse=True)
def reuse_sp_key_pairs(monkeypatch):
    """Every SAML connection generates two RSA-2048 key pairs (~0.1 s each).

    The policy tests create dozens of connections and never depend on their SP
    keys being distinct, so one real pair per purpose is generated per test
    session and reused. Signing, encryption and verification still run for real.
    """
    from vestibule.connections import keys

    real = keys.generate_key_pair

    def reused(common_name: str, *, years: int = 10) -> dict[str, str]:
        purpose = "encryption" if "encryption" in common_name else "signing"
        if purpose not in _SP_KEY_PAIRS:
            _SP_KEY_PAIRS[purpose] = real(common_name, years=years)
        return _SP_KEY_PAIRS[purpose]

    monkeypatch.setattr(keys, "generate_key_pair", reused)


@pytest.fixture(autouse=True)
def fresh_counters():
    """Rate-limit and lockout counters live in the cache, which outlives each test's database."""
    cache.clear()
    yield
    cache.clear()


def audit(api: Any, account: str, code: str) -> list[dict[str, Any]]:
    return api.get(f"/accounts/{account}/audit-events?code={code}")


def assert_refused(response: Any, code: str, api: Any, account: str, *, status: int | None = None) -> dict[str, Any]:
    """The refusal page names ``code`` with a 4xx status, and the audit log has the event."""
    body = response.content.decode()
    if status is not None:
        assert response.status_code == status, (response.status_code, body[:800])
    assert 400 <= response.status_code < 500, (response.status_code, body[:800])
    assert code in body, body[:1500]
    events = audit(api, account, code)
    assert events, f"no audit event {code} in account {account}"
    assert events[0]["outcome"] == "failure"
    return events[0]


def assert_signed_in(response: Any, browser: Client, email: str | None = None) -> dict[str, Any]:
    assert response.status_code == 302, (response.status_code, response.content.decode()[:1500])
    me = browser.get("/api/v1/session")
    assert me.status_code == 200, me.content
    payload = me.json()
    if email is not None:
        assert payload["email"] == email
    return payload


def signed_out(browser: Client) -> bool:
    return browser.get("/api/v1/session").status_code == 401


def invite(
    api: Any,
    account: str,
    email: str,
    *,
    roles: list[str] | None = None,
    name: str = "",
    password: str | None = PASSWORD,
    **fields: Any,
) -> dict[str, Any]:
    """A member created by an admin, optionally with a password set (as after accepting the invitation)."""
    body = {
        "email": email,
        "name": name or email.split("@")[0].title(),
        "roles": roles or [],
        "send_invitation": False,
        **fields,
    }
    user = api.post(f"/accounts/{account}/users", body).json()
    if password is not None:
        row = User.objects.get(pk=user["id"])
        row.set_password(password)
        row.save()
    return user


def password_login(browser: Client, email: str, password: str = PASSWORD) -> Any:
    return browser.post("/login", {"email": email, "password": password})


def login_step(browser: Client, email: str, next_url: str = "") -> Any:
    """The email-first step of /login."""
    return browser.post("/login", {"email": email, "next": next_url})


def claims(email: str, name: str = "Test Person", **extra: Any) -> dict[str, Any]:
    return {"email": email, "name": name, **extra}
