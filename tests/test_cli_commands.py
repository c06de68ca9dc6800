"""Every documented ``vestibule`` command, run the way a user runs it.

Each test runs the installed ``.venv/bin/vestibule`` as a subprocess on a
fresh data directory (no ``DJANGO_SETTINGS_MODULE``, no test settings), then
checks what it printed and what it left in the database. v0.1 shipped with
every ``vestibule connection …`` command crashing before it parsed a thing
(models imported before Django was set up), while in-process tests, whose
Django was already configured, passed.

Speed: one ``vestibule migrate`` per module; each test copies the migrated
data directory (database and secret key) and works on its copy.
``serve`` and ``demo`` are run in ``tests/test_demo_port.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password

from tests.saml_support import FIXTURES
from vestibule.cli import build_parser

VESTIBULE = Path(sys.executable).parent / "vestibule"
README = Path(__file__).resolve().parent.parent / "README.md"
OKTA = FIXTURES / "metadata" / "okta.xml"
AGGREGATE = FIXTURES / "metadata" / "entities_descriptor.xml"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# The command paths this module (or test_demo_port.py, for the servers, and
# test_cli_applications.py and tests/provider/test_webhooks.py, for the OpenID Provider's) runs;
# test_readme_commands_are_all_tested keeps it in step with the README.
TESTED = {
    ("serve",), ("demo",), ("migrate",), ("check",), ("api-key", "create"), ("account", "create"), ("operator", "create"),
    ("connection", "list"), ("connection", "create-saml"), ("connection", "create-oidc"), ("connection", "enable"),
    ("connection", "disable"), ("connection", "import-metadata"), ("mapping-role", "list"), ("mapping-role", "create"),
    ("mapping-role", "update"), ("mapping-role", "delete"), ("connection", "sp-keys"),
    ("application", "create"), ("application", "list"), ("application", "show"), ("application", "rotate-secret"),
    ("application", "revoke"), ("signing-key", "list"), ("signing-key", "rotate"),
    ("deliveries", "run"), ("deliveries", "list"),
    # In process: tests/connections_lifecycle (metadata refresh, certificate expiry), tests/directory/test_scim_tokens.py.
    ("connection", "metadata-url"), ("connection", "refresh-metadata"), ("connection", "metadata-changes"),
    ("connection", "confirm-metadata"), ("connection", "check-certificates"),
    ("scim-token", "create"), ("scim-token", "list"), ("scim-token", "revoke"),
}  # fmt: skip


class Cli:
    """The installed command against one data directory, as a person's shell runs it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        inherited = {
            k: v for k, v in os.environ.items() if not k.startswith("VESTIBULE_") and k != "DJANGO_SETTINGS_MODULE"
        }
        self.env = {**inherited, "VESTIBULE_DATA_DIR": str(data_dir)}

    def run(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VESTIBULE), *argv],
            env=self.env,
            cwd=self.data_dir,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = self.run(*argv, stdin=stdin)
        assert result.returncode == 0, (argv, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def fails(self, *argv: str, code: int = 1) -> str:
        """A refusal: the given exit status, nothing on stdout, one line on stderr; returns that line."""
        result = self.run(*argv)
        assert result.returncode == code, (argv, result.stdout, result.stderr)
        assert result.stdout == "" and "Traceback" not in result.stderr
        if code == 1:
            assert result.stderr.count("\n") == 1, result.stderr
        return result.stderr

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.data_dir / "vestibule.sqlite3") as db:
            return db.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data_dir = tmp_path_factory.mktemp("vestibule-cli") / "data"
    data_dir.mkdir()
    result = Cli(data_dir).ok("migrate")
    assert "Applying accounts.0001_initial... OK" in result.stdout
    yield data_dir


@pytest.fixture
def cli(migrated: Path, tmp_path: Path) -> Cli:
    data_dir = tmp_path / "data"
    shutil.copytree(migrated, data_dir)
    return Cli(data_dir)


@pytest.fixture(scope="module")
def migrated_with_acme(migrated: Path) -> Path:
    data_dir = migrated.parent / "with-acme"
    shutil.copytree(migrated, data_dir)
    Cli(data_dir).ok("account", "create", "acme", "--name", "Acme Corporation")
    return data_dir


