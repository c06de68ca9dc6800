"""Demo data for ``vestibule demo``: account ``acme`` and a way in within a minute.

Idempotent: running ``vestibule demo`` again finds the SAML connection to the
built-in test IdP by name, re-imports the test IdP's metadata (its key lives in
the data directory and may have been regenerated) and makes sure it is enabled.

The demo administrator ``admin@acme.test`` shares the SSO domain on purpose:
holding ``administrator`` (which implies ``sso-admin``), they are routed to
the password step and stay a break-glass administrator; a new connection also
lists the account's administrators of its domains as ignored emails.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

from django.conf import settings
from django.db import transaction

from vestibule.accounts.models import Account, Membership, Project, ProjectAccess, User
from vestibule.accounts.roles import replace_manual_roles
from vestibule.authority.models import ApiKey
from vestibule.connections import rules
from vestibule.connections.models import Connection
from vestibule.connections.rules import ConnectionRuleError
from vestibule.testidp import idp

ADMIN_EMAIL = "admin@acme.test"
DEMO_DOMAIN = "acme.test"
DEMO_CONNECTION_NAME = "Test identity provider (demo)"


def seed_demo() -> list[str]:
    """Seed (idempotently) and return the lines that tell how to sign in.

    URLs come from ``VESTIBULE_BASE_URL``, which ``vestibule demo --port``
    sets when the operator did not: what is printed is where the server is.
    """
    # One transaction for all of it; the lines are collected inside it, since a
    # generator would run its body (and its writes) after the block had ended.
    with transaction.atomic():
        account, _ = Account.objects.get_or_create(slug="acme", defaults={"name": "Acme Corporation"})
        for slug, name in (("production", "Production"), ("sandbox", "Sandbox")):
            Project.objects.get_or_create(account=account, slug=slug, defaults={"name": name})
        admin = User.objects.filter(email_key=ADMIN_EMAIL).first() or User(email=ADMIN_EMAIL, name="Acme Admin")
        password = secrets.token_urlsafe(12)
        admin.set_password(password)
        admin.login_method = User.LoginMethod.PASSWORD
        admin.is_operator = True
        admin.save()
        Membership.objects.get_or_create(user=admin, account=account)
        replace_manual_roles(admin, account, ["administrator"])
        for project in account.projects.all():
            ProjectAccess.objects.get_or_create(user=admin, project=project, source="manual", connection=None)
        _, key = ApiKey.issue(account=None, name="demo operator key")
        sso_lines = list(seed_demo_connections(account))

    base = settings.VESTIBULE_BASE_URL
    return [
        "",
        "=" * 72,
        f"Vestibule demo is ready at {base}/login",
        f"  Administrator (password login, break-glass): {ADMIN_EMAIL} / {password}",
        *sso_lines,
        f"  Operator API key: {key}",
        f"  Try: curl -H 'Authorization: Bearer {key}' {base}/api/v1/accounts",
        f"  API docs: {base}/api/v1/docs",
        "=" * 72,
    ]


def seed_demo_connections(account: Account) -> Iterator[str]:
    base = settings.VESTIBULE_BASE_URL
    try:
        with transaction.atomic():
            connection = (
                Connection.objects.for_account(account)
                .filter(protocol=Connection.Protocol.SAML, name=DEMO_CONNECTION_NAME)
                .first()
            )
            if connection is None:
                connection = rules.create_connection(
                    account,
                    {
                        "protocol": Connection.Protocol.SAML, "name": DEMO_CONNECTION_NAME, "domains": [DEMO_DOMAIN],
                        "auto_provision": True, "provisioned_users_can_login": True,
                    },
                    may_claim=True,
                )  # fmt: skip
            rules.import_idp_metadata(connection, idp.metadata_xml())
            # Demo only: lets the test IdP's IdP-initiated page work. New
            # connections keep the secure default (off).
            saml = {**connection.saml_settings, "allow_idp_initiated": True}
            rules.update_connection(connection, {"saml": saml, "enabled": True})
    except ConnectionRuleError as exc:
        yield f"  SAML demo connection not created: {exc.detail}"
        return
    yield f"  Sign in via SAML: open {base}/login and type any name@{DEMO_DOMAIN}"
    yield f"    (the built-in test identity provider asks who you want to be; IdP-initiated: {base}/test-idp/login)"
    yield f"    connection {connection.pk}, test IdP metadata: {base}/test-idp/metadata"
