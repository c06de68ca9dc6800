"""Messages to applications: back-channel logout tokens and signed webhooks, with retries and a delivery log.

Every message is a :class:`~vestibule.provider.models.Delivery` row first (the
outbox, which is also the log an operator reads) and a POST second:

* **Back-channel logout** (OpenID Connect Back-Channel Logout 1.0): when a
  sign-in ends, :func:`queue_backchannel_logout` writes, in the transaction
  that ended it, one logout token per (application, ``sid``) for each
  application with a ``backchannel_logout_uri``. The token is signed with
  the provider's key (``typ`` ``logout+jwt``, no ``nonce``) and lives two
  minutes, so a retry signs it again with the same ``jti``.
* **Webhooks** (Standard Webhooks): :mod:`vestibule.provider.events` decides
  what happened and calls :func:`queue_webhooks`; the body is fixed when
  queued and signed at each attempt (the signature covers its timestamp).

Sending: right after the commit, in a small per-process thread pool (the
request that caused it does not wait), or inline when
``VESTIBULE_DELIVERIES_INLINE`` is set (tests). Whatever is not delivered
then is retried by :func:`sweep` with exponential backoff (:data:`BACKOFF`);
after :data:`MAX_ATTEMPTS` the delivery is ``failed``. A 2xx answer is
delivered; any other status, a redirect (never followed), a refusal of the
outbound guard or a timeout is a failed attempt, recorded in
``last_status_code`` / ``last_error`` (our own words, bounded, never the
remote body).

Claiming: an attempt first claims its row, raising ``attempts`` and moving
``next_attempt_at`` a lease ahead in one short transaction (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` has one writer). Two
processes therefore never send the same attempt, and a process that dies
mid-attempt leaves a row that is retried once the lease is over. The outcome
is written only by the claim that made it (``attempts`` unchanged).

Who sweeps: ``vestibule deliveries run`` (a loop, or ``--once``), and every
``vestibule serve`` worker, which starts one daemon thread on its first
request (:func:`start_sweeper`): with several workers each sweeps, and the
claim makes a duplicate impossible. The same sweep purges what has outlived
its use (:func:`purge`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

import httpx
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from oauth2_provider.models import clear_expired
from oauth2_provider.settings import oauth2_settings
from standardwebhooks import Webhook

from vestibule.conf.background import ProcessThread
from vestibule.outbound import OutboundError
from vestibule.protocol_errors import clip
from vestibule.provider import applications, keys
from vestibule.provider.models import Application, Authorization, Delivery
from vestibule.signin.adapters import http_client

log = logging.getLogger("vestibule.provider.deliveries")

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_LIFETIME = timedelta(minutes=2)
# The ``ended_reason`` of the sign-ins of an application that asked for the logout itself
# (RP-initiated logout): it is not told what it just did; every other application is.
RP_INITIATED_LOGOUT = "rp_logout"

# The wait after the 1st, 2nd, ... failed attempt; the attempt after the last wait is the last one.
BACKOFF = (
    timedelta(seconds=10),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
# A claimed row is not claimed again for this long: far longer than one attempt may take
# (the outbound guard stops every exchange after 8 seconds).
LEASE = timedelta(seconds=60)
# Seconds to wait for a receiver's answer (connect and each read); the guard's total bound still applies.
SEND_TIMEOUT = 5.0
SWEEP_LIMIT = 100
SWEEP_INTERVAL = 5.0
PURGE_INTERVAL = timedelta(minutes=15)
PURGE_BATCH = 1000
# Delivered and failed deliveries stay in the log this long.
LOG_RETENTION = timedelta(days=30)
_ERROR_LENGTH = 300


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def _after_commit(message_ids: Sequence[str]) -> None:
    if message_ids:
        transaction.on_commit(partial(_start, tuple(message_ids)), robust=True)


# ---- Back-channel logout


def logout_claims(authorization: Authorization, message_id: str, now: datetime) -> dict[str, Any]:
    """The logout token's claims (Back-Channel Logout 1.0 section 2.4): ``sub`` and ``sid``, and no ``nonce``."""
    issued = int(now.timestamp())
    return {
        "iss": keys.issuer(),
        "aud": authorization.application.client_id,
        "iat": issued,
        "exp": issued + int(LOGOUT_TOKEN_LIFETIME.total_seconds()),
        "jti": message_id,
        "sub": str(authorization.user.subject),
        "sid": str(authorization.sid),
        "events": {LOGOUT_EVENT: {}},
    }