@pytest.fixture
def acme(migrated_with_acme: Path, tmp_path: Path) -> Cli:
    """A fresh install where `vestibule account create acme` has run."""
    data_dir = tmp_path / "data"
    shutil.copytree(migrated_with_acme, data_dir)
    return Cli(data_dir)


# migrate and check ------------------------------------------------------------------------


def test_migrate_made_the_database_and_a_private_secret_key(cli: Cli) -> None:
    key_file = cli.data_dir / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_text().strip()) >= 32
    assert cli.rows("select count(*) from accounts_account") == [(0,)]
    again = cli.ok("migrate")
    assert "No migrations to apply." in again.stdout


def test_check_passes_on_a_fresh_install_and_deploy_names_the_production_gaps(cli: Cli) -> None:
    assert cli.ok("check").stdout.strip().endswith("configuration OK")
    deploy = cli.ok("check", "--deploy")
    # Plain http on loopback: the hardening checks say what production needs.
    assert "security.W012" in deploy.stderr and "configuration OK" in deploy.stdout


# account, operator, api-key ---------------------------------------------------------------


def test_account_create_prints_the_slug_and_refuses_duplicates_and_bad_slugs(cli: Cli) -> None:
    result = cli.ok("account", "create", "acme", "--name", "Acme Corporation")
    assert result.stdout == "acme\n" and "vestibule connection create-saml --account acme" in result.stderr
    assert cli.rows("select slug, name from accounts_account") == [("acme", "Acme Corporation")]
    assert "already exists" in cli.fails("account", "create", "acme")
    assert "not a usable slug" in cli.fails("account", "create", "Acme Corp")
    assert cli.rows("select count(*) from accounts_account") == [(1,)]


def test_operator_create_prints_a_password_that_signs_in_and_resets_it_when_run_again(cli: Cli) -> None:
    first = cli.ok("operator", "create", "Ops@Example.com", "--name", "Ops Team")
    password = first.stdout.strip()
    assert first.stdout == password + "\n" and len(password) >= 16 and "shown only once" in first.stderr
    [(email, name, is_operator, method, encoded)] = cli.rows(
        "select email, name, is_operator, login_method, password from accounts_user"
    )
    assert (email, name, is_operator, method) == ("Ops@example.com", "Ops Team", 1, "password")  # domain lower-cased
    assert check_password(password, encoded) and password not in encoded

    second = cli.ok("operator", "create", "ops@example.com").stdout.strip()
    [(encoded,)] = cli.rows("select password from accounts_user")
    assert second != password and check_password(second, encoded) and not check_password(password, encoded)
    assert "not a valid email" in cli.fails("operator", "create", "not-an-email")


def test_api_key_create_for_an_account_and_role_and_for_the_operator(acme: Cli) -> None:
    result = acme.ok("api-key", "create", "--account", "acme", "--role", "sso-admin", "--name", "terraform")
    key = result.stdout.strip()
    assert re.fullmatch(r"vst_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}\n", result.stdout) and "only once" in result.stderr
    _, prefix, secret = key.split("_", 2)
    [(digest, slug, name, roles)] = acme.rows(
        "select k.digest, a.slug, k.name, k.roles from api_apikey k join accounts_account a on a.id = k.account_id where k.prefix = ?",
        prefix,
    )
    assert (digest, slug, name, json.loads(roles)) == (
        hashlib.sha256(secret.encode()).hexdigest(),
        "acme",
        "terraform",
        ["sso-admin"],
    )

    default_role = acme.ok("api-key", "create", "--account", "acme").stdout.strip().split("_")[1]
    assert json.loads(acme.rows("select roles from api_apikey where prefix = ?", default_role)[0][0]) == [
        "administrator"
    ]

    operator = acme.ok("api-key", "create", "--operator").stdout.strip().split("_")[1]
    assert acme.rows("select account_id from api_apikey where prefix = ?", operator) == [(None,)]

    assert "no account with slug 'nope'" in acme.fails("api-key", "create", "--account", "nope")
    assert "--role applies to --account keys" in acme.fails(
        "api-key", "create", "--operator", "--role", "sso-admin", code=2
    )
    assert "one of the arguments --operator --account is required" in acme.fails("api-key", "create", code=2)
    assert acme.rows("select count(*) from api_apikey") == [(3,)]


