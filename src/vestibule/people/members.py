"""Managing users in an account: direct adds, invitations, conversions, removal.

Direct adds are for the account that owns the person's identity (see
``vestibule.authority.ownership``); every other account invites, and the person
accepts while signed in as themselves (:func:`accept_invitation`).
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from vestibule.accounts.models import (
    Account,
    Approval,
    Invitation,
    Membership,
    Project,
    ProjectAccess,
    RoleGrant,
    Source,
    User,
)
from vestibule.accounts.roles import effective_account_roles, replace_manual_roles
from vestibule.connections.models import Connection
from vestibule.domain.emails import email_key, normalize_email
from vestibule.login.credentials import credentials_changed
from vestibule.login.mail import absolute, product_name, send
from vestibule.login.models import OneTimeLink, token_digest
from vestibule.login.passwords import issue_reset_link

INVITATION_TTL = timedelta(days=7)

log = logging.getLogger("vestibule.mail")


class UserConflict(Exception):
    pass


def sso_authorization_connection(account: Account) -> object | None:
    """The enabled connection of ``account`` that manages authorization, if any."""
    return Connection.objects.filter(account=account, enabled=True, sso_authorization=True).first()


def add_member(
    account: Account, email: str, name: str, *, login_method: str | None = None, claim_identity: bool = False
) -> tuple[User, bool]:
    """Add a person to ``account``, creating the user if the email is new.

    Returns the user and whether the row was created. Concurrent adds of one
    email settle on the unique ``email_key``. With ``claim_identity`` (the home
    account adding its person) the name and login method typed here replace
    whatever another organization's provider chose when it created the
    identity first: they are the home account's to set.
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
        if not created and claim_identity:
            _claim_identity(user, name, login_method)
        Membership.objects.create(user=user, account=account)
    return user, created


def _claim_identity(user: User, name: str, login_method: str | None) -> None:
    if name:
        user.name = name
    if login_method and login_method != user.login_method:
        user.login_method = login_method
        if login_method == User.LoginMethod.SSO:
            user.purge_credentials()
        user.save()
        credentials_changed(user)
    else:
        user.save(update_fields=["name"])


def add_identity(email: str, name: str, password: str) -> tuple[User, bool]:
    """A new person creating their own sign-in (from an invitation); (user, created)."""
    email = normalize_email(email)
    try:
        with transaction.atomic():
            return User.objects.create_user(email, name=name, password=password), True
    except IntegrityError:
        # Created a moment ago by another path: they must sign in as themselves instead.
        raise UserConflict(f"{email} already has a sign-in") from None


def invite(
    account: Account, email: str, name: str, *, roles: list[str], projects: list[dict[str, Any]], invited_by: str
) -> Invitation:
    """Invite a person this account does not own. Looks nothing up about the address but this account's own members."""
    email = normalize_email(email)
    key = email_key(email)
    if Membership.objects.filter(account=account, user__email_key=key).exists():
        raise UserConflict(f"{email} is already a member of account '{account.slug}'")
    # A fresh invitation replaces an open one for the same address: only the newest email works.
    Invitation.objects.filter(account=account, email_key=key, accepted_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        account=account,
        email=email,
        email_key=key,
        name=name,
        grants={"roles": sorted(set(roles)), "projects": projects},
        digest=token_digest(token),
        invited_by=invited_by,
        expires_at=timezone.now() + INVITATION_TTL,
    )
    url = absolute(reverse("join-account", args=[token]))
    send(
        email,
        f"You are invited to join {account.name} on {product_name()}",
        f"{invited_by.split(':', 1)[-1]} invited {email} to the account {account.name}.\n\n"
        f"To accept, open this link within 7 days and sign in as {email} (it works once):\n{url}\n\n"
        "If you did not expect this, ignore the email: nothing changes until you accept.",
    )
    return invitation


def open_invitation(token: str) -> Invitation | None:
    invitation = Invitation.objects.select_related("account").filter(digest=token_digest(token)).first()
    return invitation if invitation is not None and invitation.is_open else None


class InvitationNotForYou(Exception):
    pass


def accept_invitation(invitation: Invitation, user: User) -> Membership:
    """The invitee, signed in as themselves, joins: membership plus the invited roles and projects."""
    if user.email_key != invitation.email_key:
        raise InvitationNotForYou(invitation.email)
    with transaction.atomic():
        # Spent once, even when two tabs race on the same link.
        spent = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
            accepted_at=timezone.now(), accepted_by=user
        )
        if spent != 1:
            raise UserConflict("this invitation was already used or withdrawn")
        membership, _ = Membership.objects.get_or_create(user=user, account=invitation.account)
        account = invitation.account
        roles = invitation.grants.get("roles", [])
        if roles:
            replace_manual_roles(user, account, roles)
        for item in invitation.grants.get("projects", []):
            project = Project.objects.filter(account=account, slug=item.get("slug")).first()
            if project is None:
                continue  # deleted since the invitation was sent
            grant_projects(user, [project])
            if item.get("roles"):
                replace_manual_roles(user, account, item["roles"], project)
    return membership


def grant_projects(user: User, projects: list[Project]) -> None:
    for project in projects:
        ProjectAccess.objects.get_or_create(user=user, project=project, source=Source.MANUAL, connection=None)


