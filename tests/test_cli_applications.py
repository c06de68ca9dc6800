"""``vestibule application …`` and ``vestibule signing-key …``.

Most tests run the commands in this (already configured) process against the
test database; the last one runs the installed ``vestibule`` on a fresh data
directory, as a person's shell does, so the commands are known to work
without a Django configured beforehand.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password
from django.test import Client

from tests.conftest import ApiClient
from tests.test_cli_commands import Cli
from vestibule import cli
from vestibule.audit.models import AuditEvent
from vestibule.provider import applications
from vestibule.provider.models import Application, SigningKey

CALLBACK = "https://billing.example.com/oidc/callback"


@pytest.fixture(autouse=True)
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test process is already configured; the commands must not reconfigure Django.
    monkeypatch.setattr(cli.common, "_setup", lambda test_idp=False, **kw: None)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse refusing the command line
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys: pytest.CaptureFixture[str], *argv: str, status: int) -> str:
    """A refusal: that exit status, nothing on stdout, one line on stderr (no traceback); returns the line."""
    code, out, err = run(capsys, *argv)
    assert (code, out) == (status, ""), (code, out, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def create(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code, out, err = run(capsys, "application", "create", "--name", "Billing", "--redirect-uri", CALLBACK, *extra)
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


# Applications ----------------------------------------------------------------------


@pytest.mark.django_db
def test_create_prints_the_apis_json_with_the_secret_once(capsys: pytest.CaptureFixture[str], api: ApiClient) -> None:
    body = create(
        capsys,
        "--redirect-uri", "http://127.0.0.1:5000/cb", "--post-logout-redirect-uri", "https://billing.example.com/",
        "--backchannel-logout-uri", "https://billing.example.com/oidc/logout",
    )  # fmt: skip
    row = Application.objects.get(client_id=body["client_id"])
    assert body["redirect_uris"] == [CALLBACK, "http://127.0.0.1:5000/cb"] and body["created_by"] == "cli"
    assert body["backchannel_logout_uri"] == "https://billing.example.com/oidc/logout"
    assert body["client_type"] == "confidential" and body["webhook_secret"] is None
    assert check_password(body["client_secret"], row.client_secret) and body["client_secret"] not in row.client_secret
    # The very shape the API answers a registration with.
    from_api = api.post("/api/v1/applications", {"name": "Other", "redirect_uris": [CALLBACK]}).json()
    assert set(body) == set(from_api)
    shown = api.get(f"/api/v1/applications/{body['client_id']}").json()
    assert body == {**shown, "client_secret": body["client_secret"], "webhook_secret": None}
    [event] = [
        e for e in AuditEvent.objects.filter(code="application.created") if e.detail["client_id"] == body["client_id"]
    ]
    assert event.detail["via"] == "cli" and event.actor_api_key is None
    assert body["client_secret"] not in json.dumps(event.detail)


@pytest.mark.django_db
def test_create_public_with_a_webhook(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "application", "create", "--name", "SPA", "--redirect-uri", CALLBACK, "--public",
        "--webhook-url", "https://billing.example.com/hooks",
    )  # fmt: skip
    assert code == 0, err
    body = json.loads(out)
    assert body["client_type"] == "public" and body["client_secret"] is None
    assert body["webhook_secret"].startswith("whsec_") and "webhook secret" in err and "client secret" not in err
    row = Application.objects.get(client_id=body["client_id"])
    assert applications.webhook_secret(row) == body["webhook_secret"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "argv, field",
    [
        pytest.param(["--redirect-uri", "http://billing.example.com/cb"], "redirect_uris", id="http-not-loopback"),
        pytest.param(["--redirect-uri", "https://billing.example.com/cb#x"], "redirect_uris", id="fragment"),
        pytest.param(["--redirect-uri", "https://u:p@billing.example.com/cb"], "redirect_uris", id="credentials"),
        pytest.param(["--redirect-uri", "/cb"], "redirect_uris", id="relative"),
        pytest.param(["--redirect-uri", CALLBACK, "--webhook-url", "ftp://x.example/"], "webhook_url", id="webhook"),
        pytest.param(
            ["--redirect-uri", CALLBACK, "--post-logout-redirect-uri", "http://evil.example/"],
            "post_logout_redirect_uris",
            id="logout",
        ),
    ],
)
def test_create_refuses_bad_uris_with_one_line_and_status_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], field: str
) -> None:
    line = refused(capsys, "application", "create", "--name", "Billing", *argv, status=2)
    assert line.startswith(f"vestibule: {field}: ")
    assert not Application.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_create_refuses_a_blank_name_and_a_missing_redirect_uri(capsys: pytest.CaptureFixture[str]) -> None:
    assert "name" in refused(capsys, "application", "create", "--name", " ", "--redirect-uri", CALLBACK, status=2)
    code, out, err = run(capsys, "application", "create", "--name", "Billing")
    assert (code, out) == (2, "") and "--redirect-uri" in err and "Traceback" not in err
    assert not Application.objects.exists()


@pytest.mark.django_db
def test_list_show_rotate_secret_and_revoke(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "application", "list")
    assert (code, out) == (0, "") and "no applications yet" in err
    first, second = create(capsys), create(capsys, "--public")
    code, out, _ = run(capsys, "application", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["CLIENT", "ID", "TYPE"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [first["client_id"], "confidential", "active"],
        [second["client_id"], "public", "active"],
    ]
    code, out, _ = run(capsys, "application", "list", "--json")
    assert [a["client_id"] for a in json.loads(out)] == [first["client_id"], second["client_id"]]
    assert "client_secret" not in out

    code, out, _ = run(capsys, "application", "show", first["client_id"])
    assert code == 0 and json.loads(out)["name"] == "Billing" and "client_secret" not in json.loads(out)
    assert "no application with client ID 'nope'" in refused(capsys, "application", "show", "nope", status=1)

    code, out, err = run(capsys, "application", "rotate-secret", first["client_id"])
    assert code == 0 and "shown only once" in err
    rotated = json.loads(out)
    stored_hash = Application.objects.get(client_id=first["client_id"]).client_secret
    assert check_password(rotated["client_secret"], stored_hash)
    assert not check_password(first["client_secret"], stored_hash)
    assert "client_type: a public client has no secret" in refused(
        capsys, "application", "rotate-secret", second["client_id"], status=1
    )

    code, out, _ = run(capsys, "application", "revoke", first["client_id"])
    assert code == 0 and out == f"application {first['client_id']} (Billing) revoked; 0 sign-in(s) ended\n"
    assert Application.objects.get(client_id=first["client_id"]).revoked_at is not None
    assert "was revoked" in refused(capsys, "application", "revoke", first["client_id"], status=1)
    assert "was revoked" in refused(capsys, "application", "rotate-secret", first["client_id"], status=1)
    code, out, _ = run(capsys, "application", "list")
    assert out.splitlines()[1].split()[:3] == [first["client_id"], "confidential", "revoked"]
    assert list(AuditEvent.objects.order_by("pk").values_list("code", flat=True)) == [
        "application.created", "application.created", "application.secret_rotated", "application.revoked",
    ]  # fmt: skip
    assert rotated["client_secret"] not in json.dumps(list(AuditEvent.objects.values_list("detail", flat=True)))


# Signing keys ----------------------------------------------------------------------


@pytest.mark.django_db
def test_signing_key_stage_promote_discard(capsys: pytest.CaptureFixture[str], client: Client) -> None:
    code, out, err = run(capsys, "signing-key", "list")
    assert (code, out) == (0, "") and "no signing key yet" in err
    code, out, err = run(capsys, "signing-key", "rotate", "--stage", "--algorithm", "ES256")
    assert code == 0 and "--promote" in err
    rows = [line.split() for line in out.splitlines()[1:]]
    assert sorted((r[1], r[2], r[3]) for r in rows) == [("ES256", "next", "yes"), ("RS256", "active", "yes")]
    staged = SigningKey.objects.get(state="next")
    assert staged.kid in {k["kid"] for k in client.get("/oauth/jwks").json()["keys"]}

    code, out, _ = run(capsys, "signing-key", "rotate", "--promote", "--json")
    status = json.loads(out)
    assert [(k["kid"], k["state"]) for k in status if k["state"] == "active"] == [(staged.kid, "active")]
    assert "d" not in json.dumps(status).replace('"', " ").split() and "private" not in out

    assert "no next key is staged" in refused(capsys, "signing-key", "rotate", "--promote", status=1)
    assert "no next key is staged" in refused(capsys, "signing-key", "rotate", "--discard", status=1)
    assert "--algorithm applies to --stage only" in refused(
        capsys, "signing-key", "rotate", "--promote", "--algorithm", "ES256", status=2
    )
    run(capsys, "signing-key", "rotate", "--stage")
    code, out, _ = run(capsys, "signing-key", "rotate", "--discard")
    assert code == 0 and "next" not in out
    code, out, _ = run(capsys, "signing-key", "list", "--json")
    assert {k["state"] for k in json.loads(out)} == {"active", "retired"}
    codes = AuditEvent.objects.filter(code__startswith="signing_key.").order_by("pk").values_list("code", flat=True)
    assert list(codes) == [
        "signing_key.staged", "signing_key.promoted", "signing_key.staged", "signing_key.discarded",
    ]  # fmt: skip
    assert all(e.detail["via"] == "cli" for e in AuditEvent.objects.all())


def test_signing_key_rotate_needs_one_step(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "signing-key", "rotate")
    assert (code, out) == (2, "") and "one of the arguments --stage --promote --discard is required" in err
    code, out, err = run(capsys, "signing-key", "rotate", "--stage", "--promote")
    assert (code, out) == (2, "") and "not allowed with argument" in err


# --help teaches ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["application"], ["create", "rotate-secret", "revoke", "vestibule application create --name"]),
        (
            ["application", "create"],
            ["cannot show either again", "--public", "character for character", "example:\n  vestibule"],
        ),
        (["application", "revoke"], ["cannot be undone", "next:\n  vestibule application list"]),
        (["signing-key"], ["list", "rotate", "vestibule signing-key rotate --stage"]),
        (["signing-key", "rotate"], ["--stage", "--promote", "--discard", "ES256", "until every token"]),
    ],
)
def test_help_teaches(capsys: pytest.CaptureFixture[str], argv: list[str], expected: list[str]) -> None:
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0
    flowed = " ".join(out.split())
    for phrase in expected:
        assert phrase in (out if "\n" in phrase else flowed), (phrase, out)


# The installed command ----------------------------------------------------------------


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data_dir = tmp_path_factory.mktemp("vestibule-cli-apps") / "data"
    data_dir.mkdir()
    Cli(data_dir).ok("migrate")
    yield data_dir


def test_the_installed_command_registers_rotates_and_revokes(migrated: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(migrated, data_dir)
    shell = Cli(data_dir)
    made = json.loads(shell.ok("application", "create", "--name", "Billing", "--redirect-uri", CALLBACK).stdout)
    [(stored_hash,)] = shell.rows(
        "select client_secret from provider_application where client_id = ?", made["client_id"]
    )
    assert check_password(made["client_secret"], stored_hash) and made["client_secret"] not in stored_hash
    assert shell.ok("application", "list").stdout.count(made["client_id"]) == 1
    assert json.loads(shell.ok("application", "show", made["client_id"]).stdout)["name"] == "Billing"
    rotated = json.loads(shell.ok("application", "rotate-secret", made["client_id"]).stdout)["client_secret"]
    [(stored_hash,)] = shell.rows(
        "select client_secret from provider_application where client_id = ?", made["client_id"]
    )
    assert check_password(rotated, stored_hash) and not check_password(made["client_secret"], stored_hash)
    assert "revoked" in shell.ok("application", "revoke", made["client_id"]).stdout
    line = shell.fails("application", "create", "--name", "X", "--redirect-uri", CALLBACK + "#x", code=2)
    assert line.startswith("vestibule: redirect_uris: ") and "fragment" in line and line.count("\n") == 1
    shell.ok("signing-key", "rotate", "--stage", "--algorithm", "ES256")
    keys = json.loads(shell.ok("signing-key", "list", "--json").stdout)
    assert sorted(k["state"] for k in keys) == ["active", "next"]
    codes = [c for (c,) in shell.rows("select code from audit_auditevent order by id")]
    assert codes == [
        "application.created", "application.secret_rotated", "application.revoked", "signing_key.staged",
    ]  # fmt: skip
