"""The provider's JSON Web Key Set (RFC 7517 §5; OIDC Core §10.1.1 key rotation).

Keys are fetched from the discovered ``jwks_uri`` through the injected
``httpx.Client`` and cached via the :class:`~.discovery.Cache` port for a
bounded time. A provider rotates keys by publishing a new ``kid``; when an ID
token names a ``kid`` we do not know, :meth:`JwksClient.refresh` refetches the
set once, but no more than once per ``min_refetch_interval`` seconds per
issuer, so forged tokens with random ``kid`` values cannot turn us into a
request amplifier against the provider.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import httpx
from joserfc.jwk import Key, import_key

from .discovery import Cache, Clock, fetch_json
from .errors import JwksUnavailableError

__all__ = ["KeySource", "JwksClient", "StaticKeys", "parse_jwks"]

DEFAULT_JWKS_TTL = 3600.0
DEFAULT_MIN_REFETCH_INTERVAL = 60.0
_MAX_KEYS = 100


class KeySource(Protocol):
    """Where ID token verification keys come from."""

    def current(self) -> Sequence[Key]:
        """The cached (or freshly fetched) public signing keys."""
        ...

    def refresh(self) -> Sequence[Key] | None:
        """Refetch after an unknown ``kid``; ``None`` when rate-limited."""
        ...


def parse_jwks(doc: Mapping[str, Any]) -> tuple[Key, ...]:
    """Import the public signing keys of a JWK Set, skipping unusable entries.

    Symmetric (``oct``) keys, encryption keys (``use=enc``) and keys joserfc
    cannot import are ignored rather than failing the whole set: one exotic
    key must not lock every user out.
    """
    entries = doc.get("keys")
    if not isinstance(entries, list):
        raise JwksUnavailableError("The JWK Set has no 'keys' array.")
    keys: list[Key] = []
    for entry in entries[:_MAX_KEYS]:
        if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if entry.get("use") not in (None, "sig"):
            continue
        # Never keep private members a misconfigured provider might publish.
        public = {k: v for k, v in entry.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "oth", "k")}
        try:
            keys.append(import_key(public))
        except Exception:  # noqa: BLE001 - joserfc raises several types for bad keys
            continue
    return tuple(keys)


class StaticKeys:
    """A fixed key list (tests, benchmarks, pinned keys); never refreshes."""

    def __init__(self, keys: Sequence[Key]) -> None:
        self._keys = tuple(keys)

    def current(self) -> Sequence[Key]:
        return self._keys

    def refresh(self) -> Sequence[Key] | None:
        return None


class JwksClient:
    """Cached, rotation-aware :class:`KeySource` for one issuer's ``jwks_uri``."""

    def __init__(
        self,
        issuer: str,
        jwks_uri: str,
        *,
        http: httpx.Client,
        cache: Cache,
        clock: Clock,
        ttl: float = DEFAULT_JWKS_TTL,
        min_refetch_interval: float = DEFAULT_MIN_REFETCH_INTERVAL,
    ) -> None:
        self.issuer = issuer
        self.jwks_uri = jwks_uri
        self._http = http
        self._cache = cache
        self._clock = clock
        self._ttl = ttl
        self._min_interval = min_refetch_interval
        self._key = f"vestibule.oidc.jwks:{issuer}|{jwks_uri}"
        self._marker = f"vestibule.oidc.jwks_refetch:{issuer}"
        self._memo: tuple[Mapping[str, Any], tuple[Key, ...]] | None = None
        #: Number of HTTP fetches made by this instance (observability, tests).
        self.fetch_count = 0

    def _parsed(self, doc: Mapping[str, Any]) -> tuple[Key, ...]:
        # Importing keys costs more than verifying a signature, so parsed keys
        # are memoized per document; equality (not identity) because a shared
        # cache hands back a fresh copy on every get.
        if self._memo is not None and (self._memo[0] is doc or self._memo[0] == doc):
            return self._memo[1]
        keys = parse_jwks(doc)
        self._memo = (doc, keys)
        return keys

    def _fetch(self) -> tuple[Key, ...]:
        self.fetch_count += 1
        doc, _ = fetch_json(self._http, self.jwks_uri, JwksUnavailableError)
        keys = self._parsed(doc)
        if not keys:
            raise JwksUnavailableError("The JWK Set contains no usable signing key.")
        self._cache.set(self._key, doc, self._ttl)
        return keys

    def current(self) -> Sequence[Key]:
        doc = self._cache.get(self._key)
        if isinstance(doc, dict):
            keys = self._parsed(doc)
            if keys:
                return keys
        return self._fetch()

    def refresh(self) -> Sequence[Key] | None:
        now = self._clock()
        last = self._cache.get(self._marker)
        if isinstance(last, (int, float)) and now - float(last) < self._min_interval:
            return None
        # Not atomic across processes; at worst each process refetches once
        # per interval, which keeps the bound per process and per issuer.
        self._cache.set(self._marker, now, self._min_interval)
        return self._fetch()
