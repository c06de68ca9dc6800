"""Settings of the Django example: a minimal site that signs people in with Vestibule through mozilla-django-oidc.

The client's credentials come from the file ``vestibule demo`` writes
(``$VESTIBULE_DATA_DIR/demo-applications.json``; ``VESTIBULE_DEMO_APPLICATIONS``
names another), or from ``OIDC_ISSUER``, ``OIDC_CLIENT_ID``,
``OIDC_CLIENT_SECRET`` and ``OIDC_REDIRECT_URI``. The provider's endpoints
are read once, at start, from its discovery document: mozilla-django-oidc
wants them as settings.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.request
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

HERE = Path(__file__).resolve().parent
EXAMPLE_DIR = HERE.parent
# Where `vestibule demo`, started from the repository root, writes the credentials (its data dir is ./var).
DEFAULT_APPLICATIONS_FILE = EXAMPLE_DIR.parent.parent / "var" / "demo-applications.json"
APPLICATION_KEY = "django-mozilla-oidc"


def _client() -> dict[str, str]:
    if os.environ.get("OIDC_ISSUER"):
        return {
            "issuer": os.environ["OIDC_ISSUER"].rstrip("/"),
            "client_id": os.environ["OIDC_CLIENT_ID"],
            "client_secret": os.environ.get("OIDC_CLIENT_SECRET", ""),
            "redirect_uri": os.environ.get("OIDC_REDIRECT_URI", "http://127.0.0.1:5002/oidc/callback/"),
            "home": os.environ.get("OIDC_POST_LOGOUT_REDIRECT_URI", "http://127.0.0.1:5002/"),
        }
    path = Path(os.environ.get("VESTIBULE_DEMO_APPLICATIONS") or DEFAULT_APPLICATIONS_FILE)
    try:
        entry: dict[str, Any] = json.loads(path.read_text())["applications"][APPLICATION_KEY]
    except FileNotFoundError:
        raise ImproperlyConfigured(
            f"{path} does not exist: start `vestibule demo` (make demo) first, or point "
            "VESTIBULE_DEMO_APPLICATIONS at the demo-applications.json in its data directory"
        ) from None
    except (KeyError, ValueError) as exc:
        raise ImproperlyConfigured(f"{path} has no usable '{APPLICATION_KEY}' entry ({exc!r})") from None
    return {
        "issuer": entry["issuer"].rstrip("/"),
        "client_id": entry["client_id"],
        "client_secret": entry["client_secret"],
        "redirect_uri": entry["redirect_uris"][0],
        "home": (entry.get("post_logout_redirect_uris") or ["/"])[0],
    }


def _discover(issuer: str) -> dict[str, Any]:
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            document: dict[str, Any] = json.load(response)
    except OSError as exc:
        raise ImproperlyConfigured(f"cannot read {url} ({exc}): is `vestibule demo` running?") from None
    if document.get("issuer") != issuer:
        raise ImproperlyConfigured(f"{url} names the issuer {document.get('issuer')!r}, not {issuer!r}")
    return document


CLIENT = _client()
PROVIDER = _discover(CLIENT["issuer"])

# --- Django --------------------------------------------------------------------------------
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(48)
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "example_site.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "mozilla_django_oidc",
    "example_site",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DATABASE") or str(EXAMPLE_DIR / "db.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
# Vestibule (also a Django site, with its own csrftoken) and the Flask example run on the
# same host, and browsers share cookies across ports: these names keep the sites apart.
SESSION_COOKIE_NAME = "django_example_session"
CSRF_COOKIE_NAME = "django_example_csrftoken"
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"mozilla_django_oidc": {"handlers": ["console"], "level": "INFO"}},
}

# --- Signing in with Vestibule (mozilla-django-oidc) ---------------------------------------
AUTHENTICATION_BACKENDS = ["example_site.auth.VestibuleBackend"]
OIDC_ISSUER = CLIENT["issuer"]
OIDC_RP_CLIENT_ID = CLIENT["client_id"]
OIDC_RP_CLIENT_SECRET = CLIENT["client_secret"]
OIDC_RP_REDIRECT_URI = CLIENT["redirect_uri"]  # must equal http://<this host>/oidc/callback/
OIDC_RP_SCOPES = "openid email profile organization"
# Vestibule's default signing key is RS256; after a rotation to an ES256 key, set OIDC_RP_SIGN_ALGO=ES256.
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_OP_AUTHORIZATION_ENDPOINT = PROVIDER["authorization_endpoint"]
OIDC_OP_TOKEN_ENDPOINT = PROVIDER["token_endpoint"]
OIDC_OP_USER_ENDPOINT = PROVIDER["userinfo_endpoint"]
OIDC_OP_JWKS_ENDPOINT = PROVIDER["jwks_uri"]
OIDC_OP_END_SESSION_ENDPOINT = PROVIDER.get("end_session_endpoint", "")
# Sign-out goes through Vestibule's end_session_endpoint, with the ID token as the hint.
OIDC_STORE_ID_TOKEN = True
OIDC_OP_LOGOUT_URL_METHOD = "example_site.auth.provider_logout_url"
OIDC_POST_LOGOUT_REDIRECT_URI = CLIENT["home"]
OIDC_CALLBACK_CLASS = "example_site.views.CallbackView"
LOGIN_REDIRECT_URL = "/"
LOGIN_REDIRECT_URL_FAILURE = "/?failed=1"
LOGOUT_REDIRECT_URL = "/"
