"""The replay store shared by every process: a unique key in the database.

Used for SAML assertion IDs (the ``ReplayCache`` port of ``vestibule.saml``).
The database, not the cache, is the store, because a Redis eviction or flush
must never re-open a replay window.
"""

from __future__ import annotations

import random
from datetime import datetime

from django.db import connections, router
from django.utils import timezone

from vestibule.connections.models import ReplayEntry


class DatabaseReplayCache:
    def add_once(self, *, key: str, expires_at: datetime) -> bool:
        if random.random() < 0.01:
            ReplayEntry.objects.filter(expires_at__lt=timezone.now()).delete()
        # First writer wins, in one statement (no savepoint to roll back to):
        # a key seen before inserts nothing. An expired row still blocks: the
        # message it names has expired too, so refusing costs nothing and
        # avoids a purge race. ON CONFLICT: PostgreSQL, SQLite 3.24+.
        db = connections[router.db_for_write(ReplayEntry)]
        meta, qn = ReplayEntry._meta, db.ops.quote_name
        key_field, expires_field = meta.get_field("key"), meta.get_field("expires_at")
        key_column, expires_column = qn(key_field.column or "key"), qn(expires_field.column or "expires_at")
        sql = (
            f"INSERT INTO {qn(meta.db_table)} ({key_column}, {expires_column}) VALUES (%s, %s) "
            f"ON CONFLICT ({key_column}) DO NOTHING"
        )
        with db.cursor() as cursor:
            cursor.execute(sql, [key[:600], expires_field.get_db_prep_save(expires_at, db)])
            return bool(cursor.rowcount == 1)
