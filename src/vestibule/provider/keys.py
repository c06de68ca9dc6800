"""The provider's signing keys: kept in the database, sealed at rest, rotated in three steps.

``stage`` makes a ``next`` key that the JWKS publishes at once but that signs
nothing, so relying parties have cached it before it is used; ``promote``
makes it the ``active`` key and retires the old one; a retired key stays in
the JWKS until every token it signed has expired. ``discard`` drops a staged
key that was never used. The first signature of a deployment makes its first
key (RS256) if none exists.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from oauth2_provider.settings import oauth2_settings

from vestibule.conf.secretbox import open_secret, seal_secret
from vestibule.provider.models import SigningKey

PURPOSE = "op-signing-key"
ALGORITHMS = tuple(SigningKey.Algorithm.values)
ACTIONS = ("stage", "promote", "discard")


class SigningKeyError(Exception):
    """A rotation step that cannot be taken now (e.g. promote with no staged key)."""

    def __init__(self, detail: str, *, field: str = "action", status: int = 409) -> None:
        super().__init__(detail)
        self.detail, self.field, self.status = detail, field, status


def token_lifetime() -> timedelta:
    """The longest any token signed by a key stays valid: how long a retired key is still published."""
    return timedelta(seconds=int(oauth2_settings.ID_TOKEN_EXPIRE_SECONDS))


def _generate(algorithm: str) -> RSAKey | ECKey:
    if algorithm == SigningKey.Algorithm.ES256:
        return ECKey.generate_key("P-256")
    return RSAKey.generate_key(2048)


def _create(algorithm: str, state: str) -> SigningKey:
    if algorithm not in ALGORITHMS:
        raise SigningKeyError(f"algorithm must be one of {', '.join(ALGORITHMS)}", field="algorithm", status=422)
    key = _generate(algorithm)
    kid = key.thumbprint()
    public = {**key.as_dict(private=False), "kid": kid, "alg": algorithm, "use": "sig"}
    return SigningKey.objects.create(
        kid=kid,
        algorithm=algorithm,
        state=state,
        private_jwk_sealed=seal_secret(json.dumps(key.as_dict(private=True)), purpose=PURPOSE),
        public_jwk=public,
        activated_at=timezone.now() if state == SigningKey.State.ACTIVE else None,
    )


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    algorithm: str
    key: RSAKey | ECKey


_opened: dict[str, ActiveKey] = {}


def _open(row: SigningKey) -> ActiveKey:
    cached = _opened.get(row.kid)
    if cached is None:
        data = json.loads(open_secret(row.private_jwk_sealed, purpose=PURPOSE))
        key: RSAKey | ECKey = ECKey.import_key(data) if data["kty"] == "EC" else RSAKey.import_key(data)
        cached = _opened[row.kid] = ActiveKey(kid=row.kid, algorithm=row.algorithm, key=key)
    return cached


# The active key as this process last read it, and until when that reading is trusted. A
# promotion elsewhere is seen within this time; until then the old key goes on signing, which
# is harmless: a retired key stays published until its tokens have expired.
ACTIVE_KEY_TTL = 30.0
_active: tuple[float, ActiveKey] | None = None


def active_key() -> ActiveKey:
    """The key that signs now; made (RS256) on a deployment's first signature."""
    global _active
    now = time.monotonic()
    if _active is not None and _active[0] > now:
        return _active[1]
    current = _read_active_key()
    _active = (now + ACTIVE_KEY_TTL, current)
    return current


def forget_active_key() -> None:
    """Read the active key afresh at the next signature (after a rotation in this process)."""
    global _active
    _active = None


def _read_active_key() -> ActiveKey:
    row = SigningKey.objects.filter(state=SigningKey.State.ACTIVE).first()
    if row is None:
        try:
            with transaction.atomic():
                row = _create(SigningKey.Algorithm.RS256, SigningKey.State.ACTIVE)
        except IntegrityError:
            # Another process made the first key at the same moment: use theirs.
            row = SigningKey.objects.get(state=SigningKey.State.ACTIVE)
    return _open(row)


