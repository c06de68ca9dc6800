"""Background threads that run once in every server process.

gunicorn forks its workers from a parent that may already have started one:
the thread does not survive the fork, so "started" is remembered per process
ID, and each worker starts its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable


class ProcessThread:
    """A daemon thread started at most once per process."""

    def __init__(self, name: str, target: Callable[[], object]) -> None:
        self.name = name
        self.target = target
        self._pid: int | None = None
        self._lock = threading.Lock()

    def start(self) -> bool:
        """Start the thread unless this process runs it already; True when it was started now."""
        with self._lock:
            if self._pid == os.getpid():
                return False
            self._pid = os.getpid()
        threading.Thread(target=self.target, name=self.name, daemon=True).start()
        return True
