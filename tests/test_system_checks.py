"""``vestibule check`` findings with stable IDs (STYLE rule 29)."""

from __future__ import annotations

import pytest

from vestibule.connections.checks import check_connections, check_deployment


def test_plain_http_on_a_public_host_is_flagged(settings) -> None:
    settings.VESTIBULE_BASE_URL = "http://sso.example.com"
    assert "vestibule.W001" in {f.id for f in check_deployment()}
    settings.VESTIBULE_BASE_URL = "https://sso.example.com"
    assert check_deployment() == []


def test_test_idp_outside_localhost_is_flagged(settings) -> None:
    settings.VESTIBULE_BASE_URL = "https://sso.example.com"
    settings.VESTIBULE_TEST_IDP = True
    assert {f.id for f in check_deployment()} == {"vestibule.W002"}


@pytest.mark.django_db
def test_risky_saml_settings_of_enabled_connections_are_flagged() -> None:
    from vestibule.accounts.models import Account
    from vestibule.connections.models import Connection

    account = Account.objects.create(slug="acme", name="Acme")
    Connection.objects.create(account=account, protocol="saml", name="Legacy", enabled=True,
                              saml_settings={"allow_sha1": True, "allow_idp_initiated": True, "want_assertions_signed": False})  # fmt: skip
    Connection.objects.create(
        account=account, protocol="saml", name="Off", enabled=False, saml_settings={"allow_sha1": True}
    )
    # W013 (assertions not signed themselves) is retired: a signed Response covering the assertion is the default.
    assert sorted(f.id for f in check_connections()) == ["vestibule.W010", "vestibule.W011"]


@pytest.mark.django_db
def test_a_default_saml_connection_has_no_findings() -> None:
    from vestibule.accounts.models import Account
    from vestibule.connections.models import Connection
    from vestibule.saml import default_settings

    account = Account.objects.create(slug="acme", name="Acme")
    Connection.objects.create(
        account=account, protocol="saml", name="Okta", enabled=True, saml_settings=default_settings()
    )
    assert [f.id for f in check_connections()] == []
