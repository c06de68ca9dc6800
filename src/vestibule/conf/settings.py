"""Django settings, built from :mod:`vestibule.conf.env` and nothing else.

Operators never edit this file: every knob is a ``VESTIBULE_*`` variable.
"""

from __future__ import annotations

import dj_database_url

from vestibule.conf.env import load_config
from vestibule.conf.logging import logging_settings

CONFIG = load_config()

SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
ALLOWED_HOSTS = list(CONFIG.allowed_hosts) + (["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
VESTIBULE_BASE_URL = CONFIG.base_url
VESTIBULE_TEST_IDP = CONFIG.test_idp
VESTIBULE_TRUSTED_PROXIES = CONFIG.trusted_proxies
VESTIBULE_ROLE_CATALOG_PATH = CONFIG.role_catalog_path
# Exceptions to the outbound guard (vestibule.outbound); read by adapters.http_client().
VESTIBULE_OUTBOUND_ALLOW = CONFIG.outbound_allow
# Bearer token of GET /metrics; empty = the endpoint is a 404 (vestibule.conf.metrics).
VESTIBULE_METRICS_TOKEN = CONFIG.metrics_token
# (IP, port) of the DNS server domain verification asks; None = the system's resolver.
VESTIBULE_DNS_RESOLVER = CONFIG.dns_resolver
# The deployment's brand (vestibule.console.branding): product name, logo (checked bytes or None), accent colour.
VESTIBULE_PRODUCT_NAME = CONFIG.product_name
VESTIBULE_LOGO = CONFIG.logo
VESTIBULE_ACCENT = CONFIG.accent
VESTIBULE_ACCENT_TEXT = CONFIG.accent_text

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    # One-time notices after a redirect ("Connection enabled"), shown by the console.
    "django.contrib.messages",
    # The OAuth 2.0 / OpenID Connect engine of the provider; its models are swapped for vestibule.provider's.
    "oauth2_provider",
    # Listed bottom-up: each app imports only the apps above it in this list
    # (tests/test_architecture.py holds the order).
    "vestibule.accounts",
    "vestibule.connections",
    "vestibule.authority",
    "vestibule.audit",
    "vestibule.login",
    "vestibule.people",
    "vestibule.signin",
    # The OpenID Provider the applications sign people in with.
    "vestibule.provider",
    # SCIM 2.0: the customer's directory provisions and deprovisions people.
    "vestibule.directory",
    # Models-free; its views answer 404 unless VESTIBULE_TEST_IDP is on.
    "vestibule.testidp",
    # The setup links a customer's IT admin follows to configure their identity provider.
    "vestibule.setup",
    # The configuration hub: server-rendered pages for operators and account admins.
    "vestibule.console",
    # The REST layer; its migrations still record the table ApiKey was born in.
    "vestibule.api",
]

MIDDLEWARE = [
    # First: /healthz and /readyz answer load balancers before the ALLOWED_HOSTS check (see its docstring).
    "vestibule.conf.health.HealthMiddleware",
    # Second: the request ID (accepted or made), bound to every log line of the request and returned in
    # X-Request-ID, and the request's own log line (route name, status, duration; never the raw path).
    "vestibule.conf.request_log.RequestLogMiddleware",
    # Then: times everything else, by URL route name.
    "vestibule.conf.metrics.RequestMetricsMiddleware",
    # Then: a lost database or Redis connection anywhere below is a 503 with Retry-After, never a 500.
    "vestibule.conf.unavailable.UnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "vestibule.conf.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Notices live in the server-side session, not in a cookie the browser could replay.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "vestibule.urls"
WSGI_APPLICATION = "vestibule.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csrf",
                "django.contrib.messages.context_processors.messages",
                "vestibule.console.branding.brand",
            ],
        },
    }
]

DATABASES = {"default": dj_database_url.parse(CONFIG.database_url, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers proceed during a write; the busy timeout turns brief
    # write contention into waiting instead of "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
    }
    # Connections persist (one per gunicorn thread), as on PostgreSQL: opening one per request (connect,
    # the PRAGMAs above, Django's SQL functions) cost a login more CPU than its signature check.
    # SQLite has no server to lose them to, so they need no health check either.
else:
    # Parameters travel apart from the SQL text (server-side binding), so psycopg prepares a
    # statement the connection has run 5 times: a login's ~15 statements are then parsed and
    # planned once per connection, not on every request, and nothing is quoted into SQL text.
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A Redis that stops answering (a black-holed node) must cost a request two
# seconds, whatever redis-py release is installed: before 6 it waited on the
# socket forever, 8's defaults hold a /readyz probe about 8 s.
REDIS_CACHE_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 2}
if CONFIG.redis_url:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CONFIG.redis_url,
            "KEY_PREFIX": "vestibule",
            "OPTIONS": REDIS_CACHE_OPTIONS,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "vestibule"}}

