"""Migrations stay safe while older nodes still serve: a drop or rename is a contract step of its own.

docs/operations.md "Upgrades while older nodes still serve": release N expands
(new tables, nullable columns, backfills), release N+1 contracts (drops). A
migration that removes or renames a column or table breaks the nodes still
running the previous release, so it must be contract-only: its docstring
starts with "Contract", and it adds nothing in the same step (an expansion and
its contraction in one migration leave no release in which both shapes exist).

Fast and database-free (the migration files are read, not applied): part of
the ordinary suite.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator

from django.db import migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.base import Operation

DESTRUCTIVE = (migrations.RemoveField, migrations.DeleteModel, migrations.RenameField, migrations.RenameModel)
EXPANDING = (migrations.AddField, migrations.CreateModel)

#: Released before this rule; upgrading across them means stopping the old nodes first (docs/operations.md).
HISTORICAL = {
    # Approval moved from the user to the membership, in one step.
    ("accounts", "0003_identity_ownership"),
}


def _database_operations(operations: Iterable[Operation]) -> Iterator[Operation]:
    """What touches the database: a state-only move (SeparateDatabaseAndState) changes no table."""
    for operation in operations:
        if isinstance(operation, migrations.SeparateDatabaseAndState):
            yield from _database_operations(operation.database_operations)
        else:
            yield operation


def problems(migration: migrations.Migration, docstring: str | None) -> list[str]:
    operations = list(_database_operations(migration.operations))
    destructive = [op for op in operations if isinstance(op, DESTRUCTIVE)]
    if not destructive:
        return []
    found = []
    if not (docstring or "").lstrip().startswith("Contract"):
        found.append(f"{type(destructive[0]).__name__} outside a migration whose docstring starts with 'Contract'")
    expanding = [op for op in operations if isinstance(op, EXPANDING)]
    if expanding:
        found.append(f"contracts and expands ({type(expanding[0]).__name__}) in one step")
    return found


def _docstring(migration: migrations.Migration) -> str | None:
    return sys.modules[type(migration).__module__].__doc__


def test_every_drop_or_rename_is_a_contract_step_of_its_own() -> None:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    offenders = {
        key: found
        for key, migration in loader.disk_migrations.items()
        if type(migration).__module__.startswith("vestibule.")  # third-party apps follow their own release notes
        if (found := problems(migration, _docstring(migration))) and key not in HISTORICAL
    }
    assert offenders == {}, offenders
    # The allow-list only names migrations that exist and still need it.
    for key in HISTORICAL:
        assert problems(loader.disk_migrations[key], _docstring(loader.disk_migrations[key])), key


def test_the_check_refuses_a_drop_beside_an_addition_and_accepts_a_contract_step() -> None:
    class Mixed(migrations.Migration):
        operations = [
            migrations.AddField("person", "full_name", models.CharField(max_length=200, null=True)),
            migrations.RemoveField("person", "name"),
        ]

    class Contract(migrations.Migration):
        operations = [migrations.RemoveField("person", "name")]

    class StateOnly(migrations.Migration):
        operations = [migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel("Person")])]

    assert len(problems(Mixed("0002_rename", "people"), "Rename the name column.")) == 2
    assert problems(Contract("0003_drop_name", "people"), "Contract: name is gone, full_name holds it.") == []
    assert problems(Contract("0003_drop_name", "people"), "Drop name.") != []
    assert problems(StateOnly("0004_moved", "people"), None) == []
