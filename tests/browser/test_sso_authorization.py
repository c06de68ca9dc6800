"""Seed 002 in the browser: mapping roles, enabling SSO authorization past its lock-out warnings, and the
login announcement after a real SAML login through the built-in test identity provider."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from vestibule.accounts.models import Account, Project
from vestibule.connections import rules
from vestibule.connections.authorization import save_mapping_role
from vestibule.connections.models import Connection, ExternalIdentity, MappingRole
from vestibule.testidp import idp

pytestmark = [pytest.mark.browser]


@pytest.fixture
def acme(live: str, make_account: Callable[..., Any]) -> Account:
    account: Account = make_account("acme", "Acme")
    Project.objects.create(account=account, slug="production", name="Production")
    return account


def test_add_a_mapping_role_with_account_and_project_scopes(
    page: Any, url: Any, acme: Account, make_person: Any, sign_in: Any, axe_clean: Any, shot: Any
) -> None:
    sara = make_person("sara@acme.test", roles=["sso-admin"])
    sign_in(page, sara.email)
    page.goto(url("/console/a/acme/mapping-roles/"))
    axe_clean(page, "mapping roles, empty")
    page.get_by_role("link", name="Add mapping role").click()
    page.get_by_label("Mapping role name").fill("Finance")
    page.get_by_label("Scope 1", exact=True).select_option("account")
    page.get_by_role("group", name="Roles in scope 1").get_by_label("analyst", exact=True).check()
    page.get_by_label("Scope 2", exact=True).select_option("account")
    page.get_by_role("group", name="Roles in scope 2").get_by_label("report-manager", exact=True).check()
    page.get_by_role("button", name="Add mapping role").click()

    # Refused: the account scope twice. Nothing saved, what was typed still there, the error on the field.
    error = page.locator("#id_grant-1-scope-error")
    assert "already used in scope 1" in error.inner_text()
    assert page.get_by_label("Scope 2", exact=True).get_attribute("aria-describedby") == "id_grant-1-scope-error"
    assert page.get_by_label("Mapping role name").input_value() == "Finance"
    axe_clean(page, "mapping role form with the duplicate-scope error")
    assert not MappingRole.objects.exists()

    page.get_by_label("Scope 2", exact=True).select_option("project:production")
    page.get_by_role("button", name="Add mapping role").click()
    page.wait_for_url(url("/console/a/acme/mapping-roles/"))
    row = page.get_by_role("row", name="Finance")
    assert "Account: analyst" in row.inner_text() and "Project Production: report-manager" in row.inner_text()
    axe_clean(page, "mapping roles list")
    shot(page, "mapping-roles")
    saved = MappingRole.objects.prefetch_related("role_grants__project").get(account=acme, name="Finance")
    assert saved.grants == [
        {"scope": "account", "roles": ["analyst"]},
        {"scope": "project:production", "roles": ["report-manager"]},
    ]


def test_enable_sso_authorization_shows_the_lockout_warnings_then_confirms(
    page: Any, url: Any, acme: Account, make_person: Any, sign_in: Any, axe_clean: Any, shot: Any
) -> None:
    okta = Connection.objects.create(account=acme, name="Okta", protocol="saml")
    sara = make_person("sara@acme.test", roles=["sso-admin"])
    sign_in(page, sara.email)
    page.goto(url("/console/a/acme/sso/preferences/"))
    assert "Off" in page.get_by_role("region", name="Okta").inner_text()
    axe_clean(page, "SSO preferences")
    shot(page, "sso-preferences")
    page.get_by_label("Enable Single Sign-On Authorization for Okta").check()
    page.get_by_role("button", name="Review change for Okta").click()
    page.get_by_role("heading", name="Enable SSO authorization for Okta").wait_for()
    body = page.locator("main").inner_text()
    assert "There are no mapping roles" in body and "You have no break-glass password" in body
    assert page.get_by_role("link", name="recovery access").count() >= 1
    axe_clean(page, "enable SSO authorization: warnings")
    shot(page, "sso-preferences-confirm")
    okta.refresh_from_db()
    assert not okta.sso_authorization
    page.get_by_role("button", name="Enable SSO authorization for Okta").click()
    page.wait_for_url(url("/console/a/acme/sso/preferences/"))
    assert "SSO authorization is on for Okta" in page.locator("main").inner_text()
    axe_clean(page, "SSO preferences after enabling")
    okta.refresh_from_db()
    assert okta.sso_authorization


@pytest.fixture
def test_idp(settings: Any, tmp_path: Any, live: str) -> Iterator[None]:
    settings.VESTIBULE_TEST_IDP = True
    settings.CONFIG = dataclasses.replace(settings.CONFIG, data_dir=tmp_path)
    idp._cache.clear()
    yield
    idp._cache.clear()


def test_an_sso_login_that_grants_roles_shows_the_announcement_once(
    page: Any, url: Any, acme: Account, test_idp: None, axe_clean: Any, shot: Any
) -> None:
    connection = rules.create_connection(
        acme,
        {
            "protocol": "saml", "name": "Acme SSO", "domains": ["acme.test"],
            "auto_provision": True, "provisioned_users_can_login": True,
        },
        may_claim=True,
    )  # fmt: skip
    rules.import_idp_metadata(connection, idp.metadata_xml())
    rules.update_connection(connection, {"enabled": True, "sso_authorization": True})
    save_mapping_role(
        acme,
        name="Finance",
        grants=[
            {"scope": "account", "roles": ["analyst"]},
            {"scope": "project:production", "roles": ["report-viewer"]},
        ],
    )

    def sso_login() -> None:
        page.goto(url("/login?next=/"))
        page.get_by_label("Work email").fill("maria@acme.test")
        page.get_by_role("button", name="Continue").click()
        page.get_by_label("role_mapping (optional)").fill("Finance")
        page.get_by_role("button", name="Sign in").click()

    sso_login()
    page.wait_for_url(url("/login/announcement"))
    heading = page.get_by_role("heading", name="Your access was updated", level=1)
    assert heading.is_visible()
    text = page.locator("main").inner_text()
    assert "In the account Acme: analyst" in text and "In the project Production: report-viewer" in text
    assert "Finance" in text
    axe_clean(page, "login announcement")
    shot(page, "login-announcement")
    page.get_by_role("link", name="Continue").click()
    page.wait_for_url(url("/"))
    # Once: coming back finds nothing to announce, and the same login again announces nothing.
    page.goto(url("/login/announcement"))
    page.wait_for_url(url("/"))
    page.context.clear_cookies()
    sso_login()
    page.wait_for_url(url("/"))


def test_edit_then_delete_a_mapping_role_naming_who_loses_roles(
    phone_page: Any, url: Any, acme: Account, make_person: Any, make_user: Any, sign_in: Any, axe_clean: Any
) -> None:
    page = phone_page
    okta = Connection.objects.create(account=acme, name="Okta", protocol="saml", sso_authorization=True)
    finance = save_mapping_role(acme, name="Finance", grants=[{"scope": "account", "roles": ["analyst"]}])
    mo = make_user("mo@acme.test")
    ExternalIdentity.objects.create(
        connection=okta, external_id="mo", user=mo, last_claims={"role_mapping": ["Finance"]}
    )
    sara = make_person("sara@acme.test", roles=["sso-admin"])
    sign_in(page, sara.email)
    page.goto(url("/console/a/acme/mapping-roles/"))
    page.get_by_role("link", name="Edit Finance").click()
    assert "1 person signed in under this mapping role" in page.locator("main").inner_text()
    page.get_by_role("group", name="Roles in scope 1").get_by_label("report-viewer", exact=True).check()
    axe_clean(page, "edit mapping role (phone)")
    page.get_by_role("button", name="Save mapping role Finance").click()
    page.wait_for_url(url("/console/a/acme/mapping-roles/"))
    assert "Account: analyst, report-viewer" in page.get_by_role("row", name="Finance").inner_text()

    page.get_by_role("link", name="Delete Finance").click()
    row = page.get_by_role("row", name="mo@acme.test")
    assert "Refused" in row.inner_text()
    axe_clean(page, "delete mapping role confirmation (phone)")
    page.get_by_role("button", name="Delete mapping role Finance").click()
    page.wait_for_url(url("/console/a/acme/mapping-roles/"))
    assert "Mapping role Finance deleted" in page.locator("body").inner_text()
    assert not MappingRole.objects.filter(pk=finance.pk).exists()
