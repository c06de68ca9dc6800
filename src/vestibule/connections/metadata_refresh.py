"""IdP metadata refresh: re-reading a SAML connection's identity provider from its metadata URL.

An identity provider that publishes its metadata (saml-metadata-2.0-os) at a
URL announces key rollovers there: the new signing certificate appears beside
the old one, later the old one goes. A connection with an
:class:`~vestibule.connections.models.IdpMetadataSource` follows this:

* :func:`fetch` reads the URL with the guarded outbound client it is given
  (https only, no private addresses, no redirects, bounded size and time);
  any failure is a :class:`MetadataFetchError` with a stable ``reason``.
* :func:`apply_metadata` compares the IdP fields the document yields (entity
  ID, SSO URL and binding, signing certificates, NameID format) with the
  connection's. Unchanged: nothing happens. Changed and still trusting at
  least one certificate the connection trusts now (a rollover, a new SSO URL):
  adopted, and a :class:`~vestibule.connections.models.MetadataChange` row
  records it. Changed so that *every* trusted signing certificate would be
  dropped: held as ``pending``, because that is also what a hijacked metadata
  host or DNS name would publish; an sso-admin adopts it with :func:`confirm`
  or refuses it with :func:`discard`.
* :func:`claim_due` lets exactly one of several processes refresh a due
  source (a conditional UPDATE of ``next_fetch_at``).

The metadata document is parsed by :func:`vestibule.saml.parse_idp_metadata`
(hardened parser: no DTD, no entities, bounded size). Audit events are
written above this layer, in ``vestibule.signin.idp_lifecycle``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from django.db import DatabaseError, transaction
from django.db.models import F
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from vestibule.conf import metrics
from vestibule.connections import rules
from vestibule.connections.models import Connection, IdpMetadataSource, MetadataChange
from vestibule.connections.rules import IDP_FIELDS, ConnectionRuleError
from vestibule.outbound import NETWORK_REASONS, OutboundError
from vestibule.saml.keys import certificate_der, fingerprint

__all__ = [
    "FAILURES_BEFORE_FINDING",
    "MAX_METADATA_BYTES",
    "MetadataFetchError",
    "RefreshResult",
    "apply_metadata",
    "claim_due",
    "confirm",
    "discard",
    "due_sources",
    "fetch",
    "generate_from_url",
    "record_failure",
    "record_success",
    "summary",
]

#: Consecutive failed fetches before ``vestibule check`` reports the URL (vestibule.W018).
FAILURES_BEFORE_FINDING = 3
MAX_METADATA_BYTES = 512 * 1024
#: A failed fetch is retried sooner than the interval: 15 minutes, doubling, at most the interval.
RETRY_SECONDS = 15 * 60
_ACCEPT = "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8"

Outcome = Literal["unchanged", "adopted", "pending"]


class MetadataFetchError(Exception):
    """The metadata URL gave no usable document. ``reason`` is stable; ``detail`` is ours, never the server's text.

    ``upstream`` tells a server that is down or answers nonsense (the IdP's
    side, a 502 to an API caller) from a destination the guard refuses or a
    document that is not metadata (the connection's setting, a 422).
    """

    def __init__(self, reason: str, detail: str, *, upstream: bool) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.upstream = upstream

    @property
    def summary(self) -> str:
        return f"{self.reason}: {self.detail}"


def fetch(client: httpx.Client, url: str) -> bytes:
    """The metadata document at ``url``, read through ``client`` (the guarded outbound client)."""
    try:
        response = client.get(url, headers={"Accept": _ACCEPT})
        body = response.content
    except OutboundError as exc:
        raise MetadataFetchError(exc.reason, exc.detail, upstream=exc.reason in NETWORK_REASONS) from None
    except httpx.HTTPError:
        raise MetadataFetchError("outbound.transport_error", "the exchange failed", upstream=True) from None
    if response.status_code != 200:
        raise MetadataFetchError(
            "metadata.http_status", f"the server answered HTTP {response.status_code}, not 200", upstream=True
        )
    if len(body) > MAX_METADATA_BYTES:
        raise MetadataFetchError(
            "outbound.too_large", f"the metadata is larger than {MAX_METADATA_BYTES // 1024} KiB", upstream=False
        )
    if not body.strip():
        raise MetadataFetchError("metadata.invalid", "the server answered an empty body", upstream=True)
    return body


def _fingerprints(certificates: Iterable[str]) -> list[str]:
    out = []
    for pem in certificates:
        try:
            out.append(fingerprint(certificate_der(pem)))
        except ValueError:
            continue
    return out


def summary(settings: dict[str, Any]) -> dict[str, Any]:
    """The IdP fields of a settings document, certificates as SHA-256 fingerprints (for the log and audit)."""
    out = {k: settings.get(k) for k in IDP_FIELDS if k != "certificates"}
    out["certificates"] = _fingerprints(settings.get("certificates") or [])
    return out


@dataclass(frozen=True)
class RefreshResult:
    outcome: Outcome
    change: MetadataChange | None
    #: False when the fetch repeated a change already held (nothing new to announce).
    new: bool = True


def _supersede_pending(connection: Connection, now: dt.datetime, keep: MetadataChange | None = None) -> None:
    pending = MetadataChange.objects.filter(connection=connection, status=MetadataChange.Status.PENDING)
    if keep is not None:
        pending = pending.exclude(pk=keep.pk)
    pending.update(status=MetadataChange.Status.SUPERSEDED, decided_at=now, decided_by="a later metadata fetch")


def apply_metadata(
    connection: Connection, xml: bytes, *, url: str, trigger: str, triggered_by: str, now: dt.datetime
) -> RefreshResult:
    """Compare the fetched document with the connection's IdP fields; adopt it, hold it, or leave all as is.

    Raises :class:`ConnectionRuleError` (422) when the document is not usable metadata.
    """
    with transaction.atomic():
        # One decision at a time per connection: two workers (or a worker and an admin) see each other's result.
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        current = locked.saml_settings or {}
        try:
            proposed_settings = rules.import_idp_metadata(locked, xml, save=False)
        except ConnectionRuleError:
            # An aggregate (EntitiesDescriptor) lists several IdPs: follow the one the connection trusts.
            if not current.get("idp_entity_id"):
                raise
            proposed_settings = rules.import_idp_metadata(locked, xml, entity_id=current["idp_entity_id"], save=False)
        before, after = summary(current), summary(proposed_settings)
        if before == after:
            # The IdP publishes what is configured: a held change is moot now.
            _supersede_pending(locked, now)
            return RefreshResult("unchanged", None)
        trusted, fetched = set(before["certificates"]), set(after["certificates"])
        held = bool(trusted) and not (trusted & fetched)
        proposed = {k: proposed_settings[k] for k in IDP_FIELDS if k in proposed_settings}
        if held:
            same = MetadataChange.objects.filter(
                connection=locked, status=MetadataChange.Status.PENDING, proposed=proposed
            ).first()
            if same is not None:
                return RefreshResult("pending", same, new=False)
        change = MetadataChange.objects.create(
            connection=locked,
            status=MetadataChange.Status.PENDING if held else MetadataChange.Status.ADOPTED,
            url=url, trigger=trigger, triggered_by=triggered_by[:300],
            before=before, after=after, proposed=proposed,
            added_certificates=sorted(fetched - trusted), removed_certificates=sorted(trusted - fetched),
            changed_fields=sorted(k for k in after if after[k] != before.get(k)),
            created_at=now, decided_at=None if held else now, decided_by="" if held else "automatic",
        )  # fmt: skip
        _supersede_pending(locked, now, keep=change)
        if not held:
            locked.saml_settings = proposed_settings
            locked.save(update_fields=["saml_settings", "updated_at"])
            connection.saml_settings = proposed_settings
        return RefreshResult("pending" if held else "adopted", change)


def _pending(locked: Connection, change_id: Any) -> MetadataChange:
    try:
        pk = int(change_id)
    except (TypeError, ValueError):
        pk = None
    # IDOR check: the change is looked up under the connection the caller already may act on.
    change = (
        MetadataChange.objects.select_for_update().filter(connection=locked, pk=pk).first() if pk is not None else None
    )
    if change is None:
        raise ConnectionRuleError(404, f"connection {locked.pk} has no metadata change {change_id}", "change_id")
    if change.status != MetadataChange.Status.PENDING:
        raise ConnectionRuleError(
            409, f"metadata change {change.pk} is {change.status}, not pending; only a pending change is decided",
            "change_id",
        )  # fmt: skip
    return change


def confirm(connection: Connection, change_id: Any, *, decided_by: str, now: dt.datetime) -> MetadataChange:
    """Adopt a held change: the connection trusts exactly the certificates the fetched metadata lists."""
    with transaction.atomic():
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        change = _pending(locked, change_id)
        settings = rules.validate_saml_settings({**(locked.saml_settings or {}), **change.proposed})
        change.before = summary(locked.saml_settings or {})
        locked.saml_settings = settings
        locked.save(update_fields=["saml_settings", "updated_at"])
        connection.saml_settings = settings
        change.status, change.decided_at, change.decided_by = MetadataChange.Status.CONFIRMED, now, decided_by[:300]
        change.save(update_fields=["status", "decided_at", "decided_by", "before"])
        return change


def discard(connection: Connection, change_id: Any, *, decided_by: str, now: dt.datetime) -> MetadataChange:
    """Refuse a held change; the connection keeps its certificates (the next different fetch is held again)."""
    with transaction.atomic():
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        change = _pending(locked, change_id)
        change.status, change.decided_at, change.decided_by = MetadataChange.Status.DISCARDED, now, decided_by[:300]
        change.save(update_fields=["status", "decided_at", "decided_by"])
        return change


def change_out(change: MetadataChange) -> dict[str, Any]:
    return {
        "id": change.pk,
        "status": change.status,
        "url": change.url,
        "trigger": change.trigger,
        "triggered_by": change.triggered_by or None,
        "created_at": change.created_at.isoformat(),
        "decided_at": change.decided_at.isoformat() if change.decided_at else None,
        "decided_by": change.decided_by or None,
        "changed_fields": change.changed_fields,
        "added_certificates": change.added_certificates,
        "removed_certificates": change.removed_certificates,
        "before": change.before,
        "after": change.after,
    }


# Scheduling -----------------------------------------------------------------


def due_sources(now: dt.datetime, limit: int = 50) -> list[IdpMetadataSource]:
    return list(
        IdpMetadataSource.objects.filter(next_fetch_at__lte=now, connection__protocol=Connection.Protocol.SAML)
        .select_related("connection", "connection__account")
        .order_by("next_fetch_at")[:limit]
    )


def claim_due(source: IdpMetadataSource, now: dt.datetime) -> bool:
    """Take a due source for this process: True for exactly one of several concurrent callers."""
    taken = IdpMetadataSource.objects.filter(pk=source.pk, next_fetch_at=source.next_fetch_at).update(
        next_fetch_at=now + rules.refresh_interval(source)
    )
    return taken == 1


def record_success(source: IdpMetadataSource, now: dt.datetime) -> None:
    source.last_fetched_at = source.last_success_at = now
    source.consecutive_failures, source.last_error = 0, ""
    source.next_fetch_at = now + rules.refresh_interval(source)
    source.save(
        update_fields=["last_fetched_at", "last_success_at", "consecutive_failures", "last_error", "next_fetch_at"]
    )


def record_failure(source: IdpMetadataSource, now: dt.datetime, error: str) -> int:
    """Count a failed fetch and schedule the retry; returns the consecutive failures."""
    # F(): two processes failing at once both count.
    IdpMetadataSource.objects.filter(pk=source.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    source.refresh_from_db(fields=["consecutive_failures"])
    retry = min(RETRY_SECONDS * 2 ** (source.consecutive_failures - 1), rules.refresh_interval(source).total_seconds())
    source.last_fetched_at, source.last_error = now, error[:300]
    source.next_fetch_at = now + dt.timedelta(seconds=retry)
    source.save(update_fields=["last_fetched_at", "last_error", "next_fetch_at"])
    return source.consecutive_failures


def _lifecycle_metrics() -> Iterable[Metric]:
    """Gauges an SRE alerts on: changes waiting for an admin, and metadata URLs failing in a row."""
    pending = GaugeMetricFamily(
        "vestibule_idp_metadata_pending_changes",
        "Fetched IdP metadata changes held for an sso-admin (they would drop every trusted signing certificate)",
        labels=["connection", "account"],
    )
    failing = GaugeMetricFamily(
        "vestibule_idp_metadata_consecutive_failures",
        "Failed fetches in a row of a connection's IdP metadata URL",
        labels=["connection", "account"],
    )
    try:
        waiting: dict[tuple[str, str], int] = {}
        for connection_id, slug in MetadataChange.objects.filter(status=MetadataChange.Status.PENDING).values_list(
            "connection_id", "connection__account__slug"
        ):
            waiting[(str(connection_id), slug)] = waiting.get((str(connection_id), slug), 0) + 1
        sources = list(
            IdpMetadataSource.objects.values_list("connection_id", "connection__account__slug", "consecutive_failures")
        )
    except DatabaseError:
        return [pending, failing]
    for labels, count in sorted(waiting.items()):
        pending.add_metric(list(labels), count)
    for connection_id, slug, failures in sources:
        failing.add_metric([str(connection_id), slug], failures)
    return [pending, failing]


metrics.add_scrape_collector(_lifecycle_metrics)


def generate_from_url(connection: Connection, client: httpx.Client, url: Any) -> dict[str, Any]:
    """SAML settings generated from the metadata at ``url``, read once through ``client``; nothing is saved.

    The console's "Generate from metadata" with a URL (seed 001): the same
    checks as a stored metadata URL (:func:`rules.validate_metadata_url`) and
    the same guarded fetch as a refresh, then the settings a dry-run import
    makes, for the sso-admin to review and save. Raises
    :class:`MetadataFetchError` or :class:`ConnectionRuleError`.
    """
    checked = rules.validate_metadata_url(url, field="metadata_url")
    return rules.import_idp_metadata(connection, fetch(client, checked), save=False)
