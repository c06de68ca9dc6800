"""Mapping-role grants as rows (MappingRoleGrant): constraints, project deletion, API shape, migration.

The API and CLI still speak ``{"scope": "account" | "project:<slug>", "roles": [...]}``;
underneath, each granted role is one row pointing at its project (NULL: the
account), so deleting a project can no longer leave a dangling scope behind.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

import vestibule.api.connections  # noqa: F401  (connects the project pre_delete receiver, as serving the API does)
from vestibule.accounts.models import Account, Project
from vestibule.audit.models import AuditEvent
from vestibule.connections.authorization import mapping_roles_of, save_mapping_role
from vestibule.connections.models import Connection, MappingRole, MappingRoleGrant
from vestibule.domain.pipeline import MappingRoleGrants

FINANCE = {
    "name": "Finance",
    "grants": [
        {"scope": "project:production", "roles": ["report-manager"]},
        {"scope": "account", "roles": ["report-viewer", "analyst"]},
    ],
}


@pytest.fixture
def acme(db: None) -> Account:
    account = Account.objects.create(slug="acme", name="Acme")
    for slug in ("production", "sandbox"):
        Project.objects.create(account=account, slug=slug, name=slug.title())
    return account


def _finance(account: Account) -> MappingRole:
    return save_mapping_role(account, name=FINANCE["name"], grants=FINANCE["grants"])


# Constraints ---------------------------------------------------------------


def test_each_role_once_per_scope_account_scope_included(acme: Account) -> None:
    """NULL != NULL in a unique index: the account scope needs (and has) its own conditional constraint."""
    finance = _finance(acme)
    production = Project.objects.get(account=acme, slug="production")
    with pytest.raises(IntegrityError), transaction.atomic():
        MappingRoleGrant.objects.create(mapping_role=finance, project=None, role="analyst")
    with pytest.raises(IntegrityError), transaction.atomic():
        MappingRoleGrant.objects.create(mapping_role=finance, project=production, role="report-manager")
    # The same role in another scope, or in another mapping role, is a different grant.
    MappingRoleGrant.objects.create(mapping_role=finance, project=production, role="analyst")
    other = save_mapping_role(acme, name="Support", grants=[{"scope": "account", "roles": ["analyst"]}])
    assert MappingRoleGrant.objects.filter(mapping_role=other, project=None, role="analyst").exists()


def test_rows_replace_the_json_list(acme: Account) -> None:
    finance = _finance(acme)
    rows = sorted(
        MappingRoleGrant.objects.filter(mapping_role=finance).values_list("project__slug", "role"),
        key=lambda r: (r[0] or "", r[1]),
    )
    assert rows == [(None, "analyst"), (None, "report-viewer"), ("production", "report-manager")]
    # Replacing the grants replaces the rows; renaming alone keeps them.
    save_mapping_role(acme, finance, grants=[{"scope": "project:sandbox", "roles": ["analyst"]}])
    assert finance.grants == [{"scope": "project:sandbox", "roles": ["analyst"]}]
    save_mapping_role(acme, finance, name="Finance EMEA")
    assert MappingRole.objects.get(pk=finance.pk).grants == [{"scope": "project:sandbox", "roles": ["analyst"]}]
    assert MappingRoleGrant.objects.count() == 1


# mapping_roles_of ---------------------------------------------------------


def test_mapping_roles_of_is_one_query(acme: Account, django_assert_num_queries: Any) -> None:
    _finance(acme)
    save_mapping_role(acme, name="Support", grants=[{"scope": "account", "roles": ["customer-support"]}])
    empty = save_mapping_role(acme, name="Sandboxers", grants=[{"scope": "project:sandbox", "roles": ["analyst"]}])
    Project.objects.filter(account=acme, slug="sandbox").delete()  # leaves "Sandboxers" granting nothing
    connection_row = Connection.objects.create(account=acme, protocol="saml", name="Okta")
    with django_assert_num_queries(1):
        result = mapping_roles_of(connection_row)
    by_name = {m.name: m for m in result}
    assert by_name["Finance"] == MappingRoleGrants(
        "Finance", frozenset({"analyst", "report-viewer"}), {"production": frozenset({"report-manager"})}
    )
    assert by_name["Support"] == MappingRoleGrants("Support", frozenset({"customer-support"}), {})
    assert by_name[empty.name] == MappingRoleGrants("Sandboxers", frozenset(), {})


# API shape -------------------------------------------------------------------


def test_api_round_trip_keeps_the_shape(api: Any, acme: Account) -> None:
    created = api.post("/api/v1/accounts/acme/mapping-roles", FINANCE)
    assert created.status_code == 201, created.content
    body = created.json()
    expected = [
        {"scope": "account", "roles": ["analyst", "report-viewer"]},
        {"scope": "project:production", "roles": ["report-manager"]},
    ]
    assert body["name"] == "Finance" and body["grants"] == expected
    assert api.get(f"/api/v1/accounts/acme/mapping-roles/{body['id']}").json()["grants"] == expected
    listed = api.get("/api/v1/accounts/acme/mapping-roles").json()
    assert [(m["name"], m["grants"]) for m in listed] == [("Finance", expected)]
    # What was read can be sent back unchanged.
    patched = api.patch(f"/api/v1/accounts/acme/mapping-roles/{body['id']}", {"grants": expected})
    assert patched.status_code == 200 and patched.json()["grants"] == expected
    changed = api.patch(
        f"/api/v1/accounts/acme/mapping-roles/{body['id']}",
        {"grants": [{"scope": "project:sandbox", "roles": ["analyst"]}]},
    )
    assert changed.json()["grants"] == [{"scope": "project:sandbox", "roles": ["analyst"]}]
    # The rules still answer with the field.
    twice = api.post(
        "/api/v1/accounts/acme/mapping-roles",
        {"name": "Dup", "grants": [{"scope": "account", "roles": ["analyst"]}] * 2},
    )
    assert twice.status_code == 422 and twice.json()["field"] == "grants[1].scope"


def test_list_does_not_query_per_mapping_role(api: Any, acme: Account, django_assert_max_num_queries: Any) -> None:
    for index in range(5):
        save_mapping_role(acme, name=f"Role {index}", grants=FINANCE["grants"])
    with django_assert_max_num_queries(12):
        listed = api.get("/api/v1/accounts/acme/mapping-roles").json()
    assert len(listed) == 5 and all(len(m["grants"]) == 2 for m in listed)


# Deleting a project -----------------------------------------------------------


def test_deleting_a_project_removes_its_grants_and_audits_the_mapping_roles(api: Any, acme: Account) -> None:
    """Decision: CASCADE. The project's grants go, other scopes stay, and the audit names who lost what."""
    _finance(acme)
    save_mapping_role(acme, name="Prod only", grants=[{"scope": "project:production", "roles": ["analyst"]}])
    save_mapping_role(acme, name="Untouched", grants=[{"scope": "project:sandbox", "roles": ["analyst"]}])
    assert api.delete("/api/v1/accounts/acme/projects/production").status_code == 204

    listed = {m["name"]: m["grants"] for m in api.get("/api/v1/accounts/acme/mapping-roles").json()}
    assert listed == {
        "Finance": [{"scope": "account", "roles": ["analyst", "report-viewer"]}],
        "Prod only": [],
        "Untouched": [{"scope": "project:sandbox", "roles": ["analyst"]}],
    }
    assert not MappingRoleGrant.objects.filter(project__slug="production").exists()
    event = AuditEvent.objects.get(account=acme, code="mapping_role.project_grants_removed")
    assert event.detail["project"] == "production"
    assert event.detail["mapping_roles"] == ["Finance", "Prod only"]
    assert event.detail["left_without_grants"] == ["Prod only"]
    audited = api.get("/api/v1/accounts/acme/audit-events?code=mapping_role.project_grants_removed").json()
    audited = audited["items"] if isinstance(audited, dict) else audited
    assert len(audited) == 1
    # A project no mapping role uses is deleted without such an event.
    assert api.delete("/api/v1/accounts/acme/projects/sandbox").status_code == 204
    assert AuditEvent.objects.filter(code="mapping_role.project_grants_removed").count() == 2  # Untouched lost sandbox
    Project.objects.create(account=acme, slug="staging", name="Staging")
    assert api.delete("/api/v1/accounts/acme/projects/staging").status_code == 204
    assert AuditEvent.objects.filter(code="mapping_role.project_grants_removed").count() == 2