def queue_backchannel_logout(authorizations: Iterable[Authorization]) -> int:
    """Queue a logout token for each ended sign-in whose application has a back-channel URI; returns how many.

    Called in the transaction that ended them, so the tokens are queued if and only if that commits.
    """
    chosen: dict[tuple[int, str], Authorization] = {}
    for authorization in authorizations:
        if authorization.ended_reason == RP_INITIATED_LOGOUT:
            continue
        if authorization.application.backchannel_logout_uri:
            chosen.setdefault((authorization.application_id, str(authorization.sid)), authorization)
    if not chosen:
        return 0
    now = timezone.now()
    rows = []
    for authorization in chosen.values():
        message_id = new_message_id()
        token = keys.sign(logout_claims(authorization, message_id, now), typ="logout+jwt")
        rows.append(
            Delivery(
                application=authorization.application,
                kind=Delivery.Kind.BACKCHANNEL_LOGOUT,
                event_type="logout",
                message_id=message_id,
                url=authorization.application.backchannel_logout_uri,
                body=urlencode({"logout_token": token}),
                next_attempt_at=now,
                created_at=now,
            )
        )
    Delivery.objects.bulk_create(rows)
    _after_commit([row.message_id for row in rows])
    return len(rows)


def _fresh_logout_body(delivery: Delivery, now: datetime) -> str:
    """The queued token signed again with a new ``iat``/``exp`` (same ``jti``): a retry must not arrive expired."""
    token = delivery.body.partition("logout_token=")[2]
    # Our own token from our own table: its claims are read back, not trusted input.
    claims = keys.segment_json(token.split(".")[1])
    issued = int(now.timestamp())
    claims.update(iat=issued, exp=issued + int(LOGOUT_TOKEN_LIFETIME.total_seconds()))
    return urlencode({"logout_token": keys.sign(claims, typ="logout+jwt")})


# ---- Webhooks


def webhook_applications() -> list[Application]:
    """Applications that receive events: every one not revoked with a webhook URL (and its secret)."""
    return list(
        Application.objects.filter(revoked_at__isnull=True).exclude(webhook_url="").exclude(webhook_secret_sealed="")
    )


def queue_webhooks(targets: Sequence[Application], messages: Sequence[dict[str, Any]]) -> int:
    """Queue each message (``{"type", "timestamp", "data"}``) for each application; returns how many rows."""
    now = timezone.now()
    rows = [
        Delivery(
            application=application,
            kind=Delivery.Kind.WEBHOOK,
            event_type=str(message["type"]),
            message_id=new_message_id(),
            url=application.webhook_url,
            body=json.dumps(message, separators=(",", ":"), ensure_ascii=False),
            next_attempt_at=now,
            created_at=now,
        )
        for message in messages
        for application in targets
    ]
    if rows:
        Delivery.objects.bulk_create(rows)
        _after_commit([row.message_id for row in rows])
    return len(rows)


# ---- Attempts


@dataclass
class Outcome:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    message_ids: list[str] = field(default_factory=list)

    def add(self, other: Outcome) -> None:
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.failed += other.failed
        self.message_ids += other.message_ids


