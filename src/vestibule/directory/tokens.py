"""SCIM tokens: issuing, listing and revoking the bearer credentials of an account's directory.

The REST API (``api.directory``), the console and the CLI (``vestibule
scim-token``) share these, so all print the same JSON, apply the same rules
and write the same audit events. ``actor`` is who acted, as ``events.record``
takes it: ``principal.actor()``, or ``{"via": "cli"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils import timezone

from vestibule.accounts.models import Account
from vestibule.audit.events import record
from vestibule.connections import rules
from vestibule.directory.models import ScimToken


def base_url() -> str:
    """Where the account's directory sends its SCIM requests (the same for every account: the token says which)."""
    return f"{settings.VESTIBULE_BASE_URL.rstrip('/')}/scim/v2"


def token_out(token: ScimToken) -> dict[str, Any]:
    """A token as listed: never its secret."""
    return {
        "prefix": token.prefix,
        "name": token.name,
        "account": token.account.slug,
        "connection": str(token.connection_id) if token.connection_id else None,
        "base_url": base_url(),
        "created_by": token.created_by,
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
    }


def issue(
    account: Account,
    *,
    actor: Mapping[str, Any],
    name: str = "",
    connection_id: str | None = None,
    created_by: str = "",
) -> tuple[ScimToken, dict[str, Any]]:
    """A new token; returns the row and the 201 body, which holds the secret (shown this once).

    ``connection_id`` binds the directory to one of the account's connections
    (another account's is "not found", like one that does not exist): raises
    :class:`~vestibule.connections.rules.ConnectionRuleError`.
    """
    connection = None
    if connection_id is not None:
        # IDOR check: only this account's connections resolve.
        connection = rules.account_connection(account, connection_id, "connection")
    token, secret = ScimToken.issue(account, name=name, connection=connection, created_by=created_by)
    record(
        "scim_token.created", account=account, connection=token.connection, **actor,
        scim_token=token.prefix, name=token.name,
    )  # fmt: skip
    return token, {"token": secret, **token_out(token)}


def live_tokens(account: Account) -> list[ScimToken]:
    return list(
        ScimToken.objects.filter(account=account, revoked_at__isnull=True)
        .select_related("account")
        .order_by("created_at", "pk")
    )


def revoke(account: Account, prefix: str, *, actor: Mapping[str, Any]) -> bool:
    """Revoke this account's token ``prefix``; False when it has no such live token (another account's included)."""
    if not ScimToken.objects.filter(account=account, prefix=prefix, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    ):
        return False
    record("scim_token.revoked", account=account, **actor, scim_token=prefix[:16])
    return True
