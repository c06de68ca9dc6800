"""IdP signing-certificate expiry: classification, the API's view, once-per-threshold audit, checks, metric, CLI.

The committed test certificates expire on 2049-01-01T00:00:00Z (``idp_expired``
on 2021-01-01), so the clock is injected where a threshold is crossed; the
system check and the scrape read the real clock, and use certificates made
here with a chosen notAfter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.db import IntegrityError, transaction
from django.test import Client

from tests.saml_support import cert
from vestibule import cli
from vestibule.audit.models import AuditEvent
from vestibule.connections.certificates import claim_notices, connection_certificates, describe
from vestibule.connections.checks import check_idp_lifecycle
from vestibule.connections.models import CertificateNotice, Connection
from vestibule.saml.keys import certificate_der
from vestibule.signin import idp_lifecycle

pytestmark = pytest.mark.django_db

EXPIRY = dt.datetime(2049, 1, 1, tzinfo=dt.UTC)
METRICS_TOKEN = "metrics-token-0123456789abcdef"


def days_before(days: float) -> dt.datetime:
    return EXPIRY - dt.timedelta(days=days)


def short_lived(days: float, name: str = "Short-lived IdP") -> str:
    """A self-signed certificate expiring ``days`` from now (negative: already expired)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    built = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400)).not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return built.public_bytes(serialization.Encoding.PEM).decode()


def events(code: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(code=code).order_by("pk"))


@pytest.mark.parametrize(
    ("at", "status", "threshold", "days_left"),
    [
        (days_before(31), "ok", None, 31),
        (days_before(30), "expiring", "30d", 30),
        (days_before(8), "expiring", "30d", 8),
        (days_before(7), "expiring", "7d", 7),
        (days_before(0.5), "expiring", "7d", 0),
        (EXPIRY, "expired", "expired", 0),
        (EXPIRY + dt.timedelta(days=3), "expired", "expired", -3),
    ],
)
def test_each_certificate_is_classified_by_its_not_after(
    at: dt.datetime, status: str, threshold: str | None, days_left: int
) -> None:
    info = describe(cert("idp"), at)
    assert (info.status, info.threshold, info.days_left) == (status, threshold, days_left)
    assert info.not_after == EXPIRY
    digest = hashlib.sha256(certificate_der(cert("idp"))).hexdigest().upper()
    assert info.fingerprint.replace(":", "") == digest


def test_the_api_lists_each_pinned_certificate_with_its_status(saml_connection: Any, api: Any) -> None:
    connection = saml_connection(keys=("idp", "idp_expired"))
    got = api.get(f"/api/v1/connections/{connection['id']}").json()
    assert [c["status"] for c in got["idp_certificates"]] == ["ok", "expired"]
    ok, expired = got["idp_certificates"]
    assert ok["not_after"] == "2049-01-01T00:00:00+00:00" and ok["days_left"] > 7000
    assert expired["not_after"] == "2021-01-01T00:00:00+00:00" and expired["days_left"] < 0
    assert set(ok) == {"fingerprint", "subject", "not_before", "not_after", "days_left", "status"}
    assert got["idp_metadata"] is None


def test_each_threshold_is_announced_once(saml_connection: Any) -> None:
    connection = Connection.objects.get(pk=saml_connection(keys=("idp",))["id"])
    assert idp_lifecycle.announce_expiry(connection, days_before(40)) == []
    first = idp_lifecycle.announce_expiry(connection, days_before(20))
    assert [i.threshold for i in first] == ["30d"]
    # Later passes inside the same threshold say nothing more.
    assert idp_lifecycle.announce_expiry(connection, days_before(19)) == []
    assert idp_lifecycle.announce_expiry(connection, days_before(8)) == []
    assert [i.threshold for i in idp_lifecycle.announce_expiry(connection, days_before(6))] == ["7d"]
    assert [i.threshold for i in idp_lifecycle.announce_expiry(connection, EXPIRY)] == ["expired"]
    assert idp_lifecycle.announce_expiry(connection, EXPIRY + dt.timedelta(days=1)) == []

    expiring = events("connection.certificate_expiring")
    assert [e.detail["threshold"] for e in expiring] == ["30d", "7d"]
    assert [e.detail["days_left"] for e in expiring] == [20, 6]
    assert expiring[0].detail["fingerprint"] == first[0].fingerprint
    assert expiring[0].detail["not_after"] == "2049-01-01T00:00:00+00:00"
    assert expiring[0].account.slug == "acme" and str(expiring[0].connection_id) == str(connection.pk)
    expired = events("connection.certificate_expired")
    assert len(expired) == 1 and expired[0].outcome == "failure"


def test_a_certificate_first_seen_late_gets_only_its_current_threshold(saml_connection: Any) -> None:
    connection = Connection.objects.get(pk=saml_connection(keys=("idp",))["id"])
    assert [i.threshold for i in idp_lifecycle.announce_expiry(connection, days_before(3))] == ["7d"]
    assert [e.detail["threshold"] for e in events("connection.certificate_expiring")] == ["7d"]


