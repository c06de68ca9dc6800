"""Interop: the full code + PKCE flow against panva/oidc-provider over real HTTP.

The provider runs as a Node process (``oidc_provider/server.mjs``); the
relying party talks to it with a real ``httpx.Client``; a second client plays
the browser, following redirects and cookies up to our redirect URI.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import pytest

from vestibule.oidc import InMemoryCache, OidcClientConfig, OidcRelyingParty, PendingAuthorization, TenantBinding
from vestibule.oidc.errors import OidcError

from .oidc_provider_fixture import REDIRECT_URI, SECRET_BASIC, SECRET_POST, InteropProvider, oidc_op

__all__ = ["oidc_op"]

pytestmark = pytest.mark.interop
SCOPES = ("openid", "email", "profile", "groups", "tenant")


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def make_rp(op: InteropProvider, http: httpx.Client, client_id: str = "rp-basic", **overrides: Any) -> OidcRelyingParty:
    settings: dict[str, Any] = {"issuer": op.issuer, "client_id": client_id, "scopes": SCOPES}
    if client_id in ("rp-basic", "rp-es256"):
        settings["client_secret"] = SECRET_BASIC
    elif client_id == "rp-post":
        settings.update(client_secret=SECRET_POST, token_endpoint_auth_method="client_secret_post")
    elif client_id == "rp-jwt":
        settings.update(
            token_endpoint_auth_method="private_key_jwt",
            private_key=json.dumps(op.rp_jwt_key.as_dict(private=True)),
            private_key_id="rp-jwt-1",
        )
    settings.update(overrides)
    return OidcRelyingParty(OidcClientConfig(**settings), http, InMemoryCache(time.time), time.time)


def browser_login(rp: OidcRelyingParty, login_hint: str) -> tuple[dict[str, str], PendingAuthorization]:
    request = rp.begin(REDIRECT_URI, extra_params={"login_hint": login_hint})
    pending = PendingAuthorization(request.state, request.nonce, request.code_verifier, REDIRECT_URI)
    url = request.url
    with httpx.Client(timeout=10, follow_redirects=False) as browser:
        for _ in range(20):
            response = browser.get(url)
            if response.status_code not in (302, 303):
                raise AssertionError(f"unexpected {response.status_code} at {url}: {response.text[:500]}")
            url = urljoin(url, response.headers["location"])
            if url.startswith(REDIRECT_URI):
                return dict(parse_qsl(urlsplit(url).query)), pending
    raise AssertionError("too many redirects")


def login(rp: OidcRelyingParty, login_hint: str = "alice", **kwargs: Any) -> Any:
    params, pending = browser_login(rp, login_hint)
    return rp.complete(params, pending, **kwargs)


@pytest.mark.parametrize("client_id", ["rp-basic", "rp-post", "rp-jwt", "rp-es256"])
def test_login_with_each_client_auth_method(oidc_op: InteropProvider, http: httpx.Client, client_id: str) -> None:
    result = login(make_rp(oidc_op, http, client_id))
    assert result.subject == "alice"
    assert result.claims["email"] == "alice@tenant-a.example"
    assert result.id_token_claims["iss"] == oidc_op.issuer


def test_userinfo_merge_adds_groups_but_not_protected_claims(oidc_op: InteropProvider, http: httpx.Client) -> None:
    result = login(make_rp(oidc_op, http, use_userinfo=True))
    assert result.userinfo_claims is not None and result.userinfo_claims["sub"] == "alice"
    assert "groups" not in result.id_token_claims
    assert result.claims["groups"] == ["admins", "staff"]
    assert result.claims["name"] == "Alice A"
    assert result.claims["aud"] == result.id_token_claims["aud"]


def test_callback_state_mismatch_is_refused(oidc_op: InteropProvider, http: httpx.Client) -> None:
    rp = make_rp(oidc_op, http)
    params, pending = browser_login(rp, "alice")
    other = PendingAuthorization("other-state", pending.nonce, pending.code_verifier, REDIRECT_URI)
    with pytest.raises(OidcError) as info:
        rp.complete(params, other)
    assert info.value.code == "oidc.state_invalid"


def test_wrong_client_secret_reports_provider_error_code(oidc_op: InteropProvider, http: httpx.Client) -> None:
    rp = make_rp(oidc_op, http, client_secret="wrong-secret")
    with pytest.raises(OidcError) as info:
        login(rp)
    assert info.value.code == "oidc.token_endpoint_error"
    assert info.value.received == "invalid_client"
    assert "wrong-secret" not in str(info.value)


def test_tenant_binding_accepts_bound_and_refuses_other_tenant(oidc_op: InteropProvider, http: httpx.Client) -> None:
    binding = TenantBinding(kind="claim", claim="tid", tenant_id="tenant-a")
    rp = make_rp(oidc_op, http, tenant_binding=binding)
    assert login(rp, "alice").tenant_id == "tenant-a"
    with pytest.raises(OidcError) as info:
        login(rp, "bob")
    assert info.value.code == "oidc.tenant_mismatch"
    assert info.value.expected == "tenant-a" and info.value.received == "tenant-b"


def test_unbound_tenant_refuses_login_but_connect_organization_learns_it(
    oidc_op: InteropProvider, http: httpx.Client
) -> None:
    rp = make_rp(oidc_op, http, tenant_binding=TenantBinding(kind="claim", claim="tid"))
    with pytest.raises(OidcError) as info:
        login(rp, "bob")
    assert info.value.code == "oidc.tenant_mismatch"
    assert login(rp, "bob", learn_tenant=True).tenant_id == "tenant-b"


def test_key_rotation_triggers_one_jwks_refetch(oidc_op: InteropProvider, http: httpx.Client) -> None:
    # Other tests are unaffected: a fresh relying party simply fetches the new set.
    rp = make_rp(oidc_op, http)
    first = login(rp)
    jwks = rp.keys(rp.metadata())
    assert jwks.fetch_count == 1
    oidc_op.rotate_keys()
    second = login(rp)
    assert second.subject == first.subject
    assert jwks.fetch_count == 2  # unknown kid op-rsa-2 -> exactly one refetch
    kids = [k.kid for k in jwks.current()]
    assert kids[0] == "op-rsa-2"