def _claim(query: Q, limit: int) -> list[Delivery]:
    """Take up to ``limit`` due rows for one attempt each; no other process can take them for :data:`LEASE`."""
    now = timezone.now()
    with transaction.atomic():
        due = (
            Delivery.objects.filter(query, status=Delivery.Status.PENDING, next_attempt_at__lte=now)
            .select_related("application")
            .order_by("next_attempt_at", "pk")
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        rows = list(due[:limit])
        if rows:
            Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(
                attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=now + LEASE
            )
    for row in rows:
        row.attempts += 1
        row.last_attempt_at = now
        row.next_attempt_at = now + LEASE
    return rows


def _headers(delivery: Delivery, body: str, now: datetime) -> dict[str, str]:
    if delivery.kind == Delivery.Kind.BACKCHANNEL_LOGOUT:
        return {"Content-Type": "application/x-www-form-urlencoded"}
    secret = applications.webhook_secret(delivery.application)
    return {
        "Content-Type": "application/json",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(delivery.message_id, now, body),
    }


def _post(delivery: Delivery, body: str, headers: dict[str, str]) -> tuple[int | None, str]:
    """POST it once: (status code or None, what went wrong or "")."""
    try:
        # Streamed and not read: the receiver's answer is its status, whatever it writes.
        with http_client().stream(
            "POST", delivery.url, content=body.encode(), headers=headers, timeout=SEND_TIMEOUT
        ) as response:
            status = response.status_code
    except OutboundError as exc:
        return None, exc.summary
    except httpx.TimeoutException:
        return None, f"outbound.timeout: no answer within {SEND_TIMEOUT:g} seconds"
    except httpx.HTTPError as exc:
        return None, f"outbound.error: {type(exc).__name__}"
    if 200 <= status < 300:
        return status, ""
    return status, f"HTTP {status}"


def _refusal(delivery: Delivery) -> str | None:
    """Why this delivery may no longer be sent at all, or None."""
    application = delivery.application
    if delivery.kind == Delivery.Kind.WEBHOOK:
        if application.revoked_at is not None:
            return "the application was revoked"
        if not application.webhook_secret_sealed:
            return "the application has no webhook secret any more"
    return None


def _attempt(delivery: Delivery) -> Outcome:
    now = timezone.now()
    outcome = Outcome(message_ids=[delivery.message_id])
    body = delivery.body
    refusal = _refusal(delivery)
    status: int | None = None
    if refusal is not None:
        error = refusal
    else:
        try:
            if delivery.kind == Delivery.Kind.BACKCHANNEL_LOGOUT and delivery.attempts > 1:
                body = _fresh_logout_body(delivery, now)
            headers = _headers(delivery, body, now)
        except Exception as exc:  # a key or secret that cannot be opened: recorded, never raised into a request
            log.exception("delivery %s could not be prepared", delivery.message_id)
            status, error = None, f"prepare.failed: {type(exc).__name__}"
        else:
            status, error = _post(delivery, body, headers)
    done = timezone.now()
    changes: dict[str, Any] = {"last_status_code": status, "last_error": clip(error, _ERROR_LENGTH), "body": body}
    if not error:
        changes.update(status=Delivery.Status.DELIVERED, delivered_at=done)
        outcome.delivered = 1
    elif refusal is not None or delivery.attempts >= MAX_ATTEMPTS:
        changes.update(status=Delivery.Status.FAILED)
        outcome.failed = 1
    else:
        changes.update(next_attempt_at=done + BACKOFF[delivery.attempts - 1])
        outcome.retrying = 1
    # Only the claim that made this attempt writes its outcome.
    Delivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts, status=Delivery.Status.PENDING).update(
        **changes
    )
    if error:
        log.warning(
            "delivery %s (%s %s) attempt %d to %s: %s",
            delivery.message_id,
            delivery.kind,
            delivery.event_type,
            delivery.attempts,
            delivery.url,
            changes["last_error"],
        )
    return outcome


