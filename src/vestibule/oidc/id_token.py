"""ID token validation (OpenID Connect Core 1.0 §3.1.3.7, §3.1.3.6 ``at_hash``).

:func:`validate_id_token` is the single choke point for hostile ID tokens.
The order of checks matters and is part of the contract:

1. size bound, compact-JWS shape and header parse (joserfc, bounded);
2. the header ``alg`` must be in the connection's allow-list *before* any key
   is looked up, so ``none`` and HS* never reach key selection (a public key
   can never become an HMAC secret);
3. the key is chosen by ``kid`` from the provider's JWK Set, and must be of
   the key type / curve that ``alg`` requires; an unknown ``kid`` triggers
   one rate-limited refetch (key rotation, OIDC Core §10.1.1);
4. the signature (joserfc), then the claims: ``iss`` (exact, or the tenant
   template), ``aud``/``azp``, ``exp``/``iat``/``nbf`` with bounded skew,
   ``nonce`` (constant-time), ``at_hash``, ``sub``, and the tenant binding.

Until step 4 succeeds the payload is never parsed: claims are consumed only
from the verified token (house style rule 7).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from . import errors as e
from .config import OidcClientConfig
from .jwks import KeySource
from .tenancy import expected_issuer, validate_tenant

if TYPE_CHECKING:
    from .discovery import ProviderMetadata

__all__ = ["validate_id_token", "access_token_hash", "MAX_ID_TOKEN_BYTES"]

#: Entra tokens with group overage stay well below this; anything larger is hostile.
MAX_ID_TOKEN_BYTES = 32 * 1024
_MIN_RSA_BITS = 2048
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_HASHES = {"256": "sha256", "384": "sha384", "512": "sha512"}
#: ``typ`` values of JWTs that are not ID tokens (RFC 9068 access tokens,
#: logout tokens, ...): refused so a token of another kind cannot pose as one.
_FOREIGN_TYP_SUFFIX = "+jwt"


class _Registry(JWSRegistry):
    max_header_length = 2048
    max_payload_length = MAX_ID_TOKEN_BYTES
    max_signature_length = 1400  # base64url of a 8192-bit RSA signature


_REGISTRIES: dict[str, _Registry] = {}
_SHAPE_REGISTRY = _Registry(strict_check_header=False)


def _registry_for(alg: str) -> _Registry:
    registry = _REGISTRIES.get(alg)
    if registry is None:
        # strict_check_header=False: providers add private header members
        # (Entra ``x5t``/``nonce``); they are never used for trust decisions.
        registry = _REGISTRIES[alg] = _Registry(algorithms=[alg], strict_check_header=False)
    return registry


def _key_fits(key: Key, alg: str) -> bool:
    """Key type, curve and declared ``alg``/``use``/``key_ops`` compatible with ``alg``."""
    if key.get("use") not in (None, "sig"):
        return False
    ops = key.get("key_ops")
    if ops is not None and "verify" not in ops:
        return False
    declared = key.alg
    if declared is not None and declared != alg:
        return False
    if alg[:2] in ("RS", "PS"):
        return isinstance(key, RSAKey) and key.raw_value.key_size >= _MIN_RSA_BITS
    if alg in _EC_CURVES:
        return isinstance(key, ECKey) and key.curve_name == _EC_CURVES[alg]
    if alg == "EdDSA":
        return isinstance(key, OKPKey) and key.curve_name in ("Ed25519", "Ed448")
    if alg == "Ed25519":
        return isinstance(key, OKPKey) and key.curve_name == "Ed25519"
    return False


def _pick(keys: Sequence[Key], kid: str | None, alg: str) -> Key | None:
    fitting = [k for k in keys if _key_fits(k, alg)]
    if kid is None:
        # OIDC Core §10.1: kid may be omitted only when the choice is unambiguous.
        return fitting[0] if len(fitting) == 1 else None
    for key in fitting:
        if key.kid == kid:
            return key
    return None


def access_token_hash(access_token: str, alg: str, key: Key | None = None) -> str:
    """OIDC Core §3.1.3.6: base64url of the left half of the hash of the access token."""
    data = access_token.encode("ascii")
    if alg in ("EdDSA", "Ed25519"):
        curve = key.curve_name if isinstance(key, OKPKey) else "Ed25519"
        digest = hashlib.shake_256(data).digest(114) if curve == "Ed448" else hashlib.sha512(data).digest()
    else:
        digest = hashlib.new(_HASHES[alg[-3:]], data).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise e.IdTokenMalformed(f"The ID token has no {name} claim.")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise e.IdTokenMalformed(f"The ID token's {name} claim is not a number.", received=value)
    return float(value)


def _check_audience(claims: Mapping[str, Any], client_id: str) -> None:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise e.AudienceMismatch("The ID token's aud claim is missing or invalid.", expected=client_id, received=aud)
    if client_id not in audiences:
        raise e.AudienceMismatch(expected=client_id, received=audiences)
    azp = claims.get("azp")
    if len(set(audiences)) > 1 and azp is None:
        raise e.AuthorizedPartyMismatch(
            "The ID token has additional audiences we do not trust and no azp.",
            expected=client_id,
            received=audiences,
        )
    if azp is not None and azp != client_id:
        raise e.AuthorizedPartyMismatch(expected=client_id, received=azp)


def _check_times(claims: Mapping[str, Any], now: float, skew: int) -> None:
    exp = _number(claims, "exp", required=True)
    iat = _number(claims, "iat", required=True)
    nbf = _number(claims, "nbf", required=False)
    assert exp is not None and iat is not None
    if now >= exp + skew:
        raise e.TokenExpired(expected=f"now < exp + {skew}s", received=f"exp={int(exp)}, now={int(now)}")
    if iat > now + skew:
        raise e.IssuedInFuture(expected=f"iat <= now + {skew}s", received=f"iat={int(iat)}, now={int(now)}")
    if nbf is not None and nbf > now + skew:
        raise e.NotYetValid(expected=f"nbf <= now + {skew}s", received=f"nbf={int(nbf)}, now={int(now)}")


def _verify_signature(raw: str, config: OidcClientConfig, keys: KeySource) -> tuple[str, Key, bytes]:
    """Steps 1–3; returns (alg, key, verified payload bytes)."""
    if not isinstance(raw, str):
        raise e.IdTokenMalformed("The ID token is not a string.")
    if len(raw) > MAX_ID_TOKEN_BYTES:
        raise e.IdTokenTooLarge(expected=f"<= {MAX_ID_TOKEN_BYTES} bytes", received=f"{len(raw)} bytes")
    if raw.count(".") != 2:
        # Five segments would be a JWE: encrypted ID tokens are not supported.
        raise e.IdTokenMalformed("The ID token is not a compact JWS (three segments).")
    try:
        unverified = jws.extract_compact(raw.encode("ascii"), registry=_SHAPE_REGISTRY)
        unverified_header = unverified.headers()
    except (JoseError, ValueError, UnicodeError):
        raise e.IdTokenMalformed("The ID token header cannot be decoded.") from None
    alg = unverified_header.get("alg")
    if not isinstance(alg, str) or alg == "none" or alg.upper().startswith("HS") or alg not in config.allowed_algs:
        raise e.AlgorithmNotAllowed(expected=list(config.allowed_algs), received=alg)
    typ = unverified_header.get("typ")
    if isinstance(typ, str) and typ.lower().endswith(_FOREIGN_TYP_SUFFIX):
        raise e.IdTokenMalformed("The token is not an ID token (typ).", received=typ)
    if "crit" in unverified_header or "b64" in unverified_header:
        raise e.IdTokenMalformed("The ID token uses critical JWS extensions.")
    kid = unverified_header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise e.IdTokenMalformed("The ID token's kid is not a string.")
    key = _pick(keys.current(), kid, alg)
    if key is None and kid is not None:
        refreshed = keys.refresh()
        if refreshed is not None:
            key = _pick(refreshed, kid, alg)
    if key is None:
        raise e.UnknownKeyId(received=f"kid={kid!r} alg={alg}")
    try:
        if alg == "EdDSA":
            with warnings.catch_warnings():
                # joserfc flags "EdDSA" as superseded by RFC 9864 names; the
                # allow-list, not a warning, is our policy.
                warnings.simplefilter("ignore")
                ok = jws.validate_compact(unverified, key, registry=_registry_for(alg))
        else:
            ok = jws.validate_compact(unverified, key, registry=_registry_for(alg))
    except JoseError:
        ok = False
    if not ok:
        raise e.SignatureInvalid(received=f"kid={kid!r} alg={alg}")
    return alg, key, unverified.payload


def validate_id_token(
    raw: str,
    *,
    config: OidcClientConfig,
    metadata: ProviderMetadata,
    keys: KeySource,
    nonce: str,
    now: float,
    access_token: str | None = None,
    learn_tenant: bool = False,
) -> dict[str, Any]:
    """Validate an ID token from the token endpoint; return its verified claims.

    ``nonce`` is the value stored with the pending authorization; ``now`` is
    the injected current time (seconds since the epoch). Raises an
    :class:`~.errors.IdTokenError` subclass (or :class:`~.errors.TenantMismatch`)
    naming the failed rule; never returns a partially validated result.
    """
    alg, key, payload = _verify_signature(raw, config, keys)
    try:
        claims = json.loads(payload)
    except (ValueError, RecursionError):  # deep nesting overflows the decoder
        raise e.IdTokenMalformed("The ID token payload is not JSON.") from None
    if not isinstance(claims, dict):
        raise e.IdTokenMalformed("The ID token payload is not a JSON object.")

    want_iss = expected_issuer(metadata, claims)
    if claims.get("iss") != want_iss:
        raise e.IssuerMismatch(expected=want_iss, received=claims.get("iss"))
    _check_audience(claims, config.client_id)
    _check_times(claims, now, config.clock_skew_seconds)

    got_nonce = claims.get("nonce")
    if got_nonce is None:
        raise e.NonceMissing(fix_in=e.FixIn.IDENTITY_PROVIDER)
    if not isinstance(got_nonce, str) or not hmac.compare_digest(got_nonce.encode(), nonce.encode()):
        # The expected nonce is a secret of this login attempt: never echoed.
        raise e.NonceMismatch()

    at_hash = claims.get("at_hash")
    if at_hash is not None and access_token is not None:
        want = access_token_hash(access_token, alg, key)
        if not isinstance(at_hash, str) or not hmac.compare_digest(at_hash.encode(), want.encode()):
            raise e.AccessTokenHashMismatch()

    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise e.IdTokenMalformed("The ID token's sub claim is missing or invalid.")

    validate_tenant(claims, config=config, metadata=metadata, learn_tenant=learn_tenant)
    return claims
