"""Relying-party façade: one object per connection for the web layer.

``begin`` builds the authorization redirect (OIDC Core 1.0 §3.1.2.1);
``complete`` handles the authorization response (§3.1.2.5/§3.1.2.6), the code
exchange (§3.1.3), ID token validation (§3.1.3.7), optional UserInfo
(§5.3) and the tenant binding, returning a :class:`VerifiedLogin` or raising
an :class:`~.errors.OidcError`. The web layer keeps the
:class:`PendingAuthorization` server-side and deletes it before calling
``complete`` (single use); this module also compares ``state`` itself.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from .authorize import AuthorizationRequest, begin_authorization
from .config import OidcClientConfig
from .discovery import Cache, Clock, ProviderMetadata, discover
from .errors import CallbackInvalid, ProviderErrorResponse, StateInvalid, clip
from .id_token import validate_id_token
from .jwks import JwksClient
from .tenancy import setup_url, validate_tenant
from .token import exchange_code
from .userinfo import check_userinfo_subject, fetch_userinfo, merge_claims

__all__ = ["OidcRelyingParty", "PendingAuthorization", "VerifiedLogin"]


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """What the web layer stored at ``begin`` (from :class:`AuthorizationRequest`)."""

    state: str
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)
    redirect_uri: str


@dataclass(frozen=True, slots=True)
class VerifiedLogin:
    """A completed, fully validated login."""

    claims: dict[str, Any]
    id_token_claims: dict[str, Any]
    userinfo_claims: dict[str, Any] | None
    subject: str
    tenant_id: str | None


class OidcRelyingParty:
    """The OIDC authorization-code + PKCE relying party for one connection."""

    def __init__(
        self,
        config: OidcClientConfig,
        http: httpx.Client,
        cache: Cache,
        clock: Clock,
        *,
        jwks_min_refetch_interval: float = 60.0,
    ) -> None:
        self.config = config
        self._http = http
        self._cache = cache
        self._clock = clock
        self._refetch_interval = jwks_min_refetch_interval
        self._jwks: JwksClient | None = None

    def metadata(self) -> ProviderMetadata:
        return discover(self.config, http=self._http, cache=self._cache)

    def keys(self, metadata: ProviderMetadata) -> JwksClient:
        if self._jwks is None or self._jwks.jwks_uri != metadata.jwks_uri:
            self._jwks = JwksClient(
                metadata.issuer,
                metadata.jwks_uri,
                http=self._http,
                cache=self._cache,
                clock=self._clock,
                min_refetch_interval=self._refetch_interval,
            )
        return self._jwks

    def begin(self, redirect_uri: str, *, extra_params: Mapping[str, str] | None = None) -> AuthorizationRequest:
        return begin_authorization(self.config, self.metadata(), redirect_uri, extra_params=extra_params)

    def setup_url(self, redirect_uri: str) -> str | None:
        """Entra admin-consent URL for the "Setup URL" step, else ``None``."""
        return setup_url(self.config, self.metadata(), redirect_uri)

    def complete(
        self,
        callback_params: Mapping[str, str],
        pending: PendingAuthorization,
        learn_tenant: bool = False,
    ) -> VerifiedLogin:
        """Validate the callback and finish the login, or raise an ``OidcError``."""
        metadata = self.metadata()
        state = callback_params.get("state")
        # state first: an error= response for another attempt is not ours to report.
        if not isinstance(state, str) or not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise StateInvalid()
        error = callback_params.get("error")
        if error is not None:
            detail = callback_params.get("error_description")
            text = "The identity provider returned an error"
            raise ProviderErrorResponse(text + (f": {clip(detail, 160)}" if detail else "."), received=error)
        # RFC 9207: when the provider names itself, it must be the expected issuer
        # (mix-up defence). Templated (multi-tenant) issuers cannot be compared here.
        iss = callback_params.get("iss")
        if iss is not None and not metadata.is_issuer_template and iss != metadata.issuer:
            raise CallbackInvalid("The response names another issuer.", expected=metadata.issuer, received=iss)
        code = callback_params.get("code")
        if not code:
            raise CallbackInvalid("The login response carries no authorization code.")

        tokens = exchange_code(
            self.config,
            metadata,
            http=self._http,
            code=code,
            redirect_uri=pending.redirect_uri,
            code_verifier=pending.code_verifier,
            now=self._clock(),
        )
        id_claims = validate_id_token(
            tokens.id_token,
            config=self.config,
            metadata=metadata,
            keys=self.keys(metadata),
            nonce=pending.nonce,
            now=self._clock(),
            access_token=tokens.access_token,
            learn_tenant=learn_tenant,
        )
        tenant_id = validate_tenant(id_claims, config=self.config, metadata=metadata, learn_tenant=learn_tenant)
        userinfo: dict[str, Any] | None = None
        if self.config.use_userinfo:
            userinfo = fetch_userinfo(metadata.userinfo_endpoint, tokens.access_token, http=self._http)
            check_userinfo_subject(userinfo, id_claims)
        return VerifiedLogin(
            claims=merge_claims(id_claims, userinfo),
            id_token_claims=id_claims,
            userinfo_claims=userinfo,
            subject=id_claims["sub"],
            tenant_id=tenant_id,
        )
