"""Encryption at rest for stored secrets (OIDC client secrets, TOTP seeds, SP keys).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with a key derived
by HKDF from the deployment secret and a purpose label, so a value sealed for
one purpose cannot be opened as another. Rotating VESTIBULE_SECRET_KEY makes
existing sealed values unreadable; ``VESTIBULE_SECRET_KEY_FALLBACKS`` (comma
separated) keeps old keys readable during a rotation.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class SecretUnreadable(Exception):
    """A sealed secret cannot be opened with the configured keys."""


def _derive(secret_key: str, purpose: str) -> Fernet:
    key = HKDF(algorithm=SHA256(), length=32, salt=b"vestibule-secretbox", info=purpose.encode()).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


@lru_cache(maxsize=32)
def _box(purpose: str, secret_key: str) -> MultiFernet:
    fallbacks = [k for k in os.environ.get("VESTIBULE_SECRET_KEY_FALLBACKS", "").split(",") if k]
    return MultiFernet([_derive(k, purpose) for k in (secret_key, *fallbacks)])


def seal_secret(value: str, *, purpose: str) -> str:
    return _box(purpose, settings.SECRET_KEY).encrypt(value.encode()).decode()


def open_secret(token: str, *, purpose: str) -> str:
    try:
        return _box(purpose, settings.SECRET_KEY).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(f"stored {purpose} secret cannot be decrypted with the configured secret key") from None
