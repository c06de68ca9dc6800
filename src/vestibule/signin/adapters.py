"""Adapters from a connection record to the protocol packages' objects.

``vestibule.saml`` and ``vestibule.oidc`` know nothing of Django or the
database; these functions build their service provider, settings and relying
party from a :class:`~vestibule.connections.models.Connection`, with Django's
cache and one guarded HTTP client per process.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse

from vestibule import __version__
from vestibule.conf import metrics
from vestibule.connections.keys import ensure_sp_keys, read_secrets, sp_key_arguments
from vestibule.connections.models import Connection
from vestibule.oidc import OidcClientConfig, OidcRelyingParty
from vestibule.outbound import OutboundError, OutboundPolicy, guarded_client
from vestibule.saml import SamlSettings, ServiceProvider

# ---- SAML


def sp_urls(connection: Connection) -> dict[str, str]:
    return sp_urls_for(str(connection.pk))


def sp_urls_for(pk: str) -> dict[str, str]:
    base = settings.VESTIBULE_BASE_URL
    metadata = base + reverse("saml-metadata", args=[pk])
    return {
        # The metadata URL doubles as the entity ID, as most SPs do: it is unique
        # per connection and resolvable.
        "sp_entity_id": metadata,
        "acs_url": base + reverse("saml-acs", args=[pk]),
        "metadata_url": metadata,
        "sign_in_url": base + reverse("sso-start", args=[pk]),
    }


def service_provider(connection: Connection) -> ServiceProvider:
    """The connection's SP, parsed once per (connection, sealed secrets, base URL).

    The cache is keyed on the sealed blob and looked at first, so the secrets
    are opened (a decryption) and the PEM keys loaded only for a blob not seen
    yet; a key change or rotation step writes a new blob and is seen at once.
    """
    base = settings.VESTIBULE_BASE_URL
    sp = _SP_CACHE.get((str(connection.pk), connection.secrets_encrypted, base))
    if sp is not None:
        return sp
    before = connection.secrets_encrypted
    secrets = ensure_sp_keys(connection)
    if connection.secrets_encrypted != before:
        connection.save(update_fields=["secrets_encrypted"])
    return _build_sp(str(connection.pk), connection.secrets_encrypted, base, secrets)


_SP_CACHE: dict[tuple[str, str, str], ServiceProvider] = {}


def _build_sp(pk: str, sealed: str, base: str, secrets: dict[str, Any]) -> ServiceProvider:
    # Loading PEM keys costs more than validating a signature. Only a blob that
    # holds the SP key pairs (ensure_sp_keys ran) is ever a key here.
    if len(_SP_CACHE) > 1000:
        _SP_CACHE.clear()
    urls = sp_urls_for(pk)
    sp = ServiceProvider(
        entity_id=urls["sp_entity_id"],
        acs_url=urls["acs_url"],
        metadata_url=urls["metadata_url"],
        # Current keys, and the staged next (or, after a promotion, the previous)
        # ones of a key rotation: see vestibule.connections.keys.
        **sp_key_arguments(secrets),
    )
    _SP_CACHE[(pk, sealed, base)] = sp
    return sp


def saml_settings(connection: Connection) -> SamlSettings:
    """The connection's validated settings; raises ``SamlSettingsError`` when incomplete.

    Parsed once per stored document: ``SamlSettings`` is frozen, and parsing
    (certificates included) costs more than the lookup. The key is the
    document's own text, not a version or timestamp, so any change to it (a
    certificate rotated by a metadata refresh, say) is a new key at once.
    """
    key = json.dumps(connection.saml_settings, sort_keys=True)
    settings = _SETTINGS_CACHE.get(key)
    if settings is None:
        settings = SamlSettings.from_dict(connection.saml_settings)
        if len(_SETTINGS_CACHE) > 1000:
            _SETTINGS_CACHE.clear()
        _SETTINGS_CACHE[key] = settings
    return settings


_SETTINGS_CACHE: dict[str, SamlSettings] = {}


# ---- OpenID Connect

_http: tuple[tuple[str, ...], httpx.Client] | None = None
_http_lock = threading.Lock()


class CountingTransport(httpx.BaseTransport):
    """Counts the fetches that fail (``vestibule_outbound_fetch_errors_total``), by bounded kind."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self.inner.handle_request(request)
        except OutboundError as exc:
            metrics.outbound_fetch_error(exc.reason)
            raise
        except httpx.TimeoutException:
            metrics.outbound_fetch_error("outbound.timeout")
            raise
        except httpx.TransportError:
            metrics.outbound_fetch_error("outbound.transport_error")
            raise

    def close(self) -> None:
        self.inner.close()


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
            client = guarded_client(
                OutboundPolicy.from_allow(allow), user_agent=f"Vestibule/{__version__}", wrap=CountingTransport
            )
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
