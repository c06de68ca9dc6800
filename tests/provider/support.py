"""Helpers for the OpenID Provider tests: an application, PKCE, and a code flow through the Django test client."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.test import Client
from joserfc import jwt
from joserfc.jwk import KeySet

REDIRECT_URI = "https://app.example/callback"
LOGOUT_URI = "https://app.example/signed-out"


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


def authorize_url(
    client_id: str, pkce: Pkce | None, *, scope: str = "openid email profile", **extra: str | None
) -> str:
    """The authorization request's URL; an ``extra`` of None leaves that parameter out (``nonce=None``)."""
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
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


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


# --- a signed-in browser and a whole code flow ------------------------------------------------


def sign_in(client: Client, email: str, password: str | None = None) -> None:
    """A password sign-in of ``client`` (no ``next``): the browser holds a Vestibule session afterwards."""
    from tests.conftest import PASSWORD, password_login

    done = password_login(client, email, password or PASSWORD)
    assert done.status_code == 302, (done.status_code, done.content[:500])
    assert client.get("/api/v1/session").status_code == 200


def query_of(response: Any) -> dict[str, str]:
    """The query parameters of a redirect's Location (one value each)."""
    assert response.status_code == 302, (response.status_code, response.content[:500])
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query, keep_blank_values=True).items()}


def tokens(
    client: Client,
    app: Any,
    secret: str | None,
    *,
    scope: str = "openid email profile",
    pkce: Pkce | None = None,
    **extra: str,
) -> dict[str, Any]:
    """Authorize with an already signed-in ``client`` and redeem the code: the token response's JSON."""
    pkce = pkce or Pkce.make()
    code = code_from(client.get(authorize_url(app.client_id, pkce, scope=scope, **extra)))
    response = exchange(client, app, secret, code, pkce.verifier)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def id_claims(client: Client, id_token: str) -> dict[str, Any]:
    """The ID token's claims, its signature verified with the published JWKS (as a relying party does)."""
    keys = KeySet.import_key_set(client.get("/oauth/jwks").json())
    return dict(jwt.decode(id_token, keys, algorithms=["RS256", "ES256"]).claims)


def id_header(id_token: str) -> dict[str, Any]:
    head = id_token.split(".", 1)[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return decoded


def userinfo(client: Client, access_token: str) -> Any:
    return client.get("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {access_token}")


def issued() -> tuple[int, int, int, int]:
    """Codes, sign-ins, access tokens and refresh tokens in the database: what a refused request must not add."""
    from vestibule.provider.models import AccessToken, Authorization, Grant, RefreshToken

    return (
        Grant.objects.count(),
        Authorization.objects.count(),
        AccessToken.objects.count(),
        RefreshToken.objects.count(),
    )


# --- identity providers (a real SAML IdP, pysaml2, as the end-to-end tests use) -------------------


def saml_connection(
    operator_key: str, account: str, domains: tuple[str, ...], *, name: str = "SAML IdP", **fields: Any
) -> dict[str, Any]:
    """An enabled SAML connection of ``account`` made through the admin API (the SP keys are real)."""
    from tests.e2e.drivers.saml_driver import SamlDriver

    api = Client(headers={"Authorization": f"Bearer {operator_key}"})
    payload = {"protocol": "saml", "name": name, "domains": list(domains), **SamlDriver().connection_settings()}
    payload.update(fields)
    made = api.post(f"/api/v1/accounts/{account}/connections", json.dumps(payload), content_type="application/json")
    assert made.status_code == 201, made.content
    enabled = api.patch(
        f"/api/v1/connections/{made.json()['id']}", json.dumps({"enabled": True}), content_type="application/json"
    )
    assert enabled.status_code == 200, enabled.content
    connection: dict[str, Any] = enabled.json()
    return connection


def share_domain(operator_key: str, owner: str, domain: str, with_account: str) -> None:
    api = Client(headers={"Authorization": f"Bearer {operator_key}"})
    shared = api.post(
        f"/api/v1/accounts/{owner}/domains/{domain}/shares",
        json.dumps({"account": with_account}),
        content_type="application/json",
    )
    assert shared.status_code in (200, 201), shared.content


def sso_login(browser: Client, connection: dict[str, Any], email: str, *, next_url: str | None = None) -> Any:
    """Sign ``browser`` in through the connection's IdP (SP-initiated); returns Vestibule's ACS response."""
    from tests.e2e.drivers.saml_driver import SamlDriver

    return SamlDriver().login(
        browser, connection, subject=email, claims={"email": email, "name": "Test Person"}, next=next_url
    )
