"""API keys: the service credentials that act beside people (see ``principal``).

A key is ``vst_<prefix>_<secret>``. Only a SHA-256 of the secret is stored:
the secret is 256 bits of randomness, so a slow password hash would add
latency without adding safety. The prefix finds the row; the digest is
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.db import models
from django.utils import timezone


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(models.Model):
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True)
    # Null account: an operator key, valid for every account and for operator-only actions.
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.CASCADE)
    # The admin roles this key holds in its account (a subset of administrator,
    # user-manager, sso-admin); ignored for operator keys.
    roles = models.JSONField(default=list, blank=True)
    # "person:<email>", "api-key:<prefix>" or "cli": who made it.
    created_by = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table predates this app (it was the ``api`` app's); the model moved, the data did not.
        db_table = "api_apikey"

    @property
    def is_operator(self) -> bool:
        return self.account_id is None

    @classmethod
    def issue(
        cls, *, account: object | None = None, name: str = "", roles: list[str] | None = None, created_by: str = ""
    ) -> tuple[ApiKey, str]:
        """Create a key; returns the row and the full key, which is never stored."""
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        if roles is None:
            roles = [] if account is None else ["administrator"]
        key = cls.objects.create(
            prefix=prefix,
            digest=_digest(secret),
            account=account,
            name=name,
            roles=sorted(roles),
            created_by=created_by,
        )
        return key, f"vst_{prefix}_{secret}"

    @classmethod
    def authenticate(cls, presented: str) -> ApiKey | None:
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != "vst" or len(presented) > 200:
            return None
        key = cls.objects.select_related("account").filter(prefix=parts[1], revoked_at__isnull=True).first()
        if key is None or not hmac.compare_digest(key.digest, _digest(parts[2])):
            return None
        return key
