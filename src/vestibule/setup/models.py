"""A setup link: one connection, one provider wizard, one IT admin's browser, used once."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils import timezone

from vestibule.accounts.models import Account, User
from vestibule.connections.models import Connection


class SetupLink(models.Model):
    class Provider(models.TextChoices):
        OKTA = "okta", "Okta"
        ENTRA = "entra", "Microsoft Entra ID"
        GOOGLE = "google", "Google Workspace"
        ADFS = "adfs", "ADFS"
        ONELOGIN = "onelogin", "OneLogin"
        KEYCLOAK = "keycloak", "Keycloak"
        SAML = "saml", "Generic SAML"
        OIDC = "oidc", "Generic OIDC"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        USED = "used", "Used"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="setup_links")
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="setup_links")
    provider = models.CharField(max_length=10, choices=Provider.choices)
    # The token is vsu_<prefix>_<secret>: the prefix finds the row, only the secret's SHA-256 is kept.
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by_label = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # The first browser to open the link owns it: SHA-256 of the random value in its setup cookie.
    opened_at = models.DateTimeField(null=True, blank=True)
    browser_digest = models.CharField(max_length=64, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # What the IdP step configured, and the last test login's outcome (claims and decision), for the wizard.
    configured_at = models.DateTimeField(null=True, blank=True)
    last_test = models.JSONField(default=dict, blank=True)
    last_test_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "created_at"], name="setup_link_account_created")]

    def __str__(self) -> str:
        return f"{self.prefix} ({self.provider})"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.finished_at is not None:
            return self.Status.USED
        if self.expires_at <= timezone.now():
            return self.Status.EXPIRED
        return self.Status.OPEN

    @property
    def status_label(self) -> str:
        return str(self.Status(self.status).label)

    @property
    def is_live(self) -> bool:
        return self.status == self.Status.OPEN

    @property
    def is_saml(self) -> bool:
        return bool(self.connection.protocol == Connection.Protocol.SAML)

    def summary(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "provider": self.provider, "connection": str(self.connection_id)}
