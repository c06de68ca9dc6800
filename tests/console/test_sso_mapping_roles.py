"""Console: mapping roles (seed 002) — add, edit, delete, the rules' errors on their fields, tenancy."""

from __future__ import annotations

from typing import Any

import pytest

from vestibule.accounts.models import Project
from vestibule.audit.models import AuditEvent
from vestibule.connections.authorization import save_mapping_role
from vestibule.connections.models import Connection, ExternalIdentity, MappingRole

pytestmark = pytest.mark.django_db

BASE = "/console/a/acme/mapping-roles/"


@pytest.fixture
def acme(make_account: Any) -> Any:
    account = make_account("acme", "Acme")
    Project.objects.create(account=account, slug="production", name="Production")
    Project.objects.create(account=account, slug="staging", name="Staging")
    return account


@pytest.fixture
def sso_admin(acme: Any, person: Any) -> Any:
    return person("sara@acme.test", roles=["sso-admin"])


def _grants(name: str) -> list[dict[str, Any]]:
    return MappingRole.objects.prefetch_related("role_grants__project").get(name=name).grants


def test_the_list_shows_each_mapping_role_with_its_grants_per_scope(acme: Any, sso_admin: Any) -> None:
    save_mapping_role(
        acme,
        name="Sales",
        grants=[
            {"scope": "account", "roles": ["analyst"]},
            {"scope": "project:production", "roles": ["report-viewer"]},
        ],
    )
    page = sso_admin.get(BASE)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Sales" in html and "Account: analyst" in html and "Project Production: report-viewer" in html
    assert "SSO authorization is off for every connection" in html


def test_add_a_mapping_role_with_account_and_project_scopes(acme: Any, sso_admin: Any) -> None:
    form = sso_admin.get(BASE + "add/")
    assert form.status_code == 200 and b"Add mapping role" in form.content
    r = sso_admin.post(
        BASE + "add/",
        {
            "rows": "2",
            "name": "Sales",
            "grant-0-scope": "account",
            "grant-0-roles": ["analyst", "report-viewer"],
            "grant-1-scope": "project:production",
            "grant-1-roles": ["customer-support"],
        },
        page=BASE + "add/",
    )
    assert r.status_code == 302 and r["Location"] == BASE
    assert _grants("Sales") == [
        {"scope": "account", "roles": ["analyst", "report-viewer"]},
        {"scope": "project:production", "roles": ["customer-support"]},
    ]
    event = AuditEvent.objects.get(code="mapping_role.created")
    assert (
        event.detail["name"] == "Sales" and event.actor_user is not None and event.actor_user.email == "sara@acme.test"
    )


def _refused(sso_admin: Any, data: dict[str, Any], status: int = 400) -> str:
    r = sso_admin.post(BASE + "add/", {"rows": "2", **data}, page=BASE + "add/")
    assert r.status_code == status, r.content[:2000]
    assert not MappingRole.objects.exists()
    return str(r.content.decode())


def test_a_scope_used_twice_is_refused_on_that_row_and_what_was_typed_stays(acme: Any, sso_admin: Any) -> None:
    html = _refused(
        sso_admin,
        {
            "name": "Sales",
            "grant-0-scope": "account",
            "grant-0-roles": ["analyst"],
            "grant-1-scope": "account",
            "grant-1-roles": ["report-viewer"],
        },
    )
    assert "already used in scope 1" in html
    assert 'id="id_grant-1-scope-error"' in html and 'aria-describedby="id_grant-1-scope-error"' in html
    assert 'value="Sales"' in html
    assert 'value="report-viewer" id="id_grant-1-roles_' in html and "checked" in html


def test_a_scope_without_roles_is_refused(acme: Any, sso_admin: Any) -> None:
    html = _refused(sso_admin, {"name": "Sales", "grant-0-scope": "account"})
    assert 'id="id_grant-0-roles-error"' in html and "at least one role" in html


def test_no_scope_at_all_is_refused(acme: Any, sso_admin: Any) -> None:
    html = _refused(sso_admin, {"name": "Sales"})
    assert "Choose at least one scope" in html


def test_an_unknown_role_is_refused(acme: Any, sso_admin: Any) -> None:
    html = _refused(sso_admin, {"name": "Sales", "grant-0-scope": "account", "grant-0-roles": ["superuser"]})
    assert "superuser" in html and 'id="id_grant-0-roles-error"' in html


