"""Mapping-role grants become rows (MappingRoleGrant) instead of a JSON list.

Expand and convert here; 0004 drops the JSON column. A scope naming a
project that no longer exists is skipped (it granted nothing already: the
pipeline only applies project roles of projects that exist). Reversible:
going back rebuilds the JSON list from the rows.
"""

import django.db.models.deletion
from django.db import migrations, models


def json_to_rows(apps, schema_editor):
    MappingRole = apps.get_model("connections", "MappingRole")
    MappingRoleGrant = apps.get_model("connections", "MappingRoleGrant")
    Project = apps.get_model("accounts", "Project")
    rows = []
    for mapping_role in MappingRole.objects.order_by("pk").iterator():
        projects = {p.slug: p.pk for p in Project.objects.filter(account_id=mapping_role.account_id)}
        seen = set()
        for grant in mapping_role.grants or []:
            if not isinstance(grant, dict):
                continue
            scope = grant.get("scope")
            if scope == "account":
                project_id = None
            elif isinstance(scope, str) and scope.startswith("project:") and scope[len("project:") :] in projects:
                project_id = projects[scope[len("project:") :]]
            else:
                continue  # a deleted project (or a malformed scope): nothing to convert
            for role in grant.get("roles") or []:
                if isinstance(role, str) and role and (project_id, role) not in seen:
                    seen.add((project_id, role))
                    rows.append(MappingRoleGrant(mapping_role_id=mapping_role.pk, project_id=project_id, role=role))
    MappingRoleGrant.objects.bulk_create(rows, batch_size=500)


def rows_to_json(apps, schema_editor):
    MappingRole = apps.get_model("connections", "MappingRole")
    MappingRoleGrant = apps.get_model("connections", "MappingRoleGrant")
    scopes = {}
    for mapping_role_id, slug, role in MappingRoleGrant.objects.values_list("mapping_role_id", "project__slug", "role"):
        scope = "account" if slug is None else f"project:{slug}"
        scopes.setdefault(mapping_role_id, {}).setdefault(scope, []).append(role)
    for mapping_role in MappingRole.objects.order_by("pk").iterator():
        by_scope = scopes.get(mapping_role.pk, {})
        order = sorted(by_scope, key=lambda s: (s != "account", s))
        mapping_role.grants = [{"scope": s, "roles": sorted(by_scope[s])} for s in order]
        mapping_role.save(update_fields=["grants"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_password_pinned_and_managed_grants"),
        ("connections", "0002_share_offers"),
    ]

    operations = [
        migrations.CreateModel(
            name="MappingRoleGrant",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("role", models.CharField(max_length=64)),
                (
                    "mapping_role",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="role_grants",
                        to="connections.mappingrole",
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="mapping_role_grants",
                        to="accounts.project",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("project__isnull", False)),
                        fields=("mapping_role", "project", "role"),
                        name="mapping_role_grant_once_per_project",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("project__isnull", True)),
                        fields=("mapping_role", "role"),
                        name="mapping_role_grant_once_per_account",
                    ),
                ],
            },
        ),
        migrations.RunPython(json_to_rows, rows_to_json),
    ]