def attempt(message_ids: Iterable[str]) -> Outcome:
    """The first attempt at these just-queued messages (those still due and not claimed elsewhere)."""
    outcome = Outcome()
    for row in _claim(Q(message_id__in=list(message_ids)), limit=SWEEP_LIMIT):
        outcome.add(_attempt(row))
    return outcome


def sweep(limit: int = SWEEP_LIMIT) -> Outcome:
    """One attempt at every due delivery, oldest first, up to ``limit``."""
    outcome = Outcome()
    now = timezone.now()
    # A plain read first: an idle sweep takes no write lock (SQLite has one writer).
    if not Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now).exists():
        return outcome
    for row in _claim(Q(), limit=limit):
        outcome.add(_attempt(row))
    return outcome


# ---- Purge


def purge(batch: int = PURGE_BATCH) -> dict[str, int]:
    """Delete what has outlived its use, a bounded batch of each per call.

    Expired codes and tokens by django-oauth-toolkit's own rules (revoked
    refresh tokens are kept until they expire, for reuse detection); ended
    sign-ins once no token of theirs can still matter (the refresh-token
    lifetime after they ended), with their rows; finished deliveries after
    :data:`LOG_RETENTION`.
    """
    clear_expired()
    now = timezone.now()
    lifetime = timedelta(seconds=int(oauth2_settings.REFRESH_TOKEN_EXPIRE_SECONDS or 0))
    ended = list(
        Authorization.objects.filter(ended_at__lt=now - lifetime)
        .order_by("ended_at")
        .values_list("pk", flat=True)[:batch]
    )
    finished = list(
        Delivery.objects.filter(
            status__in=[Delivery.Status.DELIVERED, Delivery.Status.FAILED], created_at__lt=now - LOG_RETENTION
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:batch]
    )
    Authorization.objects.filter(pk__in=ended).delete()
    Delivery.objects.filter(pk__in=finished).delete()
    return {"authorizations": len(ended), "deliveries": len(finished)}


# ---- Threads


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """A few threads per process (a forked worker makes its own), so slow receivers cannot pile up threads."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(max_workers=4, thread_name_prefix="vestibule-delivery"))
        return _pool[1]


def _release_connections() -> None:
    """Drop this thread's database connection if it is broken or past its age (a long-lived loop's duty).

    Never inside a transaction: a caller that runs a sweep in its own
    transaction (a test, an admin shell) keeps its connection.
    """
    if not connection.in_atomic_block:
        close_old_connections()


def _in_thread(message_ids: tuple[str, ...]) -> None:
    close_old_connections()
    try:
        attempt(message_ids)
    except Exception:
        # The sweeper retries whatever this attempt left pending.
        log.exception("first attempt at %d deliveries failed", len(message_ids))
    finally:
        close_old_connections()


def _start(message_ids: tuple[str, ...]) -> None:
    if getattr(settings, "VESTIBULE_DELIVERIES_INLINE", False):
        attempt(message_ids)
    else:
        _executor().submit(_in_thread, message_ids)


def run(*, once: bool = False, interval: float = SWEEP_INTERVAL, stop: threading.Event | None = None) -> Outcome:
    """Sweep (and purge every :data:`PURGE_INTERVAL`) until ``stop`` is set; ``once`` sweeps and purges once."""
    total = Outcome()
    stop = stop or threading.Event()
    last_purge: datetime | None = None
    while True:
        _release_connections()
        try:
            total.add(sweep())
            if last_purge is None or timezone.now() - last_purge >= PURGE_INTERVAL:
                purge()
                last_purge = timezone.now()
        except Exception:
            if once:
                raise
            # A database hiccup must not end the loop; the next round tries again.
            log.exception("delivery sweep failed")
        finally:
            _release_connections()
        if once or stop.wait(interval):
            return total


_sweeper = ProcessThread("vestibule-delivery-sweeper", run)


def start_sweeper() -> bool:
    """Start this process's sweeper thread unless it runs already; True when it was started now."""
    return _sweeper.start()


# ---- The log


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
