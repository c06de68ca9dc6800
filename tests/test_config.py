"""Configuration from ``VESTIBULE_*`` variables, and the ``vestibule`` command line.

``load_config`` is called with explicit dictionaries; the CLI runs as a real
subprocess with a clean environment and a temporary data folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vestibule.cli import main
from vestibule.conf.env import ConfigError, load_config

GOOD_KEY = "k" * 40


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"VESTIBULE_DATA_DIR": str(tmp_path / "data"), "VESTIBULE_SECRET_KEY": GOOD_KEY, **values}


def one_line_error(values: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(values)
    message = str(info.value)
    assert message and "\n" not in message
    return message


# load_config ---------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    config = load_config(env(tmp_path))
    assert config.database_url == f"sqlite:///{tmp_path / 'data' / 'vestibule.sqlite3'}"
    assert config.redis_url is None
    assert config.base_url == "http://127.0.0.1:8000"
    assert config.email.backend == "console"
    assert config.debug is False and config.test_idp is False
    assert config.secure is False
    assert set(config.allowed_hosts) == {"127.0.0.1", "localhost", "[::1]"}


@pytest.mark.parametrize("url", ["mysql://u@h/db", "oracle://x", "postgre://x", "not a url", "redis://h/0"])
def test_bad_database_scheme(tmp_path: Path, url: str) -> None:
    assert "VESTIBULE_DATABASE_URL" in one_line_error(env(tmp_path, VESTIBULE_DATABASE_URL=url))


@pytest.mark.parametrize("url", ["sqlite:////tmp/x.sqlite3", "postgres://u@h/db", "postgresql://u:p@h:5433/db"])
def test_good_database_urls(tmp_path: Path, url: str) -> None:
    assert load_config(env(tmp_path, VESTIBULE_DATABASE_URL=url)).database_url == url


@pytest.mark.parametrize("key", ["", "short", "x" * 31])
def test_short_secret_key(tmp_path: Path, key: str) -> None:
    assert "VESTIBULE_SECRET_KEY" in one_line_error(env(tmp_path, VESTIBULE_SECRET_KEY=key))


@pytest.mark.parametrize(
    "url",
    [
        "ftp://sso.example.com",
        "sso.example.com",
        "https://",
        "https://sso.example.com/?a=1",
        "https://sso.example.com/#x",
        "",
    ],
)
def test_bad_base_url(tmp_path: Path, url: str) -> None:
    assert "VESTIBULE_BASE_URL" in one_line_error(env(tmp_path, VESTIBULE_BASE_URL=url))


def test_https_base_url_is_secure_and_trailing_slash_dropped(tmp_path: Path) -> None:
    config = load_config(
        env(tmp_path, VESTIBULE_BASE_URL="https://sso.example.com/", VESTIBULE_ALLOWED_HOSTS="a.example, b.example ,")
    )
    assert config.base_url == "https://sso.example.com"
    assert config.secure
    assert config.allowed_hosts == ("sso.example.com", "a.example", "b.example")


@pytest.mark.parametrize("name", ["VESTIBULE_DEBUG", "VESTIBULE_TEST_IDP"])
@pytest.mark.parametrize("value", ["maybe", "2", "tru", "yess"])
def test_bad_booleans(tmp_path: Path, name: str, value: str) -> None:
    message = one_line_error(env(tmp_path, **{name: value}))
    assert name in message and "boolean" in message


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("off", False),
        ("", False),
        ("No", False),
    ],
)
def test_good_booleans(tmp_path: Path, value: str, expected: bool) -> None:
    assert load_config(env(tmp_path, VESTIBULE_DEBUG=value)).debug is expected


@pytest.mark.parametrize(
    "url",
    [
        "smtp://",
        "mailto:a@b.c",
        "http://mail.example.com",
        "smtp:///nohost",
        "smtp://mail.example.com:notaport",
        "smtp://mail.example.com:99999",
    ],
)
def test_bad_email_url(tmp_path: Path, url: str) -> None:
    assert "VESTIBULE_EMAIL_URL" in one_line_error(env(tmp_path, VESTIBULE_EMAIL_URL=url))


def test_smtp_urls(tmp_path: Path) -> None:
    smtps = load_config(env(tmp_path, VESTIBULE_EMAIL_URL="smtps://user%40corp:p%3Ass@mail.example.com")).email
    assert (smtps.backend, smtps.host, smtps.port, smtps.username, smtps.password, smtps.use_ssl) == (
        "smtp",
        "mail.example.com",
        465,
        "user@corp",
        "p:ss",
        True,
    )
    smtp = load_config(env(tmp_path, VESTIBULE_EMAIL_URL="smtp://mail.example.com:2525?tls=1")).email
    assert (smtp.port, smtp.use_tls, smtp.use_ssl) == (2525, True, False)
    assert load_config(env(tmp_path, VESTIBULE_EMAIL_URL="smtp://mail.example.com")).email.port == 587


@pytest.mark.parametrize(
    "name, value",
    [
        ("VESTIBULE_REDIS_URL", "http://cache:6379"),
        ("VESTIBULE_TRUSTED_PROXIES", "-1"),
        ("VESTIBULE_TRUSTED_PROXIES", "eleven"),
        ("VESTIBULE_TRUSTED_PROXIES", "11"),
        ("VESTIBULE_LOG_LEVEL", "LOUD"),
        ("VESTIBULE_ROLE_CATALOG", "/does/not/exist.json"),
    ],
)
def test_other_bad_values_name_their_variable(tmp_path: Path, name: str, value: str) -> None:
    assert name in one_line_error(env(tmp_path, **{name: value}))


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"default_role": "a", "roles": ["a"]}',
        '{"default_role": "b", "roles": [{"name": "a"}]}',
        '{"default_role": "n", "roles": [{"name": "b"}, {"name": "n", "requires_one_of": ["b"]}]}',
    ],
)
def test_broken_role_catalog_file_is_a_config_error(tmp_path: Path, text: str) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(text)
    assert "VESTIBULE_ROLE_CATALOG" in one_line_error(env(tmp_path, VESTIBULE_ROLE_CATALOG=str(catalog)))


def test_valid_role_catalog_file(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        json.dumps({"default_role": "viewer", "roles": [{"name": "viewer"}, {"name": "boss", "implies": ["viewer"]}]})
    )
    assert load_config(env(tmp_path, VESTIBULE_ROLE_CATALOG=str(catalog))).role_catalog_path == catalog


def test_secret_key_is_generated_once_with_0600_and_reused(tmp_path: Path) -> None:
    values = {"VESTIBULE_DATA_DIR": str(tmp_path / "fresh")}
    first = load_config(values).secret_key
    key_file = tmp_path / "fresh" / "secret_key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) >= 32 and key_file.read_text().strip() == first
    assert load_config(values).secret_key == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_configured_secret_key_wins_over_the_file(tmp_path: Path) -> None:
    values = {"VESTIBULE_DATA_DIR": str(tmp_path)}
    load_config(values)
    assert load_config({**values, "VESTIBULE_SECRET_KEY": GOOD_KEY}).secret_key == GOOD_KEY


def test_short_secret_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("short\n")
    assert "secret key" in one_line_error({"VESTIBULE_DATA_DIR": str(tmp_path)})


def test_unwritable_data_dir_is_a_config_error(tmp_path: Path) -> None:
    # A file where the directory should be: nobody, root included, can create it.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert "secret key" in one_line_error({"VESTIBULE_DATA_DIR": str(blocker / "sub")})
    if os.geteuid() != 0:  # root can write anywhere; everyone else is stopped by the mode too
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "secret key" in one_line_error({"VESTIBULE_DATA_DIR": str(locked / "sub")})


# The command line --------------------------------------------------------------------------


def _command_paths() -> list[list[str]]:
    """Every command and subcommand the parser knows, so new ones are covered too."""
    import argparse

    from vestibule.cli import build_parser

    paths: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        paths.append(prefix)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*prefix, name])

    walk(build_parser(), [])
    return paths


SUBCOMMANDS = _command_paths()


@pytest.mark.parametrize("argv", SUBCOMMANDS, ids=lambda a: " ".join(a) or "vestibule")
def test_help_works_for_every_subcommand(argv: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: vestibule")


def test_the_known_subcommands_are_all_there() -> None:
    for path in (
        ["serve"],
        ["demo"],
        ["migrate"],
        ["check"],
        ["api-key", "create"],
        ["account", "create"],
        ["operator", "create"],
    ):
        assert path in SUBCOMMANDS


def test_help_lists_every_subcommand(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("serve", "demo", "migrate", "check", "api-key", "account", "operator"):
        assert name in out


def test_api_key_create_requires_a_scope(capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        main(["api-key", "create"])
    assert info.value.code == 2


def clean_env(tmp_path: Path, **values: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("VESTIBULE_") and k != "DJANGO_SETTINGS_MODULE"}
    return {**base, "VESTIBULE_DATA_DIR": str(tmp_path / "data"), **values}


def run_cli(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vestibule.cli", *args], env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A data folder with a migrated embedded database, shared by the CLI tests."""
    root = tmp_path_factory.mktemp("cli")
    environment = clean_env(root)
    result = run_cli(environment, "migrate")
    assert result.returncode == 0, result.stderr
    return root, environment


