"""The connections API for OIDC settings: clear 422s naming ``oidc.<field>``, secret rotation and clearing."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.e2e.drivers.oidc_driver import make_oidc_driver
from tests.e2e.oidc_support import claims_of, oidc, oidc_connection
from vestibule.connections.keys import read_secrets
from vestibule.connections.models import Connection

__all__ = ["oidc", "oidc_connection"]

pytestmark = pytest.mark.django_db

GOOD = {"issuer": "https://op.example.com", "client_id": "vestibule", "client_secret": "s3cret"}

BAD: list[tuple[str, dict[str, Any], str]] = [
    ("issuer_not_url", {"issuer": "not a url"}, "oidc.issuer"),
    ("issuer_ftp", {"issuer": "ftp://op.example.com"}, "oidc.issuer"),
    ("issuer_plain_http", {"issuer": "http://op.example.com"}, "oidc.issuer"),
    ("issuer_query", {"issuer": "https://op.example.com/?tenant=x"}, "oidc.issuer"),
    ("issuer_number", {"issuer": 42}, "oidc.issuer"),
    ("unknown_setting", {"redirect_uri": "https://evil.example/cb"}, "oidc.redirect_uri"),
    ("client_id_empty", {"client_id": ""}, "oidc.client_id"),
    ("alg_none", {"allowed_algs": ["none"]}, "oidc.allowed_algs"),
    ("alg_hs256", {"allowed_algs": ["HS256"]}, "oidc.allowed_algs"),
    ("alg_hs256_among_others", {"allowed_algs": ["RS256", "HS256"]}, "oidc.allowed_algs"),
    ("algs_string", {"allowed_algs": "RS256"}, "oidc.allowed_algs"),
    ("algs_empty", {"allowed_algs": []}, "oidc.allowed_algs"),
    ("scopes_without_openid", {"scopes": ["email"]}, "oidc.scopes"),
    ("auth_method_none", {"token_endpoint_auth_method": "none"}, "oidc.token_endpoint_auth_method"),
    ("secret_number", {"client_secret": 12345}, "oidc.client_secret"),
    (
        "private_key_missing",
        {"token_endpoint_auth_method": "private_key_jwt", "private_key_id": "k"},
        "oidc.private_key",
    ),
    (
        "private_key_garbage",
        {
            "token_endpoint_auth_method": "private_key_jwt",
            "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            "private_key_id": "k",
        },
        "oidc.private_key",
    ),
    ("skew_too_large", {"clock_skew_seconds": 3600}, "oidc.clock_skew_seconds"),
    ("tenant_kind_unknown", {"tenant_binding": {"kind": "ldap"}}, "oidc.tenant_binding.kind"),
    ("tenant_claim_missing", {"tenant_binding": {"kind": "claim"}}, "oidc.tenant_binding.claim"),
    ("tenant_binding_string", {"tenant_binding": "tenant-a"}, "oidc.tenant_binding"),
    ("userinfo_not_bool", {"use_userinfo": "yes"}, "oidc.use_userinfo"),
]


def create(api, oidc: Any, expect: int, account: str = "acme") -> Any:
    payload = {"protocol": "oidc", "name": "OP", "domains": ["acme.com"], "oidc": oidc}
    return api.post(f"/accounts/{account}/connections", payload, expect=expect)


@pytest.mark.parametrize(("case", "change", "field"), BAD, ids=[c for c, _, _ in BAD])
def test_create_rejects_bad_oidc_settings(api, make_account, case, change, field):
    make_account("acme")
    body = create(api, {**GOOD, **change}, 422).json()
    assert body["field"] == field, body
    assert not Connection.objects.exists()


def test_create_rejects_missing_client_id_and_missing_settings(api, make_account):
    make_account("acme")
    assert create(api, {"issuer": GOOD["issuer"], "client_secret": "x"}, 422).json()["field"] == "oidc.client_id"
    assert create(api, {"client_id": "x", "client_secret": "x"}, 422).json()["field"] == "oidc.issuer"
    assert create(api, None, 422).json()["field"] == "oidc"
    assert create(api, {}, 422).json()["field"] == "oidc"
    assert create(api, "issuer=https://op.example.com", 422).status_code == 422


@pytest.mark.parametrize(("case", "change", "field"), BAD[:12:3], ids=[c for c, _, _ in BAD[:12:3]])
def test_patch_rejects_bad_oidc_settings_and_changes_nothing(api, make_account, case, change, field):
    make_account("acme")
    connection = create(api, GOOD, 201).json()
    body = api.patch(f"/connections/{connection['id']}", {"oidc": change}, expect=422).json()
    assert body["field"] == field, body
    assert api.get(f"/connections/{connection['id']}")["oidc"] == connection["oidc"]


def test_patch_with_a_new_secret_rotates_it(api, oidc, oidc_connection):
    connection = oidc_connection(oidc, oidc={"client_secret": "stale-secret"})
    refused = oidc.login(Client(), connection, subject="u-rot", claims=claims_of("kim@acme.com"))
    assert refused.status_code == 400 and b"oidc.token_endpoint_error" in refused.content
    patched = api.patch(f"/connections/{connection['id']}", {"oidc": {"client_secret": oidc.client_secret}}).json()
    assert patched["oidc"]["client_secret_set"] is True and "client_secret" not in patched["oidc"]
    assert read_secrets(Connection.objects.get(pk=connection["id"]))["client_secret"] == oidc.client_secret
    assert oidc.login(Client(), connection, subject="u-rot", claims=claims_of("kim@acme.com")).status_code == 302
    # A PATCH that does not mention the secret keeps it.
    api.patch(f"/connections/{connection['id']}", {"oidc": {"use_userinfo": True}, "name": "Renamed"})
    assert oidc.login(Client(), connection, subject="u-rot", claims=claims_of("kim@acme.com")).status_code == 302


def test_null_client_secret_clears_it(request, api, oidc, oidc_connection):
    connection = oidc_connection(oidc)
    url = f"/connections/{connection['id']}"
    # The only credential of a client_secret_basic connection cannot be cleared alone.
    assert api.patch(url, {"oidc": {"client_secret": None}}, expect=422).json()["field"] == "oidc.client_secret"
    jwt = make_oidc_driver(request, auth_method="private_key_jwt")
    switch = {**jwt.connection_settings()["oidc"], "client_secret": None}
    patched = api.patch(url, {"oidc": switch}).json()
    assert patched["oidc"]["client_secret_set"] is False and patched["oidc"]["private_key_set"] is True
    assert "client_secret" not in read_secrets(Connection.objects.get(pk=connection["id"]))
    assert jwt.login(Client(), patched, subject="u-jwt", claims=claims_of("lee@acme.com")).status_code == 302


def test_unreachable_issuer_is_a_clear_refusal_not_a_500(api, make_account):
    make_account("acme")
    connection = create(api, {**GOOD, "issuer": "http://127.0.0.1:9"}, 201).json()
    api.patch(f"/connections/{connection['id']}", {"enabled": True})
    response = Client().get(f"/sso/start/{connection['id']}")
    assert response.status_code == 403 and b"sso.connection_misconfigured" in response.content
    assert b"oidc.discovery_failed" in response.content
    body = api.get(f"/connections/{connection['id']}/oidc/setup-url", expect=502)
    assert body["field"] == "oidc"
