"""Token endpoint: authorization-code exchange (OIDC Core 1.0 §3.1.3) and client
authentication (OIDC Core §9; RFC 6749 §2.3.1; RFC 7523 §2.2 / §3).

Supported ``token_endpoint_auth_method`` values:

* ``client_secret_basic`` — HTTP Basic with the client id and secret each
  ``application/x-www-form-urlencoded`` first (RFC 6749 §2.3.1), which many
  clients forget, breaking secrets that contain ``:``, ``%`` or ``+``;
* ``client_secret_post`` — id and secret in the form body;
* ``private_key_jwt`` — an RFC 7523 client assertion signed with joserfc:
  ``iss = sub = client_id``, ``aud`` = the token endpoint, a random ``jti``
  and a 60-second lifetime.

Failures raise :class:`~.errors.TokenEndpointError` with the provider's wire
``error`` code in ``received`` when it is one RFC 6749 §5.2 defines (else the
HTTP status); the secret, the tokens and the response's free text
(``error_description``) never appear.
"""

from __future__ import annotations

import base64
import json
import secrets
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from .discovery import request_failed
from .errors import FixIn, TokenEndpointError
from .keys import load_private_key

if TYPE_CHECKING:
    from .config import OidcClientConfig
    from .discovery import ProviderMetadata

__all__ = ["TokenResponse", "exchange_code", "client_assertion", "load_private_key", "basic_auth_header"]

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 60
_MAX_RESPONSE_BYTES = 256 * 1024
_EC_ALGS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
#: RFC 6749 §5.2 error codes: the only response text repeated to admins, being ours to name.
_WIRE_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    }
)


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """OIDC Core §3.1.3.3 successful token response (tokens hidden from repr)."""

    id_token: str = field(repr=False)
    access_token: str = field(repr=False)
    token_type: str
    expires_in: int | None = None
    scope: str | None = None
    refresh_token: str | None = field(default=None, repr=False)


def _assertion_alg(key: Key) -> str:
    if key.alg:
        return key.alg
    if isinstance(key, RSAKey):
        return "RS256"
    if isinstance(key, ECKey) and key.curve_name in _EC_ALGS:
        return _EC_ALGS[key.curve_name]
    if isinstance(key, OKPKey):
        return "EdDSA"
    raise ValueError("unsupported private key type")


def client_assertion(config: OidcClientConfig, audience: str, *, now: float, jti: str | None = None) -> str:
    """RFC 7523 §3 JWT client assertion for ``private_key_jwt``."""
    if config.private_key is None or config.private_key_id is None:
        raise TokenEndpointError("private_key_jwt needs a private key.", fix_in=FixIn.VESTIBULE)
    key = load_private_key(config.private_key)
    alg = _assertion_alg(key)
    issued = int(now)
    claims = {
        "iss": config.client_id,
        "sub": config.client_id,
        "aud": audience,
        "jti": jti or secrets.token_urlsafe(24),
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc's EdDSA naming notice
        return jwt.encode({"alg": alg, "kid": config.private_key_id, "typ": "JWT"}, claims, key, algorithms=[alg])


def basic_auth_header(client_id: str, client_secret: str) -> str:
    """RFC 6749 §2.3.1: form-urlencode id and secret, then HTTP Basic."""
    pair = f"{quote_plus(client_id, safe='')}:{quote_plus(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def _error_from(response: httpx.Response) -> TokenEndpointError:
    error: Any = None
    try:
        body = json.loads(response.content[:_MAX_RESPONSE_BYTES])
        if isinstance(body, dict):
            error = body.get("error")
    except (ValueError, RecursionError):
        pass
    fix_in = FixIn.VESTIBULE if error in ("invalid_client", "unauthorized_client") else FixIn.IDENTITY_PROVIDER
    received = error if isinstance(error, str) and error in _WIRE_ERRORS else response.status_code
    return TokenEndpointError(
        f"The token endpoint answered HTTP {response.status_code}.", received=received, fix_in=fix_in
    )


def exchange_code(
    config: OidcClientConfig,
    metadata: ProviderMetadata,
    *,
    http: httpx.Client,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    now: float,
) -> TokenResponse:
    """OIDC Core §3.1.3.1: redeem ``code`` with the PKCE verifier."""
    form: dict[str, str] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    headers = {"Accept": "application/json"}
    method = config.token_endpoint_auth_method
    if method == "client_secret_basic":
        assert config.client_secret is not None
        headers["Authorization"] = basic_auth_header(config.client_id, config.client_secret)
    elif method == "client_secret_post":
        assert config.client_secret is not None
        form["client_id"] = config.client_id
        form["client_secret"] = config.client_secret
    else:
        form["client_id"] = config.client_id
        form["client_assertion_type"] = CLIENT_ASSERTION_TYPE
        form["client_assertion"] = client_assertion(config, metadata.token_endpoint, now=now)
    try:
        response = http.post(metadata.token_endpoint, data=form, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise request_failed(TokenEndpointError, "The token endpoint", exc) from None
    if response.status_code != 200:
        raise _error_from(response)
    if len(response.content) > _MAX_RESPONSE_BYTES:
        raise TokenEndpointError("The token response is too large.")
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError):  # deep nesting overflows the decoder
        raise TokenEndpointError("The token response is not JSON.") from None
    if not isinstance(body, dict):
        raise TokenEndpointError("The token response is not a JSON object.")
    id_token, access_token = body.get("id_token"), body.get("access_token")
    if not isinstance(id_token, str) or not id_token:
        raise TokenEndpointError("The token response has no id_token; is 'openid' granted?")
    if not isinstance(access_token, str) or not access_token:
        raise TokenEndpointError("The token response has no access_token.")
    token_type = body.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise TokenEndpointError("The token response is not a Bearer token.", expected="Bearer")
    expires_in = body.get("expires_in")
    scope = body.get("scope")
    refresh = body.get("refresh_token")
    return TokenResponse(
        id_token=id_token,
        access_token=access_token,
        token_type=token_type,
        expires_in=expires_in if isinstance(expires_in, int) and not isinstance(expires_in, bool) else None,
        scope=scope if isinstance(scope, str) else None,
        refresh_token=refresh if isinstance(refresh, str) else None,
    )
