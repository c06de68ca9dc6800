"""OpenID Connect Discovery 1.0 (§4 obtaining, §4.3 validating provider metadata).

The relying party fetches ``{issuer}/.well-known/openid-configuration`` with an
injected ``httpx.Client``, checks that the document's ``issuer`` is exactly the
configured one (or, for multi-tenant providers, the matching template; see
:mod:`.tenancy`), and caches it through the :class:`Cache` port for a bounded
time. Endpoints must be https, except plain http on loopback hosts, which
the interop tests use; where the client may actually connect is the injected
client's policy (``vestibule.outbound``).

Errors never quote the fetched document or response (see :mod:`.errors`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

from .config import OidcClientConfig, require_secure_url
from .errors import DiscoveryError, OidcError
from .tenancy import check_metadata_issuer

__all__ = [
    "Cache",
    "Clock",
    "InMemoryCache",
    "ProviderMetadata",
    "discover",
    "fetch_json",
    "request_failed",
    "DEFAULT_METADATA_TTL",
    "MAX_METADATA_TTL",
]

Clock = Callable[[], float]

DEFAULT_METADATA_TTL = 3600
MAX_METADATA_TTL = 24 * 3600
MIN_METADATA_TTL = 60
MAX_DOCUMENT_BYTES = 512 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)
_E = TypeVar("_E", bound=OidcError)


def request_failed(error: type[_E], what: str, exc: Exception) -> _E:
    """``error`` for a request that failed in the HTTP client, with the client's reason, not its message.

    The guarded client (``vestibule.outbound``) raises errors with a stable
    ``reason`` and a ``detail`` of its own; any other client's exception text
    may quote the network, so only its kind is kept.
    """
    reason, detail = getattr(exc, "reason", None), getattr(exc, "detail", None)
    if isinstance(reason, str) and isinstance(detail, str):
        received = f"{reason}: {detail}"
    else:
        reason = received = "outbound.timeout" if isinstance(exc, httpx.TimeoutException) else "outbound.unreachable"
    failure = error(f"{what} could not be reached.", received=received)
    failure.outbound_reason = reason
    return failure


class Cache(Protocol):
    """Port for a shared cache (the web layer provides a Redis/Django one).

    Values are JSON-compatible; ``ttl`` is in seconds. ``get`` returns
    ``None`` for a missing or expired entry.
    """

    def get(self, key: str) -> Any | None: ...

    def set(self, key: str, value: Any, ttl: float) -> None: ...


class InMemoryCache:
    """Process-local :class:`Cache` with an injected clock (tests, embedded mode)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._data: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[0] <= self._clock():
                del self._data[key]
                return None
            return item[1]

    def set(self, key: str, value: Any, ttl: float) -> None:
        with self._lock:
            self._data[key] = (self._clock() + ttl, value)


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The subset of OIDC Discovery §3 metadata the relying party uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    raw: Mapping[str, Any] | None = None

    @property
    def is_issuer_template(self) -> bool:
        """True for Entra-style ``{tenantid}`` issuer templates (multi-tenant)."""
        return "{tenantid}" in self.issuer

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], config: OidcClientConfig) -> ProviderMetadata:
        """Validate a discovery document against ``config`` (Discovery §4.3)."""
        issuer = doc.get("issuer")
        if not isinstance(issuer, str):
            raise DiscoveryError("The discovery document has no issuer.", expected=config.issuer)
        check_metadata_issuer(config, issuer)
        values: dict[str, str] = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = doc.get(name)
            if not isinstance(value, str) or not value:
                raise DiscoveryError(f"The discovery document lacks {name}.")
            if not require_secure_url(value):
                raise DiscoveryError(f"{name} must be an https URL.")
            values[name] = value
        userinfo = doc.get("userinfo_endpoint")
        if userinfo is not None and (not isinstance(userinfo, str) or not require_secure_url(userinfo)):
            raise DiscoveryError("userinfo_endpoint must be an https URL.")
        methods = doc.get("code_challenge_methods_supported")
        if isinstance(methods, list) and methods and "S256" not in methods:
            # RFC 7636 §4.2: without S256 we would have to fall back to
            # "plain", which gives no protection against code interception.
            raise DiscoveryError("The provider does not support PKCE S256.", expected="S256")
        return cls(
            issuer=issuer,
            authorization_endpoint=values["authorization_endpoint"],
            token_endpoint=values["token_endpoint"],
            jwks_uri=values["jwks_uri"],
            userinfo_endpoint=userinfo,
            raw=dict(doc),
        )


def discovery_url(issuer: str) -> str:
    """OIDC Discovery §4.1: the issuer with ``/.well-known/openid-configuration`` appended."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _ttl_from_headers(response: httpx.Response, default: float, maximum: float) -> float:
    match = _MAX_AGE.search(response.headers.get("cache-control", ""))
    if not match:
        return default
    return float(min(max(int(match.group(1)), MIN_METADATA_TTL), maximum))


def fetch_json(
    http: httpx.Client,
    url: str,
    error: type[OidcError],
    *,
    headers: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], httpx.Response]:
    """GET a JSON object with a size bound; failures raise ``error``."""
    try:
        response = http.get(url, headers={"Accept": "application/json", **(headers or {})})
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise request_failed(error, "The provider", exc) from None
    if response.status_code != 200:
        raise error(f"The provider answered HTTP {response.status_code}.", expected=200, received=response.status_code)
    if len(response.content) > MAX_DOCUMENT_BYTES:
        raise error("The provider's response is too large.", received=len(response.content))
    try:
        doc = json.loads(response.content)
    except (ValueError, RecursionError):  # deep nesting overflows the decoder
        raise error("The provider's response is not JSON.") from None
    if not isinstance(doc, dict):
        raise error("The provider's response is not a JSON object.")
    return doc, response


def discover(
    config: OidcClientConfig,
    *,
    http: httpx.Client,
    cache: Cache,
    ttl: float = DEFAULT_METADATA_TTL,
    max_ttl: float = MAX_METADATA_TTL,
) -> ProviderMetadata:
    """Return the provider metadata, from cache when fresh (bounded lifetime)."""
    key = f"vestibule.oidc.discovery:{config.issuer}"
    cached = cache.get(key)
    if isinstance(cached, dict):
        try:
            return ProviderMetadata.from_document(cached, config)
        except OidcError:
            pass  # The config changed under the cache entry; fetch again.
    doc, response = fetch_json(http, discovery_url(config.issuer), DiscoveryError)
    metadata = ProviderMetadata.from_document(doc, config)
    cache.set(key, doc, min(_ttl_from_headers(response, ttl, max_ttl), max_ttl))
    return metadata
