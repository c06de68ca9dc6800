"""OidcRelyingParty façade against an in-process fake provider (MockTransport)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from vestibule.oidc import InMemoryCache, OidcRelyingParty, PendingAuthorization, VerifiedLogin
from vestibule.oidc.errors import OidcError
from vestibule.oidc.id_token import access_token_hash

from . import fake_issuer as fi

REDIRECT = "https://sp.example/cb"


class FakeProvider:
    def __init__(self) -> None:
        self.userinfo: dict[str, Any] = {"sub": "248289761001", "groups": ["g1"], "email": "other@x", "tid": "evil"}
        self.nonce = ""

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=fi.discovery_doc())
        if path == "/jwks":
            return httpx.Response(200, json=fi.jwks())
        if path == "/token":
            at = "access-token-1"
            token = fi.mint(fi.claims(nonce=self.nonce, at_hash=access_token_hash(at, "RS256")))
            return httpx.Response(200, json={"id_token": token, "access_token": at, "token_type": "Bearer"})
        if path == "/userinfo":
            assert request.headers["authorization"] == "Bearer access-token-1"
            return httpx.Response(200, json=self.userinfo)
        return httpx.Response(404)


def setup(**cfg: Any) -> tuple[OidcRelyingParty, FakeProvider, PendingAuthorization]:
    op = FakeProvider()
    clock = fi.FakeClock()
    rp = OidcRelyingParty(
        fi.config(**cfg), httpx.Client(transport=httpx.MockTransport(op.handler)), InMemoryCache(clock), clock
    )
    req = rp.begin(REDIRECT)
    op.nonce = parse_qs(urlsplit(req.url).query)["nonce"][0]
    return rp, op, PendingAuthorization(req.state, req.nonce, req.code_verifier, REDIRECT)


def test_complete_login_with_userinfo_merge() -> None:
    rp, _, pending = setup(use_userinfo=True)
    result = rp.complete({"code": "c", "state": pending.state, "iss": fi.ISSUER}, pending)
    assert isinstance(result, VerifiedLogin) and result.subject == "248289761001"
    assert result.claims["groups"] == ["g1"]  # added by UserInfo
    assert result.claims["email"] == "jane@example.com"  # ID token wins
    assert "tid" not in result.claims  # protected claims never come from UserInfo
    assert result.tenant_id is None


def test_userinfo_subject_mismatch() -> None:
    rp, op, pending = setup(use_userinfo=True)
    op.userinfo = {"sub": "someone-else"}
    with pytest.raises(OidcError) as info:
        rp.complete({"code": "c", "state": pending.state}, pending)
    assert info.value.code == "oidc.userinfo_sub_mismatch"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"state": "{state}", "error": "access_denied", "error_description": "user cancelled"}, "oidc.provider_error"),
        ({"code": "c", "state": "forged"}, "oidc.state_invalid"),
        ({"code": "c"}, "oidc.state_invalid"),
        ({"error": "access_denied"}, "oidc.state_invalid"),  # an error for another attempt is not ours
        ({"state": "{state}"}, "oidc.callback_invalid"),
        ({"state": "{state}", "code": "c", "iss": "https://evil.example"}, "oidc.callback_invalid"),
    ],
)
def test_callback_failures(params: dict[str, str], code: str) -> None:
    rp, _, pending = setup()
    params = {k: (pending.state if v == "{state}" else v) for k, v in params.items()}
    with pytest.raises(OidcError) as info:
        rp.complete(params, pending)
    assert info.value.code == code
    if code == "oidc.provider_error":
        assert info.value.received == "access_denied"


def test_error_page_payload_is_json_ready() -> None:
    rp, _, pending = setup()
    with pytest.raises(OidcError) as info:
        rp.complete({"state": pending.state, "error": "access_denied"}, pending)
    payload = info.value.to_dict()
    assert json.loads(json.dumps(payload))["fix_in"] == "identity_provider"
