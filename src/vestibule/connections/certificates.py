"""IdP certificate expiry: what each pinned signing certificate's notAfter means for its connection.

A SAML connection pins one or more IdP signing certificates (a ring, for
rollover). Each is classified against ``now``:

* ``ok`` — more than :data:`EXPIRING_DAYS` days left;
* ``expiring`` — 30 days or less (threshold ``30d``), 7 days or less (``7d``);
* ``expired`` — notAfter has passed (threshold ``expired``): the signature
  check refuses responses signed with it.

An announcement is made once per (connection, certificate, threshold):
:func:`claim_notices` inserts a :class:`CertificateNotice` row, and the
unique constraint decides which of several processes makes it. Only the
most severe threshold a certificate has reached is claimed, so a certificate
first seen with five days left is announced as ``7d``, not also as ``30d``.
The audit event and its wording live above this layer
(``vestibule.signin.idp_lifecycle``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from django.db import DatabaseError, IntegrityError, transaction
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from vestibule.conf import metrics
from vestibule.connections.models import CertificateNotice, Connection
from vestibule.saml.keys import certificate_der, fingerprint, load_certificate

__all__ = [
    "EXPIRING_DAYS",
    "URGENT_DAYS",
    "CertificateInfo",
    "claim_notices",
    "connection_certificates",
    "describe",
]

EXPIRING_DAYS = 30
URGENT_DAYS = 7
Status = Literal["ok", "expiring", "expired"]
Threshold = Literal["30d", "7d", "expired"]


@dataclass(frozen=True)
class CertificateInfo:
    """One pinned certificate as an administrator needs to see it."""

    fingerprint: str
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    seconds_left: int
    status: Status
    threshold: Threshold | None

    @property
    def days_left(self) -> int:
        # Whole days, rounded down: "0 days left" means it expires within a day.
        return self.seconds_left // 86400

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "subject": self.subject,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "days_left": self.days_left,
            "status": self.status,
        }


def _threshold(seconds_left: int) -> Threshold | None:
    if seconds_left <= 0:
        return "expired"
    if seconds_left <= URGENT_DAYS * 86400:
        return "7d"
    if seconds_left <= EXPIRING_DAYS * 86400:
        return "30d"
    return None


def describe(pem: str, now: dt.datetime) -> CertificateInfo:
    """Classify one certificate (PEM or bare base64); raises ``ValueError`` when it is not one."""
    cert: x509.Certificate = load_certificate(pem)
    not_after = cert.not_valid_after_utc
    seconds_left = int((not_after - now).total_seconds())
    threshold = _threshold(seconds_left)
    status: Status = "ok" if threshold is None else ("expired" if threshold == "expired" else "expiring")
    return CertificateInfo(
        fingerprint=fingerprint(certificate_der(pem)),
        subject=cert.subject.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=not_after,
        seconds_left=seconds_left,
        status=status,
        threshold=threshold,
    )


def pinned(connection: Connection) -> list[str]:
    """The connection's pinned IdP signing certificates (none for OIDC or incomplete settings)."""
    if connection.protocol != Connection.Protocol.SAML:
        return []
    certificates = (connection.saml_settings or {}).get("certificates") or []
    if isinstance(certificates, str):
        certificates = [certificates]
    return [c for c in certificates if isinstance(c, str)] if isinstance(certificates, list) else []


def connection_certificates(connection: Connection, now: dt.datetime) -> list[CertificateInfo]:
    """Every pinned certificate, classified; one that does not parse is left out (settings validation refuses it)."""
    found = []
    for pem in pinned(connection):
        try:
            found.append(describe(pem, now))
        except ValueError:
            continue
    return found


def claim_notices(connection: Connection, now: dt.datetime) -> list[CertificateInfo]:
    """The certificates whose current threshold this call is the first to announce.

    Each claim is its own savepoint: a row another process inserted first
    (IntegrityError) means that process announces it.
    """
    claimed = []
    for info in connection_certificates(connection, now):
        if info.threshold is None:
            continue
        try:
            with transaction.atomic():
                CertificateNotice.objects.create(
                    connection=connection, fingerprint=info.fingerprint, threshold=info.threshold,
                    not_after=info.not_after, created_at=now,
                )  # fmt: skip
        except IntegrityError:
            continue
        claimed.append(info)
    return claimed


def soonest_expiry(connections: Iterable[Connection], now: dt.datetime) -> Iterator[tuple[Connection, int]]:
    """(connection, seconds until its first pinned certificate expires), for those that pin any."""
    for connection in connections:
        infos = connection_certificates(connection, now)
        if infos:
            yield connection, min(i.seconds_left for i in infos)


def _expiry_metrics() -> Iterable[Metric]:
    """``vestibule_idp_certificate_expiry_seconds{connection}``, read from the database at scrape time.

    Computed per scrape rather than set by a worker: every process answers
    the same, a removed certificate or deleted connection disappears at once,
    and no multiprocess file keeps a stale value. Enabled connections only:
    they are the ones whose sign-ins an expiry would stop.
    """
    gauge = GaugeMetricFamily(
        "vestibule_idp_certificate_expiry_seconds",
        "Seconds until the first of an enabled SAML connection's pinned IdP signing certificates expires "
        "(negative: expired)",
        labels=["connection", "account"],
    )
    try:
        enabled = list(Connection.objects.filter(enabled=True, protocol="saml").select_related("account"))
    except DatabaseError:
        return [gauge]
    now = dt.datetime.now(dt.UTC)
    for connection, seconds in soonest_expiry(enabled, now):
        gauge.add_metric([str(connection.pk), connection.account.slug], seconds)
    return [gauge]


metrics.add_scrape_collector(_expiry_metrics)
