"""The admin REST API: CRUD, API key scopes, catalog enforcement, bad input, OpenAPI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import mail

from vestibule.accounts.models import Account, Membership, Project, RoleGrant, User
from vestibule.authority.models import ApiKey

pytestmark = pytest.mark.django_db

V1 = "/api/v1"


class AuditEventActor:
    @staticmethod
    def of(code: str) -> str | None:
        from vestibule.audit.models import AuditEvent

        event = AuditEvent.objects.filter(code=code).select_related("actor_user").first()
        return event.actor_user.email if event is not None and event.actor_user else None


def items(response: Any) -> list[Any]:
    body = response.json()
    return body["items"] if isinstance(body, dict) else body


@pytest.fixture
def acme(api: Any) -> dict[str, Any]:
    response = api.post(f"{V1}/accounts", {"slug": "acme", "name": "Acme Corp"})
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def globex(api: Any) -> dict[str, Any]:
    response = api.post(f"{V1}/accounts", {"slug": "globex", "name": "Globex"})
    assert response.status_code == 201, response.content
    return response.json()


def new_user(api: Any, slug: str = "acme", email: str = "ann@acme.example", **fields: Any) -> dict[str, Any]:
    body = {"email": email, "name": "Ann", "send_invitation": False, **fields}
    response = api.post(f"{V1}/accounts/{slug}/users", body)
    assert response.status_code == 201, response.content
    return response.json()


# Authentication ----------------------------------------------------------------


def test_no_key_is_401_with_bearer_challenge(client: Any) -> None:
    response = client.get(f"{V1}/accounts")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert "API key" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Bearer nonsense", "Bearer vst_abc", "Bearer vst_abc_def", "Basic dXNlcjpwYXNz", "vst_x_y"],
)
def test_malformed_or_unknown_keys_are_401(client: Any, header: str) -> None:
    response = client.get(f"{V1}/accounts", headers={"Authorization": header})
    assert response.status_code == 401


def test_key_with_right_prefix_but_wrong_secret_is_401(api: Any, operator_key: str) -> None:
    prefix = operator_key.split("_")[1]
    assert api.as_key(f"vst_{prefix}_{'A' * 43}").get(f"{V1}/accounts").status_code == 401
    assert api.get(f"{V1}/accounts").status_code == 200


def test_revoked_key_is_401(api: Any, acme: dict[str, Any]) -> None:
    created = api.post(f"{V1}/accounts/acme/api-keys", {"name": "ci"}).json()
    key = api.as_key(created["key"])
    assert key.get(f"{V1}/accounts/acme").status_code == 200
    assert api.delete(f"{V1}/accounts/acme/api-keys/{created['id']}").status_code == 204
    assert key.get(f"{V1}/accounts/acme").status_code == 401
    # Revoking twice: the key is gone.
    assert api.delete(f"{V1}/accounts/acme/api-keys/{created['id']}").status_code == 404


def test_key_of_a_deleted_account_is_401(api: Any, acme: dict[str, Any], account_key: Any) -> None:
    key = api.as_key(account_key("acme"))
    assert api.delete(f"{V1}/accounts/acme").status_code == 204
    assert key.get(f"{V1}/accounts").status_code == 401


def test_key_is_stored_only_as_digest_and_last_use_is_tracked(api: Any, operator_key: str) -> None:
    row = ApiKey.objects.get()
    assert operator_key.split("_", 2)[2] not in (row.digest, row.prefix)
    assert row.last_used_at is None
    api.get(f"{V1}/accounts")
    row.refresh_from_db()
    assert row.last_used_at is not None


# Accounts ----------------------------------------------------------------------


def test_account_crud(api: Any) -> None:
    created = api.post(f"{V1}/accounts", {"slug": "acme", "name": "Acme", "password_ttl_days": 90})
    assert created.status_code == 201
    assert created.json()["slug"] == "acme" and created.json()["password_ttl_days"] == 90
    assert [a["slug"] for a in items(api.get(f"{V1}/accounts"))] == ["acme"]
    assert api.get(f"{V1}/accounts/acme").json()["name"] == "Acme"

    patched = api.patch(f"{V1}/accounts/acme", {"name": "Acme Inc", "password_ttl_days": None})
    assert patched.status_code == 200
    assert patched.json()["name"] == "Acme Inc" and patched.json()["password_ttl_days"] is None

    assert api.delete(f"{V1}/accounts/acme").status_code == 204
    assert api.get(f"{V1}/accounts/acme").status_code == 404
    assert not Account.objects.exists()


def test_duplicate_account_slug_is_409_naming_slug(api: Any, acme: dict[str, Any]) -> None:
    response = api.post(f"{V1}/accounts", {"slug": "acme", "name": "Again"})
    assert response.status_code == 409
    assert response.json()["field"] == "slug"


def test_patch_account_name_null_is_422(api: Any, acme: dict[str, Any]) -> None:
    response = api.patch(f"{V1}/accounts/acme", {"name": None})
    assert response.status_code == 422
    assert response.json()["field"] == "name"


def test_unknown_account_is_404(api: Any) -> None:
    response = api.get(f"{V1}/accounts/nope")
    assert response.status_code == 404
    assert response.json()["field"] == "slug"


# Projects ----------------------------------------------------------------------


def test_project_crud(api: Any, acme: dict[str, Any]) -> None:
    created = api.post(f"{V1}/accounts/acme/projects", {"slug": "production", "name": "Production"})
    assert created.status_code == 201
    api.post(f"{V1}/accounts/acme/projects", {"slug": "sandbox", "name": "Sandbox"})
    assert [p["slug"] for p in items(api.get(f"{V1}/accounts/acme/projects"))] == ["production", "sandbox"]
    duplicate = api.post(f"{V1}/accounts/acme/projects", {"slug": "sandbox", "name": "Again"})
    assert duplicate.status_code == 409 and duplicate.json()["field"] == "slug"
    assert api.delete(f"{V1}/accounts/acme/projects/sandbox").status_code == 204
    missing = api.delete(f"{V1}/accounts/acme/projects/sandbox")
    assert missing.status_code == 404 and missing.json()["field"] == "project"


def test_same_project_slug_in_two_accounts_is_fine(api: Any, acme: dict[str, Any], globex: dict[str, Any]) -> None:
    for slug in ("acme", "globex"):
        assert api.post(f"{V1}/accounts/{slug}/projects", {"slug": "production", "name": "P"}).status_code == 201


# Users -------------------------------------------------------------------------


def test_user_crud(api: Any, acme: dict[str, Any]) -> None:
    api.post(f"{V1}/accounts/acme/projects", {"slug": "production", "name": "Production"})
    created = new_user(
        api,
        roles=["analyst", "pii-viewer"],
        projects=[{"slug": "production", "roles": ["report-viewer"]}],
    )
    assert created["email"] == "ann@acme.example"
    assert created["roles"] == ["analyst", "pii-viewer"]
    assert created["projects"] == [
        {
            "slug": "production",
            "roles": ["analyst", "pii-viewer", "report-viewer"],
            "grants": [{"role": "report-viewer", "source": "manual"}],
        }
    ]
    user_id = created["id"]
    assert [u["id"] for u in items(api.get(f"{V1}/accounts/acme/users"))] == [user_id]
    assert api.get(f"{V1}/accounts/acme/users/{user_id}").json()["email"] == "ann@acme.example"

    patched = api.patch(f"{V1}/accounts/acme/users/{user_id}", {"name": "Ann B", "is_active": False})
    assert patched.status_code == 200
    assert patched.json()["name"] == "Ann B" and patched.json()["is_active"] is False
    # Switched on again: the answer says so.
    patched = api.patch(f"{V1}/accounts/acme/users/{user_id}", {"is_active": True})
    assert patched.status_code == 200 and patched.json()["is_active"] is True

    assert api.delete(f"{V1}/accounts/acme/users/{user_id}").status_code == 204
    assert api.get(f"{V1}/accounts/acme/users/{user_id}").status_code == 404
    assert not User.objects.exists()


def test_created_password_user_gets_a_single_invitation_email(api: Any, acme: dict[str, Any]) -> None:
    response = api.post(f"{V1}/accounts/acme/users", {"email": "new@acme.example", "name": "New"})
    assert response.status_code == 201
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new@acme.example"]
    assert "/invite/" in mail.outbox[0].body


def test_removing_a_user_from_one_account_keeps_them_in_another(
    api: Any, acme: dict[str, Any], globex: dict[str, Any]
) -> None:
    user = new_user(api, "acme")
    new_user(api, "globex")
    assert api.delete(f"{V1}/accounts/acme/users/{user['id']}").status_code == 204
    assert User.objects.filter(pk=user["id"]).exists()
    assert api.get(f"{V1}/accounts/globex/users/{user['id']}").status_code == 200
    assert not RoleGrant.objects.filter(user_id=user["id"], account__slug="acme").exists()


def test_switching_a_user_to_sso_purges_the_password(api: Any, acme: dict[str, Any], make_user: Any) -> None:
    assert api.post(f"{V1}/accounts/acme/domains", {"domain": "acme.example"}).status_code == 201
    user = make_user("pw@acme.example")
    assert user.has_usable_password()
    response = api.patch(f"{V1}/accounts/acme/users/{user.pk}", {"login_method": "sso"})
    assert response.status_code == 200 and response.json()["login_method"] == "sso"
    user.refresh_from_db()
    assert not user.has_usable_password() and user.password_changed_at is None


def test_switching_back_to_password_sends_a_reset_link_and_restores_nothing(
    api: Any, acme: dict[str, Any], make_user: Any
) -> None:
    user = make_user("sso@acme.example", password=None, login_method="sso")
    response = api.patch(f"{V1}/accounts/acme/users/{user.pk}", {"login_method": "password"})
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.login_method == "password" and not user.has_usable_password()
    assert len(mail.outbox) == 1 and "/password/reset/" in mail.outbox[0].body


def test_approving_a_pending_user(api: Any, acme: dict[str, Any], make_user: Any) -> None:
    user = make_user("pending@acme.example")
    Membership.objects.filter(user=user).update(approval="pending")
    response = api.patch(f"{V1}/accounts/acme/users/{user.pk}", {"approval": "approved"})
    assert response.status_code == 200 and response.json()["approval"] == "approved"
    refused = api.patch(f"{V1}/accounts/acme/users/{user.pk}", {"approval": "pending"})
    assert refused.status_code == 422 and refused.json()["field"] == "approval"


def test_user_of_another_account_is_404_through_this_account(
    api: Any, acme: dict[str, Any], globex: dict[str, Any]
) -> None:
    other = new_user(api, "globex", email="g@globex.example")
    for method, body in [("get", None), ("patch", {"name": "x"}), ("delete", None)]:
        response = api.request(method, f"{V1}/accounts/acme/users/{other['id']}", body)
        assert response.status_code == 404, (method, response.content)
    response = api.put(f"{V1}/accounts/acme/users/{other['id']}/roles", {"roles": ["analyst"]})
    assert response.status_code == 404
    assert User.objects.get(pk=other["id"]).name == "Ann"


# API key scopes ------------------------------------------------------------------


@pytest.fixture
def acme_api(api: Any, acme: dict[str, Any], globex: dict[str, Any], account_key: Any) -> Any:
    return api.as_key(account_key("acme"))


def test_account_key_sees_only_its_account(acme_api: Any) -> None:
    assert [a["slug"] for a in items(acme_api.get(f"{V1}/accounts"))] == ["acme"]
    assert acme_api.get(f"{V1}/accounts/acme").status_code == 200


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("get", "/accounts/globex", None),
        ("patch", "/accounts/globex", {"name": "Pwned"}),
        ("get", "/accounts/globex/users", None),
        ("post", "/accounts/globex/users", {"email": "x@globex.example", "send_invitation": False}),
        ("get", "/accounts/globex/projects", None),
        ("post", "/accounts/globex/projects", {"slug": "evil", "name": "Evil"}),
        ("get", "/accounts/globex/api-keys", None),
        ("post", "/accounts/globex/api-keys", {"name": "stolen"}),
        ("get", "/accounts/globex/audit-events", None),
        ("get", "/accounts/globex/login-traces", None),
    ],
)
def test_account_key_cannot_reach_another_account(acme_api: Any, method: str, path: str, body: Any) -> None:
    response = acme_api.request(method, f"{V1}{path}", body)
    assert response.status_code == 404, response.content
    # Same answer as for an account that does not exist: no probing of slugs.
    assert response.json() == {"detail": "account 'globex' not found", "field": "slug"}
    assert Account.objects.get(slug="globex").name == "Globex"
    assert not ApiKey.objects.filter(account__slug="globex").exists()
    assert not Project.objects.filter(account__slug="globex").exists()
    assert not User.objects.exists()


def test_account_key_cannot_revoke_a_key_of_another_account(api: Any, acme_api: Any, account_key: Any) -> None:
    globex_key = account_key("globex")
    prefix = globex_key.split("_")[1]
    assert acme_api.delete(f"{V1}/accounts/acme/api-keys/{prefix}").status_code == 404
    assert api.as_key(globex_key).get(f"{V1}/accounts/globex").status_code == 200


def test_account_key_cannot_create_or_delete_accounts(acme_api: Any) -> None:
    created = acme_api.post(f"{V1}/accounts", {"slug": "mine", "name": "Mine"})
    assert created.status_code == 403
    assert "operator" in created.json()["detail"]
    assert acme_api.delete(f"{V1}/accounts/acme").status_code == 403
    assert not Account.objects.filter(slug="mine").exists()
    assert Account.objects.filter(slug="acme").exists()


def test_operator_key_can_do_all_of_it(api: Any, acme: dict[str, Any], globex: dict[str, Any]) -> None:
    assert [a["slug"] for a in items(api.get(f"{V1}/accounts"))] == ["acme", "globex"]
    assert api.patch(f"{V1}/accounts/globex", {"name": "Globex 2"}).status_code == 200
    assert api.post(f"{V1}/accounts/globex/api-keys", {"name": "k"}).status_code == 201
    assert api.get(f"{V1}/accounts/globex/users").status_code == 200


def test_account_key_manages_its_own_account(api: Any, acme_api: Any) -> None:
    # acme owns acme.example, so it adds its people directly instead of inviting them.
    assert api.post(f"{V1}/accounts/acme/domains", {"domain": "acme.example"}).status_code == 201
    assert acme_api.post(f"{V1}/accounts/acme/projects", {"slug": "production", "name": "P"}).status_code == 201
    user = new_user(acme_api, "acme")
    assert acme_api.put(f"{V1}/accounts/acme/users/{user['id']}/roles", {"roles": ["sso-admin"]}).status_code == 200
    created = acme_api.post(f"{V1}/accounts/acme/api-keys", {"name": "child"})
    assert created.status_code == 201
    assert created.json()["account"] == "acme" and created.json()["key"].startswith("vst_")
    listed = items(acme_api.get(f"{V1}/accounts/acme/api-keys"))
    assert created.json()["id"] in {k["id"] for k in listed}
    assert all("key" not in k for k in listed)


# Roles and the catalog ---------------------------------------------------------------


def test_catalog_endpoint(api: Any) -> None:
    catalog = api.get(f"{V1}/roles").json()
    assert catalog["default_role"] == "analyst"
    assert {r["name"] for r in catalog["roles"]} >= {"administrator", "sso-admin", "pii-viewer"}


@pytest.mark.parametrize(
    "body_extra, field",
    [
        ({"roles": ["wizard"]}, "roles"),
        ({"roles": ["pii-viewer"]}, "roles"),
        ({"projects": [{"slug": "production", "roles": ["wizard"]}]}, "projects[0].roles"),
        ({"projects": [{"slug": "production", "roles": ["report-viewer"]}]}, "projects[0].roles"),
        ({"projects": [{"slug": "nowhere", "roles": []}]}, "projects[0].slug"),
    ],
)
def test_catalog_is_enforced_when_creating_users(api: Any, acme: dict[str, Any], body_extra: Any, field: str) -> None:
    api.post(f"{V1}/accounts/acme/projects", {"slug": "production", "name": "P"})
    body = {"email": "z@acme.example", "send_invitation": False, **body_extra}
    response = api.post(f"{V1}/accounts/acme/users", body)
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field
    assert not User.objects.exists()


def test_unknown_role_grant_is_422_naming_roles(api: Any, acme: dict[str, Any]) -> None:
    user = new_user(api)
    response = api.put(f"{V1}/accounts/acme/users/{user['id']}/roles", {"roles": ["analyst", "wizard"]})
    assert response.status_code == 422
    assert response.json()["field"] == "roles"
    assert "wizard" in response.json()["detail"]


def test_requirement_not_met_is_422_naming_the_requirement(api: Any, acme: dict[str, Any]) -> None:
    user = new_user(api)
    response = api.put(f"{V1}/accounts/acme/users/{user['id']}/roles", {"roles": ["pii-viewer"]})
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "roles"
    assert "pii-viewer" in body["detail"] and "analyst" in body["detail"] and "customer-support" in body["detail"]
    assert not RoleGrant.objects.exists()


def test_project_grant_relying_on_account_scope_analyst_is_fine(api: Any, acme: dict[str, Any]) -> None:
    api.post(f"{V1}/accounts/acme/projects", {"slug": "production", "name": "P"})
    user = new_user(api, roles=["analyst"])
    response = api.put(
        f"{V1}/accounts/acme/users/{user['id']}/roles", {"roles": ["pii-viewer"], "project": "production"}
    )
    assert response.status_code == 200, response.content
    project = response.json()["projects"][0]
    assert project["slug"] == "production"
    assert project["roles"] == ["analyst", "pii-viewer"]
    assert response.json()["roles"] == ["analyst"]


def test_project_grant_without_analyst_anywhere_is_422(api: Any, acme: dict[str, Any]) -> None:
    api.post(f"{V1}/accounts/acme/projects", {"slug": "production", "name": "P"})
    user = new_user(api, roles=["sso-admin"])
    response = api.put(
        f"{V1}/accounts/acme/users/{user['id']}/roles", {"roles": ["pii-viewer"], "project": "production"}
    )
    assert response.status_code == 422 and response.json()["field"] == "roles"


def test_grant_in_unknown_project_is_422_naming_project(api: Any, acme: dict[str, Any]) -> None:
    user = new_user(api)
    response = api.put(f"{V1}/accounts/acme/users/{user['id']}/roles", {"roles": ["analyst"], "project": "nope"})
    assert response.status_code == 422 and response.json()["field"] == "project"


def test_removing_account_analyst_that_a_project_grant_relies_on_is_422(api: Any, acme: dict[str, Any]) -> None:
    api.post(f"{V1}/accounts/acme/projects", {"slug": "production", "name": "P"})
    user = new_user(api, roles=["analyst"])
    url = f"{V1}/accounts/acme/users/{user['id']}/roles"
    assert api.put(url, {"roles": ["pii-viewer"], "project": "production"}).status_code == 200
    response = api.put(url, {"roles": ["sso-admin"]})
    assert response.status_code == 422, response.content
    assert response.json()["field"] == "roles"
    assert "pii-viewer" in response.json()["detail"]
    assert api.get(url).json()["roles"] == ["analyst"]


def test_put_roles_replaces_only_that_scopes_manual_roles(api: Any, acme: dict[str, Any]) -> None:
    api.post(f"{V1}/accounts/acme/projects", {"slug": "production", "name": "P"})
    user = new_user(api, roles=["analyst", "sso-admin"])
    url = f"{V1}/accounts/acme/users/{user['id']}/roles"
    assert api.put(url, {"roles": ["report-viewer"], "project": "production"}).status_code == 200

    replaced = api.put(url, {"roles": ["customer-support", "user-manager"]})
    assert replaced.status_code == 200
    body = replaced.json()
    assert body["roles"] == ["customer-support", "user-manager"]
    assert body["grants"] == [
        {"role": "customer-support", "source": "manual"},
        {"role": "user-manager", "source": "manual"},
    ]
    # The project scope was left alone.
    assert body["projects"][0]["grants"] == [{"role": "report-viewer", "source": "manual"}]

    cleared = api.put(url, {"roles": [], "project": "production"})
    assert cleared.status_code == 200
    assert cleared.json()["projects"][0]["grants"] == []
    assert api.get(url).json() == cleared.json()


def test_put_roles_keeps_sso_grants_of_the_scope(api: Any, acme: dict[str, Any]) -> None:
    user = new_user(api, roles=["sso-admin"])
    RoleGrant.objects.create(user_id=user["id"], account=Account.objects.get(slug="acme"), role="analyst", source="sso")
    url = f"{V1}/accounts/acme/users/{user['id']}/roles"
    # The SSO-granted analyst satisfies a manual pii-viewer.
    response = api.put(url, {"roles": ["pii-viewer"]})
    assert response.status_code == 200, response.content
    assert response.json()["grants"] == [
        {"role": "analyst", "source": "sso"},
        {"role": "pii-viewer", "source": "manual"},
    ]


def test_duplicate_roles_in_a_request_are_one_grant(api: Any, acme: dict[str, Any]) -> None:
    user = new_user(api)
    response = api.put(f"{V1}/accounts/acme/users/{user['id']}/roles", {"roles": ["analyst", "analyst"]})
    assert response.status_code == 200
    assert RoleGrant.objects.filter(user_id=user["id"]).count() == 1


def test_administrator_grant_shows_all_effective_roles(api: Any, acme: dict[str, Any]) -> None:
    user = new_user(api, roles=["administrator"])
    assert "sso-admin" in user["roles"] and "user-manager" in user["roles"] and len(user["roles"]) == 10
    assert user["grants"] == [{"role": "administrator", "source": "manual"}]


# Audit events ----------------------------------------------------------------------


def test_audit_events_record_admin_actions(api: Any, acme: dict[str, Any], operator_key: str) -> None:
    user = new_user(api)
    api.put(f"{V1}/accounts/acme/users/{user['id']}/roles", {"roles": ["analyst"]})
    events = items(api.get(f"{V1}/accounts/acme/audit-events"))
    codes = [e["code"] for e in events]
    assert codes[:3] == ["user.roles_replaced", "user.invited", "account.created"]
    prefix = operator_key.split("_")[1]
    assert all(e["actor"] == f"api-key:{prefix}" for e in events)
    assert events[1]["subject_email"] == "ann@acme.example"

    only_users = items(api.get(f"{V1}/accounts/acme/audit-events?code=user."))
    assert {e["code"] for e in only_users} == {"user.roles_replaced", "user.invited"}
    exact = items(api.get(f"{V1}/accounts/acme/audit-events?code=user.invited"))
    assert [e["code"] for e in exact] == ["user.invited"]
    assert len(items(api.get(f"{V1}/accounts/acme/audit-events?limit=1"))) == 1
    assert items(api.get(f"{V1}/accounts/acme/audit-events?outcome=failure")) == []
    assert items(api.get(f"{V1}/accounts/acme/audit-events?since=2999-01-01T00:00:00Z")) == []


def test_audit_events_are_per_account(api: Any, acme: dict[str, Any], globex: dict[str, Any]) -> None:
    new_user(api, "globex", email="g@globex.example")
    acme_codes = [e["code"] for e in items(api.get(f"{V1}/accounts/acme/audit-events"))]
    assert acme_codes == ["account.created"]


def test_audit_event_detail_never_holds_api_key_secret(api: Any, acme: dict[str, Any]) -> None:
    created = api.post(f"{V1}/accounts/acme/api-keys", {"name": "ci"}).json()
    dump = json.dumps(items(api.get(f"{V1}/accounts/acme/audit-events")))
    assert created["key"] not in dump
    assert created["key"].split("_", 2)[2] not in dump


@pytest.mark.parametrize(
    "query, field",
    [("outcome=maybe", "outcome"), ("limit=0", "limit"), ("limit=abc", "limit"), ("since=yesterday", "since")],
)
def test_bad_audit_filters_are_422(api: Any, acme: dict[str, Any], query: str, field: str) -> None:
    response = api.get(f"{V1}/accounts/acme/audit-events?{query}")
    assert response.status_code == 422
    assert field in response.json()["field"]


def test_login_trace_lookup_with_junk_id_is_404(api: Any, acme: dict[str, Any]) -> None:
    assert items(api.get(f"{V1}/accounts/acme/login-traces")) == []
    for junk in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        response = api.get(f"{V1}/accounts/acme/login-traces/{junk}")
        assert response.status_code == 404 and response.json()["field"] == "trace_id"


# Bad input -------------------------------------------------------------------------------


def assert_client_error(response: Any, field: str | None = None, status: int | None = None) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.content)
    if status is not None:
        assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


@pytest.mark.parametrize(
    "body, field",
    [
        ({"slug": 123, "name": "x"}, "slug"),
        ({"slug": "acme2", "name": ["x"]}, "name"),
        ({"slug": "acme2", "name": None}, "name"),
        ({"slug": "acme2"}, "name"),
        ({"name": "x"}, "slug"),
        ({"slug": "Has Spaces", "name": "x"}, "slug"),
        ({"slug": "-lead", "name": "x"}, "slug"),
        ({"slug": "a" * 51, "name": "x"}, "slug"),
        ({"slug": "acme2", "name": ""}, "name"),
        ({"slug": "acme2", "name": "x" * 201}, "name"),
        ({"slug": "acme2", "name": "x", "password_ttl_days": 0}, "password_ttl_days"),
        ({"slug": "acme2", "name": "x", "password_ttl_days": "ninety"}, "password_ttl_days"),
        ({"slug": "acme2", "name": "x", "password_ttl_days": 10**30}, "password_ttl_days"),
        ({"slug": "acme2", "name": "x", "is_admin": True}, "is_admin"),
    ],
)
def test_bad_account_bodies_are_422_naming_the_field(api: Any, body: Any, field: str) -> None:
    assert_client_error(api.post(f"{V1}/accounts", body), field=field, status=422)
    assert not Account.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": 42}, "email"),
        ({"email": None}, "email"),
        ({"email": "not an email"}, "email"),
        ({"email": "a@b.com", "roles": "analyst"}, "roles"),
        ({"email": "a@b.com", "roles": [1, 2]}, "roles.0"),
        ({"email": "a@b.com", "roles": ["analyst"] * 51}, "roles"),
        ({"email": "a@b.com", "login_method": "magic"}, "login_method"),
        ({"email": "a@b.com", "send_invitation": "perhaps"}, "send_invitation"),
        ({"email": "a@b.com", "projects": [{"roles": []}]}, "projects.0.slug"),
        ({"email": "a@b.com", "projects": "production"}, "projects"),
        ({"email": "a@b.com", "password": "hunter2"}, "password"),
        ({"email": "a@b.com", "is_operator": True}, "is_operator"),
    ],
)
def test_bad_user_bodies_are_422_naming_the_field(api: Any, acme: dict[str, Any], body: Any, field: str) -> None:
    assert_client_error(api.post(f"{V1}/accounts/acme/users", body), field=field, status=422)
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "roles"),
        ({"roles": None}, "roles"),
        ({"roles": ["analyst"], "project": "Bad Slug"}, "project"),
        ({"roles": ["analyst"], "project": 7}, "project"),
        ({"roles": ["analyst"], "scope": "account"}, "scope"),
        ({"roles": [{"name": "analyst"}]}, "roles.0"),
    ],
)
def test_bad_role_bodies_are_422_naming_the_field(api: Any, acme: dict[str, Any], body: Any, field: str) -> None:
    user = new_user(api)
    assert_client_error(api.put(f"{V1}/accounts/acme/users/{user['id']}/roles", body), field=field, status=422)


@pytest.mark.parametrize(
    "raw",
    [b"{", b"not json", b'{"slug": "a", "name": "b"', b"\xff\xfe\x00", b"", b"[]", b"null", b'"string"', b"42"],
)
def test_malformed_json_is_4xx_json(api: Any, raw: bytes) -> None:
    response = api.post(f"{V1}/accounts", raw=raw)
    assert_client_error(response)
    assert not Account.objects.exists()


def test_body_over_one_mebibyte_is_413(api: Any) -> None:
    raw = json.dumps({"slug": "big", "name": "x" * (1024 * 1024 + 10)})
    response = api.post(f"{V1}/accounts", raw=raw)
    assert_client_error(response, status=413)
    assert not Account.objects.exists()


def test_oversized_strings_under_the_body_limit_are_422(api: Any) -> None:
    response = api.post(f"{V1}/accounts", {"slug": "acme2", "name": "x" * 20_000})
    assert_client_error(response, field="name", status=422)


def test_wrong_content_type_is_4xx(api: Any) -> None:
    response = api.post(f"{V1}/accounts", raw="slug=acme&name=x", content_type="application/x-www-form-urlencoded")
    assert_client_error(response)


@pytest.mark.parametrize("user_id", ["abc", "-1", "0", "99999999999999999999999", "1.5"])
def test_junk_user_ids_are_4xx(api: Any, acme: dict[str, Any], user_id: str) -> None:
    response = api.get(f"{V1}/accounts/acme/users/{user_id}")
    assert 400 <= response.status_code < 500, response.content


def test_unknown_api_path_is_json_404(api: Any) -> None:
    response = api.get(f"{V1}/nothing-here")
    assert response.status_code == 404
    assert response.json()["detail"]


def test_method_not_allowed_is_4xx(api: Any, acme: dict[str, Any]) -> None:
    assert 400 <= api.put(f"{V1}/accounts", {}).status_code < 500


# OpenAPI ------------------------------------------------------------------------------------


def test_openapi_document(client: Any) -> None:
    response = client.get(f"{V1}/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path in (
        "/api/v1/accounts",
        "/api/v1/accounts/{slug}",
        "/api/v1/accounts/{slug}/projects",
        "/api/v1/accounts/{slug}/users",
        "/api/v1/accounts/{slug}/users/{user_id}",
        "/api/v1/accounts/{slug}/users/{user_id}/roles",
        "/api/v1/accounts/{slug}/api-keys",
        "/api/v1/accounts/{slug}/audit-events",
    ):
        assert path in paths, path
    assert "put" in paths["/api/v1/accounts/{slug}/users/{user_id}/roles"]
    schemes = doc["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())


def test_membership_rows_match_api(api: Any, acme: dict[str, Any]) -> None:
    user = new_user(api)
    assert Membership.objects.filter(user_id=user["id"], account__slug="acme").count() == 1


# Values PostgreSQL cannot store ----------------------------------------------------------


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/accounts", {"slug": "acme2", "name": "A\x00B"}, "name"),
        ("/accounts/acme/users", {"email": "a@acme.example", "name": "\x00"}, "name"),
        ("/accounts/acme/users", {"email": "a\x00@acme.example"}, "email"),
        ("/accounts/acme/users", {"email": "a@acme.example", "roles": ["analyst\x00"]}, "roles"),
        ("/accounts/acme/api-keys", {"name": "k\x00"}, "name"),
    ],
)
def test_nul_in_bodies_is_422_naming_the_field(
    api: Any, acme: dict[str, Any], path: str, body: Any, field: str
) -> None:
    assert_client_error(api.post(f"{V1}{path}", body), field=field, status=422)


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/%00",
        "/accounts/acme%00",
        "/accounts/acme%0A",
        "/accounts/acme/projects/%00",
        "/accounts/acme/api-keys/%00",
        "/accounts/acme/login-traces/%00",
    ],
)
def test_nul_in_paths_is_4xx(api: Any, acme: dict[str, Any], path: str) -> None:
    method = "delete" if "projects/" in path or "api-keys/" in path else "get"
    assert_client_error(api.request(method, f"{V1}{path}"))


def test_nul_in_a_query_filter_is_no_server_error(api: Any, acme: dict[str, Any]) -> None:
    # SQLite can compare with NUL (nothing matches); PostgreSQL cannot and gets a 400.
    response = api.get(f"{V1}/accounts/acme/audit-events?code=%00")
    assert response.status_code in (200, 400), response.content
    assert response["Content-Type"].startswith("application/json")


def test_a_browser_session_acts_as_its_person_and_needs_the_csrf_token(make_user: Any) -> None:
    # The API takes a signed-in person's session too; a cross-site request without the token changes nothing.
    from django.test import Client

    from tests.conftest import csrf_token_from

    make_user("op@example.com", password="operator passphrase 1234", is_operator=True, account=None)
    browser = Client(enforce_csrf_checks=True)
    token = csrf_token_from(browser.get("/login").content.decode())
    browser.post("/login", {"email": "op@example.com", "csrfmiddlewaretoken": token})
    done = browser.post(
        "/login", {"email": "op@example.com", "password": "operator passphrase 1234", "csrfmiddlewaretoken": token}
    )
    assert done.status_code == 302
    assert browser.get("/api/v1/session").status_code == 200
    assert browser.get(f"{V1}/accounts").status_code == 200
    forged = browser.post(f"{V1}/accounts", {"slug": "x", "name": "x"}, content_type="application/json")
    assert forged.status_code == 403
    assert not Account.objects.filter(slug="x").exists()
    # Positive control: the same request with the session's CSRF token is the person acting.
    csrf = browser.cookies["csrftoken"].value
    made = browser.post(
        f"{V1}/accounts", {"slug": "x", "name": "x"}, content_type="application/json", headers={"X-CSRFToken": csrf}
    )
    assert made.status_code == 201, made.content
    assert AuditEventActor.of("account.created") == "op@example.com"
