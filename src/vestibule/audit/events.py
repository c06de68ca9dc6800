"""Writing audit events. The one place that decides what an event may contain."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from vestibule.audit.models import AuditEvent, LoginTrace
from vestibule.authority.ownership import home_account_of_email
from vestibule.domain.text import storable

log = logging.getLogger("vestibule.audit")

# Keys whose values are never stored, whatever a caller passes.
_SECRET_KEYS = {"password", "client_secret", "secret", "token", "code", "saml_response", "id_token", "private_key"}


def client_ip(request: HttpRequest | None) -> str | None:
    """The client address, trusting exactly VESTIBULE_TRUSTED_PROXIES hops of X-Forwarded-For."""
    if request is None:
        return None
    addr = request.META.get("REMOTE_ADDR")
    hops = settings.VESTIBULE_TRUSTED_PROXIES
    if hops:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
        if len(forwarded) >= hops:
            addr = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(addr or ""))
    except ValueError:
        return None


def scrub(detail: dict[str, Any]) -> dict[str, Any]:
    """Drop secrets by key; make text storable (PostgreSQL refuses NUL in text and jsonb)."""
    return {k: ("[redacted]" if k.lower() in _SECRET_KEYS else storable(v)) for k, v in detail.items()}


def record(
    code: str,
    *,
    request: HttpRequest | None = None,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    account: Any = None,
    connection: Any = None,
    actor_user: Any = None,
    actor_api_key: Any = None,
    subject_email: str = "",
    trace: LoginTrace | None = None,
    **detail: Any,
) -> AuditEvent:
    """Write one audit event.

    An event about a person but no particular account (a password sign-in, a
    reset) goes to the account it concerns: the person's home account, which
    owns their identity and credentials. Other accounts the person belongs
    to do not see when or from where they sign in.
    """
    return record_many(
        [
            {
                "code": code, "request": request, "outcome": outcome, "account": account, "connection": connection,
                "actor_user": actor_user, "actor_api_key": actor_api_key, "subject_email": subject_email, "trace": trace,
                **detail,
            }
        ]
    )[0]  # fmt: skip


def record_many(events: list[dict[str, Any]]) -> list[AuditEvent]:
    """Write several events in one INSERT; each dict holds :func:`record`'s arguments, detail included."""
    rows = [row for event in events for row in _rows(**event)]
    return AuditEvent.objects.bulk_create(rows)


def _rows(
    code: str,
    *,
    request: HttpRequest | None = None,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    account: Any = None,
    connection: Any = None,
    actor_user: Any = None,
    actor_api_key: Any = None,
    subject_email: str = "",
    trace: LoginTrace | None = None,
    **detail: Any,
) -> list[AuditEvent]:
    user = getattr(request, "user", None)
    if actor_user is None and user is not None and user.is_authenticated:
        actor_user = user
    accounts = [account]
    if account is None and connection is None and subject_email:
        accounts = [_home_account(subject_email)]
    # The event itself is the record (the audit log in the database). At INFO this line wrote every
    # subject's email into the operator's log and cost a login 1-2 JSON lines; the request line and
    # sso.login already say what happened, by account and reason, without naming the person.
    log.debug("audit %s outcome=%s account=%s", code, outcome, getattr(account, "slug", None))
    return [
        AuditEvent(
            code=code,
            outcome=outcome,
            account=target,
            connection_id=getattr(connection, "pk", connection),
            actor_user=actor_user,
            actor_api_key=actor_api_key,
            subject_email=storable(subject_email)[:254],
            ip=client_ip(request),
            detail=scrub(detail),
            trace=trace,
        )
        for target in accounts
    ]


def _home_account(subject_email: str) -> Any:
    # Local: the audit app is imported by every other app, ownership imports their models.

    return home_account_of_email(subject_email)
