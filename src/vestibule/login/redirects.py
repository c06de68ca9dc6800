"""Validating ``next`` targets: same origin only, paths only."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_NEXT = "/"


def safe_next(candidate: str | None) -> str:
    """Return ``candidate`` if it is a same-origin path, else the default.

    Only relative paths starting with a single ``/`` are accepted. Anything
    with a scheme, a host, a backslash (browsers read ``/\\evil.com`` as
    ``//evil.com``), control characters or whitespace is refused outright
    rather than repaired.
    """
    if not candidate or len(candidate) > 2000:
        return DEFAULT_NEXT
    if any(ord(ch) < 0x21 or ch == "\x7f" for ch in candidate) or "\\" in candidate:
        return DEFAULT_NEXT
    if not candidate.startswith("/") or candidate.startswith("//"):
        return DEFAULT_NEXT
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return candidate
