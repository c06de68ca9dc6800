"""Start the Django example: create its SQLite tables, then serve where its redirect URI says (127.0.0.1:5002)."""

import os
from urllib.parse import urlsplit

import django
from django.conf import settings
from django.core.management import call_command

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_site.settings")
    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    where = urlsplit(settings.OIDC_RP_REDIRECT_URI)
    address = f"{where.hostname or '127.0.0.1'}:{where.port or 5002}"
    print(
        f"Django example (mozilla-django-oidc) on http://{address}/ signing in with {settings.OIDC_ISSUER}", flush=True
    )
    call_command("runserver", address, use_reloader=False)
