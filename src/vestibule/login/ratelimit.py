"""Fixed-window counters in the Django cache (Redis in production).

``cache.add`` followed by ``cache.incr`` is atomic on Redis, so every process
sharing it sees one count: a lockout holds across the whole deployment.

A limit that guards an expensive or secret-revealing check (a password, a TOTP
code) is *reserved* before the check runs (:func:`reserve`), never consulted
and then counted afterwards: between a "not locked yet" read and the count of
the failure, any number of concurrent requests would pass the read, and each
would get its guess checked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class Limit:
    name: str
    attempts: int
    window_seconds: int


def _key(limit: Limit, subject: str) -> str:
    # Hash the subject so emails and IPs never sit in the cache as plain text.
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return f"rl:{limit.name}:{digest}"


def hit(limit: Limit, subject: str) -> int:
    """Count one event; returns the count in the current window, this event included."""
    key = _key(limit, subject)
    for _ in range(3):
        if cache.add(key, 1, timeout=limit.window_seconds):
            return 1
        try:
            counted = int(cache.incr(key))
        except ValueError:
            # The window expired between add and incr: open a new one.
            continue
        if counted == 1:
            # Django's Redis incr checks EXISTS, then INCR: a key that expired
            # in between is recreated by INCR without a timeout, which would
            # make this window (and a lockout) last forever. Give it one.
            cache.touch(key, timeout=limit.window_seconds)
        return counted
    # The window keeps expiring under us; count the event as over the limit
    # rather than let it through uncounted.
    return limit.attempts + 1


def reserve(limit: Limit, subject: str) -> int | None:
    """Take one of the window's attempts *before* the guarded check runs.

    Returns the attempt's number (1 to ``limit.attempts``), or None when every
    attempt of the window is taken: the caller must then refuse without
    checking anything. The slot stays taken whatever the check finds; a
    success that should forgive earlier failures calls :func:`reset`.
    """
    taken = hit(limit, subject)
    return taken if taken <= limit.attempts else None


def count(limit: Limit, subject: str) -> int:
    return int(cache.get(_key(limit, subject)) or 0)


def reset(limit: Limit, subject: str) -> None:
    cache.delete(_key(limit, subject))


# Password checks per account email: 5 in 15 minutes, then the email is locked
# for the rest of the window, even for the right password. A check takes its
# slot before the password is verified; a success gives them all back.
PASSWORD_FAILURES_PER_EMAIL = Limit("pw-email", attempts=5, window_seconds=15 * 60)
# Attempts per client IP, against password spraying across many emails.
PASSWORD_ATTEMPTS_PER_IP = Limit("pw-ip", attempts=100, window_seconds=15 * 60)
# TOTP code checks per user (sign-in and re-enrolment alike), reserved like passwords.
TOTP_FAILURES_PER_USER = Limit("totp", attempts=5, window_seconds=15 * 60)
# Emails sent per address (reset, recovery), so nobody can flood a mailbox.
EMAILS_PER_ADDRESS = Limit("mail", attempts=5, window_seconds=60 * 60)
# SSO starts per client IP: each one stores a pending login, so an
# unauthenticated client must not be able to fill the table.
SSO_STARTS_PER_IP = Limit("sso-start", attempts=300, window_seconds=15 * 60)
