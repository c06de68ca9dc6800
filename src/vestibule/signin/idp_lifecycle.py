"""The IdP certificate lifecycle, run and audited: metadata refresh and expiry announcements.

``vestibule.connections`` decides (:mod:`~vestibule.connections.metadata_refresh`,
:mod:`~vestibule.connections.certificates`); this module, a layer above it,
fetches with the process's guarded outbound client, writes the audit events
and moves the counters:

* ``connection.idp_metadata_changed`` — a fetched change was adopted;
* ``connection.idp_metadata_held`` — a fetched change would drop every
  trusted signing certificate and waits for an sso-admin;
* ``connection.idp_metadata_refresh_failed`` — the URL gave no usable metadata
  (the outbound guard's reason, never the server's text);
* ``connection.certificate_expiring`` (``threshold`` 30d or 7d) and
  ``connection.certificate_expired`` — once per certificate and threshold.

Who runs it: every ``vestibule serve`` worker starts :func:`start` (a daemon
thread, like the deliveries sweeper), and ``vestibule connection
check-certificates`` / ``refresh-metadata`` run one pass. Several processes
are safe: a due metadata source is claimed by a conditional UPDATE and an
expiry announcement by a unique row, so each happens once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections, transaction
from django.db import connection as db_connection
from django.utils import timezone

from vestibule.audit.events import record
from vestibule.conf import metrics
from vestibule.conf.background import ProcessThread
from vestibule.connections import certificates, metadata_refresh
from vestibule.connections.metadata_refresh import MetadataFetchError, RefreshResult
from vestibule.connections.models import Connection, IdpMetadataSource
from vestibule.connections.rules import ConnectionRuleError
from vestibule.signin import adapters

__all__ = ["PassResult", "announce_expiry", "refresh", "run", "run_once", "start"]

log = logging.getLogger("vestibule.signin.idp_lifecycle")

#: How often a serve worker's thread looks for due metadata URLs and crossed expiry thresholds.
PASS_INTERVAL = 300.0


def actor_label(actor: dict[str, Any]) -> str:
    """Who triggered a change, as text kept in the change log (the audit event keeps the references)."""
    user, key = actor.get("actor_user"), actor.get("actor_api_key")
    if user is not None:
        return f"user:{user.email}"
    if key is not None:
        return f"api-key:{key.pk}" + (f" ({key.name})" if getattr(key, "name", "") else "")
    return ""


def refresh(
    connection: Connection,
    *,
    trigger: str,
    actor: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
    request: Any = None,
) -> RefreshResult:
    """Fetch the connection's metadata URL and apply it; audited. Raises ``MetadataFetchError`` on failure.

    A document that is not usable metadata counts as a failed fetch
    (``metadata.invalid``); the connection keeps its settings either way.
    """
    now = now or timezone.now()
    actor = actor or {}
    source = IdpMetadataSource.objects.filter(connection=connection).first()
    if source is None:
        raise ConnectionRuleError(
            409, "this connection has no IdP metadata URL; set idp_metadata_url first", "idp_metadata_url"
        )
    try:
        xml = metadata_refresh.fetch(adapters.http_client(), source.url)
        result = metadata_refresh.apply_metadata(
            connection, xml, url=source.url, trigger=trigger, triggered_by=actor_label(actor), now=now
        )
    except (MetadataFetchError, ConnectionRuleError) as exc:
        error = (
            exc
            if isinstance(exc, MetadataFetchError)
            else MetadataFetchError("metadata.invalid", exc.detail.removeprefix("metadata: "), upstream=False)
        )
        failures = metadata_refresh.record_failure(source, now, error.summary)
        metrics.idp_metadata_refresh("failed")
        record(
            "connection.idp_metadata_refresh_failed", outcome="failure", account=connection.account,
            connection=connection, request=request, **actor, url=source.url, trigger=trigger,
            reason=error.reason, error=error.detail, consecutive_failures=failures,
        )  # fmt: skip
        raise error from None
    metadata_refresh.record_success(source, now)
    metrics.idp_metadata_refresh(result.outcome)
    change = result.change
    if change is not None and result.outcome == "adopted":
        record(
            "connection.idp_metadata_changed", account=connection.account, connection=connection, request=request,
            **actor, url=source.url, trigger=trigger, change_id=change.pk, changed_fields=change.changed_fields,
            added_certificates=change.added_certificates, removed_certificates=change.removed_certificates,
        )  # fmt: skip
    elif change is not None and result.outcome == "pending" and result.new:
        record(
            "connection.idp_metadata_held", outcome="failure", account=connection.account, connection=connection,
            request=request, **actor, url=source.url, trigger=trigger, change_id=change.pk,
            added_certificates=change.added_certificates, removed_certificates=change.removed_certificates,
        )  # fmt: skip
    return result


def announce_expiry(connection: Connection, now: dt.datetime | None = None) -> list[certificates.CertificateInfo]:
    """Audit each expiry threshold of the connection's certificates that nobody announced yet."""
    now = now or timezone.now()
    with transaction.atomic():
        # Claim and event commit together: a failed write leaves the threshold to announce again.
        claimed = certificates.claim_notices(connection, now)
        for info in claimed:
            code = "connection.certificate_expired" if info.status == "expired" else "connection.certificate_expiring"
            record(
                code, outcome="failure" if info.status == "expired" else "success", account=connection.account,
                connection=connection, fingerprint=info.fingerprint, subject=info.subject,
                not_after=info.not_after.isoformat(), days_left=info.days_left, threshold=info.threshold,
            )  # fmt: skip
    for info in claimed:
        metrics.idp_certificate_warning(str(info.threshold))
    return claimed


@dataclass
class PassResult:
    refreshed: dict[str, str] = field(default_factory=dict)  # connection id -> outcome or error reason
    announced: list[tuple[str, str, str]] = field(default_factory=list)  # (connection id, fingerprint, threshold)


def run_once(now: dt.datetime | None = None) -> PassResult:
    """Refresh every due metadata URL this process claims, then announce crossed expiry thresholds."""
    now = now or timezone.now()
    result = PassResult()
    for source in metadata_refresh.due_sources(now):
        if not metadata_refresh.claim_due(source, now):
            continue  # another process took it
        try:
            result.refreshed[str(source.connection_id)] = refresh(
                source.connection, trigger="schedule", now=now
            ).outcome
        except MetadataFetchError as exc:
            result.refreshed[str(source.connection_id)] = exc.reason
    for connection in Connection.objects.filter(protocol=Connection.Protocol.SAML).select_related("account"):
        for info in announce_expiry(connection, now):
            result.announced.append((str(connection.pk), info.fingerprint, str(info.threshold)))
    return result


def run(*, interval: float = PASS_INTERVAL, first: float = 30.0, stop: threading.Event | None = None) -> None:
    """Run a pass ``first`` seconds from now, then every ``interval`` seconds until ``stop`` is set.

    A failed pass is logged, not fatal: the next one tries again.
    """
    stop = stop or threading.Event()
    wait = first
    while not stop.wait(wait):
        wait = interval
        if not db_connection.in_atomic_block:
            close_old_connections()
        try:
            run_once()
        except Exception:
            log.exception("IdP lifecycle pass failed")
        finally:
            if not db_connection.in_atomic_block:
                close_old_connections()


_thread = ProcessThread("vestibule-idp-lifecycle", run)


def start() -> bool:
    """Start this process's lifecycle thread unless it runs already; True when it was started now."""
    return _thread.start()