def test_the_catalog_requires_rule_is_refused_on_the_roles(acme: Any, sso_admin: Any) -> None:
    html = _refused(sso_admin, {"name": "Sales", "grant-0-scope": "account", "grant-0-roles": ["pii-viewer"]})
    assert 'id="id_grant-0-roles-error"' in html and "analyst" in html


def test_a_duplicate_name_is_refused_with_409(acme: Any, sso_admin: Any) -> None:
    save_mapping_role(acme, name="Sales", grants=[{"scope": "account", "roles": ["analyst"]}])
    r = sso_admin.post(
        BASE + "add/",
        {"rows": "1", "name": "Sales", "grant-0-scope": "account", "grant-0-roles": ["administrator"]},
        page=BASE + "add/",
    )
    assert r.status_code == 409 and 'id="id_name-error"' in r.content.decode()
    assert MappingRole.objects.count() == 1 and _grants("Sales") == [{"scope": "account", "roles": ["analyst"]}]


def test_a_project_of_another_account_cannot_be_a_scope(acme: Any, sso_admin: Any, make_account: Any) -> None:
    beta = make_account("beta")
    Project.objects.create(account=beta, slug="secret", name="Secret")
    html = _refused(sso_admin, {"name": "Sales", "grant-0-scope": "project:secret", "grant-0-roles": ["analyst"]})
    assert 'id="id_grant-0-scope-error"' in html


def test_add_another_scope_shows_one_more_row_and_saves_nothing(acme: Any, sso_admin: Any) -> None:
    r = sso_admin.post(
        BASE + "add/",
        {"rows": "2", "more": "1", "name": "Sales", "grant-0-scope": "account", "grant-0-roles": ["analyst"]},
        page=BASE + "add/",
    )
    html = r.content.decode()
    assert r.status_code == 200 and 'name="grant-2-scope"' in html and 'value="Sales"' in html
    assert "field-error" not in html and not MappingRole.objects.exists()


def test_edit_renames_changes_roles_and_removes_a_scope(acme: Any, sso_admin: Any) -> None:
    m = save_mapping_role(
        acme,
        name="Sales",
        grants=[{"scope": "account", "roles": ["analyst"]}, {"scope": "project:production", "roles": ["analyst"]}],
    )
    url = f"{BASE}{m.pk}/"
    page = sso_admin.get(url).content.decode()
    assert 'value="Sales"' in page and 'value="project:production" selected' in page
    r = sso_admin.post(
        url,
        {
            "rows": "3",
            "name": "Sales EU",
            "grant-0-scope": "account",
            "grant-0-roles": ["analyst", "report-manager"],
            "grant-1-scope": "",
            "grant-2-scope": "project:staging",
            "grant-2-roles": ["customer-support"],
        },
        page=url,
    )
    assert r.status_code == 302
    assert _grants("Sales EU") == [
        {"scope": "account", "roles": ["analyst", "report-manager"]},
        {"scope": "project:staging", "roles": ["customer-support"]},
    ]
    assert AuditEvent.objects.filter(code="mapping_role.updated", detail__name="Sales EU").exists()


def test_a_refused_edit_changes_nothing(acme: Any, sso_admin: Any) -> None:
    m = save_mapping_role(acme, name="Sales", grants=[{"scope": "account", "roles": ["analyst"]}])
    url = f"{BASE}{m.pk}/"
    r = sso_admin.post(url, {"rows": "1", "name": "Other", "grant-0-scope": "account"}, page=url)
    assert r.status_code == 400
    assert _grants("Sales") == [{"scope": "account", "roles": ["analyst"]}]


def test_delete_names_the_people_who_lose_roles_then_deletes(acme: Any, sso_admin: Any, make_user: Any) -> None:
    m = save_mapping_role(acme, name="Sales", grants=[{"scope": "account", "roles": ["analyst"]}])
    save_mapping_role(acme, name="Support", grants=[{"scope": "account", "roles": ["customer-support"]}])
    conn = Connection.objects.create(account=acme, name="Okta", protocol="saml", sso_authorization=True)
    for email, values in (("only@acme.test", ["Sales"]), ("both@acme.test", ["Sales", "Support"])):
        user = make_user(email)
        ExternalIdentity.objects.create(
            connection=conn, external_id=email, user=user, last_claims={"role_mapping": values}
        )
    other = make_user("else@acme.test")
    ExternalIdentity.objects.create(
        connection=conn, external_id="x", user=other, last_claims={"role_mapping": ["Support"]}
    )
    url = f"{BASE}{m.pk}/delete/"
    page = sso_admin.get(url).content.decode()
    assert "only@acme.test" in page and "both@acme.test" in page and "else@acme.test" not in page
    assert page.count("<strong>Refused</strong>") == 1
    r = sso_admin.post(url, page=url)
    assert r.status_code == 302 and not MappingRole.objects.filter(name="Sales").exists()
    assert AuditEvent.objects.filter(code="mapping_role.deleted", detail__name="Sales").exists()


