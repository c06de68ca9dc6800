"""Fixed-window counters in the Django cache (Redis in production).

``cache.add`` followed by ``cache.incr`` is atomic on Redis, so every process
sharing it sees one count: a lockout holds across the whole deployment.
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
    """Count one event; returns the count in the current window."""
    key = _key(limit, subject)
    if cache.add(key, 1, timeout=limit.window_seconds):
        return 1
    try:
        return int(cache.incr(key))
    except ValueError:
        # The window expired between add and incr.
        cache.add(key, 1, timeout=limit.window_seconds)
        return 1


def count(limit: Limit, subject: str) -> int:
    return int(cache.get(_key(limit, subject)) or 0)


def exceeded(limit: Limit, subject: str) -> bool:
    return count(limit, subject) >= limit.attempts


def reset(limit: Limit, subject: str) -> None:
    cache.delete(_key(limit, subject))


# Failed password attempts per account email: after 5 in 15 minutes the email
# is locked for the rest of the window, even for the right password.
PASSWORD_FAILURES_PER_EMAIL = Limit("pw-email", attempts=5, window_seconds=15 * 60)
# Attempts per client IP, against password spraying across many emails.
PASSWORD_ATTEMPTS_PER_IP = Limit("pw-ip", attempts=100, window_seconds=15 * 60)
TOTP_FAILURES_PER_USER = Limit("totp", attempts=5, window_seconds=15 * 60)
# Emails sent per address (reset, recovery), so nobody can flood a mailbox.
EMAILS_PER_ADDRESS = Limit("mail", attempts=5, window_seconds=60 * 60)
# SSO starts per client IP: each one stores a pending login, so an
# unauthenticated client must not be able to fill the table.
SSO_STARTS_PER_IP = Limit("sso-start", attempts=300, window_seconds=15 * 60)
