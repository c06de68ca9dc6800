"""OIDC glue: a connection's relying party, with Django's cache and a shared HTTP client."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse

from vestibule import __version__
from vestibule.connections.internal.keykit import read_secrets
from vestibule.connections.models import Connection
from vestibule.oidc import OidcClientConfig, OidcRelyingParty
from vestibule.outbound import OutboundPolicy, guarded_client

_http: tuple[tuple[str, ...], httpx.Client] | None = None
_http_lock = threading.Lock()


def http_client() -> httpx.Client:
    """One pooled, guarded client per process (vestibule.outbound), for the current allow list.

    Rebuilt when ``VESTIBULE_OUTBOUND_ALLOW`` changes (tests change settings);
    the previous client is left to in-flight requests and the garbage collector.
    """
    global _http
    allow = tuple(settings.VESTIBULE_OUTBOUND_ALLOW)
    current = _http
    if current is not None and current[0] == allow:
        return current[1]
    with _http_lock:
        if _http is None or _http[0] != allow:
            client = guarded_client(OutboundPolicy.from_allow(allow), user_agent=f"Vestibule/{__version__}")
            _http = (allow, client)
        return _http[1]


class DjangoCache:
    """The ``vestibule.oidc.Cache`` port on Django's cache (Redis in production)."""

    prefix = "oidc:"

    def get(self, key: str) -> Any | None:
        return cache.get(self.prefix + key)

    def set(self, key: str, value: Any, ttl: float) -> None:
        cache.set(self.prefix + key, value, timeout=max(1, int(ttl)))


def _clock() -> float:
    # vestibule.oidc's Clock is POSIX seconds (JWT NumericDate, RFC 7519 §2), not a datetime.
    return time.time()


def redirect_uri(connection: Connection) -> str:
    return settings.VESTIBULE_BASE_URL + reverse("oidc-callback", args=[connection.pk])


def client_config(connection: Connection) -> OidcClientConfig:
    """Settings document plus the sealed secrets; raises ``OidcConfigError`` when incomplete."""
    secrets = read_secrets(connection)
    data = dict(connection.oidc_settings)
    if secrets.get("client_secret"):
        data["client_secret"] = secrets["client_secret"]
    if secrets.get("private_key"):
        data["private_key"] = secrets["private_key"]
    if connection.external_tenant_id:
        if isinstance(data.get("tenant_binding"), dict):
            data["tenant_binding"] = {**data["tenant_binding"], "tenant_id": connection.external_tenant_id}
        elif data.get("tenant_binding") is None:
            # Without an explicit binding only an Entra {tenantid}-template issuer
            # yields a tenant at "connect organization" (vestibule.oidc.tenancy), so
            # the learned tenant is an Entra tid; dropping it would leave the
            # connection refusing every login as "not bound yet".
            data["tenant_binding"] = {"kind": "entra", "tenant_id": connection.external_tenant_id}
    return OidcClientConfig.from_dict(data)


def relying_party(connection: Connection) -> OidcRelyingParty:
    return OidcRelyingParty(client_config(connection), http_client(), DjangoCache(), _clock)
