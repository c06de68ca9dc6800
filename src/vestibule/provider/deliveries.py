"""Messages to applications: back-channel logout tokens and signed webhooks (being written)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vestibule.provider.models import Application, Authorization, Delivery


def queue_backchannel_logout(authorizations: Iterable[Authorization]) -> int:
    return 0


def delivery_log(application: Application, limit: int = 100) -> list[dict[str, Any]]:
    """The application's most recent deliveries, newest first: what was sent, where, and how each attempt went."""
    rows = Delivery.objects.filter(application=application).order_by("-created_at", "-pk")[:limit]
    return [
        {
            "message_id": d.message_id,
            "kind": d.kind,
            "event_type": d.event_type,
            "url": d.url,
            "status": d.status,
            "attempts": d.attempts,
            "last_status_code": d.last_status_code,
            "last_error": d.last_error or None,
            "created_at": d.created_at,
            "last_attempt_at": d.last_attempt_at,
            "next_attempt_at": d.next_attempt_at if d.status == Delivery.Status.PENDING else None,
            "delivered_at": d.delivered_at,
        }
        for d in rows
    ]
