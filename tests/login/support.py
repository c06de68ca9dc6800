"""Helpers shared by the credential-hardening tests of the sign-in pages.

TOTP codes are computed with ``cryptography``'s own RFC 6238 implementation,
as an authenticator app would; users and factors are set up in the database
the way the pages leave them.
"""

from __future__ import annotations

import base64
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from django.test import Client
from django.utils import timezone

from tests.conftest import PASSWORD as PASSWORD  # the suite's one password: make_user sets it by default
from vestibule.accounts.models import Account, User
from vestibule.audit.models import AuditEvent
from vestibule.conf.testing import FastArgon2PasswordHasher
from vestibule.login import totp

EMAIL = "alice@example.com"
NEW_PASSWORD = "an entirely new passphrase 77"
ATTACKER_PASSWORD = "the attacker's chosen passphrase 66"
BACKEND = "vestibule.login.backends.PasswordBackend"


def count_password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password the hasher verifies from now on (unknown emails too: the backend burns a hash for them)."""
    checked: list[str] = []
    lock = threading.Lock()
    original = FastArgon2PasswordHasher.verify

    def counting_verify(self: FastArgon2PasswordHasher, password: str, encoded: str) -> bool:
        with lock:
            checked.append(password)
        return original(self, password, encoded)

    monkeypatch.setattr(FastArgon2PasswordHasher, "verify", counting_verify)
    return checked


def password_login(client: Client, email: str, password: str, next_url: str = "") -> Any:
    first = client.post("/login", {"email": email, "next": next_url})
    assert first.status_code == 200 and b'name="password"' in first.content, first.content
    return client.post("/login", {"email": email, "password": password, "next": next_url})


def signed_in(client: Client) -> bool:
    return client.get("/api/v1/session").status_code == 200


def codes(**filters: Any) -> list[str]:
    return list(AuditEvent.objects.filter(**filters).order_by("created_at", "id").values_list("code", flat=True))


def authenticator_code(secret_b32: str, step: int) -> str:
    padded = secret_b32 + "=" * (-len(secret_b32) % 8)
    return TOTP(base64.b32decode(padded), 6, SHA1(), 30, enforce_key_length=False).generate(step * 30).decode()


def current_step() -> int:
    # Leave room so a whole exchange happens inside one 30-second step.
    if time.time() % 30 > 24:
        time.sleep(30 - time.time() % 30 + 0.1)
    return int(time.time() // 30)


def give_totp(user: User) -> str:
    """A confirmed factor, as if enrolled long ago: no time step used yet."""
    secret = totp.begin_enrollment(user)
    User.objects.filter(pk=user.pk).update(totp_confirmed=True, totp_last_step=0)
    user.refresh_from_db()
    return secret


def expire_password(user: User) -> None:
    Account.objects.filter(slug="acme").update(password_ttl_days=30)
    User.objects.filter(pk=user.pk).update(password_changed_at=timezone.now() - timedelta(days=31))
    user.refresh_from_db()


def factor_state(user: User) -> tuple[str, str, bool, str]:
    user.refresh_from_db()
    return user.password, user.totp_secret_encrypted, user.totp_confirmed, user.totp_pending_encrypted