# connection -------------------------------------------------------------------------------


def test_connection_saml_create_with_metadata_list_enable_disable(acme: Cli) -> None:
    assert acme.ok("connection", "list", "--account", "acme").stderr == "account 'acme' has no connections\n"
    created = acme.ok(
        "connection",
        "create-saml",
        "--account",
        "acme",
        "--name",
        "Okta",
        "--domain",
        "acme.com",
        "--metadata",
        str(OKTA),
    )
    connection_id = created.stdout.strip()
    assert UUID.fullmatch(connection_id)
    # The SP values to paste into the IdP, on the public URL of a fresh install.
    assert f"ACS URL:       http://127.0.0.1:8000/sso/saml/{connection_id}/acs" in created.stderr
    assert f"Next: vestibule connection enable {connection_id}" in created.stderr
    [(protocol, enabled, saml)] = acme.rows("select protocol, enabled, saml_settings from connections_connection")
    assert (protocol, enabled, json.loads(saml)["idp_entity_id"]) == (
        "saml",
        0,
        "http://www.okta.com/exk9vestib0le4417239",
    )
    assert acme.rows("select domain from connections_domainclaim") == [("acme.com",)]

    listed = acme.ok("connection", "list", "--account", "acme").stdout.splitlines()
    assert listed[0].split() == ["ID", "PROTOCOL", "ENABLED", "NAME", "DOMAINS"]
    assert listed[1].split() == [connection_id, "saml", "no", "Okta", "acme.com"]

    assert (
        acme.ok("connection", "enable", connection_id).stdout == f"connection {connection_id} (acme/Okta) is enabled\n"
    )
    assert acme.rows("select enabled from connections_connection") == [(1,)]
    assert acme.ok("connection", "list", "--account", "acme").stdout.splitlines()[1].split()[2] == "yes"
    assert acme.ok("connection", "disable", connection_id).stdout.endswith("is disabled\n")
    assert acme.rows("select enabled from connections_connection") == [(0,)]
    audited = acme.rows(
        "select code, json_extract(detail, '$.via') from audit_auditevent where code like 'connection.%' order by id"
    )
    assert audited == [("connection.created", "cli"), ("connection.updated", "cli"), ("connection.updated", "cli")]


def test_connection_saml_create_then_import_metadata_then_enable(acme: Cli) -> None:
    created = acme.ok("connection", "create-saml", "--account", "acme", "--name", "Federation", "--domain", "acme.org")
    connection_id = created.stdout.strip()
    assert f"Next: vestibule connection import-metadata {connection_id} FILE" in created.stderr
    assert "SAML settings are incomplete" in acme.fails("connection", "enable", connection_id)
    assert "choose one by entityID" in acme.fails("connection", "import-metadata", connection_id, str(AGGREGATE))
    imported = acme.ok(
        "connection",
        "import-metadata",
        connection_id,
        str(AGGREGATE),
        "--entity-id",
        "https://idp-b.federation.test/saml2/idp",
    )
    assert imported.stdout.startswith("imported IdP https://idp-b.federation.test/saml2/idp: SSO ")
    assert "1 signing certificate(s)" in imported.stdout
    acme.ok("connection", "enable", connection_id)
    [(enabled, saml)] = acme.rows("select enabled, saml_settings from connections_connection")
    assert enabled == 1 and json.loads(saml)["idp_entity_id"] == "https://idp-b.federation.test/saml2/idp"


