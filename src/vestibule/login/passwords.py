"""Password sign-in decisions: lockout, expiry, reset links."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from django.contrib.auth import authenticate
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from vestibule.accounts.models import Account, User
from vestibule.audit.events import client_ip, record
from vestibule.audit.models import AuditEvent
from vestibule.authority.ownership import home_account
from vestibule.conf import metrics
from vestibule.conf.request_log import pseudonym
from vestibule.domain.emails import InvalidEmail, email_key
from vestibule.login import ratelimit
from vestibule.login.mail import absolute, product_name, send
from vestibule.login.models import OneTimeLink

RESET_TTL = timedelta(hours=1)

log = structlog.get_logger("vestibule.password")


@dataclass(frozen=True)
class PasswordOutcome:
    user: User | None
    error: str = ""  # "invalid", "locked", "rate_limited"


def check_password_login(request: HttpRequest, email: str, password: str) -> PasswordOutcome:
    """Check one password attempt, within the per-IP limit and the per-email lockout.

    The lockout slot is reserved before the password is verified, so however
    many attempts race in at once, at most ``PASSWORD_FAILURES_PER_EMAIL.attempts``
    passwords are checked per window; the others are refused as locked unchecked.
    """
    outcome = _check_password_login(request, email, password)
    metrics.password_login(outcome.error or "success")
    # The address as a keyed pseudonym, never in clear: it is personal data, and log stores keep lines
    # long and show them widely. The audit event (the address, for the account's administrators) has it.
    try:
        subject = pseudonym(email_key(email))
    except InvalidEmail:
        subject = None
    log.info("login.password", outcome=outcome.error or "success", subject=subject)
    return outcome


def _check_password_login(request: HttpRequest, email: str, password: str) -> PasswordOutcome:
    try:
        key = email_key(email)
    except InvalidEmail:
        return PasswordOutcome(None, "invalid")
    ip = client_ip(request) or "unknown"
    if ratelimit.hit(ratelimit.PASSWORD_ATTEMPTS_PER_IP, ip) > ratelimit.PASSWORD_ATTEMPTS_PER_IP.attempts:
        record("login.password.rate_limited", request=request, outcome=AuditEvent.Outcome.FAILURE, subject_email=key)
        return PasswordOutcome(None, "rate_limited")
    attempt = ratelimit.reserve(ratelimit.PASSWORD_FAILURES_PER_EMAIL, key)
    if attempt is None:
        record("login.password.locked", request=request, outcome=AuditEvent.Outcome.FAILURE, subject_email=key)
        return PasswordOutcome(None, "locked")
    user = authenticate(request, email=email, password=password)
    if user is None:
        record(
            "login.password.failed",
            request=request,
            outcome=AuditEvent.Outcome.FAILURE,
            subject_email=key,
            failures=attempt,
        )
        if attempt >= ratelimit.PASSWORD_FAILURES_PER_EMAIL.attempts:
            return PasswordOutcome(None, "locked")
        return PasswordOutcome(None, "invalid")
    ratelimit.reset(ratelimit.PASSWORD_FAILURES_PER_EMAIL, key)
    return PasswordOutcome(user)


def password_expired(user: User) -> bool:
    """True when the password outlived the password TTL of the account that owns it.

    The password belongs to the identity, so its home account's policy rules
    it: an account the person merely joined cannot force changes on another
    tenant's people. A person whose domain no account owns chose the accounts
    they joined, and the strictest of those applies.
    """
    home = home_account(user)
    accounts = [home] if home is not None else Account.objects.filter(memberships__user=user)
    ttls = [account.password_ttl_days for account in accounts if account.password_ttl_days]
    if not ttls:
        return False
    changed = user.password_changed_at or user.created_at
    return timezone.now() - changed > timedelta(days=min(ttls))


def send_reset_link(request: HttpRequest | None, email: str) -> None:
    """Email a single-use reset link if ``email`` is a password user; do nothing visible otherwise."""
    try:
        key = email_key(email)
    except InvalidEmail:
        return
    user = User.objects.filter(email_key=key, is_active=True).first()
    if user is None or user.login_method != User.LoginMethod.PASSWORD:
        return
    if ratelimit.hit(ratelimit.EMAILS_PER_ADDRESS, key) > ratelimit.EMAILS_PER_ADDRESS.attempts:
        return
    issue_reset_link(user, request=request)


def issue_reset_link(user: User, *, request: HttpRequest | None = None, reason: str = "requested") -> None:
    # A new link voids the previous ones, so only the latest email works.
    OneTimeLink.objects.filter(user=user, purpose=OneTimeLink.Purpose.PASSWORD_RESET, used_at__isnull=True).update(
        used_at=timezone.now()
    )
    _, token = OneTimeLink.issue(OneTimeLink.Purpose.PASSWORD_RESET, user, RESET_TTL)
    url = absolute(reverse("password-reset-confirm", args=[token]))
    if reason == "switched_to_password":
        # Sent unasked: say why, or the person takes it for phishing or ignores it.
        send(
            user.email,
            f"Choose a password for {product_name()}",
            f"Your administrator switched you to password sign-in: from now on, {user.email} signs in "
            f"to {product_name()} with a password instead of your organization's single sign-on.\n\n"
            f"Open this link within one hour to choose your password (it works once):\n{url}\n\n"
            "No earlier password works any more. If the link has expired, use 'Forgot your password?' "
            "on the sign-in page, or ask your administrator.",
        )
    else:
        send(
            user.email,
            f"Reset your {product_name()} password",
            f"Someone asked to reset the password of {user.email}.\n\n"
            f"Open this link within one hour to choose a new password (it works once):\n{url}\n\n"
            "If it was not you, ignore this email; your password stays unchanged.",
        )
    record("password.reset_link_sent", request=request, subject_email=user.email, reason=reason)
