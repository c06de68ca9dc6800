"""Recovery access (DESIGN "Login" step 4, seed 002).

An ``sso-admin`` whose identity provider is broken asks for a one-time link at
``/recovery-access``; the link signs them in without SSO. From outside, a
request for any other address must be indistinguishable: the same page, the
same status, about the same time, and no email. Three things keep it so:

* the per-address email limit is counted for *every* address, so a probe
  cannot tell "limited" from "unknown";
* eligibility is decided from the same two queries whatever the answer;
* the email is handed to a background sender, so an SMTP round trip (the only
  slow step, and one that happens for eligible addresses only) never shows in
  the response time.
"""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest
from django.urls import reverse

from vestibule.accounts.models import Account, Membership, RoleGrant, User
from vestibule.accounts.roles import get_catalog
from vestibule.audit.events import record
from vestibule.domain.emails import InvalidEmail, email_key
from vestibule.login import ratelimit
from vestibule.login.mail import absolute, product_name, send_in_background
from vestibule.login.models import OneTimeLink

RECOVERY_TTL = timedelta(minutes=15)
RECOVERY_ROLE = "sso-admin"


def recovery_account(user: User) -> Account | None:
    """The first account (by slug) where ``user`` holds ``sso-admin``, implied roles included."""
    catalog = get_catalog()
    by_account: dict[int, set[str]] = {}
    usable = Membership.objects.in_force().filter(user=user).values("account_id")
    for account_id, role in RoleGrant.objects.filter(
        user=user, project__isnull=True, account_id__in=usable
    ).values_list("account_id", "role"):
        by_account.setdefault(account_id, set()).add(role)
    eligible = [
        aid
        for aid, roles in by_account.items()
        if RECOVERY_ROLE in catalog.effective(r for r in roles if r in catalog.roles)
    ]
    if not eligible:
        return None
    return Account.objects.filter(pk__in=eligible).order_by("slug").first()


def request_link(request: HttpRequest | None, raw_email: str) -> None:
    """Email a recovery link when ``raw_email`` is an active sso-admin; otherwise do nothing visible."""
    try:
        key = email_key(raw_email)
    except InvalidEmail:
        key = raw_email.strip().lower()[:254]
    # Counted before knowing who it is, so the limit itself reveals nothing.
    sent = ratelimit.hit(ratelimit.EMAILS_PER_ADDRESS, key)
    user = User.objects.filter(email_key=key, is_active=True).first()
    account = recovery_account(user) if user is not None else None
    if user is None or account is None:
        record("login.recovery.ignored", request=request, outcome="failure", subject_email=key)
        return
    if sent > ratelimit.EMAILS_PER_ADDRESS.attempts:
        record(
            "login.recovery.rate_limited", request=request, outcome="failure", account=account, subject_email=user.email
        )
        return
    # Only the newest link works: an older email lying in a mailbox is void.
    OneTimeLink.objects.filter(user=user, purpose=OneTimeLink.Purpose.RECOVERY, used_at__isnull=True).delete()
    _, token = OneTimeLink.issue(OneTimeLink.Purpose.RECOVERY, user, RECOVERY_TTL, account=account)
    url = absolute(reverse("recovery-access-confirm", args=[token]))
    send_in_background(
        user.email,
        f"Your {product_name()} recovery sign-in link for {account.name}",
        f"Someone asked for a recovery link for {user.email}, an SSO administrator of {account.name}.\n\n"
        f"This link signs you in without your identity provider. It works once and expires in 15 minutes:\n{url}\n\n"
        "If it was not you, ignore this email and tell your security team.",
    )
    record("login.recovery.requested", request=request, account=account, subject_email=user.email)


def is_still_eligible(link: OneTimeLink) -> bool:
    """A link stops working if its holder lost sso-admin or was deactivated since it was sent."""
    user = link.user
    if not user.is_active:
        return False
    return recovery_account(user) is not None
