"""The replay store shared by every process: a unique key in the database.

Used for SAML assertion IDs (the ``ReplayCache`` port of ``vestibule.saml``).
The database, not the cache, is the store, because a Redis eviction or flush
must never re-open a replay window.
"""

from __future__ import annotations

import random
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from vestibule.connections.models import ReplayEntry


class DatabaseReplayCache:
    def add_once(self, *, key: str, expires_at: datetime) -> bool:
        if random.random() < 0.01:
            ReplayEntry.objects.filter(expires_at__lt=timezone.now()).delete()
        try:
            with transaction.atomic():
                ReplayEntry.objects.create(key=key[:600], expires_at=expires_at)
        except IntegrityError:
            # Seen before. An expired row still blocks: the message it names has
            # expired too, so refusing costs nothing and avoids a purge race.
            return False
        return True
