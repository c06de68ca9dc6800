"""Changing a person's credentials, and voiding what was minted for the old ones.

A password set or reset, a second factor turned on or replaced, a switch of
login method: each can leave an emailed link in a mailbox that was issued for
the credentials as they were. A reset link would then replace the new
password; an invitation link would set a password for someone who now has one
and a second factor, and sign them in without that factor. Every place that
changes credentials therefore calls :func:`credentials_changed`, which voids
the person's unused password-reset and invitation links.

Recovery links are not voided: they set no credential, and a recovery sign-in
still asks for the confirmed second factor.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from vestibule.accounts.models import User
from vestibule.audit.events import record
from vestibule.login.models import OneTimeLink

VOIDED_ON_CHANGE = (OneTimeLink.Purpose.PASSWORD_RESET, OneTimeLink.Purpose.INVITATION)


class AlreadyHasCredentials(Exception):
    """The person can already sign in (usable password or confirmed second factor)."""


class PasswordNotAllowed(Exception):
    """The person signs in through SSO or is deactivated: no password may be set."""


def credentials_changed(user: User) -> int:
    """Void the unused password-reset and invitation links of ``user``; returns how many.

    Call it after the change is saved, in the same request: a link used in
    between is for the old credentials and the change supersedes it anyway.
    Code that issues a fresh reset link as part of the change (a switch back
    to password login) calls this first, then issues the link.
    """
    voided: int = OneTimeLink.objects.filter(user=user, purpose__in=VOIDED_ON_CHANGE, used_at__isnull=True).update(
        used_at=timezone.now()
    )
    if voided:
        record("user.credential_links_voided", subject_email=user.email, count=voided)
    return voided


def has_credentials(user: User) -> bool:
    """True when ``user`` can sign in by themselves: a usable password or a confirmed second factor."""
    return user.has_usable_password() or user.has_totp


def replace_password(user: User, raw_password: str) -> None:
    """Set a new password (expired, reset) and void the links minted for the old one."""
    user.set_password(raw_password)
    # Only the password columns: a full save would write back whatever this
    # instance holds of the second factor or login method, undoing a
    # concurrent change to them.
    user.save(update_fields=["password", "password_changed_at"])
    credentials_changed(user)


def set_first_password(user_pk: int, raw_password: str) -> User:
    """Give a first password to someone who has no credentials yet (an invitation).

    The check and the write happen under a row lock, so a password or second
    factor set in another request a moment earlier is never overwritten.
    Raises :class:`AlreadyHasCredentials` for someone who has credentials, and
    :class:`PasswordNotAllowed` for someone switched to SSO or deactivated
    since the link was sent.
    """
    with transaction.atomic():
        user: User = User.objects.select_for_update().get(pk=user_pk)
        if user.login_method != User.LoginMethod.PASSWORD or not user.is_active:
            raise PasswordNotAllowed(user.email)
        if has_credentials(user):
            raise AlreadyHasCredentials(user.email)
        replace_password(user, raw_password)
    return user
