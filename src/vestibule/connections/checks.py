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

from vestibule.connections.models import Connection

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
