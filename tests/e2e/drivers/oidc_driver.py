"""The OIDC end-to-end driver (see tests/e2e/conftest.py for the interface).

The peer is the real panva/oidc-provider (``tests/interop/oidc_provider``),
one process per test session, started through the interop launcher. Each
driver registers its own client there (lazily, once it knows the
connection's redirect URI), and sets the claims of the account it logs in
as, so tests may assert any JSON claims (nested objects, lists, ``tid``).

Flow of :meth:`OidcDriver.login`: the Django test client GETs
``/sso/start/<id>``; Vestibule redirects to the provider's authorization
endpoint; an ``httpx`` client (its own cookie jar, i.e. the user's browser at
the provider) follows it through the provider's automatic login
(``login_hint`` = subject) and consent until the provider redirects to
``http://localhost/sso/oidc/<id>/callback``; that path and query go back to
the Django test client. Vestibule itself talks to the provider over real
HTTP (discovery, token endpoint, JWKS, UserInfo).
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import pytest
from django.core.cache import cache
from django.test import Client
from joserfc.jwk import Key, RSAKey

from tests.interop.oidc_provider_fixture import ProviderProcess, launch_provider

SCOPE = "vestibule"  # the provider's scope whose claim list grows with the claims tests use
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")


@dataclass
class SessionProvider:
    """The session's provider process and its current signing keys (newest first)."""

    server: ProviderProcess
    signing_keys: list[Key]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return self.server.issuer

    def rotate(self) -> Key:
        """Publish a new signing key first (old keys stay published); returns it."""
        key = RSAKey.generate_key(2048, parameters={"kid": f"op-{secrets.token_hex(4)}", "use": "sig", "alg": "RS256"})
        self.signing_keys.insert(0, key)
        self.server.rotate_keys({"keys": [k.as_dict(private=True) for k in self.signing_keys]})
        return key

    def requests(self, path: str) -> int:
        return self.server.request_counts().get(path, 0)


_STASH = pytest.StashKey[SessionProvider]()


def session_provider(request: pytest.FixtureRequest) -> SessionProvider:
    """Start the provider on first use; it stops when the test session ends."""
    config = request.config
    if _STASH in config.stash:
        return config.stash[_STASH]
    key = RSAKey.generate_key(2048, parameters={"kid": "op-rsa-e2e-1", "use": "sig", "alg": "RS256"})
    settings = {
        "clients": [],
        "accounts": {},
        "jwks": {"keys": [key.as_dict(private=True)]},
        "claims": {"openid": ["sub"], SCOPE: []},
        "dynamic_scope": SCOPE,
    }
    launcher = launch_provider(settings, Path(tempfile.mkdtemp(prefix="vestibule-e2e-op-")))
    server = launcher.__enter__()
    config.add_cleanup(lambda: launcher.__exit__(None, None, None))
    provider = SessionProvider(server, [key])
    provider.metadata = httpx.get(f"{server.issuer}/.well-known/openid-configuration", timeout=5).json()
    config.stash[_STASH] = provider
    return provider


def forget_provider_cache(provider: SessionProvider) -> None:
    """Drop Vestibule's cached discovery document and JWKS for the session's issuer.

    The cache (LocMem in tests) outlives a test, and a test that rotated keys
    also leaves the JWKS refetch rate limit armed; every test starts cold.
    Key names as in vestibule.oidc.discovery / jwks, under signin.adapters' prefix.
    """
    issuer = provider.issuer
    cache.delete_many([
        f"oidc:vestibule.oidc.discovery:{issuer}",
        f"oidc:vestibule.oidc.jwks:{issuer}|{provider.metadata['jwks_uri']}",
        f"oidc:vestibule.oidc.jwks_refetch:{issuer}",
    ])  # fmt: skip


