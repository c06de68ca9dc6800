"""Fixtures for the IdP certificate lifecycle: a local metadata server, IdP metadata documents, SAML connections."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.connections_lifecycle.metadata_server import MetadataServer
from tests.saml_support import cert, key_pair
from vestibule.saml.idp import IdentityProvider, build_idp_metadata

ENTITY = "https://idp.lifecycle.test/metadata"
SSO = "https://idp.lifecycle.test/sso"


def metadata(*keys: str, entity_id: str = ENTITY, sso_url: str = SSO) -> bytes:
    """IdP metadata listing the signing certificates of the committed test keys ``keys`` (one or two)."""
    idp = IdentityProvider(entity_id, sso_url, key_pair(keys[0]))
    return build_idp_metadata(idp, next_certificate=cert(keys[1]) if len(keys) > 1 else None)


@pytest.fixture
def metadata_server() -> Iterator[MetadataServer]:
    server = MetadataServer()
    yield server
    server.close()


@pytest.fixture
def saml_connection(api: Any, make_account: Any) -> Callable[..., dict[str, Any]]:
    """``saml_connection("acme", keys=("idp",), **extra)``: a SAML connection of that account, created by the operator."""

    def make(
        slug: str = "acme", *, keys: tuple[str, ...] = ("idp",), domain: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        make_account(slug)
        body = {
            "protocol": "saml", "name": f"IdP of {slug}", "domains": [domain or f"{slug}.com"],
            "saml": {"idp_entity_id": ENTITY, "sso_url": SSO, "certificates": [cert(k) for k in keys]}, **extra,
        }  # fmt: skip
        created = api.post(f"/api/v1/accounts/{slug}/connections", body)
        assert created.status_code == 201, created.content[:800]
        return dict(created.json())

    return make


@pytest.fixture
def sso_admin_key(make_account: Any) -> Callable[[str], str]:
    """``sso_admin_key("acme")``: an API key of that account holding only sso-admin."""
    from vestibule.authority.models import ApiKey

    def make(slug: str) -> str:
        _, secret = ApiKey.issue(account=make_account(slug), name=f"sso-admin of {slug}", roles=["sso-admin"])
        return secret

    return make
