"""System checks (``vestibule check``): risky settings get stable IDs and a hint.

Deployment-wide checks run always; per-connection checks read the database
and run with ``vestibule check --deploy``. The same findings belong in front
of each account's administrators; the IDs are stable so they can be.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Warning, register
from django.db import DatabaseError
from django.utils import timezone

from vestibule.connections import metadata_refresh
from vestibule.connections.certificates import connection_certificates
from vestibule.connections.models import Connection, IdpMetadataSource, MetadataChange

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@register("vestibule")
def check_deployment(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    findings: list[CheckMessage] = []
    host = urlsplit(settings.VESTIBULE_BASE_URL).hostname or ""
    if settings.VESTIBULE_BASE_URL.startswith("http://") and host not in _LOOPBACK:
        findings.append(Warning(
            "VESTIBULE_BASE_URL is plain http on a non-local host.",
            hint="Serve Vestibule over https: session cookies are not marked Secure and SAML logins cannot be bound to the browser.",
            id="vestibule.W001",
        ))  # fmt: skip
    if settings.VESTIBULE_TEST_IDP and host not in _LOOPBACK:
        findings.append(Warning(
            "The built-in test identity provider is on for a non-local deployment.",
            hint="Anyone can assert any identity through it to connections that trust it. Unset VESTIBULE_TEST_IDP.",
            id="vestibule.W002",
        ))  # fmt: skip
    return findings


@register("vestibule", deploy=True)
def check_connections(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    risky = {
        "allow_sha1": ("accepts SHA-1 signatures", "vestibule.W010"),
        "allow_idp_initiated": ("accepts IdP-initiated (unsolicited) SAML responses", "vestibule.W011"),
        "allow_aes_cbc": ("accepts AES-CBC encrypted assertions", "vestibule.W012"),
    }
    findings: list[CheckMessage] = []
    try:
        connections = list(Connection.objects.filter(enabled=True, protocol="saml").select_related("account"))
    except DatabaseError:
        return []  # not migrated yet: nothing to check
    for connection in connections:
        doc = connection.saml_settings
        for key, (what, check_id) in risky.items():
            if doc.get(key):
                findings.append(Warning(
                    f"Connection {connection.account.slug}/{connection.name} ({connection.pk}) {what}.",
                    hint=f"Set saml.{key} to false unless this identity provider cannot do better.",
                    obj=str(connection.pk), id=check_id,
                ))  # fmt: skip
        # vestibule.W013 ("accepts assertions that are not signed themselves")
        # is retired, not reused: a Response signed by a pinned key is enough
        # for the assertion inside it, which is the only one consumed, and at
        # least one signature over the consumed assertion is always required.
        # Response-only signing (Keycloak's default) is therefore the default
        # and nothing to warn about; want_assertions_signed is an opt-in.
    return findings


_ROLLOVER_HINT = (
    "Add the identity provider's new signing certificate beside it (PATCH the connection's saml.certificates, "
    "or POST /api/v1/connections/{id}/saml/idp-metadata/refresh when it has an IdP metadata URL), then remove "
    "the old one once the IdP signs with the new key."
)


@register("vestibule", deploy=True)
def check_idp_lifecycle(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Enabled SAML connections whose IdP certificates expire, or whose metadata URL needs an admin.

    W014 expires within 30 days, W015 within 7 days, W016 expired; W017 a
    fetched metadata change waits for confirmation; W018 the metadata URL
    failed several times in a row.
    """
    findings: list[CheckMessage] = []
    now = timezone.now()
    try:
        connections = list(Connection.objects.filter(enabled=True, protocol="saml").select_related("account"))
        pending = set(
            MetadataChange.objects.filter(status=MetadataChange.Status.PENDING, connection__enabled=True).values_list(
                "connection_id", flat=True
            )
        )
        failing = {
            source.connection_id: source
            for source in IdpMetadataSource.objects.filter(
                consecutive_failures__gte=metadata_refresh.FAILURES_BEFORE_FINDING, connection__enabled=True
            )
        }
    except DatabaseError:
        return []
    for connection in connections:
        name = f"{connection.account.slug}/{connection.name} ({connection.pk})"
        infos = connection_certificates(connection, now)
        valid = [i for i in infos if i.status != "expired"]
        for info in infos:
            when = info.not_after.date().isoformat()
            if info.status == "expired":
                hint = (
                    f"Remove it from saml.certificates; {len(valid)} other pinned certificate(s) still valid."
                    if valid
                    else "Sign-ins through this connection fail. " + _ROLLOVER_HINT.format(id=connection.pk)
                )
                findings.append(Warning(
                    f"Connection {name}: IdP signing certificate {info.fingerprint} expired on {when}.",
                    hint=hint, obj=str(connection.pk), id="vestibule.W016",
                ))  # fmt: skip
            elif info.threshold is not None:
                urgent = info.threshold == "7d"
                findings.append(Warning(
                    f"Connection {name}: IdP signing certificate {info.fingerprint} expires on {when} "
                    f"({info.days_left} days left).",
                    hint=_ROLLOVER_HINT.format(id=connection.pk), obj=str(connection.pk),
                    id="vestibule.W015" if urgent else "vestibule.W014",
                ))  # fmt: skip
        if connection.pk in pending:
            findings.append(Warning(
                f"Connection {name}: the IdP metadata fetched from its URL drops every trusted signing "
                "certificate and was not adopted.",
                hint=f"Review GET /api/v1/connections/{connection.pk}/saml/metadata-changes, then confirm it "
                "(POST .../saml/idp-metadata/confirm) if the IdP really replaced its keys, or discard it.",
                obj=str(connection.pk), id="vestibule.W017",
            ))  # fmt: skip
        if (source := failing.get(connection.pk)) is not None:
            findings.append(Warning(
                f"Connection {name}: its IdP metadata URL failed {source.consecutive_failures} times in a row "
                f"({source.last_error}).",
                hint="Check the URL (GET /api/v1/connections/ID shows it) and that VESTIBULE_OUTBOUND_ALLOW "
                "lists it if it is not public https; the connection keeps its current IdP settings meanwhile.",
                obj=str(connection.pk), id="vestibule.W018",
            ))  # fmt: skip
    return findings
