"""Per-connection OpenID Connect relying-party policy.

:class:`OidcClientConfig` is the plain-data form of one OIDC connection,
built by the web layer from its model at the boundary (house style rule 28).
Every field documents the risk of changing it. Validation happens on
construction, so an invalid policy object cannot exist.

Specs: OpenID Connect Core 1.0 §3.1.2.1 (scopes), §9 (client
authentication), §3.1.3.7 (ID token validation, algorithms, clock skew).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from .errors import OidcConfigError
from .keys import load_private_key

__all__ = [
    "AuthMethod",
    "TenantKind",
    "TenantBinding",
    "OidcClientConfig",
    "DEFAULT_ALLOWED_ALGS",
    "SUPPORTED_ALGS",
    "is_loopback_http",
    "require_secure_url",
]

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]
TenantKind = Literal["entra", "google_hd", "claim"]

_AUTH_METHODS: tuple[str, ...] = ("client_secret_basic", "client_secret_post", "private_key_jwt")
_TENANT_KINDS: tuple[str, ...] = ("entra", "google_hd", "claim")

#: Asymmetric JWS algorithms only. ``none`` and the HMAC family are not
#: supported at all: with HS* the "key" would be the client secret (or,
#: in the classic confusion attack, the provider's public key).
SUPPORTED_ALGS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
)
DEFAULT_ALLOWED_ALGS: tuple[str, ...] = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
MAX_CLOCK_SKEW_SECONDS = 600
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # "https://[bad" and other unparseable authorities
        return False
    return parts.scheme == "http" and host in _LOOPBACK_HOSTS


def require_secure_url(url: str) -> bool:
    """True when ``url`` is https, or plain http on a loopback host (tests)."""
    try:
        parts = urlsplit(url)
        if not parts.hostname:
            return False
        _ = parts.port  # a port that is not a number makes the URL unusable
    except ValueError:
        return False
    return parts.scheme == "https" or is_loopback_http(url)


@dataclass(frozen=True, slots=True)
class TenantBinding:
    """Which organization of a multi-tenant provider this connection trusts.

    ``kind``: ``entra`` (``tid`` claim, issuer template ``{tenantid}``),
    ``google_hd`` (``hd`` claim = hosted domain) or ``claim`` (``claim``
    names the claim whose value must equal ``tenant_id``).
    ``tenant_id``: ``None`` means *not yet learned*; such a connection refuses
    every login except a "connect organization" login that learns it.
    Risk: binding to the wrong tenant admits another organization's users.
    """

    kind: TenantKind
    tenant_id: str | None = None
    claim: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _TENANT_KINDS:
            raise OidcConfigError("tenant_binding.kind", f"must be one of {', '.join(_TENANT_KINDS)}")
        if self.tenant_id is not None and (not isinstance(self.tenant_id, str) or not self.tenant_id.strip()):
            raise OidcConfigError("tenant_binding.tenant_id", "must be a non-empty string or null")
        if self.kind == "claim":
            if not isinstance(self.claim, str) or not self.claim:
                raise OidcConfigError("tenant_binding.claim", "required when kind is 'claim'")
        elif self.claim is not None:
            raise OidcConfigError("tenant_binding.claim", "only allowed when kind is 'claim'")

    @property
    def claim_name(self) -> str:
        """The ID token claim that carries the tenant for this kind."""
        if self.kind == "entra":
            return "tid"
        if self.kind == "google_hd":
            return "hd"
        return cast(str, self.claim)

    def with_tenant(self, tenant_id: str) -> TenantBinding:
        return TenantBinding(kind=self.kind, tenant_id=tenant_id, claim=self.claim)


@dataclass(frozen=True, slots=True)
class OidcClientConfig:
    """One OIDC connection's relying-party settings."""

    #: Exact issuer identifier (OIDC Discovery §4.3); discovery URL derives from it.
    #: Risk: a wrong value trusts another provider's tokens.
    issuer: str
    #: Our client_id at the provider; every ID token's ``aud`` must contain it.
    client_id: str
    #: Shared secret for client_secret_basic/post. Never logged, never in errors;
    #: omitted from ``repr`` and from ``to_dict(redact=True)``.
    client_secret: str | None = field(default=None, repr=False)
    #: OIDC Core §9. ``private_key_jwt`` avoids a shared secret altogether.
    token_endpoint_auth_method: AuthMethod = "client_secret_basic"
    #: Private key for private_key_jwt: PEM text or a JWK as JSON text/dict.
    #: Secret like ``client_secret``.
    private_key: str | None = field(default=None, repr=False)
    #: ``kid`` announced in the client assertion header (required for private_key_jwt).
    private_key_id: str | None = None
    #: Requested scopes; ``openid`` is mandatory (OIDC Core §3.1.2.1).
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    #: ID token signature algorithms accepted. Never ``none`` or HS*.
    #: Risk: widening it admits weaker or confusable algorithms.
    allowed_algs: tuple[str, ...] = DEFAULT_ALLOWED_ALGS
    #: Tolerance for exp/iat/nbf, at most 600 s. Risk: larger values let
    #: expired tokens through for longer.
    clock_skew_seconds: int = 120
    #: Fetch UserInfo (OIDC Core §5.3) and merge it under the ID token claims.
    use_userinfo: bool = False
    #: Multi-tenant binding; see :class:`TenantBinding`.
    tenant_binding: TenantBinding | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or not require_secure_url(self.issuer):
            raise OidcConfigError("issuer", "must be an https URL (http only on loopback)")
        parts = urlsplit(self.issuer)
        if parts.query or parts.fragment:
            raise OidcConfigError("issuer", "must not contain a query or fragment")
        if not isinstance(self.client_id, str) or not self.client_id:
            raise OidcConfigError("client_id", "must be a non-empty string")
        if self.token_endpoint_auth_method not in _AUTH_METHODS:
            raise OidcConfigError("token_endpoint_auth_method", f"must be one of {', '.join(_AUTH_METHODS)}")
        if self.token_endpoint_auth_method == "private_key_jwt":
            if not self.private_key:
                raise OidcConfigError("private_key", "required for private_key_jwt")
            if not self.private_key_id:
                raise OidcConfigError("private_key_id", "required for private_key_jwt")
            _check_private_key(self.private_key)
        else:
            if not isinstance(self.client_secret, str) or not self.client_secret:
                raise OidcConfigError("client_secret", f"required for {self.token_endpoint_auth_method}")
        if not isinstance(self.scopes, tuple) or not all(isinstance(s, str) and s for s in self.scopes):
            raise OidcConfigError("scopes", "must be a list of non-empty strings")
        if "openid" not in self.scopes:
            raise OidcConfigError("scopes", "must include 'openid'")
        if any(" " in s for s in self.scopes):
            raise OidcConfigError("scopes", "a scope must not contain spaces")
        if not isinstance(self.allowed_algs, tuple) or not self.allowed_algs:
            raise OidcConfigError("allowed_algs", "must be a non-empty list")
        for alg in self.allowed_algs:
            if alg not in SUPPORTED_ALGS:
                raise OidcConfigError("allowed_algs", f"unsupported or unsafe algorithm {alg!r}")
        skew = self.clock_skew_seconds
        if not isinstance(skew, int) or isinstance(skew, bool) or not 0 <= skew <= MAX_CLOCK_SKEW_SECONDS:
            raise OidcConfigError("clock_skew_seconds", f"must be an integer between 0 and {MAX_CLOCK_SKEW_SECONDS}")
        if not isinstance(self.use_userinfo, bool):
            raise OidcConfigError("use_userinfo", "must be a boolean")
        if self.tenant_binding is not None and not isinstance(self.tenant_binding, TenantBinding):
            raise OidcConfigError("tenant_binding", "must be a TenantBinding")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OidcClientConfig:
        """Build from JSON-like settings; unknown keys are rejected."""
        if not isinstance(data, Mapping):
            raise OidcConfigError("oidc", "settings must be an object")
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise OidcConfigError(str(key), "unknown setting")
        for required in ("issuer", "client_id"):
            if required not in data:
                raise OidcConfigError(required, "is required")
        kwargs: dict[str, Any] = dict(data)
        for name in ("scopes", "allowed_algs"):
            if name in kwargs:
                value = kwargs[name]
                if not isinstance(value, (list, tuple)):
                    raise OidcConfigError(name, "must be a list of strings")
                kwargs[name] = tuple(value)
        private_key = kwargs.get("private_key")
        if isinstance(private_key, Mapping):
            kwargs["private_key"] = json.dumps(dict(private_key), sort_keys=True)
        elif private_key is not None and not isinstance(private_key, str):
            raise OidcConfigError("private_key", "must be PEM text or a JWK object")
        binding = kwargs.get("tenant_binding")
        if binding is not None:
            kwargs["tenant_binding"] = _binding_from_dict(binding)
        return cls(**kwargs)

    def to_dict(self, *, redact: bool = False) -> dict[str, Any]:
        """JSON-ready settings; ``redact=True`` omits the secret and private key."""
        out: dict[str, Any] = {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "private_key_id": self.private_key_id,
            "scopes": list(self.scopes),
            "allowed_algs": list(self.allowed_algs),
            "clock_skew_seconds": self.clock_skew_seconds,
            "use_userinfo": self.use_userinfo,
            "tenant_binding": None,
        }
        if self.tenant_binding is not None:
            b = self.tenant_binding
            out["tenant_binding"] = {"kind": b.kind, "tenant_id": b.tenant_id, "claim": b.claim}
        if redact:
            out["client_secret_set"] = self.client_secret is not None
            out["private_key_set"] = self.private_key is not None
        else:
            out["client_secret"] = self.client_secret
            out["private_key"] = self.private_key
        return out


def _binding_from_dict(data: Any) -> TenantBinding:
    if not isinstance(data, Mapping):
        raise OidcConfigError("tenant_binding", "must be an object")
    for key in data:
        if key not in ("kind", "tenant_id", "claim"):
            raise OidcConfigError(f"tenant_binding.{key}", "unknown setting")
    if "kind" not in data:
        raise OidcConfigError("tenant_binding.kind", "is required")
    return TenantBinding(kind=data["kind"], tenant_id=data.get("tenant_id"), claim=data.get("claim"))


def _check_private_key(text: str) -> None:
    """Parse the key once so a broken key fails at configuration time."""
    # The error never echoes the key.
    try:
        load_private_key(text)
    except Exception:  # noqa: BLE001 - any parse failure is a config error
        raise OidcConfigError("private_key", "is not a usable private key (PEM or JWK)") from None
