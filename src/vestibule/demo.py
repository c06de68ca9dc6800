"""Demo data for ``vestibule demo``: account ``acme`` and a way in within a minute."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

from django.conf import settings
from django.db import transaction

from vestibule.accounts.internal.rolekit import replace_manual_roles
from vestibule.accounts.models import Account, Membership, Project, ProjectAccess, User
from vestibule.api.models import ApiKey

ADMIN_EMAIL = "admin@acme.test"


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
        sso_lines = list(_seed_sso(account))

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


def _seed_sso(account: Account) -> Iterator[str]:
    """SSO demo data comes from the protocol apps when they are installed."""
    try:
        from vestibule.connections.internal.demokit import seed_demo_connections
    except ImportError:
        return
    yield from seed_demo_connections(account)
