"""Forged and misdirected ID tokens: one named regression test per rule.

Every token here is really signed (or forged by hand from real keys) and goes
through real signature verification; each test asserts the exact reason
code of :mod:`vestibule.oidc.errors`. Rules: OpenID Connect Core 1.0
§3.1.3.7 (ID token validation), §3.1.3.6 (at_hash), RFC 8725 §2.1/§3.1 (alg
confusion).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from tests.oidc import fake_issuer as fi
from vestibule.oidc import InMemoryCache, JwksClient, StaticKeys, TenantBinding, validate_id_token
from vestibule.oidc.errors import OidcError
from vestibule.oidc.id_token import access_token_hash


def _validate(raw: str, *, keys: Any = None, access_token: str | None = None, **cfg: Any) -> dict[str, Any]:
    return validate_id_token(
        raw,
        config=fi.config(**cfg),
        metadata=fi.metadata(),
        keys=keys or StaticKeys(list(fi.keys().values())),
        nonce=fi.NONCE,
        now=fi.NOW,
        access_token=access_token,
    )


def _code(raw: str, **kwargs: Any) -> str:
    with pytest.raises(OidcError) as info:
        _validate(raw, **kwargs)
    return info.value.code


def _hs256(secret: bytes, payload: dict[str, Any], kid: str = "rsa-1") -> str:
    signing_input = fi.unsigned_json({"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + fi.unsigned_json(payload)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + fi.b64(mac)


# --- positive controls -------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_accepts_valid_token(alg: str) -> None:
    """Control: a correctly signed, correctly addressed token passes for each key type."""
    got = _validate(fi.mint(alg=alg))
    assert got["sub"] == "248289761001"


def test_accepts_multiple_audiences_with_matching_azp() -> None:
    """Control: several audiences are fine when azp names us (OIDC Core §3.1.3.7 steps 4–5)."""
    _validate(fi.mint(fi.claims(aud=[fi.CLIENT_ID, "other"], azp=fi.CLIENT_ID)))


def test_accepts_matching_at_hash_and_skewed_times() -> None:
    """Control: correct at_hash; exp just passed and iat/nbf just ahead, all within skew."""
    at = "ya29.access-token-value"
    token = fi.mint(
        fi.claims(at_hash=access_token_hash(at, "RS256"), exp=fi.NOW - 60, iat=fi.NOW + 60, nbf=fi.NOW + 60)
    )
    _validate(token, access_token=at)


# --- algorithm confusion -------------------------------------------------------


def test_rejects_alg_none() -> None:
    """Header {"alg":"none"} with an empty signature: must never reach key selection."""
    token = fi.unsigned_json({"alg": "none", "typ": "JWT"}) + "." + fi.unsigned_json(fi.claims()) + "."
    assert _code(token) == "oidc.id_token.alg_not_allowed"


@pytest.mark.parametrize("form", ["pem", "jwk"])
def test_rejects_hs256_signed_with_public_key(form: str) -> None:
    """HS256 token whose HMAC secret is the provider's *public* RSA key (PEM or JWK bytes).

    A verifier that picks the algorithm from the header would accept it.
    """
    rsa = fi.keys()["RS256"]
    if form == "pem":
        secret = rsa.raw_value.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        secret = json.dumps(rsa.as_dict(private=False)).encode()
    assert _code(_hs256(secret, fi.claims())) == "oidc.id_token.alg_not_allowed"


def test_rejects_alg_outside_connection_allow_list() -> None:
    """An ES256 token on a connection that only allows RS256."""
    assert _code(fi.mint(alg="ES256"), allowed_algs=("RS256",)) == "oidc.id_token.alg_not_allowed"


def test_rejects_key_of_wrong_type_for_alg() -> None:
    """Header says RS256 but names the EC key's kid (kty/alg mismatch)."""
    token = fi.mint(alg="RS256", header={"kid": "ec-1"})
    assert _code(token) == "oidc.id_token.unknown_kid"


# --- signature -----------------------------------------------------------------


def test_rejects_tampered_payload() -> None:
    """Valid token whose payload segment is replaced (sub changed) after signing."""
    header, _, signature = fi.mint().split(".")
    forged = header + "." + fi.unsigned_json(fi.claims(sub="admin")) + "." + signature
    assert _code(forged) == "oidc.id_token.signature_invalid"


def test_rejects_signature_by_foreign_key_with_known_kid() -> None:
    """Token signed by an attacker key that claims the provider's kid."""
    token = fi.mint(key="rotated", header={"kid": "rsa-1"})
    assert _code(token) == "oidc.id_token.signature_invalid"