def test_deleting_the_account_takes_everything_without_project_events(acme: Account) -> None:
    _finance(acme)
    acme.delete()
    assert not MappingRole.objects.exists() and not MappingRoleGrant.objects.exists()
    assert not AuditEvent.objects.filter(code="mapping_role.project_grants_removed").exists()


# Migration -----------------------------------------------------------------------


BEFORE = [("connections", "0002_share_offers")]
AFTER = [("connections", "0004_remove_mappingrole_grants")]


@pytest.mark.django_db(transaction=True)
def test_migration_converts_json_grants_and_back() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        apps = executor.loader.project_state(BEFORE).apps
        OldAccount = apps.get_model("accounts", "Account")
        OldProject = apps.get_model("accounts", "Project")
        OldMappingRole = apps.get_model("connections", "MappingRole")
        acme = OldAccount.objects.create(slug="acme", name="Acme")
        globex = OldAccount.objects.create(slug="globex", name="Globex")
        OldProject.objects.create(account=acme, slug="production", name="Production")
        OldProject.objects.create(account=globex, slug="sandbox", name="Sandbox")
        finance = OldMappingRole.objects.create(
            account=acme,
            name="Finance",
            grants=[
                {"scope": "account", "roles": ["analyst", "report-viewer"]},
                {"scope": "project:production", "roles": ["report-manager"]},
                {"scope": "project:deleted-long-ago", "roles": ["analyst"]},  # dangling: skipped
                {"scope": "project:sandbox", "roles": ["analyst"]},  # another account's project: skipped
            ],
        )
        empty = OldMappingRole.objects.create(
            account=acme, name="Dangling", grants=[{"scope": "project:gone", "roles": ["analyst"]}]
        )

        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        apps = executor.loader.project_state(AFTER).apps
        NewMappingRole = apps.get_model("connections", "MappingRole")
        NewGrant = apps.get_model("connections", "MappingRoleGrant")
        rows = set(NewGrant.objects.filter(mapping_role_id=finance.pk).values_list("project__slug", "role"))
        assert rows == {(None, "analyst"), (None, "report-viewer"), ("production", "report-manager")}
        assert not NewGrant.objects.filter(mapping_role_id=empty.pk).exists()
        assert NewMappingRole.objects.filter(pk=empty.pk).exists()
        assert "grants" not in {f.name for f in NewMappingRole._meta.get_fields() if f.concrete}

        # Backwards: the JSON list comes back from the rows (dangling scopes stay gone).
        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE)
        apps = executor.loader.project_state(BEFORE).apps
        restored = apps.get_model("connections", "MappingRole").objects.get(pk=finance.pk)
        assert restored.grants == [
            {"scope": "account", "roles": ["analyst", "report-viewer"]},
            {"scope": "project:production", "roles": ["report-manager"]},
        ]
        assert apps.get_model("connections", "MappingRole").objects.get(pk=empty.pk).grants == []
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
