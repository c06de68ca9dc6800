"""One-time links: password reset, invitations and recovery access.

Only a SHA-256 of the token is stored; the token itself travels once, in an
email. Consuming is a single conditional UPDATE, so a link works exactly once
even when two processes race on it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import models
from django.utils import timezone


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class OneTimeLink(models.Model):
    class Purpose(models.TextChoices):
        PASSWORD_RESET = "password_reset"
        INVITATION = "invitation"
        RECOVERY = "recovery"
        # `vestibule demo`'s link into the console (vestibule.demo); issued nowhere else.
        DEMO_SIGN_IN = "demo_sign_in"

    digest = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.CASCADE)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    @classmethod
    def issue(cls, purpose: str, user: object, ttl: timedelta, **fields: object) -> tuple[OneTimeLink, str]:
        token = secrets.token_urlsafe(32)
        link = cls.objects.create(
            digest=token_digest(token), purpose=purpose, user=user, expires_at=timezone.now() + ttl, **fields
        )
        return link, token

    @classmethod
    def peek(cls, purpose: str, token: str) -> OneTimeLink | None:
        """The live link for ``token`` without using it (to render the form)."""
        return (
            cls.objects.select_related("user")
            .filter(digest=token_digest(token), purpose=purpose, used_at__isnull=True, expires_at__gt=timezone.now())
            .first()
        )

    @classmethod
    def consume(cls, purpose: str, token: str) -> OneTimeLink | None:
        """Use the link once; None when unknown, expired or already used."""
        now = timezone.now()
        digest = token_digest(token)
        updated = cls.objects.filter(digest=digest, purpose=purpose, used_at__isnull=True, expires_at__gt=now).update(
            used_at=now
        )
        if updated != 1:
            return None
        return cls.objects.select_related("user", "account").get(digest=digest)


class SignInSession(models.Model):
    """Which browser session a sign-in started, and through which connection.

    Revoking a domain share ends the sessions that the former partner's
    connections started for the owner's people; Django's session store alone
    cannot be searched by user or connection.
    """

    session_key = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    connection_id = models.UUIDField(null=True, blank=True, db_index=True)
    method = models.CharField(max_length=20)
    created_at = models.DateTimeField(default=timezone.now)
