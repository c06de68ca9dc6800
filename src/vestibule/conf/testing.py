"""Settings for the test suite.

``VESTIBULE_TEST_DATABASE_URL`` points the whole suite at another database
(CI runs it once on SQLite and once on PostgreSQL). Argon2 keeps its algorithm
but with small cost parameters, so tests exercise the real hasher quickly.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("VESTIBULE_DATA_DIR", tempfile.mkdtemp(prefix="vestibule-test-"))
os.environ.setdefault("VESTIBULE_SECRET_KEY", "test-secret-key-that-is-long-enough-0123456789")
# A loopback URL: protocol code accepts plain http only there.
os.environ.setdefault("VESTIBULE_BASE_URL", "http://localhost")
# The interop peers and test servers listen on loopback; the outbound guard refuses it otherwise.
os.environ.setdefault("VESTIBULE_OUTBOUND_ALLOW", "127.0.0.1,::1,localhost")
if os.environ.get("VESTIBULE_TEST_DATABASE_URL"):
    os.environ["VESTIBULE_DATABASE_URL"] = os.environ["VESTIBULE_TEST_DATABASE_URL"]

from vestibule.conf.settings import *  # noqa: F403
from vestibule.conf.settings import CONFIG

PASSWORD_HASHERS = ["vestibule.conf.testing.FastArgon2PasswordHasher", "vestibule.provider.hashers.ClientSecretHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}
ALLOWED_HOSTS = [*CONFIG.allowed_hosts, "testserver", "127.0.0.1", "localhost"]

from django.contrib.auth.hashers import Argon2PasswordHasher  # noqa: E402


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 256
    parallelism = 1


# Deliveries to applications (logout tokens, webhooks) are sent in the request's own thread after
# commit, not from the background pool: the in-memory SQLite test database has one writer.
VESTIBULE_DELIVERIES_INLINE = True
