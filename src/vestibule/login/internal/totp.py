"""TOTP second factor (RFC 6238) with the ``cryptography`` implementation.

Secrets are stored encrypted with a key derived from the deployment secret.
A code is accepted for the current 30-second step or the one before, and never
twice: the last accepted step is remembered per user.
"""

from __future__ import annotations

import base64
import secrets
import time
from urllib.parse import quote

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from vestibule.accounts.models import User
from vestibule.conf.secretbox import open_secret, seal_secret

STEP = 30
DIGITS = 6


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _totp(secret_b32: str) -> TOTP:
    padded = secret_b32 + "=" * (-len(secret_b32) % 8)
    # SHA-1 is what every authenticator app implements for RFC 6238; as an
    # HMAC key-derivation here it carries none of SHA-1's collision weakness.
    return TOTP(base64.b32decode(padded), DIGITS, SHA1(), STEP, enforce_key_length=False)


def provisioning_uri(user: User, secret_b32: str, issuer: str = "Vestibule") -> str:
    return f"otpauth://totp/{quote(issuer)}:{quote(user.email)}?secret={secret_b32}&issuer={quote(issuer)}&digits={DIGITS}&period={STEP}"


def begin_enrollment(user: User) -> str:
    secret = new_secret()
    user.totp_secret_encrypted = seal_secret(secret, purpose="totp")
    user.totp_confirmed = False
    user.save(update_fields=["totp_secret_encrypted", "totp_confirmed"])
    return secret


def verify_code(user: User, code: str, now: float | None = None) -> bool:
    """Check a code and burn its time step. Returns False for any mismatch."""
    if not user.totp_secret_encrypted or not code.isdigit() or len(code) != DIGITS:
        return False
    secret = open_secret(user.totp_secret_encrypted, purpose="totp")
    now = time.time() if now is None else now
    current = int(now // STEP)
    for step in (current, current - 1):
        if step <= user.totp_last_step:
            continue
        try:
            _totp(secret).verify(code.encode(), step * STEP)
        except InvalidToken:
            continue
        updated = User.objects.filter(pk=user.pk, totp_last_step__lt=step).update(totp_last_step=step)
        if updated:
            user.totp_last_step = step
            return True
    return False