# The database stays the source of truth for sessions; the cache (Redis in
# production) only spares a query per request. Sessions therefore survive a
# Redis flush and hold across every process that shares the database.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_NAME = "vestibule_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = CONFIG.secure
SESSION_COOKIE_AGE = 8 * 3600
CSRF_COOKIE_SECURE = CONFIG.secure
CSRF_COOKIE_HTTPONLY = True
CSRF_TRUSTED_ORIGINS = [CONFIG.base_url]
CSRF_FAILURE_VIEW = "vestibule.login.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if CONFIG.secure:
    SECURE_HSTS_SECONDS = 31536000
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if CONFIG.trusted_proxies else None

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["vestibule.login.backends.PasswordBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    # Applications' client secrets only: 256 random bits need no slow hash (see provider.hashers).
    "vestibule.provider.hashers.ClientSecretHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
]
LOGIN_URL = "/login"

# Bodies above this are refused before parsing (SAML responses are far smaller).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200

if CONFIG.email.backend == "console":
    EMAIL_BACKEND = "vestibule.login.mail.ConsoleEmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = CONFIG.email.host
    EMAIL_PORT = CONFIG.email.port
    EMAIL_HOST_USER = CONFIG.email.username
    EMAIL_HOST_PASSWORD = CONFIG.email.password
    EMAIL_USE_TLS = CONFIG.email.use_tls
    EMAIL_USE_SSL = CONFIG.email.use_ssl
    EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = CONFIG.email_from

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
USE_I18N = False

NINJA_PAGINATION_MAX_LIMIT = 500

# http redirect URIs are registered only for loopback hosts (RFC 8252 native and development
# clients): provider.applications.check_uri refuses every other http URI, which the library's
# scheme-wide warning cannot see.
SILENCED_SYSTEM_CHECKS = ["oauth2_provider.W008"]

# The OpenID Provider (django-oauth-toolkit), its models swapped for ours
# (vestibule.provider.models), its rules the strict ones of RFC 9700.
OAUTH2_PROVIDER_APPLICATION_MODEL = "provider.Application"
OAUTH2_PROVIDER_GRANT_MODEL = "provider.Grant"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "provider.IDToken"
OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": CONFIG.base_url,
    "OAUTH2_VALIDATOR_CLASS": "vestibule.provider.validator.Validator",
    "SCOPES_BACKEND_CLASS": "vestibule.provider.scopes.Scopes",
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "client_secret_post", "none"],
    # The validator decides per client (Validator.is_pkce_required): public clients must use PKCE,
    # confidential ones may; S256 only. True here is what the library's deployment check reads.
    "PKCE_REQUIRED": True,
    "CLIENT_SECRET_HASHER": "vestibule_client_secret",
    "CLIENT_SECRET_GENERATOR_LENGTH": 48,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ACCESS_TOKEN_EXPIRE_SECONDS": 600,
    "ID_TOKEN_EXPIRE_SECONDS": 3600,
    "REFRESH_TOKEN_EXPIRE_SECONDS": 30 * 24 * 3600,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
    # Post-logout URIs are matched character for character (provider.views.LogoutView) against URIs
    # registered under provider.applications' rules (https, or http on loopback only). The library's
    # strict mode would add "http only for confidential clients", refusing a public client's
    # registered http://127.0.0.1 development URI for no gain.
    "OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS": False,
    "OIDC_RP_INITIATED_LOGOUT_ACCEPT_EXPIRED_TOKENS": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}

# Every record, ours, Django's and gunicorn's, one JSON object per line on stderr (or text): see
# vestibule.conf.logging. Django calls LOGGING_CONFIG with LOGGING; it sets structlog up as well.
LOGGING_CONFIG = "vestibule.conf.logging.configure"
LOGGING = logging_settings(CONFIG.log_format, CONFIG.log_level)