def published_keys() -> list[SigningKey]:
    """Next, active, and retired keys whose tokens may still be valid: what the JWKS lists."""
    # A process that read the active key before another retired it signs with it for up to ACTIVE_KEY_TTL more.
    cutoff = timezone.now() - token_lifetime() - timedelta(seconds=ACTIVE_KEY_TTL)
    rows = SigningKey.objects.exclude(state=SigningKey.State.RETIRED) | SigningKey.objects.filter(
        state=SigningKey.State.RETIRED, retired_at__gt=cutoff
    )
    return list(rows.order_by("created_at"))


def jwks() -> dict[str, Any]:
    if not SigningKey.objects.filter(state=SigningKey.State.ACTIVE).exists():
        active_key()
    return {"keys": [row.public_jwk for row in published_keys()]}


def sign(claims: dict[str, Any], *, typ: str = "JWT") -> str:
    current = active_key()
    header = {"alg": current.algorithm, "kid": current.kid, "typ": typ}
    return jwt.encode(header, claims, current.key, algorithms=[current.algorithm])


class TokenRejected(Exception):
    """A token handed back to the provider (an ``id_token_hint``) is not one it signed."""


def verify(token: str) -> dict[str, Any]:
    """The claims of a token this provider signed with a published key; expiry is the caller's business.

    Only the asymmetric algorithms the provider signs with are accepted, each
    with the key of the header's ``kid`` and that key's own algorithm: a token
    signed with ``none``, with HS256 over a public key, or with another
    algorithm than its key's, is refused.
    """
    try:
        header = segment_json(token.split(".", 1)[0])
        if not isinstance(header, dict):
            raise TypeError("header is not an object")
    except (ValueError, TypeError) as exc:
        raise TokenRejected("not a signed JWT") from exc
    kid, alg = header.get("kid"), header.get("alg")
    row = next((r for r in published_keys() if r.kid == kid), None)
    if row is None or alg != row.algorithm:
        raise TokenRejected("not signed with one of this provider's keys")
    key_set = KeySet.import_key_set({"keys": [row.public_jwk]})
    try:
        return dict(jwt.decode(token, key_set, algorithms=[row.algorithm]).claims)
    except (JoseError, ValueError) as exc:
        raise TokenRejected("signature does not verify") from exc


def issuer() -> str:
    """The provider's issuer (``VESTIBULE_BASE_URL``): the ``iss`` of every token it signs."""
    return str(oauth2_settings.OIDC_ISS_ENDPOINT)


def verify_issued(token: str) -> dict[str, Any]:
    """:func:`verify`, and the token names this provider as its issuer (an ``id_token_hint``)."""
    claims = verify(token)
    if claims.get("iss") != issuer():
        raise TokenRejected("issued by another provider")
    return claims


def segment_json(segment: str) -> Any:
    """One base64url (unpadded) segment of a JWT, decoded as JSON; unverified."""
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def rotate(action: str, *, algorithm: str = SigningKey.Algorithm.RS256) -> list[dict[str, Any]]:
    """Take one rotation step; returns every key's description afterwards."""
    if action not in ACTIONS:
        raise SigningKeyError(f"action must be one of {', '.join(ACTIONS)}", status=422)
    with transaction.atomic():
        rows = {r.state: r for r in SigningKey.objects.select_for_update().exclude(state=SigningKey.State.RETIRED)}
        staged = rows.get(SigningKey.State.NEXT)
        if action == "stage":
            if staged is not None:
                raise SigningKeyError("a next key is already staged: promote or discard it first")
            if SigningKey.State.ACTIVE not in rows:
                _create(SigningKey.Algorithm.RS256, SigningKey.State.ACTIVE)
            _create(algorithm, SigningKey.State.NEXT)
        elif action == "promote":
            if staged is None:
                raise SigningKeyError("no next key is staged: stage one first")
            now = timezone.now()
            SigningKey.objects.filter(state=SigningKey.State.ACTIVE).update(
                state=SigningKey.State.RETIRED, retired_at=now
            )
            SigningKey.objects.filter(pk=staged.pk).update(state=SigningKey.State.ACTIVE, activated_at=now)
        else:
            if staged is None:
                raise SigningKeyError("no next key is staged")
            staged.delete()
    forget_active_key()
    return key_status()


def key_status() -> list[dict[str, Any]]:
    published = {r.pk for r in published_keys()}
    return [{**row.describe(), "published": row.pk in published} for row in SigningKey.objects.order_by("-created_at")]
