"""The test IdP's identity and which service providers it will answer.

Its signing key is generated once into ``<data dir>/test-idp/signing.pem``
(private key and certificate, mode 0600, directory 0700) and reused, so
connections that imported its metadata keep trusting it across restarts.

It answers only SAML connections of this deployment that trust it (their
settings name its entity ID), and posts only to their own ACS URL: an
AuthnRequest naming any other AssertionConsumerServiceURL is refused, so the
test IdP can never be used to mint signed responses for somebody else's site.
"""

from __future__ import annotations

import os
import secrets
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import Resolver404, resolve, reverse

from vestibule.connections.keys import generate_key_pair
from vestibule.connections.models import Connection
from vestibule.saml import IdentityProvider, KeyPair, build_idp_metadata
from vestibule.signin import adapters

_lock = threading.Lock()
_cache: dict[tuple[str, str], IdentityProvider] = {}


class NotAllowed(Exception):
    """This IdP will not answer the request; the message is shown to the person."""


def key_path() -> Path:
    return Path(settings.CONFIG.data_dir) / "test-idp" / "signing.pem"


def _load_or_create(path: Path) -> KeyPair:
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pair = generate_key_pair("Vestibule test identity provider")
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(pair["key"] + pair["cert"])
        try:
            # link() is atomic and refuses to overwrite: when two processes race,
            # the first key published wins and both use it.
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    text = path.read_text()
    marker = "-----BEGIN CERTIFICATE-----"
    key, _, cert = text.partition(marker)
    return KeyPair(key.strip() + "\n", marker + cert)


def identity_provider() -> IdentityProvider:
    base = settings.VESTIBULE_BASE_URL
    path = key_path()
    cache_key = (base, str(path))
    with _lock:
        idp = _cache.get(cache_key)
        if idp is None:
            idp = IdentityProvider(
                entity_id=base + reverse("testidp-metadata"),
                sso_url=base + reverse("testidp-sso"),
                signing=_load_or_create(path),
            )
            _cache[cache_key] = idp
    return idp


def metadata_xml() -> bytes:
    return build_idp_metadata(identity_provider())


def trusting_connections() -> list[Connection]:
    """Enabled SAML connections of this deployment whose settings trust this IdP."""
    entity_id = identity_provider().entity_id
    return [
        c
        for c in Connection.objects.select_related("account")
        .filter(protocol=Connection.Protocol.SAML, enabled=True)
        .order_by("account__slug", "name")
        if c.saml_settings.get("idp_entity_id") == entity_id
    ]


def connection_for_sp(unverified_issuer: str) -> Connection:
    """The connection whose SP entity ID is ``unverified_issuer``, if it trusts this IdP."""
    base = settings.VESTIBULE_BASE_URL
    parts = urlsplit(unverified_issuer)
    if not unverified_issuer.startswith(base + "/"):
        raise NotAllowed("This test identity provider only signs in to this Vestibule deployment.")
    try:
        match = resolve(parts.path)
    except Resolver404:
        match = None
    if match is None or match.url_name != "saml-metadata":
        raise NotAllowed("The request does not come from a SAML connection of this deployment.")
    return trusted_connection(match.kwargs["connection_id"], expected_issuer=unverified_issuer)


def trusted_connection(connection_id: str, *, expected_issuer: str | None = None) -> Connection:
    try:
        pk = uuid.UUID(str(connection_id))
    except ValueError:
        raise NotAllowed("Unknown connection.") from None
    connection = Connection.objects.select_related("account").filter(pk=pk, protocol=Connection.Protocol.SAML).first()
    if connection is None:
        raise NotAllowed("Unknown connection.")
    if expected_issuer is not None and adapters.sp_urls(connection)["sp_entity_id"] != expected_issuer:
        raise NotAllowed("The request does not come from a SAML connection of this deployment.")
    if connection.saml_settings.get("idp_entity_id") != identity_provider().entity_id:
        raise NotAllowed(
            "This connection does not trust the test identity provider. Import the metadata from "
            f"{identity_provider().entity_id} into it first."
        )
    return connection