def test_rejects_oversize_token() -> None:
    """A 40 KB token (padding claim): refused before any parsing."""
    assert _code(fi.mint(fi.claims(pad="x" * 40_000))) == "oidc.id_token.too_large"


def test_rejects_malformed_token() -> None:
    """Two segments / garbage header."""
    assert _code("abc.def") == "oidc.id_token.malformed"
    assert _code("!!!.e30.AAAA") == "oidc.id_token.malformed"


# --- claims --------------------------------------------------------------------


def test_rejects_wrong_issuer() -> None:
    """Properly signed token claiming another issuer."""
    assert _code(fi.mint(fi.claims(iss="https://evil.example"))) == "oidc.id_token.issuer_mismatch"


def test_rejects_wrong_audience() -> None:
    """Token issued to another client of the same provider."""
    assert _code(fi.mint(fi.claims(aud="another-client"))) == "oidc.id_token.audience_mismatch"


def test_rejects_extra_untrusted_audience_without_azp() -> None:
    """aud = [us, someone else] and no azp: we cannot tell who it was issued for."""
    token = fi.mint(fi.claims(aud=[fi.CLIENT_ID, "untrusted"]))
    assert _code(token) == "oidc.id_token.azp_mismatch"


def test_rejects_wrong_azp() -> None:
    """aud contains us but azp names another client."""
    token = fi.mint(fi.claims(aud=[fi.CLIENT_ID, "untrusted"], azp="untrusted"))
    assert _code(token) == "oidc.id_token.azp_mismatch"


def test_rejects_expired() -> None:
    """exp beyond the 120 s skew in the past."""
    assert _code(fi.mint(fi.claims(exp=fi.NOW - 121))) == "oidc.id_token.expired"


def test_rejects_iat_in_future() -> None:
    """iat beyond skew in the future (clock games, pre-minted tokens)."""
    assert _code(fi.mint(fi.claims(iat=fi.NOW + 500, exp=fi.NOW + 900))) == "oidc.id_token.issued_in_future"


def test_rejects_nbf_in_future() -> None:
    """nbf beyond skew in the future."""
    assert _code(fi.mint(fi.claims(nbf=fi.NOW + 500))) == "oidc.id_token.not_yet_valid"


def test_rejects_missing_nonce() -> None:
    """Token without nonce: could be replayed from an unrelated login."""
    assert _code(fi.mint(fi.claims(nonce=None))) == "oidc.id_token.nonce_missing"


def test_rejects_wrong_nonce() -> None:
    """Token minted for another login attempt (replay / injection)."""
    assert _code(fi.mint(fi.claims(nonce="other-attempt"))) == "oidc.id_token.nonce_mismatch"


def test_rejects_at_hash_mismatch() -> None:
    """ID token bound to another access token (token substitution)."""
    token = fi.mint(fi.claims(at_hash=access_token_hash("other-token", "RS256")))
    assert _code(token, access_token="the-real-token") == "oidc.id_token.at_hash_mismatch"


def test_rejects_wrong_tenant() -> None:
    """Token from another organization of a multi-tenant provider (tid differs)."""
    binding = TenantBinding(kind="claim", tenant_id="tenant-a", claim="tid")
    token = fi.mint(fi.claims(tid="tenant-b"))
    assert _code(token, tenant_binding=binding) == "oidc.tenant_mismatch"


# --- unknown kid ------------------------------------------------------------------


def test_rejects_unknown_kid_after_single_rate_limited_refetch() -> None:
    """Token with a kid that is in no JWKS, even after refetching.

    The first attempt refetches exactly once; a second attempt within the
    rate-limit window refetches nothing.
    """
    clock = fi.FakeClock()
    state: dict[str, Any] = {"jwks": fi.jwks("RS256")}
    http = httpx.Client(transport=fi.jwks_transport(state))
    keys = JwksClient(
        fi.ISSUER, f"{fi.ISSUER}/jwks", http=http, cache=InMemoryCache(clock), clock=clock, min_refetch_interval=60
    )
    token = fi.mint(fi.claims(), key="rotated", header={"kid": "unknown-kid"})
    assert _code(token, keys=keys) == "oidc.id_token.unknown_kid"
    assert state["jwks_hits"] == 2  # initial fetch + one refetch
    clock.now += 10
    assert _code(token, keys=keys) == "oidc.id_token.unknown_kid"
    assert state["jwks_hits"] == 2  # rate-limited