def send_invitation(user: User, account: Account, inviter: str) -> None:
    _, token = OneTimeLink.issue(OneTimeLink.Purpose.INVITATION, user, INVITATION_TTL, account=account)
    url = absolute(reverse("invitation-accept", args=[token]))
    send(
        user.email,
        f"You are invited to {account.name} on {product_name()}",
        f"{inviter} invited you to the account {account.name}.\n\n"
        f"Accept within 7 days with this link (it works once):\n{url}\n",
    )


def remove_member(user: User, account: Account, *, owns_identity: bool) -> bool:
    """Remove the membership and everything it granted.

    The identity goes too when no account is left and ``account`` may end it
    (it owns the identity, or nobody does): another account removing its
    last membership of a person never deletes someone it does not own.
    """
    with transaction.atomic():
        RoleGrant.objects.filter(user=user, account=account).delete()
        ProjectAccess.objects.filter(user=user, project__account=account).delete()
        Membership.objects.filter(user=user, account=account).delete()
        if owns_identity and not Membership.objects.filter(user=user).exists() and not user.is_operator:
            user.delete()
            return True
    return False


def switch_to_sso(user: User) -> None:
    """Seed 000: switching to SSO purges the password at once, and any reset or invitation link in flight.

    It also ends an earlier administrator's choice of password sign-in: the
    person's provider routes and upgrades them again.
    """
    user.login_method = User.LoginMethod.SSO
    user.password_pinned_at = None
    user.purge_credentials()
    user.save()
    credentials_changed(user)


def switch_to_password(user: User) -> None:
    """Seed 000: back to password restores nothing; the user sets a new one by email.

    The choice is recorded (``password_pinned_at``) so that it holds: /login
    offers the password step although the person's domain routes to a
    provider, and an SSO login no longer upgrades them (seed 004), until an
    administrator switches them to SSO again.
    """
    user.login_method = User.LoginMethod.PASSWORD
    user.password_pinned_at = timezone.now()
    user.purge_credentials()
    user.save()
    # Before the fresh reset link is issued, or it would be voided too.
    credentials_changed(user)
    issue_reset_link(user, reason="switched_to_password")


def pin_password(user: User) -> bool:
    """An administrator explicitly chooses password sign-in for someone already on it.

    Nothing is purged and no email is sent (their password keeps working);
    only the choice is recorded, so the automatic SSO upgrade no longer
    applies. Returns whether anything changed.
    """
    if user.login_method != User.LoginMethod.PASSWORD or user.password_pinned_at is not None:
        return False
    user.password_pinned_at = timezone.now()
    user.save(update_fields=["password_pinned_at"])
    return True


def set_active(membership: Membership, active: bool, *, owns_identity: bool) -> None:
    """Switch one account's membership on or off; the identity too when the caller owns it (its home account).

    Saving them is what the OpenID Provider listens to: its receivers end the
    applications' sign-ins and refresh tokens and send back-channel logout
    and webhooks. The admin API and the SCIM directory both come here.
    """
    membership.is_active = active
    membership.save(update_fields=["is_active"])
    user = membership.user
    if owns_identity and user.is_active != active:
        user.is_active = active
        user.save(update_fields=["is_active"])


def approve(membership: Membership) -> None:
    """ "Allow Login" for one account: the person's other accounts are not this one's to approve."""
    if membership.approval != Approval.APPROVED:
        membership.approval = Approval.APPROVED
        membership.save(update_fields=["approval"])


def user_managers(account: Account) -> list[User]:
    """People who may approve someone here: active members holding user-manager (administrator implies it)."""
    members = User.objects.filter(
        is_active=True, memberships__in=Membership.objects.in_force().filter(account=account)
    ).order_by("email_key")
    return [u for u in members if "user-manager" in effective_account_roles(u, account)]


def notify_pending_approval(membership: Membership, *, via: str) -> list[str]:
    """Seed 001 "Allow Login": tell the account's user-managers that someone waits for them.

    One email each (recipients do not see each other). A mail server that
    fails is logged, never the waiting person's problem. Returns who was told.
    """
    account, person = membership.account, membership.user
    # The console's pages (the URL names are the console's; reverse needs no import of it).
    queue = absolute(reverse("console:pending", args=[account.slug]))
    profile = absolute(reverse("console:user", args=[account.slug, person.pk]))
    told = []
    for manager in user_managers(account):
        if manager.pk == person.pk:
            continue
        try:
            send(
                manager.email,
                f"{person.email} is waiting for approval in {account.name}",
                f"{person.name or person.email} ({person.email}) signed in through {via} and was added to "
                f"{account.name}, waiting for approval: they cannot sign in there until a user-manager allows it.\n\n"
                f"To allow them, open their profile and choose Approve: {profile}\n\n"
                f"Everyone waiting: {queue}\n"
                f"(or through the API: PATCH {absolute(f'/api/v1/accounts/{account.slug}/users/{person.pk}')} "
                '{"approval": "approved"})\n\n'
                "If you do not know this person, leave them waiting or remove them.",
            )
        except Exception:  # the login has been decided; the log is the place for this.
            log.exception("approval notice to %s failed", manager.email)
            continue
        told.append(manager.email)
    return told
