"""Reading an account's audit events and login traces: the filters the admin API and the console share."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from vestibule.audit.models import AuditEvent, LoginTrace


@dataclass(frozen=True)
class EventFilter:
    #: An exact code, or a prefix ending in ``.`` (``domain.``).
    code: str = ""
    outcome: str = ""
    #: Part of the acting person's email, or an API key's prefix.
    actor: str = ""
    since: datetime | None = None
    until: datetime | None = None


def events(account: Any, filters: EventFilter) -> QuerySet[AuditEvent]:
    """The account's events matching ``filters``, newest first."""
    found = AuditEvent.objects.filter(account=account).select_related("actor_user", "actor_api_key")
    if filters.code:
        found = (
            found.filter(code__startswith=filters.code)
            if filters.code.endswith(".")
            else found.filter(code=filters.code)
        )
    if filters.outcome:
        found = found.filter(outcome=filters.outcome)
    if filters.actor:
        found = found.filter(
            Q(actor_user__email__icontains=filters.actor) | Q(actor_api_key__prefix__startswith=filters.actor)
        )
    if filters.since:
        found = found.filter(created_at__gte=filters.since)
    if filters.until:
        found = found.filter(created_at__lt=filters.until)
    return found.order_by("-created_at", "-id")


@dataclass(frozen=True)
class TraceFilter:
    outcome: str = ""
    #: An exact reason code, or a family prefix (``sso.claim_missing`` matches ``sso.claim_missing.email``).
    reason: str = ""
    connection: uuid.UUID | None = None
    email: str = ""
    since: datetime | None = None
    until: datetime | None = None


def traces(account: Any, filters: TraceFilter) -> QuerySet[LoginTrace]:
    """The account's login traces matching ``filters``, newest first."""
    found = LoginTrace.objects.filter(account=account)
    if filters.outcome:
        found = found.filter(outcome=filters.outcome)
    if filters.reason:
        found = found.filter(Q(reason_code=filters.reason) | Q(reason_code__startswith=f"{filters.reason}."))
    if filters.connection:
        found = found.filter(connection_id=filters.connection)
    if filters.email:
        found = found.filter(email__icontains=filters.email)
    if filters.since:
        found = found.filter(started_at__gte=filters.since)
    if filters.until:
        found = found.filter(started_at__lt=filters.until)
    return found.order_by("-started_at")


def trace_of(account: Any, trace_id: str) -> LoginTrace | None:
    """One of the account's traces by its id; None for another account's, or for text that is no UUID."""
    try:
        pk = uuid.UUID(trace_id)
    except ValueError:
        return None
    return LoginTrace.objects.filter(account=account, pk=pk).first()
