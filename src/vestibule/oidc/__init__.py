"""OpenID Connect relying party (OpenID Connect Core 1.0, Discovery 1.0, RFC 7636, RFC 7523).

Plain Python: no Django imports (enforced by ``tests/oidc/test_no_django.py``).
The web layer passes plain settings (:class:`OidcClientConfig`), an
``httpx.Client``, a :class:`Cache` and a clock, and maps :class:`OidcError`
codes to audit events and error pages.
"""

from .authorize import AuthorizationRequest, begin_authorization
from .client import OidcRelyingParty, PendingAuthorization, VerifiedLogin
from .config import OidcClientConfig, TenantBinding
from .discovery import Cache, InMemoryCache, ProviderMetadata, discover
from .errors import OidcConfigError, OidcError
from .id_token import validate_id_token
from .jwks import JwksClient, KeySource, StaticKeys
from .tenancy import setup_url, validate_tenant
from .token import TokenResponse, exchange_code
from .userinfo import fetch_userinfo, merge_claims

__all__ = [
    "AuthorizationRequest",
    "Cache",
    "InMemoryCache",
    "JwksClient",
    "KeySource",
    "OidcClientConfig",
    "OidcConfigError",
    "OidcError",
    "OidcRelyingParty",
    "PendingAuthorization",
    "ProviderMetadata",
    "StaticKeys",
    "TenantBinding",
    "TokenResponse",
    "VerifiedLogin",
    "begin_authorization",
    "discover",
    "exchange_code",
    "fetch_userinfo",
    "merge_claims",
    "setup_url",
    "validate_id_token",
    "validate_tenant",
]
