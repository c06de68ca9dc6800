"""ID token details beyond the attack suite: at_hash per algorithm, kid-less keys."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from vestibule.oidc import StaticKeys, validate_id_token
from vestibule.oidc.errors import OidcError
from vestibule.oidc.id_token import access_token_hash

from . import fake_issuer as fi


def _validate(token: str, keys: list[Any] | None = None, access_token: str | None = None) -> dict[str, Any]:
    return validate_id_token(
        token,
        config=fi.config(),
        metadata=fi.metadata(),
        keys=StaticKeys(keys or list(fi.keys().values())),
        nonce=fi.NONCE,
        now=fi.NOW,
        access_token=access_token,
    )


@pytest.mark.parametrize(("alg", "hash_name"), [("RS256", "sha256"), ("ES256", "sha256"), ("EdDSA", "sha512")])
def test_at_hash_uses_left_half_of_alg_hash(alg: str, hash_name: str) -> None:
    """OIDC Core §3.1.3.6; Ed25519 hashes with SHA-512."""
    at = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
    digest = hashlib.new(hash_name, at.encode()).digest()
    want = base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
    assert access_token_hash(at, alg) == want
    _validate(fi.mint(fi.claims(at_hash=want), alg=alg), access_token=at)


def test_kid_may_be_omitted_only_when_unambiguous() -> None:
    token = fi.mint(header={"kid": None})
    assert _validate(token, keys=[fi.keys()["RS256"], fi.keys()["ES256"]])["sub"]
    with pytest.raises(OidcError) as info:
        _validate(token, keys=[fi.keys()["RS256"], fi.keys()["rotated"]])
    assert info.value.code == "oidc.id_token.unknown_kid"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"sub": None}, "oidc.id_token.malformed"),
        ({"exp": None}, "oidc.id_token.malformed"),
        ({"exp": "soon"}, "oidc.id_token.malformed"),
        ({"aud": None}, "oidc.id_token.audience_mismatch"),
        ({"aud": [fi.CLIENT_ID], "azp": "other"}, "oidc.id_token.azp_mismatch"),
    ],
)
def test_claim_shape_errors(change: dict[str, Any], code: str) -> None:
    with pytest.raises(OidcError) as info:
        _validate(fi.mint(fi.claims(**change)))
    assert info.value.code == code


def test_refuses_access_token_posing_as_id_token() -> None:
    with pytest.raises(OidcError) as info:
        _validate(fi.mint(header={"typ": "at+jwt"}))
    assert info.value.code == "oidc.id_token.malformed"
