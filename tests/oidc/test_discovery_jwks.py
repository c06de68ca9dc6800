"""Discovery (OIDC Discovery §4) and JWKS caching/rotation with MockTransport."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from vestibule.oidc import InMemoryCache, JwksClient, discover
from vestibule.oidc.errors import OidcError

from . import fake_issuer as fi


def _client(
    doc: dict[str, Any] | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    hits: list[str] | None = None,
) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        if hits is not None:
            hits.append(str(request.url))
        return httpx.Response(status, json=doc if doc is not None else fi.discovery_doc(), headers=headers)

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_discovers_and_caches_for_bounded_time() -> None:
    clock = fi.FakeClock()
    cache = InMemoryCache(clock)
    hits: list[str] = []
    http = _client(hits=hits, headers={"cache-control": "public, max-age=999999"})
    meta = discover(fi.config(), http=http, cache=cache)
    assert meta.token_endpoint == f"{fi.ISSUER}/token"
    assert hits == [f"{fi.ISSUER}/.well-known/openid-configuration"]
    discover(fi.config(), http=http, cache=cache)
    assert len(hits) == 1
    clock.now += 24 * 3600 + 1  # max-age is capped at 24 h
    discover(fi.config(), http=http, cache=cache)
    assert len(hits) == 2


def test_default_ttl_is_one_hour() -> None:
    clock = fi.FakeClock()
    cache = InMemoryCache(clock)
    hits: list[str] = []
    http = _client(hits=hits)
    discover(fi.config(), http=http, cache=cache)
    clock.now += 3599
    discover(fi.config(), http=http, cache=cache)
    clock.now += 2
    discover(fi.config(), http=http, cache=cache)
    assert len(hits) == 2


@pytest.mark.parametrize(
    "doc",
    [
        {**fi.discovery_doc(), "issuer": "https://idp.example.test/"},  # trailing slash is another issuer
        {**fi.discovery_doc(), "issuer": "https://evil.example"},
        {k: v for k, v in fi.discovery_doc().items() if k != "jwks_uri"},
        {**fi.discovery_doc(), "token_endpoint": "http://idp.example.test/token"},
        {**fi.discovery_doc(), "code_challenge_methods_supported": ["plain"]},
    ],
)
def test_rejects_bad_metadata(doc: dict[str, Any]) -> None:
    with pytest.raises(OidcError) as info:
        discover(fi.config(), http=_client(doc), cache=InMemoryCache(fi.FakeClock()))
    assert info.value.code == "oidc.discovery_failed"


def test_http_failure_is_discovery_failed() -> None:
    with pytest.raises(OidcError) as info:
        discover(fi.config(), http=_client(status=500), cache=InMemoryCache(fi.FakeClock()))
    assert info.value.code == "oidc.discovery_failed" and info.value.received == "500"


def _jwks_client(state: dict[str, Any], clock: fi.FakeClock, interval: float = 60) -> JwksClient:
    http = httpx.Client(transport=fi.jwks_transport(state))
    return JwksClient(
        fi.ISSUER,
        f"{fi.ISSUER}/jwks",
        http=http,
        cache=InMemoryCache(clock),
        clock=clock,
        min_refetch_interval=interval,
    )


def test_jwks_cached_then_refetched_on_rotation() -> None:
    clock = fi.FakeClock()
    state: dict[str, Any] = {"jwks": fi.jwks("RS256")}
    keys = _jwks_client(state, clock)
    assert [k.kid for k in keys.current()] == ["rsa-1"]
    keys.current()
    assert state["jwks_hits"] == 1
    state["jwks"] = fi.jwks("rotated", "RS256")
    refreshed = keys.refresh()
    assert refreshed is not None and [k.kid for k in refreshed] == ["rsa-2", "rsa-1"]
    assert keys.refresh() is None  # rate-limited
    clock.now += 61
    assert keys.refresh() is not None
    assert state["jwks_hits"] == 3


def test_jwks_skips_symmetric_and_encryption_keys() -> None:
    state: dict[str, Any] = {
        "jwks": {
            "keys": [
                {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
                {**fi.keys()["ES256"].as_dict(private=False), "use": "enc", "kid": "enc"},
                {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
                fi.keys()["RS256"].as_dict(private=False),
            ]
        }
    }
    assert [k.kid for k in _jwks_client(state, fi.FakeClock()).current()] == ["rsa-1"]


def test_jwks_without_usable_keys_is_unavailable() -> None:
    with pytest.raises(OidcError) as info:
        _jwks_client({"jwks": {"keys": []}}, fi.FakeClock()).current()
    assert info.value.code == "oidc.jwks_unavailable"
