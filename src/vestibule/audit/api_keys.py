"""Issuing and revoking an account's API keys, audited: the one path for the admin API and the console."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from vestibule.audit.events import record
from vestibule.authority.models import ApiKey
from vestibule.authority.principal import Principal, effective_admin_roles


class RolesBeyondCreator(Exception):
    """A key may not hold a role its creator lacks in the account."""

    def __init__(self, roles: set[str] | frozenset[str]) -> None:
        super().__init__(f"a key cannot hold roles its creator lacks: {', '.join(sorted(roles))}")
        self.roles = frozenset(roles)


def active_keys(account: Any) -> Any:
    return ApiKey.objects.filter(account=account, revoked_at__isnull=True).order_by("created_at")


def issue(acting: Principal, account: Any, *, name: str, roles: list[str]) -> tuple[ApiKey, str]:
    """A service credential holding ``roles`` in ``account``, no more than ``acting`` holds; returns the secret once."""
    beyond = effective_admin_roles(list(roles)) - acting.roles_in(account)
    if beyond:
        raise RolesBeyondCreator(beyond)
    key, secret = ApiKey.issue(account=account, name=name, roles=sorted(set(roles)), created_by=acting.label)
    record("api_key.created", account=account, **acting.actor(), key=key.prefix, roles=sorted(key.roles))
    return key, secret


def revoke(acting: Principal, account: Any, prefix: str) -> bool:
    """Revoke the account's active key with this prefix; False when there is none (another account's included)."""
    if not prefix.isalnum() or len(prefix) > 16:
        # Not a prefix ApiKey.issue makes (hex); a NUL would reach PostgreSQL, which refuses it in text.
        return False
    if not ApiKey.objects.filter(account=account, prefix=prefix, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    ):
        return False
    record("api_key.revoked", account=account, **acting.actor(), key=prefix)
    return True
