"""Seed the load test's deployment; run as ``python -m tests.load.seed`` with the nodes' environment.

One process, one transaction, against the database the nodes use: an account
with a SAML connection to the built-in test identity provider (the one
``vestibule demo`` creates), people who sign in with a password, and a
confidential OpenID Connect application. Prints what the locustfile needs as
one JSON object on stdout.
"""

from __future__ import annotations

import json
import os
import sys

#: Every password user gets this one; the load test only needs it to be right.
PASSWORD = "load-test password 7f3c"
PASSWORD_USERS = 3
#: Nothing listens there: the client reads the code off the redirect's Location.
REDIRECT_URI = "http://127.0.0.1:9/callback"


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vestibule.conf.settings")
    import django

    django.setup()
    from django.db import transaction

    from vestibule.accounts.models import Account, Membership, User
    from vestibule.accounts.roles import replace_manual_roles
    from vestibule.demo import DEMO_DOMAIN, seed_demo_connections
    from vestibule.provider.applications import register

    with transaction.atomic():
        account, _ = Account.objects.get_or_create(slug="acme", defaults={"name": "Acme Corporation"})
        lines = list(seed_demo_connections(account))
        connection = account.connections.get()
        emails = []
        for number in range(PASSWORD_USERS):
            email = f"pw-{number}@example.org"
            user = User.objects.create_user(email, name=f"Password {number}", password=PASSWORD)
            Membership.objects.create(user=user, account=account)
            replace_manual_roles(user, account, ["analyst"])
            emails.append(email)
        registered = register(name="Load test application", redirect_uris=[REDIRECT_URI], created_by="load test")
    json.dump(
        {
            "connection": str(connection.pk),
            "sso_domain": DEMO_DOMAIN,
            "password_users": emails,
            "password": PASSWORD,
            "client_id": registered.application.client_id,
            "client_secret": registered.client_secret,
            "redirect_uri": REDIRECT_URI,
            "seed_lines": lines,
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
