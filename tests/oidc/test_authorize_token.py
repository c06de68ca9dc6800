"""Authorization request (PKCE S256) and token endpoint client authentication."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import httpx
import pytest
from joserfc import jwt

from vestibule.oidc import OidcConfigError, begin_authorization, exchange_code
from vestibule.oidc.errors import OidcError

from . import fake_issuer as fi


def test_authorization_url_has_pkce_state_nonce() -> None:
    req = begin_authorization(fi.config(), fi.metadata(), "https://sp.example/cb", extra_params={"prompt": "login"})
    query = {k: v[0] for k, v in parse_qs(urlsplit(req.url).query).items()}
    assert query["response_type"] == "code" and query["scope"] == "openid email profile"
    assert query["state"] == req.state and query["nonce"] == req.nonce and query["prompt"] == "login"
    assert query["code_challenge_method"] == "S256"
    want = base64.urlsafe_b64encode(hashlib.sha256(req.code_verifier.encode()).digest()).rstrip(b"=").decode()
    assert query["code_challenge"] == want
    assert 43 <= len(req.code_verifier) <= 128
    other = begin_authorization(fi.config(), fi.metadata(), "https://sp.example/cb")
    assert len({req.state, other.state, req.nonce, other.nonce}) == 4
    assert req.code_verifier not in repr(req)  # the nonce travels in the URL anyway


def test_extra_params_cannot_override_protocol_params() -> None:
    with pytest.raises(OidcConfigError) as info:
        begin_authorization(fi.config(), fi.metadata(), "https://sp.example/cb", extra_params={"state": "x"})
    assert info.value.field == "extra_params"


def test_redirect_uri_must_be_https() -> None:
    with pytest.raises(OidcConfigError):
        begin_authorization(fi.config(), fi.metadata(), "http://sp.example/cb")


def _token_server(seen: list[httpx.Request], status: int = 200, body: dict[str, Any] | None = None) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body or {"id_token": "a.b.c", "access_token": "at", "token_type": "Bearer"})

    return httpx.Client(transport=httpx.MockTransport(handler))


def _exchange(cfg: Any, http: httpx.Client) -> Any:
    return exchange_code(
        cfg,
        fi.metadata(),
        http=http,
        code="the-code",
        redirect_uri="https://sp.example/cb",
        code_verifier="v" * 50,
        now=fi.NOW,
    )


def test_client_secret_basic_form_urlencodes_credentials() -> None:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding."""
    seen: list[httpx.Request] = []
    _exchange(fi.config(client_id="id:with space"), _token_server(seen))
    auth = seen[0].headers["authorization"]
    user, _, password = base64.b64decode(auth.split()[1]).decode().partition(":")
    assert user == "id%3Awith+space" and unquote_plus(user) == "id:with space"
    assert password == "s3cr3t%3Awith%25odd%2Bchars" and unquote_plus(password) == fi.CLIENT_SECRET
    form = parse_qs(seen[0].content.decode())
    assert "client_secret" not in form and form["code_verifier"] == ["v" * 50]


def test_client_secret_post_puts_credentials_in_body() -> None:
    seen: list[httpx.Request] = []
    _exchange(fi.config(token_endpoint_auth_method="client_secret_post"), _token_server(seen))
    form = parse_qs(seen[0].content.decode())
    assert form["client_secret"] == [fi.CLIENT_SECRET] and "authorization" not in seen[0].headers


def test_private_key_jwt_assertion_claims() -> None:
    """RFC 7523 §3: iss = sub = client_id, aud = token endpoint, jti, short exp."""
    seen: list[httpx.Request] = []
    key = fi.keys()["ES256"]
    cfg = fi.config(
        client_secret=None,
        token_endpoint_auth_method="private_key_jwt",
        private_key=json.dumps(key.as_dict(private=True)),
        private_key_id="ec-1",
    )
    _exchange(cfg, _token_server(seen))
    form = {k: v[0] for k, v in parse_qs(seen[0].content.decode()).items()}
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    token = jwt.decode(form["client_assertion"], key, algorithms=["ES256"])
    assert token.header["kid"] == "ec-1" and token.header["alg"] == "ES256"
    c = token.claims
    assert c["iss"] == c["sub"] == fi.CLIENT_ID and c["aud"] == f"{fi.ISSUER}/token"
    assert c["exp"] - c["iat"] == 60 and len(c["jti"]) >= 16


def test_token_error_reports_wire_code_without_secret() -> None:
    seen: list[httpx.Request] = []
    http = _token_server(seen, 400, {"error": "invalid_grant", "error_description": "code expired"})
    with pytest.raises(OidcError) as info:
        _exchange(fi.config(), http)
    err = info.value
    assert err.code == "oidc.token_endpoint_error" and err.received == "invalid_grant"
    assert fi.CLIENT_SECRET not in str(err)


@pytest.mark.parametrize(
    "body",
    [{"access_token": "at", "token_type": "Bearer"}, {"id_token": "a.b.c", "access_token": "at", "token_type": "mac"}],
)
def test_token_response_must_have_id_token_and_bearer(body: dict[str, Any]) -> None:
    with pytest.raises(OidcError) as info:
        _exchange(fi.config(), _token_server([], 200, body))
    assert info.value.code == "oidc.token_endpoint_error"
