"""What the OpenID Provider stores.

django-oauth-toolkit's five models are swapped for these so that every grant
and token carries the :class:`Authorization` it came from: the browser
sign-in (when, how, for which organization) that an application received.
Refreshing, userinfo and back-channel logout all read that one row, so a
token can never speak for more than the sign-in it was issued for.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from oauth2_provider.models import (
    AbstractAccessToken,
    AbstractApplication,
    AbstractGrant,
    AbstractIDToken,
    AbstractRefreshToken,
    ApplicationManager,
)


class Application(AbstractApplication):
    """A client of the OpenID Provider: a SaaS application, or one environment of it."""

    # Where signed logout tokens go (OpenID Connect Back-Channel Logout 1.0); empty for none.
    backchannel_logout_uri = models.URLField(max_length=2000, blank=True)
    # Where signed event webhooks go (Standard Webhooks); empty for none.
    webhook_url = models.URLField(max_length=2000, blank=True)
    # The webhook signing secret ("whsec_..."), sealed at rest: receivers verify with it, so it cannot be hashed.
    webhook_secret_sealed = models.TextField(blank=True)
    # "person:<email>", "api-key:<prefix>" or "cli": who registered it.
    created_by = models.CharField(max_length=300, blank=True)
    # A revoked application keeps its rows (the audit log names it) but gets and refreshes nothing.
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApplicationManager()

    def redirect_uri_list(self) -> list[str]:
        return self.redirect_uris.split()

    def post_logout_redirect_uri_list(self) -> list[str]:
        return self.post_logout_redirect_uris.split()


class Authorization(models.Model):
    """One browser sign-in, as one application received it.

    Made when the authorization endpoint issues a code; every token of that
    code, and every token refreshed from them, points here. ``sid`` is the
    session ID an application sees in ID and logout tokens.
    """

    sid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="op_authorizations")
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="authorizations")
    # The organization the tokens speak for (the ``organization`` scope); null when none was asked for.
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.CASCADE)
    # The account a session started through a shared-domain provider is limited to (its scope), carried over.
    only_account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # The Vestibule browser session it came from; ending that session logs the application out.
    session_key = models.CharField(max_length=40, blank=True, db_index=True)
    auth_time = models.DateTimeField()
    amr = models.JSONField(default=list)
    acr = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Why it ended: "logout", "session_ended", "deactivated", "membership_removed", "refresh_reuse", "code_replay", ...
    ended_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "ended_at"])]


class Grant(AbstractGrant):
    authorization = models.ForeignKey(Authorization, null=True, on_delete=models.CASCADE, related_name="grants")
    # A redeemed code is kept (not deleted) until it expires, so a second redemption is recognised
    # as a replay and can revoke what the first one got (RFC 6749 section 4.1.2).
    redeemed_at = models.DateTimeField(null=True, blank=True)


class AccessToken(AbstractAccessToken):
    authorization = models.ForeignKey(Authorization, null=True, on_delete=models.CASCADE, related_name="access_tokens")


class RefreshToken(AbstractRefreshToken):
    authorization = models.ForeignKey(Authorization, null=True, on_delete=models.CASCADE, related_name="refresh_tokens")


class IDToken(AbstractIDToken):
    authorization = models.ForeignKey(Authorization, null=True, on_delete=models.CASCADE, related_name="id_tokens")


class SigningKey(models.Model):
    """A key the provider signs ID tokens and logout tokens with.

    Life cycle: ``next`` (published in the JWKS, signs nothing, so relying
    parties have it cached before it is used) → ``active`` (signs; exactly
    one) → ``retired`` (published until every token it signed has expired,
    then dropped from the JWKS).
    """

    class State(models.TextChoices):
        NEXT = "next"
        ACTIVE = "active"
        RETIRED = "retired"

    class Algorithm(models.TextChoices):
        RS256 = "RS256"
        ES256 = "ES256"

    kid = models.CharField(max_length=64, unique=True)
    algorithm = models.CharField(max_length=5, choices=Algorithm.choices)
    state = models.CharField(max_length=7, choices=State.choices)
    # The private key as a JWK (JSON), sealed with the deployment secret (conf.secretbox, purpose "op-signing-key").
    private_jwk_sealed = models.TextField()
    public_jwk = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["state"], condition=models.Q(state="active"), name="one_active_signing_key"
            ),
            models.UniqueConstraint(fields=["state"], condition=models.Q(state="next"), name="one_next_signing_key"),
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "algorithm": self.algorithm,
            "state": self.state,
            "created_at": self.created_at,
            "activated_at": self.activated_at,
            "retired_at": self.retired_at,
        }


class Delivery(models.Model):
    """One message to an application (a back-channel logout token or a webhook), kept until delivered or given up.

    The delivery log: an application's operator sees every attempt's outcome.
    """

    class Kind(models.TextChoices):
        BACKCHANNEL_LOGOUT = "backchannel_logout"
        WEBHOOK = "webhook"

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="deliveries")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # For webhooks the event type ("person.deactivated", ...); for logout tokens "logout".
    event_type = models.CharField(max_length=60)
    # The message ID (webhook-id header / logout token jti): receivers deduplicate on it.
    message_id = models.CharField(max_length=64, unique=True)
    url = models.URLField(max_length=2000)
    # The exact body sent; logout tokens are signed when made, webhooks at each attempt (their signature is timed).
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
