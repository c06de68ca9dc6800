"""REST endpoints: audit events and login traces of an account."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from vestibule.api.errors import NotFound
from vestibule.api.security import account_for
from vestibule.audit import queries
from vestibule.audit.models import AuditEvent, LoginTrace
from vestibule.authority.principal import ADMIN_ROLES, SSO_ADMIN

router = Router(tags=["audit"])


class EventFilter(Schema):
    code: str | None = Field(default=None, max_length=100, description="Exact code, or a prefix ending in '.'")
    outcome: str | None = Field(default=None, pattern="^(success|failure)$")
    since: datetime | None = None
    limit: int = Field(default=100, ge=1, le=1000)


def event_out(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "created_at": event.created_at.isoformat(),
        "code": event.code,
        "outcome": event.outcome,
        "connection": str(event.connection_id) if event.connection_id else None,
        "actor": event.actor_user.email
        if event.actor_user
        else (f"api-key:{event.actor_api_key.prefix}" if event.actor_api_key else None),
        "subject_email": event.subject_email,
        "ip": event.ip,
        "detail": event.detail,
        "trace": str(event.trace_id) if event.trace_id else None,
    }


def trace_out(trace: LoginTrace) -> dict[str, Any]:
    return {
        "id": str(trace.id),
        "connection": str(trace.connection_id) if trace.connection_id else None,
        "protocol": trace.protocol,
        "started_at": trace.started_at.isoformat(),
        "finished_at": trace.finished_at.isoformat() if trace.finished_at else None,
        "outcome": trace.outcome,
        "reason_code": trace.reason_code,
        "failed_step": trace.failed_step,
        "steps": trace.steps,
        "subject": trace.subject,
        "email": trace.email,
        "ip": trace.ip,
    }


@router.get("/accounts/{slug}/audit-events")
def list_events(request: HttpRequest, slug: str, filters: Query[EventFilter]) -> list[dict[str, Any]]:
    account = account_for(request, slug, *sorted(ADMIN_ROLES))
    found = queries.events(
        account, queries.EventFilter(code=filters.code or "", outcome=filters.outcome or "", since=filters.since)
    )
    return [event_out(e) for e in found[: filters.limit]]


@router.get("/accounts/{slug}/login-traces")
def list_traces(request: HttpRequest, slug: str, limit: int = Query(50, ge=1, le=500)) -> list[dict[str, Any]]:  # type: ignore[type-arg]
    account = account_for(request, slug, SSO_ADMIN)
    return [trace_out(t) for t in queries.traces(account, queries.TraceFilter())[:limit]]


@router.get("/accounts/{slug}/login-traces/{trace_id}")
def get_trace(request: HttpRequest, slug: str, trace_id: str) -> dict[str, Any]:
    account = account_for(request, slug, SSO_ADMIN)
    trace = queries.trace_of(account, trace_id)
    if trace is None:
        raise NotFound(f"login trace '{trace_id}' not found", field="trace_id")
    return trace_out(trace)