class OidcDriver:
    """One client registration at the session's oidc-provider."""

    protocol = "oidc"

    def __init__(self, provider: SessionProvider, *, auth_method: str = "client_secret_basic") -> None:
        assert auth_method in AUTH_METHODS, auth_method
        self.provider = provider
        self.auth_method = auth_method
        self.client_id = f"e2e-{secrets.token_hex(6)}"
        self.client_secret: str | None = None
        self.client_key: Key | None = None
        if auth_method == "private_key_jwt":
            self.client_key = RSAKey.generate_key(2048, parameters={"kid": f"rp-{secrets.token_hex(4)}"})
        else:
            self.client_secret = "e2e-secret-" + secrets.token_urlsafe(18)
        self._redirect_uris: list[str] = []

    @property
    def issuer(self) -> str:
        return self.provider.issuer

    def connection_settings(self, **overrides: Any) -> dict[str, Any]:
        oidc: dict[str, Any] = {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "token_endpoint_auth_method": self.auth_method,
            "scopes": ["openid", SCOPE],
        }
        if self.client_key is not None:
            oidc["private_key"] = self.client_key.as_pem(private=True).decode()
            oidc["private_key_id"] = self.client_key.kid
        else:
            oidc["client_secret"] = self.client_secret
        oidc.update(overrides)
        return {"oidc": oidc}

    # Provider side ----------------------------------------------------------

    def register(self, redirect_uri: str) -> None:
        """Register (or extend) this driver's client with ``redirect_uri`` at the provider."""
        if redirect_uri in self._redirect_uris:
            return
        self._redirect_uris.append(redirect_uri)
        client: dict[str, Any] = {
            "client_id": self.client_id,
            "redirect_uris": self._redirect_uris,
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": self.auth_method,
        }
        if self.client_key is not None:
            client["jwks"] = {"keys": [self.client_key.as_dict(private=False)]}
        else:
            client["client_secret"] = self.client_secret
        self.provider.server.admin("PUT", "clients", client)

    def set_account(self, subject: str, claims: dict[str, Any], userinfo_claims: dict[str, Any] | None = None) -> None:
        """The claims the provider asserts for ``subject``: ID token and UserInfo, plus UserInfo-only ones."""
        self.provider.server.admin(
            "PUT", "accounts", {"id": subject, "claims": claims, "userinfo": userinfo_claims or {}}
        )

    def authorize(
        self,
        redirect: Any,
        connection: dict[str, Any],
        *,
        subject: str,
        claims: dict[str, Any],
        userinfo_claims: dict[str, Any] | None = None,
    ) -> str:
        """Play the user at the provider: from Vestibule's redirect to the callback path + query.

        ``redirect`` is Vestibule's 302 response (or its Location). The user
        "types" ``subject`` at the provider, modelled as ``login_hint``.
        """
        location = redirect if isinstance(redirect, str) else redirect["Location"]
        assert location.startswith(self.issuer + "/"), f"Vestibule did not redirect to the provider: {location}"
        callback = connection["redirect_uri"]
        self.register(callback)
        self.set_account(subject, claims, userinfo_claims)
        parts = urlsplit(location)
        query = {**dict(parse_qsl(parts.query)), "login_hint": subject}
        url = urlunsplit(parts._replace(query=urlencode(query)))
        with httpx.Client(timeout=10, follow_redirects=False) as user_agent:
            for _ in range(20):
                response = user_agent.get(url)
                if response.status_code not in (302, 303):
                    raise AssertionError(f"provider answered {response.status_code} at {url}: {response.text[:500]}")
                url = urljoin(url, response.headers["location"])
                if url.startswith(callback + "?"):
                    rest = urlsplit(url)
                    return f"{rest.path}?{rest.query}"
        raise AssertionError("too many redirects at the provider")

    # Interface ----------------------------------------------------------------

    def login(
        self,
        browser: Client,
        connection: dict[str, Any],
        *,
        subject: str,
        claims: dict[str, Any],
        next: str | None = None,
        userinfo_claims: dict[str, Any] | None = None,
    ) -> Any:
        start = urlsplit(connection["sign_in_url"]).path + (f"?{urlencode({'next': next})}" if next else "")
        response = browser.get(start)
        if response.status_code != 302:
            return response
        callback = self.authorize(response, connection, subject=subject, claims=claims, userinfo_claims=userinfo_claims)
        return browser.get(callback)


def make_oidc_driver(request: pytest.FixtureRequest, *, auth_method: str = "client_secret_basic") -> OidcDriver:
    provider = session_provider(request)
    forget_provider_cache(provider)
    return OidcDriver(provider, auth_method=auth_method)
