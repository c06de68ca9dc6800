"""SAML glue: a connection's SP identity and settings as ``vestibule.saml`` objects."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from vestibule.connections.internal.keykit import ensure_sp_keys
from vestibule.connections.models import Connection
from vestibule.saml import KeyPair, SamlSettings, ServiceProvider


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
    before = connection.secrets_encrypted
    secrets = ensure_sp_keys(connection)
    if connection.secrets_encrypted != before:
        connection.save(update_fields=["secrets_encrypted"])
    return _build_sp(str(connection.pk), connection.secrets_encrypted, settings.VESTIBULE_BASE_URL, _pairs(secrets))


def _pairs(secrets: dict[str, dict[str, str]]) -> tuple[tuple[str, str], tuple[str, str]]:
    signing, encryption = secrets["sp_signing"], secrets["sp_encryption"]
    return (signing["key"], signing["cert"]), (encryption["key"], encryption["cert"])


_SP_CACHE: dict[tuple[str, str, str], ServiceProvider] = {}


def _build_sp(
    pk: str, sealed: str, base: str, pairs: tuple[tuple[str, str], tuple[str, str]]
) -> ServiceProvider:
    # Loading PEM keys costs more than validating a signature; keep the parsed
    # object per (connection, sealed secrets) so a key change is seen at once.
    cache_key = (pk, sealed, base)
    sp = _SP_CACHE.get(cache_key)
    if sp is None:
        if len(_SP_CACHE) > 1000:
            _SP_CACHE.clear()
        urls = sp_urls_for(pk)
        sp = ServiceProvider(
            entity_id=urls["sp_entity_id"],
            acs_url=urls["acs_url"],
            metadata_url=urls["metadata_url"],
            signing=KeyPair(*pairs[0]),
            encryption=KeyPair(*pairs[1]),
        )
        _SP_CACHE[cache_key] = sp
    return sp


def saml_settings(connection: Connection) -> SamlSettings:
    """The connection's validated settings; raises ``SamlSettingsError`` when incomplete."""
    return SamlSettings.from_dict(connection.saml_settings)
