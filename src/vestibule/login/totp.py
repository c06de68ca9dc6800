"""TOTP second factor (RFC 6238) with the ``cryptography`` implementation.

Secrets are stored encrypted with a key derived from the deployment secret.
A code is accepted for the current 30-second step or the one before, and never
twice: the last accepted step is remembered per user.

Enrolment never weakens a factor in force. A person without a confirmed
factor enrols into ``totp_secret_encrypted`` (unconfirmed, so sign-in ignores
it). A person with one *re-enrols* into ``totp_pending_encrypted``: sign-in
keeps checking the confirmed secret until a code of the new one moves it in
(:func:`confirm_enrollment`). Starting a re-enrolment is for someone who has
just shown a current code of the confirmed factor; the view checks it.
"""

from __future__ import annotations

import base64
import enum
import secrets
import time
from urllib.parse import quote

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from vestibule.accounts.models import User
from vestibule.conf.secretbox import open_secret, seal_secret
from vestibule.login import ratelimit

STEP = 30
DIGITS = 6


class FactorChanged(Exception):
    """The user's confirmed factor changed while this request was working with it; start again."""


class CodeCheck(enum.Enum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    LOCKED = "locked"


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _totp(secret_b32: str) -> TOTP:
    padded = secret_b32 + "=" * (-len(secret_b32) % 8)
    # SHA-1 is what every authenticator app implements for RFC 6238; as an
    # HMAC key-derivation here it carries none of SHA-1's collision weakness.
    return TOTP(base64.b32decode(padded), DIGITS, SHA1(), STEP, enforce_key_length=False)


def provisioning_uri(user: User, secret_b32: str, issuer: str = "Vestibule") -> str:
    return f"otpauth://totp/{quote(issuer)}:{quote(user.email)}?secret={secret_b32}&issuer={quote(issuer)}&digits={DIGITS}&period={STEP}"


def _well_formed(code: str) -> bool:
    return code.isascii() and code.isdigit() and len(code) == DIGITS


def _matching_step(sealed: str, code: str, now: float | None, *, after: int) -> int | None:
    """The time step (current or previous, later than ``after``) whose code is ``code``."""
    secret = open_secret(sealed, purpose="totp")
    current = int((time.time() if now is None else now) // STEP)
    for step in (current, current - 1):
        if step <= after:
            continue
        try:
            _totp(secret).verify(code.encode(), step * STEP)
        except InvalidToken:
            continue
        return step
    return None


def begin_enrollment(user: User) -> str:
    """Make a new secret to show the person once; nothing changes at sign-in until it is confirmed.

    Raises :class:`FactorChanged` when the confirmed factor this request saw was
    turned on, replaced or removed meanwhile (another tab, an administrator).
    """
    secret = new_secret()
    sealed = seal_secret(secret, purpose="totp")
    if user.has_totp:
        # Only the factor whose code the caller checked may be re-enrolled.
        updated = User.objects.filter(
            pk=user.pk, totp_confirmed=True, totp_secret_encrypted=user.totp_secret_encrypted
        ).update(totp_pending_encrypted=sealed)
        if updated != 1:
            raise FactorChanged
        user.totp_pending_encrypted = sealed
        return secret
    # Conditional, so a factor confirmed in another tab since this request
    # loaded the user is never overwritten by an unconfirmed secret.
    updated = User.objects.filter(pk=user.pk, totp_confirmed=False).update(
        totp_secret_encrypted=sealed, totp_pending_encrypted=""
    )
    if updated != 1:
        raise FactorChanged
    user.totp_secret_encrypted, user.totp_confirmed, user.totp_pending_encrypted = sealed, False, ""
    return secret


def confirm_enrollment(user: User, code: str, now: float | None = None) -> bool:
    """Turn on the secret being enrolled if ``code`` is its current code; False otherwise.

    A re-enrolment moves the pending secret in place of the confirmed one. The
    remembered step restarts from the new secret's code: steps of the old
    secret say nothing about the new one.
    """
    replacing = user.has_totp
    sealed = user.totp_pending_encrypted if replacing else user.totp_secret_encrypted
    if not sealed or not _well_formed(code):
        return False
    step = _matching_step(sealed, code, now, after=0)
    if step is None:
        return False
    # Conditional on the very secret just checked: a newer enrolment started
    # in another tab is not confirmed by a code of an older one.
    if replacing:
        updated = User.objects.filter(pk=user.pk, totp_confirmed=True, totp_pending_encrypted=sealed).update(
            totp_secret_encrypted=sealed, totp_pending_encrypted="", totp_last_step=step
        )
    else:
        updated = User.objects.filter(pk=user.pk, totp_confirmed=False, totp_secret_encrypted=sealed).update(
            totp_confirmed=True, totp_pending_encrypted="", totp_last_step=step
        )
    if updated != 1:
        return False
    user.totp_secret_encrypted, user.totp_confirmed = sealed, True
    user.totp_pending_encrypted, user.totp_last_step = "", step
    return True


def verify_code(user: User, code: str, now: float | None = None) -> bool:
    """Check a code of the *confirmed* factor and burn its time step. False for any mismatch.

    A secret still being enrolled (unconfirmed or pending) never passes here.
    """
    if not user.has_totp or not _well_formed(code):
        return False
    step = _matching_step(user.totp_secret_encrypted, code, now, after=user.totp_last_step)
    if step is None:
        return False
    # Conditional, so two requests racing with one code cannot both win.
    updated = User.objects.filter(
        pk=user.pk, totp_secret_encrypted=user.totp_secret_encrypted, totp_last_step__lt=step
    ).update(totp_last_step=step)
    if not updated:
        return False
    user.totp_last_step = step
    return True


def check_code(user: User, code: str, *, enrolling: bool = False) -> CodeCheck:
    """Check a code within the per-user limit, whose slot is taken before the code is checked.

    ``enrolling`` checks it against the secret being enrolled
    (:func:`confirm_enrollment`), otherwise against the confirmed factor
    (:func:`verify_code`). Concurrent guesses get at most
    ``TOTP_FAILURES_PER_USER.attempts`` codes checked per window, whichever
    page they come through; a right code gives the slots back.
    """
    subject = str(user.pk)
    if ratelimit.reserve(ratelimit.TOTP_FAILURES_PER_USER, subject) is None:
        return CodeCheck.LOCKED
    accepted = confirm_enrollment(user, code) if enrolling else verify_code(user, code)
    if not accepted:
        return CodeCheck.WRONG
    ratelimit.reset(ratelimit.TOTP_FAILURES_PER_USER, subject)
    return CodeCheck.ACCEPTED
