"""Test-only issuer that signs real ID tokens with real keys (no mocked crypto).

Keys are generated once per test session with joserfc; tokens are signed by
joserfc too, so every validation in the unit tests runs real signature
verification. Forged tokens for the attack tests are built by hand from these.
"""

from __future__ import annotations

import base64
import json
import time
import warnings
from functools import cache
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from vestibule.oidc import OidcClientConfig, ProviderMetadata

ISSUER = "https://idp.example.test"
CLIENT_ID = "vestibule-client"
CLIENT_SECRET = "s3cr3t:with%odd+chars"
NONCE = "n-0S6_WzA2Mj"
NOW = 1_760_000_000


@cache
def keys() -> dict[str, Key]:
    return {
        "RS256": RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"}),
        "ES256": ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig"}),
        "EdDSA": OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"}),
        "rotated": RSAKey.generate_key(2048, parameters={"kid": "rsa-2", "use": "sig"}),
    }


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwks(*names: str) -> dict[str, Any]:
    chosen = names or ("RS256", "ES256", "EdDSA")
    return {"keys": [keys()[n].as_dict(private=False) for n in chosen]}


def metadata(issuer: str = ISSUER) -> ProviderMetadata:
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=f"{ISSUER}/authorize",
        token_endpoint=f"{ISSUER}/token",
        jwks_uri=f"{ISSUER}/jwks",
        userinfo_endpoint=f"{ISSUER}/userinfo",
    )


def discovery_doc(issuer: str = ISSUER) -> dict[str, Any]:
    m = metadata(issuer)
    return {
        "issuer": issuer,
        "authorization_endpoint": m.authorization_endpoint,
        "token_endpoint": m.token_endpoint,
        "jwks_uri": m.jwks_uri,
        "userinfo_endpoint": m.userinfo_endpoint,
        "code_challenge_methods_supported": ["S256"],
    }


def config(**overrides: Any) -> OidcClientConfig:
    base: dict[str, Any] = {"issuer": ISSUER, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    base.update(overrides)
    return OidcClientConfig(**base)


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": CLIENT_ID,
        "exp": NOW + 300,
        "iat": NOW - 10,
        "nonce": NONCE,
        "email": "jane@example.com",
        "name": "Jane Doe",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def mint(
    payload: dict[str, Any] | None = None,
    *,
    alg: str = "RS256",
    key: str | None = None,
    header: dict[str, Any] | None = None,
) -> str:
    signing_key = keys()[key or alg]
    hdr: dict[str, Any] = {"alg": alg, "kid": signing_key.kid, "typ": "JWT"}
    hdr.update(header or {})
    hdr = {k: v for k, v in hdr.items() if v is not None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode(hdr, payload if payload is not None else claims(), signing_key, algorithms=[alg])


def jwks_transport(state: dict[str, Any]) -> httpx.MockTransport:
    """Serves discovery and ``state['jwks']``; counts JWKS fetches in ``state['jwks_hits']``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=discovery_doc())
        if request.url.path == "/jwks":
            state["jwks_hits"] = state.get("jwks_hits", 0) + 1
            return httpx.Response(200, json=state["jwks"])
        return httpx.Response(404)

    return httpx.MockTransport(handler)


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def wall_clock() -> float:
    return time.time()


def unsigned_json(obj: dict[str, Any]) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())
