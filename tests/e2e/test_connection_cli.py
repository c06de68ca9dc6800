"""``vestibule connection ...`` through ``main([...])`` against the test database.

These run in a process whose Django is already set up, so they cannot see
start-up mistakes (v0.1 imported models before configuring Django and every
command crashed): tests/test_cli_commands.py runs the installed program.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.saml_support import FIXTURES
from vestibule.accounts.models import Account
from vestibule.audit.models import AuditEvent
from vestibule.cli import main
from vestibule.connections.models import Connection, DomainClaim

pytestmark = pytest.mark.django_db

OKTA = str(FIXTURES / "metadata" / "okta.xml")
AGGREGATE = str(FIXTURES / "metadata" / "entities_descriptor.xml")


@pytest.fixture
def acme(db: None) -> Account:
    return Account.objects.create(slug="acme", name="Acme")


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_with_metadata_enable_list_disable(acme: Account, capsys: Any) -> None:
    code, out, err = run(
        capsys,
        "connection",
        "create-saml",
        "--account",
        "acme",
        "--name",
        "Okta",
        "--domain",
        "acme.com",
        "--domain",
        "acme.org",
        "--metadata",
        OKTA,
    )
    assert code == 0, err
    connection_id = out.strip()
    connection = Connection.objects.get(pk=connection_id)
    assert not connection.enabled and connection.domain_list == ["acme.com", "acme.org"]
    assert connection.saml_settings["idp_entity_id"] == "http://www.okta.com/exk9vestib0le4417239"
    assert "ACS URL:       http://localhost/sso/saml/" in err and "enable " + connection_id in err
    assert AuditEvent.objects.filter(code="connection.created", connection_id=connection.pk, detail__via="cli").exists()

    assert run(capsys, "connection", "enable", connection_id)[0] == 0
    code, out, _ = run(capsys, "connection", "list", "--account", "acme")
    assert code == 0 and connection_id in out and "yes" in out and "acme.com, acme.org" in out
    code, out, _ = run(capsys, "connection", "disable", connection_id)
    assert code == 0 and "disabled" in out
    assert not Connection.objects.get(pk=connection_id).enabled


def test_create_without_metadata_then_import(acme: Account, capsys: Any) -> None:
    code, out, err = run(
        capsys, "connection", "create-saml", "--account", "acme", "--name", "Fed", "--domain", "acme.com"
    )
    assert code == 0 and "import-metadata" in err
    connection_id = out.strip()
    # Incomplete settings: enabling is refused with the reason, in one line.
    code, _, err = run(capsys, "connection", "enable", connection_id)
    assert code == 1 and err.count("\n") == 1 and "SAML settings are incomplete" in err
    code, _, err = run(capsys, "connection", "import-metadata", connection_id, AGGREGATE)
    assert code == 1 and "choose one by entityID" in err and err.count("\n") == 1
    code, out, err = run(
        capsys,
        "connection",
        "import-metadata",
        connection_id,
        AGGREGATE,
        "--entity-id",
        "https://idp-b.federation.test/saml2/idp",
    )
    assert code == 0, err
    assert "https://idp-b.federation.test/saml2/idp" in out and "1 signing certificate" in out
    assert run(capsys, "connection", "enable", connection_id)[0] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["connection", "list", "--account", "nope"], "no account with slug 'nope'"),
        (["connection", "enable", "not-a-uuid"], "is not a connection ID"),
        (["connection", "enable", "00000000-0000-0000-0000-000000000000"], "no connection"),
        (
            ["connection", "create-saml", "--account", "acme", "--name", "X", "--domain", "not a domain"],
            "is not a domain",
        ),
        (
            [
                "connection",
                "create-saml",
                "--account",
                "acme",
                "--name",
                "X",
                "--domain",
                "acme.com",
                "--metadata",
                "/nonexistent.xml",
            ],
            "cannot read /nonexistent.xml",
        ),
        (["connection", "import-metadata", "00000000-0000-0000-0000-000000000000", OKTA], "no connection"),
    ],
    ids=["unknown-account", "bad-id", "unknown-id", "bad-domain", "missing-file", "import-unknown"],
)
def test_errors_are_one_line_and_non_zero(acme: Account, capsys: Any, argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code != 0 and message in err and err.count("\n") == 1 and out == ""


def test_domain_of_another_account_is_refused_and_nothing_is_created(acme: Account, capsys: Any) -> None:
    other = Account.objects.create(slug="globex", name="Globex")
    DomainClaim.objects.create(domain="acme.com", account=other)
    code, _, err = run(capsys, "connection", "create-saml", "--account", "acme", "--name", "X", "--domain", "acme.com")
    assert code == 1 and "claimed by another account" in err
    assert not Connection.objects.exists()


def test_bad_metadata_rolls_the_creation_back(acme: Account, capsys: Any, tmp_path: Any) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    code, _, err = run(
        capsys,
        "connection",
        "create-saml",
        "--account",
        "acme",
        "--name",
        "X",
        "--domain",
        "acme.com",
        "--metadata",
        str(bad),
    )
    assert code == 1 and "DOCTYPE" in err
    assert not Connection.objects.exists()


def test_help_texts(capsys: Any) -> None:
    for argv in (
        ["connection", "--help"],
        ["connection", "create-saml", "--help"],
        ["connection", "import-metadata", "--help"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "create-saml" in out and "--domain D" in out and "starts disabled" in out and "--entity-id" in out


def test_create_oidc_reads_the_secret_from_a_file_never_the_command_line(
    acme: Account, capsys: Any, tmp_path: Any
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("cli-distinctive-secret-8d1f\n")
    code, out, err = run(
        capsys, "connection", "create-oidc", "--account", "acme", "--name", "Entra", "--domain", "acme.com",
        "--issuer", "https://login.example.test/tenant/v2.0", "--client-id", "vestibule-app",
        "--client-secret-file", str(secret_file), "--auth-method", "client_secret_post", "--scope", "groups", "--userinfo",
    )  # fmt: skip
    assert code == 0, err
    connection = Connection.objects.get(pk=out.strip())
    assert connection.protocol == "oidc" and not connection.enabled
    assert connection.oidc_settings["token_endpoint_auth_method"] == "client_secret_post"
    assert (
        connection.oidc_settings["scopes"] == ["openid", "groups"] and connection.oidc_settings["use_userinfo"] is True
    )
    assert f"/sso/oidc/{connection.pk}/callback" in err
    assert "cli-distinctive-secret-8d1f" not in out + err + str(connection.oidc_settings) + connection.secrets_encrypted
    from vestibule.signin.adapters import client_config

    assert client_config(connection).client_secret == "cli-distinctive-secret-8d1f"


def test_create_oidc_rejects_bad_settings_in_one_line(acme: Account, capsys: Any) -> None:
    code, _, err = run(
        capsys, "connection", "create-oidc", "--account", "acme", "--name", "X", "--domain", "acme.com",
        "--issuer", "ftp://nope", "--client-id", "app",
    )  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "oidc.issuer" in err
    assert not Connection.objects.exists()
