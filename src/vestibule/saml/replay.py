"""Assertion replay protection (SAML profiles §4.1.4.5).

"The service provider MUST ensure that bearer assertions are not replayed, by
maintaining the set of used ID values for the length of time for which the
assertion would be considered valid based on the NotOnOrAfter attribute in the
<SubjectConfirmationData>." :class:`ReplayCache` is the port; the Django layer
implements it with an atomic insert into the database or Redis ``SET NX PX``
so that the check holds across processes and machines.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class ReplayCache(Protocol):
    """Seen-store for assertion IDs."""

    def add_once(self, *, key: str, expires_at: datetime) -> bool:
        """Record ``key`` until ``expires_at``; return False if it was already recorded.

        Must be atomic (one winner under concurrency), and must keep the key
        at least until ``expires_at``.
        """
        ...


class InMemoryReplayCache:
    """A process-local :class:`ReplayCache` for tests and single-process use."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None, max_entries: int = 100_000) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._entries: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def add_once(self, *, key: str, expires_at: datetime) -> bool:
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._prune()
                if len(self._entries) >= self._max_entries:
                    # Fail closed: forgetting IDs early would allow replays.
                    return False
            if key in self._entries:
                return False
            self._entries[key] = expires_at
            return True

    def _prune(self) -> None:
        now = self._clock()
        for key in [k for k, exp in self._entries.items() if exp < now]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
