"""``vestibule mapping-role list|create|update|delete`` against the real database."""

from __future__ import annotations

import json

import pytest

from vestibule import cli
from vestibule.accounts.models import Account, Project
from vestibule.audit.models import AuditEvent
from vestibule.connections.models import MappingRole

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def configured(monkeypatch):
    # The test process is already configured; the commands must not reconfigure Django.
    monkeypatch.setattr(cli.common, "_setup", lambda test_idp=False: None)


@pytest.fixture
def acme():
    account = Account.objects.create(slug="acme", name="Acme")
    Project.objects.create(account=account, slug="production", name="Production")
    return account


def run(capsys, *argv):
    code = cli.main(["mapping-role", *argv])
    out, err = capsys.readouterr()
    return code, out, err


FINANCE = [
    "--name",
    "Finance",
    "--grant",
    "account=analyst,report-viewer",
    "--grant",
    "project:production=report-manager",
]


def test_create_list_update_delete(acme, capsys):
    code, out, _ = run(capsys, "create", "--account", "acme", *FINANCE)
    assert code == 0 and "Finance" in out
    mapping_role = MappingRole.objects.get(account=acme, name="Finance")
    assert mapping_role.grants == [
        {"scope": "account", "roles": ["analyst", "report-viewer"]},
        {"scope": "project:production", "roles": ["report-manager"]},
    ]
    code, out, _ = run(capsys, "list", "--account", "acme")
    assert code == 0
    assert out.strip() == f"{mapping_role.pk}\tFinance\taccount=analyst,report-viewer project:production=report-manager"
    code, out, _ = run(capsys, "list", "--account", "acme", "--json")
    assert [m["name"] for m in json.loads(out)] == ["Finance"]

    code, out, _ = run(
        capsys,
        "update",
        "--account",
        "acme",
        "--name",
        "Finance",
        "--rename",
        "Finance EMEA",
        "--grant",
        "account=analyst",
    )
    assert code == 0
    mapping_role.refresh_from_db()
    assert (mapping_role.name, mapping_role.grants) == ("Finance EMEA", [{"scope": "account", "roles": ["analyst"]}])

    code, out, _ = run(capsys, "delete", "--account", "acme", "--name", "Finance EMEA")
    assert code == 0 and not MappingRole.objects.exists()
    codes = list(AuditEvent.objects.filter(account=acme).order_by("pk").values_list("code", flat=True))
    assert codes == ["mapping_role.created", "mapping_role.updated", "mapping_role.deleted"]


def test_rejects_invalid_grants_like_the_api(acme, capsys):
    """The catalog rules hold on every surface: a dependent role without its partner, a scope twice, a stranger."""
    cases = [
        (["--grant", "account=pii-viewer"], "requires one of"),
        (["--grant", "account=analyst", "--grant", "account=analyst"], "appears twice"),
        (["--grant", "account=root"], "unknown role 'root'"),
        (["--grant", "project:nowhere=analyst"], "project:<slug>"),
    ]
    for grants, message in cases:
        code, _, err = run(capsys, "create", "--account", "acme", "--name", "Bad", *grants)
        assert code == 1 and message in err, err
    assert not MappingRole.objects.exists()


def test_rejects_unknown_account_and_duplicates(acme, capsys):
    code, _, err = run(capsys, "list", "--account", "globex")
    assert code == 1 and "no account with slug 'globex'" in err
    assert run(capsys, "create", "--account", "acme", *FINANCE)[0] == 0
    code, _, err = run(capsys, "create", "--account", "acme", *FINANCE)
    assert code == 1 and "exists" in err
    code, _, err = run(capsys, "delete", "--account", "acme", "--name", "Nope")
    assert code == 1 and "no mapping role named 'Nope'" in err


def test_rejects_malformed_grant_argument(acme, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["mapping-role", "create", "--account", "acme", "--name", "X", "--grant", "analyst"])
    assert exc.value.code == 2
    assert "SCOPE=ROLE" in capsys.readouterr().err
