"""The one-time login announcement after an SSO login that granted or changed roles (seed 002).

Driven through real SSO logins (a SAML response / OIDC ID token through the
ACS or callback, tests/e2e drivers), once per protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client

from tests.domain import test_plan as pure
from tests.e2e.conftest import Api, api, make_account, make_connection, sso_driver  # noqa: F401 - fixtures
from vestibule.domain.pipeline import MappingRoleGrants
from vestibule.domain.plan import MANUAL, SSO, Grant, plan

pytestmark = pytest.mark.django_db

ANNOUNCEMENT = "/login/announcement"
FINANCE = {
    "name": "Finance",
    "grants": [
        {"scope": "account", "roles": ["analyst", "report-viewer"]},
        {"scope": "project:production", "roles": ["report-manager"]},
    ],
}
SUPPORT = {"name": "Support", "grants": [{"scope": "account", "roles": ["customer-support"]}]}


@pytest.fixture
def connection(api: Api, make_account: Callable[..., Any], make_connection: Callable[..., Any]) -> dict[str, Any]:  # noqa: F811
    make_account("acme")
    for body in (FINANCE, SUPPORT):
        api.post("/accounts/acme/mapping-roles", body)
    return make_connection(  # type: ignore[no-any-return]
        "acme", ("acme.com",), auto_provision=True, provisioned_users_can_login=True, sso_authorization=True
    )


def _login(driver: Any, connection: dict[str, Any], next_url: str | None = None, **claims: Any) -> tuple[Client, Any]:
    browser = Client()
    response = driver.login(
        browser,
        connection,
        subject="alice@acme.com",
        claims={"email": "alice@acme.com", "name": "Alice", **claims},
        next=next_url,
    )
    return browser, response


def test_a_first_login_announces_the_granted_roles_once_then_continues_to_next(
    connection: dict[str, Any],
    sso_driver: Any,  # noqa: F811
) -> None:
    browser, response = _login(sso_driver, connection, "/console/", role_mapping="Finance")
    assert response.status_code == 302 and response["Location"] == ANNOUNCEMENT
    page = browser.get(ANNOUNCEMENT)
    html = page.content.decode()
    assert page.status_code == 200 and "Your access was updated" in html
    assert "In the account Acme: analyst, report-viewer" in html
    assert "In the project Production: report-manager" in html
    assert "mapping role <strong>Finance</strong>" in html and "Removed" not in html
    assert 'href="/console/">Continue</a>' in html
    # Shown once: a reload goes on without it.
    again = browser.get(ANNOUNCEMENT)
    assert again.status_code == 302 and again["Location"] == "/"
    assert browser.get("/api/v1/session").json()["email"] == "alice@acme.com"


def test_an_unchanged_login_announces_nothing(connection: dict[str, Any], sso_driver: Any) -> None:  # noqa: F811
    _login(sso_driver, connection, role_mapping="Finance")
    browser, response = _login(sso_driver, connection, "/console/", role_mapping="Finance")
    assert response.status_code == 302 and response["Location"] == "/console/"
    assert browser.get(ANNOUNCEMENT)["Location"] == "/"


def test_a_changed_mapping_announces_granted_and_removed(connection: dict[str, Any], sso_driver: Any) -> None:  # noqa: F811
    _login(sso_driver, connection, role_mapping="Finance")
    browser, response = _login(sso_driver, connection, role_mapping="Support")
    assert response["Location"] == ANNOUNCEMENT
    html = browser.get(ANNOUNCEMENT).content.decode()
    now, _, removed = html.partition("<h2>Removed</h2>")
    assert "customer-support" in now and "analyst" not in now
    assert "In the account Acme: analyst, report-viewer" in removed
    assert "In the project Production: report-manager" in removed
    assert 'href="/">Continue</a>' in html


@pytest.mark.parametrize(
    "hostile", ["https://evil.example/steal", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]
)
def test_continue_goes_only_to_the_validated_next(
    connection: dict[str, Any],
    sso_driver: Any,  # noqa: F811
    hostile: str,
) -> None:
    browser, response = _login(sso_driver, connection, hostile, role_mapping="Finance")
    assert response["Location"] == ANNOUNCEMENT
    html = browser.get(ANNOUNCEMENT).content.decode()
    assert 'href="/">Continue</a>' in html and "evil" not in html and "javascript" not in html


def test_an_application_authorize_request_continues_after_the_announcement(
    connection: dict[str, Any],
    sso_driver: Any,  # noqa: F811
) -> None:
    authorize = "/oauth/authorize?client_id=app&redirect_uri=" + quote("https://app.example/cb") + "&state=s1"
    browser, response = _login(sso_driver, connection, authorize, role_mapping="Finance")
    assert response["Location"] == ANNOUNCEMENT
    html = browser.get(ANNOUNCEMENT).content.decode()
    assert f'href="{authorize.replace("&", "&amp;")}">Continue</a>' in html


def test_the_page_needs_a_signed_in_person(db: None) -> None:
    r = Client().get(ANNOUNCEMENT)
    assert r.status_code == 302 and r["Location"].startswith("/login")


# ---- The plan's role_changes note, which the announcement reads (pure, no database) ------------------


def _note(p: Any) -> dict[str, str] | None:
    return next((dict(n.info) for n in p.notes if n.step == "role_changes"), None)


def test_the_plan_notes_only_a_real_change_of_roles() -> None:
    sales = MappingRoleGrants("Sales", frozenset({"analyst"}), {"production": frozenset({"report-viewer"})})
    conn = pure.connection(sso_authorization=True, mapping_roles=(sales,), project_ids={"production": 11})
    asserted = pure.identity(role_mapping=("Sales",))
    # The manual analyst grant becomes the provider's: same roles, new rows, nothing to announce.
    same = plan(pure.linked(connection=conn, identity=asserted, grants=(Grant("analyst", id=1, source=MANUAL),
                Grant("report-viewer", 11, id=2, source=MANUAL))))  # fmt: skip
    assert same.roles and _note(same) is None
    changed = plan(pure.linked(connection=conn, identity=asserted, grants=(Grant("administrator", id=1, source=SSO),)))
    assert _note(changed) == {
        "granted": "analyst,report-viewer@11",
        "removed": "administrator",
        "mapping_roles": "Sales",
    }
    # No roles step (SSO authorization off, no roles claim): the default role is no announcement.
    assert _note(plan(pure.linked(grants=()))) is None