def test_a_threshold_another_process_claimed_is_not_announced_again(saml_connection: Any) -> None:
    """Two serve workers run the pass: the unique row decides which one audits."""
    connection = Connection.objects.get(pk=saml_connection(keys=("idp",))["id"])
    now = days_before(10)
    info = connection_certificates(connection, now)[0]
    # The other worker got there first.
    CertificateNotice.objects.create(
        connection=connection, fingerprint=info.fingerprint, threshold="30d", not_after=info.not_after
    )
    assert idp_lifecycle.announce_expiry(connection, now) == []
    assert events("connection.certificate_expiring") == []
    with pytest.raises(IntegrityError), transaction.atomic():
        CertificateNotice.objects.create(
            connection=connection, fingerprint=info.fingerprint, threshold="30d", not_after=info.not_after
        )
    # Positive control: the claim itself hands each threshold out exactly once.
    assert [i.threshold for i in claim_notices(connection, days_before(5))] == ["7d"]
    assert claim_notices(connection, days_before(5)) == []


def test_a_rolled_over_certificate_is_announced_for_itself(saml_connection: Any) -> None:
    """Notices are per certificate: the next certificate's thresholds are its own."""
    connection = Connection.objects.get(pk=saml_connection(keys=("idp", "idp_next"))["id"])
    announced = idp_lifecycle.announce_expiry(connection, days_before(20))
    assert len(announced) == 2 and len({i.fingerprint for i in announced}) == 2


def test_vestibule_check_reports_expiring_and_expired_certificates(saml_connection: Any, api: Any) -> None:
    soon, very_soon, gone = short_lived(20), short_lived(3), short_lived(-2)
    connection = saml_connection(keys=("idp",))
    path = f"/api/v1/connections/{connection['id']}"
    for pems, expected in (
        ([cert("idp")], []),
        ([cert("idp"), soon], ["vestibule.W014"]),
        ([very_soon], ["vestibule.W015"]),
        ([cert("idp"), gone], ["vestibule.W016"]),
    ):
        changed = api.patch(path, {"saml": {"certificates": pems}, "enabled": True})
        assert changed.status_code == 200, changed.content[:500]
        findings = check_idp_lifecycle()
        assert [f.id for f in findings] == expected
    finding = findings[0]
    assert "expired on" in finding.msg and "1 other pinned certificate(s) still valid" in (finding.hint or "")
    api.patch(path, {"saml": {"certificates": [very_soon]}})
    hint = check_idp_lifecycle()[0].hint or ""
    assert "new signing certificate" in hint and "idp-metadata/refresh" in hint
    # A disabled connection signs nobody in: nothing to report.
    api.patch(path, {"enabled": False})
    assert check_idp_lifecycle() == []


def test_the_expiry_gauge_is_read_at_scrape_time(saml_connection: Any, api: Any, settings: Any) -> None:
    settings.VESTIBULE_METRICS_TOKEN = METRICS_TOKEN
    connection = saml_connection(keys=("idp",))
    api.patch(f"/api/v1/connections/{connection['id']}", {"saml": {"certificates": [short_lived(10)]}, "enabled": True})
    other = saml_connection("globex", keys=("idp",))  # disabled: not in the gauge

    def gauge() -> dict[str, float]:
        text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}").content.decode()
        values = {}
        for line in text.splitlines():
            if line.startswith("vestibule_idp_certificate_expiry_seconds{"):
                labels, value = line.rsplit(" ", 1)
                values[labels.split('connection="', 1)[1].split('"', 1)[0]] = float(value)
        return values

    seen = gauge()
    assert set(seen) == {connection["id"]} and other["id"] not in seen
    assert 9 * 86400 < seen[connection["id"]] <= 10 * 86400
    # The soonest of the ring counts; a removed certificate leaves the gauge at once.
    api.patch(f"/api/v1/connections/{connection['id']}", {"saml": {"certificates": [cert("idp"), short_lived(-1)]}})
    assert gauge()[connection["id"]] < 0
    api.patch(f"/api/v1/connections/{connection['id']}", {"saml": {"certificates": [cert("idp")]}})
    assert gauge()[connection["id"]] > 20 * 365 * 86400


def test_another_accounts_admin_cannot_read_the_certificates(
    saml_connection: Any, api: Any, sso_admin_key: Any
) -> None:
    """Tenancy: B's sso-admin gets the same 404 as for a connection that does not exist."""
    connection = saml_connection("acme", keys=("idp",))
    saml_connection("globex", keys=("idp",))
    outsider = api.as_key(sso_admin_key("globex"))
    assert outsider.get(f"/api/v1/connections/{connection['id']}").status_code == 404
    insider = api.as_key(sso_admin_key("acme"))
    assert insider.get(f"/api/v1/connections/{connection['id']}").json()["idp_certificates"][0]["status"] == "ok"


def test_the_cli_lists_certificates_and_announces_once(
    saml_connection: Any, api: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(cli.common, "_setup", lambda test_idp=False, server=False: None)
    connection = saml_connection(keys=("idp",))
    api.patch(f"/api/v1/connections/{connection['id']}", {"saml": {"certificates": [cert("idp"), short_lived(5)]}})
    saml_connection("globex", keys=("idp_expired",))

    assert cli.main(["connection", "check-certificates", "--account", "acme", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["account"], r["status"], r["announced_now"]) for r in rows] == [
        ("acme", "ok", False), ("acme", "expiring", True),
    ]  # fmt: skip
    assert cli.main(["connection", "check-certificates"]) == 0
    out, err = capsys.readouterr()
    assert "expired" in out and "(announced now)" in out and "Next: add the IdP's new certificate" in err
    # The acme certificate was announced by the first run; only globex's expired one is new.
    assert out.count("(announced now)") == 1
    assert len(events("connection.certificate_expiring")) == 1
    assert len(events("connection.certificate_expired")) == 1
