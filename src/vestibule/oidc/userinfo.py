"""UserInfo endpoint (OpenID Connect Core 1.0 §5.3) and claim merging.

The UserInfo response is not signed in the common case, so it is trusted
only as far as the ID token vouches for it: its ``sub`` must equal the ID
token's (§5.3.2, to prevent token substitution), and it may only *add*
claims. ID token claims always win, and protocol or tenant claims from
UserInfo are dropped, so UserInfo can never alter what was validated.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

import httpx

from .discovery import fetch_json
from .errors import FixIn, UserinfoError, UserinfoSubjectMismatch

__all__ = ["fetch_userinfo", "check_userinfo_subject", "merge_claims", "PROTECTED_CLAIMS"]

#: Claims only the verified ID token may provide.
PROTECTED_CLAIMS = frozenset(
    {
        "iss",
        "sub",
        "aud",
        "azp",
        "exp",
        "iat",
        "nbf",
        "nonce",
        "jti",
        "auth_time",
        "acr",
        "amr",
        "at_hash",
        "c_hash",
        "sid",
        "tid",
        "hd",
    }
)


def fetch_userinfo(userinfo_endpoint: str | None, access_token: str, *, http: httpx.Client) -> dict[str, Any]:
    """GET the UserInfo JSON with the access token as a Bearer credential (RFC 6750 §2.1)."""
    if not userinfo_endpoint:
        raise UserinfoError("The provider publishes no userinfo_endpoint.", fix_in=FixIn.VESTIBULE)
    doc, response = fetch_json(
        http, userinfo_endpoint, UserinfoError, headers={"Authorization": f"Bearer {access_token}"}
    )
    content_type = response.headers.get("content-type", "")
    if "application/jwt" in content_type:
        raise UserinfoError("Signed or encrypted UserInfo responses are not supported.", expected="application/json")
    return doc


def check_userinfo_subject(userinfo: Mapping[str, Any], id_token_claims: Mapping[str, Any]) -> None:
    """OIDC Core §5.3.2: the UserInfo ``sub`` MUST equal the ID token ``sub``."""
    got = userinfo.get("sub")
    want = id_token_claims["sub"]
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), str(want).encode()):
        # UserInfo is a server-side fetch; its values are not echoed (see .errors).
        received = "no sub" if got is None else "a different sub"
        raise UserinfoSubjectMismatch(expected=want, received=received)


def merge_claims(id_token_claims: Mapping[str, Any], userinfo: Mapping[str, Any] | None) -> dict[str, Any]:
    """ID token claims, plus UserInfo claims the ID token lacks (non-protocol only)."""
    merged = dict(id_token_claims)
    for name, value in (userinfo or {}).items():
        if name not in PROTECTED_CLAIMS and name not in merged:
            merged[name] = value
    return merged