def test_connection_sp_keys_stage_promote_retire(acme: Cli) -> None:
    connection_id = acme.ok(
        "connection", "create-saml", "--account", "acme", "--name", "Okta", "--domain", "acme.net"
    ).stdout.strip()
    shown = acme.ok("connection", "sp-keys", connection_id)
    assert [line.split()[:2] for line in shown.stdout.splitlines()[1:]] == [
        ["current", "signing"],
        ["current", "encryption"],
    ]
    assert f"Next: to rotate: vestibule connection sp-keys {connection_id} --stage" in shown.stderr
    staged = acme.ok("connection", "sp-keys", connection_id, "--stage")
    assert [line.split()[0] for line in staged.stdout.splitlines()[1:]] == ["current", "current", "next", "next"]
    assert "already staged" in acme.fails("connection", "sp-keys", connection_id, "--stage")
    promoted = json.loads(acme.ok("connection", "sp-keys", connection_id, "--promote", "--json").stdout)
    assert promoted["next"] is None and promoted["previous"]["encryption"]["sha256_fingerprint"]
    assert "previous" not in acme.ok("connection", "sp-keys", connection_id, "--retire").stdout
    audited = acme.rows(
        "select code, json_extract(detail, '$.via') from audit_auditevent where code like 'connection.sp_keys%' order by id"
    )
    assert audited == [
        ("connection.sp_keys_staged", "cli"),
        ("connection.sp_keys_promoted", "cli"),
        ("connection.sp_keys_retired", "cli"),
    ]


def test_connection_oidc_create_reads_the_secret_from_stdin_and_never_shows_or_stores_it_in_clear(acme: Cli) -> None:
    secret = "client-secret-7f3a9b2c-never-printed"
    created = acme.ok(
        "connection", "create-oidc", "--account", "acme", "--name", "Entra", "--domain", "acme.net",
        "--issuer", "https://login.microsoftonline.com/0000/v2.0", "--client-id", "vestibule-app",
        "--client-secret-file", "-", stdin=secret + "\n",
    )  # fmt: skip
    connection_id = created.stdout.strip()
    assert UUID.fullmatch(connection_id)
    assert f"Redirect URI:  http://127.0.0.1:8000/sso/oidc/{connection_id}/callback" in created.stderr
    assert secret not in created.stdout + created.stderr
    [(protocol, oidc, sealed)] = acme.rows(
        "select protocol, oidc_settings, secrets_encrypted from connections_connection"
    )
    assert protocol == "oidc" and json.loads(oidc)["client_id"] == "vestibule-app"
    assert sealed and secret not in str(sealed)
    assert secret.encode() not in (acme.data_dir / "vestibule.sqlite3").read_bytes()
    assert "the client secret is empty" in acme.run(
        "connection", "create-oidc", "--account", "acme", "--name", "X", "--domain", "acme.io",
        "--issuer", "https://idp.example.com", "--client-id", "x", "--client-secret-file", "-", stdin="\n",
    ).stderr  # fmt: skip


def test_connection_refusals_are_one_line(acme: Cli) -> None:
    nil = "00000000-0000-0000-0000-000000000000"
    for argv, message in [
        (["connection", "list", "--account", "nope"], "no account with slug 'nope'"),
        (["connection", "enable", "not-a-uuid"], "is not a connection ID"),
        (["connection", "disable", nil], f"no connection {nil}"),
        (["connection", "create-saml", "--account", "acme", "--name", "X", "--domain", "not a domain"], "is not a domain"),
        (["connection", "create-saml", "--account", "acme", "--name", "X", "--domain", "acme.com", "--metadata", "/nonexistent.xml"], "cannot read /nonexistent.xml"),
        (["connection", "import-metadata", nil, str(OKTA)], f"no connection {nil}"),
    ]:  # fmt: skip
        assert message in acme.fails(*argv), argv
    assert acme.rows("select count(*) from connections_connection") == [(0,)]


# mapping-role -----------------------------------------------------------------------------


