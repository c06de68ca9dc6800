"""Helpers for the OpenID Provider tests: an application, PKCE, and a code flow through the Django test client."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.test import Client

REDIRECT_URI = "https://app.example/callback"


@dataclass
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def make(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        return cls(verifier, challenge)


def register_app(**fields: Any) -> tuple[Any, str | None]:
    from vestibule.provider.applications import register

    fields.setdefault("name", "Example App")
    fields.setdefault("redirect_uris", [REDIRECT_URI])
    done = register(**fields)
    return done.application, done.client_secret


def authorize_url(client_id: str, pkce: Pkce | None, *, scope: str = "openid email profile", **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": "st-" + secrets.token_hex(4),
        "nonce": "n-" + secrets.token_hex(4),
        **extra,
    }
    if pkce is not None:
        params.update(code_challenge=pkce.challenge, code_challenge_method="S256")
    return "/oauth/authorize?" + urlencode(params)


def code_from(response: Any) -> str:
    assert response.status_code == 302, (response.status_code, response.content[:500])
    location = response["Location"]
    assert location.startswith(REDIRECT_URI), location
    query = parse_qs(urlsplit(location).query)
    assert "code" in query, location
    return query["code"][0]


def exchange(client: Client, app: Any, secret: str | None, code: str, verifier: str | None) -> Any:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "client_id": app.client_id}
    if verifier is not None:
        data["code_verifier"] = verifier
    if secret:
        data["client_secret"] = secret
    return client.post("/oauth/token", data)


def refresh(client: Client, app: Any, secret: str | None, refresh_token: str) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": app.client_id}
    if secret:
        data["client_secret"] = secret
    return client.post("/oauth/token", data)
