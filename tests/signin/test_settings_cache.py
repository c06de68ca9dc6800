"""signin.adapters.saml_settings parses a connection's settings once, and sees every change at once."""

from __future__ import annotations

from tests.saml_support import cert
from vestibule.connections.models import Connection
from vestibule.signin import adapters


def _connection(certificate: str) -> Connection:
    # Unsaved: the cache is keyed on the settings document, never on the row or its timestamps.
    return Connection(
        protocol="saml",
        name="IdP",
        saml_settings={
            "idp_entity_id": "https://idp.example.test/metadata",
            "sso_url": "https://idp.example.test/sso",
            "certificates": [certificate],
        },
    )


def test_the_same_document_is_parsed_once() -> None:
    first = adapters.saml_settings(_connection(cert("idp")))
    assert adapters.saml_settings(_connection(cert("idp"))) is first


def test_a_rotated_certificate_is_used_on_the_next_login_not_the_cached_one() -> None:
    connection = _connection(cert("idp"))
    before = adapters.saml_settings(connection)
    # A metadata refresh (or an admin) replaces the certificate, even with a queryset update that
    # leaves updated_at alone: the next login must check against the new one only.
    connection.saml_settings = {**connection.saml_settings, "certificates": [cert("idp_next")]}
    after = adapters.saml_settings(connection)
    assert after is not before
    assert after.certificates != before.certificates
    assert adapters.saml_settings(_connection(cert("idp"))).certificates == before.certificates
