"""Login traces: the record of one SSO login attempt, step by step (DESIGN "Audit event")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog
from django.http import HttpRequest
from django.utils import timezone

from vestibule.audit.events import client_ip, record
from vestibule.audit.models import AuditEvent, LoginTrace
from vestibule.conf import metrics
from vestibule.conf.request_log import bind
from vestibule.connections.models import Connection
from vestibule.domain.pipeline import LoginFailure
from vestibule.domain.plan import TraceNote
from vestibule.domain.text import storable

_MAX_TEXT = 500

log = structlog.get_logger("vestibule.sso")


def _clip(value: str | None) -> str | None:
    if value is None:
        return None
    # Hostile input may carry NUL, which PostgreSQL cannot store, and other control characters.
    value = storable(value)
    return value if len(value) <= _MAX_TEXT else value[: _MAX_TEXT - 1] + "…"


class TraceRecorder:
    """Collects steps in memory and writes one LoginTrace (plus audit event) at the end."""

    def __init__(self, request: HttpRequest, connection: Connection, protocol: str) -> None:
        self.request = request
        self.connection = connection
        self.trace = LoginTrace(
            account=connection.account,
            connection_id=connection.pk,
            protocol=protocol,
            ip=client_ip(request),
        )
        self.steps: list[dict[str, Any]] = []

    @property
    def id(self) -> str:
        return str(self.trace.id)

    def ok(self, step: str, **info: Any) -> None:
        self.steps.append({"step": step, "status": "ok", **{k: _clip(str(v)) for k, v in info.items()}})

    def follow(self, notes: Iterable[TraceNote]) -> None:
        """The passed steps of a login plan (``vestibule.domain.plan``), in its order."""
        for note in notes:
            self.ok(note.step, **dict(note.info))

    def note_identity(self, subject: str = "", email: str = "") -> None:
        self.trace.subject = (_clip(subject) or "")[:512]
        self.trace.email = (_clip(email) or "")[:254]

    def fail(self, failure: LoginFailure) -> AuditEvent:
        entry: dict[str, Any] = {
            "step": failure.step,
            "status": "failed",
            "code": failure.code,
            "message": failure.message,
            "fix_in": failure.fix_in,
        }
        if failure.expected is not None:
            entry["expected"] = _clip(failure.expected)
        if failure.received is not None:
            entry["received"] = _clip(failure.received)
        if failure.detail_code:
            entry["detail_code"] = failure.detail_code
        self.steps.append(entry)
        self._save("failure", failure.code, failure.step)
        metrics.sso_login(self.trace.protocol, "failure", failure.code)
        self._log_end("failure", failure.code)
        return record(
            failure.code,
            request=self.request,
            outcome=AuditEvent.Outcome.FAILURE,
            account=self.connection.account,
            connection=self.connection,
            subject_email=self.trace.email,
            trace=self.trace,
            step=failure.step,
            detail_code=failure.detail_code,
        )

    def succeed(self, user_email: str, **detail: Any) -> AuditEvent:
        self._save("success", "sso.login_succeeded", "")
        metrics.sso_login(self.trace.protocol, "success")
        self._log_end("success", "")
        return record(
            "sso.login_succeeded",
            request=self.request,
            account=self.connection.account,
            connection=self.connection,
            subject_email=user_email,
            trace=self.trace,
            **detail,
        )

    def _log_end(self, outcome: str, code: str) -> None:
        # Bound to the request, not only logged here: its request line then names them too. Never the
        # subject or email: the trace (by its id) holds those, readable by the account's administrators.
        fields = {"account": self.connection.account.slug, "connection": str(self.connection.pk), "reason": code}
        bind(**fields)
        log.info("login.sso", protocol=self.trace.protocol, outcome=outcome, trace=self.id, **fields)

    def _save(self, outcome: str, code: str, step: str) -> None:
        self.trace.outcome = outcome
        self.trace.reason_code = code
        self.trace.failed_step = step
        self.trace.steps = self.steps
        self.trace.finished_at = timezone.now()
        self.trace.save()