def test_api_key_create_prints_only_the_key_on_stdout(migrated: tuple[Path, dict[str, str]]) -> None:
    tmp_path, environment = migrated
    result = run_cli(environment, "api-key", "create", "--operator", "--name", "ci")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"vst_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}\n", result.stdout), result.stdout
    assert "only once" in result.stderr
    key = result.stdout.strip()
    _, prefix, secret = key.split("_", 2)
    with sqlite3.connect(tmp_path / "data" / "vestibule.sqlite3") as db:
        rows = db.execute("select digest, account_id, name from api_apikey where prefix = ?", (prefix,)).fetchall()
    assert rows == [(hashlib.sha256(secret.encode()).hexdigest(), None, "ci")]
    assert secret not in (tmp_path / "data" / "vestibule.sqlite3").read_bytes().decode("latin-1")

    unknown = run_cli(environment, "api-key", "create", "--account", "nope")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "nope" in unknown.stderr

    assert run_cli(environment, "account", "create", "acme").returncode == 0
    scoped = run_cli(environment, "api-key", "create", "--account", "acme")
    assert scoped.returncode == 0 and scoped.stdout.startswith("vst_") and scoped.stdout.count("\n") == 1


def test_operator_create_prints_only_the_password(migrated: tuple[Path, dict[str, str]]) -> None:
    _, environment = migrated
    result = run_cli(environment, "operator", "create", "Root@Example.com")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1 and len(result.stdout.strip()) >= 16
    bad = run_cli(environment, "operator", "create", "not-an-email")
    assert bad.returncode == 1 and bad.stdout == "" and "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    "values",
    [
        {"VESTIBULE_DATABASE_URL": "mysql://u@h/db"},
        {"VESTIBULE_SECRET_KEY": "short"},
        {"VESTIBULE_BASE_URL": "ftp://x"},
        {"VESTIBULE_DEBUG": "maybe"},
        {"VESTIBULE_EMAIL_URL": "smtp://"},
    ],
    ids=["database", "secret", "base-url", "boolean", "email"],
)
@pytest.mark.parametrize(
    "command", [["migrate"], ["api-key", "create", "--operator"], ["serve", "--port", "1"], ["check"]], ids=" ".join
)
def test_invalid_config_exits_2_with_one_line_and_no_traceback(
    tmp_path: Path, values: dict[str, str], command: list[str]
) -> None:
    result = run_cli(clean_env(tmp_path, **values), *command)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vestibule: configuration error: ")
    assert next(iter(values)) in lines[0]
    assert "Traceback" not in result.stderr