def test_mapping_role_create_list_update_delete(acme: Cli) -> None:
    created = acme.ok(
        "mapping-role", "create", "--account", "acme", "--name", "Finance",
        "--grant", "account=analyst,report-viewer",
    )  # fmt: skip
    mapping_id = created.stdout.split("\t")[0]
    assert created.stdout == f"{mapping_id}\tFinance\taccount=analyst,report-viewer\n"
    assert acme.ok("mapping-role", "list", "--account", "acme").stdout == created.stdout
    as_json = json.loads(acme.ok("mapping-role", "list", "--account", "acme", "--json").stdout)
    assert [(m["name"], m["grants"][0]["roles"]) for m in as_json] == [("Finance", ["analyst", "report-viewer"])]

    acme.ok(
        "mapping-role",
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
    rows = acme.rows(
        "select m.name, g.project_id, g.role from connections_mappingrole m"
        " join connections_mappingrolegrant g on g.mapping_role_id = m.id"
    )
    assert rows == [("Finance EMEA", None, "analyst")]  # one row per granted role; no project: the account scope
    assert "unknown-role" in acme.fails(
        "mapping-role", "create", "--account", "acme", "--name", "X", "--grant", "account=unknown-role"
    )

    assert acme.ok("mapping-role", "delete", "--account", "acme", "--name", "Finance EMEA").stdout == "Finance EMEA\n"
    assert acme.rows("select count(*) from connections_mappingrole") == [(0,)]
    assert "has no mapping role named 'Finance EMEA'" in acme.fails(
        "mapping-role", "delete", "--account", "acme", "--name", "Finance EMEA"
    )
    codes = [
        code for (code,) in acme.rows("select code from audit_auditevent where code like 'mapping_role.%' order by id")
    ]
    assert codes == ["mapping_role.created", "mapping_role.updated", "mapping_role.deleted"]


# --help teaches ---------------------------------------------------------------------------


def _parsers() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    found: dict[tuple[str, ...], argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        found[path] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))

    walk(build_parser(), ())
    return found


PARSERS = _parsers()


def _actions_of(parser: argparse.ArgumentParser) -> list[str]:
    return [name for a in parser._actions if isinstance(a, argparse._SubParsersAction) for name in a.choices]


@pytest.mark.parametrize("path", sorted(PARSERS), ids=lambda p: " ".join(p) or "vestibule")
def test_every_help_says_what_it_does_with_an_example(path: tuple[str, ...]) -> None:
    parser = PARSERS[path]
    text = parser.format_help()
    assert parser.description and len(parser.description) > 40, text
    actions = _actions_of(parser)
    if actions:
        # A command grouping actions lists each with a summary, and shows one in use.
        for name in actions:
            assert re.search(rf"^\s+{re.escape(name)}\s*\n?\s+\S", text, re.M), (name, text)
        assert "vestibule " in (parser.epilog or "")
    else:
        assert "example:\n  vestibule " in text or "example:\n  VESTIBULE_" in text, text
        assert "\nnext:\n  " in text, text


def test_top_level_help_of_the_installed_command_lists_every_command(tmp_path: Path) -> None:
    result = Cli(tmp_path).ok("--help")
    for name in ("serve", "demo", "migrate", "check", "api-key", "account", "operator", "connection", "mapping-role"):
        assert re.search(rf"^\s+{name}\s", result.stdout, re.M), name
    assert "vestibule COMMAND --help" in result.stdout
    account = Cli(tmp_path).ok("account", "--help").stdout
    assert re.search(r"^\s+create\s+create an account", account, re.M) and "vestibule account create acme" in account
    operator = Cli(tmp_path).ok("operator", "--help").stdout
    assert re.search(r"^\s+create\s+create or reset an operator", operator, re.M)


def _readme_commands() -> set[tuple[str, ...]]:
    section = README.read_text().split("## Command line", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    commands: set[tuple[str, ...]] = set()
    for line in block.splitlines():
        if not line.startswith("vestibule ") or line.startswith("vestibule --help"):
            continue
        words = line.split("#")[0].split()[1:]
        command, action = words[0], words[1] if len(words) > 1 else ""
        if (command,) in PARSERS and _actions_of(PARSERS[(command,)]):
            commands.update((command, a) for a in action.split("|"))
        else:
            commands.add((command,))
    return commands


def test_readme_commands_exist_and_are_all_tested() -> None:
    documented = _readme_commands()
    assert len(documented) >= 15
    assert documented <= set(PARSERS), documented - set(PARSERS)
    assert documented <= TESTED, documented - TESTED
    runnable = {path for path, parser in PARSERS.items() if path and not _actions_of(parser)}
    assert runnable <= TESTED, runnable - TESTED
