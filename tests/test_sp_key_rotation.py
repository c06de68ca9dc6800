"""SP key rotation of a SAML connection: stage -> promote -> retire, through the API and the CLI.

Each step is shown where it matters: the SP metadata an IdP reads, an
assertion encrypted to the staged (and later the previous) certificate going
through the real ACS, and AuthnRequests signed with the promoted key.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from lxml import etree

from tests.saml_support import KEYS
from vestibule import cli
from vestibule.audit.models import AuditEvent
from vestibule.authority.models import ApiKey
from vestibule.connections.models import Connection
from vestibule.saml import IdentityProvider, KeyPair, build_response, parse_authn_request
from vestibule.saml.errors import SamlError
from vestibule.saml.idp import response_form

pytestmark = pytest.mark.django_db

IDP = IdentityProvider(
    "https://idp.example.test/metadata",
    "https://idp.example.test/sso",
    KeyPair((KEYS / "idp.key").read_text(), (KEYS / "idp.crt").read_text()),
)
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture
def saml_connection(api: Any, make_account: Any) -> Any:
    def make(slug: str = "acme", domain: str = "acme.com", **saml: Any) -> dict[str, Any]:
        make_account(slug)
        created = api.post(
            f"/api/v1/accounts/{slug}/connections",
            {
                "protocol": "saml", "name": "Okta", "domains": [domain],
                "auto_provision": True, "provisioned_users_can_login": True,
                "saml": {"idp_entity_id": IDP.entity_id, "sso_url": IDP.sso_url, "certificates": [IDP.signing.certificate_pem], **saml},
            },
        )  # fmt: skip
        assert created.status_code == 201, created.content
        connection: dict[str, Any] = created.json()
        assert api.patch(f"/api/v1/connections/{connection['id']}", {"enabled": True}).status_code == 200
        return connection

    return make


def rotate(api: Any, connection: dict[str, Any], action: str, status: int = 200) -> dict[str, Any]:
    response = api.post(f"/api/v1/connections/{connection['id']}/sp-keys/rotate", {"action": action})
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    return body


def published(connection: dict[str, Any]) -> dict[str, list[str]]:
    """The certificates (base64 DER) the SP metadata lists, by use, in order."""
    response = Client().get(urlsplit(connection["metadata_url"]).path)
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    found: dict[str, list[str]] = {"signing": [], "encryption": []}
    for descriptor in root.iter(f"{{{MD}}}KeyDescriptor"):
        cert = descriptor.find(f".//{{{DS}}}X509Certificate")
        assert cert is not None and cert.text
        found[descriptor.get("use", "")].append("".join(cert.text.split()))
    return found


def start(browser: Client, connection: dict[str, Any]) -> str:
    """Begin an SP-initiated login; the query string of the AuthnRequest redirect."""
    response = browser.get(f"/sso/start/{connection['id']}")
    assert response.status_code == 302, response.content[:500]
    return urlsplit(response["Location"]).query


def login(connection: dict[str, Any], email: str, encrypt_to: str) -> Any:
    browser = Client()
    request = parse_authn_request(IDP, start(browser, connection))
    xml = build_response(
        IDP, sp_entity_id=connection["sp_entity_id"], acs_url=connection["acs_url"], name_id=email,
        attributes={"email": [email], "name": ["Someone"]}, now=dt.datetime.now(dt.UTC),
        in_response_to=request.request_id, encrypt_to=encrypt_to,
    )  # fmt: skip
    form = response_form(xml, connection["acs_url"], request.relay_state)
    return browser.post(urlsplit(connection["acs_url"]).path, dict(form.fields))


def pem(b64: str) -> str:
    return "-----BEGIN CERTIFICATE-----\n" + b64 + "\n-----END CERTIFICATE-----\n"


def secrets_of(connection: dict[str, Any]) -> str:
    return Connection.objects.get(pk=connection["id"]).secrets_encrypted


# API ----------------------------------------------------------------------------------


def test_the_lifecycle_through_the_api(api: Any, saml_connection: Any) -> None:
    connection = saml_connection()
    url = f"/api/v1/connections/{connection['id']}/sp-keys"
    before = api.get(url).json()
    assert before["next"] is None and before["previous"] is None
    current = before["current"]
    assert set(current) == {"signing", "encryption"}
    assert len(current["signing"]["sha256_fingerprint"].split(":")) == 32 and current["signing"]["not_after"] > "2030"
    assert before["metadata_url"] == connection["metadata_url"]

    staged = rotate(api, connection, "stage")
    assert staged["current"] == current and staged["next"]["staged_at"]
    assert staged["next"]["signing"]["sha256_fingerprint"] not in (
        current["signing"]["sha256_fingerprint"],
        current["encryption"]["sha256_fingerprint"],
    )
    assert api.get(url).json()["next"] == staged["next"]

    promoted = rotate(api, connection, "promote")
    assert promoted["current"] == {"signing": staged["next"]["signing"], "encryption": staged["next"]["encryption"]}
    assert promoted["next"] is None
    assert promoted["previous"]["encryption"] == current["encryption"] and promoted["previous"]["replaced_at"]

    retired = rotate(api, connection, "retire")
    assert retired["current"] == promoted["current"] and retired["previous"] is None and retired["next"] is None

    # Never a private key in an answer or an audit event.
    codes = ["connection.sp_keys_staged", "connection.sp_keys_promoted", "connection.sp_keys_retired"]
    events = list(AuditEvent.objects.filter(code__startswith="connection.sp_keys_").order_by("pk"))
    assert [e.code for e in events] == codes
    assert events[0].detail["next_encryption"] == staged["next"]["encryption"]["sha256_fingerprint"]
    assert all(e.actor_api_key_id is not None and str(e.connection_id) == connection["id"] for e in events)
    everything = json.dumps([before, staged, promoted, retired]) + json.dumps([e.detail for e in events])
    assert "PRIVATE KEY" not in everything and "MII" not in everything


def test_steps_out_of_order_are_409_with_advice(api: Any, saml_connection: Any) -> None:
    connection = saml_connection()
    unchanged = secrets_of(connection)
    assert "stage one first" in rotate(api, connection, "promote", 409)["detail"]
    assert "no previous" in rotate(api, connection, "retire", 409)["detail"]
    assert "nothing to discard" in rotate(api, connection, "discard", 409)["detail"]
    assert secrets_of(connection) == unchanged
    rotate(api, connection, "stage")
    assert "already staged" in rotate(api, connection, "stage", 409)["detail"]
    rotate(api, connection, "promote")
    assert "retire it before staging" in rotate(api, connection, "stage", 409)["detail"]
    # Discard drops a staged pair unused.
    rotate(api, connection, "retire")
    staged = rotate(api, connection, "stage")
    discarded = rotate(api, connection, "discard")
    assert discarded["next"] is None and discarded["current"] == staged["current"]
    bad = api.post(f"/api/v1/connections/{connection['id']}/sp-keys/rotate", {"action": "explode"})
    assert bad.status_code in (400, 422)


def test_oidc_connections_have_no_sp_keys(api: Any, make_account: Any) -> None:
    make_account("acme")
    created = api.post(
        "/api/v1/accounts/acme/connections",
        {
            "protocol": "oidc",
            "name": "Entra",
            "domains": ["acme.com"],
            "oidc": {"issuer": "https://login.example.test", "client_id": "x", "client_secret": "s3cret-value-0123"},
        },
    )
    assert created.status_code == 201, created.content
    oidc = created.json()
    assert api.get(f"/api/v1/connections/{oidc['id']}/sp-keys").status_code == 422
    assert rotate(api, oidc, "stage", 422)["field"] == "id"


def test_another_accounts_sso_admin_gets_404_and_changes_nothing(
    api: Any, saml_connection: Any, make_account: Any
) -> None:
    connection = saml_connection()
    unchanged = secrets_of(connection)
    _, globex_key = ApiKey.issue(account=make_account("globex"), name="globex sso-admin", roles=["sso-admin"])
    globex = api.as_key(globex_key)
    assert globex.get(f"/api/v1/connections/{connection['id']}/sp-keys").status_code == 404
    for action in ("stage", "promote", "retire", "discard"):
        assert (
            globex.post(f"/api/v1/connections/{connection['id']}/sp-keys/rotate", {"action": action}).status_code == 404
        )
    assert secrets_of(connection) == unchanged
    assert not AuditEvent.objects.filter(code__startswith="connection.sp_keys_").exists()
    # In its own account, rotating takes sso-admin: a user-manager key is told which role it lacks.
    _, manager_key = ApiKey.issue(account=make_account("acme"), name="acme user-manager", roles=["user-manager"])
    refused = api.as_key(manager_key).post(
        f"/api/v1/connections/{connection['id']}/sp-keys/rotate", {"action": "stage"}
    )
    assert refused.status_code == 403 and secrets_of(connection) == unchanged
    # acme's own sso-admin key may; so may the operator (the ``api`` fixture's key, in every other test).
    _, acme_key = ApiKey.issue(account=make_account("acme"), name="acme sso-admin", roles=["sso-admin"])
    assert rotate(api.as_key(acme_key), connection, "stage")["next"] is not None


# What the rotation changes at the protocol level --------------------------------------------


def test_metadata_publishes_the_next_certificates_after_staging(api: Any, saml_connection: Any) -> None:
    connection = saml_connection()
    before = published(connection)
    assert len(before["signing"]) == 1 and len(before["encryption"]) == 1
    rotate(api, connection, "stage")
    staged = published(connection)
    assert staged["signing"][0] == before["signing"][0] and len(staged["signing"]) == 2
    assert staged["encryption"][0] == before["encryption"][0] and len(staged["encryption"]) == 2
    rotate(api, connection, "promote")
    promoted = published(connection)
    # The new pair leads; the replaced encryption certificate stays listed (and accepted) until retired.
    assert promoted["signing"] == [staged["signing"][1]]
    assert promoted["encryption"] == [staged["encryption"][1], before["encryption"][0]]
    rotate(api, connection, "retire")
    assert published(connection) == {"signing": [staged["signing"][1]], "encryption": [staged["encryption"][1]]}


def test_assertions_encrypted_to_the_next_then_the_previous_key(api: Any, saml_connection: Any) -> None:
    connection = saml_connection(want_assertions_encrypted=True)
    old = pem(published(connection)["encryption"][0])
    assert login(connection, "old@acme.com", encrypt_to=old).status_code == 302

    rotate(api, connection, "stage")
    new = pem(published(connection)["encryption"][1])
    # An IdP that switched as soon as it read the metadata.
    response = login(connection, "early@acme.com", encrypt_to=new)
    assert response.status_code == 302, response.content.decode()[:1500]
    assert login(connection, "old@acme.com", encrypt_to=old).status_code == 302

    rotate(api, connection, "promote")
    assert login(connection, "late@acme.com", encrypt_to=old).status_code == 302  # grace period
    assert login(connection, "early@acme.com", encrypt_to=new).status_code == 302

    rotate(api, connection, "retire")
    refused = login(connection, "late@acme.com", encrypt_to=old)
    assert refused.status_code == 400 and b"sso.assertion_invalid" in refused.content
    assert login(connection, "early@acme.com", encrypt_to=new).status_code == 302


def test_after_promotion_authn_requests_are_signed_with_the_new_key(api: Any, saml_connection: Any) -> None:
    connection = saml_connection(sign_authn_requests=True)
    old = pem(published(connection)["signing"][0])
    parse_authn_request(IDP, start(Client(), connection), sp_certificate=old, require_signature=True)

    rotate(api, connection, "stage")
    new = pem(published(connection)["signing"][1])
    # Staged keys are only published: requests are still signed with the current key.
    query = start(Client(), connection)
    parse_authn_request(IDP, query, sp_certificate=old, require_signature=True)
    with pytest.raises(SamlError):
        parse_authn_request(IDP, query, sp_certificate=new, require_signature=True)

    rotate(api, connection, "promote")
    query = start(Client(), connection)
    assert parse_authn_request(IDP, query, sp_certificate=new, require_signature=True).signed
    with pytest.raises(SamlError):
        parse_authn_request(IDP, query, sp_certificate=old, require_signature=True)


# CLI --------------------------------------------------------------------------------------------


@pytest.fixture
def configured(monkeypatch: Any) -> None:
    # The test process is already configured; the commands must not reconfigure Django.
    monkeypatch.setattr(cli.common, "_setup", lambda test_idp=False, **kw: None)


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["connection", "sp-keys", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_lifecycle_through_the_cli(configured: None, capsys: Any, saml_connection: Any) -> None:
    connection = saml_connection()
    cid = connection["id"]
    code, out, err = run(capsys, cid)
    assert code == 0 and out.splitlines()[0].split() == ["KEY", "USE", "NOT", "AFTER", "SHA-256", "FINGERPRINT"]
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [["current", "signing"], ["current", "encryption"]]
    assert f"vestibule connection sp-keys {cid} --stage" in err

    code, out, err = run(capsys, cid, "--stage")
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == ["current", "current", "next", "next"]
    assert "--promote" in err and connection["metadata_url"] in err
    assert len(published(connection)["encryption"]) == 2

    code, out, err = run(capsys, cid, "--stage")
    assert code == 1 and "already staged" in err

    code, out, err = run(capsys, cid, "--promote", "--json")
    status = json.loads(out)
    assert code == 0 and status["next"] is None and status["previous"]["encryption"]["sha256_fingerprint"]
    assert f"vestibule connection sp-keys {cid} --retire" in err

    code, out, _ = run(capsys, cid, "--retire")
    assert code == 0 and "previous" not in out
    events = AuditEvent.objects.filter(code__startswith="connection.sp_keys_").order_by("pk")
    assert [(e.code, e.detail.get("via")) for e in events] == [
        ("connection.sp_keys_staged", "cli"), ("connection.sp_keys_promoted", "cli"), ("connection.sp_keys_retired", "cli"),
    ]  # fmt: skip
    assert "PRIVATE KEY" not in out + err


def test_cli_refuses_oidc_and_unknown_connections(configured: None, capsys: Any, api: Any, make_account: Any) -> None:
    make_account("acme")
    oidc = api.post(
        "/api/v1/accounts/acme/connections",
        {
            "protocol": "oidc",
            "name": "Entra",
            "domains": ["acme.com"],
            "oidc": {"issuer": "https://login.example.test", "client_id": "x", "client_secret": "s3cret-value-0123"},
        },
    ).json()
    code, _, err = run(capsys, oidc["id"], "--stage")
    assert code == 1 and "OIDC connection" in err
    code, _, err = run(capsys, "not-a-uuid")
    assert code == 1 and "not a connection ID" in err
    with pytest.raises(SystemExit):
        run(capsys, oidc["id"], "--stage", "--promote")  # one step at a time


def test_cli_help_teaches_the_lifecycle(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        cli.main(["connection", "sp-keys", "--help"])
    out = capsys.readouterr().out
    for words in ("--stage", "--promote", "--retire", "--discard", "grace period", "metadata", "example:", "next:"):
        assert words in out
