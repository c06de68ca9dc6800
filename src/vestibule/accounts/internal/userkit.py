"""Managing users in an account: invitations, conversions, removal."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.urls import reverse

from vestibule.accounts.models import Account, Membership, Project, ProjectAccess, RoleGrant, Source, User
from vestibule.domain.emails import email_key, normalize_email
from vestibule.login.mail import absolute, send
from vestibule.login.models import OneTimeLink

INVITATION_TTL = timedelta(days=7)


class UserConflict(Exception):
    pass


def sso_authorization_connection(account: Account) -> object | None:
    """The enabled connection of ``account`` that manages authorization, if any."""
    from vestibule.connections.models import Connection

    return Connection.objects.filter(account=account, enabled=True, sso_authorization=True).first()


def add_member(account: Account, email: str, name: str, *, login_method: str | None = None) -> tuple[User, bool]:
    """Add a person to ``account``, creating the user if the email is new.

    Returns the user and whether the row was created. Concurrent adds of one
    email settle on the unique ``email_key``.
    """
    email = normalize_email(email)
    with transaction.atomic():
        user = User.objects.filter(email_key=email_key(email)).first()
        created = False
        if user is None:
            try:
                with transaction.atomic():
                    user = User.objects.create_user(
                        email, name=name, login_method=login_method or User.LoginMethod.PASSWORD
                    )
                    created = True
            except IntegrityError:
                user = User.objects.get(email_key=email_key(email))
        if Membership.objects.filter(user=user, account=account).exists():
            raise UserConflict(f"{email} is already a member of account '{account.slug}'")
        Membership.objects.create(user=user, account=account)
    return user, created


def grant_projects(user: User, projects: list[Project]) -> None:
    for project in projects:
        ProjectAccess.objects.get_or_create(user=user, project=project, source=Source.MANUAL, connection=None)


def send_invitation(user: User, account: Account, inviter: str) -> None:
    _, token = OneTimeLink.issue(OneTimeLink.Purpose.INVITATION, user, INVITATION_TTL, account=account)
    url = absolute(reverse("invitation-accept", args=[token]))
    send(
        user.email,
        f"You are invited to {account.name} on Vestibule",
        f"{inviter} invited you to the account {account.name}.\n\n"
        f"Accept within 7 days with this link (it works once):\n{url}\n",
    )


def remove_member(user: User, account: Account) -> bool:
    """Remove the membership and everything it granted; delete the user if no account is left."""
    with transaction.atomic():
        RoleGrant.objects.filter(user=user, account=account).delete()
        ProjectAccess.objects.filter(user=user, project__account=account).delete()
        Membership.objects.filter(user=user, account=account).delete()
        if not Membership.objects.filter(user=user).exists() and not user.is_operator:
            user.delete()
            return True
    return False


def void_password_links(user: User) -> None:
    """Unused password-reset links die with the password they were meant to replace."""
    from django.utils import timezone

    OneTimeLink.objects.filter(user=user, purpose=OneTimeLink.Purpose.PASSWORD_RESET, used_at__isnull=True).update(
        used_at=timezone.now()
    )


def switch_to_sso(user: User) -> None:
    """Seed 000: switching to SSO purges the password at once, and any reset link in flight."""
    user.login_method = User.LoginMethod.SSO
    user.purge_credentials()
    user.save()
    void_password_links(user)


def switch_to_password(user: User) -> None:
    """Seed 000: back to password restores nothing; the user sets a new one by email."""
    from vestibule.login.internal.passwordkit import issue_reset_link

    user.login_method = User.LoginMethod.PASSWORD
    user.purge_credentials()
    user.save()
    issue_reset_link(user, reason="switched_to_password")


def approve(user: User) -> None:
    if user.approval != User.Approval.APPROVED:
        user.approval = User.Approval.APPROVED
        user.save(update_fields=["approval"])


