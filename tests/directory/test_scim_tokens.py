"""SCIM tokens: made by the account's administrator (API and CLI), shown once, stored hashed, revocable, one account each."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings

from tests.conftest import ApiClient
from tests.directory.conftest import ScimClient, scim_error
from vestibule import cli
from vestibule.audit.models import AuditEvent
from vestibule.authority.models import ApiKey
from vestibule.directory.models import ScimToken

pytestmark = pytest.mark.django_db

BASE_URL = f"{settings.VESTIBULE_BASE_URL.rstrip('/')}/scim/v2"


def test_an_administrator_creates_a_token_shown_once_and_stored_hashed(api: ApiClient, account_key: Any) -> None:
    key = account_key("acme")
    response = api.as_key(key).post("/api/v1/accounts/acme/scim-tokens", {"name": "Okta"})
    assert response.status_code == 201, response.content
    made = response.json()
    assert made["base_url"] == BASE_URL and made["name"] == "Okta" and made["account"] == "acme"
    assert made["token"].startswith(f"vsc_{made['prefix']}_")
    row = ScimToken.objects.get(prefix=made["prefix"])
    assert made["token"].split("_", 2)[2] not in row.digest and len(row.digest) == 64
    listed = api.as_key(key).get("/api/v1/accounts/acme/scim-tokens").json()
    assert [t["prefix"] for t in listed] == [made["prefix"]]
    assert "token" not in listed[0] and made["token"] not in json.dumps(listed)
    event = AuditEvent.objects.get(code="scim_token.created")
    assert event.account is not None and event.account.slug == "acme" and event.detail["scim_token"] == made["prefix"]
    assert ScimClient(made["token"]).get("/ServiceProviderConfig").status_code == 200


def test_a_user_manager_key_cannot_make_tokens(api: ApiClient, make_account: Any) -> None:
    _, key = ApiKey.issue(account=make_account("acme"), roles=["user-manager"])
    response = api.as_key(key).post("/api/v1/accounts/acme/scim-tokens", {})
    assert response.status_code == 403 and "administrator" in response.json()["detail"]
    assert not ScimToken.objects.exists()


def test_another_accounts_administrator_sees_no_tokens_and_cannot_make_or_revoke_any(
    api: ApiClient, account_key: Any, make_account: Any
) -> None:
    make_account("acme")
    made = api.post("/api/v1/accounts/acme/scim-tokens", {"name": "acme IdP"}).json()
    intruder = api.as_key(account_key("globex"))
    assert intruder.get("/api/v1/accounts/acme/scim-tokens").status_code == 404
    assert intruder.post("/api/v1/accounts/acme/scim-tokens", {}).status_code == 404
    assert intruder.delete(f"/api/v1/accounts/acme/scim-tokens/{made['prefix']}").status_code == 404
    # Its own account's URL with acme's prefix finds nothing either.
    assert intruder.delete(f"/api/v1/accounts/globex/scim-tokens/{made['prefix']}").status_code == 404
    assert ScimToken.objects.get(prefix=made["prefix"]).revoked_at is None
    assert ScimClient(made["token"]).get("/Users").status_code == 200


def test_revoked_token_gets_401_at_once(api: ApiClient, make_account: Any) -> None:
    make_account("acme")
    made = api.post("/api/v1/accounts/acme/scim-tokens", {}).json()
    assert api.delete(f"/api/v1/accounts/acme/scim-tokens/{made['prefix']}").status_code == 204
    response = ScimClient(made["token"]).get("/Users")
    scim_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert api.get("/api/v1/accounts/acme/scim-tokens").json() == []
    assert AuditEvent.objects.filter(code="scim_token.revoked", detail__scim_token=made["prefix"]).exists()


@pytest.mark.parametrize(
    "presented",
    ["", "vsc_", "vsc_nope_nope", "vst_abc_def", "x" * 5000, "vsc_" + "a" * 300],
    ids=["empty", "kind-only", "unknown", "api-key-shape", "huge", "long"],
)
def test_unknown_or_malformed_tokens_get_401(make_account: Any, presented: str) -> None:
    scim_error(ScimClient(presented).get("/Users"), 401)


def test_a_token_with_a_wrong_secret_gets_401(api: ApiClient, make_account: Any) -> None:
    make_account("acme")
    made = api.post("/api/v1/accounts/acme/scim-tokens", {}).json()
    scim_error(ScimClient(made["token"] + "x").get("/Users"), 401)
    scim_error(ScimClient(f"vsc_{made['prefix']}_{'A' * 43}").get("/Users"), 401)


def test_an_api_key_is_not_a_scim_token(account_key: Any) -> None:
    scim_error(ScimClient(account_key("acme")).get("/Users"), 401)


def test_tokens_are_never_taken_from_the_query_string(api: ApiClient, make_account: Any) -> None:
    make_account("acme")
    token = api.post("/api/v1/accounts/acme/scim-tokens", {}).json()["token"]
    response = ScimClient(None).get(f"/Users?access_token={token}")
    assert "Authorization header" in scim_error(response, 401)["detail"]
    # Even beside a valid header: a URL carrying a credential is refused, not silently ignored.
    scim_error(ScimClient(token).get(f"/Users?access_token={token}"), 401)


def test_a_token_bound_to_another_accounts_connection_is_refused(api: ApiClient, make_account: Any) -> None:
    from vestibule.connections.models import Connection

    make_account("acme")
    theirs = Connection.objects.create(account=make_account("globex"), protocol="saml", name="Globex Okta")
    response = api.post("/api/v1/accounts/acme/scim-tokens", {"connection": str(theirs.pk)})
    assert response.status_code == 404 and response.json()["field"] == "connection"
    assert not ScimToken.objects.exists()


def test_unknown_fields_in_the_token_request_are_refused(api: ApiClient, make_account: Any) -> None:
    make_account("acme")
    assert api.post("/api/v1/accounts/acme/scim-tokens", {"name": "a\x00b"}).status_code == 422
    assert api.post("/api/v1/accounts/acme/scim-tokens", {"roles": ["administrator"]}).status_code == 422


# CLI -----------------------------------------------------------------------------------


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.common, "_setup", lambda test_idp=False, **kw: None)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["scim-token", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_create_list_revoke(configured: None, make_account: Any, capsys: pytest.CaptureFixture[str]) -> None:
    make_account("acme")
    code, out, err = run(capsys, "create", "--account", "acme", "--name", "Entra")
    assert code == 0 and "shown only once" in err
    made = json.loads(out)
    assert made["base_url"] == BASE_URL and made["name"] == "Entra" and made["created_by"] == "cli"
    assert ScimClient(made["token"]).get("/Users").status_code == 200

    code, out, _ = run(capsys, "list", "--account", "acme")
    assert code == 0 and made["prefix"] in out and made["token"] not in out
    code, out, _ = run(capsys, "list", "--account", "acme", "--json")
    assert [t["prefix"] for t in json.loads(out)] == [made["prefix"]]

    code, _, err = run(capsys, "revoke", "--account", "acme", made["prefix"])
    assert code == 0 and "401" in err
    assert ScimClient(made["token"]).get("/Users").status_code == 401
    assert AuditEvent.objects.filter(code="scim_token.revoked", detail__via="cli").exists()
    code, _, err = run(capsys, "revoke", "--account", "acme", made["prefix"])
    assert code == 1 and "no live SCIM token" in err


def test_cli_refuses_an_unknown_account(configured: None, db: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "create", "--account", "nope")
    assert code == 1 and out == "" and "no account 'nope'" in err


def test_cli_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["scim-token", "--help"], ["scim-token", "create", "--help"], ["scim-token", "revoke", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        out = capsys.readouterr().out
        assert "example:" in out and "scim-token" in out
