"""Demo SSO data: account ``acme`` gets a SAML connection to the built-in test IdP.

Idempotent: running ``vestibule demo`` again finds the connection by name,
re-imports the test IdP's metadata (its key lives in the data directory and
may have been regenerated) and makes sure it is enabled.

The demo administrator ``admin@acme.test`` shares the SSO domain on purpose:
holding ``administrator`` (which implies ``sso-admin``), they are routed to
the password step and stay a break-glass administrator; a new connection also
lists the account's administrators of its domains as ignored emails.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.db import transaction

from vestibule.accounts.models import Account
from vestibule.connections.internal import connectionkit
from vestibule.connections.internal.connectionkit import ConnectionRuleError
from vestibule.connections.models import Connection

DEMO_DOMAIN = "acme.test"
DEMO_CONNECTION_NAME = "Test identity provider (demo)"


def seed_demo_connections(account: Account) -> Iterator[str]:
    from vestibule.testidp.internal import idpkit

    base = settings.VESTIBULE_BASE_URL
    try:
        with transaction.atomic():
            connection = (
                Connection.objects.for_account(account)
                .filter(protocol=Connection.Protocol.SAML, name=DEMO_CONNECTION_NAME)
                .first()
            )
            if connection is None:
                connection = connectionkit.create_connection(
                    account,
                    {
                        "protocol": Connection.Protocol.SAML, "name": DEMO_CONNECTION_NAME, "domains": [DEMO_DOMAIN],
                        "auto_provision": True, "provisioned_users_can_login": True,
                    },
                    may_claim=True,
                )  # fmt: skip
            connectionkit.import_idp_metadata(connection, idpkit.metadata_xml())
            # Demo only: lets the test IdP's IdP-initiated page work. New
            # connections keep the secure default (off).
            saml = {**connection.saml_settings, "allow_idp_initiated": True}
            connectionkit.update_connection(connection, {"saml": saml, "enabled": True})
    except ConnectionRuleError as exc:
        yield f"  SAML demo connection not created: {exc.detail}"
        return
    yield f"  Sign in via SAML: open {base}/login and type any name@{DEMO_DOMAIN}"
    yield f"    (the built-in test identity provider asks who you want to be; IdP-initiated: {base}/test-idp/login)"
    yield f"    connection {connection.pk}, test IdP metadata: {base}/test-idp/metadata"