# ---- Who may: tenancy and roles ----------------------------------------------------


def _urls(m: MappingRole) -> list[tuple[str, str, dict[str, Any]]]:
    change = {"rows": "1", "name": "Hacked", "grant-0-scope": "account", "grant-0-roles": ["administrator"]}
    return [
        ("get", BASE, {}),
        ("get", BASE + "add/", {}),
        ("post", BASE + "add/", change),
        ("get", f"{BASE}{m.pk}/", {}),
        ("post", f"{BASE}{m.pk}/", change),
        ("get", f"{BASE}{m.pk}/delete/", {}),
        ("post", f"{BASE}{m.pk}/delete/", {}),
    ]


@pytest.mark.parametrize("who", ["beta-sso-admin", "acme-administrator-less"])
@pytest.mark.parametrize("index", range(7))
def test_others_can_do_nothing_to_acme_mapping_roles(
    acme: Any, person: Any, make_account: Any, who: str, index: int
) -> None:
    m = save_mapping_role(acme, name="Sales", grants=[{"scope": "account", "roles": ["analyst"]}])
    if who == "beta-sso-admin":
        make_account("beta")
        intruder, expected, home = person("bob@beta.test", account="beta", roles=["sso-admin"]), 404, "/console/a/beta/"
    else:
        intruder, expected, home = person("carl@acme.test", roles=["analyst", "user-manager"]), 403, "/console/a/acme/"
    method, url, data = _urls(m)[index]
    r = intruder.get(url) if method == "get" else intruder.post(url, data, page=home)
    assert r.status_code == expected
    assert list(MappingRole.objects.values_list("name", flat=True)) == ["Sales"]
    assert _grants("Sales") == [{"scope": "account", "roles": ["analyst"]}]
    assert not AuditEvent.objects.filter(code__startswith="mapping_role.").exists()


def test_an_administrator_holds_sso_admin_and_may(acme: Any, person: Any) -> None:
    admin = person("ada@acme.test", roles=["administrator"])
    assert admin.get(BASE).status_code == 200


@pytest.mark.parametrize(
    "suffix",
    ["0/", "999999999999999999999999/", "-1/", "abc/", "1%00/", "99999999999999999999/delete/", "x" * 300 + "/"],
)
def test_hostile_ids_in_urls_answer_404(acme: Any, sso_admin: Any, suffix: str) -> None:
    assert sso_admin.get(BASE + suffix).status_code == 404


@pytest.mark.parametrize(
    "data",
    [
        {"rows": "abc", "name": "x" * 5000, "grant-0-scope": "account", "grant-0-roles": ["analyst"]},
        {"rows": "99999999", "name": "S", "grant-0-scope": "project:" + "x" * 5000, "grant-0-roles": ["analyst"]},
        {"rows": "-5", "name": "\x00", "grant-0-scope": "account", "grant-0-roles": ["\x00"]},
        {"rows": "1", "name": "S\x00S", "grant-0-scope": "account", "grant-0-roles": ["analyst"]},
        {"rows": "3", "more": "1", "name": "S", "grant-40-scope": "account"},
    ],
)
def test_hostile_form_input_never_answers_5xx(acme: Any, sso_admin: Any, data: dict[str, Any]) -> None:
    r = sso_admin.post(BASE + "add/", data, page=BASE + "add/")
    assert r.status_code < 500


def test_a_post_without_csrf_token_is_refused(acme: Any, sso_admin: Any) -> None:
    r = sso_admin.client.post(
        BASE + "add/", {"rows": "1", "name": "S", "grant-0-scope": "account", "grant-0-roles": ["analyst"]}
    )
    assert r.status_code == 403 and not MappingRole.objects.exists()
