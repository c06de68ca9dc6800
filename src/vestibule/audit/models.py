"""Audit events and login traces.

An :class:`AuditEvent` records a security-relevant action or a login outcome
under a stable ``code`` (``login.password.succeeded``, ``sso.email_domain_not_owned``
...). A :class:`LoginTrace` is kept for every SSO login attempt: the steps it
went through and, for the one that failed, admin-facing expected-versus-received
detail. Neither ever holds a secret or a raw protocol message.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    class Outcome(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    code = models.CharField(max_length=100, db_index=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.CASCADE)
    connection_id = models.UUIDField(null=True, blank=True)
    actor_user = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_api_key = models.ForeignKey("authority.ApiKey", null=True, blank=True, on_delete=models.SET_NULL)
    subject_email = models.CharField(max_length=254, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    trace = models.ForeignKey("LoginTrace", null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        indexes = [models.Index(fields=["account", "-created_at"])]
        ordering = ["-created_at", "-id"]


class LoginTrace(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.CASCADE)
    connection_id = models.UUIDField(null=True, blank=True)
    protocol = models.CharField(max_length=10)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, blank=True)
    reason_code = models.CharField(max_length=100, blank=True)
    failed_step = models.CharField(max_length=60, blank=True)
    # [{"step", "status", "expected"?, "received"?, "message"?, "fix_in"?}]
    steps = models.JSONField(default=list)
    subject = models.CharField(max_length=512, blank=True)
    email = models.CharField(max_length=254, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "-started_at"])]
        ordering = ["-started_at"]
