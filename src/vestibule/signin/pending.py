"""Logins in flight: opaque references the browser carries, consumed once.

The browser only ever holds ``PendingLogin.key`` (SAML RelayState, OIDC
``state``). A second cookie binds the attempt to the browser that started it,
so a state or RelayState lifted from one browser is useless in another. The
SAML HTTP-POST binding arrives as a cross-site POST, on which browsers send
only ``SameSite=None`` cookies, and those require HTTPS: on a plain-HTTP
development deployment SAML attempts are therefore not browser-bound.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from vestibule.connections.models import Connection, PendingLogin
from vestibule.signin.compiled import CompiledQuery, attnames, instance

LIFETIME = timedelta(minutes=10)
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
BINDING_COOKIE = "vestibule_sso_binding"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def create(
    request: HttpRequest,
    connection: Connection,
    *,
    key: str | None = None,
    request_id: str = "",
    next_url: str = "",
    purpose: str = PendingLogin.Purpose.LOGIN,
    data: dict[str, Any] | None = None,
    bind_browser: bool = True,
) -> tuple[PendingLogin, str | None]:
    """Store a pending login; returns it and the binding token to set as a cookie (if any)."""
    pending, token = prepare(
        request, connection, key=key, request_id=request_id, next_url=next_url, purpose=purpose, data=data,
        bind_browser=bind_browser,
    )  # fmt: skip
    pending.save(force_insert=True)
    return pending, token


def prepare(
    request: HttpRequest,
    connection: Connection,
    *,
    key: str | None = None,
    request_id: str = "",
    next_url: str = "",
    purpose: str = PendingLogin.Purpose.LOGIN,
    data: dict[str, Any] | None = None,
    bind_browser: bool = True,
) -> tuple[PendingLogin, str | None]:
    """A pending login not stored yet, for a caller that completes it first (the SAML request ID), then
    saves it with ``save(force_insert=True)``: one INSERT instead of an INSERT and an UPDATE."""
    if secrets.randbelow(100) == 0:
        purge_expired()
    token = request.COOKIES.get(BINDING_COOKIE) or secrets.token_urlsafe(24)
    pending = PendingLogin(
        key=key or secrets.token_urlsafe(32),
        connection=connection,
        purpose=purpose,
        request_id=request_id,
        next_url=next_url,
        data=data or {},
        browser_binding=_digest(token) if bind_browser else "",
        initiated_by=request.user if request.user.is_authenticated else None,
        expires_at=timezone.now() + LIFETIME,
    )
    return pending, token if bind_browser else None


def set_binding_cookie(response: HttpResponse, token: str | None) -> None:
    if token is None:
        return
    secure = settings.VESTIBULE_BASE_URL.startswith("https://")
    response.set_cookie(
        BINDING_COOKIE,
        token,
        max_age=int(LIFETIME.total_seconds()),
        httponly=True,
        secure=secure,
        samesite="None" if secure else "Lax",
        path="/sso/",
    )


def binds_saml_post() -> bool:
    return bool(settings.VESTIBULE_BASE_URL.startswith("https://"))


# The unspent pending login of a reference at a connection, compiled once (signin.compiled). Its expiry is
# checked on the row: the conditional UPDATE that spends it checks it again.
_LIVE = CompiledQuery(
    lambda key, connection_id: PendingLogin.objects.filter(
        key=key, connection_id=connection_id, consumed_at__isnull=True
    ).values_list(*attnames(PendingLogin)),
    key=str,
    connection_id=uuid.UUID,
)


def consume(request: HttpRequest, connection: Connection, key: str | None) -> PendingLogin | None:
    """Use a pending login once. None when unknown, expired, used, foreign or unbound.

    The browser binding is checked *before* the reference is spent: a state
    or RelayState lifted from the victim and replayed from another browser
    must be refused without burning the victim's own login.
    """
    if not key or len(key) > 64 or not _TOKEN.fullmatch(key):
        # Not a reference we could have issued (they are URL-safe base64):
        # refuse before the database sees it (PostgreSQL rejects NUL bytes).
        return None
    now = timezone.now()
    # IDOR check: the reference must belong to the connection of this URL.
    rows = _LIVE.rows(key=key, connection_id=connection.pk)
    if not rows:
        return None
    pending = instance(PendingLogin, rows[0], 0)
    if pending.expires_at <= now:
        return None
    pending.connection = connection
    if pending.browser_binding:
        token = request.COOKIES.get(BINDING_COOKIE, "")
        if not hmac.compare_digest(pending.browser_binding, _digest(token)):
            return None
    # The conditional UPDATE, not the read above, decides who spends it: two
    # callbacks racing in separate processes both pass the read, one wins here.
    live = PendingLogin.objects.filter(pk=pending.pk, consumed_at__isnull=True, expires_at__gt=now)
    if live.update(consumed_at=now) != 1:
        return None
    pending.consumed_at = now
    return pending


def purge_expired() -> int:
    deleted, _ = PendingLogin.objects.filter(expires_at__lt=timezone.now() - timedelta(days=1)).delete()
    return deleted
