"""Shared helpers of the OIDC end-to-end tests (fixtures are imported by the test modules)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from tests.e2e.conftest import Api
from tests.e2e.drivers.oidc_driver import OidcDriver, make_oidc_driver
from vestibule.accounts.models import User
from vestibule.audit.models import AuditEvent


@pytest.fixture
def oidc(request: pytest.FixtureRequest) -> OidcDriver:
    """A client_secret_basic client at the session's oidc-provider."""
    return make_oidc_driver(request)


@pytest.fixture
def oidc_connection(api: Api, make_account: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    """Create (account if needed and) an enabled OIDC connection for ``driver``; extra fields go in the payload."""

    def make(
        driver: OidcDriver,
        account: str = "acme",
        domains: tuple[str, ...] = ("acme.com",),
        *,
        oidc: dict[str, Any] | None = None,
        enabled: bool = True,
        **fields: Any,
    ) -> dict[str, Any]:
        if api.client.get(f"/api/v1/accounts/{account}").status_code == 404:
            make_account(account)
        payload: dict[str, Any] = {
            "protocol": "oidc",
            "name": f"OP {driver.client_id}",
            "domains": list(domains),
            "auto_provision": True,
            "provisioned_users_can_login": True,
        }
        payload.update(driver.connection_settings(**(oidc or {})))
        payload.update(fields)
        connection = api.post(f"/accounts/{account}/connections", payload).json()
        if enabled:
            connection = api.patch(f"/connections/{connection['id']}", {"enabled": True}).json()
        return connection

    return make


def session(browser: Client) -> dict[str, Any] | None:
    response = browser.get("/api/v1/session")
    return response.json() if response.status_code == 200 else None


def claims_of(email: str, name: str = "", **extra: Any) -> dict[str, Any]:
    return {"email": email, "name": name or email.split("@")[0].title(), **extra}


def last_event(code_prefix: str) -> AuditEvent:
    event = AuditEvent.objects.filter(code__startswith=code_prefix).order_by("-id").first()
    assert event is not None, f"no audit event {code_prefix}*"
    return event


def password_user(
    api: Api, account: str, email: str, roles: list[str], password: str = "correct horse battery staple"
) -> User:
    api.post(f"/accounts/{account}/users", {"email": email, "name": "Admin", "roles": roles, "send_invitation": False})
    user = User.objects.get(email=email)
    user.set_password(password)
    user.save()
    return user


def password_login(browser: Client, email: str, password: str = "correct horse battery staple") -> None:
    response = browser.post("/login", {"email": email, "password": password, "next": "/"})
    assert response.status_code == 302, response.content.decode()[:1000]
    me = session(browser)
    assert me is not None and me["login_method"] == "password"
